//! Traces: W3C trace context (`traceparent`, `tracestate`) and spans exported over OTLP.
//!
//! A stage with `tracing: { sampling: RATIO }` takes part in its requests' traces: a client's
//! `traceparent` is continued (its sampled flag decides, as OpenTelemetry's parent-based
//! sampler does), one is started when there is none (sampled when the trace id falls under the
//! ratio), and the origin receives a `traceparent` whose parent is the integration's span. A
//! sampled request produces a server span for the request and a span for each phase that costs
//! time (authorizer, cache lookup, transforms, integration), built here with the times the
//! pipeline measured and handed to OpenTelemetry's batch span processor: a bounded queue that
//! drops spans when it is full rather than holding memory, and a thread that sends batches to
//! the collector (`tracing.endpoint`, OTLP/HTTP protobuf) through the origin pool Edgeway uses
//! for its own upstreams.
//!
//! A stage without `tracing` does nothing here: a client's `traceparent` reaches the origin as
//! any header does.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SpanData, SpanEvents,
    SpanLinks, SpanProcessor,
};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// W3C Trace Context level 2's response header: the trace and the gateway's span.
pub static TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// The node's `tracing`: where spans go.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// The collector's OTLP/HTTP traces URL (`http://127.0.0.1:4318/v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    /// Spans waiting for export; past it, spans are dropped.
    pub queue_size: usize,
    pub batch_size: usize,
    pub export_interval: Duration,
    pub timeout: Duration,
}

/// A stage's `tracing`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageTracing {
    /// The share of new traces (no `traceparent` from the client) that are sampled, 0 to 1.
    pub sampling: f64,
    /// Whether responses carry `traceresponse`.
    pub response_header: bool,
}

/// Spans on their way to the collector.
#[derive(Debug)]
pub struct Exporter {
    processor: Mutex<Option<BatchSpanProcessor>>,
    scope: InstrumentationScope,
    pub settings: ExportSettings,
}

impl Exporter {
    /// Starts the batch processor's thread; `client` sends its requests.
    pub fn start(
        settings: &ExportSettings,
        client: impl opentelemetry_http::HttpClient + 'static,
    ) -> Result<Arc<Self>, String> {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(settings.endpoint.clone())
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(settings.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(settings.queue_size)
            .with_max_export_batch_size(settings.batch_size.min(settings.queue_size))
            .with_scheduled_delay(settings.export_interval)
            .build();
        let mut processor = BatchSpanProcessor::new(exporter, config);
        processor.set_resource(
            &opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        );
        Ok(Arc::new(Self {
            processor: Mutex::new(Some(processor)),
            scope: InstrumentationScope::builder("edgeway")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            settings: settings.clone(),
        }))
    }

    fn submit(&self, span: SpanData) {
        if let Some(processor) = &*crate::sync::lock(&self.processor) {
            processor.on_end(span);
        }
    }

    /// Exports what is queued and stops; blocks up to the export timeout.
    pub fn shutdown(&self) {
        if let Some(processor) = crate::sync::lock(&self.processor).take()
            && let Err(e) = processor.shutdown_with_timeout(self.settings.timeout)
        {
            tracing::warn!(error = %e, "spans not exported at shutdown");
        }
    }
}

impl Drop for Exporter {
    /// A replaced exporter (a reload changed `tracing`) flushes on a thread of its own: the
    /// last reference may be dropped on a request's thread.
    fn drop(&mut self) {
        if let Some(processor) = crate::sync::lock(&self.processor).take() {
            let timeout = self.settings.timeout;
            let _ = std::thread::Builder::new()
                .name("edgeway-trace-flush".into())
                .spawn(move || processor.shutdown_with_timeout(timeout));
        }
    }
}

/// What a route's requests need to trace.
#[derive(Debug)]
pub struct RouteTracing {
    pub exporter: Arc<Exporter>,
    /// A new trace is sampled when its id's low 64 bits are at most this.
    threshold: u64,
    pub response_header: bool,
}

impl RouteTracing {
    pub fn new(exporter: Arc<Exporter>, stage: StageTracing) -> Self {
        // Lossy on purpose: a ratio is not that precise.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = if stage.sampling >= 1.0 {
            u64::MAX
        } else {
            (stage.sampling.max(0.0) * u64::MAX as f64) as u64
        };
        Self {
            exporter,
            threshold,
            response_header: stage.response_header,
        }
    }
}

/// One request's place in its trace.
#[derive(Debug)]
pub struct RequestTrace {
    route: Arc<RouteTracing>,
    trace_id: TraceId,
    /// The gateway's span for the request.
    span_id: SpanId,
    /// The client's span, when it sent a `traceparent`.
    remote_parent: Option<SpanId>,
    sampled: bool,
    /// The client's `tracestate`, passed on as it came.
    state: Option<HeaderValue>,
    pub start: SystemTime,
}

/// A phase's span, built from the times the pipeline measured.
#[derive(Debug)]
pub struct PhaseSpan {
    pub name: &'static str,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    pub error: bool,
}

