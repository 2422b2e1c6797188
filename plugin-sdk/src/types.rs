//! The records every role shares, with helpers for reading requests and building answers.
//!
//! The types are the ones wit-bindgen generates for the `types` interface; this module adds
//! inherent methods. Header names are compared ASCII-case-insensitively; names the helpers
//! write are lowercased, as Edgeway hands them to plugins.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::headers::{HeaderList, lowercase};

pub use crate::bindings::imports::types::{
    Allow, Decision, Headers, Principal, Request, RequestFlow, Response,
};

/// The value of `name` in a `(name, value)` list, exact match, first occurrence.
fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Request {
    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.header(name)
    }

    /// Every value of header `name` (any case), in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.header_values(name)
    }

    /// The first value of query parameter `name`, as written in the query string (not
    /// percent-decoded). A parameter without `=` has the value `""`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        if self.query.is_empty() {
            return None;
        }
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The route's path parameter `name`: `id` in `GET /pets/{id}`.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        lookup(&self.path_params, name)
    }

    /// The stage variable `name`.
    pub fn stage_variable(&self, name: &str) -> Option<&str> {
        lookup(&self.stage_variables, name)
    }

    /// The id of the principal an authorizer allowed, if any.
    pub fn principal_id(&self) -> Option<&str> {
        self.principal.as_ref().map(|p| p.id.as_str())
    }

    /// The body's bytes; empty when the plugin was not given the body or it was empty.
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_deref().unwrap_or_default()
    }

    /// The body as text: `None` when absent or not valid UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        self.body
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The body parsed as JSON. An absent body is an error, like an empty one.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(self.body_bytes())?)
    }
}

impl Principal {
    /// The value of context key `key`, if the authorizer set it.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        lookup(&self.context, key)
    }
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// An `application/json` response with `value` serialized as its body.
    ///
    /// Fails only when `value` cannot be represented in JSON (a map with non-string keys,
    /// a failing `Serialize` impl).
    ///
    /// ```
    /// use edgeway_plugin_sdk::Response;
    ///
    /// let response = Response::json(201, &serde_json::json!({ "id": 7 })).unwrap();
    /// assert_eq!(response.header("Content-Type"), Some("application/json"));
    /// assert_eq!(response.body.as_deref(), Some(&b"{\"id\":7}"[..]));
    /// ```
    pub fn json(status: u16, value: &impl Serialize) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)?;
        Ok(Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(body))
    }

    /// Adds a header (another value when `name` is already present); `name` is lowercased.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((lowercase(name), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.header(name)
    }
}

impl Allow {
    /// Allows `principal_id`, with no context and no usage key.
    pub fn new(principal_id: impl Into<String>) -> Self {
        Allow {
            principal_id: principal_id.into(),
            context: Vec::new(),
            usage_key: None,
        }
    }

    /// Adds context entry `key` = `value`.
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.push((key.into(), value.into()));
        self
    }

    /// Counts the request against the usage plan of API key `key`.
    pub fn with_usage_key(mut self, key: impl Into<String>) -> Self {
        self.usage_key = Some(key.into());
        self
    }
}

impl From<Allow> for Decision {
    fn from(allow: Allow) -> Self {
        Decision::Allow(allow)
    }
}

impl Decision {
    /// Allows `principal_id` with no context and no usage key; see [`Allow`] for more.
    pub fn allow(principal_id: impl Into<String>) -> Self {
        Decision::Allow(Allow::new(principal_id))
    }

    /// Denies the request: Edgeway answers 403 with `message`.
    pub fn deny(message: impl Into<String>) -> Self {
        Decision::Deny(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn request() -> Request {
        Request {
            method: "GET".into(),
            path: "/prod/pets/7".into(),
            query: "a=1&flag&b=x%20y&a=2".into(),
            headers: vec![("x-one".into(), "1".into()), ("x-one".into(), "2".into())],
            path_params: vec![("id".into(), "7".into())],
            stage_variables: vec![("env".into(), "prod".into())],
            api: "pets".into(),
            stage: "prod".into(),
            route: "GET /pets/{id}".into(),
            request_id: "r1".into(),
            source_ip: "127.0.0.1".into(),
            principal: Some(Principal {
                id: "alice".into(),
                context: vec![("tier".into(), "gold".into())],
            }),
            body: Some(vec![0xff]),
        }
    }

    #[test]
    fn request_lookups() {
        let r = request();
        assert_eq!(r.header("X-One"), Some("1"));
        assert_eq!(r.header_values("x-one").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.query_param("a"), Some("1"));
        assert_eq!(r.query_param("flag"), Some(""));
        assert_eq!(r.query_param("b"), Some("x%20y"));
        assert_eq!(r.query_param("c"), None);
        assert_eq!(r.path_param("id"), Some("7"));
        assert_eq!(r.stage_variable("env"), Some("prod"));
        assert_eq!(r.principal_id(), Some("alice"));
        assert_eq!(
            r.principal.as_ref().and_then(|p| p.context_value("tier")),
            Some("gold")
        );
        assert_eq!(r.body_text(), None);
        assert_eq!(r.body_bytes(), [0xff]);
        assert!(r.body_json::<serde_json::Value>().is_err());
    }

    #[test]
    fn empty_query_has_no_params() {
        let r = Request {
            query: String::new(),
            ..request()
        };
        assert_eq!(r.query_param(""), None);
        assert_eq!(r.query_param("a"), None);
    }

    #[test]
    fn response_builders() {
        let r = Response::text(404, "nope").with_header("X-Why", "gone");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            [
                (
                    "content-type".to_owned(),
                    "text/plain; charset=utf-8".to_owned()
                ),
                ("x-why".to_owned(), "gone".to_owned())
            ]
        );
        assert_eq!(r.body.as_deref(), Some(&b"nope"[..]));
        assert_eq!(Response::new(204).body, None);
    }

    #[test]
    fn decisions() {
        let d: Decision = Allow::new("alice")
            .with_context("tier", "gold")
            .with_usage_key("k")
            .into();
        assert_eq!(
            d,
            Decision::Allow(Allow {
                principal_id: "alice".into(),
                context: vec![("tier".into(), "gold".into())],
                usage_key: Some("k".into()),
            })
        );
        assert_eq!(Decision::deny("no"), Decision::Deny("no".into()));
    }
}
