//! The bodies that stream through the gateway, never buffered whole.
//!
//! [`ClientBody`] is the body of a request as the pipeline receives it, whatever transport it
//! came on: each listener turns its protocol's body into one, so `pipeline::run` never names a
//! connection type. [`RequestBody`] carries the client's body to the origin, counting bytes and cutting the
//! stream off with an error once it passes `limits.max_body_bytes`: the origin's connection is
//! then aborted mid-body, so it never sees a complete request. [`ResponseBody`] carries a
//! response to the client and writes the access-log line when it ends (or is dropped), so the
//! line has the real byte count and total time.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use crate::execution_log;
use crate::telemetry::execution::{TRACE_BYTES, body_text};
use crate::telemetry::{AccessRecord, Totals};

mod pooled;

pub use pooled::{IdleConnections, PooledBody};

/// The error type of gateway bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body passed the configured limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    pub limit: u64,
}

/// A client's request body, as a transport delivers it to the pipeline.
#[derive(Debug)]
pub enum ClientBody {
    /// HTTP/1.1 and HTTP/2, as hyper reads them: the common case, not boxed.
    Http(Incoming),
    /// A body the transport holds whole (a WebSocket message, say).
    Full(Bytes),
    /// Any other transport's stream.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
    /// One of the others, failed with [`BodyReadTimeout`] once the client sends nothing for its
    /// idle timeout (slow POST): see [`ClientBody::with_idle_timeout`].
    Timed(Box<TimedBody>),
}

/// A request body that stopped arriving: the client sent nothing for the idle timeout
/// (`limits.body_read_timeout_ms`).
#[derive(Debug, thiserror::Error)]
#[error("the client sent no body bytes for {} ms", .0.as_millis())]
pub struct BodyReadTimeout(pub std::time::Duration);

/// A client body with an idle timer (see [`ClientBody::Timed`]).
#[derive(Debug)]
pub struct TimedBody {
    inner: ClientBody,
    idle: std::time::Duration,
    /// Made when the body first waits; reset when it waits again after progress.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

impl ClientBody {
    /// No body.
    pub fn empty() -> Self {
        Self::Full(Bytes::new())
    }

    /// This body, failing with [`BodyReadTimeout`] if the client sends nothing for `idle`
    /// while it is being read. A body already whole (or none) is left as it is, so a request
    /// without one costs nothing.
    pub fn with_idle_timeout(self, idle: std::time::Duration) -> Self {
        if matches!(self, Self::Full(_) | Self::Timed(_)) || self.is_end_stream() {
            return self;
        }
        Self::Timed(Box::new(TimedBody {
            inner: self,
            idle,
            sleep: None,
            waiting: false,
        }))
    }

