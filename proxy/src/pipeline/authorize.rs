//! Phase 5, authorize: the route's authorizer decides who is calling.
//!
//! Whatever the client sent in the headers that carry a principal is removed first, on every
//! route of the API. Then, by kind of authorizer:
//! - plugin: identity sources are read first: a missing one is 401 and the plugin is not
//!   called. The decision comes from the authorizer's result cache or from its plugin: allow
//!   continues with the principal and context set on the request (and sent to the origin in
//!   the configured headers), deny is 403 with the plugin's message, unauthorized is 401. A
//!   plugin failure is 500: authorizers fail closed.
//! - lambda: as a plugin, but the function is given API Gateway's TOKEN or REQUEST input and
//!   returns an IAM policy, cached per identity and evaluated against each request's method
//!   ARN: an explicit or implicit deny is 403, a function failing with `Unauthorized` 401,
//!   any other failure or a malformed policy 500.
//! - jwt: the bearer token is verified (401 with `WWW-Authenticate` when missing or not
//!   valid), then the route's scopes (403 `insufficient_scope` when the token has none of
//!   them). The principal is `sub`; every claim is in its context; configured claims go to
//!   the origin in their headers.
//! - sigv4: the signature is checked against the request as received, before anything here
//!   changes it, buffering the body when the signature covers it; any failure is 403 with the
//!   verifier's message. The principal is the access key id, its name in the context; the
//!   `Authorization` header does not reach the origin, as in API Gateway.

use std::sync::Arc;

use http::HeaderValue;
use http::header::AUTHORIZATION;
use http::request::Parts;

use super::{Flow, GatewayError, InBody, PluginPhase, RequestContext, plugin_request};
use crate::auth::IdentitySource;
use crate::auth::sigv4::{Payload, SecretLookup};
use crate::auth::{
    ApiAuthorizer, JwtAuthorizer, LambdaAuthorizer, PluginAuthorizer, RouteAuth, SigV4Authorizer,
};
use crate::lambda::{AuthorizerInput, Verdict};
use crate::plugins::PluginError;
use crate::plugins::bindings::{Decision, Principal};
use crate::plugins::convert;

/// Runs the route's authorizer, if it has one. `body` is buffered (up to `limit`) only when a
/// SigV4 signature covers it.
pub async fn check(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    body: &mut InBody,
    limit: u64,
) -> Result<Flow, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(Flow::Continue);
    };
    let Some(auth) = &route.access.auth else {
        strip_principal_headers(route, parts);
        return Ok(Flow::Continue);
    };
    match &*auth.authorizer {
        ApiAuthorizer::Plugin(authorizer) => {
            strip_principal_headers(route, parts);
            plugin(ctx, parts, authorizer).await
        }
        ApiAuthorizer::Lambda(authorizer) => {
            strip_principal_headers(route, parts);
            lambda(ctx, parts, authorizer).await
        }
        ApiAuthorizer::Jwt(authorizer) => {
            strip_principal_headers(route, parts);
            jwt(ctx, parts, authorizer, auth).await
        }
        ApiAuthorizer::SigV4(authorizer) => {
            // A signature covers the request as the client sent it: check it before anything
            // here changes the request.
            let principal = sigv4(ctx, parts, body, limit, authorizer).await?;
            strip_principal_headers(route, parts);
            parts.headers.remove(AUTHORIZATION);
            set_principal(ctx, parts, &authorizer.config, principal)?;
            Ok(Flow::Continue)
        }
    }
}

/// Whatever the client sent in the headers that carry a principal is not to be trusted, on any
/// route of the API.
fn strip_principal_headers(route: &crate::generation::RouteTarget, parts: &mut Parts) {
    for name in route.access.principal_headers.iter() {
        parts.headers.remove(name);
    }
}

async fn plugin(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    authorizer: &PluginAuthorizer,
) -> Result<Flow, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(Flow::Continue);
    };
    let params = ctx.named_params(parts.uri.path());
    let Some(identity) = authorizer.identity(parts, &params, &route.scope.stage_variables) else {
        return Err(GatewayError::Unauthorized);
    };
    let decision = match authorizer.cached(&identity) {
        Some(decision) => {
            route.labels.metrics.authorizer_cache_hit();
            decision
        }
        None => {
            let request = plugin_request(ctx, parts, &authorizer.plugin.spec.headers, None);
            let decision = authorizer
                .plugin
                .authorize(route.isolation, &identity, &request)
                .await
                .map_err(|e| GatewayError::Plugin(PluginPhase::Authorizer, e))?;
            let decision = Arc::new(decision);
            if !matches!(*decision, Decision::Unauthorized) {
                authorizer.remember(&identity, &decision);
            }
            decision
        }
    };
    match &*decision {
        Decision::Allow(allow) => {
            let given = Allowed {
                principal_id: &allow.principal_id,
                context: &allow.context,
                usage_key: allow.usage_key.as_deref(),
            };
            given.apply(ctx, parts, &authorizer.config, &authorizer.plugin)?;
            Ok(Flow::Continue)
        }
        Decision::Deny(message) => Err(GatewayError::AccessDenied(message.clone())),
        Decision::Unauthorized => Err(GatewayError::Unauthorized),
    }
}

