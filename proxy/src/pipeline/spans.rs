//! The request's spans, when its stage takes part in traces (see
//! [`crate::telemetry::traces`]): the trace begins once the route is known, each phase that
//! costs time records a span when the request is sampled, and the integration's span is the
//! parent the origin sees in `traceparent`, sampled or not.

use std::time::SystemTime;

use http::request::Parts;
use http::{HeaderMap, Response};

use super::{GatewayError, InBody, RequestContext, integration};
use crate::body::ResponseBody;
use crate::generation::Generation;
use crate::telemetry::otlp::Kind;
use crate::telemetry::traces::{PhaseSpan, RequestTrace};

/// Continues the client's trace or starts one, when the route's stage has `tracing`.
pub(super) fn begin(ctx: &mut RequestContext<'_>, headers: &HeaderMap) {
    if let Some(tracing) = ctx.route.and_then(|r| r.labels.tracing.as_ref()) {
        ctx.trace = Some(Box::new(RequestTrace::begin(
            tracing,
            headers,
            ctx.received_at,
        )));
    }
}

/// When a phase starts: `None` unless the request is sampled (no clock read otherwise).
pub(super) fn start(ctx: &RequestContext<'_>) -> Option<SystemTime> {
    ctx.trace
        .as_ref()
        .filter(|t| t.sampled())
        .map(|_| SystemTime::now())
}

/// Records a phase that started at `started` and ends now.
pub(super) fn phase(
    ctx: &RequestContext<'_>,
    started: Option<SystemTime>,
    name: &'static str,
    error: bool,
) {
    if let (Some(trace), Some(start)) = (&ctx.trace, started) {
        trace.phase(
            RequestTrace::new_span_id(),
            PhaseSpan {
                name,
                kind: Kind::Internal,
                start,
                end: SystemTime::now(),
                status: None,
                error,
            },
        );
    }
}

/// Calls the integration with `traceparent` naming its span, and records that span.
pub(super) async fn integration(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    mut parts: Parts,
    body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let Some(trace) = &ctx.trace else {
        return integration::call(gateway, ctx, parts, body).await;
    };
    let id = RequestTrace::new_span_id();
    trace.propagate(id, &mut parts.headers);
    let started = trace.sampled().then(SystemTime::now);
    let answered = integration::call(gateway, ctx, parts, body).await;
    if let (Some(trace), Some(start)) = (&ctx.trace, started) {
        trace.phase(
            id,
            PhaseSpan {
                name: "integration",
                kind: Kind::Client,
                start,
                end: SystemTime::now(),
                status: ctx.integration_status,
                error: answered.is_err() || ctx.integration_status.is_some_and(|s| s >= 500),
            },
        );
    }
    answered
}
