//! The access log: one line per request, written when the response body ends. By default it
//! is Edgeway's JSON line on stdout; a stage's `access_log` picks a format (see
//! [`super::log_format`]) and a destination (stdout, a file, or none).
//!
//! Request handlers append formatted lines to an in-memory buffer per output; a background
//! thread writes the buffers out every 50 ms (and on shutdown), so a request never waits on
//! stdout or a disk. If an output stalls, its buffer stops growing at 16 MiB and further lines
//! are counted as dropped rather than holding memory without bound.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use http::uri::PathAndQuery;

use super::log_format::LogFormat;
use crate::gateway_responses::ErrorKind;

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
    /// Where the stage's access-log lines go; `None` when its log is off.
    pub log: Option<Arc<StageLog>>,
    /// The stage's execution logs.
    pub execution: super::execution::Execution,
    /// The stage's part in traces; `None` without `tracing`.
    pub tracing: Option<Arc<super::traces::RouteTracing>>,
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
            log: None,
            execution: super::execution::Execution::default(),
            tracing: None,
        }
    }
}

/// The node's access-log outputs: stdout, and each file a stage logs to, opened once and
/// shared by every stage (and generation) that names it.
#[derive(Debug)]
pub struct AccessLog {
    stdout: Arc<Sink>,
    files: Mutex<HashMap<PathBuf, Weak<Sink>>>,
    /// Edgeway's line on stdout: where stages without `access_log` write.
    default: Arc<StageLog>,
    /// Lines dropped since the node started, for `edgeway_access_log_dropped_total`.
    dropped_total: Arc<AtomicU64>,
    /// Benchmarks: nothing is kept.
    discard: bool,
}

/// One output: lines are appended to a buffer that the log's thread writes out.
#[derive(Debug)]
pub struct Sink {
    out: Output,
    buffer: Mutex<Vec<u8>>,
    /// Since the last flush's warning.
    dropped: AtomicU64,
    dropped_total: Arc<AtomicU64>,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
    Discard,
}

/// Where a stage's lines go and how they look.
#[derive(Debug)]
pub struct StageLog {
    /// `None`: Edgeway's JSON line.
    format: Option<Arc<LogFormat>>,
    sink: Arc<Sink>,
}

/// A stage's `access_log` (or the node-wide one), as the config gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// `None`: Edgeway's JSON line.
    pub format: Option<Arc<LogFormat>>,
    pub destination: Destination,
}

/// `destination`: where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Appended to; reopened on SIGUSR1 (after logrotate renames it).
    File(PathBuf),
    /// No access log for the stage.
    Off,
}

/// What a finished request contributes to its log line.
#[derive(Debug)]
pub struct AccessRecord {
    pub time: SystemTime,
    pub start: Instant,
    pub request_id: http::HeaderValue,
    pub route: Option<Arc<RouteLabels>>,
    /// Where the line goes: the route's stage's log, or the node-wide one for a request that
    /// matched no route; `None` when that is off.
    pub log: Option<Arc<StageLog>>,
    pub method: Method,
    pub path: Option<PathAndQuery>,
    pub version: http::Version,
    pub status: u16,
    pub integration_latency: Option<Duration>,
    /// The status the integration answered with, before any mapping.
    pub integration_status: Option<u16>,
    pub authorizer_latency: Option<Duration>,
    pub source_ip: http::HeaderValue,
    /// The gateway error the request ended in.
    pub error: Option<&'static ErrorKind>,
    /// The request's trace, when its stage takes part in traces: its span ends with the body.
    pub trace: Option<Box<super::traces::RequestTrace>>,
    /// What only custom formats use; filled when the generation has one that does (in the
    /// record, not on the heap: an allocation per request costs more than the bytes).
    pub extras: RecordExtras,
    /// Where the request is counted: its route's, or the generation's for unrouted requests;
    /// `None` with metrics off.
    pub metrics: Option<Arc<super::metrics::RequestMetrics>>,
    /// Set for a WebSocket API's connect, message and disconnect.
    pub websocket: Option<Box<WebSocketEvent>>,
}

/// What a WebSocket event adds to its access-log line (`$context.eventType`,
/// `$context.connectionId`, `$context.messageId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketEvent {
    /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
    pub event_type: &'static str,
    pub connection_id: Box<str>,
    /// MESSAGE only.
    pub message_id: Option<Box<str>>,
    /// When the connection opened, in milliseconds since the epoch (`$context.connectedAt`).
    pub connected_at_ms: u64,
}

