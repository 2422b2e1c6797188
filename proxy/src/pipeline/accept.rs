//! Phase 1, accept: the request id, and what can be refused before routing or reading the body.
//!
//! Header size is enforced earlier, by the HTTP parser (431); a body without a declared length
//! is counted as it streams (see `body::RequestBody`).
//!
//! A path with a `.` or `..` segment (also percent-encoded) is refused: it would match a route
//! by its literal text, and an origin that resolves it would serve a path outside the route,
//! e.g. `/prod/files/../admin` through `ANY /files/{proxy+}`. Clients resolve dot segments before
//! sending (RFC 3986 §5.2.4), so one on the wire is a mistake or a probe.

use http::HeaderValue;
use http::header::CONTENT_LENGTH;
use http::request::Parts;

use super::{Flow, GatewayError, RequestContext};
use crate::gateway::Gateway;

/// A fresh request id: a random UUID.
pub fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// True if a path segment is `.` or `..`, written plainly or percent-encoded.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let dot = |s: &str| s == "." || s.eq_ignore_ascii_case("%2e");
        // A dot segment is one or two dots, each written as `.` or `%2e`.
        (1..=2).any(|dots| {
            let mut rest = segment;
            for _ in 0..dots {
                let len = if rest.starts_with('.') { 1 } else { 3 };
                match rest.get(..len) {
                    Some(one) if dot(one) => rest = &rest[len..],
                    _ => return false,
                }
            }
            rest.is_empty()
        })
    })
}

/// Refuses dot segments, and a declared body over the limit before any of it is read.
pub fn check(
    gateway: &Gateway,
    _ctx: &mut RequestContext<'_>,
    parts: &Parts,
) -> Result<Flow, GatewayError> {
    let path = parts.uri.path();
    // Only a path with '.' (or an encoded one) can have a dot segment; most skip the scan.
    if (path.contains('.') || path.contains('%')) && has_dot_segment(path) {
        return Err(GatewayError::DotSegment);
    }
    let limit = gateway.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments_plain_and_encoded() {
        for path in [
            "/prod/files/../admin",
            "/prod/./x",
            "/prod/a/%2e%2e/b",
            "/prod/a/.%2E",
            "/prod/..",
            "/prod/%2e",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "/prod/files/a.txt",
            "/prod/...",
            "/prod/.well-known/x",
            "/prod/a..b",
            "/prod/v1.2",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::has_dot_segment;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn paths_without_dot_segments_pass(segments in prop::collection::vec("[a-z0-9._%-]{1,8}", 0..6)) {
            let path = format!("/{}", segments.join("/"));
            let expected = segments.iter().any(|s| {
                let d = s.replace("%2e", ".").replace("%2E", ".");
                d == "." || d == ".."
            });
            prop_assert_eq!(has_dot_segment(&path), expected);
        }
    }
}
