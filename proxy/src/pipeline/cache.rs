//! Phases 8 and 12: the stage cache. `lookup` runs after validation: a fresh entry answers
//! at once; otherwise the request goes on with a `PendingStore`, and `store` attaches the
//! cache fill to the response on its way back.
//!
//! A client's `Cache-Control: max-age=0` (or `no-cache`) refetches and replaces the entry
//! only when the stage's invalidation policy allows that client; otherwise the stage's
//! `unauthorized_strategy` decides (403, or ignore the header with or without saying so).

use http::request::Parts;
use http::{HeaderName, HeaderValue, Response};

use super::{GatewayError, RequestContext};
use crate::body::ResponseBody;
use crate::cache::UnauthorizedStrategy;
use crate::cache::{Fill, Lookup, StageCache, Storable, X_CACHE, asks_refresh};
use crate::generation::RouteCache;

/// Set when a client asked to invalidate and was not allowed to (`succeed_with_response_header`).
pub static X_CACHE_INVALIDATION: HeaderName = HeaderName::from_static("x-cache-invalidation");

/// What the cache made of a request.
#[derive(Debug)]
// As `Flow`: a hit is answered at once; boxing it would allocate on the hottest path.
#[allow(clippy::large_enum_variant)]
pub enum CacheLookup<'g> {
    /// The route does not cache this request.
    NotCached,
    /// Answered from the cache.
    Hit(Response<ResponseBody>),
    /// Go to the origin, then hand the response to [`store`].
    Miss(PendingStore<'g>),
}

/// A miss on its way to the origin.
#[derive(Debug)]
pub struct PendingStore<'g> {
    route: &'g RouteCache,
    fill: Fill,
    invalidation_denied: bool,
}

/// Looks the request up in its stage's cache.
pub async fn lookup<'g>(
    ctx: &RequestContext<'g>,
    parts: &Parts,
) -> Result<CacheLookup<'g>, GatewayError> {
    let Some(target) = ctx.route else {
        return Ok(CacheLookup::NotCached);
    };
    let Some(route) = target.cache.as_ref().filter(|c| c.caches(&parts.method)) else {
        return Ok(CacheLookup::NotCached);
    };
    let key = {
        let path_values = ctx.param_values(parts.uri.path());
        StageCache::key(
            &parts.method,
            &route.route,
            route.revision,
            &route.key,
            parts,
            &path_values,
        )
    };
    let mut invalidation_denied = false;
    if asks_refresh(&parts.headers) {
        let principal = ctx.principal.as_deref().map(|p| p.id.as_str());
        if route
            .invalidation
            .allows(principal, ctx.usage_key.as_deref())
        {
            return Ok(CacheLookup::Miss(PendingStore {
                route,
                fill: route.store.refresh(key),
                invalidation_denied,
            }));
        }
        match route.invalidation.unauthorized {
            UnauthorizedStrategy::FailWith403 => return Err(GatewayError::CacheInvalidationDenied),
            UnauthorizedStrategy::SucceedWithResponseHeader => invalidation_denied = true,
            UnauthorizedStrategy::SucceedWithoutResponseHeader => {}
        }
    }
    Ok(
        match route.store.lookup(key, target.integration.timeout).await {
            Lookup::Hit(entry, age) => {
                let mut response = entry.to_response(age);
                if invalidation_denied {
                    mark_denied(&mut response);
                }
                CacheLookup::Hit(response)
            }
            Lookup::Miss(fill) => CacheLookup::Miss(PendingStore {
                route,
                fill,
                invalidation_denied,
            }),
        },
    )
}

/// Marks a miss's response and, if it may be stored, collects its body into the cache as
/// it streams to the client.
pub fn store(
    pending: PendingStore<'_>,
    mut response: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let route = pending.route;
    let rules = Storable {
        statuses: route.statuses.as_deref(),
        ignore_cache_control: route.ignore_cache_control,
        max_entry_bytes: route.max_entry_bytes,
    };
    if let Some(fill) = pending.fill.begin(
        response.status(),
        response.headers(),
        &rules,
        route.ttl,
        route.key.clone(),
    ) {
        response.body_mut().fill_cache(Box::new(fill));
    }
    response
        .headers_mut()
        .insert(X_CACHE.clone(), HeaderValue::from_static("miss"));
    if pending.invalidation_denied {
        mark_denied(&mut response);
    }
    response
}

fn mark_denied(response: &mut Response<ResponseBody>) {
    response.headers_mut().insert(
        X_CACHE_INVALIDATION.clone(),
        HeaderValue::from_static("denied"),
    );
}
