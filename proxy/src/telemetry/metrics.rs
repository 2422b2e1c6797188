//! Metrics for `GET /metrics`, in the set API Gateway publishes to CloudWatch (`Count`,
//! `4XXError`, `5XXError`, `Latency`, `IntegrationLatency`, `CacheHitCount`, `CacheMissCount`)
//! by API and stage (and by route with the stage's `detailed_metrics`), plus what an operator
//! of the node needs: errors by gateway-response type, throttles by level, authorizer
//! decisions, stage caches' size and evictions, plugin calls, failures and call times,
//! origin connections and errors, client connections and TLS handshake failures, reloads,
//! access-log lines dropped.
//!
//! The counters a module keeps for its own things (`OriginCounters` in each origin pool,
//! `ConnectionCounters` per listener, a plugin version's call-time histogram) are defined
//! here and owned there; a scrape reads them through plain snapshots, so this module names
//! none of the owners' types.
//!
//! Recording takes no lock and allocates nothing: every label set is made when a generation
//! is built (`RequestMetrics` per API, stage and, with detailed metrics, route), a request
//! holds an `Arc` to its own, and each count is an atomic. The text is written on scrape by a
//! `prometheus-client` collector that walks the current generation's label sets.
//! `prometheus-client`'s own `Histogram` takes a lock per observation, so latencies go to
//! [`LatencyHistogram`], atomics encoded through the same crate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use crate::gateway_responses::ResponseType;
use crate::throttle::Scope;

/// A histogram's bucket bounds: 14, then +Inf.
#[derive(Debug)]
pub struct Bounds {
    seconds: [f64; 14],
    /// The same in microseconds, for the comparison an observation makes.
    micros: [u64; 14],
}

/// Requests and integrations: 1 ms to 30 s.
pub static REQUEST_BOUNDS: Bounds = Bounds {
    seconds: [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ],
    micros: [
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000, 30_000_000,
    ],
};

/// Plugin calls, most of which take tens of microseconds: 10 µs to 1 s.
pub static CALL_BOUNDS: Bounds = Bounds {
    seconds: [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01,
        0.025, 0.1, 0.25, 1.0,
    ],
    micros: [
        10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 250_000, 1_000_000,
    ],
};

/// A latency histogram of atomics: a count per bucket (not cumulative; summed on scrape), the
/// sum in microseconds and the count.
#[derive(Debug)]
pub struct LatencyHistogram {
    bounds: &'static Bounds,
    /// One per bound, then +Inf.
    buckets: [AtomicU64; 15],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new(&REQUEST_BOUNDS)
    }
}

