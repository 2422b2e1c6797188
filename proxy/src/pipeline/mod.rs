//! The request pipeline: every request goes through [`run`], which calls each phase in order
//! and turns any error into a gateway response in one place.
//!
//! Phases (DESIGN.md §3; the numbers are the design's, phases not built yet are skipped):
//! 1. `accept`: request id, source address, declared body size;
//! 2. `route`: stage + path + method → route and path parameters (before it,
//!    `policy::resolve_source`: the client behind trusted proxies);
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
mod cors;
mod error;
mod integration;
mod policy;
mod route;
mod throttle;
mod transform;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;
use http::{HeaderValue, Request, Response};

pub use crate::listener::ConnInfo;
pub use crate::telemetry::{RouteLabels, chain};
pub use error::{GatewayError, PluginPhase, ResponseScope, X_EDGEWAY_ERROR_TYPE};

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::body::{BodyTooLarge, ClientBody, RequestBody};
use crate::plugins::bindings::{Principal, Request as PluginRequest};

use crate::body::{BodyStats, ResponseBody};
use crate::generation::{Generation, RouteTarget};
use crate::telemetry::{AccessLog, AccessRecord};
use crate::upstream::headers::X_REQUEST_ID;

/// What a phase decided.
#[derive(Debug)]
// `Respond` ends the pipeline at once; boxing it would allocate on that path for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Flow {
    /// Go on to the next phase.
    Continue,
    /// Answer the client with this response; later phases do not run.
    Respond(Response<ResponseBody>),
}

/// Everything the pipeline knows about one request, passed from phase to phase.
#[derive(Debug)]
pub struct RequestContext<'g> {
    pub request_id: HeaderValue,
    pub conn: ConnInfo,
    pub start: Instant,
    pub received_at: SystemTime,
    /// Set by `route`.
    pub route: Option<&'g RouteTarget>,
    /// Path parameter values as byte ranges of the request path, in the route's order.
    pub params: Vec<(usize, usize)>,
    /// Set by `integration` when the request body streams to the origin.
    pub request_body: Option<Arc<BodyStats>>,
    /// Time from sending to the origin until its response head arrived.
    pub integration_latency: Option<Duration>,
    /// Set by `authorize` when the authorizer allowed the request.
    pub principal: Option<Arc<Principal>>,
    /// The API key an authorizer named for usage plans.
    pub usage_key: Option<String>,
    /// The caller's API key, once `api_key` has accepted it.
    pub api_key: Option<Arc<crate::auth::keys::ApiKey>>,
    /// The usage plan the key was accepted under, for this route.
    pub plan: Option<&'g crate::throttle::PlanLimits>,
    /// `RateLimit` headers for the response, set by `throttle` for requests with a key.
    pub rate_limit: Option<crate::throttle::RateLimitHeaders>,
    /// Path parameters as a request transform last set them; they replace the routed ones.
    pub param_overrides: Option<Vec<(String, String)>>,
    /// Set before routing when the connection is from a trusted proxy and `X-Forwarded-For`
    /// names another client; see `source_ip`.
    pub forwarded_client: Option<policy::ForwardedClient>,
    /// Set after routing when the route's API has CORS (not for a preflight the gateway
    /// answered): phase 12 puts the CORS headers on whatever response goes out.
    pub cors: Option<cors::CorsRequest>,
}

/// The request body: streaming from the client, or held whole once a plugin needed it.
#[derive(Debug)]
pub enum InBody {
    Streaming(ClientBody),
    Buffered(Bytes),
}

impl InBody {
    /// The whole body, read now if it was still streaming; 413 past `limit`.
    pub async fn buffer(&mut self, limit: u64) -> Result<Bytes, GatewayError> {
        if let Self::Buffered(bytes) = self {
            return Ok(bytes.clone());
        }
        let Self::Streaming(incoming) = std::mem::replace(self, Self::Buffered(Bytes::new()))
        else {
            return Ok(Bytes::new());
        };
        let (limited, _) = RequestBody::limited(incoming, limit);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| {
                if e.is::<BodyTooLarge>() {
                    GatewayError::PayloadTooLarge { limit }
                } else {
                    GatewayError::ClientBody(e)
                }
            })?
            .to_bytes();
        *self = Self::Buffered(bytes.clone());
        Ok(bytes)
    }
}

impl RequestContext<'_> {
    /// Parameter values as text, given the request path they were taken from, with any
    /// values a request transform set instead.
    pub fn param_values<'p>(&'p self, path: &'p str) -> Vec<&'p str> {
        let routed = self
            .params
            .iter()
            .map(|&(start, end)| path.get(start..end).unwrap_or_default());
        match (&self.param_overrides, self.route) {
            (Some(overrides), Some(route)) => routed
                .zip(route.param_names.iter())
                .map(|(value, name)| {
                    overrides
                        .iter()
                        .find(|(n, _)| **n == **name)
                        .map_or(value, |(_, v)| v.as_str())
                })
                .collect(),
            _ => routed.collect(),
        }
    }

    /// `(name, value)` of each path parameter.
    pub fn named_params<'p>(&'p self, path: &'p str) -> Vec<(&'p str, &'p str)> {
        let Some(route) = self.route else {
            return Vec::new();
        };
        route
            .param_names
            .iter()
            .map(|n| &**n)
            .zip(self.param_values(path))
            .collect()
    }
}

