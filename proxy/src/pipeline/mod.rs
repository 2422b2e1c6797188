//! The request pipeline: every request goes through [`run`], which calls each phase in order
//! and turns any error into a gateway response in one place.
//!
//! Phases (DESIGN.md §3; the numbers are the design's, phases not built yet are skipped):
//! 1. `accept`: request id, source address, declared body size;
//! 2. `route`: stage + path + method → route and path parameters (before it,
//!    `policy::resolve_source`: the client behind trusted proxies, and `domain::resolve`: a
//!    custom domain's base path mapping, its private policy, 403 for an unmapped path);
//! 3. `cors::preflight`: a CORS preflight to an API with `cors` is answered (204);
//! 4. `policy::check`: the route's source-IP policy (403);
//! 5. `authorize`: the route's authorizer, a plugin, a JWT issuer or SigV4 (401 / 403 / 500),
//!    then `api_key`: the route's API key requirement (403);
//! 7. `validate`: required parameters and the body's JSON Schema (400);
//! 8. `cache::lookup`: a fresh entry of the stage cache answers (coalescing concurrent misses);
//! 9. `transform::request`: the route's request transforms;
//! 10. `integration`: answer from the origin (`http_proxy`), a handler plugin (`function`)
//!     or config (`mock`);
//! 11. `transform::response`: the route's response transforms;
//! 12. `cache::store`: a storable response is collected into the cache as it streams out;
//!     `cors::finish`: the API's CORS headers on every response to a routed request;
//! 13. finish: `x-request-id` on the response, access-log line when the body ends.
//!
//! A phase returns `Ok(Flow::Continue)` to go on, `Ok(Flow::Respond(response))` to answer now,
//! or an error, which becomes a gateway response.

mod accept;
mod api_key;
mod authorize;
mod cache;
mod context;
mod cors;
mod domain;
mod error;
mod exec_log;
mod integration;
mod lambda;
mod mapped;
mod policy;
mod route;
mod spans;
mod throttle;
mod transform;
mod validate;
pub mod websocket;

use std::sync::Arc;

use http::request::Parts;
use http::{Request, Response};

pub use crate::listener::ConnInfo;
pub use crate::telemetry::{RouteLabels, chain};
pub use context::{Flow, InBody, RequestContext, plugin_request};
pub use error::{GatewayError, PluginPhase, ResponseScope, X_EDGEWAY_ERROR_TYPE};

use crate::body::{ClientBody, ResponseBody};
use crate::generation::Generation;
use crate::telemetry::metrics::AuthorizerResult;
use crate::telemetry::{AccessRecord, RecordExtras};
use crate::upstream::headers::X_REQUEST_ID;

/// Serves one request against one config generation, which the request holds until it ends.
///
/// Takes its `Arc`s by value so that a transport can hand this future to its HTTP server as it
/// is: the request future is large (kilobytes), and each layer wrapped around it is another
/// copy of it per request.
pub async fn run(
    generation: Arc<Generation>,
    conn: ConnInfo,
    request: Request<ClientBody>,
) -> Response<ResponseBody> {
    let gateway = &*generation;
    let (parts, body) = request.into_parts();
    let mut ctx = RequestContext::new(conn);
    let method = parts.method.clone();
    let path = parts.uri.path_and_query().cloned();
    let version = parts.version;
    let mut extras = RecordExtras::default();
    if gateway.log_extras {
        extras.host = parts
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| parts.uri.authority().and_then(|a| a.as_str().parse().ok()));
        extras.user_agent = parts.headers.get(http::header::USER_AGENT).cloned();
        extras.client_cert = parts
            .extensions
            .get::<Arc<crate::client_cert::ClientCert>>()
            .cloned();
    }
    let mut failure = None;

    let mut response = match phases(gateway, &mut ctx, parts, body).await {
        Ok(response) => response,
        Err(error) => {
            exec_log::failed(&ctx, &error);
            failure = Some(error.kind());
            if gateway.log_extras {
                extras.error_message = Some(error.client_message().into());
            }
            let metrics = ctx
                .route
                .map_or(gateway.metrics.unrouted(), |r| &r.labels.metrics);
            metrics.error(error.kind().response_type);
            if let GatewayError::Throttled(refusal) = &error {
                metrics.throttled(refusal.scope);
            }
            if error.is_server_side() {
                let route = ctx.route.map(|r| &*r.labels.route);
                tracing::warn!(
                    request_id = ctx.request_id.to_str().unwrap_or_default(),
                    route,
                    error = %error,
                    "request failed"
                );
            }
            let path = path.as_ref().map_or("/", |p| p.path());
            error.into_response_for(response_scope(gateway, &ctx, path).as_ref())
        }
    };

    cors::finish(&mut ctx, &mut response);
    if let Some(header) = ctx.trace.as_ref().and_then(|t| t.response_header()) {
        response
            .headers_mut()
            .insert(crate::telemetry::traces::TRACERESPONSE.clone(), header);
    }
    exec_log::response_headers(&ctx, &mut response);
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    if let Some(limits) = ctx.rate_limit.take() {
        throttle::add_headers(response.headers_mut(), limits);
    }
    let request_body = ctx.request_body.take();
    let status = response.status().as_u16();
    let record = access_record(
        gateway,
        ctx,
        (method, path, version),
        status,
        failure,
        extras,
    );
    response.body_mut().log_on_end(record, request_body);
    response
}

