//! Phases 9 and 11, request and response transforms: chains of transformer plugins.
//!
//! A request transform may change the method, query, headers, path parameters (which the
//! integration URI is rendered from) and, when its config sets `body: true`, the body; or it
//! may answer at once, and the integration is not called. A response transform returns the
//! response to send. Plugins are given bodies only when their config asks: the body is then
//! read whole (within `limits.max_body_bytes`).

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, Uri};
use http_body_util::BodyExt;

use super::{Flow, GatewayError, InBody, PluginPhase, RequestContext, plugin_request};
use crate::body::ResponseBody;
use crate::plugins::bindings::RequestFlow;
use crate::plugins::{HeaderSelection, PluginError, convert};

fn bad_output(plugin: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::Plugin(
        PluginPhase::Transformer,
        PluginError::BadOutput {
            plugin: plugin.to_owned(),
            message: message.into(),
        },
    )
}

/// Runs the route's request transforms in order.
pub async fn request(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    body: &mut InBody,
    limit: u64,
) -> Result<Flow, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(Flow::Continue);
    };
    for plugin in &route.transforms.request {
        let given = if plugin.spec.body {
            Some(body.buffer(limit).await?)
        } else {
            None
        };
        let request = plugin_request(ctx, parts, &HeaderSelection::All, given.as_ref());
        let flow = plugin
            .on_request(route.isolation, &request)
            .await
            .map_err(|e| GatewayError::Plugin(PluginPhase::Transformer, e))?;
        match flow {
            RequestFlow::Continue(changed) => {
                let name = &plugin.spec.name;
                apply(ctx, parts, body, changed, name)?;
            }
            RequestFlow::Respond(response) => {
                let response = convert::response_from_wit(response)
                    .map_err(|e| bad_output(&plugin.spec.name, e.0))?;
                return Ok(Flow::Respond(response.map(ResponseBody::full)));
            }
        }
    }
    Ok(Flow::Continue)
}

/// Applies what a transformer returned: method, query, headers, path parameters, body.
fn apply(
    ctx: &mut RequestContext<'_>,
    parts: &mut Parts,
    body: &mut InBody,
    changed: crate::plugins::bindings::Request,
    plugin: &str,
) -> Result<(), GatewayError> {
    parts.method = Method::from_bytes(changed.method.as_bytes())
        .map_err(|_| bad_output(plugin, format!("invalid method {:?}", changed.method)))?;
    parts.headers =
        convert::headers_from_wit(&changed.headers).map_err(|e| bad_output(plugin, e.0))?;
    if parts.uri.query().unwrap_or_default() != changed.query {
        let path = parts.uri.path();
        let text = if changed.query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", changed.query)
        };
        parts.uri = text
            .parse::<Uri>()
            .map_err(|_| bad_output(plugin, format!("invalid query {:?}", changed.query)))?;
    }
    ctx.param_overrides = Some(changed.path_params);
    if let Some(new_body) = changed.body {
        *body = InBody::Buffered(Bytes::from(new_body));
        parts.headers.remove(http::header::CONTENT_LENGTH);
    }
    Ok(())
}

/// Runs the route's response transforms in order.
pub async fn response(
    ctx: &mut RequestContext<'_>,
    parts: &Parts,
    mut response: Response<ResponseBody>,
    limit: u64,
) -> Result<Response<ResponseBody>, GatewayError> {
    let Some(route) = ctx.route else {
        return Ok(response);
    };
    if route.transforms.response.is_empty() {
        return Ok(response);
    }
    let request = plugin_request(ctx, parts, &HeaderSelection::All, None);
    for plugin in &route.transforms.response {
        let (head, body) = response.into_parts();
        let (body, given) = if plugin.spec.body {
            let bytes = collect_response(body, limit).await?;
            (ResponseBody::empty(), Some(bytes))
        } else {
            (body, None)
        };
        let record = crate::plugins::bindings::Response {
            status: head.status.as_u16(),
            headers: convert::headers_to_wit(&head.headers),
            body: given.as_ref().map(|b| b.to_vec()),
        };
        let changed = plugin
            .on_response(route.isolation, &request, &record)
            .await
            .map_err(|e| GatewayError::Plugin(PluginPhase::Transformer, e))?;
        let name = &plugin.spec.name;
        let mut head = head;
        head.status =
            convert::status_from_wit(changed.status).map_err(|e| bad_output(name, e.0))?;
        head.headers =
            convert::headers_from_wit(&changed.headers).map_err(|e| bad_output(name, e.0))?;
        let body = match (changed.body, given) {
            (Some(new_body), _) => {
                head.headers.remove(http::header::CONTENT_LENGTH);
                ResponseBody::full(new_body)
            }
            (None, Some(old)) => ResponseBody::full(old),
            (None, None) => body,
        };
        response = Response::from_parts(head, body);
    }
    Ok(response)
}

async fn collect_response(body: ResponseBody, limit: u64) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    limited.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        GatewayError::Internal(format!("reading the response body for a transform: {e}"))
    })
}
