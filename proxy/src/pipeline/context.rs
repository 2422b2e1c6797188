//! What the phases share: [`RequestContext`], everything the pipeline knows about one request;
//! [`Flow`], what a phase decided; [`InBody`], the request body as the phases hold it; and
//! [`plugin_request`], the request as a plugin sees it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;

use super::{GatewayError, cors, policy};
use crate::body::{BodyStats, BodyTooLarge, ClientBody, RequestBody, ResponseBody};
use crate::generation::RouteTarget;
use crate::listener::ConnInfo;
use crate::plugins::bindings::{Principal, Request as PluginRequest};

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
    /// The status the integration answered with, before any response mapping.
    pub integration_status: Option<u16>,
    /// How long the route's authorizer took.
    pub authorizer_latency: Option<Duration>,
    /// The request's place in its trace, when its stage has `tracing`.
    pub trace: Option<Box<crate::telemetry::traces::RequestTrace>>,
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
    /// Set before routing for a request on a custom domain: its mapping (see `address`).
    pub domain: Option<super::domain::DomainRoute<'g>>,
    /// Set for a WebSocket API's connect, message and disconnect, for the access log.
    pub websocket: Option<Box<crate::telemetry::WebSocketEvent>>,
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
                } else if e.is::<crate::body::BodyReadTimeout>() {
                    GatewayError::BodyTimeout
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
    /// A request arriving now on `conn`, with a new request id, before any phase.
    pub fn new(conn: ConnInfo) -> Self {
        Self {
            request_id: super::accept::new_request_id(),
            conn,
            start: Instant::now(),
            received_at: SystemTime::now(),
            route: None,
            params: Vec::new(),
            request_body: None,
            integration_latency: None,
            integration_status: None,
            authorizer_latency: None,
            trace: None,
            principal: None,
            usage_key: None,
            api_key: None,
            plan: None,
            rate_limit: None,
            param_overrides: None,
            forwarded_client: None,
            cors: None,
            domain: None,
            websocket: None,
        }
    }

    /// Parameter values as text, given the request path they were taken from, with any
    /// values a request transform set instead.
    pub fn param_values<'p>(&'p self, path: &'p str) -> Vec<&'p str> {
        let routed = self
            .params
            .iter()
            .map(|&(start, end)| path.get(start..end).unwrap_or_default());
        match (&self.param_overrides, self.route) {
            (Some(overrides), Some(route)) => routed
                .zip(route.scope.param_names.iter())
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
            .scope
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
            .map(|r| r.scope.stage_variables.to_vec())
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
