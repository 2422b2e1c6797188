//! Phase 1, accept: the request id and the limits that can be checked before reading the body.
//!
//! Header size is enforced earlier, by the HTTP parser (431); a body without a declared length
//! is counted as it streams (see `body::RequestBody`).

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

/// Refuses a declared body over the limit before any of it is read.
pub fn check(
    gateway: &Gateway,
    _ctx: &mut RequestContext<'_>,
    parts: &Parts,
) -> Result<Flow, GatewayError> {
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
