//! `GET /metrics` at scale, and what counting costs a request.
//!
//! - `metrics/render_2000_routes`: the text of 200 APIs × 10 routes with detailed metrics
//!   (2,000 label sets, each with requests, both latency histograms and cache counts), the
//!   scrape a large node answers; the bound is 50 ms.
//! - `metrics/record`: one finished request counted (status class, latency, integration
//!   latency).
//!
//! `cargo bench -p edgeway --bench metrics`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::telemetry::metrics::{
    AuthorizerResult, CALL_BOUNDS, CacheCounts, LatencyHistogram, MetricKey, MetricSets,
    NodeCounters, OriginCounters, PluginCounts, Scrape,
};
use edgeway::throttle::Scope;

fn bench(c: &mut Criterion) {
    let mut sets = MetricSets::after(None);
    for api in 0..200 {
        for route in 0..10 {
            let metrics = sets.get(
                MetricKey {
                    api: format!("api-{api}").into(),
                    stage: "prod".into(),
                    route: Some(format!("GET /resource-{route}/{{id}}").into()),
                },
                None,
            );
            for i in 0..20u64 {
                let status = if i % 10 == 0 { 500 } else { 200 };
                metrics.record(
                    status,
                    Duration::from_micros(300 * (i + 1)),
                    Some(Duration::from_micros(200 * (i + 1))),
                );
            }
            metrics.cache_hit();
            // Every optional family has a label set for every route: the worst case.
            metrics.throttled(Scope::Route);
            metrics.throttled(Scope::Quota);
            metrics.authorizer(AuthorizerResult::Allow);
            metrics.authorizer(AuthorizerResult::Deny);
            metrics.authorizer_cache_hit();
        }
    }
    let caches: Vec<CacheCounts> = (0..200)
        .map(|api| CacheCounts {
            api: format!("api-{api}"),
            stage: "prod".into(),
            capacity_bytes: 64 << 20,
            bytes: 1 << 20,
            entries: 100,
            stores: 1000,
            evictions: 10,
        })
        .collect();
    let origins: Vec<_> = (0..200)
        .map(|api| {
            (
                format!("http://origin-{api}.internal:8080"),
                Arc::new(OriginCounters::default()),
            )
        })
        .collect();
    let call_time = LatencyHistogram::new(&CALL_BOUNDS);
    call_time.observe(Duration::from_micros(40));
    let sets = Arc::new(sets);
    let node = Arc::new(NodeCounters::default());
    let plugins: Vec<PluginCounts> = (0..10)
        .map(|i| PluginCounts {
            name: format!("plugin-{i}"),
            calls: 1000,
            timeouts: 1,
            out_of_memory: 0,
            other_failures: 2,
            call_time: call_time.snapshot(),
            instantiations: 4,
            idle_instances: 2,
        })
        .collect();
    let scrape = || Scrape {
        sets: sets.clone(),
        plugins: plugins.clone(),
        node: node.clone(),
        generation: 7,
        access_log_dropped: 0,
        spans_dropped: None,
        caches: caches.clone(),
        origins: origins.clone(),
        listeners: vec![("0.0.0.0:8080".into(), node.listener("0.0.0.0:8080"))],
        refused: [
            ("node_limit", 0),
            ("ip_limit", 2),
            ("in_flight", 3),
            ("memory", 0),
        ],
        in_flight: 1,
        certificates: Vec::new(),
    };
    let text = scrape().render();
    assert!(text.contains(r#"api="api-199",stage="prod",route="GET /resource-9/{id}""#));

    let mut group = c.benchmark_group("metrics");
    group.bench_function("render_2000_routes", |b| {
        b.iter(|| black_box(scrape().render()));
    });
    let one = sets.unrouted().clone();
    group.bench_function("record", |b| {
        b.iter(|| {
            one.record(
                black_box(200),
                black_box(Duration::from_micros(1_500)),
                black_box(Some(Duration::from_micros(900))),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
