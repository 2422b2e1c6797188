//! Harness for the end-to-end tests: runs the real `edgeway` binary as a child process
//! against real origins (hyper servers bound to `127.0.0.1:0` in the test process).
//!
//! - [`Gateway`] writes a config into a fresh temp dir, spawns `edgeway serve`, collects its
//!   stdout (access log) and stderr (operational log) line by line, and waits for the
//!   `"listening"` events to learn the bound addresses.
//! - [`Origin`] is a hyper 1.x server (HTTP/1.1 + h2c, optionally TLS) that records every
//!   request it gets: method, URI, headers, body and whether the body arrived complete.
//! - [`TestCa`] issues certificates with rcgen.
//! - [`raw_request`] speaks raw bytes over TCP for what a well-behaved client can't send.
//!
//! Every wait is bounded in time; only loopback addresses are used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use serde_json::json;

/// How long to wait for the gateway to report its listeners.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Binary and temp dirs
// ---------------------------------------------------------------------------------------------

/// Path of the `edgeway` binary: `$EDGEWAY_BIN`, else `target/release/edgeway` next to the
/// directory holding this test executable (`target/release/deps/...`).
pub fn edgeway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEWAY_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "EDGEWAY_BIN={} is not a file; unset it or run `cargo build --release -p edgeway`",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-exe>  ->  target/release/edgeway
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("no target dir");
    let bin = target_dir.join("release").join("edgeway");
    if !bin.is_file() {
        panic!(
            "edgeway binary not found at {}: run `cargo build --release -p edgeway` first \
             (or point EDGEWAY_BIN at it)",
            bin.display()
        );
    }
    bin
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory under the system temp dir, unique per process and call.
pub fn unique_temp_dir(prefix: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

/// Options for starting a [`Gateway`]; see [`Gateway::builder`].
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    files: Vec<(String, Vec<u8>)>,
    env: Vec<(String, String)>,
    no_watch: bool,
    listeners: Option<Vec<String>>,
}

impl GatewayBuilder {
    /// Write an extra file (certificate, key, CA) into the gateway's temp dir before start.
    /// Configs refer to the dir as `$DIR`.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_string(), contents.into()));
        self
    }

    /// Set an environment variable for the child.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Pass `--no-watch`.
    pub fn no_watch(mut self) -> Self {
        self.no_watch = true;
        self
    }

    /// Listener names to wait for (default: derived from the config's `listen:` and `admin:`).
    pub fn listeners(mut self, names: &[&str]) -> Self {
        self.listeners = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Write the config (with `$DIR` replaced by the temp dir) and start `edgeway serve`.
    pub async fn start(self, config_yaml: &str) -> Gateway {
        Gateway::spawn(self, config_yaml).await
    }
}

/// A running `edgeway serve` child process. Killed on drop.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    /// Temp dir holding the config and any extra files.
    pub dir: PathBuf,
    /// Path of the config file the child was started with.
    pub config_path: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    addrs: HashMap<String, SocketAddr>,
    exited: Option<ExitStatus>,
}

/// Listener names a config declares, from its block-style `listen:` list and `admin:` key.
fn listener_names(yaml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_listen = false;
    let mut n = 0;
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let top_level = !line.starts_with(' ') && !line.starts_with('\t');
        if top_level {
            in_listen = line.starts_with("listen:");
            if line.starts_with("admin:") {
                names.push("admin".to_string());
            }
        } else if in_listen && line.trim_start().starts_with("- ") {
            // only items at the first indentation level of the list
            let indent = line.len() - line.trim_start().len();
            if indent <= 2 {
                names.push(format!("listen[{n}]"));
                n += 1;
            }
        }
    }
    names
}

