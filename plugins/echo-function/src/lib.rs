//! A handler that answers 200 with a JSON description of the request it received; handy for
//! trying routes, stages, authorizers and transforms end to end.
//!
//! ```json
//! { "method": "POST", "path": "/prod/pets/7", "query": "a=1",
//!   "headers": [["host", "api.example.com"], ["accept", "*/*"]],
//!   "path_params": { "id": "7" }, "stage_variables": { "env": "prod" },
//!   "api": "pets", "stage": "prod", "route": "POST /pets/{id}",
//!   "request_id": "…", "source_ip": "192.0.2.1",
//!   "principal": { "id": "alice", "context": { "tier": "gold" } },
//!   "body": "{\"name\":\"rex\"}", "body_encoding": "utf8" }
//! ```
//!
//! - `headers` is a list of `[name, value]` pairs in the order received, so repeated
//!   headers and their order survive; `path_params`, `stage_variables` and the principal's
//!   `context` are objects (their keys are unique).
//! - `principal` is `null` when no authorizer allowed the request.
//! - `body` and `body_encoding` are absent when the plugin is not given the body (its config
//!   does not set `body: true`); otherwise `body` is the text when it is valid UTF-8
//!   (`"body_encoding": "utf8"`) and standard padded base64 when not (`"base64"`).
//!
//! Content-Type is `application/json`. The handler takes no config.

use std::borrow::Cow;

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The echo document, borrowing from the request.
#[derive(serde::Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
    path_params: Object<'a>,
    stage_variables: Object<'a>,
    api: &'a str,
    stage: &'a str,
    route: &'a str,
    request_id: &'a str,
    source_ip: &'a str,
    principal: Option<Principal<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
}

#[derive(serde::Serialize)]
struct Principal<'a> {
    id: &'a str,
    context: Object<'a>,
}

/// `(key, value)` pairs as a JSON object.
struct Object<'a>(&'a [(String, String)]);

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn echo(request: &Request) -> Echo<'_> {
    let (body, body_encoding) = match request.body.as_deref() {
        None => (None, None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => (Some(Cow::Borrowed(text)), Some("utf8")),
            Err(_) => (Some(Cow::Owned(base64(bytes))), Some("base64")),
        },
    };
    Echo {
        method: &request.method,
        path: &request.path,
        query: &request.query,
        headers: &request.headers,
        path_params: Object(&request.path_params),
        stage_variables: Object(&request.stage_variables),
        api: &request.api,
        stage: &request.stage,
        route: &request.route,
        request_id: &request.request_id,
        source_ip: &request.source_ip,
        principal: request.principal.as_ref().map(|p| Principal {
            id: &p.id,
            context: Object(&p.context),
        }),
        body,
        body_encoding,
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct EchoFunction;

impl Handler for EchoFunction {
    fn new() -> Result<Self, Error> {
        Ok(EchoFunction)
    }

    fn handle(&self, request: Request) -> Result<Response, Error> {
        Response::json(200, &echo(&request))
    }
}

export_handler!(EchoFunction);

#[cfg(test)]
mod tests {
    use edgeway_plugin_sdk::Principal as WitPrincipal;
    use serde_json::json;

    use super::*;

    fn request(body: Option<&[u8]>) -> Request {
        Request {
            method: "POST".into(),
            path: "/prod/pets/7".into(),
            query: "a=1".into(),
            headers: vec![
                ("accept".into(), "*/*".into()),
                ("accept".into(), "text/html".into()),
            ],
            path_params: vec![("id".into(), "7".into())],
            stage_variables: vec![],
            api: "pets".into(),
            stage: "prod".into(),
            route: "POST /pets/{id}".into(),
            request_id: "r1".into(),
            source_ip: "192.0.2.1".into(),
            principal: Some(WitPrincipal {
                id: "alice".into(),
                context: vec![("tier".into(), "gold".into())],
            }),
            body: body.map(<[u8]>::to_vec),
        }
    }

    fn handle(request: Request) -> serde_json::Value {
        let response = EchoFunction.handle(request).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        serde_json::from_slice(response.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn describes_the_request() {
        assert_eq!(
            handle(request(Some(b"hi"))),
            json!({
                "method": "POST", "path": "/prod/pets/7", "query": "a=1",
                "headers": [["accept", "*/*"], ["accept", "text/html"]],
                "path_params": { "id": "7" }, "stage_variables": {},
                "api": "pets", "stage": "prod", "route": "POST /pets/{id}",
                "request_id": "r1", "source_ip": "192.0.2.1",
                "principal": { "id": "alice", "context": { "tier": "gold" } },
                "body": "hi", "body_encoding": "utf8",
            })
        );
    }

    #[test]
    fn body_absent_or_binary() {
        let v = handle(Request {
            principal: None,
            ..request(None)
        });
        assert!(v.get("body").is_none() && v.get("body_encoding").is_none());
        assert_eq!(v["principal"], serde_json::Value::Null);
        let v = handle(request(Some(&[0xff, 0x00, 0x41])));
        assert_eq!(v["body"], "/wBB");
        assert_eq!(v["body_encoding"], "base64");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
