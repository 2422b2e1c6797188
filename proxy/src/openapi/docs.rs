//! API docs pages: a stage with `docs: { path: /docs }` serves its API's OpenAPI document
//! (without API Gateway's extensions: integrations are not the public's business) and a Swagger
//! UI page that renders it, embedded in the binary so the page works with no network.
//!
//! `GET /{stage}/docs` is the page, `/{stage}/docs/openapi.json` the document, and
//! `/{stage}/docs/swagger-ui-bundle.js` and `swagger-ui.css` the page's assets. A docs path is
//! answered before routing, so it wins over a route with the same path.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::body::ResponseBody;

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// One stage's docs.
#[derive(Debug)]
struct Site {
    /// `/{stage}{path}`, e.g. `/prod/docs`.
    prefix: String,
    page: Bytes,
    document: Bytes,
}

/// Every stage's docs in a generation.
#[derive(Debug, Default)]
pub struct DocsSites(Vec<Site>);

impl DocsSites {
    /// Adds the docs of a stage: served at `/{stage}{path}`, showing `document` (OpenAPI JSON).
    pub fn add(&mut self, stage: &str, path: &str, title: &str, document: Bytes) {
        let prefix = format!("/{stage}{}", path.trim_end_matches('/'));
        let page = page(&prefix, title);
        self.0.push(Site {
            prefix,
            page: Bytes::from(page),
            document,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The answer for a request to a docs path; `None` for any other request.
    pub fn answer(&self, method: &Method, path: &str) -> Option<Response<ResponseBody>> {
        let site = self.0.iter().find(|s| path.starts_with(&s.prefix))?;
        let rest = &path[site.prefix.len()..];
        let (body, content_type, cache) = match rest {
            "" | "/" | "/index.html" => (site.page.clone(), "text/html; charset=utf-8", "no-cache"),
            "/openapi.json" => (site.document.clone(), "application/json", "no-cache"),
            "/swagger-ui-bundle.js" => (
                Bytes::from_static(BUNDLE),
                "text/javascript; charset=utf-8",
                "public, max-age=86400",
            ),
            "/swagger-ui.css" => (
                Bytes::from_static(CSS),
                "text/css; charset=utf-8",
                "public, max-age=86400",
            ),
            _ => return None,
        };
        let mut response = Response::new(ResponseBody::empty());
        if *method != Method::GET && *method != Method::HEAD {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(response);
        }
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if *method == Method::GET {
            *response.body_mut() = ResponseBody::full(body);
        }
        Some(response)
    }
}

/// The page: Swagger UI pointed at the stage's document, every asset from the gateway itself.
fn page(prefix: &str, title: &str) -> String {
    let title = escape_html(title);
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{prefix}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{ url: "{prefix}/openapi.json", dom_id: "#swagger-ui", deepLinking: true }});
</script>
</body>
</html>
"##
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
