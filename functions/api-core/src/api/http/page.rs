//! The System → Jobs page: static assets compiled into the function and served from `GET /`
//! of the API, so the page needs no web server of its own and works under any stage path
//! (it uses relative URLs only). The script is a set of ES modules under `page/js/`, each
//! served as its own file; `main.js` imports the others by relative URLs.

use std::sync::LazyLock;

use super::HttpResponse;
use jobs_core::domain::registry::REGISTRY;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A module of `page/js/`, served at `/assets/js/<name>`.
macro_rules! module {
    ($name:literal) => {
        Asset {
            path: concat!("/assets/js/", $name),
            content_type: JS,
            body: include_str!(concat!("../../../page/js/", $name)),
        }
    };
}

/// How the page signs in, given to it in index.html's `<meta name="jobs-config">`: the
/// identity provider (a public client: Authorization Code + PKCE), and whether the
/// paste-a-dev-token card shows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PageConfig {
    pub oidc: Option<PageOidc>,
    pub dev_tokens: bool,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PageOidc {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
}

impl PageConfig {
    /// The issuer's origin (`scheme://host[:port]`), which the CSP's `connect-src` gains.
    fn issuer_origin(&self) -> Option<String> {
        origin_of(&self.oidc.as_ref()?.issuer)
    }
}

/// The origin (`scheme://host[:port]`) of an `http` or `https` URL whose host holds only
/// the characters of a host name or address; `None` for anything else.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    };
    (matches!(scheme, "https" | "http") && safe(host)).then(|| format!("{scheme}://{host}"))
}

