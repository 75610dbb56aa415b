//! The System → Jobs page: static assets compiled into the function and served from `GET /`
//! of the API, so the page needs no web server of its own and works under any stage path
//! (it uses relative URLs only).

use std::sync::LazyLock;

use super::HttpResponse;
use jobs_core::registry::REGISTRY;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_str!("../../../page/index.html") },
    Asset { path: "/assets/app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../../../page/app.js") },
    Asset { path: "/assets/app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../../page/app.css") },
];

/// Everything the page loads comes from this API; no inline script, no third parties.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Where index.html's type filter lists the job types; filled from the registry.
const TYPE_OPTIONS_MARKER: &str = "<!-- job type options -->";

/// index.html with one `<option>` per registered job type.
static INDEX: LazyLock<String> = LazyLock::new(|| {
    let options: String = REGISTRY
        .iter()
        .map(|spec| format!("<option value=\"{}\">{}</option>", html_text(spec.key), html_text(spec.label)))
        .collect::<Vec<_>>()
        .join("\n          ");
    ASSETS[0].body.replacen(TYPE_OPTIONS_MARKER, &options, 1)
});

fn html_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn is_page_path(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

pub fn serve(path: &str) -> Option<HttpResponse> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    Some(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), asset.content_type.into()),
            ("content-security-policy".into(), CONTENT_SECURITY_POLICY.into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: if asset.path == "/" { INDEX.as_bytes().to_vec() } else { asset.body.as_bytes().to_vec() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(path: &str) -> &'static str {
        ASSETS.iter().find(|a| a.path == path).map(|a| a.body).unwrap_or_else(|| panic!("no asset {path}"))
    }

    #[test]
    fn the_type_filter_lists_every_registered_type() {
        assert!(asset("/").contains(TYPE_OPTIONS_MARKER), "index.html marks where the type options go");
        let page = String::from_utf8(serve("/").unwrap().body).unwrap();
        assert!(!page.contains(TYPE_OPTIONS_MARKER));
        for spec in &REGISTRY {
            assert!(page.contains(&format!("<option value=\"{}\">{}</option>", spec.key, spec.label)), "{}", spec.key);
        }
    }

    #[test]
    fn every_asset_is_served_with_the_csp() {
        for a in &ASSETS {
            let response = serve(a.path).unwrap();
            assert_eq!(response.status, 200);
            assert!(response.headers.iter().any(|(n, v)| n == "content-security-policy" && v.contains("script-src 'self'")));
        }
        assert!(serve("/assets/nope.js").is_none());
    }

    /// The CSP forbids inline scripts and styles, and the page lives under a stage path:
    /// index.html loads only assets of this table, by relative URLs.
    #[test]
    fn index_loads_only_relative_served_assets_and_nothing_inline() {
        let html = asset("/");
        for (tag, attr) in [("<script", "src=\""), ("<link rel=\"stylesheet\"", "href=\"")] {
            for chunk in html.split(tag).skip(1) {
                let url = chunk.split(attr).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_else(|| panic!("{tag} without {attr}"));
                assert!(!url.starts_with('/') && !url.contains("//"), "{url} is not relative to the stage");
                assert!(is_page_path(&format!("/{url}")), "{url} is not in ASSETS");
            }
        }
        assert!(!html.contains(" style=") && !html.contains("<style"), "inline styles are blocked by the CSP");
    }

    /// Job fields come from users: the page builds its DOM with textContent, never from HTML strings.
    #[test]
    fn script_never_parses_html_strings() {
        let js = asset("/assets/app.js");
        for sink in [".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
        assert!(!js.contains("fetch('/") && !js.contains("fetch(\"/"), "API calls must be relative to the stage");
    }
}
