//! The throttle check for one request at every level (route, stage, account, and the usage
//! plan's per-key bucket and daily quota, with usage counting and the `RateLimit` headers),
//! with 100,000 keys already in use; the same for a request without a key; and an API key
//! lookup among 100,000 keys.
//!
//! `cargo bench -p edgeway --bench throttle`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::auth::keys::{ApiKeys, NewKey};
use edgeway::config::{Quota, QuotaPeriod, Throttle};
use edgeway::state::EmbeddedStore;
use edgeway::throttle::{Caller, Limiter, PlanLimits, Scope, wall_secs};
use futures_util::FutureExt as _;
use tokio::time::Instant;

/// For setting up: the store's work runs on tokio's blocking threads.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn throttle_check(c: &mut Criterion) {
    let rt = runtime();
    let generous = Throttle {
        rate: 1e12,
        burst: u64::MAX / 2,
    };
    let dir = std::env::temp_dir().join(format!("edgeway-bench-limiter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let limiter = Limiter::new(Arc::new(EmbeddedStore::open(&dir).unwrap()));
    // A route with its own limit, in a stage with one, under the node-wide limit.
    let levels = [
        limiter.shared_bucket(Scope::Route, "route:shop/prod/GET /pets/{id}", generous),
        limiter.shared_bucket(Scope::Stage, "stage:shop/prod", generous),
        limiter.shared_bucket(Scope::Account, "account", generous),
    ];
    // A plan with a per-key bucket and a daily quota.
    let quota = Quota {
        limit: u64::MAX / 2,
        period: QuotaPeriod::Day,
        offset: 0,
    };
    let plan = PlanLimits::new("basic", 1, Some(generous), None, Some(quota));
    let ids: Vec<String> = (0..100_000).map(|i| format!("key{i:07}")).collect();
    let now = Instant::now();
    let wall = wall_secs();
    let caller = |i: usize| Caller {
        slot: i as u64,
        key_id: &ids[i],
        created: 0,
    };
    // Each key's first check seeds its count from the store; after that a check with local
    // counts is ready at once, which is what the loop below measures.
    for i in 0..ids.len() {
        rt.block_on(limiter.check(&levels, Some((caller(i), &plan)), now, wall))
            .unwrap();
    }
    let mut i = 0usize;
    c.bench_function("throttle/check_all_levels_100k_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            // On the request path the caller comes from the API key just looked up, already in
            // cache; the check reads its id only when it first meets the key (done above).
            let caller = Caller {
                slot: i as u64,
                key_id: "",
                created: 0,
            };
            limiter
                .check(
                    &levels,
                    Some((black_box(caller), &plan)),
                    Instant::now(),
                    wall,
                )
                .now_or_never()
                .expect("local counts answer at once")
        })
    });
    c.bench_function("throttle/check_shared_levels_only", |b| {
        b.iter(|| edgeway::throttle::take_shared(black_box(&levels), Instant::now()))
    });
    let _ = rt.block_on(limiter.flush());
    let _ = std::fs::remove_dir_all(&dir);
}

fn key_lookup(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("edgeway-bench-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = runtime();
    let keys = rt
        .block_on(ApiKeys::open(Arc::new(EmbeddedStore::open(&dir).unwrap())))
        .unwrap();
    let new: Vec<NewKey> = (0..100_000)
        .map(|i| NewKey {
            name: format!("client {i}"),
            plan: Some("basic".into()),
            enabled: true,
            value: Some(format!("bench-key-value-{i:012}-abcdefghij")),
            ..NewKey::default()
        })
        .collect();
    rt.block_on(keys.create(new)).unwrap();
    let probe = "bench-key-value-000000054321-abcdefghij";
    assert!(keys.lookup(probe).is_some());
    c.bench_function("api_key/lookup_100k_keys", |b| {
        b.iter(|| keys.lookup(black_box(probe)))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, throttle_check, key_lookup);
criterion_main!(benches);
