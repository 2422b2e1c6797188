//! API docs pages: a stage with `docs: { path: /docs }` serves its API's OpenAPI document
//! (without API Gateway's extensions: integrations are not the public's business) and a Swagger
//! UI page that renders it, embedded in the binary so the page works with no network.
//!
//! `GET /{stage}/docs` is the page, `/{stage}/docs/openapi.json` the document, and
//! `/{stage}/docs/swagger-ui-bundle.js` and `swagger-ui.css` the page's assets. A docs path is
//! answered before routing, so it wins over a route with the same path; the stage's source-IP
//! policy applies to it as to the stage's routes (a private API's docs stay private).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::auth::ip_policy::IpPolicy;
use crate::body::ResponseBody;

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// One stage's docs.
#[derive(Debug)]
pub struct Site {
    pub api: String,
    pub stage: String,
    /// `/{stage}{path}`, e.g. `/prod/docs`.
    prefix: String,
    page: Bytes,
    document: Bytes,
    /// The stage's source-IP policy (its own, else its API's).
    pub policy: Option<Arc<IpPolicy>>,
}

/// Every stage's docs in a generation.
#[derive(Debug, Default)]
pub struct DocsSites(Vec<Site>);

impl DocsSites {
    /// Adds the docs of a stage: served at `/{stage}{path}`, showing `document` (OpenAPI JSON)
    /// to the sources `policy` allows.
    pub fn add(
        &mut self,
        api: &str,
        stage: &str,
        path: &str,
        document: Bytes,
        policy: Option<Arc<IpPolicy>>,
    ) {
        let prefix = format!("/{stage}{}", path.trim_end_matches('/'));
        let page = page(&prefix, api);
        self.0.push(Site {
            api: api.to_owned(),
            stage: stage.to_owned(),
            prefix,
            page: Bytes::from(page),
            document,
            policy,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The site a request path is for, and the page it asks for; `None` for any other path.
    pub fn find<'a>(&'a self, path: &'a str) -> Option<(&'a Site, &'a str)> {
        let site = self.0.iter().find(|s| path.starts_with(&s.prefix))?;
        let rest = &path[site.prefix.len()..];
        matches!(
            rest,
            "" | "/"
                | "/index.html"
                | "/openapi.json"
                | "/swagger-ui-bundle.js"
                | "/swagger-ui.css"
        )
        .then_some((site, rest))
    }
}

impl Site {
    /// The answer for `rest`, a page [`DocsSites::find`] found.
    pub fn answer(&self, method: &Method, rest: &str) -> Response<ResponseBody> {
        let site = self;
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
            _ => (Bytes::new(), "text/plain", "no-cache"),
        };
        let mut response = Response::new(ResponseBody::empty());
        if *method != Method::GET && *method != Method::HEAD {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
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
        response
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
