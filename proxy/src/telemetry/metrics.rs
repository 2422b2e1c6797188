//! Metrics for `GET /metrics`, in the set API Gateway publishes to CloudWatch (`Count`,
//! `4XXError`, `5XXError`, `Latency`, `IntegrationLatency`, `CacheHitCount`, `CacheMissCount`)
//! by API and stage (and by route with the stage's `detailed_metrics`), plus what an operator
//! of the node needs: errors by gateway-response type, plugin calls and failures, reloads,
//! access-log lines dropped.
//!
//! Recording takes no lock and allocates nothing: every label set is made when a generation
//! is built (`RequestMetrics` per API, stage and, with detailed metrics, route), a request
//! holds an `Arc` to its own, and each count is an atomic. The text is written on scrape by a
//! `prometheus-client` collector that walks the current generation's label sets.
//! `prometheus-client`'s own `Histogram` takes a lock per observation, so latencies go to
//! [`LatencyHistogram`], atomics encoded through the same crate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use crate::gateway_responses::ResponseType;

/// Upper bounds, in seconds, of the latency buckets: 1 ms to 30 s.
const BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The same bounds in microseconds, for the comparison an observation makes.
const BOUNDS_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// A latency histogram of atomics: a count per bucket (not cumulative; summed on scrape), the
/// sum in microseconds and the count.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// One per bound, then +Inf.
    buckets: [AtomicU64; 15],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        // Per bucket, as the encoder takes them (it writes the cumulative counts).
        let mut total = 0;
        let mut buckets = [(0.0, 0); 15];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let count = self.buckets[i].load(Ordering::Relaxed);
            total += count;
            *slot = (BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), count);
        }
        // A scrape racing an observation never shows a count below the buckets' total.
        let count = self.count.load(Ordering::Relaxed).max(total);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
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
}

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
}

/// The node's own counts.
#[derive(Debug, Default)]
pub struct NodeCounters {
    reloads_ok: AtomicU64,
    reloads_refused: AtomicU64,
}

impl NodeCounters {
    /// A changed config file now serves.
    pub fn reload_ok(&self) {
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// A changed config file was refused; the running one serves on.
    pub fn reload_refused(&self) {
        self.reloads_refused.fetch_add(1, Ordering::Relaxed);
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
                pick(metrics).encode(&mut family.encode_family(&labels(key))?)?;
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
        let sets = Arc::new(sets);
        let text = Scrape {
            sets: sets.clone(),
            plugins: vec![PluginCounts {
                name: "gate".into(),
                calls: 5,
                timeouts: 1,
                out_of_memory: 0,
                other_failures: 2,
            }],
            node: Arc::new(NodeCounters::default()),
            generation: 3,
            access_log_dropped: 0,
        }
        .render();
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
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }

        // The next generation keeps the counts of the label sets it still has.
        let mut next = MetricSets::after(Some(&sets));
        assert!(Arc::ptr_eq(&next.get(key(None), Some(&sets)), &plain));
        assert_eq!(next.unrouted().requests(4), 1);
    }
}
