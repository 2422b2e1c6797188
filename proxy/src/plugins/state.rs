//! What a plugin instance's store holds, and the host imports it may call.
//!
//! Each instance has its own `PluginState`: an empty WASI context (no preopened directories,
//! no environment, no arguments, no sockets), the call's deadline and the memory cap. The
//! `edgeway:plugin` imports are implemented on [`HostView`], a view borrowed from that state,
//! as wasmtime-wasi does for WASI.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt;
use tokio::io::AsyncWrite;
use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host::edgeway::plugin::{config, http as wit_http, kv, log, metrics, types};
use super::kv::KvStore;
use crate::body::RequestBody;
use crate::sync::lock;
use crate::upstream::OriginPool;
use crate::upstream::Upstream;

/// The largest response body `http.fetch` hands to a plugin.
const MAX_FETCH_BODY: usize = 8 * 1024 * 1024;

/// What every instance of one plugin shares: its name, config and host-side state.
#[derive(Debug)]
pub struct PluginShared {
    pub name: Arc<str>,
    /// The plugin's `config` as JSON text, returned by `config.get`.
    pub config_json: String,
    pub kv: Arc<KvStore>,
    /// `metrics.counter-add` totals, shown by `GET /admin/plugins`.
    pub counters: Mutex<BTreeMap<String, u64>>,
    /// Outbound HTTP, when the config allows any host.
    pub http: Option<OutboundHttp>,
}

/// Outbound HTTP for one plugin: the hosts it may reach and how long a call may take.
#[derive(Debug)]
pub struct OutboundHttp {
    /// `host` (any port) or `host:port`, lowercase.
    pub allowed_hosts: Vec<String>,
    pub timeout: Duration,
    pub upstream: Upstream,
    pools: Mutex<HashMap<String, Arc<OriginPool>>>,
}

impl OutboundHttp {
    pub fn new(allowed_hosts: Vec<String>, timeout: Duration, upstream: Upstream) -> Self {
        Self {
            allowed_hosts,
            timeout,
            upstream,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let with_port = format!("{host}:{port}");
        self.allowed_hosts
            .iter()
            .any(|allowed| *allowed == host || *allowed == with_port)
    }

    fn pool(&self, origin: &str) -> Result<Arc<OriginPool>, String> {
        let mut pools = lock(&self.pools);
        if let Some(pool) = pools.get(origin) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(OriginPool::new(origin, &self.upstream).map_err(|e| e.to_string())?);
        pools.insert(origin.to_owned(), pool.clone());
        Ok(pool)
    }
}

/// The data of one instance's store.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    shared: Arc<PluginShared>,
    /// The most linear memory (bytes) this instance may have.
    memory_cap: usize,
    /// Set when a memory grow was refused: the trap that follows is an out-of-memory.
    pub out_of_memory: bool,
    /// When the current call (or instantiation) started and when it must end.
    pub armed_at: Instant,
    pub deadline: Instant,
    /// Set when the deadline stopped the current call.
    pub timed_out: bool,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("plugin", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl PluginState {
    /// State for a new instance of the plugin `shared`, with at most `memory_cap` bytes of
    /// linear memory.
    pub fn new(shared: Arc<PluginShared>, memory_cap: usize) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(PluginOutput::new(shared.name.clone(), "stdout"))
            .stderr(PluginOutput::new(shared.name.clone(), "stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            shared,
            memory_cap,
            out_of_memory: false,
            armed_at: Instant::now(),
            deadline: Instant::now(),
            timed_out: false,
        }
    }

    /// The `edgeway:plugin` imports' view of this state.
    pub fn imports(&mut self) -> HostView<'_> {
        HostView {
            shared: &self.shared,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for PluginState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.out_of_memory = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} MiB reached",
                self.memory_cap >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Marks the `edgeway:plugin` imports' data type for `bindgen!`'s `add_to_linker`.
#[derive(Debug)]
pub struct HostImports;

impl HasData for HostImports {
    type Data<'a> = HostView<'a>;
}

/// The host imports, on a view borrowed from an instance's state.
#[derive(Debug)]
pub struct HostView<'a> {
    shared: &'a Arc<PluginShared>,
}

impl types::Host for HostView<'_> {}

impl log::Host for HostView<'_> {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = &*self.shared.name;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for HostView<'_> {
    fn get(&mut self) -> String {
        self.shared.config_json.clone()
    }
}

impl kv::Host for HostView<'_> {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.shared
            .kv
            .get(&self.shared.name, &key)
            .map(|v| v.to_vec())
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) {
        self.shared.kv.set(
            &self.shared.name,
            key,
            Bytes::from(value),
            ttl_ms.map(Duration::from_millis),
        );
    }

