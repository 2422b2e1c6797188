//! Outbound HTTP to the hosts the plugin's config allows (`allowed_hosts`), within its
//! `http_timeout_ms`.
//!
//! ```no_run
//! use edgeway_plugin_sdk::http::{self, OutgoingRequest};
//!
//! let response = http::fetch(
//!     &OutgoingRequest::new("POST", "https://auth.example.com/introspect")
//!         .with_header("content-type", "application/json")
//!         .with_body(r#"{"token":"abc"}"#),
//! )?;
//! if response.status == 200 {
//!     // ...
//! }
//! # Ok::<(), http::HttpError>(())
//! ```

use crate::Response;
use crate::bindings::imports::http as host;
use crate::headers::lowercase;

pub use host::OutgoingRequest;

/// Why a fetch returned no response: the host's reason (host not allowed, timeout,
/// connection failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("http fetch: {message}")]
pub struct HttpError {
    /// The host's reason.
    pub message: String,
}

/// Sends `request` and returns the whole response. Any status, 500 included, is `Ok`.
pub fn fetch(request: &OutgoingRequest) -> Result<Response, HttpError> {
    host::fetch(request).map_err(|message| HttpError { message })
}

/// `GET url` with no headers.
pub fn get(url: &str) -> Result<Response, HttpError> {
    fetch(&OutgoingRequest::new("GET", url))
}

impl OutgoingRequest {
    /// A request with `method` to `url` (absolute `http://` or `https://`), no headers and
    /// no body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        OutgoingRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header; `name` is lowercased.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((lowercase(name), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}
