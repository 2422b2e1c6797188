//! Header rewriting between client and origin.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header it names, plus
//! `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) describe
//! one connection and never cross the gateway in either direction. Toward the origin the
//! gateway says who asked: `X-Forwarded-For` (the client address appended to any list already
//! there), `X-Forwarded-Proto`, `X-Forwarded-Host` (the host the client used; `Host` itself
//! becomes the origin's authority) and `X-Request-Id`.

use http::header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The `x-request-id` header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What the origin is told about the client.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// The client's address as text.
    pub client_ip: &'a HeaderValue,
    /// `"http"` or `"https"`: how the client reached the gateway.
    pub proto: &'static str,
    /// The host the client asked for (`Host`, or the HTTP/2 `:authority`).
    pub host: Option<&'a HeaderValue>,
    pub request_id: &'a HeaderValue,
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TE
        || name == TRAILER
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// Removes hop-by-hop headers, in place.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass of cheap name comparisons instead of seven hashed
    // removals.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(&CONNECTION) {
        // `keep-alive` and `close` are the usual tokens; they name no header to remove beyond
        // the fixed list below.
        let named: Vec<HeaderName> = headers
            .get_all(&CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(&CONNECTION);
    }
    for name in [&KEEP_ALIVE, &PROXY_CONNECTION] {
        headers.remove(name);
    }
    for name in [TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
}

/// Turns a client's request headers into the origin's.
pub fn rewrite_request(headers: &mut HeaderMap, forwarded: &Forwarded<'_>) {
    strip_hop_by_hop(headers);
    // The HTTP client sets `Host` from the origin URI.
    let client_host = headers.remove(HOST);
    if let Some(host) = client_host.as_ref().or(forwarded.host) {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
    let xff = match headers.get(&X_FORWARDED_FOR) {
        None => Ok(forwarded.client_ip.clone()),
        Some(previous) => {
            let mut joined = Vec::with_capacity(previous.len() + 2 + forwarded.client_ip.len());
            joined.extend_from_slice(previous.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(forwarded.client_ip.as_bytes());
            HeaderValue::from_maybe_shared(bytes::Bytes::from(joined))
        }
    };
    if let Ok(xff) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), xff);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(forwarded.proto),
    );
    headers.insert(X_REQUEST_ID.clone(), forwarded.request_id.clone());
}

/// Turns an origin's response headers into the client's.
pub fn rewrite_response(headers: &mut HeaderMap, request_id: &HeaderValue) {
    strip_hop_by_hop(headers);
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn request_loses_hop_by_hop_and_gains_forwarded() {
        let mut headers = map(&[
            ("host", "api.example.com"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-forwarded-for", "203.0.113.9"),
            ("accept", "application/json"),
        ]);
        let id = HeaderValue::from_static("abc");
        rewrite_request(
            &mut headers,
            &Forwarded {
                client_ip: &HeaderValue::from_static("127.0.0.1"),
                proto: "https",
                host: None,
                request_id: &id,
            },
        );
        for gone in [
            "connection",
            "x-private",
            "keep-alive",
            "te",
            "upgrade",
            "host",
        ] {
            assert!(!headers.contains_key(gone), "{gone} still there");
        }
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "api.example.com");
        assert_eq!(headers["x-request-id"], "abc");
        assert_eq!(headers["accept"], "application/json");
    }

    #[test]
    fn http2_authority_becomes_forwarded_host() {
        let mut headers = HeaderMap::new();
        let id = HeaderValue::from_static("abc");
        let authority = HeaderValue::from_static("b.test:8443");
        rewrite_request(
            &mut headers,
            &Forwarded {
                client_ip: &HeaderValue::from_static("127.0.0.1"),
                proto: "https",
                host: Some(&authority),
                request_id: &id,
            },
        );
        assert_eq!(headers["x-forwarded-host"], "b.test:8443");
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    }

    #[test]
    fn response_loses_hop_by_hop() {
        let mut headers = map(&[
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        rewrite_response(&mut headers, &HeaderValue::from_static("id"));
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["x-request-id"], "id");
    }
}
