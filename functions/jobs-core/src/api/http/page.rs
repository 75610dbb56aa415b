//! The System → Jobs page: static assets compiled into the function and served from `GET /`
//! of the API, so the page needs no web server of its own and works under any stage path
//! (it uses relative URLs only).

use super::HttpResponse;

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
        body: asset.body.as_bytes().to_vec(),
    })
}
