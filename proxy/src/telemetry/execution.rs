//! Execution logs: what API Gateway writes to `API-Gateway-Execution-Logs_{api}/{stage}`, as
//! JSON lines on stderr with the target `execution`.
//!
//! A stage's `logging_level` decides what is written for its requests:
//! - `off` (the default): nothing;
//! - `error`: one `execution failed` line for a request that ends in a gateway error (its type,
//!   status, message and cause: an authorizer's failure, a template's error, an origin's);
//! - `info`: that, and a line per decision: `authorizer decision`, `throttle decision`,
//!   `cache lookup`, `integration response` (status and latency), `method completed`.
//!
//! `data_trace: true` adds the method request's headers and the first 1,024 bytes of its body,
//! and the method response's headers and first 1,024 bytes, as API Gateway's "full request and
//! response logs" do. Secrets are never written: `Authorization`, `Proxy-Authorization`,
//! `X-Api-Key`, `X-Amz-Security-Token`, `Cookie` and `Set-Cookie` values are `[redacted]`.
//!
//! Each line carries `request_id`, `api`, `stage` and `route`. The lines bypass `EDGEWAY_LOG`:
//! the stage's setting is what turns them on.

use http::HeaderMap;

/// How much of a body a data trace writes.
pub const TRACE_BYTES: usize = 1024;

/// Headers whose values are never written.
const SECRET_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
];

/// A stage's `logging_level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    #[default]
    Off,
    Error,
    Info,
}

impl Level {
    /// The level named `name` (`off`, `error`, `info`; API Gateway's upper case too).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "off" => Some(Self::Off),
            "error" => Some(Self::Error),
            "info" => Some(Self::Info),
            _ => None,
        }
    }
}

/// A stage's execution-log settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Execution {
    pub level: Level,
    /// `data_trace`: headers and the start of bodies, while the level is not `off`.
    pub data_trace: bool,
}

impl Execution {
    /// Whether each decision is written.
    pub fn info(self) -> bool {
        self.level >= Level::Info
    }

    /// Whether failures are written.
    pub fn errors(self) -> bool {
        self.level >= Level::Error
    }

    /// Whether headers and bodies are written.
    pub fn traces_data(self) -> bool {
        self.data_trace && self.level > Level::Off
    }

    /// Whether a route needs the full pipeline to write its lines.
    pub fn needs_phases(self) -> bool {
        self.info() || self.traces_data()
    }
}

/// `headers` as a JSON object for a log line, secrets redacted; repeated names joined by ", ".
pub fn headers_json(headers: &HeaderMap) -> String {
    let mut object = serde_json::Map::new();
    for name in headers.keys() {
        let value = if SECRET_HEADERS.contains(&name.as_str()) {
            "[redacted]".to_owned()
        } else {
            headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        object.insert(name.as_str().to_owned(), value.into());
    }
    serde_json::Value::Object(object).to_string()
}

/// The first [`TRACE_BYTES`] of a body as text (bytes that are not UTF-8 replaced).
pub fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(TRACE_BYTES)]).into_owned()
}

/// Writes an execution-log line for a request of a route with `labels`.
#[macro_export]
macro_rules! execution_log {
    ($level:ident, $request_id:expr, $labels:expr, $message:literal $(, $($field:tt)+)?) => {
        tracing::$level!(
            target: "execution",
            request_id = $request_id,
            api = &*$labels.api,
            stage = &*$labels.stage,
            route = &*$labels.route,
            $($($field)+,)?
            $message
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_repeats_joined() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        headers.insert("x-api-key", "k-s3cret".parse().unwrap());
        headers.append("cookie", "a=s3cret".parse().unwrap());
        headers.append("accept", "text/html".parse().unwrap());
        headers.append("accept", "application/json".parse().unwrap());
        let text = headers_json(&headers);
        assert!(!text.contains("s3cret"), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["authorization"], "[redacted]");
        assert_eq!(parsed["cookie"], "[redacted]");
        assert_eq!(parsed["accept"], "text/html, application/json");
    }

    #[test]
    fn a_body_is_cut_at_1024_bytes() {
        assert_eq!(body_text(&[b'a'; 3000]).len(), 1024);
        assert_eq!(body_text(b"short"), "short");
    }

    #[test]
    fn levels_by_name() {
        assert_eq!(Level::from_name("INFO"), Some(Level::Info));
        assert_eq!(Level::from_name("error"), Some(Level::Error));
        assert_eq!(Level::from_name("debug"), None);
        let off = Execution {
            level: Level::Off,
            data_trace: true,
        };
        assert!(!off.traces_data() && !off.needs_phases());
    }
}