    /// A stream from any transport.
    pub fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        Self::Boxed(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Incoming> for ClientBody {
    fn from(incoming: Incoming) -> Self {
        Self::Http(incoming)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Http(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
            Self::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            Self::Full(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Self::Boxed(body) => Pin::new(body).poll_frame(cx),
            Self::Timed(timed) => {
                let timed = &mut **timed;
                match Pin::new(&mut timed.inner).poll_frame(cx) {
                    Poll::Ready(frame) => {
                        timed.waiting = false;
                        Poll::Ready(frame)
                    }
                    Poll::Pending => {
                        let idle = timed.idle;
                        let sleep = timed
                            .sleep
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                        if !timed.waiting {
                            sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                            timed.waiting = true;
                        }
                        ready!(sleep.as_mut().poll(cx));
                        timed.inner = Self::empty();
                        Poll::Ready(Some(Err(BodyReadTimeout(idle).into())))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Http(incoming) => incoming.is_end_stream(),
            Self::Full(bytes) => bytes.is_empty(),
            Self::Boxed(body) => body.is_end_stream(),
            Self::Timed(timed) => timed.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Http(incoming) => incoming.size_hint(),
            Self::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Self::Boxed(body) => body.size_hint(),
            Self::Timed(timed) => timed.inner.size_hint(),
        }
    }
}

/// What the pipeline learns about a request body while it streams.
#[derive(Debug, Default)]
pub struct BodyStats {
    bytes: AtomicU64,
    over_limit: AtomicBool,
    client_failed: AtomicBool,
    timed_out: AtomicBool,
}

impl BodyStats {
    /// Bytes read from the client so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// True once the body passed the limit.
    pub fn over_limit(&self) -> bool {
        self.over_limit.load(Ordering::Relaxed)
    }

    /// True once reading the client's body failed (bad chunked framing, a cut-off body): a
    /// failed origin call is then the client's fault, not the origin's.
    pub fn client_failed(&self) -> bool {
        self.client_failed.load(Ordering::Relaxed)
    }

    /// True once the client stopped sending its body for the idle timeout.
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// The client's body on its way to the origin.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<ClientBody>,
    /// A body the gateway holds whole (from a plugin, or buffered for one); sent first.
    buffered: Option<Bytes>,
    limit: u64,
    seen: u64,
    stats: Option<Arc<BodyStats>>,
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self {
            inner: None,
            buffered: None,
            limit: 0,
            seen: 0,
            stats: None,
        }
    }

    /// A body held whole.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            buffered: (!bytes.is_empty()).then_some(bytes),
            ..Self::empty()
        }
    }

    /// Streams the client's body, failing once more than `limit` bytes have passed. Returns the
    /// body and the stats it updates; an already finished body needs neither.
    pub fn limited(incoming: ClientBody, limit: u64) -> (Self, Option<Arc<BodyStats>>) {
        if incoming.is_end_stream() {
            return (Self::empty(), None);
        }
        let stats = Arc::new(BodyStats::default());
        let body = Self {
            inner: Some(incoming),
            buffered: None,
            limit,
            seen: 0,
            stats: Some(stats.clone()),
        };
        (body, Some(stats))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(bytes) = this.buffered.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                if let Some(stats) = &this.stats {
                    stats.client_failed.store(true, Ordering::Relaxed);
                    if e.is::<BodyReadTimeout>() {
                        stats.timed_out.store(true, Ordering::Relaxed);
                    }
                }
                return Poll::Ready(Some(Err(e)));
            }
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            this.seen += data.len() as u64;
            if let Some(stats) = &this.stats {
                stats.bytes.store(this.seen, Ordering::Relaxed);
            }
            if this.seen > this.limit {
                if let Some(stats) = &this.stats {
                    stats.over_limit.store(true, Ordering::Relaxed);
                }
                this.inner = None;
                return Poll::Ready(Some(Err(BodyTooLarge { limit: this.limit }.into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_none() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(bytes) = &self.buffered {
            return SizeHint::with_exact(bytes.len() as u64);
        }
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// Sees a response body's bytes as they stream (the stage cache collecting an entry).
pub trait BodyTap: Send + std::fmt::Debug {
    /// A chunk went out; false stops the tap (the entry got too large).
    fn data(&mut self, data: &Bytes) -> bool;
    /// The body ended whole.
    fn finish(self: Box<Self>);
}

/// Where a response's bytes come from.
#[derive(Debug)]
pub enum ResponseSource {
    /// A body the gateway made (mocks, errors); `None` once sent.
    Full(Option<Bytes>),
    /// The origin's body, streamed.
    Upstream(PooledBody),
}

/// A response body on its way to the client; logs the request when it ends.
#[derive(Debug)]
pub struct ResponseBody {
    source: ResponseSource,
    sent: u64,
    log: Option<PendingLog>,
    /// A copy being collected for the stage cache.
    cache: Option<Box<dyn BodyTap>>,
    /// The body's first bytes, for a data trace's execution-log line.
    trace: Option<Vec<u8>>,
}

#[derive(Debug)]
struct PendingLog {
    record: AccessRecord,
    request: Option<Arc<BodyStats>>,
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::from_source(ResponseSource::Full(Some(bytes.into())))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from_source(ResponseSource::Full(None))
    }

    /// The origin's body.
    pub fn upstream(body: PooledBody) -> Self {
        Self::from_source(ResponseSource::Upstream(body))
    }

    fn from_source(source: ResponseSource) -> Self {
        Self {
            source,
            sent: 0,
            log: None,
            cache: None,
            trace: None,
        }
    }

    /// Keeps the body's first bytes for a data trace, written when it ends.
    pub fn trace_data(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Collects a copy of the body as it streams and stores it in the cache when it ends
    /// whole; a body that fails or passes the size limit is not stored.
    pub fn fill_cache(&mut self, fill: Box<dyn BodyTap>) {
        if self.is_end_stream() {
            fill.finish();
        } else {
            self.cache = Some(fill);
        }
    }

    /// Counts and logs `record` when this body ends or is dropped.
    pub fn log_on_end(&mut self, record: AccessRecord, request: Option<Arc<BodyStats>>) {
        self.log = Some(PendingLog { record, request });
    }

    fn finish(&mut self) {
        if let Some(pending) = self.log.take() {
            let record = &pending.record;
            let latency = record.start.elapsed();
            if let Some(metrics) = &record.metrics {
                metrics.record(record.status, latency, record.integration_latency);
            }
            if let Some(log) = &record.log {
                let totals = Totals {
                    bytes_in: pending.request.as_ref().map_or(0, |s| s.bytes()),
                    bytes_out: self.sent,
                    latency,
                };
                log.write(record, &totals);
            }
            crate::telemetry::traces::end_request(record);
            if let Some(labels) = record.route.as_deref() {
                let request_id = record.request_id.to_str().unwrap_or_default();
                if let Some(body) = self.trace.take() {
                    execution_log!(
                        info,
                        request_id,
                        labels,
                        "method response body",
                        body = %body_text(&body),
                        bytes = self.sent
                    );
                }
                if labels.execution.info() {
                    execution_log!(
                        info,
                        request_id,
                        labels,
                        "method completed",
                        status = record.status,
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        bytes = self.sent
                    );
                }
            }
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            ResponseSource::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            ResponseSource::Upstream(incoming) => {
                ready!(Pin::new(incoming).poll_frame(cx)).map(|r| r.map_err(BoxError::from))
            }
        };
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if let Some(trace) = &mut this.trace {
                        let room = TRACE_BYTES.saturating_sub(trace.len());
                        trace.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    if let Some(fill) = &mut this.cache
                        && !fill.data(data)
                    {
                        this.cache = None;
                    }
                }
                // hyper stops polling once the body says it has ended, so the last chunk is
                // where a length-delimited body completes.
                if this.cache.is_some() && this.is_end_stream() {
                    if let Some(fill) = this.cache.take() {
                        fill.finish();
                    }
                }
            }
            Some(Err(_)) => {
                this.cache = None;
                this.finish();
            }
            None => {
                if let Some(fill) = this.cache.take() {
                    fill.finish();
                }
                this.finish();
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            ResponseSource::Full(bytes) => bytes.is_none(),
            ResponseSource::Upstream(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            ResponseSource::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseSource::Upstream(incoming) => incoming.size_hint(),
        }
    }
}