/// index.html first (it is served with the job types filled in, see [`INDEX`]).
const ASSETS: [Asset; 23] = [
    Asset {
        path: "/",
        content_type: HTML,
        body: include_str!("../../../page/index.html"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: CSS,
        body: include_str!("../../../page/app.css"),
    },
    module!("main.js"),
    module!("dom.js"),
    module!("feedback.js"),
    module!("state.js"),
    module!("api.js"),
    module!("signin.js"),
    module!("oidc.js"),
    module!("filters.js"),
    module!("views.js"),
    module!("job-parts.js"),
    module!("list.js"),
    module!("polling.js"),
    module!("metrics.js"),
    module!("bulk.js"),
    module!("details.js"),
    module!("actions.js"),
    module!("schedules.js"),
    module!("schedule-dialog.js"),
    module!("new-job.js"),
    module!("forms.js"),
    module!("api-keys.js"),
];

/// Everything the page loads comes from this API; no inline script, no third parties.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Where index.html holds the page's configuration ([`PageConfig`]).
const CONFIG_MARKER: &str = "<!-- page config -->";

/// Where index.html's type filter lists the job types; filled from the registry.
const TYPE_OPTIONS_MARKER: &str = "<!-- job type options -->";

/// index.html with one `<option>` per registered job type.
static INDEX: LazyLock<String> = LazyLock::new(|| {
    let options: String = REGISTRY
        .iter()
        .map(|spec| {
            format!(
                "<option value=\"{}\">{}</option>",
                html_text(spec.key),
                html_text(spec.label)
            )
        })
        .collect::<Vec<_>>()
        .join("\n          ");
    ASSETS[0].body.replacen(TYPE_OPTIONS_MARKER, &options, 1)
});

fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn is_page_path(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The asset at `path`, with the CSP: `connect-src` gains the identity provider's origin
/// and `upload_origin`, where the page's file uploads go (a presigned S3 `PUT`'s origin).
pub fn serve(path: &str, config: &PageConfig, upload_origin: Option<&str>) -> Option<HttpResponse> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    let origins: Vec<String> = config
        .issuer_origin()
        .into_iter()
        .chain(upload_origin.and_then(origin_of))
        .collect();
    let csp = if origins.is_empty() {
        CONTENT_SECURITY_POLICY.to_string()
    } else {
        CONTENT_SECURITY_POLICY.replacen(
            "connect-src 'self'",
            &format!("connect-src 'self' {}", origins.join(" ")),
            1,
        )
    };
    Some(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), asset.content_type.into()),
            ("content-security-policy".into(), csp),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: if asset.path == "/" {
            let json = serde_json::to_string(config).unwrap_or_else(|_| "{}".into());
            let meta = format!(
                "<meta name=\"jobs-config\" content=\"{}\">",
                html_text(&json)
            );
            INDEX.replacen(CONFIG_MARKER, &meta, 1).into_bytes()
        } else {
            asset.body.as_bytes().to_vec()
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn asset(path: &str) -> &'static str {
        ASSETS
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.body)
            .unwrap_or_else(|| panic!("no asset {path}"))
    }

    fn modules() -> impl Iterator<Item = &'static Asset> {
        ASSETS.iter().filter(|a| a.content_type == JS)
    }

    /// The modules a module imports, as written: `import … from './x.js';` (possibly over
    /// several lines) or `import './x.js';`. Every import statement starts a line.
    fn imports(source: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(at) = rest
            .find("\nimport ")
            .map(|i| i + 1)
            .or_else(|| rest.starts_with("import ").then_some(0))
        {
            let statement = &rest[at..];
            let end = statement
                .find(';')
                .expect("an import statement ends with ;");
            let specifier = statement[..end].trim_end().trim_end_matches(['\'', '"']);
            let start = specifier
                .rfind(['\'', '"'])
                .expect("an import names its module in quotes");
            found.push(&specifier[start + 1..]);
            rest = &statement[end..];
        }
        found
    }

    #[test]
    fn the_type_filter_lists_every_registered_type() {
        assert!(
            asset("/").contains(TYPE_OPTIONS_MARKER),
            "index.html marks where the type options go"
        );
        let page =
            String::from_utf8(serve("/", &PageConfig::default(), None).unwrap().body).unwrap();
        assert!(!page.contains(TYPE_OPTIONS_MARKER));
        for spec in &REGISTRY {
            assert!(
                page.contains(&format!(
                    "<option value=\"{}\">{}</option>",
                    spec.key, spec.label
                )),
                "{}",
                spec.key
            );
        }
    }

    #[test]
    fn the_config_and_the_issuer_s_origin_reach_the_page_and_its_csp() {
        let config = PageConfig {
            oidc: Some(PageOidc {
                issuer: "https://idp.example.com/oauth2/default".into(),
                client_id: "jobs-page".into(),
                scopes: "openid profile".into(),
            }),
            dev_tokens: false,
        };
        let response = serve("/", &config, None).unwrap();
        let page = String::from_utf8(response.body).unwrap();
        assert!(page.contains("<meta name=\"jobs-config\" content=\"{&quot;oidc&quot;:{&quot;issuer&quot;:&quot;https://idp.example.com/oauth2/default&quot;"));
        let csp = &response
            .headers
            .iter()
            .find(|(n, _)| n == "content-security-policy")
            .unwrap()
            .1;
        assert!(
            csp.contains("connect-src 'self' https://idp.example.com;"),
            "{csp}"
        );
        let odd = PageConfig {
            oidc: Some(PageOidc {
                issuer: "https://idp.example.com; script-src *".into(),
                ..config.oidc.clone().unwrap()
            }),
            dev_tokens: false,
        };
        let csp = serve("/", &odd, None)
            .unwrap()
            .headers
            .into_iter()
            .find(|(n, _)| n == "content-security-policy")
            .unwrap()
            .1;
        assert!(csp.contains("connect-src 'self';"), "nothing wider: {csp}");
    }

    #[test]
    fn the_upload_origin_joins_connect_src_and_nothing_else_does() {
        let csp_of = |upload: &str| {
            serve("/", &PageConfig::default(), Some(upload))
                .unwrap()
                .headers
                .into_iter()
                .find(|(n, _)| n == "content-security-policy")
                .unwrap()
                .1
        };
        let csp = csp_of(
            "https://jobs-inputs.s3.eu-west-1.amazonaws.com/uploads/t/01J?X-Amz-Signature=x",
        );
        assert!(
            csp.contains("connect-src 'self' https://jobs-inputs.s3.eu-west-1.amazonaws.com;"),
            "{csp}"
        );
        for odd in [
            "memory:///uploads/t/x",
            "https://a.example.com;script-src *",
            "https://",
        ] {
            assert!(csp_of(odd).contains("connect-src 'self';"), "{odd}");
        }
    }

    #[test]
    fn every_asset_is_served_with_the_csp() {
        for a in &ASSETS {
            let response = serve(a.path, &PageConfig::default(), None).unwrap();
            assert_eq!(response.status, 200);
            assert!(response.headers.iter().any(|(n, v)| n == "content-security-policy" && v.contains("script-src 'self'")));
        }
        assert!(serve("/assets/nope.js", &PageConfig::default(), None).is_none());
        assert!(serve("/assets/js/nope.js", &PageConfig::default(), None).is_none());
    }

    /// The CSP forbids inline scripts and styles, and the page lives under a stage path:
    /// index.html loads only assets of this table, by relative URLs.
    #[test]
    fn index_loads_only_relative_served_assets_and_nothing_inline() {
        let html = asset("/");
        for (tag, attr) in [
            ("<script", "src=\""),
            ("<link rel=\"stylesheet\"", "href=\""),
        ] {
            for chunk in html.split(tag).skip(1) {
                let url = chunk
                    .split(attr)
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{tag} without {attr}"));
                assert!(
                    !url.starts_with('/') && !url.contains("//"),
                    "{url} is not relative to the stage"
                );
                assert!(is_page_path(&format!("/{url}")), "{url} is not in ASSETS");
            }
        }
        assert!(
            html.contains("<script type=\"module\" src=\"assets/js/main.js\"></script>"),
            "index.html loads main.js as a module"
        );
        assert!(
            !html.contains(" style=") && !html.contains("<style"),
            "inline styles are blocked by the CSP"
        );
    }

    /// Every module main.js imports, directly or through another module, is served as
    /// JavaScript under /assets/js/, by a relative import; and every module served is
    /// imported (no forgotten module either way).
    #[test]
    fn every_module_main_js_imports_is_served() {
        let mut reached = BTreeSet::from(["/assets/js/main.js".to_string()]);
        let mut queue = vec!["/assets/js/main.js".to_string()];
        while let Some(path) = queue.pop() {
            let source = asset(&path);
            assert!(!source.contains("import("), "{path}: no dynamic imports");
            for specifier in imports(source) {
                let name = specifier.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{path} imports {specifier}: imports are relative, './x.js'")
                });
                assert!(
                    name.ends_with(".js") && !name.contains('/'),
                    "{path} imports {specifier}: a module of page/js/"
                );
                let target = format!("/assets/js/{name}");
                let response = serve(&target, &PageConfig::default(), None).unwrap_or_else(|| {
                    panic!("{path} imports {specifier}, which ASSETS does not serve")
                });
                assert!(
                    response
                        .headers
                        .contains(&("content-type".into(), JS.into())),
                    "{target} is served as JavaScript"
                );
                if reached.insert(target.clone()) {
                    queue.push(target);
                }
            }
        }
        let served: BTreeSet<String> = modules().map(|a| a.path.to_string()).collect();
        assert_eq!(
            served, reached,
            "the modules served are exactly those main.js reaches"
        );
        assert!(
            reached.len() > 10,
            "the import parser found the modules: {reached:?}"
        );
    }

    /// Each registered job type has its params form in forms.js (an entry `  <key>: {` of
    /// PARAM_FORMS), and forms.js has no form for a type the registry does not know.
    #[test]
    fn forms_js_has_one_params_form_per_registered_type() {
        let source = asset("/assets/js/forms.js");
        let start = source
            .find("\nconst PARAM_FORMS = {\n")
            .expect("forms.js defines `const PARAM_FORMS = {` on a line of its own");
        let block = &source[start..];
        let block = &block[..block
            .find("\n};\n")
            .expect("PARAM_FORMS ends with `};` on a line of its own")];
        let forms: BTreeSet<&str> = block
            .lines()
            .filter(|line| {
                line.starts_with("  ") && !line.starts_with("   ") && line.trim() != "},"
            })
            .map(|line| {
                line.trim().strip_suffix(": {").unwrap_or_else(|| {
                    panic!("PARAM_FORMS entries are written `  <key>: {{`, not {line:?}")
                })
            })
            .collect();
        let registered: BTreeSet<&str> = REGISTRY.iter().map(|spec| spec.key).collect();
        let missing: Vec<&&str> = registered.difference(&forms).collect();
        assert!(
            missing.is_empty(),
            "forms.js has no params form for the job types {missing:?}: add `  <key>: {{ fields, read, write }}` to PARAM_FORMS"
        );
        let unknown: Vec<&&str> = forms.difference(&registered).collect();
        assert!(
            unknown.is_empty(),
            "forms.js has params forms for {unknown:?}, which are not registered job types"
        );
    }

    /// Job fields come from users: the page builds its DOM with textContent, never from HTML
    /// strings, and calls the API by URLs relative to the stage.
    #[test]
    fn scripts_never_parse_html_strings() {
        for module in modules() {
            let js = module.body;
            for sink in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!js.contains(sink), "{} uses {sink}", module.path);
            }
            assert!(
                !js.contains("fetch('/") && !js.contains("fetch(\"/") && !js.contains("fetch(`/"),
                "{}: API calls must be relative to the stage",
                module.path
            );
            assert!(
                !js.contains("api('/") && !js.contains("api(`/"),
                "{}: API calls must be relative to the stage",
                module.path
            );
        }
    }
}