/// What is known once the response body has ended.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    /// Request body bytes read.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From the request's arrival to its body's end.
    pub latency: Duration,
}

/// Who an authorizer said the caller is, as `$context.authorizer.*` reads it. The authorizers'
/// principal implements it, so a record holds the request's own `Arc` (the log sits below the
/// authorizers and names none of their types).
pub trait Caller: Send + Sync + std::fmt::Debug {
    fn principal_id(&self) -> &str;
    /// A value of the authorizer's context.
    fn context_value(&self, key: &str) -> Option<&str>;
}

/// The API key a request presented, as `$context.identity.apiKeyId` reads it.
pub trait KeyId: Send + Sync + std::fmt::Debug {
    fn key_id(&self) -> &str;
}

/// What a request keeps for access-log formats that use more than Edgeway's line does.
#[derive(Debug, Default)]
pub struct RecordExtras {
    pub host: Option<http::HeaderValue>,
    pub user_agent: Option<http::HeaderValue>,
    /// The custom domain's base path the request matched.
    pub base_path: Option<Box<str>>,
    pub principal: Option<Arc<dyn Caller>>,
    pub api_key: Option<Arc<dyn KeyId>>,
    /// The error's client-facing message.
    pub error_message: Option<Box<str>>,
    /// The client's certificate (mutual TLS).
    pub client_cert: Option<Arc<crate::client_cert::ClientCert>>,
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

/// `time` as RFC 3339 with milliseconds (`2026-11-21T08:27:01.042Z`); the part up to the
/// second is formatted once per second per thread.
pub fn push_time(out: &mut Vec<u8>, time: SystemTime) {
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
    /// A log whose buffers a background thread writes out every 50 ms.
    pub fn stdout() -> Arc<Self> {
        let log = Arc::new(Self::with(false));
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
        Arc::new(Self::with(true))
    }

    fn with(discard: bool) -> Self {
        let dropped_total = Arc::new(AtomicU64::new(0));
        let stdout = Sink::new(
            if discard {
                Output::Discard
            } else {
                Output::Stdout
            },
            &dropped_total,
        );
        Self {
            default: Arc::new(StageLog {
                format: None,
                sink: stdout.clone(),
            }),
            stdout,
            files: Mutex::default(),
            dropped_total,
            discard,
        }
    }

    /// Where a stage with `settings` logs (`None`: Edgeway's line on stdout). A file is opened
    /// here, once per path, so a file that cannot be written refuses the config that names it.
    pub fn stage_log(
        &self,
        settings: Option<&AccessLogSettings>,
    ) -> std::io::Result<Option<Arc<StageLog>>> {
        let Some(settings) = settings else {
            return Ok(Some(self.default.clone()));
        };
        let sink = match &settings.destination {
            Destination::Off => return Ok(None),
            Destination::Stdout => self.stdout.clone(),
            Destination::File(_) if self.discard => self.stdout.clone(),
            Destination::File(path) => self.file(path)?,
        };
        Ok(Some(Arc::new(StageLog {
            format: settings.format.clone(),
            sink,
        })))
    }

    fn file(&self, path: &Path) -> std::io::Result<Arc<Sink>> {
        let mut files = crate::sync::lock(&self.files);
        if let Some(sink) = files.get(path).and_then(Weak::upgrade) {
            return Ok(sink);
        }
        let file = open_append(path)?;
        let sink = Sink::new(
            Output::File {
                path: path.to_owned(),
                file: Mutex::new(file),
            },
            &self.dropped_total,
        );
        files.retain(|_, sink| sink.strong_count() > 0);
        files.insert(path.to_owned(), Arc::downgrade(&sink));
        Ok(sink)
    }

    fn live_files(&self) -> Vec<Arc<Sink>> {
        crate::sync::lock(&self.files)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Opens every log file again by its path, after writing what is buffered to the old one:
    /// logrotate renames the file, then sends SIGUSR1. A file that cannot be opened keeps its
    /// old handle.
    pub fn reopen(&self) {
        for sink in self.live_files() {
            sink.flush();
            if let Output::File { path, file } = &sink.out {
                match open_append(path) {
                    Ok(new) => *crate::sync::lock(file) = new,
                    Err(e) => tracing::error!(
                        path = %path.display(),
                        error = %e,
                        "cannot reopen the access log; still writing to the file it had open"
                    ),
                }
            }
        }
        tracing::info!("access-log files reopened");
    }

    /// Lines dropped since the node started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Writes buffered lines out now.
    pub fn flush(&self) {
        self.stdout.flush();
        for sink in self.live_files() {
            sink.flush();
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl Sink {
    fn new(out: Output, dropped_total: &Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(Self {
            out,
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            dropped: AtomicU64::new(0),
            dropped_total: dropped_total.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves at worst a partial line; keep logging.
        crate::sync::lock(&self.buffer)
    }

    fn append(&self, line: &[u8]) {
        let mut buffer = self.lock();
        if buffer.len() + line.len() > MAX_BUFFERED {
            drop(buffer);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.extend_from_slice(line);
    }

    fn flush(&self) {
        if matches!(self.out, Output::Discard) {
            return;
        }
        let pending = std::mem::take(&mut *self.lock());
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                output = %self.name(),
                "access-log lines dropped: the output is not keeping up"
            );
        }
        if pending.is_empty() {
            return;
        }
        // Nowhere to report a closed stdout; the lines are lost either way.
        let written = match &self.out {
            Output::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&pending).and_then(|()| stdout.flush())
            }
            Output::File { file, .. } => crate::sync::lock(file).write_all(&pending),
            Output::Discard => Ok(()),
        };
        if let (Err(e), Output::File { path, .. }) = (written, &self.out) {
            tracing::error!(path = %path.display(), error = %e, "access-log lines lost");
        }
    }

    fn name(&self) -> String {
        match &self.out {
            Output::Stdout => "stdout".into(),
            Output::File { path, .. } => path.display().to_string(),
            Output::Discard => "none".into(),
        }
    }
}

impl Drop for Sink {
    /// A file no generation logs to any more gets its last lines.
    fn drop(&mut self) {
        self.flush();
    }
}

impl StageLog {
    /// Whether the format uses what only custom formats need.
    pub fn needs_extras(&self) -> bool {
        self.format.as_ref().is_some_and(|f| f.needs_extras)
    }

    /// Appends the line for a finished request.
    pub fn write(&self, record: &AccessRecord, totals: &Totals) {
        if matches!(self.sink.out, Output::Discard) {
            return;
        }
        let mut line = Vec::with_capacity(384);
        match &self.format {
            Some(format) => format.write(&mut line, record, totals),
            None => edgeway_line(&mut line, record, totals),
        }
        line.push(b'\n');
        self.sink.append(&line);
    }
}

/// Edgeway's own line, the default: JSON with the fields an operator reads most.
fn edgeway_line(line: &mut Vec<u8>, record: &AccessRecord, totals: &Totals) {
    line.extend_from_slice(b"{\"time\":\"");
    push_time(line, record.time);
    line.extend_from_slice(b"\",\"request_id\":");
    push_plain_str(line, record.request_id.as_bytes());
    line.push(b',');
    match &record.route {
        Some(labels) => line.extend_from_slice(labels.json.as_bytes()),
        None => line.extend_from_slice(b"\"api\":null,\"stage\":null,\"route\":null"),
    }
    line.extend_from_slice(b",\"method\":");
    // A method is an HTTP token: no quote, backslash or control character.
    push_plain_str(line, record.method.as_str().as_bytes());
    line.extend_from_slice(b",\"path\":");
    push_json_str(line, record.path.as_ref().map_or("", PathAndQuery::path));
    let mut digits = itoa::Buffer::new();
    line.extend_from_slice(b",\"status\":");
    line.extend_from_slice(digits.format(record.status).as_bytes());
    line.extend_from_slice(b",\"bytes_in\":");
    line.extend_from_slice(digits.format(totals.bytes_in).as_bytes());
    line.extend_from_slice(b",\"bytes_out\":");
    line.extend_from_slice(digits.format(totals.bytes_out).as_bytes());
    line.extend_from_slice(b",\"latency_ms\":");
    push_millis(line, totals.latency);
    line.extend_from_slice(b",\"integration_latency_ms\":");
    match record.integration_latency {
        Some(latency) => push_millis(line, latency),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"source_ip\":");
    push_plain_str(line, record.source_ip.as_bytes());
    // Edgeway's own ids and event names: nothing to escape.
    if let Some(event) = &record.websocket {
        line.extend_from_slice(b",\"event_type\":");
        push_plain_str(line, event.event_type.as_bytes());
        line.extend_from_slice(b",\"connection_id\":");
        push_plain_str(line, event.connection_id.as_bytes());
        if let Some(message_id) = &event.message_id {
            line.extend_from_slice(b",\"message_id\":");
            push_plain_str(line, message_id.as_bytes());
        }
    }
    line.push(b'}');
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
