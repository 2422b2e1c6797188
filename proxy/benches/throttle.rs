//! The throttle check for one request at every level (account, stage, route, and the usage
//! plan's per-key bucket) with 100,000 keys' buckets already in use, plus the quota add; and
//! an API key lookup among 100,000 keys.
//!
//! `cargo bench -p edgeway --bench throttle`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::config::{QuotaPeriod, Throttle};
use edgeway::keys::{ApiKeys, NewKey};
use edgeway::state::EmbeddedStore;
use edgeway::throttle::{Buckets, CounterKey, Counters, LocalCounters, Window};
use tokio::time::Instant;

fn throttle_check(c: &mut Criterion) {
    let generous = Throttle {
        rate: 1e12,
        burst: u64::MAX / 2,
    };
    let levels: Buckets<&'static str> = Buckets::default();
    let per_key: Buckets<Arc<str>> = Buckets::default();
    let counters = LocalCounters::default();
    let now = Instant::now();
    let window = Window::containing(QuotaPeriod::Day, 1_795_000_000);
    let ids: Vec<Arc<str>> = (0..100_000)
        .map(|i| Arc::from(format!("key{i:06}")))
        .collect();
    let counter_keys: Vec<CounterKey> = ids
        .iter()
        .map(|id| CounterKey {
            plan: "basic".into(),
            key_id: id.as_ref().into(),
        })
        .collect();
    for (id, ck) in ids.iter().zip(&counter_keys) {
        per_key.take(id, &generous, now).unwrap();
        counters.add(ck, &window, 1);
    }
    assert_eq!(per_key.len(), 100_000);
    let mut i = 0usize;
    c.bench_function("throttle/check_all_levels_100k_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            let now = Instant::now();
            levels.take(&"account", &generous, now).unwrap();
            levels.take(&"stage:shop/prod", &generous, now).unwrap();
            levels
                .take(&"route:shop/prod/GET /pets/{id}", &generous, now)
                .unwrap();
            per_key.take(black_box(&ids[i]), &generous, now).unwrap();
            counters.add(black_box(&counter_keys[i]), &window, 1)
        })
    });
}

fn key_lookup(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("edgeway-bench-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys = ApiKeys::open(Arc::new(EmbeddedStore::open(&dir).unwrap())).unwrap();
    let new: Vec<NewKey> = (0..100_000)
        .map(|i| NewKey {
            name: format!("client {i}"),
            plan: Some("basic".into()),
            enabled: true,
            value: Some(format!("bench-key-value-{i:012}-abcdefghij")),
            ..NewKey::default()
        })
        .collect();
    keys.create(new).unwrap();
    let probe = "bench-key-value-000000054321-abcdefghij";
    assert!(keys.lookup(probe).is_some());
    c.bench_function("api_key/lookup_100k_keys", |b| {
        b.iter(|| keys.lookup(black_box(probe)))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, throttle_check, key_lookup);
criterion_main!(benches);
