//! Before routing: a request on a custom domain is given its API's stage and route path by the
//! domain's base path mappings (`crate::domains`); any other request is addressed as
//! `/{stage}/{route path}`. [`Address`] is the result, which routing and CORS preflights read.

use http::header::HOST;
use http::request::Parts;

use super::{GatewayError, RequestContext};
use crate::domains::{BasePathMapping, Domain};
use crate::generation::{Generation, RouteTarget};
use crate::router::{RouteMatch, RouteMiss, Router, split_stage};

/// A request on a custom domain: the domain, and the mapping that covers its path (none: the
/// request is refused before routing).
#[derive(Debug, Clone, Copy)]
pub struct DomainRoute<'g> {
    pub domain: &'g Domain,
    pub mapping: Option<&'g BasePathMapping>,
    /// The route path's byte range in the request path (after the base path).
    rest: (usize, usize),
}

/// Where a request's path points.
#[derive(Debug, Clone, Copy)]
pub struct Address<'a> {
    pub stage: &'a str,
    /// The route path without its leading slash and one trailing slash (`pets/7`).
    pub rest: &'a str,
    /// The API a domain's mapping names: only its routes serve the request.
    pub api: Option<&'a str>,
}

/// Sets `ctx.domain` for a request whose `Host` is a custom domain; refuses a source its
/// private domain's policy does not allow, and a path no mapping covers (403). Costs nothing
/// when the config has no domains.
pub fn resolve<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    parts: &Parts,
) -> Result<(), GatewayError> {
    if gateway.domains.is_empty() {
        return Ok(());
    }
    let Some(domain) = parts
        .headers
        .get(HOST)
        .and_then(|host| gateway.domains.find(host.as_bytes()))
    else {
        return Ok(());
    };
    let path = parts.uri.path();
    let mapped = domain.map(path);
    let rest = mapped.map_or((0, 0), |m| {
        let start = m.rest.as_ptr() as usize - path.as_ptr() as usize;
        (start, start + m.rest.len())
    });
    ctx.domain = Some(DomainRoute {
        domain,
        mapping: mapped.map(|m| m.mapping),
        rest,
    });
    if let Some(policy) = &domain.policy {
        let (api, stage) = mapped.map_or((domain.name.as_str(), ""), |m| {
            (m.mapping.api.as_str(), m.mapping.stage.as_str())
        });
        super::policy::check_policy(ctx, parts, policy, api, stage)?;
    }
    if mapped.is_none() {
        return Err(GatewayError::UnmappedPath(domain.name.clone()));
    }
    Ok(())
}

impl<'g> RequestContext<'g> {
    /// Where `path` (this request's path) points: by its domain's mapping, else by its first
    /// segment.
    pub fn address<'a>(&self, path: &'a str) -> Address<'a>
    where
        'g: 'a,
    {
        match self.domain {
            Some(DomainRoute { mapping, rest, .. }) => Address {
                // An unmapped request never routes; its empty stage names none.
                stage: mapping.map_or("", |m| &m.stage),
                rest: path.get(rest.0..rest.1).unwrap_or_default(),
                api: Some(mapping.map_or("", |m| &m.api)),
            },
            None => {
                let (stage, rest) = split_stage(path);
                Address {
                    stage,
                    rest,
                    api: None,
                }
            }
        }
    }
}

impl<'a> Address<'a> {
    /// Looks the address up in `router`; a route of another API than the domain maps is not
    /// found.
    pub fn lookup<'r>(
        &self,
        router: &'r Router<RouteTarget>,
        method: &http::Method,
    ) -> Result<RouteMatch<'r, 'a, RouteTarget>, RouteMiss> {
        let found = router.lookup_at(method, self.stage, self.rest)?;
        match self.api {
            Some(api) if *found.route.labels.api != *api => Err(RouteMiss::NotFound),
            _ => Ok(found),
        }
    }
}
