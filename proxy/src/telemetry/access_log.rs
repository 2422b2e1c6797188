//! The access log: one JSON line per request on stdout, written when the response body ends.
//!
//! Request handlers append formatted lines to an in-memory buffer; a background thread writes
//! the buffer to stdout every 50 ms (and on shutdown), so a request never waits on stdout. If
//! stdout stalls, the buffer stops growing at 16 MiB and further lines are counted as dropped
//! rather than holding memory without bound.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use http::uri::PathAndQuery;

const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// Names of a matched route, shared by every request to it (for logs).
#[derive(Debug)]
pub struct RouteLabels {
    pub api: Box<str>,
    pub stage: Box<str>,
    /// The route as written, `GET /pets/{id}`, for operational logs.
    pub route: Box<str>,
    /// The deployment that serves the route (`$context.deploymentId`); none when the stage
    /// follows the config.
    pub deployment: Option<Box<str>>,
    /// Whether the route is its stage's canary side.
    pub canary: bool,
    /// `"api":...,"stage":...,"route":...` (and `"deployment"`, `"canary":true` when they
    /// apply) for the access log, rendered once.
    pub json: Box<str>,
    /// Where the route's requests are counted (shared with the other routes of its stage
    /// unless the stage has detailed metrics).
    pub metrics: Arc<super::metrics::RequestMetrics>,
}

impl RouteLabels {
    /// Labels for a route of `api` in `stage`, e.g. `GET /pets/{id}`, counted on its own.
    pub fn new(api: &str, stage: &str, route: &str) -> Self {
        Self::deployed(api, stage, route, None, false, Arc::default())
    }

    /// Labels for a route served from a deployment, on the base side or the canary's.
    pub fn deployed(
        api: &str,
        stage: &str,
        route: &str,
        deployment: Option<&str>,
        canary: bool,
        metrics: Arc<super::metrics::RequestMetrics>,
    ) -> Self {
        let mut json = String::from(labels_json(api, stage, route));
        if let Some(id) = deployment {
            let mut out = b",\"deployment\":".to_vec();
            push_json_str(&mut out, id);
            json.push_str(&String::from_utf8_lossy(&out));
        }
        if canary {
            json.push_str(",\"canary\":true");
        }
        Self {
            api: api.into(),
            stage: stage.into(),
            route: route.into(),
            deployment: deployment.map(Into::into),
            canary,
            json: json.into(),
            metrics,
        }
    }
}

/// Where access-log lines go.
#[derive(Debug)]
pub struct AccessLog {
    buffer: Mutex<Vec<u8>>,
    to_stdout: bool,
    /// Since the last flush's warning.
    dropped: AtomicU64,
    /// Since the node started, for `edgeway_access_log_dropped_total`.
    dropped_total: AtomicU64,
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
    pub source_ip: http::HeaderValue,
    /// Where the request is counted: its route's, or the generation's for unrouted requests;
    /// `None` with metrics off.
    pub metrics: Option<Arc<super::metrics::RequestMetrics>>,
}

/// Appends text the gateway knows needs no JSON escaping (its own request ids, method tokens,
/// IP addresses) as a JSON string.
fn push_plain_str(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// Appends `text` as a JSON string; request paths rarely need escaping, so check first.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Appends a duration in milliseconds with microsecond precision: `1.234`.
fn push_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(micros / 1000).as_bytes());
    let fraction = micros % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

