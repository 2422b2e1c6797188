//! Between `http` types and the WIT records plugins see.
//!
//! This is the one place headers are copied into `(String, String)` pairs: only at the WASM
//! boundary, and only for plugins that are called. What comes back from a plugin is checked
//! here (header names and values, status codes); a plugin that returns something HTTP cannot
//! carry fails its call with [`BadOutput`].

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::bindings::{Principal, Response};

/// A plugin returned something that cannot be sent as HTTP.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadOutput(pub String);

/// `headers` as WIT pairs; values that are not UTF-8 get U+FFFD for the bad bytes.
pub fn headers_to_wit(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = match value.to_str() {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// The headers `selection` names, as WIT pairs.
pub fn selected_headers_to_wit(
    headers: &HeaderMap,
    selection: &super::HeaderSelection,
) -> Vec<(String, String)> {
    match selection {
        super::HeaderSelection::All => headers_to_wit(headers),
        super::HeaderSelection::Only(names) => names
            .iter()
            .flat_map(|name| {
                headers.get_all(name).iter().map(move |value| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
            })
            .collect(),
    }
}

/// A header map from a plugin's pairs.
pub fn headers_from_wit(pairs: &[(String, String)]) -> Result<HeaderMap, BadOutput> {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BadOutput(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| BadOutput(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// A status code from a plugin: 100 to 599.
pub fn status_from_wit(status: u16) -> Result<StatusCode, BadOutput> {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| BadOutput(format!("invalid status code {status}")))
}

/// An `http` response from a plugin's response record (`none` body → empty).
pub fn response_from_wit(response: Response) -> Result<http::Response<bytes::Bytes>, BadOutput> {
    let mut out = http::Response::new(bytes::Bytes::from(response.body.unwrap_or_default()));
    *out.status_mut() = status_from_wit(response.status)?;
    *out.headers_mut() = headers_from_wit(&response.headers)?;
    Ok(out)
}

/// The principal record for plugins, from an authorizer's decision.
pub fn principal(id: &str, context: &[(String, String)]) -> Principal {
    Principal {
        id: id.to_owned(),
        context: context.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let mut map = HeaderMap::new();
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("x-a", HeaderValue::from_static("2"));
        map.insert("x-bin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let pairs = headers_to_wit(&map);
        assert_eq!(pairs[0], ("x-a".into(), "1".into()));
        assert_eq!(pairs[1], ("x-a".into(), "2".into()));
        assert_eq!(pairs[2], ("x-bin".into(), "caf\u{fffd}".into()));
        let back = headers_from_wit(&pairs[..2]).unwrap();
        assert_eq!(back.get_all("x-a").iter().count(), 2);
        assert!(headers_from_wit(&[("bad name".into(), "v".into())]).is_err());
        assert!(headers_from_wit(&[("x".into(), "a\nb".into())]).is_err());
        assert!(status_from_wit(99).is_err());
        assert!(status_from_wit(600).is_err());
        assert_eq!(status_from_wit(201).unwrap(), StatusCode::CREATED);
    }
}
