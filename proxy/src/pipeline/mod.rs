//! The request pipeline: every request goes through [`run`], which calls each phase in order
//! and turns any error into a gateway response in one place.
//!
//! Phases (DESIGN.md §3; later phases slot in between `route` and `integration`):
//! 1. `accept`: request id, source address, declared body size;
//! 2. `route`: stage + path + method → route and path parameters;
//! 3. `integration`: answer from the origin (`http_proxy`) or from config (`mock`);
//! 4. finish: `x-request-id` on the response, access-log line when the body ends.
//!
//! A phase returns `Ok(Flow::Continue)` to go on, `Ok(Flow::Respond(response))` to answer now,
//! or an error, which becomes a gateway response.

mod accept;
mod error;
mod integration;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

pub use error::{GatewayError, X_EDGEWAY_ERROR_TYPE, chain};

use crate::body::{BodyStats, ResponseBody};
use crate::gateway::{Gateway, RouteTarget};
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

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The client's IP address as text (IPv4-mapped addresses unmapped), formatted once per
    /// connection for `X-Forwarded-For` and the access log.
    pub client_ip: HeaderValue,
    /// `"http"` or `"https"`.
    pub proto: &'static str,
}

/// Names of a matched route, shared by every request to it (for logs).
#[derive(Debug)]
pub struct RouteLabels {
    /// The route as written, `GET /pets/{id}`, for operational logs.
    pub route: Box<str>,
    /// `"api":...,"stage":...,"route":...` for the access log, rendered once.
    pub json: Box<str>,
}

impl RouteLabels {
    /// Labels for a route of `api` in `stage`, e.g. `GET /pets/{id}`.
    pub fn new(api: &str, stage: &str, route: &str) -> Self {
        Self {
            route: route.into(),
            json: crate::telemetry::access_log::labels_json(api, stage, route),
        }
    }
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
}

impl ConnInfo {
    /// Describes a connection from `remote`; `proto` is `"http"` or `"https"`.
    pub fn new(remote: SocketAddr, proto: &'static str) -> Self {
        let ip = remote.ip().to_canonical().to_string();
        Self {
            remote,
            client_ip: HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            proto,
        }
    }
}

impl RequestContext<'_> {
    /// Parameter values as text, given the request path they were taken from.
    pub fn param_values<'p>(&self, path: &'p str) -> Vec<&'p str> {
        self.params
            .iter()
            .map(|&(start, end)| path.get(start..end).unwrap_or_default())
            .collect()
    }
}

/// Serves one request against one config generation.
pub async fn run(
    gateway: &Gateway,
    log: &Arc<AccessLog>,
    conn: ConnInfo,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
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
            error.into_response()
        }
    };

    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    let record = AccessRecord {
        time: ctx.received_at,
        start: ctx.start,
        request_id: ctx.request_id,
        route: ctx.route.map(|r| r.labels.clone()),
        method,
        path,
        status: response.status().as_u16(),
        integration_latency: ctx.integration_latency,
        source_ip: ctx.conn.client_ip.clone(),
    };
    response
        .body_mut()
        .log_on_end(log.clone(), record, ctx.request_body.take());
    response
}

async fn phases<'g>(
    gateway: &'g Gateway,
    ctx: &mut RequestContext<'g>,
    parts: Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, GatewayError> {
    if let Flow::Respond(response) = accept::check(gateway, ctx, &parts)? {
        return Ok(response);
    }
    if let Flow::Respond(response) = route::resolve(gateway, ctx, &parts)? {
        return Ok(response);
    }
    integration::call(gateway, ctx, parts, body).await
}

#[cfg(test)]
mod tests {
    use super::ConnInfo;

    #[test]
    fn client_ip_is_unmapped_text() {
        let conn = ConnInfo::new("[::ffff:10.1.2.3]:5000".parse().unwrap(), "http");
        assert_eq!(conn.client_ip, "10.1.2.3");
        let conn = ConnInfo::new("[2001:db8::1]:443".parse().unwrap(), "https");
        assert_eq!(conn.client_ip, "2001:db8::1");
    }
}