impl Gateway {
    /// Start a gateway with default options.
    pub async fn start(config_yaml: &str) -> Gateway {
        Self::builder().start(config_yaml).await
    }

    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    async fn spawn(opts: GatewayBuilder, config_yaml: &str) -> Gateway {
        let bin = edgeway_bin();
        let dir = unique_temp_dir("edgeway-e2e");
        for (name, contents) in &opts.files {
            std::fs::write(dir.join(name), contents).expect("write extra file");
        }
        let config_path = dir.join("edgeway.yaml");
        let yaml = config_yaml.replace("$DIR", dir.to_str().expect("utf-8 temp dir"));
        std::fs::write(&config_path, &yaml).expect("write config");

        let mut cmd = Command::new(&bin);
        cmd.arg("serve").arg("--config").arg(&config_path);
        if opts.no_watch {
            cmd.arg("--no-watch");
        }
        cmd.current_dir(&dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = collect_lines(child.stdout.take().expect("stdout"), "stdout");
        let stderr = collect_lines(child.stderr.take().expect("stderr"), "stderr");

        let mut gw = Gateway {
            child,
            dir,
            config_path,
            stdout,
            stderr,
            addrs: HashMap::new(),
            exited: None,
        };
        let expected = opts.listeners.unwrap_or_else(|| listener_names(&yaml));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            for ev in gw.events("listening") {
                let f = &ev["fields"];
                let name = f["name"].as_str();
                let addr = f["addr"]
                    .as_str()
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                if let (Some(name), Some(addr)) = (name, addr) {
                    gw.addrs.insert(name.to_string(), addr);
                }
            }
            if !expected.is_empty() && expected.iter().all(|n| gw.addrs.contains_key(n)) {
                return gw;
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                gw.exited = Some(status);
                // give the reader threads a moment to drain the pipes
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "edgeway exited during startup with {status}\nconfig:\n{yaml}\nstderr:\n{}",
                    gw.stderr_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "edgeway did not report listeners {expected:?} within {STARTUP_TIMEOUT:?} \
                     (got {:?})\nstderr:\n{}",
                    gw.addrs,
                    gw.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bound address of a listener by name (`"listen[0]"`, `"admin"`, ...).
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?}; have {:?}", self.addrs))
    }

    /// `http://<listen[0]><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("listen[0]"))
    }

    /// `http://<admin><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("admin"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`"HUP"`, `"TERM"`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Overwrite the config file in place (`$DIR` replaced).
    pub fn write_config(&self, yaml: &str) {
        let yaml = yaml.replace("$DIR", self.dir.to_str().expect("utf-8"));
        std::fs::write(&self.config_path, yaml).expect("write config");
    }

    /// Replace the config file atomically: write a sibling file, then rename it over the config
    /// (what editors and config-management tools do).
    pub fn replace_config(&self, yaml: &str) {
        let yaml = yaml.replace("$DIR", self.dir.to_str().expect("utf-8"));
        let tmp = self.dir.join(".edgeway.yaml.tmp");
        std::fs::write(&tmp, yaml).expect("write temp config");
        std::fs::rename(&tmp, &self.config_path).expect("rename config");
    }

