//! Phase 6, throttle and quota: the route's shared buckets (route, stage, account) and, for a
//! request with an API key, its usage plan's per-key bucket and quota. Over a rate: 429
//! `{"message":"Too Many Requests"}`; over a quota: 429 `{"message":"Limit Exceeded"}`; both
//! with `Retry-After`, `RateLimit` and `RateLimit-Policy`. Admitted requests with a key carry
//! `RateLimit` and `RateLimit-Policy` for the key's limits.

use http::HeaderMap;
use tokio::time::Instant;

use super::error::{RATELIMIT, RATELIMIT_POLICY};
use super::{GatewayError, RequestContext};
use crate::generation::Generation;
use crate::throttle::{Caller, RateLimitHeaders, wall_secs};

/// The fast path's check, for a route without API keys: its shared buckets only.
pub fn check_shared(ctx: &RequestContext<'_>) -> Result<(), GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    crate::throttle::take_shared(&route.throttle, Instant::now()).map_err(GatewayError::Throttled)
}

/// Admits the request or refuses it with 429.
pub async fn check(gateway: &Generation, ctx: &mut RequestContext<'_>) -> Result<(), GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let key = match (&ctx.api_key, ctx.plan) {
        (Some(key), Some(plan)) => Some((
            Caller {
                slot: key.slot,
                key_id: &key.id,
                created: key.created,
            },
            plan,
        )),
        _ => None,
    };
    // The wall clock is read only when a quota or a usage count needs the day.
    let wall = if key.is_some() { wall_secs() } else { 0 };
    ctx.rate_limit = gateway
        .limiter
        .check(&route.throttle, key, Instant::now(), wall)
        .await
        .map_err(GatewayError::Throttled)?;
    Ok(())
}

/// Puts an admitted request's `RateLimit` headers on its response.
pub fn add_headers(headers: &mut HeaderMap, limits: RateLimitHeaders) {
    headers.insert(RATELIMIT.clone(), limits.state());
    headers.insert(RATELIMIT_POLICY.clone(), limits.policy);
}
