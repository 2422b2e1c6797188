//! `function` integrations with an `aws-proxy-*` payload: the request becomes API Gateway's
//! proxy event for a `lambda` plugin, and what the plugin returns is checked as API Gateway
//! checks a Lambda's answer. A function that throws or answers with a malformed response is
//! 502 `{"message": "Internal server error"}`, logged with why.

use http::request::Parts;
use http::{Response, Version};

use super::{GatewayError, InBody, PluginPhase, RequestContext};
use crate::body::ResponseBody;
use crate::generation::Generation;
use crate::lambda::{EventAuthorizer, EventRequest, ProxyFormat, WebSocketContext};
use crate::plugins::{Isolation, Plugin, PluginError};

/// Calls `plugin` with the request as a `format` event.
pub async fn call(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    plugin: &Plugin,
    format: ProxyFormat,
    isolation: Isolation,
    parts: &Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let body = body.buffer(gateway.limits.max_body_bytes).await?;
    let event_parts = EventParts::of(ctx, parts);
    let request = event_parts.request(ctx, parts, &body);
    // A WebSocket API's event has its own shape, whatever the payload version.
    let event = match ctx.websocket.as_deref() {
        Some(ws) => crate::lambda::event_websocket(
            &request,
            &WebSocketContext {
                event_type: ws.event_type,
                connection_id: &ws.connection_id,
                message_id: ws.message_id.as_deref(),
                connected_at_ms: ws.connected_at_ms,
            },
        ),
        None => format.event(&request),
    }
    .to_string();
    let request_id = ctx.request_id.to_str().unwrap_or_default();
    let started = std::time::Instant::now();
    let outcome = plugin.invoke(isolation, &event, request_id).await;
    ctx.integration_latency = Some(started.elapsed());
    let output = outcome.map_err(|e| GatewayError::Plugin(PluginPhase::Lambda, e))?;
    let answer = format.parse(output.as_bytes()).map_err(|why| {
        GatewayError::Plugin(
            PluginPhase::Lambda,
            PluginError::BadOutput {
                plugin: plugin.spec.name.clone(),
                message: format!("malformed Lambda proxy response: {why}"),
            },
        )
    })?;
    ctx.integration_status = Some(answer.status.as_u16());
    let mut response = Response::new(ResponseBody::full(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    crate::upstream::headers::rewrite_response(headers, &ctx.request_id);
    Ok(response)
}

/// What an event borrows that the request does not hold as it is: the route path after the
/// stage or base path, and the path parameters decoded.
pub(super) struct EventParts {
    route_path: String,
    path_parameters: Vec<(String, String)>,
}

impl EventParts {
    pub(super) fn of(ctx: &RequestContext<'_>, parts: &Parts) -> Self {
        let path = parts.uri.path();
        Self {
            route_path: format!("/{}", ctx.address(path).rest),
            path_parameters: ctx
                .named_params(path)
                .into_iter()
                .map(|(name, value)| {
                    let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    (name.to_owned(), value.into_owned())
                })
                .collect(),
        }
    }

    /// The request as an event is built from.
    pub(super) fn request<'a>(
        &'a self,
        ctx: &'a RequestContext<'_>,
        parts: &'a Parts,
        body: &'a [u8],
    ) -> EventRequest<'a> {
        let route = ctx.route;
        EventRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            route_path: &self.route_path,
            resource: route
                .and_then(|r| r.labels.route.split_once(' ').map(|(_, p)| p))
                .unwrap_or_default(),
            route_key: route.map_or("", |r| &*r.labels.route),
            stage: route.map_or("", |r| &*r.labels.stage),
            query: parts.uri.query(),
            headers: &parts.headers,
            path_parameters: &self.path_parameters,
            stage_variables: route.map_or(&[], |r| &*r.scope.stage_variables),
            body,
            request_id: ctx.request_id.to_str().unwrap_or_default(),
            source_ip: ctx.source_ip_text().to_str().unwrap_or_default(),
            received_at: ctx.received_at,
            protocol: match parts.version {
                Version::HTTP_2 => "HTTP/2.0",
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_3 => "HTTP/3.0",
                _ => "HTTP/1.1",
            },
            api: route.map_or("", |r| &*r.labels.api),
            authorizer: ctx.principal.as_deref().map(|p| EventAuthorizer {
                principal_id: &p.id,
                context: &p.context,
            }),
            api_key: ctx.api_key.as_ref().map(|key| {
                let value = parts
                    .headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                (value, key.id.as_str())
            }),
            client_cert: parts
                .extensions
                .get::<std::sync::Arc<crate::client_cert::ClientCert>>()
                .map(|c| &**c),
        }
    }
}