/// The access-log record (and the metrics' count) a request leaves: what its context
/// gathered, its request line, the status it was answered with and the error it ended in.
fn access_record(
    gateway: &Generation,
    mut ctx: RequestContext<'_>,
    (method, path, version): (http::Method, Option<http::uri::PathAndQuery>, http::Version),
    status: u16,
    failure: Option<&'static crate::gateway_responses::ErrorKind>,
    mut extras: RecordExtras,
) -> AccessRecord {
    let source_ip = ctx.source_ip_text().clone();
    let metrics = gateway.metrics_enabled.then(|| {
        ctx.route
            .map_or(gateway.metrics.unrouted(), |r| &r.labels.metrics)
            .clone()
    });
    if gateway.log_extras {
        extras.principal = ctx.principal.take().map(|p| p as _);
        extras.api_key = ctx.api_key.take().map(|k| k as _);
        extras.base_path = ctx
            .domain
            .as_ref()
            .and_then(|d| d.mapping)
            .map(|m| m.base_path.as_str().into());
    }
    AccessRecord {
        time: ctx.received_at,
        start: ctx.start,
        request_id: ctx.request_id,
        route: ctx.route.map(|r| r.labels.clone()),
        log: ctx
            .route
            .map_or(gateway.unrouted_log.as_ref(), |r| r.labels.log.as_ref())
            .cloned(),
        method,
        path,
        version,
        status,
        integration_latency: ctx.integration_latency,
        integration_status: ctx.integration_status,
        authorizer_latency: ctx.authorizer_latency,
        source_ip,
        error: failure,
        trace: ctx.trace.take(),
        extras,
        metrics,
        websocket: ctx.websocket.take(),
    }
}

async fn phases<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    mut parts: Parts,
    body: ClientBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let extended_connect = websocket::extended_connect(&mut parts);
    policy::resolve_source(gateway, ctx, &parts);
    if let Flow::Respond(response) = accept::check(gateway, ctx, &mut parts)? {
        return Ok(response);
    }
    domain::resolve(gateway, ctx, &parts)?;
    if let Flow::Respond(response) = cors::preflight(gateway, ctx, &parts) {
        return Ok(response);
    }
    if let Flow::Respond(response) = route::resolve(gateway, ctx, &parts)? {
        return Ok(response);
    }
    if let Some(settings) = ctx.route.and_then(|r| r.scope.websocket.as_ref()) {
        return websocket::connect(gateway, ctx, parts, body, settings).await;
    }
    if extended_connect {
        return Err(GatewayError::BadRequest(
            "an extended CONNECT (RFC 8441) opens a WebSocket API's connection",
        ));
    }
    routed(gateway, ctx, parts, InBody::Streaming(body)).await
}

