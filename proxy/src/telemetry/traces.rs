//! Traces: W3C trace context (`traceparent`, `tracestate`) and spans exported over OTLP.
//!
//! A stage with `tracing: { sampling: RATIO }` takes part in its requests' traces: a client's
//! `traceparent` is continued (its sampled flag decides, as OpenTelemetry's parent-based
//! sampler does), one is started when there is none (sampled when the trace id falls under the
//! ratio), and the origin receives a `traceparent` whose parent is the integration's span. A
//! sampled request produces a server span for the request and a span for each phase that costs
//! time (authorizer, cache lookup, transforms, integration), encoded as OTLP protobuf when it
//! ends (`otlp.rs`) from the times the pipeline measured, into a bounded buffer: past
//! `queue_size` spans waiting, new ones are dropped and counted rather than held. A full batch
//! (`batch_size`), or the oldest batch every `export_interval_ms`, is sent to the collector
//! (`tracing.endpoint`, OTLP/HTTP protobuf) by a task on the node's runtime, through the origin
//! pool Edgeway uses for its own upstreams; at most `MAX_IN_FLIGHT` exports at a time.
//!
//! A stage without `tracing` does nothing here: a client's `traceparent` reaches the origin as
//! any header does.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

use super::otlp::{self, Envelope, Kind, SpanHead};

/// Sends one export request to the collector; Edgeway's origin pool in the node
/// (`upstream::OtlpClient`), a recorder in tests.
pub trait Collector: Send + Sync + std::fmt::Debug + 'static {
    /// POSTs `body` (an `ExportTraceServiceRequest`) and says whether the collector took it.
    fn send(
        &self,
        body: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;
}

/// Exports running at once; a batch that is full while they run waits in the queue.
const MAX_IN_FLIGHT: usize = 2;

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
    queue: Mutex<Queue>,
    collector: Arc<dyn Collector>,
    envelope: Envelope,
    runtime: tokio::runtime::Handle,
    /// `batch_size`, at most `queue_size`.
    batch_size: usize,
    in_flight: AtomicUsize,
    /// Signalled when an export ends (for `shutdown`).
    exported: tokio::sync::Notify,
    dropped: AtomicU64,
    /// Whether the last export failed (a failure is logged when it starts, not per batch).
    failing: AtomicBool,
    pub settings: ExportSettings,
}

/// Encoded spans waiting for export, in batches of at most `batch_size`.
#[derive(Debug, Default)]
struct Queue {
    batches: std::collections::VecDeque<Batch>,
    /// Spans in all batches.
    count: usize,
}

/// One export request's spans.
#[derive(Debug, Default)]
struct Batch {
    /// `ScopeSpans.spans` fields, back to back.
    spans: Vec<u8>,
    count: usize,
}

thread_local! {
    /// Where a span is encoded before it is queued with its length.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Holds an export's `in_flight` slot; gives it back however the export ends.
struct Slot(Arc<Exporter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.exported.notify_waiters();
    }
}