/// `2026-11-21T08:27:01.` for the current second, formatted once per second per thread.
fn push_time(out: &mut Vec<u8>, time: SystemTime) {
    thread_local! {
        static PREFIX: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    PREFIX.with_borrow_mut(|(cached_second, prefix)| {
        if *cached_second != seconds {
            let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            *prefix = format!("{}.", text.trim_end_matches('Z'));
            *cached_second = seconds;
        }
        out.extend_from_slice(prefix.as_bytes());
    });
    let millis = since_epoch.subsec_millis();
    out.extend_from_slice(&[
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

/// The `"api":...,"stage":...,"route":...` part of a line, rendered once per route.
pub fn labels_json(api: &str, stage: &str, route: &str) -> Box<str> {
    let mut out = Vec::new();
    for (key, value) in [("api", api), ("stage", stage), ("route", route)] {
        if !out.is_empty() {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        push_json_str(&mut out, value);
    }
    String::from_utf8_lossy(&out).into()
}

impl AccessLog {
    /// A log that writes to stdout from a background thread.
    pub fn stdout() -> Arc<Self> {
        let log = Arc::new(Self {
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            to_stdout: true,
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
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
            dropped_total: AtomicU64::new(0),
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
        let mut line = Vec::with_capacity(384);
        line.extend_from_slice(b"{\"time\":\"");
        push_time(&mut line, record.time);
        line.extend_from_slice(b"\",\"request_id\":");
        push_plain_str(&mut line, record.request_id.as_bytes());
        line.push(b',');
        match &record.route {
            Some(labels) => line.extend_from_slice(labels.json.as_bytes()),
            None => line.extend_from_slice(b"\"api\":null,\"stage\":null,\"route\":null"),
        }
        line.extend_from_slice(b",\"method\":");
        // A method is an HTTP token: no quote, backslash or control character.
        push_plain_str(&mut line, record.method.as_str().as_bytes());
        line.extend_from_slice(b",\"path\":");
        push_json_str(
            &mut line,
            record.path.as_ref().map_or("", PathAndQuery::path),
        );
        let mut digits = itoa::Buffer::new();
        line.extend_from_slice(b",\"status\":");
        line.extend_from_slice(digits.format(record.status).as_bytes());
        line.extend_from_slice(b",\"bytes_in\":");
        line.extend_from_slice(digits.format(bytes_in).as_bytes());
        line.extend_from_slice(b",\"bytes_out\":");
        line.extend_from_slice(digits.format(bytes_out).as_bytes());
        line.extend_from_slice(b",\"latency_ms\":");
        push_millis(&mut line, record.start.elapsed());
        line.extend_from_slice(b",\"integration_latency_ms\":");
        match record.integration_latency {
            Some(latency) => push_millis(&mut line, latency),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"source_ip\":");
        push_plain_str(&mut line, record.source_ip.as_bytes());
        line.extend_from_slice(b"}\n");

        let mut buffer = self.lock();
        if buffer.len() + line.len() > MAX_BUFFERED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.extend_from_slice(&line);
    }

    /// Lines dropped since the node started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_have_microsecond_precision() {
        let mut out = Vec::new();
        push_millis(&mut out, Duration::from_micros(1_234_567));
        assert_eq!(out, b"1234.567");
        out.clear();
        push_millis(&mut out, Duration::from_micros(5));
        assert_eq!(out, b"0.005");
    }

    #[test]
    fn time_is_rfc3339_with_millis() {
        let mut out = Vec::new();
        push_time(
            &mut out,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_042),
        );
        assert_eq!(String::from_utf8(out).unwrap(), "2026-09-21T14:13:20.042Z");
    }

    #[test]
    fn strings_are_escaped_only_when_needed() {
        let mut out = Vec::new();
        push_json_str(&mut out, "/prod/pets/7");
        push_json_str(&mut out, "/a\"b\\c");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""/prod/pets/7""/a\"b\\c""#
        );
        let labels = labels_json("a\"pi", "prod", "GET /x");
        let parsed: serde_json::Value = serde_json::from_str(&format!("{{{labels}}}")).unwrap();
        assert_eq!(parsed["api"], "a\"pi");
        assert_eq!(parsed["route"], "GET /x");
    }
}

#[cfg(test)]
mod properties {
    use super::push_json_str;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_is_written_as_a_json_string_that_round_trips(text in ".{0,64}") {
            let mut out = Vec::new();
            push_json_str(&mut out, &text);
            let parsed: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(parsed, text);
        }
    }
}