impl LatencyHistogram {
    pub const fn new(bounds: &'static Bounds) -> Self {
        Self {
            bounds,
            buckets: [const { AtomicU64::new(0) }; 15],
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = self
            .bounds
            .micros
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(self.bounds.micros.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The counts now, for a scrape.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = [0; 15];
        for (slot, bucket) in buckets.iter_mut().zip(&self.buckets) {
            *slot = bucket.load(Ordering::Relaxed);
        }
        HistogramSnapshot {
            bounds: self.bounds,
            buckets,
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts read at one moment.
#[derive(Debug, Clone, Copy)]
pub struct HistogramSnapshot {
    bounds: &'static Bounds,
    buckets: [u64; 15],
    sum_micros: u64,
    count: u64,
}

impl HistogramSnapshot {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        // Per bucket, as the encoder takes them (it writes the cumulative counts).
        let mut buckets = [(0.0, 0); 15];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let bound = self.bounds.seconds.get(i).copied().unwrap_or(f64::INFINITY);
            *slot = (bound, self.buckets[i]);
        }
        // A scrape racing an observation never shows a count below the buckets' total.
        let count = self.count.max(self.buckets.iter().sum());
        let sum = self.sum_micros as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// What requests to one API and stage (and route, with detailed metrics) did.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// By status class: 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// Gateway errors by response type, in `ResponseType::ALL`'s order.
    errors: [AtomicU64; 21],
    pub latency: LatencyHistogram,
    pub integration_latency: LatencyHistogram,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Requests refused by a rate or a quota, in `Scope::ALL`'s order.
    throttled: [AtomicU64; 6],
    /// Authorizer decisions: allowed, denied (401 or 403), failed.
    authorizer: [AtomicU64; 3],
    /// Decisions taken from an authorizer's result cache.
    authorizer_cache_hits: AtomicU64,
}

/// How a route's authorizer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerResult {
    Allow,
    /// 401 or 403.
    Deny,
    /// The authorizer could not decide (a plugin that failed, keys that could not be fetched).
    Error,
}

const AUTHORIZER_RESULTS: [&str; 3] = ["allow", "deny", "error"];

impl RequestMetrics {
    /// A finished request: its status, its whole latency (to the last byte sent) and the
    /// integration's, when it had one.
    pub fn record(&self, status: u16, latency: Duration, integration: Option<Duration>) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
        if let Some(integration) = integration {
            self.integration_latency.observe(integration);
        }
    }

    /// A request the gateway answered with an error of `kind`.
    pub fn error(&self, kind: ResponseType) {
        let index = ResponseType::ALL
            .iter()
            .position(|t| *t == kind)
            .unwrap_or(0);
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A request refused by the limit of `level`.
    pub fn throttled(&self, level: Scope) {
        let index = Scope::ALL.iter().position(|s| *s == level).unwrap_or(0);
        self.throttled[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn authorizer(&self, result: AuthorizerResult) {
        self.authorizer[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn authorizer_cache_hit(&self) {
        self.authorizer_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered with a status of class `class` (1 to 5).
    pub fn requests(&self, class: usize) -> u64 {
        self.by_class[class - 1].load(Ordering::Relaxed)
    }
}

/// Which label set a route's requests count under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricKey {
    pub api: Box<str>,
    pub stage: Box<str>,
    /// The route as written; `None` unless its stage has `detailed_metrics`.
    pub route: Option<Box<str>>,
}

/// One generation's label sets, each reused from the previous generation when it had the same
/// one, so counts survive a reload.
#[derive(Debug, Default)]
pub struct MetricSets {
    by_key: HashMap<MetricKey, Arc<RequestMetrics>>,
    /// Requests that matched no route.
    unrouted: Arc<RequestMetrics>,
}

impl MetricSets {
    /// An empty set that keeps `previous`'s unrouted counts.
    pub fn after(previous: Option<&Self>) -> Self {
        Self {
            by_key: HashMap::new(),
            unrouted: previous.map(|p| p.unrouted.clone()).unwrap_or_default(),
        }
    }

    /// The metrics of `key`: this generation's, else `previous`'s, else new.
    pub fn get(&mut self, key: MetricKey, previous: Option<&Self>) -> Arc<RequestMetrics> {
        if let Some(found) = self.by_key.get(&key) {
            return found.clone();
        }
        let metrics = previous
            .and_then(|p| p.by_key.get(&key).cloned())
            .unwrap_or_default();
        self.by_key.insert(key, metrics.clone());
        metrics
    }

    pub fn unrouted(&self) -> &Arc<RequestMetrics> {
        &self.unrouted
    }

    /// In label order, for a stable text.
    fn sorted(&self) -> Vec<(&MetricKey, &Arc<RequestMetrics>)> {
        let mut sets: Vec<_> = self.by_key.iter().collect();
        sets.sort_by(|a, b| {
            a.0.api
                .cmp(&b.0.api)
                .then(a.0.stage.cmp(&b.0.stage))
                .then(a.0.route.cmp(&b.0.route))
        });
        sets
    }
}

/// One plugin's counts, as the plugin host keeps them (for its current version).
#[derive(Debug, Clone)]
pub struct PluginCounts {
    pub name: String,
    pub calls: u64,
    pub timeouts: u64,
    pub out_of_memory: u64,
    /// Failures that were neither: traps, bad output.
    pub other_failures: u64,
    pub call_time: HistogramSnapshot,
    /// Instances made (each call that found no idle one).
    pub instantiations: u64,
    /// Idle instances kept warm.
    pub idle_instances: u64,
}

/// One stage cache's state, as the cache keeps it.
#[derive(Debug, Clone)]
pub struct CacheCounts {
    pub api: String,
    pub stage: String,
    pub capacity_bytes: u64,
    pub bytes: u64,
    pub entries: u64,
    pub stores: u64,
    pub evictions: u64,
}

/// One origin's connections and failures, kept by its pool.
#[derive(Debug, Default)]
pub struct OriginCounters {
    /// Connections open now.
    open: AtomicI64,
    opened: AtomicU64,
    /// Requests sent on a connection that was already open.
    reused: AtomicU64,
    /// Failures by kind, in `OriginFailure`'s order.
    failures: [AtomicU64; 4],
}

/// Why a request to an origin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFailure {
    /// The TCP connection could not be made (refused, unreachable, no such host).
    Connect,
    /// The TCP connection or TLS handshake took longer than `upstream.connect_timeout_ms`.
    ConnectTimeout,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The exchange failed on an open connection (reset, closed early, not HTTP).
    Exchange,
}

const ORIGIN_FAILURES: [&str; 4] = ["connect", "connect_timeout", "tls", "exchange"];

/// Held by each open connection; the open count drops with it.
#[derive(Debug)]
pub struct OpenConnection(Arc<OriginCounters>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OriginCounters {
    /// A connection was made; it counts as open until the guard is dropped.
    pub fn opened(self: &Arc<Self>) -> OpenConnection {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    pub fn reused(&self) {
        self.reused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, failure: OriginFailure) {
        self.failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// One listener's client connections.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    accepted: AtomicU64,
    open: AtomicI64,
    tls_failed: AtomicU64,
    tls_timed_out: AtomicU64,
}

/// Held by each accepted connection; the open count drops with it.
#[derive(Debug)]
pub struct AcceptedConnection(Arc<ConnectionCounters>);

impl Drop for AcceptedConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionCounters {
    pub fn accepted(self: &Arc<Self>) -> AcceptedConnection {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        AcceptedConnection(self.clone())
    }

    /// A TLS handshake failed (`timed_out`: it took longer than the handshake timeout).
    pub fn tls_failed(&self, timed_out: bool) {
        let counter = if timed_out {
            &self.tls_timed_out
        } else {
            &self.tls_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The node's own counts.
#[derive(Debug, Default)]
pub struct NodeCounters {
    reloads_ok: AtomicU64,
    reloads_refused: AtomicU64,
    certs_reloaded: AtomicU64,
    certs_refused: AtomicU64,
    /// Each listener's connections, by its address, in the order they were bound.
    listeners: std::sync::Mutex<Vec<(String, Arc<ConnectionCounters>)>>,
}

impl NodeCounters {
    /// The counters of the listener bound to `addr` (made once per address).
    pub fn listener(&self, addr: &str) -> Arc<ConnectionCounters> {
        let mut listeners = crate::sync::lock(&self.listeners);
        if let Some((_, counts)) = listeners.iter().find(|(a, _)| a == addr) {
            return counts.clone();
        }
        let counts = Arc::new(ConnectionCounters::default());
        listeners.push((addr.to_owned(), counts.clone()));
        counts
    }

    pub fn listeners(&self) -> Vec<(String, Arc<ConnectionCounters>)> {
        crate::sync::lock(&self.listeners).clone()
    }

    /// A changed config file now serves.
    pub fn reload_ok(&self) {
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// A changed config file was refused; the running one serves on.
    pub fn reload_refused(&self) {
        self.reloads_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A certificate (or truststore) whose files changed was loaded (`true`) or refused.
    pub fn cert_reload(&self, ok: bool) {
        let counter = if ok {
            &self.certs_reloaded
        } else {
            &self.certs_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one scrape encodes: the generation's label sets and the node's counts, read then.
#[derive(Debug)]
pub struct Scrape {
    pub sets: Arc<MetricSets>,
    pub plugins: Vec<PluginCounts>,
    pub node: Arc<NodeCounters>,
    pub generation: u64,
    pub access_log_dropped: u64,
    /// Spans dropped by the trace exporter (queue full or export failed); `None` without
    /// `tracing`.
    pub spans_dropped: Option<u64>,
    pub caches: Vec<CacheCounts>,
    /// By origin (`scheme://authority`), in order.
    pub origins: Vec<(String, Arc<OriginCounters>)>,
    /// By listen address, in config order.
    pub listeners: Vec<(String, Arc<ConnectionCounters>)>,
    /// Each served certificate's file and when it expires.
    pub certificates: Vec<(String, std::time::SystemTime)>,
    /// Admission: refusals by reason (`node_limit` and `ip_limit` connections, `in_flight` and
    /// `memory` requests), and the requests being answered now.
    pub refused: [(&'static str, u64); 4],
    pub in_flight: u64,
}

fn labels(key: &MetricKey) -> Vec<(&'static str, &str)> {
    let mut labels = vec![("api", &*key.api), ("stage", &*key.stage)];
    if let Some(route) = &key.route {
        labels.push(("route", route));
    }
    labels
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Scrape {
    /// The text Prometheus scrapes (OpenMetrics 1.0).
    pub fn render(self) -> String {
        let mut out = String::with_capacity(4096 + self.sets.by_key.len() * 2048);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self));
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

fn gauge(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    value: i64,
) -> std::fmt::Result {
    encoder.encode_family(&labels)?.encode_gauge(&value)
}

impl Scrape {
    fn encode_caches(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        type Pick = fn(&CacheCounts) -> u64;
        let gauges: [(&str, &str, Pick); 3] = [
            (
                "edgeway_cache_size",
                "Bytes each stage cache holds (keys, headers and bodies)",
                |c| c.bytes,
            ),
            (
                "edgeway_cache_capacity",
                "Each stage cache's capacity (the stage's cache.capacity_mb)",
                |c| c.capacity_bytes,
            ),
            (
                "edgeway_cache_entries",
                "Responses each stage cache holds",
                |c| c.entries,
            ),
        ];
        for (name, help, pick) in gauges {
            let unit = (name != "edgeway_cache_entries")
                .then_some(&prometheus_client::registry::Unit::Bytes);
            let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
            for cache in &self.caches {
                let l = [("api", &*cache.api), ("stage", &*cache.stage)];
                gauge(
                    &mut family,
                    &l,
                    i64::try_from(pick(cache)).unwrap_or(i64::MAX),
                )?;
            }
        }
        let counters: [(&str, &str, Pick); 2] = [
            (
                "edgeway_cache_stores",
                "Responses stored in each stage cache",
                |c| c.stores,
            ),
            (
                "edgeway_cache_evictions",
                "Entries each stage cache removed to make room for others",
                |c| c.evictions,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for cache in &self.caches {
                let l = [("api", &*cache.api), ("stage", &*cache.stage)];
                counter(&mut family, &l, pick(cache))?;
            }
        }
        Ok(())
    }

    fn encode_origins(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_upstream_connections_open",
                "Connections open to each origin",
                None,
                MetricType::Gauge,
            )?;
            for (origin, counts) in &self.origins {
                let open = counts.open.load(Ordering::Relaxed).max(0);
                gauge(&mut family, &[("origin", origin)], open)?;
            }
        }
        type Pick = fn(&OriginCounters) -> &AtomicU64;
        let counters: [(&str, &str, Pick); 2] = [
            (
                "edgeway_upstream_connections_opened",
                "Connections made to each origin",
                |c| &c.opened,
            ),
            (
                "edgeway_upstream_connections_reused",
                "Requests sent to each origin on a connection already open (keep-alive or HTTP/2)",
                |c| &c.reused,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (origin, counts) in &self.origins {
                counter(
                    &mut family,
                    &[("origin", origin)],
                    pick(counts).load(Ordering::Relaxed),
                )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "edgeway_upstream_failures",
            "Requests to each origin that failed, by kind: connect (refused, unreachable), connect_timeout (TCP or TLS past upstream.connect_timeout_ms), tls (the handshake failed), exchange (reset or closed on an open connection); integration timeouts are edgeway_gateway_errors_total{type=\"INTEGRATION_TIMEOUT\"}",
            None,
            MetricType::Counter,
        )?;
        for (origin, counts) in &self.origins {
            for (i, kind) in ORIGIN_FAILURES.iter().enumerate() {
                let value = counts.failures[i].load(Ordering::Relaxed);
                counter(&mut family, &[("origin", origin), ("kind", kind)], value)?;
            }
        }
        Ok(())
    }

    fn encode_listeners(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_connections_open",
                "Client connections open on each listener",
                None,
                MetricType::Gauge,
            )?;
            for (listener, counts) in &self.listeners {
                let open = counts.open.load(Ordering::Relaxed).max(0);
                gauge(&mut family, &[("listener", listener)], open)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_connections_accepted",
                "Client connections each listener accepted",
                None,
                MetricType::Counter,
            )?;
            for (listener, counts) in &self.listeners {
                let value = counts.accepted.load(Ordering::Relaxed);
                counter(&mut family, &[("listener", listener)], value)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "edgeway_tls_handshake_failures",
            "TLS handshakes that failed on each TLS listener, by reason: failed (no shared protocol or cipher, a bad client certificate, not TLS) or timeout",
            None,
            MetricType::Counter,
        )?;
        for (listener, counts) in &self.listeners {
            for (reason, value) in [
                ("failed", &counts.tls_failed),
                ("timeout", &counts.tls_timed_out),
            ] {
                let l = [("listener", &**listener), ("reason", reason)];
                counter(&mut family, &l, value.load(Ordering::Relaxed))?;
            }
        }
        Ok(())
    }
}

fn counter(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    value: u64,
) -> std::fmt::Result {
    encoder
        .encode_family(&labels)?
        .encode_counter::<NoLabelSet, u64, u64>(&value, None::<&Exemplar<NoLabelSet, u64>>)
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let unrouted = MetricKey {
            api: "".into(),
            stage: "".into(),
            route: None,
        };
        let mut sets = self.sets.sorted();
        sets.push((&unrouted, &self.sets.unrouted));
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_requests",
                "Requests answered, by status class (API Gateway's Count, 4XXError and 5XXError); api and stage are empty for requests that matched no route",
                None,
                MetricType::Counter,
            )?;
            for (key, metrics) in &sets {
                for (class, name) in STATUS_CLASSES.iter().enumerate() {
                    let value = metrics.requests(class + 1);
                    // 2xx, 4xx and 5xx always (so an error rate has a zero to start from).
                    if value == 0 && matches!(class, 0 | 2) {
                        continue;
                    }
                    let mut l = labels(key);
                    l.push(("status_class", name));
                    counter(&mut family, &l, value)?;
                }
            }
        }
        for (name, help, pick) in [
            (
                "edgeway_request_duration",
                "Time from the request's arrival to its response's last byte (API Gateway's Latency)",
                (|m: &RequestMetrics| &m.latency) as fn(&RequestMetrics) -> &LatencyHistogram,
            ),
            (
                "edgeway_integration_duration",
                "Time the integration took to answer, for requests that reached one (API Gateway's IntegrationLatency)",
                |m: &RequestMetrics| &m.integration_latency,
            ),
        ] {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                Some(&prometheus_client::registry::Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (key, metrics) in &sets {
                pick(metrics)
                    .snapshot()
                    .encode(&mut family.encode_family(&labels(key))?)?;
            }
        }
        for (name, help, pick) in [
            (
                "edgeway_cache_hits",
                "Requests answered from the stage cache (API Gateway's CacheHitCount)",
                (|m: &RequestMetrics| &m.cache_hits) as fn(&RequestMetrics) -> &AtomicU64,
            ),
            (
                "edgeway_cache_misses",
                "Cacheable requests the stage cache did not hold (API Gateway's CacheMissCount)",
                |m: &RequestMetrics| &m.cache_misses,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, metrics) in &sets {
                counter(
                    &mut family,
                    &labels(key),
                    pick(metrics).load(Ordering::Relaxed),
                )?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_gateway_errors",
                "Requests the gateway itself answered with an error, by gateway-response type (THROTTLED, QUOTA_EXCEEDED, UNAUTHORIZED, INTEGRATION_TIMEOUT, ...)",
                None,
                MetricType::Counter,
            )?;
            for (key, metrics) in &sets {
                for (i, kind) in ResponseType::ALL.iter().enumerate() {
                    let value = metrics.errors[i].load(Ordering::Relaxed);
                    if value == 0 {
                        continue;
                    }
                    let mut l = labels(key);
                    l.push(("type", kind.name()));
                    counter(&mut family, &l, value)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_throttled",
                "Requests refused with 429, by the level whose limit refused them: account, stage, route, key (the key's plan), key-route (the plan's limit for the route) or quota (QUOTA_EXCEEDED); a label set appears with its first refusal",
                None,
                MetricType::Counter,
            )?;
            for (key, metrics) in &sets {
                for (i, level) in Scope::ALL.iter().enumerate() {
                    let value = metrics.throttled[i].load(Ordering::Relaxed);
                    if value == 0 {
                        continue;
                    }
                    let mut l = labels(key);
                    l.push(("level", level.name()));
                    counter(&mut family, &l, value)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_authorizer_decisions",
                "Decisions of routes' authorizers, by result: allow, deny (401 or 403) or error (the authorizer could not decide); a label set appears with its first decision",
                None,
                MetricType::Counter,
            )?;
            for (key, metrics) in &sets {
                for (i, result) in AUTHORIZER_RESULTS.iter().enumerate() {
                    let value = metrics.authorizer[i].load(Ordering::Relaxed);
                    if value == 0 {
                        continue;
                    }
                    let mut l = labels(key);
                    l.push(("result", result));
                    counter(&mut family, &l, value)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_authorizer_cache_hits",
                "Authorizer decisions taken from the authorizer's result cache (plugin and Lambda authorizers) instead of a call",
                None,
                MetricType::Counter,
            )?;
            for (key, metrics) in &sets {
                let value = metrics.authorizer_cache_hits.load(Ordering::Relaxed);
                if value != 0 {
                    counter(&mut family, &labels(key), value)?;
                }
            }
        }
        self.encode_caches(&mut encoder)?;
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_plugin_calls",
                "Calls into each plugin's current version",
                None,
                MetricType::Counter,
            )?;
            for plugin in &self.plugins {
                counter(&mut family, &[("plugin", &plugin.name)], plugin.calls)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_plugin_failures",
                "Failed plugin calls of each plugin's current version, by kind: timeout, out_of_memory, trap (a trap or an answer that was not well formed)",
                None,
                MetricType::Counter,
            )?;
            for plugin in &self.plugins {
                for (kind, value) in [
                    ("timeout", plugin.timeouts),
                    ("out_of_memory", plugin.out_of_memory),
                    ("trap", plugin.other_failures),
                ] {
                    counter(
                        &mut family,
                        &[("plugin", &plugin.name), ("kind", kind)],
                        value,
                    )?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_plugin_call_duration",
                "Time each call into a plugin's current version took, failed calls included",
                Some(&prometheus_client::registry::Unit::Seconds),
                MetricType::Histogram,
            )?;
            for plugin in &self.plugins {
                plugin
                    .call_time
                    .encode(&mut family.encode_family(&[("plugin", &*plugin.name)])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_plugin_instantiations",
                "Instances made of each plugin's current version (a call that found no idle instance, or one that needed a fresh instance)",
                None,
                MetricType::Counter,
            )?;
            for plugin in &self.plugins {
                counter(
                    &mut family,
                    &[("plugin", &plugin.name)],
                    plugin.instantiations,
                )?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_plugin_instances_idle",
                "Instances of each plugin's current version kept warm for the next call",
                None,
                MetricType::Gauge,
            )?;
            for plugin in &self.plugins {
                family
                    .encode_family(&[("plugin", &*plugin.name)])?
                    .encode_gauge(&plugin.idle_instances)?;
            }
        }
        self.encode_origins(&mut encoder)?;
        self.encode_listeners(&mut encoder)?;
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_config_reloads",
                "Config reloads, by result: ok (a new generation serves) or refused (the running one keeps serving)",
                None,
                MetricType::Counter,
            )?;
            counter(
                &mut family,
                &[("result", "ok")],
                self.node.reloads_ok.load(Ordering::Relaxed),
            )?;
            counter(
                &mut family,
                &[("result", "refused")],
                self.node.reloads_refused.load(Ordering::Relaxed),
            )?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_refused_connections",
                "Connections closed as soon as they were accepted, by the bound they were over: node_limit (limits.max_connections) or ip_limit (limits.max_connections_per_ip)",
                None,
                MetricType::Counter,
            )?;
            for (reason, n) in &self.refused[..2] {
                counter(&mut family, &[("reason", reason)], *n)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_shed_requests",
                "Requests answered 503 by the overload guard, by the bound passed: in_flight (limits.max_in_flight) or memory (limits.max_memory_mib)",
                None,
                MetricType::Counter,
            )?;
            for (reason, n) in &self.refused[2..] {
                counter(&mut family, &[("reason", reason)], *n)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_requests_in_flight",
                "Requests being answered now (until their responses start)",
                None,
                MetricType::Gauge,
            )?;
            family.encode_gauge(&(self.in_flight as i64))?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_certificate_reloads",
                "Certificate and truststore files that changed, by result: ok (served from then on) or refused (the old one serves on)",
                None,
                MetricType::Counter,
            )?;
            counter(
                &mut family,
                &[("result", "ok")],
                self.node.certs_reloaded.load(Ordering::Relaxed),
            )?;
            counter(
                &mut family,
                &[("result", "refused")],
                self.node.certs_refused.load(Ordering::Relaxed),
            )?;
        }
        if !self.certificates.is_empty() {
            let mut family = encoder.encode_descriptor(
                "edgeway_certificate_expiry_days",
                "Days until each served certificate expires (negative once it has)",
                None,
                MetricType::Gauge,
            )?;
            let now = std::time::SystemTime::now();
            for (cert, not_after) in &self.certificates {
                let days = match not_after.duration_since(now) {
                    Ok(left) => left.as_secs_f64() / 86_400.0,
                    Err(past) => -past.duration().as_secs_f64() / 86_400.0,
                };
                family
                    .encode_family(&[("cert", cert.as_str())])?
                    .encode_gauge(&days)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_config_generation",
                "The generation serving: 1 for the config the node started with, +1 for each change",
                None,
                MetricType::Gauge,
            )?;
            family.encode_gauge(&(self.generation as i64))?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "edgeway_access_log_dropped",
                "Access-log lines dropped because their destination did not keep up",
                None,
                MetricType::Counter,
            )?;
            family.encode_counter::<NoLabelSet, u64, u64>(&self.access_log_dropped, None)?;
        }
        if let Some(dropped) = self.spans_dropped {
            let mut family = encoder.encode_descriptor(
                "edgeway_trace_spans_dropped",
                "Spans not exported: the export queue was full (tracing.queue_size) or the collector did not take them",
                None,
                MetricType::Counter,
            )?;
            family.encode_counter::<NoLabelSet, u64, u64>(&dropped, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_their_buckets_and_are_summed() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(800));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(7));
        histogram.observe(Duration::from_secs(60));
        let loads: Vec<u64> = histogram
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(loads[0], 2, "1 ms is in the le=0.001 bucket");
        assert_eq!(loads[3], 1, "7 ms in le=0.01");
        assert_eq!(loads[14], 1, "60 s in +Inf");
        assert_eq!(histogram.count(), 4);
        assert_eq!(histogram.sum_micros.load(Ordering::Relaxed), 60_008_800);
    }

    #[test]
    fn a_scrape_names_each_label_set_and_counts_it() {
        let mut sets = MetricSets::after(None);
        let key = |route: Option<&str>| MetricKey {
            api: "shop".into(),
            stage: "prod".into(),
            route: route.map(Into::into),
        };
        let plain = sets.get(key(None), None);
        let detailed = sets.get(key(Some("GET /items/{id}")), None);
        assert!(Arc::ptr_eq(&plain, &sets.get(key(None), None)));
        plain.record(
            200,
            Duration::from_millis(3),
            Some(Duration::from_millis(2)),
        );
        plain.record(404, Duration::from_millis(1), None);
        plain.error(ResponseType::ResourceNotFound);
        detailed.record(503, Duration::from_millis(1), None);
        detailed.cache_miss();
        sets.unrouted().record(404, Duration::from_millis(1), None);
        plain.throttled(Scope::Quota);
        plain.throttled(Scope::Stage);
        plain.throttled(Scope::Stage);
        plain.authorizer(AuthorizerResult::Allow);
        plain.authorizer(AuthorizerResult::Deny);
        plain.authorizer_cache_hit();
        let calls = LatencyHistogram::new(&CALL_BOUNDS);
        calls.observe(Duration::from_micros(40));
        calls.observe(Duration::from_micros(700));
        let origin = Arc::new(OriginCounters::default());
        let open = origin.opened();
        let _closed = origin.opened();
        drop(_closed);
        origin.reused();
        origin.failed(OriginFailure::ConnectTimeout);
        let listener = Arc::new(ConnectionCounters::default());
        let accepted = listener.accepted();
        listener.tls_failed(false);
        let sets = Arc::new(sets);
        let text = Scrape {
            sets: sets.clone(),
            plugins: vec![PluginCounts {
                name: "gate".into(),
                calls: 5,
                timeouts: 1,
                out_of_memory: 0,
                other_failures: 2,
                call_time: calls.snapshot(),
                instantiations: 2,
                idle_instances: 1,
            }],
            node: Arc::new(NodeCounters::default()),
            generation: 3,
            access_log_dropped: 0,
            spans_dropped: Some(4),
            caches: vec![CacheCounts {
                api: "shop".into(),
                stage: "prod".into(),
                capacity_bytes: 1 << 20,
                bytes: 4096,
                entries: 3,
                stores: 5,
                evictions: 2,
            }],
            origins: vec![("http://127.0.0.1:9".into(), origin.clone())],
            listeners: vec![("127.0.0.1:8080".into(), listener.clone())],
            refused: [
                ("node_limit", 0),
                ("ip_limit", 2),
                ("in_flight", 3),
                ("memory", 0),
            ],
            in_flight: 1,
            certificates: vec![(
                "certs/api.pem".into(),
                std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400 + 60),
            )],
        }
        .render();
        assert!(
            text.contains(r#"edgeway_certificate_expiry_days{cert="certs/api.pem"} 10.0"#),
            "{text}"
        );
        for line in [
            r#"edgeway_refused_connections_total{reason="ip_limit"} 2"#,
            r#"edgeway_shed_requests_total{reason="in_flight"} 3"#,
            "edgeway_requests_in_flight 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        for line in [
            r#"edgeway_requests_total{api="shop",stage="prod",status_class="2xx"} 1"#,
            r#"edgeway_requests_total{api="shop",stage="prod",status_class="4xx"} 1"#,
            r#"edgeway_requests_total{api="shop",stage="prod",route="GET /items/{id}",status_class="5xx"} 1"#,
            r#"edgeway_requests_total{api="",stage="",status_class="4xx"} 1"#,
            r#"edgeway_request_duration_seconds_bucket{le="0.005",api="shop",stage="prod"} 2"#,
            r#"edgeway_integration_duration_seconds_count{api="shop",stage="prod"} 1"#,
            r#"edgeway_cache_misses_total{api="shop",stage="prod",route="GET /items/{id}"} 1"#,
            r#"edgeway_gateway_errors_total{api="shop",stage="prod",type="RESOURCE_NOT_FOUND"} 1"#,
            r#"edgeway_plugin_failures_total{plugin="gate",kind="timeout"} 1"#,
            r#"edgeway_plugin_failures_total{plugin="gate",kind="trap"} 2"#,
            r#"edgeway_config_generation 3"#,
            r#"edgeway_trace_spans_dropped_total 4"#,
            r#"edgeway_throttled_total{api="shop",stage="prod",level="stage"} 2"#,
            r#"edgeway_throttled_total{api="shop",stage="prod",level="quota"} 1"#,
            r#"edgeway_authorizer_decisions_total{api="shop",stage="prod",result="allow"} 1"#,
            r#"edgeway_authorizer_decisions_total{api="shop",stage="prod",result="deny"} 1"#,
            r#"edgeway_authorizer_cache_hits_total{api="shop",stage="prod"} 1"#,
            r#"edgeway_cache_size_bytes{api="shop",stage="prod"} 4096"#,
            r#"edgeway_cache_capacity_bytes{api="shop",stage="prod"} 1048576"#,
            r#"edgeway_cache_entries{api="shop",stage="prod"} 3"#,
            r#"edgeway_cache_evictions_total{api="shop",stage="prod"} 2"#,
            r#"edgeway_plugin_call_duration_seconds_bucket{le="0.00005",plugin="gate"} 1"#,
            r#"edgeway_plugin_call_duration_seconds_bucket{le="0.001",plugin="gate"} 2"#,
            r#"edgeway_plugin_instances_idle{plugin="gate"} 1"#,
            r#"edgeway_upstream_connections_open{origin="http://127.0.0.1:9"} 1"#,
            r#"edgeway_upstream_connections_opened_total{origin="http://127.0.0.1:9"} 2"#,
            r#"edgeway_upstream_connections_reused_total{origin="http://127.0.0.1:9"} 1"#,
            r#"edgeway_upstream_failures_total{origin="http://127.0.0.1:9",kind="connect_timeout"} 1"#,
            r#"edgeway_connections_open{listener="127.0.0.1:8080"} 1"#,
            r#"edgeway_connections_accepted_total{listener="127.0.0.1:8080"} 1"#,
            r#"edgeway_tls_handshake_failures_total{listener="127.0.0.1:8080",reason="failed"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains(r#"level="account""#),
            "a level that refused nothing has no label set"
        );
        drop((open, accepted));

        // The next generation keeps the counts of the label sets it still has.
        let mut next = MetricSets::after(Some(&sets));
        assert!(Arc::ptr_eq(&next.get(key(None), Some(&sets)), &plain));
        assert_eq!(next.unrouted().requests(4), 1);
    }
}