/// A Lambda authorizer: its policy for this identity (cached, or from the function given the
/// TOKEN or REQUEST input), evaluated against the request's method ARN.
async fn lambda(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    authorizer: &LambdaAuthorizer,
) -> Result<Flow, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(Flow::Continue);
    };
    let calls = &authorizer.calls;
    let params = ctx.named_params(parts.uri.path());
    let Some(identity) = calls.identity(parts, &params, &route.scope.stage_variables) else {
        return Err(GatewayError::Unauthorized);
    };
    let route_path = format!("/{}", ctx.address(parts.uri.path()).rest);
    let method_arn = authorizer.settings.arn.method_arn(
        &route.labels.api,
        &route.labels.stage,
        parts.method.as_str(),
        &route_path,
    );
    let grant = match calls.cached(&identity) {
        Some(grant) => {
            route.labels.metrics.authorizer_cache_hit();
            grant
        }
        None => {
            let event = match authorizer.settings.input {
                AuthorizerInput::Token => {
                    let token = identity.first().map_or("", |(_, v)| v.as_str());
                    crate::lambda::token_event(token, &method_arn)
                }
                AuthorizerInput::Request => {
                    let event_parts = super::lambda::EventParts::of(ctx, parts);
                    crate::lambda::request_event(&event_parts.request(ctx, parts, &[]), &method_arn)
                }
            };
            let request_id = ctx.request_id.to_str().unwrap_or_default();
            let output = match calls
                .plugin
                .invoke(route.isolation, &event.to_string(), request_id)
                .await
            {
                Ok(output) => output,
                // API Gateway's convention: a function failing with exactly "Unauthorized" is
                // a 401, any other failure a 500.
                Err(PluginError::Returned { message, .. }) if message == "Unauthorized" => {
                    return Err(GatewayError::Unauthorized);
                }
                Err(e) => return Err(GatewayError::Plugin(PluginPhase::Authorizer, e)),
            };
            let grant = crate::lambda::parse_grant(output.as_bytes()).map_err(|why| {
                GatewayError::Plugin(
                    PluginPhase::Authorizer,
                    PluginError::BadOutput {
                        plugin: calls.plugin.spec.name.clone(),
                        message: format!("not an authorizer response: {why}"),
                    },
                )
            })?;
            let grant = Arc::new(grant);
            calls.remember(&identity, &grant);
            grant
        }
    };
    match grant.policy.evaluate(&method_arn) {
        Verdict::Allow => {}
        Verdict::ExplicitDeny => {
            return Err(GatewayError::AccessDenied(
                "User is not authorized to access this resource with an explicit deny".into(),
            ));
        }
        Verdict::ImplicitDeny => {
            return Err(GatewayError::AccessDenied(
                "User is not authorized to access this resource".into(),
            ));
        }
    }
    let given = Allowed {
        principal_id: &grant.principal_id,
        context: &grant.context,
        usage_key: grant.usage_key.as_deref(),
    };
    given.apply(ctx, parts, &calls.config, &calls.plugin)?;
    Ok(Flow::Continue)
}

/// What a plugin or Lambda authorizer allowed the request as.
struct Allowed<'a> {
    principal_id: &'a str,
    context: &'a [(String, String)],
    usage_key: Option<&'a str>,
}

impl Allowed<'_> {
    /// Sends the principal and the configured context keys to the origin in their headers,
    /// and keeps the principal and usage key for later phases.
    fn apply(
        &self,
        ctx: &mut RequestContext<'_>,
        parts: &mut Parts,
        config: &crate::auth::Authorizer,
        plugin: &crate::plugins::Plugin,
    ) -> Result<(), GatewayError> {
        set_header(parts, &config.principal_header, self.principal_id, plugin)?;
        for (key, header) in &config.context_headers {
            if let Some((_, value)) = self.context.iter().find(|(k, _)| k == key) {
                set_header(parts, header, value, plugin)?;
            }
        }
        ctx.principal = Some(Arc::new(convert::principal(
            self.principal_id,
            self.context,
        )));
        ctx.usage_key = self.usage_key.map(str::to_owned);
        Ok(())
    }
}

