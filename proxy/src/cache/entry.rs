//! A stored response, when it may be stored, and how it is served again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AGE, CACHE_CONTROL, CONTENT_LENGTH, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::validation::params::RequestParam;

/// `x-cache: hit | miss` on every response of a cached route.
pub static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// A response kept in a stage cache.
#[derive(Debug)]
pub struct CachedResponse {
    pub status: StatusCode,
    /// The headers a hit answers with: the origin's, without `x-request-id` (set afresh on
    /// every response), plus `x-cache: hit` and `age: 0` (overwritten with the real age).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stored_at: Instant,
    pub ttl: Duration,
    /// The route's key parameters, so the admin API can drop entries by parameter value.
    pub key_params: Arc<[RequestParam]>,
}

impl CachedResponse {
    /// How old the entry is at `now`, or `None` once its TTL has passed.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        let age = now.saturating_duration_since(self.stored_at);
        (age < self.ttl).then_some(age)
    }

    /// Bytes the entry takes, for the cache's weigher: body, headers and a fixed overhead.
    pub fn weight(&self) -> usize {
        const OVERHEAD: usize = 160;
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        OVERHEAD + headers + self.body.len()
    }

    /// The response for a hit `age` old: `x-cache: hit` and `Age` in whole seconds.
    pub fn to_response(&self, age: Duration) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(self.body.clone()));
        *response.status_mut() = self.status;
        let mut headers = self.headers.clone();
        if age.as_secs() > 0 {
            headers.insert(AGE, HeaderValue::from(age.as_secs()));
        }
        *response.headers_mut() = headers;
        response
    }
}

/// What a route allows into the cache.
#[derive(Debug, Clone)]
pub struct Storable<'a> {
    /// Statuses that are stored; `None` means any 2xx.
    pub statuses: Option<&'a [u16]>,
    /// Store even when the origin says `no-store` or `private`.
    pub ignore_cache_control: bool,
    pub max_entry_bytes: usize,
}

/// Whether a response with this head may be stored. A shared cache must not keep what the
/// origin marked `no-store` or `private` (unless the route says to ignore that), a response
/// that sets a cookie (it would hand one client's cookie to the next) or one that varies on
/// everything (`Vary: *`); nor a body known to be over the size limit.
pub fn storable(status: StatusCode, headers: &HeaderMap, rules: &Storable<'_>) -> bool {
    let status_ok = rules
        .statuses
        .map_or(status.is_success(), |s| s.contains(&status.as_u16()));
    if !status_ok || headers.contains_key(SET_COOKIE) {
        return false;
    }
    let vary_all = headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == "*"))
    });
    if vary_all {
        return false;
    }
    let too_big = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|len| len > rules.max_entry_bytes as u64);
    if too_big {
        return false;
    }
    rules.ignore_cache_control || !forbids_shared_store(headers)
}

/// True when `Cache-Control` carries `no-store` or `private` (with or without a field list).
fn forbids_shared_store(headers: &HeaderMap) -> bool {
    headers.get_all(CACHE_CONTROL).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|directive| {
                let name = directive.split('=').next().unwrap_or_default().trim();
                name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("private")
            })
        })
    })
}

/// True when a request asks to bypass caches: `Cache-Control: max-age=0` or `no-cache`.
pub fn asks_refresh(headers: &HeaderMap) -> bool {
    headers.get_all(CACHE_CONTROL).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|directive| {
                let directive = directive.trim();
                directive.eq_ignore_ascii_case("no-cache")
                    || directive.split_once('=').is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("max-age")
                            && value.trim().trim_matches('"') == "0"
                    })
            })
        })
    })
}
