//! Phase 1, accept: the request id, and what can be refused before routing or reading the body.
//!
//! Header size is enforced earlier, by the HTTP parser (431); a body without a declared length
//! is counted as it streams (see `body::RequestBody`).
//!
//! The request's host is checked here too, as RFC 9112 asks of a server (and nginx and HAProxy
//! do): an HTTP/1.1 request without `Host`, or any with more than one, is 400. In the absolute form
//! (`GET http://api.example/prod/x HTTP/1.1`) the target's authority is the host, whatever
//! `Host` says (RFC 9112 §3.2.2), and for HTTP/2 `:authority` is: `Host` is set to it here, so
//! everything after (the origin's `X-Forwarded-Host`, plugins, custom domains) sees one host.
//!
//! A path with a `.` or `..` segment (also percent-encoded) is refused: it would match a route
//! by its literal text, and an origin that resolves it would serve a path outside the route,
//! e.g. `/prod/files/../admin` through `ANY /files/{proxy+}`. Clients resolve dot segments before
//! sending (RFC 3986 §5.2.4), so one on the wire is a mistake or a probe.

use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Version};

use super::{Flow, GatewayError, RequestContext};
use crate::generation::Generation;

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

/// Refuses ambiguous hosts, dot segments, and a declared body over the limit
/// before any of it is read; makes the target's authority the `Host`.
pub fn check(
    gateway: &Generation,
    _ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
) -> Result<Flow, GatewayError> {
    check_host(parts)?;
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

/// One `Host` (none is fine for HTTP/1.0 and HTTP/2), replaced by the target's authority when
/// the request has one.
fn check_host(parts: &mut Parts) -> Result<(), GatewayError> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(GatewayError::BadRequest("more than one Host header"));
    }
    if let Some(authority) = parts.uri.authority() {
        if first.is_none_or(|host| host.as_bytes() != authority.as_str().as_bytes()) {
            let host = HeaderValue::from_str(authority.as_str())
                .map_err(|_| GatewayError::BadRequest("request target authority"))?;
            parts.headers.insert(HOST, host);
        }
    } else if first.is_none() && parts.version == Version::HTTP_11 {
        return Err(GatewayError::BadRequest("HTTP/1.1 request without Host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Parts, check_host, has_dot_segment};
    use http::Request;

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_rules() {
        let one = parts(Request::get("/p").header("host", "a"));
        assert!(check_host(&mut one.clone()).is_ok());
        let two = parts(Request::get("/p").header("host", "a").header("host", "b"));
        assert!(check_host(&mut two.clone()).is_err());
        let none = parts(Request::get("/p"));
        assert!(check_host(&mut none.clone()).is_err());
        let old = parts(Request::get("/p").version(http::Version::HTTP_10));
        assert!(check_host(&mut old.clone()).is_ok());
        let mut absolute = parts(Request::get("http://other.example:81/p").header("host", "good"));
        check_host(&mut absolute).unwrap();
        assert_eq!(absolute.headers["host"], "other.example:81");
        assert_eq!(absolute.headers.get_all("host").iter().count(), 1);
    }

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
