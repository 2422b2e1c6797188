//! Phase 5 (continued), API key: on a route with `api_key_required`, the request must carry an
//! enabled key (in `x-api-key`, or as the authorizer's usage key) whose usage plan covers the
//! route's api and stage. Anything else is 403 `{"message":"Forbidden"}`, as in API Gateway.

use http::HeaderName;
use http::request::Parts;

use super::{GatewayError, RequestContext};
use crate::auth::keys::ApiKeySource;
use crate::generation::Generation;

/// Where clients send their API key.
pub static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Checks the route's API key requirement; sets `ctx.api_key` and `ctx.plan` on success.
pub fn check<'g>(
    gateway: &Generation,
    ctx: &mut RequestContext<'g>,
    parts: &Parts,
) -> Result<(), GatewayError> {
    let Some(required) = ctx.route.and_then(|r| r.access.api_key.as_ref()) else {
        return Ok(());
    };
    let value = match required.source {
        ApiKeySource::Header => parts.headers.get(&X_API_KEY).and_then(|v| v.to_str().ok()),
        ApiKeySource::Authorizer => ctx.usage_key.as_deref(),
    };
    let key = value
        .and_then(|v| gateway.keys.lookup(v))
        .filter(|k| k.enabled)
        .ok_or(GatewayError::InvalidApiKey)?;
    let plan = key
        .plan
        .as_deref()
        .and_then(|plan| required.plans.iter().find(|p| *p.name == *plan))
        .ok_or(GatewayError::InvalidApiKey)?;
    ctx.api_key = Some(key);
    ctx.plan = Some(plan);
    Ok(())
}
