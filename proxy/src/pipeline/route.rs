//! Phase 2, route: which API, stage and route serve this request.

use http::request::Parts;

use super::domain::Address;
use super::{Flow, GatewayError, RequestContext};
use crate::generation::{CanarySplit, Generation, RouteTarget};
use crate::router::{RouteMatch, RouteMiss};

/// Finds the route; a miss is a 404, or a 405 when the path exists for other methods.
pub fn resolve<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    parts: &Parts,
) -> Result<Flow, GatewayError> {
    let path = parts.uri.path();
    if ctx.domain.is_none()
        && !gateway.docs.is_empty()
        && let Some((site, page)) = gateway.docs.find(path)
    {
        if let Some(policy) = &site.policy {
            super::policy::check_policy(ctx, parts, policy, &site.api, &site.stage)?;
        }
        return Ok(Flow::Respond(site.answer(&parts.method, page)));
    }
    let at = ctx.address(path);
    let found = match at.lookup(&gateway.router, &parts.method) {
        Ok(found) => match &found.route.scope.canary {
            Some(split) if split.to_canary(&parts.headers) => {
                canary_route(gateway, split, parts, at)?
            }
            _ => found,
        },
        Err(miss) => {
            match (!gateway.canaries.is_empty())
                .then(|| added_by_a_canary(gateway, parts, at))
                .flatten()
            {
                Some(found) => found,
                None => return Err(miss_error(miss)),
            }
        }
    };
    ctx.route = Some(found.route);
    let base = path.as_ptr() as usize;
    ctx.params = found
        .params
        .iter()
        .map(|value| {
            let start = value.as_ptr() as usize - base;
            (start, start + value.len())
        })
        .collect();
    Ok(Flow::Continue)
}

fn miss_error(miss: RouteMiss) -> GatewayError {
    match miss {
        RouteMiss::NotFound => GatewayError::NotFound,
        RouteMiss::MethodNotAllowed(allow) => GatewayError::MethodNotAllowed { allow },
    }
}

/// The canary's route for a request the split sent there: its API's, or none (a route the
/// canary's deployment does not have is not served to its share).
fn canary_route<'g, 'p>(
    gateway: &'g Generation,
    split: &CanarySplit,
    parts: &Parts,
    at: Address<'p>,
) -> Result<RouteMatch<'g, 'p, RouteTarget>, GatewayError> {
    match at.lookup(&gateway.canary_router, &parts.method) {
        Ok(found) if *found.route.labels.api == *split.api => Ok(found),
        Ok(_) => Err(GatewayError::NotFound),
        Err(miss) => Err(miss_error(miss)),
    }
}

/// A route only a canary has (one its deployment adds), for the requests sent to it.
fn added_by_a_canary<'g, 'p>(
    gateway: &'g Generation,
    parts: &Parts,
    at: Address<'p>,
) -> Option<RouteMatch<'g, 'p, RouteTarget>> {
    gateway
        .canaries
        .get(at.stage)?
        .iter()
        .filter(|split| split.to_canary(&parts.headers))
        .find_map(|split| canary_route(gateway, split, parts, at).ok())
}