/// The phases after routing.
async fn routed<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    mut parts: Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    spans::begin(ctx, &parts.headers);
    cors::remember(ctx, &parts);
    let Some(route) = ctx.route.filter(|r| r.has_phases()) else {
        throttle::check_shared(ctx)?;
        return spans::integration(gateway, ctx, parts, body).await;
    };
    policy::check(ctx, &parts)?;
    let limit = gateway.limits.max_body_bytes;
    let authorizing = std::time::Instant::now();
    let span = spans::start(ctx).filter(|_| route.access.auth.is_some());
    let authorized = authorize::check(ctx, &mut parts, &mut body, limit).await;
    if route.access.auth.is_some() {
        ctx.authorizer_latency = Some(authorizing.elapsed());
    }
    spans::phase(ctx, span, "authorizer", authorized.is_err());
    exec_log::authorizer(ctx, &authorized);
    if route.access.auth.is_some() {
        route.labels.metrics.authorizer(match &authorized {
            Ok(_) => AuthorizerResult::Allow,
            Err(e) if matches!(e.kind().status.as_u16(), 401 | 403) => AuthorizerResult::Deny,
            Err(_) => AuthorizerResult::Error,
        });
    }
    if let Flow::Respond(response) = authorized? {
        return Ok(response);
    }
    api_key::check(gateway, ctx, &parts)?;
    let throttled = throttle::check(gateway, ctx).await;
    exec_log::throttle(ctx, &throttled);
    throttled?;
    validate::check(ctx, &parts, &mut body, limit).await?;
    if route.labels.execution.traces_data() {
        // A data trace reads the body whole (within the limit) to write its start.
        let bytes = body.buffer(limit).await?;
        exec_log::request_data(ctx, &parts.headers, &bytes);
    }
    let span = spans::start(ctx).filter(|_| route.cache.is_some());
    let looked_up = cache::lookup(ctx, &parts).await;
    spans::phase(ctx, span, "cache lookup", looked_up.is_err());
    let pending = match looked_up? {
        cache::CacheLookup::Hit(response) => {
            route.labels.metrics.cache_hit();
            exec_log::cache(ctx, "hit");
            return Ok(response);
        }
        cache::CacheLookup::Miss(pending) => {
            route.labels.metrics.cache_miss();
            exec_log::cache(ctx, "miss");
            Some(pending)
        }
        cache::CacheLookup::NotCached => None,
    };
    let span = spans::start(ctx).filter(|_| !route.transforms.request.is_empty());
    let transformed = transform::request(ctx, &mut parts, &mut body, limit).await;
    spans::phase(ctx, span, "request transform", transformed.is_err());
    if let Flow::Respond(response) = transformed? {
        return Ok(response);
    }
    let response = if route.transforms.response.is_empty() {
        let answered = spans::integration(gateway, ctx, parts, body).await;
        exec_log::integration(ctx, &answered);
        answered?
    } else {
        let plugin_parts = response_transform_view(&parts);
        let answered = spans::integration(gateway, ctx, parts, body).await;
        exec_log::integration(ctx, &answered);
        let span = spans::start(ctx);
        let transformed = transform::response(ctx, &plugin_parts, answered?, limit).await;
        spans::phase(ctx, span, "response transform", transformed.is_err());
        transformed?
    };
    Ok(match pending {
        Some(pending) => cache::store(pending, response),
        None => response,
    })
}

/// Whose gateway responses answer an error: the route's API's, or for a request that matched
/// no route, the API of the stage its path names (when only one API has that stage) or its
/// domain maps.
fn response_scope<'a>(
    gateway: &'a Generation,
    ctx: &'a RequestContext<'_>,
    path: &str,
) -> Option<ResponseScope<'a>> {
    let request_id = ctx.request_id.to_str().unwrap_or_default();
    if let Some(route) = ctx.route {
        return Some(ResponseScope {
            responses: Some(route.scope.responses.as_deref()?),
            api: &route.labels.api,
            stage: &route.labels.stage,
            stage_variables: &route.scope.stage_variables,
            request_id,
        });
    }
    let at = ctx.address(path);
    let (stage, unrouted) = gateway.unrouted.get_key_value(at.stage)?;
    // On a domain, only the mapped API's overrides answer (none for an unmapped path).
    if at.api.is_some_and(|api| *unrouted.api != *api) {
        return None;
    }
    Some(ResponseScope {
        responses: Some(&unrouted.responses),
        api: &unrouted.api,
        stage,
        stage_variables: &unrouted.variables,
        request_id,
    })
}

/// What response transforms see of the request: its head as sent to the integration.
fn response_transform_view(parts: &Parts) -> Parts {
    let mut request = Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}