impl RequestTrace {
    /// Continues the client's trace, or starts one.
    pub fn begin(route: &Arc<RouteTracing>, headers: &HeaderMap, start: SystemTime) -> Self {
        let ids = RandomIdGenerator::default();
        let parent = headers.get(&TRACEPARENT).and_then(parse_traceparent);
        let (trace_id, remote_parent, sampled, state) = match parent {
            Some((trace_id, parent_id, flags)) => (
                trace_id,
                Some(parent_id),
                flags.is_sampled(),
                headers.get(&TRACESTATE).cloned(),
            ),
            None => {
                let trace_id = ids.new_trace_id();
                let low =
                    u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
                (trace_id, None, low <= route.threshold, None)
            }
        };
        Self {
            route: route.clone(),
            trace_id,
            span_id: ids.new_span_id(),
            remote_parent,
            sampled,
            state,
            start,
        }
    }

    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// A new span id for a phase that must name itself before it ends (the integration, whose
    /// request carries it).
    pub fn new_span_id() -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }

    /// `traceparent` (and the client's `tracestate`) for the origin, with `span` as the parent.
    pub fn propagate(&self, span: SpanId, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.header(span));
        match &self.state {
            Some(state) => {
                headers.insert(TRACESTATE.clone(), state.clone());
            }
            None => {
                headers.remove(&TRACESTATE);
            }
        }
    }

    fn header(&self, span: SpanId) -> HeaderValue {
        let mut text = String::with_capacity(55);
        let _ = write!(
            text,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            span,
            u8::from(self.sampled)
        );
        HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The `traceresponse` header, when the stage asks for it.
    pub fn response_header(&self) -> Option<HeaderValue> {
        self.route
            .response_header
            .then(|| self.header(self.span_id))
    }

    /// Records a phase of the request (when sampled).
    pub fn phase(&self, id: SpanId, span: PhaseSpan) {
        if !self.sampled {
            return;
        }
        self.submit(id, self.span_id, false, span);
    }

    /// Ends the request's own span (when sampled).
    pub fn end(
        &self,
        name: Cow<'static, str>,
        end: SystemTime,
        attributes: Vec<KeyValue>,
        error: bool,
    ) {
        if !self.sampled {
            return;
        }
        let (parent, remote) = match self.remote_parent {
            Some(parent) => (parent, true),
            None => (SpanId::INVALID, false),
        };
        self.submit_named(
            name,
            self.span_id,
            parent,
            remote,
            PhaseSpan {
                name: "",
                kind: SpanKind::Server,
                start: self.start,
                end,
                attributes,
                error,
            },
        );
    }

    fn submit(&self, id: SpanId, parent: SpanId, remote: bool, span: PhaseSpan) {
        self.submit_named(Cow::Borrowed(span.name), id, parent, remote, span);
    }

    fn submit_named(
        &self,
        name: Cow<'static, str>,
        id: SpanId,
        parent: SpanId,
        remote: bool,
        span: PhaseSpan,
    ) {
        self.route.exporter.submit(SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: remote,
            span_kind: span.kind,
            name,
            start_time: span.start,
            end_time: span.end,
            attributes: span.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if span.error {
                Status::error("")
            } else {
                Status::Unset
            },
            instrumentation_scope: self.route.exporter.scope.clone(),
        });
    }
}

/// Ends the request's own span with what its access record knows, when it is sampled.
pub fn end_request(record: &super::AccessRecord) {
    let Some(trace) = record.trace.as_deref().filter(|t| t.sampled) else {
        return;
    };
    let mut attributes = Vec::with_capacity(9);
    attributes.push(KeyValue::new(
        "http.request.method",
        record.method.as_str().to_owned(),
    ));
    if let Some(path) = &record.path {
        attributes.push(KeyValue::new("url.path", path.path().to_owned()));
    }
    attributes.push(KeyValue::new(
        "http.response.status_code",
        i64::from(record.status),
    ));
    attributes.push(KeyValue::new(
        "client.address",
        String::from_utf8_lossy(record.source_ip.as_bytes()).into_owned(),
    ));
    attributes.push(KeyValue::new(
        "edgeway.request_id",
        String::from_utf8_lossy(record.request_id.as_bytes()).into_owned(),
    ));
    let name: Cow<'static, str> = match record.route.as_deref() {
        Some(labels) => {
            let path = labels
                .route
                .split_once(' ')
                .map_or(&*labels.route, |(_, p)| p);
            attributes.push(KeyValue::new("http.route", path.to_owned()));
            attributes.push(KeyValue::new("edgeway.api", labels.api.to_string()));
            attributes.push(KeyValue::new("edgeway.stage", labels.stage.to_string()));
            labels.route.to_string().into()
        }
        None => record.method.as_str().to_owned().into(),
    };
    trace.end(name, SystemTime::now(), attributes, record.status >= 500);
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; a later version's header is read
/// by its first four fields, as the W3C spec asks. `None` for anything invalid (a new trace
/// is started then).
fn parse_traceparent(value: &HeaderValue) -> Option<(TraceId, SpanId, TraceFlags)> {
    let text = value.to_str().ok()?.trim();
    let mut fields = text.split('-');
    let version = fields.next()?;
    let trace = fields.next()?;
    let parent = fields.next()?;
    let flags = fields.next()?;
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(parent, 16)
        || !lower_hex(flags, 2)
        || (version == "00" && fields.next().is_some())
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let parent_id = SpanId::from_hex(parent).ok()?;
    if trace_id == TraceId::INVALID || parent_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, parent_id, TraceFlags::new(flags & 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_strictly() {
        let parse = |s: &'static str| parse_traceparent(&HeaderValue::from_static(s));
        let (trace, parent, flags) =
            parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(format!("{trace:032x}"), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format!("{parent:016x}"), "00f067aa0ba902b7");
        assert!(flags.is_sampled());
        assert!(
            !parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .2
                .is_sampled()
        );
        // A later version with more fields is read by its first four.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
