//! Phase 2, route: which API, stage and route serve this request.

use http::request::Parts;

use super::{Flow, GatewayError, RequestContext};
use crate::generation::Generation;
use crate::router::RouteMiss;

/// Finds the route; a miss is a 404, or a 405 when the path exists for other methods.
pub fn resolve<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    parts: &Parts,
) -> Result<Flow, GatewayError> {
    let path = parts.uri.path();
    if !gateway.docs.is_empty()
        && let Some((site, page)) = gateway.docs.find(path)
    {
        if let Some(policy) = &site.policy {
            super::policy::check_policy(ctx, parts, policy, &site.api, &site.stage)?;
        }
        return Ok(Flow::Respond(site.answer(&parts.method, page)));
    }
    match gateway.router.lookup(&parts.method, path) {
        Ok(found) => {
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
        Err(RouteMiss::NotFound) => Err(GatewayError::NotFound),
        Err(RouteMiss::MethodNotAllowed(allow)) => Err(GatewayError::MethodNotAllowed { allow }),
    }
}
