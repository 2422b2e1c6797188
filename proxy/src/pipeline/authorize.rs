//! Phase 5, authorize: the route's authorizer decides who is calling.
//!
//! Identity sources are read first: a missing one is 401 and the plugin is not called. The
//! decision comes from the authorizer's result cache or from its plugin: allow continues
//! with the principal and context set on the request (and sent to the origin in the
//! configured headers), deny is 403 with the plugin's message, unauthorized is 401. A plugin
//! failure is 500: authorizers fail closed.

use std::sync::Arc;

use http::HeaderValue;
use http::request::Parts;

use super::{Flow, GatewayError, PluginPhase, RequestContext, plugin_request};
use crate::auth::PluginAuthorizer;
use crate::plugins::bindings::Decision;
use crate::plugins::convert;

/// Runs the route's authorizer, if it has one.
pub async fn check(ctx: &mut RequestContext<'_>, parts: &mut Parts) -> Result<Flow, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(Flow::Continue);
    };
    // Whatever the client sent in the headers that carry a principal is not to be trusted, on
    // any route of the API.
    for name in route.principal_headers.iter() {
        parts.headers.remove(name);
    }
    let Some(authorizer) = &route.auth else {
        return Ok(Flow::Continue);
    };

    let params = ctx.named_params(parts.uri.path());
    let Some(identity) = authorizer.identity(parts, &params, &route.stage_variables) else {
        return Err(GatewayError::Unauthorized);
    };
    let decision = match authorizer.cached(&identity) {
        Some(decision) => decision,
        None => {
            let request = plugin_request(ctx, parts, &authorizer.plugin.spec.headers, None);
            let decision = authorizer
                .plugin
                .authorize(route.isolation, &identity, &request)
                .await
                .map_err(|e| GatewayError::Plugin(PluginPhase::Authorizer, e))?;
            let decision = Arc::new(decision);
            authorizer.remember(&identity, &decision);
            decision
        }
    };
    match &*decision {
        Decision::Allow(allow) => {
            set_header(
                parts,
                &authorizer.config.principal_header,
                &allow.principal_id,
                authorizer,
            )?;
            for (key, header) in &authorizer.config.context_headers {
                if let Some((_, value)) = allow.context.iter().find(|(k, _)| k == key) {
                    set_header(parts, header, value, authorizer)?;
                }
            }
            ctx.principal = Some(Arc::new(convert::principal(
                &allow.principal_id,
                &allow.context,
            )));
            ctx.usage_key = allow.usage_key.clone();
            Ok(Flow::Continue)
        }
        Decision::Deny(message) => Err(GatewayError::AccessDenied(message.clone())),
        Decision::Unauthorized => Err(GatewayError::Unauthorized),
    }
}

fn set_header(
    parts: &mut Parts,
    name: &http::HeaderName,
    value: &str,
    authorizer: &PluginAuthorizer,
) -> Result<(), GatewayError> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        GatewayError::Plugin(
            PluginPhase::Authorizer,
            crate::plugins::PluginError::BadOutput {
                plugin: authorizer.plugin.spec.name.clone(),
                message: format!("value for header {name} is not a valid header value"),
            },
        )
    })?;
    parts.headers.insert(name.clone(), value);
    Ok(())
}