impl Exporter {
    /// An exporter sending through `collector`, with a task on `runtime` that sends what
    /// waits every `export_interval`.
    pub fn start(
        settings: &ExportSettings,
        collector: Arc<dyn Collector>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let exporter = Arc::new(Self {
            queue: Mutex::default(),
            collector,
            envelope: Envelope::new(&settings.service_name),
            runtime: runtime.clone(),
            batch_size: settings.batch_size.clamp(1, settings.queue_size.max(1)),
            in_flight: AtomicUsize::new(0),
            exported: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            settings: settings.clone(),
        });
        let weak = Arc::downgrade(&exporter);
        let interval = settings.export_interval;
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(exporter) = Weak::upgrade(&weak) else {
                    break;
                };
                exporter.export(false);
            }
        });
        exporter
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one span, encoded by `encode`, and sends a batch when one is full.
    fn push(self: &Arc<Self>, encode: impl FnOnce(&mut Vec<u8>)) {
        let full = SCRATCH.with_borrow_mut(|fields| {
            fields.clear();
            encode(fields);
            let mut queue = crate::sync::lock(&self.queue);
            if queue.count >= self.settings.queue_size {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let batch = match queue.batches.back_mut() {
                Some(batch) if batch.count < self.batch_size => batch,
                last => {
                    // The next batch is likely as large as the last: no growing it span by span.
                    let capacity = last.map_or(0, |b| b.spans.len());
                    queue.batches.push_back(Batch {
                        spans: Vec::with_capacity(capacity),
                        count: 0,
                    });
                    queue.batches.back_mut().unwrap_or_else(|| unreachable!())
                }
            };
            otlp::push_span(&mut batch.spans, fields);
            batch.count += 1;
            let full = batch.count == self.batch_size;
            queue.count += 1;
            full
        });
        if full {
            self.export(true);
        }
    }

    /// Sends the oldest batch (only when it is full, with `full_only`), unless `MAX_IN_FLIGHT`
    /// exports are running: it then waits for the next.
    fn export(self: &Arc<Self>, full_only: bool) {
        if self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_IN_FLIGHT).then_some(n + 1)
            })
            .is_err()
        {
            return;
        }
        let slot = Slot(self.clone());
        let Some(batch) = self.take(full_only) else {
            return;
        };
        self.runtime.spawn(async move {
            slot.0.send(batch).await;
            let exporter = slot.0.clone();
            drop(slot);
            // What filled up meanwhile.
            exporter.export(true);
        });
    }

    fn take(&self, full_only: bool) -> Option<Batch> {
        let mut queue = crate::sync::lock(&self.queue);
        let ready = queue
            .batches
            .front()
            .is_some_and(|b| b.count > 0 && (!full_only || b.count >= self.batch_size));
        if !ready {
            return None;
        }
        let batch = queue.batches.pop_front()?;
        queue.count -= batch.count;
        Some(batch)
    }

    /// The export request of `batch`.
    fn body(&self, batch: &Batch) -> Bytes {
        Bytes::from(self.envelope.request(&batch.spans))
    }

    async fn send(&self, batch: Batch) {
        let body = self.body(&batch);
        let sent = tokio::time::timeout(self.settings.timeout, self.collector.send(body)).await;
        let error = match sent {
            Ok(Ok(())) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = self.settings.endpoint, "span export resumed");
                }
                return;
            }
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {} ms", self.settings.timeout.as_millis()),
        };
        self.dropped
            .fetch_add(batch.count as u64, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                endpoint = self.settings.endpoint,
                spans = batch.count,
                error,
                "span export failed; spans are dropped until it works again"
            );
        }
    }

    /// Waits for the exports running, then sends everything queued, within the export
    /// timeout; what is left then is counted as dropped.
    pub async fn shutdown(&self) {
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let drained = tokio::time::timeout_at(deadline, async {
            loop {
                let ended = self.exported.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                ended.await;
            }
            while let Some(batch) = self.take(false) {
                self.send(batch).await;
            }
        })
        .await;
        if drained.is_err() {
            let left = std::mem::take(&mut *crate::sync::lock(&self.queue));
            self.dropped.fetch_add(left.count as u64, Ordering::Relaxed);
            tracing::warn!(spans = left.count, "spans not exported at shutdown");
        }
    }
}

