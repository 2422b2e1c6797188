//! The access log: one JSON line per request on stdout, written when the response body ends.
//!
//! Request handlers append formatted lines to an in-memory buffer; a background thread writes
//! the buffer to stdout every 50 ms (and on shutdown), so a request never waits on stdout. If
//! stdout stalls, the buffer stops growing at 16 MiB and further lines are counted as dropped
//! rather than holding memory without bound.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use http::uri::PathAndQuery;
use serde::Serialize;

use crate::pipeline::RouteLabels;

const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// Where access-log lines go.
#[derive(Debug)]
pub struct AccessLog {
    buffer: Mutex<Vec<u8>>,
    to_stdout: bool,
    dropped: AtomicU64,
}

/// What a finished request contributes to its log line.
#[derive(Debug)]
pub struct AccessRecord {
    pub time: SystemTime,
    pub start: Instant,
    pub request_id: http::HeaderValue,
    pub route: Option<Arc<RouteLabels>>,
    pub method: Method,
    pub path: Option<PathAndQuery>,
    pub status: u16,
    pub integration_latency: Option<Duration>,
    pub source_ip: IpAddr,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    api: Option<&'a str>,
    stage: Option<&'a str>,
    route: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    latency_ms: f64,
    integration_latency_ms: Option<f64>,
    source_ip: IpAddr,
}

fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

impl AccessLog {
    /// A log that writes to stdout from a background thread.
    pub fn stdout() -> Arc<Self> {
        let log = Arc::new(Self {
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            to_stdout: true,
            dropped: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&log);
        let spawned = std::thread::Builder::new()
            .name("edgeway-access-log".into())
            .spawn(move || {
                while let Some(log) = weak.upgrade() {
                    log.flush();
                    drop(log);
                    std::thread::sleep(FLUSH_INTERVAL);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the access-log thread; lines are written on shutdown only");
        }
        log
    }

    /// A log that keeps nothing (benchmarks).
    pub fn discard() -> Arc<Self> {
        Arc::new(Self {
            buffer: Mutex::new(Vec::new()),
            to_stdout: false,
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves at worst a partial line; keep logging.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the line for a finished request.
    pub fn write(&self, record: &AccessRecord, bytes_in: u64, bytes_out: u64) {
        if !self.to_stdout {
            return;
        }
        let labels = record.route.as_deref();
        let line = Line {
            time: humantime::format_rfc3339_millis(record.time).to_string(),
            request_id: record.request_id.to_str().unwrap_or_default(),
            api: labels.map(|l| &*l.api),
            stage: labels.map(|l| &*l.stage),
            route: labels.map(|l| &*l.route),
            method: record.method.as_str(),
            path: record.path.as_ref().map_or("", PathAndQuery::path),
            status: record.status,
            bytes_in,
            bytes_out,
            latency_ms: millis(record.start.elapsed()),
            integration_latency_ms: record.integration_latency.map(millis),
            source_ip: record.source_ip,
        };
        let mut out = Vec::with_capacity(384);
        if serde_json::to_writer(&mut out, &line).is_err() {
            return;
        }
        out.push(b'\n');
        let mut buffer = self.lock();
        if buffer.len() + out.len() > MAX_BUFFERED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.extend_from_slice(&out);
    }

    /// Writes buffered lines to stdout now.
    pub fn flush(&self) {
        if !self.to_stdout {
            return;
        }
        let pending = std::mem::take(&mut *self.lock());
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "access-log lines dropped: stdout is not keeping up"
            );
        }
        if pending.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // Nowhere to report a closed stdout; the lines are lost either way.
        let _ = stdout.write_all(&pending).and_then(|()| stdout.flush());
    }
}