    fn delete(&mut self, key: String) {
        self.shared.kv.delete(&self.shared.name, &key);
    }
}

impl metrics::Host for HostView<'_> {
    fn counter_add(&mut self, name: String, delta: u64) {
        let mut counters = lock(&self.shared.counters);
        // A plugin cannot grow the host's memory without bound through counter names.
        if counters.len() >= 1000 && !counters.contains_key(&name) {
            return;
        }
        let total = counters.entry(name).or_default();
        *total = total.saturating_add(delta);
    }
}

impl wit_http::Host for HostView<'_> {
    fn fetch(
        &mut self,
        request: wit_http::OutgoingRequest,
    ) -> impl Future<Output = Result<types::Response, String>> + Send {
        let shared = self.shared.clone();
        async move { fetch(&shared, request).await }
    }
}

async fn fetch(
    shared: &PluginShared,
    request: wit_http::OutgoingRequest,
) -> Result<types::Response, String> {
    let Some(http) = &shared.http else {
        return Err("outbound HTTP is not allowed: the plugin's `allowed_hosts` is empty".into());
    };
    let uri: Uri = request
        .url
        .parse()
        .map_err(|e| format!("invalid url {}: {e}", request.url))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("url {} is not http:// or https://", request.url)),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("url {} has no host", request.url))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !http.allows(host, port) {
        return Err(format!(
            "host {host}:{port} is not in the plugin's allowed_hosts"
        ));
    }
    let origin = format!("{}://{}", if https { "https" } else { "http" }, authority);
    let pool = http.pool(&origin)?;

    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("invalid method {}", request.method))?;
    let mut outgoing = Request::new(match request.body {
        Some(body) => RequestBody::full(Bytes::from(body)),
        None => RequestBody::empty(),
    });
    *outgoing.method_mut() = method;
    *outgoing.uri_mut() = uri
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        outgoing.headers_mut().append(name, value);
    }

    let exchange = async {
        let response = pool
            .send(outgoing)
            .await
            .map_err(|e| format!("{origin}: {}", crate::telemetry::chain(e.as_ref())))?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, MAX_FETCH_BODY)
            .collect()
            .await
            .map_err(|e| format!("{origin}: reading the response body: {e}"))?
            .to_bytes();
        Ok::<_, String>(types::Response {
            status: parts.status.as_u16(),
            headers: super::convert::headers_to_wit(&parts.headers),
            body: Some(body.to_vec()),
        })
    };
    tokio::time::timeout(http.timeout, exchange)
        .await
        .map_err(|_| {
            format!(
                "{origin}: no response within {} ms",
                http.timeout.as_millis()
            )
        })?
}

/// A plugin's stdout or stderr: each line becomes a log line tagged with the plugin's name.
#[derive(Debug, Clone)]
struct PluginOutput {
    plugin: Arc<str>,
    stream: &'static str,
}

impl PluginOutput {
    fn new(plugin: Arc<str>, stream: &'static str) -> Self {
        Self { plugin, stream }
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            output: self.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines and logs each complete one; a partial line is logged on flush or
/// when the stream is dropped.
struct LineWriter {
    output: PluginOutput,
    line: Vec<u8>,
}

/// A plugin may print without newlines; a line is cut here so one print cannot grow the buffer
/// without bound.
const MAX_LINE: usize = 16 * 1024;

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::info!(
            plugin = &*self.output.plugin,
            stream = self.output.stream,
            "{text}"
        );
        self.line.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        for chunk in buf.split_inclusive(|&b| b == b'\n') {
            this.line.extend_from_slice(chunk);
            if chunk.ends_with(b"\n") || this.line.len() >= MAX_LINE {
                this.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
