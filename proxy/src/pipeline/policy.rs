//! Who is calling, and whether the route's resource policy lets them in.
//!
//! Before routing, [`resolve_source`] decides the request's source IP: the connection's peer,
//! or, when the peer is one of the node's `trusted_proxies`, the client `X-Forwarded-For` names
//! (rightmost untrusted entry; see `ip_policy::TrustedProxies::client_ip`). The access log and
//! plugins see that address. Phase 4, [`check`], refuses a source the route's `policy` (its
//! stage's, else its API's) denies: 403 with API Gateway's resource-policy message.
//!
//! The origin still gets the connection's peer appended to `X-Forwarded-For`, as any proxy
//! adds the address it heard from.

use std::net::IpAddr;

use http::HeaderValue;
use http::request::Parts;

use super::{GatewayError, RequestContext};
use crate::auth::ip_policy::{IpPolicy, PolicyDenial};
use crate::generation::Generation;

/// The client behind trusted proxies, when it is not the connection's peer.
#[derive(Debug, Clone)]
pub struct ForwardedClient {
    pub ip: IpAddr,
    /// `ip` as text, for the access log and plugins.
    pub text: HeaderValue,
}

impl RequestContext<'_> {
    /// The request's source IP (unmapped): the forwarded client, else the connection's peer.
    pub fn source_ip(&self) -> IpAddr {
        match &self.forwarded_client {
            Some(client) => client.ip,
            None => self.conn.remote.ip().to_canonical(),
        }
    }

    /// [`Self::source_ip`] as text.
    pub fn source_ip_text(&self) -> &HeaderValue {
        match &self.forwarded_client {
            Some(client) => &client.text,
            None => &self.conn.client_ip,
        }
    }
}

/// Sets `ctx.forwarded_client` when the peer is a trusted proxy that names another client.
/// Costs nothing when the node trusts no proxy.
pub fn resolve_source(gateway: &Generation, ctx: &mut RequestContext<'_>, parts: &Parts) {
    if gateway.trusted_proxies.0.is_empty() {
        return;
    }
    let peer = ctx.conn.remote.ip().to_canonical();
    ctx.forwarded_client = gateway
        .trusted_proxies
        .client_ip(peer, &parts.headers)
        .and_then(|ip| {
            let text = HeaderValue::from_str(&ip.to_string()).ok()?;
            Some(ForwardedClient { ip, text })
        });
}

/// Phase 4: refuses a source IP the route's policy denies.
pub fn check(ctx: &RequestContext<'_>, parts: &Parts) -> Result<(), GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let Some(policy) = route.access.ip_policy.as_deref() else {
        return Ok(());
    };
    check_policy(ctx, parts, policy, &route.labels.api, &route.labels.stage)
}

/// `policy` for a request to `api`'s `stage` (a route's, or a stage's docs page).
pub fn check_policy(
    ctx: &RequestContext<'_>,
    parts: &Parts,
    policy: &IpPolicy,
    api: &str,
    stage: &str,
) -> Result<(), GatewayError> {
    let source_ip = ctx.source_ip();
    let Err(denial) = policy.check(source_ip) else {
        return Ok(());
    };
    Err(GatewayError::ResourcePolicy {
        source_ip,
        explicit: denial == PolicyDenial::Explicit,
        resource: resource_arn(api, stage, parts.method.as_str(), parts.uri.path()),
    })
}

/// The resource API Gateway names in a denial: `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/
/// METHOD/PATH`. Edgeway has no region or account; it writes `edgeway` and `local` there, so
/// clients that match on the ARN's shape keep working.
fn resource_arn(api: &str, stage: &str, method: &str, path: &str) -> String {
    let rest = path
        .strip_prefix('/')
        .unwrap_or(path)
        .strip_prefix(stage)
        .unwrap_or(path)
        .trim_start_matches('/');
    format!("arn:aws:execute-api:edgeway:local:{api}/{stage}/{method}/{rest}")
}

#[cfg(test)]
mod tests {
    use super::resource_arn;

    #[test]
    fn arn_names_api_stage_method_and_path() {
        assert_eq!(
            resource_arn("petstore", "prod", "GET", "/prod/pets/7"),
            "arn:aws:execute-api:edgeway:local:petstore/prod/GET/pets/7"
        );
        assert_eq!(
            resource_arn("petstore", "prod", "POST", "/prod"),
            "arn:aws:execute-api:edgeway:local:petstore/prod/POST/"
        );
    }
}