/// The request as a plugin sees it: the headers its config selects, and `body` only for
/// plugins whose config asks for it.
pub fn plugin_request(
    ctx: &RequestContext<'_>,
    parts: &Parts,
    headers: &crate::plugins::HeaderSelection,
    body: Option<&Bytes>,
) -> PluginRequest {
    let route = ctx.route;
    let pairs = |items: Vec<(&str, &str)>| -> Vec<(String, String)> {
        items
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    PluginRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: crate::plugins::convert::selected_headers_to_wit(&parts.headers, headers),
        path_params: pairs(ctx.named_params(parts.uri.path())),
        stage_variables: route
            .map(|r| r.stage_variables.to_vec())
            .unwrap_or_default(),
        api: route.map(|r| r.labels.api.to_string()).unwrap_or_default(),
        stage: route
            .map(|r| r.labels.stage.to_string())
            .unwrap_or_default(),
        route: route
            .map(|r| r.labels.route.to_string())
            .unwrap_or_default(),
        request_id: ctx.request_id.to_str().unwrap_or_default().to_owned(),
        source_ip: ctx.source_ip_text().to_str().unwrap_or_default().to_owned(),
        principal: ctx.principal.as_deref().cloned(),
        body: body.map(|b| b.to_vec()),
    }
}

/// Serves one request against one config generation, which the request holds until it ends.
///
/// Takes its `Arc`s by value so that a transport can hand this future to its HTTP server as it
/// is: the request future is large (kilobytes), and each layer wrapped around it is another
/// copy of it per request.
pub async fn run(
    generation: Arc<Generation>,
    log: Arc<AccessLog>,
    conn: ConnInfo,
    request: Request<ClientBody>,
) -> Response<ResponseBody> {
    let gateway = &*generation;
    let (parts, body) = request.into_parts();
    let mut ctx = RequestContext {
        request_id: accept::new_request_id(),
        conn,
        start: Instant::now(),
        received_at: SystemTime::now(),
        route: None,
        params: Vec::new(),
        request_body: None,
        integration_latency: None,
        principal: None,
        usage_key: None,
        api_key: None,
        plan: None,
        rate_limit: None,
        param_overrides: None,
        forwarded_client: None,
        cors: None,
    };
    let method = parts.method.clone();
    let path = parts.uri.path_and_query().cloned();

    let mut response = match phases(gateway, &mut ctx, parts, body).await {
        Ok(response) => response,
        Err(error) => {
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
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    if let Some(limits) = ctx.rate_limit.take() {
        throttle::add_headers(response.headers_mut(), limits);
    }
    let source_ip = ctx.source_ip_text().clone();
    let record = AccessRecord {
        time: ctx.received_at,
        start: ctx.start,
        request_id: ctx.request_id,
        route: ctx.route.map(|r| r.labels.clone()),
        method,
        path,
        status: response.status().as_u16(),
        integration_latency: ctx.integration_latency,
        source_ip,
    };
    response
        .body_mut()
        .log_on_end(log, record, ctx.request_body.take());
    response
}

async fn phases<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    mut parts: Parts,
    body: ClientBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    policy::resolve_source(gateway, ctx, &parts);
    if let Flow::Respond(response) = accept::check(gateway, ctx, &mut parts)? {
        return Ok(response);
    }
    if let Flow::Respond(response) = cors::preflight(gateway, ctx, &parts) {
        return Ok(response);
    }
    if let Flow::Respond(response) = route::resolve(gateway, ctx, &parts)? {
        return Ok(response);
    }
    cors::remember(ctx, &parts);
    let mut body = InBody::Streaming(body);
    let Some(route) = ctx.route.filter(|r| r.has_phases()) else {
        throttle::check_shared(ctx)?;
        return integration::call(gateway, ctx, parts, body).await;
    };
    policy::check(ctx, &parts)?;
    let limit = gateway.limits.max_body_bytes;
    if let Flow::Respond(response) = authorize::check(ctx, &mut parts, &mut body, limit).await? {
        return Ok(response);
    }
    api_key::check(gateway, ctx, &parts)?;
    throttle::check(gateway, ctx).await?;
    validate::check(ctx, &parts, &mut body, limit).await?;
    let pending = match cache::lookup(ctx, &parts).await? {
        cache::CacheLookup::Hit(response) => return Ok(response),
        cache::CacheLookup::Miss(pending) => Some(pending),
        cache::CacheLookup::NotCached => None,
    };
    if let Flow::Respond(response) = transform::request(ctx, &mut parts, &mut body, limit).await? {
        return Ok(response);
    }
    let response = if route.response_transforms.is_empty() {
        integration::call(gateway, ctx, parts, body).await?
    } else {
        let plugin_parts = response_transform_view(&parts);
        let response = integration::call(gateway, ctx, parts, body).await?;
        transform::response(ctx, &plugin_parts, response, limit).await?
    };
    Ok(match pending {
        Some(pending) => cache::store(pending, response),
        None => response,
    })
}

/// Whose gateway responses answer an error: the route's API's, or for a request that matched
/// no route, the API of the stage its path names (when only one API has that stage).
fn response_scope<'a>(
    gateway: &'a Generation,
    ctx: &'a RequestContext<'_>,
    path: &str,
) -> Option<ResponseScope<'a>> {
    let request_id = ctx.request_id.to_str().unwrap_or_default();
    if let Some(route) = ctx.route {
        return Some(ResponseScope {
            responses: Some(route.responses.as_deref()?),
            api: &route.labels.api,
            stage: &route.labels.stage,
            stage_variables: &route.stage_variables,
            request_id,
        });
    }
    let stage = path.trim_start_matches('/').split('/').next()?;
    let (stage, unrouted) = gateway.unrouted.get_key_value(stage)?;
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