    /// All stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// All stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// Stderr JSON events whose `fields.message` equals `message`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.stderr_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"].as_str() == Some(message))
            .collect()
    }

    /// Wait (bounded) until an event with `message` satisfying `pred` appears; panics on timeout.
    pub async fn wait_event(
        &self,
        message: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events(message).into_iter().find(|v| pred(v)) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {message:?} event matching the predicate within {timeout:?}\nstderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) until at least `n` events with `message` exist; returns them all.
    pub async fn wait_event_count(&self, message: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let evs = self.events(message);
            if evs.len() >= n {
                return evs;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected >= {n} {message:?} events within {timeout:?}, got {}\nstderr:\n{}",
                    evs.len(),
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Highest `generation` among "config reloaded" events (0 if none).
    pub fn generation(&self) -> u64 {
        self.events("config reloaded")
            .iter()
            .filter_map(|v| v["fields"]["generation"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Access-log lines (stdout) parsed as JSON; panics on a line that is not JSON.
    pub fn access_log(&self) -> Vec<Value> {
        self.stdout_lines()
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Wait (bounded) until the access log has at least `n` lines.
    pub async fn wait_access_log(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.access_log();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exited = Some(s);
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let lines = self.stderr_lines();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- edgeway stderr (last {} lines), dir {} ---\n{}",
                tail.len(),
                self.dir.display(),
                tail.join("\n")
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn collect_lines(
    pipe: impl std::io::Read + Send + 'static,
    which: &'static str,
) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let echo = std::env::var_os("EDGEWAY_TEST_ECHO").is_some();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[edgeway {which}] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

// ---------------------------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------------------------

/// Body type origin handlers respond with.
pub type OriginBody = BoxBody<Bytes, std::io::Error>;

/// A request as the origin received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was read to its end without error.
    pub complete: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All values of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<non-utf8>").to_string())
            .collect()
    }

    pub fn path_and_query(&self) -> String {
        self.uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    }
}

type Handler = Arc<
    dyn Fn(Recorded) -> Pin<Box<dyn Future<Output = Response<OriginBody>> + Send>> + Send + Sync,
>;

#[derive(Debug, Default)]
struct OriginState {
    requests: Mutex<Vec<Recorded>>,
    /// Requests whose head arrived.
    started: AtomicUsize,
    /// Requests whose body was read completely.
    complete: AtomicUsize,
    /// Body bytes received, all requests together, updated as frames arrive.
    bytes_received: AtomicU64,
    connections: AtomicUsize,
}

/// A hyper server on `127.0.0.1:0` (HTTP/1.1 and h2c, or TLS with ALPN h2/http1.1).
#[derive(Debug)]
pub struct Origin {
    pub addr: SocketAddr,
    tls: bool,
    state: Arc<OriginState>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    /// An origin answering 200 with body `origin <METHOD> <path?query>` and header `x-origin: 1`.
    pub async fn echo() -> Origin {
        Self::start(|r: &Recorded| {
            Response::builder()
                .header("x-origin", "1")
                .header("content-type", "text/plain")
                .body(full(format!("origin {} {}", r.method, r.path_and_query())))
                .unwrap()
        })
        .await
    }

    /// An origin with a synchronous handler (called once the request body has been read).
    pub async fn start<F>(f: F) -> Origin
    where
        F: Fn(&Recorded) -> Response<OriginBody> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        Self::start_async(move |r| {
            let f = f.clone();
            async move { f(&r) }
        })
        .await
    }

    /// An origin with an async handler (called once the request body has been read).
    pub async fn start_async<F, Fut>(f: F) -> Origin
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<OriginBody>> + Send + 'static,
    {
        Self::serve(None, f).await
    }

    /// An https origin using `tls` (a rustls server config).
    pub async fn start_tls<F>(tls: rustls::ServerConfig, f: F) -> Origin
    where
        F: Fn(&Recorded) -> Response<OriginBody> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        Self::serve(Some(Arc::new(tls)), move |r| {
            let f = f.clone();
            async move { f(&r) }
        })
        .await
    }

    async fn serve<F, Fut>(tls: Option<Arc<rustls::ServerConfig>>, f: F) -> Origin
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<OriginBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |r| Box::pin(f(r)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let state = Arc::new(OriginState::default());
        let st = state.clone();
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                st.connections.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let handler = handler.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let st = st.clone();
                        let handler = handler.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(st, handler, req).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Origin {
            addr,
            tls: is_tls,
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Requests received so far (those whose body read finished, completely or not).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The only request received; panics unless exactly one.
    pub fn single_request(&self) -> Recorded {
        let reqs = self.requests();
        assert_eq!(
            reqs.len(),
            1,
            "origin expected exactly one request, got {reqs:#?}"
        );
        reqs.into_iter().next().unwrap()
    }

    /// Requests whose head reached the origin.
    pub fn request_count(&self) -> usize {
        self.state.started.load(Ordering::SeqCst)
    }

    /// Requests whose body the origin read completely.
    pub fn complete_count(&self) -> usize {
        self.state.complete.load(Ordering::SeqCst)
    }

    /// Body bytes received so far, all requests together.
    pub fn bytes_received(&self) -> u64 {
        self.state.bytes_received.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    st: Arc<OriginState>,
    handler: Handler,
    req: Request<Incoming>,
) -> Response<OriginBody> {
    st.started.fetch_add(1, Ordering::SeqCst);
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut complete = true;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    st.bytes_received
                        .fetch_add(data.len() as u64, Ordering::SeqCst);
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => {
                complete = false;
                break;
            }
        }
    }
    let rec = Recorded {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body: Bytes::from(buf),
        complete,
    };
    if complete {
        st.complete.fetch_add(1, Ordering::SeqCst);
    }
    st.requests.lock().unwrap().push(rec.clone());
    if !complete {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("incomplete body"))
            .unwrap();
    }
    handler(rec).await
}

/// A complete body.
pub fn full(b: impl Into<Bytes>) -> OriginBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Byte `i` of the test pattern: `i % 251`, so a shifted, dropped or repeated chunk shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `len` bytes of the test pattern starting at `offset`.
pub fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    (0..len as u64)
        .map(|i| pattern_byte(offset + i))
        .collect::<Vec<u8>>()
        .into()
}

/// Check `data` against the pattern at `offset`.
pub fn is_pattern(offset: u64, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, b)| *b == pattern_byte(offset + i as u64))
}

