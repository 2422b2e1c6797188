//! The pipeline's execution-log lines, by the route's stage `logging_level` (see
//! [`crate::telemetry::execution`]). Each function returns at once when its stage does not
//! ask for its line.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response};

use super::{Flow, GatewayError, RequestContext};
use crate::body::ResponseBody;
use crate::execution_log;
use crate::generation::RouteTarget;
use crate::telemetry::execution::{body_text, headers_json};

fn millis(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn request_id<'a>(ctx: &'a RequestContext<'_>) -> &'a str {
    ctx.request_id.to_str().unwrap_or_default()
}

/// The route, when its stage writes each decision.
fn informing<'g>(ctx: &RequestContext<'g>) -> Option<&'g RouteTarget> {
    ctx.route.filter(|r| r.labels.execution.info())
}

/// The authorizer's answer: allow (with the principal), deny, or error.
pub(super) fn authorizer(ctx: &RequestContext<'_>, outcome: &Result<Flow, GatewayError>) {
    let Some(route) = informing(ctx).filter(|r| r.access.auth.is_some()) else {
        return;
    };
    let (result, principal) = match outcome {
        Ok(_) => ("allow", ctx.principal.as_ref().map(|p| p.id.as_str())),
        Err(e) if e.is_server_side() => ("error", None),
        Err(_) => ("deny", None),
    };
    execution_log!(
        info,
        request_id(ctx),
        route.labels,
        "authorizer decision",
        result,
        principal,
        latency_ms = millis(ctx.authorizer_latency)
    );
}

/// The throttle's answer: allowed, or the refusal's type (`THROTTLED`, `QUOTA_EXCEEDED`).
pub(super) fn throttle(ctx: &RequestContext<'_>, outcome: &Result<(), GatewayError>) {
    let Some(route) = informing(ctx) else {
        return;
    };
    let result = match outcome {
        Ok(()) => "allowed",
        Err(e) => e.kind().name,
    };
    execution_log!(
        info,
        request_id(ctx),
        route.labels,
        "throttle decision",
        result
    );
}

/// A stage-cache lookup: `hit` or `miss`.
pub(super) fn cache(ctx: &RequestContext<'_>, result: &'static str) {
    if let Some(route) = informing(ctx) {
        execution_log!(info, request_id(ctx), route.labels, "cache lookup", result);
    }
}

/// What the integration answered: its status and latency, or the error it ended in.
pub(super) fn integration(
    ctx: &RequestContext<'_>,
    outcome: &Result<Response<ResponseBody>, GatewayError>,
) {
    let Some(route) = informing(ctx) else {
        return;
    };
    let error = outcome.as_ref().err().map(|e| e.kind().name);
    execution_log!(
        info,
        request_id(ctx),
        route.labels,
        "integration response",
        status = ctx.integration_status,
        latency_ms = millis(ctx.integration_latency),
        error
    );
}

/// A request that ended in a gateway error: its type, status, message and cause.
pub(super) fn failed(ctx: &RequestContext<'_>, error: &GatewayError) {
    let Some(route) = ctx.route.filter(|r| r.labels.execution.errors()) else {
        return;
    };
    let kind = error.kind();
    execution_log!(
        error,
        request_id(ctx),
        route.labels,
        "execution failed",
        r#type = kind.name,
        status = kind.status.as_u16(),
        error_message = %error.client_message(),
        cause = %crate::telemetry::chain(error)
    );
}

/// With a data trace: the method request's headers and the start of its body.
pub(super) fn request_data(ctx: &RequestContext<'_>, headers: &HeaderMap, body: &Bytes) {
    let Some(route) = ctx.route.filter(|r| r.labels.execution.traces_data()) else {
        return;
    };
    execution_log!(
        info,
        request_id(ctx),
        route.labels,
        "method request",
        headers = %headers_json(headers),
        body = %body_text(body),
        bytes = body.len()
    );
}

/// With a data trace: the method response's headers (its body is written when it ends).
pub(super) fn response_headers(ctx: &RequestContext<'_>, response: &mut Response<ResponseBody>) {
    let Some(route) = ctx.route.filter(|r| r.labels.execution.traces_data()) else {
        return;
    };
    execution_log!(
        info,
        request_id(ctx),
        route.labels,
        "method response headers",
        status = response.status().as_u16(),
        headers = %headers_json(response.headers())
    );
    response.body_mut().trace_data();
}