async fn jwt(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    authorizer: &JwtAuthorizer,
    auth: &RouteAuth,
) -> Result<Flow, GatewayError> {
    // One identity source, `header.authorization` unless configured (see config validation).
    let source = authorizer.config.identity_source.first();
    let params = match source {
        Some(IdentitySource::Path(_)) => ctx.named_params(parts.uri.path()),
        _ => Vec::new(),
    };
    let stage_variables = ctx.route.map_or(&[][..], |r| &r.scope.stage_variables[..]);
    let token = source.and_then(|s| s.read(parts, &params, stage_variables));
    let claims = authorizer
        .verifier
        .verify(token.as_deref().unwrap_or_default())
        .await
        .map_err(|e| {
            if let crate::auth::jwt::JwtError::JwksUnavailable(why) = &e {
                tracing::warn!(
                    authorizer = authorizer.config.name,
                    error = &**why,
                    "JWT refused: the issuer's keys are unavailable"
                );
            }
            GatewayError::InvalidToken(e)
        })?;
    if !claims.has_scopes(&auth.scopes) {
        return Err(GatewayError::InsufficientScope(
            auth.insufficient_scope.clone(),
        ));
    }
    let id = claims
        .sub()
        .or_else(|| claims.get("client_id").and_then(|v| v.as_str()))
        .unwrap_or_default()
        .to_owned();
    let context: Vec<(String, String)> = claims
        .as_map()
        .keys()
        .filter_map(|name| Some((name.clone(), claims.text(name)?.into_owned())))
        .collect();
    for (claim, header) in &authorizer.config.context_headers {
        if let Some(text) = claims.text(claim) {
            insert_claim(parts, header, &text, &authorizer.config.name);
        }
    }
    set_principal(ctx, parts, &authorizer.config, Principal { id, context })?;
    Ok(Flow::Continue)
}

/// A verified SigV4 signature's principal: the access key id, with its name in the context.
async fn sigv4(
    ctx: &RequestContext<'_>,
    parts: &Parts,
    body: &mut InBody,
    limit: u64,
    authorizer: &SigV4Authorizer,
) -> Result<Principal, GatewayError> {
    let keys = &*authorizer.access_keys;
    let pending = authorizer
        .verifier
        .begin(parts, keys, ctx.received_at)
        .map_err(GatewayError::Signature)?;
    let signed = if pending.needs_body() {
        let bytes = body.buffer(limit).await?;
        pending.finish(Payload::Buffered(&bytes))
    } else {
        pending.finish(Payload::NotBuffered)
    }
    .map_err(GatewayError::Signature)?;
    // A key deleted or disabled while its request was checked is refused.
    let key = keys
        .get(&signed.access_key_id)
        .filter(|_| keys.secret(&signed.access_key_id).is_some())
        .ok_or_else(|| {
            GatewayError::Signature(crate::auth::sigv4::SigV4Error::UnknownAccessKey {
                access_key_id: signed.access_key_id.clone(),
            })
        })?;
    Ok(Principal {
        context: vec![
            ("access_key_id".to_owned(), key.id.clone()),
            ("name".to_owned(), key.name),
            ("region".to_owned(), signed.scope.region),
        ],
        id: key.id,
    })
}

/// Sends the principal id to the origin and keeps the principal for later phases.
fn set_principal(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    config: &crate::auth::Authorizer,
    principal: Principal,
) -> Result<(), GatewayError> {
    if !principal.id.is_empty() {
        // A token's `sub` may be any text; UTF-8 goes as it is, control characters fail.
        let value = HeaderValue::from_bytes(principal.id.as_bytes()).map_err(|_| {
            GatewayError::Internal(format!(
                "authorizer {}: the principal id is not a valid header value",
                config.name
            ))
        })?;
        parts.headers.insert(config.principal_header.clone(), value);
    }
    ctx.principal = Some(Arc::new(principal));
    Ok(())
}

/// A claim's text in its header. A claim a header cannot carry (control characters) is left
/// out, with a warning: the issuer signed it, but the origin would not get it intact.
fn insert_claim(parts: &mut Parts, header: &http::HeaderName, text: &str, authorizer: &str) {
    match HeaderValue::from_bytes(text.as_bytes()) {
        Ok(value) => {
            parts.headers.insert(header.clone(), value);
        }
        Err(_) => tracing::warn!(
            authorizer,
            header = header.as_str(),
            "a token's claim is not a valid header value; the header is left out"
        ),
    }
}

fn set_header(
    parts: &mut Parts,
    name: &http::HeaderName,
    value: &str,
    plugin: &crate::plugins::Plugin,
) -> Result<(), GatewayError> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        GatewayError::Plugin(
            PluginPhase::Authorizer,
            crate::plugins::PluginError::BadOutput {
                plugin: plugin.spec.name.clone(),
                message: format!("value for header {name} is not a valid header value"),
            },
        )
    })?;
    parts.headers.insert(name.clone(), value);
    Ok(())
}