/// A streamed body of `total` bytes of the test pattern, sent in `chunk`-sized frames. Before each
/// frame it waits (up to 10 s) until `gate(bytes_sent_so_far)` returns true; a test uses this to
/// prove the receiver got the first bytes before the sender produced the rest (nothing buffers
/// the whole body) and to watch how far the sender got.
pub fn stream_body(
    total: u64,
    chunk: usize,
    gate: impl Fn(u64) -> bool + Send + Sync + 'static,
) -> OriginBody {
    let s = futures_util::stream::unfold((0u64, gate), move |(sent, gate)| async move {
        if sent >= total {
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gate(sent) {
            if Instant::now() > deadline {
                let err = std::io::Error::other("stream gate never opened");
                return Some((Err(err), (total, gate)));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = (total - sent).min(chunk as u64) as usize;
        let frame = Frame::data(pattern_chunk(sent, n));
        Some((Ok(frame), (sent + n as u64, gate)))
    });
    BodyExt::boxed(StreamBody::new(s))
}

/// An address on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// A TCP server that accepts connections, reads a little, then resets them (RST via
/// SO_LINGER 0). Returns its address and a counter of accepted connections.
pub async fn resetting_server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                #[allow(deprecated)]
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(s);
            });
        }
    });
    (a, count, task)
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A reqwest client for plain HTTP/1.1 (no proxy from the environment).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A reqwest client speaking HTTP/2 with prior knowledge (h2c).
pub fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A raw HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Status line and headers, as received.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Write `request` as raw bytes to `addr` and read one response (until its Content-Length or
/// chunked end, or EOF), within 10 s. Returns `Err` on a connection error or when the
/// connection closed with no response.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> std::io::Result<RawResponse> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request).await?;
        let mut buf = Vec::new();
        let mut tmp = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed before a full response head: {:?}",
                        String::from_utf8_lossy(&buf)
                    ),
                ));
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut rest = buf[head_end + 4..].to_vec();
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while rest.len() < len {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            rest.truncate(len);
            rest
        } else if chunked {
            loop {
                if let Some(body) = dechunk(&rest) {
                    break body;
                }
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    break dechunk(&rest).unwrap_or(rest);
                }
                rest.extend_from_slice(&tmp[..n]);
            }
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            // read until EOF (bounded by the outer timeout)
            loop {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            rest
        };
        Ok(RawResponse {
            status,
            head,
            headers,
            body,
        })
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "raw_request timed out"))?
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a complete chunked body, or `None` if it isn't complete yet.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions and helpers
// ---------------------------------------------------------------------------------------------

/// Assert a gateway error response: status, JSON `{"message": ...}`, content type, error type,
/// and a UUID `x-request-id`. Returns the body.
pub async fn assert_gateway_error(
    resp: reqwest::Response,
    status: u16,
    message: &str,
    error_type: &str,
) -> Value {
    assert_eq!(
        resp.status().as_u16(),
        status,
        "status; headers {:?}",
        resp.headers()
    );
    let h = resp.headers().clone();
    let ct = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct:?} for {status}"
    );
    assert_eq!(
        h.get("x-edgeway-error-type").and_then(|v| v.to_str().ok()),
        Some(error_type),
        "x-edgeway-error-type for {status}"
    );
    let rid = h
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        is_uuid(rid),
        "x-request-id {rid:?} is not a UUID on a {status} response"
    );
    let text = resp.text().await.expect("body");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text:?}"));
    assert_eq!(v, json!({ "message": message }), "{status} body");
    v
}

/// Whether `s` is a hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Peak resident set size (VmHWM) of a process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Poll `f` every 20 ms until it returns `Some`, or `None` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A test certificate authority.
#[derive(Debug)]
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub cert_pem: String,
}

/// A leaf certificate with its key.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        TestCa {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Issue a server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    pub fn reqwest_cert(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("ca pem")
    }
}

impl Leaf {
    /// A rustls server config serving this certificate with ALPN h2 and http/1.1.
    pub fn server_config(&self) -> rustls::ServerConfig {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .expect("server cert");
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg
    }
}

/// A response body parsed as JSON; panics with the text if it is not JSON.
pub async fn json_body(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"))
}
