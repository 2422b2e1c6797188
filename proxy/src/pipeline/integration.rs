//! Phase 10, integration: the response, from the origin or from config.
//!
//! `http_proxy` streams the request to the origin and the origin's response back, each body
//! passing through without being buffered. The integration timeout covers the wait for the
//! response head; the body then streams for as long as it takes.

use http::request::Parts;
use std::sync::Arc;

use http::{Request, Response, Version};

use super::{GatewayError, InBody, PluginPhase, RequestContext, plugin_request};
use crate::body::{RequestBody, ResponseBody};
use crate::config::Mock;
use crate::generation::{Generation, Target};
use crate::upstream::OriginPool;
use crate::upstream::UriTemplate;
use crate::upstream::headers::{self, Forwarded};

/// Calls the matched route's integration.
pub async fn call(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    parts: Parts,
    body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let Some(route) = ctx.route else {
        return Err(GatewayError::Internal(
            "integration reached without a route".into(),
        ));
    };
    match &route.integration.target {
        Target::Mock(mock) if mock.echo => {
            let mut body = body;
            let echoed = body.buffer(gateway.limits.max_body_bytes).await?;
            let mut response = mock_response(mock);
            *response.body_mut() = ResponseBody::full(echoed);
            Ok(response)
        }
        Target::Mock(mock) => Ok(mock_response(mock)),
        Target::Connections => super::websocket::manage(gateway, ctx, parts, body).await,
        Target::Function(plugin) => {
            let mut body = body;
            let given = if plugin.spec.body {
                Some(body.buffer(gateway.limits.max_body_bytes).await?)
            } else {
                None
            };
            let request = plugin_request(ctx, &parts, &plugin.spec.headers, given.as_ref());
            let started = std::time::Instant::now();
            let outcome = plugin.handle(route.isolation, &request).await;
            ctx.integration_latency = Some(started.elapsed());
            let response = outcome.map_err(|e| GatewayError::Plugin(PluginPhase::Function, e))?;
            let response = crate::plugins::convert::response_from_wit(response).map_err(|e| {
                GatewayError::Plugin(
                    PluginPhase::Function,
                    crate::plugins::PluginError::BadOutput {
                        plugin: plugin.spec.name.clone(),
                        message: e.0,
                    },
                )
            })?;
            ctx.integration_status = Some(response.status().as_u16());
            Ok(response.map(ResponseBody::full))
        }
        Target::Lambda { plugin, format } => {
            super::lambda::call(gateway, ctx, plugin, *format, route.isolation, &parts, body).await
        }
        Target::Proxy { uri, pool } => {
            let timeout = route.integration.timeout;
            proxy(gateway, ctx, uri, pool, timeout, parts, body).await
        }
        Target::Http(target) => {
            let timeout = route.integration.timeout;
            super::mapped::http(gateway, ctx, target, route.isolation, timeout, parts, body).await
        }
        Target::Aws(target) => {
            let timeout = route.integration.timeout;
            super::mapped::aws(gateway, ctx, target, route.isolation, timeout, parts, body).await
        }
        Target::MappedMock(target) => {
            super::mapped::mock(gateway, ctx, target, route.isolation, parts, body).await
        }
    }
}

fn mock_response(mock: &Mock) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(mock.body.clone()));
    *response.status_mut() = mock.status;
    *response.headers_mut() = mock.headers.clone();
    response
}

async fn proxy(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    template: &UriTemplate,
    pool: &Arc<OriginPool>,
    timeout: std::time::Duration,
    mut parts: Parts,
    body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let uri = {
        let params = ctx.param_values(parts.uri.path());
        template
            .render(&params, parts.uri.query())
            .map_err(|e| GatewayError::Internal(format!("integration URI: {e}")))?
    };
    let authority = parts.uri.authority().and_then(|a| a.as_str().parse().ok());
    headers::rewrite_request(
        &mut parts.headers,
        &Forwarded {
            client_ip: &ctx.conn.client_ip,
            proto: ctx.conn.proto,
            host: authority.as_ref(),
            request_id: &ctx.request_id,
        },
    );
    let (body, stats) = match body {
        InBody::Streaming(incoming) => {
            RequestBody::limited(incoming, gateway.limits.max_body_bytes)
        }
        InBody::Buffered(bytes) => (RequestBody::full(bytes), None),
    };
    ctx.request_body = stats.clone();

    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = parts.headers;

    let sent = std::time::Instant::now();
    let outcome = tokio::time::timeout(timeout, pool.send(request)).await;
    ctx.integration_latency = Some(sent.elapsed());
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            if stats.as_ref().is_some_and(|s| s.over_limit()) {
                return Err(GatewayError::PayloadTooLarge {
                    limit: gateway.limits.max_body_bytes,
                });
            }
            if stats.as_ref().is_some_and(|s| s.timed_out()) {
                return Err(GatewayError::BodyTimeout);
            }
            if stats.is_some_and(|s| s.client_failed()) {
                return Err(GatewayError::ClientBody(error));
            }
            return Err(GatewayError::Upstream {
                origin: pool.origin.clone(),
                source: error,
            });
        }
        Err(_elapsed) => {
            return Err(GatewayError::Timeout {
                origin: pool.origin.clone(),
                after: timeout,
            });
        }
    };
    ctx.integration_status = Some(response.status().as_u16());
    let (mut parts, body) = response.into_parts();
    // The client's connection speaks its own version, whatever the origin's was (an HTTP/1.0
    // origin would otherwise make hyper answer an HTTP/1.1 client in HTTP/1.0).
    parts.version = Version::HTTP_11;
    headers::rewrite_response(&mut parts.headers, &ctx.request_id);
    Ok(Response::from_parts(parts, ResponseBody::upstream(body)))
}
