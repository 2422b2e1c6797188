//! The canonical request, built from the request as received exactly as `aws-sigv4` builds it
//! when signing for a service other than S3 (its default settings).
//!
//! - URI: the path as sent (still percent-encoded), dot segments and empty segments removed,
//!   then URI-encoded again, `/` kept: `/a%20b/c:d` → `/a%2520b/c%3Ad`.
//! - Query: form-decoded (`+` is a space), each name and value URI-encoded, pairs sorted by
//!   name then value (as encoded); a presigned request's `X-Amz-Signature` left out.
//! - Headers: only those in `SignedHeaders`, each `name:value`, the values of a repeated header
//!   joined with `,`, each value with spaces trimmed and runs of spaces collapsed.

use std::borrow::Cow;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::error::SigV4Error;

/// Hex digits as URI-encoding writes them (upper case).
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986's unreserved characters, the only ones URI-encoding leaves alone.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` URI-encoded: every byte but the unreserved (and `/` with `keep_slash`) as
/// `%XX`.
pub(crate) fn uri_encode(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &byte in bytes {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                UPPER_HEX[usize::from(byte >> 4)],
                UPPER_HEX[usize::from(byte & 0xf)],
            ]);
        }
    }
}

/// Appends the canonical URI of `path` (see the module docs).
pub fn write_uri(out: &mut Vec<u8>, path: &str) {
    uri_encode(out, normalize_path(path).as_bytes(), true);
}

/// `aws-sigv4`'s path normalization: a leading `/`; without `.` or `//` nothing else changes,
/// otherwise `.`, `..` and empty segments are resolved and a trailing `/` is kept.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    let path: Cow<'_, str> = if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    };
    if !path.contains('.') && !path.contains("//") {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if normalized.is_empty() || (ends_with_slash && !normalized.ends_with('/')) {
        normalized.push('/');
    }
    Cow::Owned(normalized)
}

pub use crate::encoding::query_pairs;

/// Appends the canonical query string of `query`; `presigned` leaves out `X-Amz-Signature`.
pub fn write_query(out: &mut Vec<u8>, query: Option<&str>, presigned: bool) {
    let Some(query) = query else { return };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query_pairs(query)
        .filter(|(name, _)| !(presigned && name == "X-Amz-Signature"))
        .map(|(name, value)| {
            let mut encoded_name = Vec::with_capacity(name.len());
            uri_encode(&mut encoded_name, name.as_bytes(), false);
            let mut encoded_value = Vec::with_capacity(value.len());
            uri_encode(&mut encoded_value, value.as_bytes(), false);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// Appends one `name:value\n` line for each of `signed_headers` (already checked: lower case,
/// sorted, no duplicates). `host` falls back to the URI's authority (HTTP/2's `:authority`)
/// when the request has no `Host` header.
pub fn write_headers(
    out: &mut Vec<u8>,
    parts: &Parts,
    signed_headers: &str,
) -> Result<(), SigV4Error> {
    for name in signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = parts.headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            match (name, authority_host(&parts.uri)) {
                ("host", Some(host)) => out.extend_from_slice(host.as_bytes()),
                _ => {
                    return Err(SigV4Error::SignedHeaderAbsent {
                        name: name.to_owned(),
                    });
                }
            }
        }
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_trimmed(out, value);
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The host the client addressed, as `aws-sigv4` writes it for the `host` header it adds: the
/// authority, without the port when that is the scheme's default.
fn authority_host(uri: &Uri) -> Option<&str> {
    let authority = uri.authority()?;
    match (uri.scheme_str(), authority.port_u16()) {
        (Some("http"), Some(80)) | (Some("https"), Some(443)) => Some(authority.host()),
        _ => Some(authority.as_str()),
    }
}

/// Appends `value` without leading or trailing spaces and with each run of spaces as one.
/// Only spaces: `aws-sigv4` leaves tabs as they are.
fn write_trimmed(out: &mut Vec<u8>, value: &HeaderValue) {
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &byte in &bytes[start..end] {
        if byte == b' ' && previous_space {
            continue;
        }
        previous_space = byte == b' ';
        out.push(byte);
    }
}

/// The `x-amz-*` headers of a request that `signed_headers` leaves out, but for those that
/// may be: `x-amz-cf-id`, which CloudFront adds on its way to the origin, and on a presigned
/// URL `x-amz-user-agent` and `x-amz-checksum-mode`, which `aws-sigv4` never signs there.
pub fn unsigned_amz_headers(
    headers: &HeaderMap,
    signed_headers: &str,
    presigned: bool,
) -> Vec<String> {
    let may_be_unsigned = |name: &str| {
        name == "x-amz-cf-id"
            || (presigned && matches!(name, "x-amz-user-agent" | "x-amz-checksum-mode"))
    };
    headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && !may_be_unsigned(name))
        .filter(|name| !signed_headers.split(';').any(|signed| signed == *name))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str) -> String {
        let mut out = Vec::new();
        write_uri(&mut out, path);
        String::from_utf8(out).unwrap()
    }

    fn query(text: &str, presigned: bool) -> String {
        let mut out = Vec::new();
        write_query(&mut out, Some(text), presigned);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_are_normalized_and_encoded_twice() {
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/"), "/");
        assert_eq!(uri("/pets/42"), "/pets/42");
        assert_eq!(uri("/a%20b/%E2%9C%93"), "/a%2520b/%25E2%259C%2593");
        assert_eq!(
            uri("/x:y@z!$&'()*+,;="),
            "/x%3Ay%40z%21%24%26%27%28%29%2A%2B%2C%3B%3D"
        );
        assert_eq!(uri("/a/./b/../c"), "/a/c");
        assert_eq!(uri("/a//b/"), "/a/b/");
        assert_eq!(uri("/a/b/.."), "/a/");
        assert_eq!(uri("/.."), "/");
        assert_eq!(uri("/v1.2/file.json"), "/v1.2/file.json");
        assert_eq!(uri("/~user/-_."), "/~user/-_.");
    }

    #[test]
    fn queries_are_decoded_encoded_and_sorted() {
        assert_eq!(query("b=2&a=1&a=0", false), "a=0&a=1&b=2");
        assert_eq!(query("q=a+b%20c&flag&&x=", false), "flag=&q=a%20b%20c&x=");
        assert_eq!(
            query("k=%zz%4&u=%E2%9C%93", false),
            "k=%25zz%254&u=%E2%9C%93"
        );
        assert_eq!(query("k=%FF", false), "k=%EF%BF%BD");
        assert_eq!(query("a/b=c:d", false), "a%2Fb=c%3Ad");
        assert_eq!(
            query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
        assert_eq!(query("X-Amz-Signature=abc", false), "X-Amz-Signature=abc");
    }

    #[test]
    fn header_values_are_trimmed_and_spaces_collapsed() {
        let parts = http::Request::builder()
            .uri("https://api.example.com:443/")
            .header("x-a", "  a   b  c ")
            .header("x-b", "1")
            .header("x-b", " 2 ")
            .header("x-c", "\ttab\t")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let mut out = Vec::new();
        write_headers(&mut out, &parts, "host;x-a;x-b;x-c").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host:api.example.com\nx-a:a b c\nx-b:1,2\nx-c:\ttab\t\n"
        );
        let mut out = Vec::new();
        assert!(matches!(
            write_headers(&mut out, &parts, "host;x-d"),
            Err(SigV4Error::SignedHeaderAbsent { name }) if name == "x-d"
        ));
    }
}