impl Drop for Exporter {
    /// A replaced exporter (a reload changed `tracing`) sends what it still holds.
    fn drop(&mut self) {
        let queue = std::mem::take(&mut *crate::sync::lock(&self.queue));
        for batch in queue.batches.into_iter().filter(|b| b.count > 0) {
            let collector = self.collector.clone();
            let body = self.body(&batch);
            let timeout = self.settings.timeout;
            self.runtime.spawn(async move {
                let _ = tokio::time::timeout(timeout, collector.send(body)).await;
            });
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
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpan {
    pub name: &'static str,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    /// `http.response.status_code`, for the integration's span.
    pub status: Option<u16>,
    pub error: bool,
}

fn new_trace_id() -> TraceId {
    // Never all zeros (invalid): the low bits are the sampling draw, the high ones random.
    TraceId::from(rand::random::<u128>() | 1)
}

impl RequestTrace {
    /// Continues the client's trace, or starts one.
    pub fn begin(route: &Arc<RouteTracing>, headers: &HeaderMap, start: SystemTime) -> Self {
        let parent = headers.get(&TRACEPARENT).and_then(parse_traceparent);
        let (trace_id, remote_parent, sampled, state) = match parent {
            Some((trace_id, parent_id, flags)) => (
                trace_id,
                Some(parent_id),
                flags.is_sampled(),
                headers.get(&TRACESTATE).cloned(),
            ),
            None => {
                let trace_id = new_trace_id();
                let low =
                    u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
                (trace_id, None, low <= route.threshold, None)
            }
        };
        Self {
            route: route.clone(),
            trace_id,
            span_id: Self::new_span_id(),
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
        SpanId::from(rand::random::<u64>() | 1)
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
        let head = SpanHead {
            trace_id: self.trace_id.to_bytes(),
            span_id: id.to_bytes(),
            parent: Some((self.span_id.to_bytes(), false)),
            kind: span.kind,
            name: span.name,
            start: span.start,
            end: span.end,
            error: span.error,
        };
        self.route.exporter.push(|out| {
            otlp::span(out, &head, |out| {
                if let Some(status) = span.status {
                    otlp::int_attribute(out, "http.response.status_code", status.into());
                }
            });
        });
    }
}

/// Ends the request's own span with what its access record knows, when it is sampled.
pub fn end_request(record: &super::AccessRecord) {
    let Some(trace) = record.trace.as_deref().filter(|t| t.sampled) else {
        return;
    };
    let labels = record.route.as_deref();
    let head = SpanHead {
        trace_id: trace.trace_id.to_bytes(),
        span_id: trace.span_id.to_bytes(),
        parent: trace.remote_parent.map(|p| (p.to_bytes(), true)),
        kind: Kind::Server,
        name: labels.map_or(record.method.as_str(), |l| &*l.route),
        start: trace.start,
        end: SystemTime::now(),
        error: record.status >= 500,
    };
    trace.route.exporter.push(|out| {
        otlp::span(out, &head, |out| {
            let text = |out: &mut Vec<u8>, key: &str, value: &[u8]| {
                otlp::string_attribute(out, 9, key, value);
            };
            text(
                out,
                "http.request.method",
                record.method.as_str().as_bytes(),
            );
            if let Some(path) = &record.path {
                text(out, "url.path", path.path().as_bytes());
            }
            otlp::int_attribute(out, "http.response.status_code", record.status.into());
            text(out, "client.address", record.source_ip.as_bytes());
            text(out, "edgeway.request_id", record.request_id.as_bytes());
            if let Some(labels) = labels {
                let route = labels
                    .route
                    .split_once(' ')
                    .map_or(&*labels.route, |(_, p)| p);
                text(out, "http.route", route.as_bytes());
                text(out, "edgeway.api", labels.api.as_bytes());
                text(out, "edgeway.stage", labels.stage.as_bytes());
            }
        });
    });
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

    /// A collector that records what it is sent and answers only when told to.
    #[derive(Debug, Default)]
    struct Held {
        bodies: Mutex<Vec<Bytes>>,
        release: tokio::sync::Notify,
    }

    impl Collector for Arc<Held> {
        fn send(
            &self,
            body: Bytes,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
            let held = self.clone();
            Box::pin(async move {
                held.bodies.lock().unwrap().push(body);
                held.release.notified().await;
                Ok(())
            })
        }
    }

    fn span(exporter: &Arc<Exporter>) {
        exporter.push(|out| {
            let head = SpanHead {
                trace_id: [1; 16],
                span_id: [2; 8],
                parent: None,
                kind: Kind::Server,
                name: "GET /x",
                start: SystemTime::UNIX_EPOCH,
                end: SystemTime::UNIX_EPOCH,
                error: false,
            };
            otlp::span(out, &head, |_| {});
        });
    }

    /// An exporter to a collector that holds each export until released (timeout 60 s).
    fn held_exporter(queue_size: usize, batch_size: usize) -> (Arc<Held>, Arc<Exporter>) {
        let held = Arc::new(Held::default());
        let settings = ExportSettings {
            endpoint: "http://127.0.0.1:9/v1/traces".into(),
            service_name: "test".into(),
            queue_size,
            batch_size,
            export_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        };
        let exporter = Exporter::start(
            &settings,
            Arc::new(held.clone()),
            tokio::runtime::Handle::current(),
        );
        (held, exporter)
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded_and_batches_wait_for_slow_exports() {
        let (held, exporter) = held_exporter(4, 2);
        // Two full batches go out at once (MAX_IN_FLIGHT), and their collector holds them.
        for _ in 0..4 {
            span(&exporter);
        }
        tokio::task::yield_now().await;
        assert_eq!(held.bodies.lock().unwrap().len(), 2);
        // The next four wait in the queue; past them, spans are dropped and counted.
        for _ in 0..7 {
            span(&exporter);
        }
        assert_eq!(exporter.dropped(), 3);
        // Once the collector answers, the waiting batches follow, each its own request.
        held.release.notify_waiters();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let bodies = held.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 4);
        assert!(
            bodies.iter().all(|b| b.len() == bodies[0].len()),
            "two spans each"
        );
        held.release.notify_waiters();
        tokio::task::yield_now().await;
        // An export that times out drops its spans too.
        span(&exporter);
        span(&exporter);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(exporter.dropped(), 5);
        assert_eq!(held.bodies.lock().unwrap().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_running_exports_then_sends_the_rest() {
        // A batch larger than the queue is the queue.
        let (held, exporter) = held_exporter(3, 512);
        for _ in 0..4 {
            span(&exporter);
        }
        tokio::task::yield_now().await;
        assert_eq!(
            held.bodies.lock().unwrap().len(),
            1,
            "three spans fill a batch"
        );
        let stopping = tokio::spawn({
            let exporter = exporter.clone();
            async move { exporter.shutdown().await }
        });
        tokio::task::yield_now().await;
        assert!(!stopping.is_finished(), "an export is still running");
        // The running export answers; the fourth span follows; then shutdown is done.
        held.release.notify_waiters();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(held.bodies.lock().unwrap().len(), 2);
        held.release.notify_waiters();
        stopping.await.unwrap();
        assert_eq!(exporter.dropped(), 0);
    }

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
