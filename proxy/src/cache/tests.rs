//! Stage cache logic on tokio's paused clock: freshness and `Age` at TTL boundaries,
//! coalescing, and the key's indifference to parameters the route does not name.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use proptest::prelude::*;

use super::*;

fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

fn key_for(uri: &str, id: &str) -> CacheKey {
    let params = [
        RequestParam::Path {
            name: "id".into(),
            index: 0,
        },
        RequestParam::Query("lang".into()),
    ];
    StageCache::key(
        &Method::GET,
        &Arc::from("GET /pets/{id}"),
        1,
        &params,
        &parts(uri, &[]),
        &[id],
    )
}

const RULES: Storable<'static> = Storable {
    statuses: None,
    ignore_cache_control: false,
    max_entry_bytes: 1024,
};

/// Stores `body` under `key` the way a miss does: through a fill.
async fn fill(cache: &Arc<StageCache>, key: CacheKey, body: &'static str, ttl: Duration) {
    let Lookup::Miss(fill) = cache.lookup(key, Duration::from_secs(1)).await else {
        panic!("expected a miss");
    };
    let mut collecting = fill
        .begin(
            StatusCode::OK,
            &HeaderMap::new(),
            &RULES,
            ttl,
            Arc::from([]),
        )
        .expect("storable");
    assert!(collecting.data(&Bytes::from_static(body.as_bytes())));
    collecting.finish();
}

#[tokio::test(start_paused = true)]
async fn entries_are_fresh_until_their_ttl_and_report_their_age() {
    let cache = StageCache::new("shop", "prod", 1 << 20);
    let key = key_for("/prod/pets/1", "1");
    fill(&cache, key.clone(), "one", Duration::from_secs(300)).await;

    tokio::time::advance(Duration::from_millis(299_999)).await;
    let Lookup::Hit(entry, age) = cache.lookup(key.clone(), Duration::ZERO).await else {
        panic!("fresh until the TTL");
    };
    assert_eq!(entry.body, "one");
    assert_eq!(age, Duration::from_millis(299_999));
    let response = entry.to_response(age);
    assert_eq!(response.headers()["age"], "299");
    assert_eq!(response.headers()["x-cache"], "hit");

    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(
        matches!(cache.lookup(key, Duration::ZERO).await, Lookup::Miss(_)),
        "stale at exactly the TTL"
    );
    let stats = &cache.stats;
    assert_eq!(stats.hits.load(Ordering::Relaxed), 1);
    assert_eq!(stats.misses.load(Ordering::Relaxed), 2);
    assert_eq!(stats.stores.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refreshed_entry_starts_a_new_ttl() {
    let cache = StageCache::new("shop", "prod", 1 << 20);
    let key = key_for("/prod/pets/1", "1");
    fill(&cache, key.clone(), "old", Duration::from_secs(10)).await;
    tokio::time::advance(Duration::from_secs(8)).await;

    let mut refill = cache
        .refresh(key.clone())
        .begin(
            StatusCode::OK,
            &HeaderMap::new(),
            &RULES,
            Duration::from_secs(10),
            Arc::from([]),
        )
        .unwrap();
    assert!(refill.data(&Bytes::from_static(b"new")));
    refill.finish();

    tokio::time::advance(Duration::from_secs(8)).await;
    let Lookup::Hit(entry, age) = cache.lookup(key, Duration::ZERO).await else {
        panic!("the refreshed entry is 8 s old of 10");
    };
    assert_eq!(
        (entry.body.as_ref(), age),
        (&b"new"[..], Duration::from_secs(8))
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_wait_for_the_leader() {
    let cache = StageCache::new("shop", "prod", 1 << 20);
    let key = key_for("/prod/pets/1", "1");
    let Lookup::Miss(leader) = cache.lookup(key.clone(), Duration::from_secs(5)).await else {
        panic!("the first lookup leads");
    };
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.lookup(key, Duration::from_secs(5)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut collecting = leader
        .begin(
            StatusCode::OK,
            &HeaderMap::new(),
            &RULES,
            Duration::from_secs(60),
            Arc::from([]),
        )
        .unwrap();
    assert!(collecting.data(&Bytes::from_static(b"shared")));
    collecting.finish();
    for waiter in waiters {
        let Lookup::Hit(entry, _) = waiter.await.unwrap() else {
            panic!("a waiter reads the leader's entry");
        };
        assert_eq!(entry.body, "shared");
    }
    assert_eq!(cache.stats.coalesced.load(Ordering::Relaxed), 10);
    assert_eq!(cache.stats.misses.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn waiters_go_on_their_own_when_the_leader_stores_nothing() {
    let cache = StageCache::new("shop", "prod", 1 << 20);
    let key = key_for("/prod/pets/1", "1");
    let Lookup::Miss(leader) = cache.lookup(key.clone(), Duration::from_secs(5)).await else {
        panic!("the first lookup leads");
    };
    let waiter = {
        let cache = cache.clone();
        let key = key.clone();
        tokio::spawn(async move { cache.lookup(key, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut no_store = HeaderMap::new();
    no_store.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let started = tokio::time::Instant::now();
    assert!(
        leader
            .begin(
                StatusCode::OK,
                &no_store,
                &RULES,
                Duration::from_secs(60),
                Arc::from([])
            )
            .is_none()
    );
    assert!(matches!(waiter.await.unwrap(), Lookup::Miss(_)));
    assert!(started.elapsed() < Duration::from_secs(1), "woken at once");
}

#[test]
fn what_may_be_stored() {
    let with = |name: http::HeaderName, value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    };
    let ok = |status: u16, headers: &HeaderMap, rules: &Storable<'_>| {
        storable(StatusCode::from_u16(status).unwrap(), headers, rules)
    };
    let none = HeaderMap::new();
    assert!(ok(200, &none, &RULES) && ok(204, &none, &RULES));
    assert!(!ok(404, &none, &RULES) && !ok(500, &none, &RULES));
    let not_found = Storable {
        statuses: Some(&[404]),
        ..RULES
    };
    assert!(ok(404, &none, &not_found) && !ok(200, &none, &not_found));

    for value in [
        "no-store",
        "private",
        "max-age=60, private=\"x\"",
        "No-Store",
    ] {
        let headers = with(CACHE_CONTROL, value);
        assert!(!ok(200, &headers, &RULES), "{value}");
        let ignoring = Storable {
            ignore_cache_control: true,
            ..RULES
        };
        assert!(ok(200, &headers, &ignoring), "{value} ignored");
    }
    assert!(ok(200, &with(CACHE_CONTROL, "public, max-age=60"), &RULES));
    assert!(!ok(200, &with(SET_COOKIE, "a=b"), &RULES));
    assert!(!ok(200, &with(VARY, "accept, *"), &RULES));
    assert!(ok(200, &with(VARY, "accept"), &RULES));
    assert!(!ok(200, &with(CONTENT_LENGTH, "1025"), &RULES));
    assert!(ok(200, &with(CONTENT_LENGTH, "1024"), &RULES));
}

#[test]
fn refresh_requests() {
    let with = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
        headers
    };
    assert!(asks_refresh(&with("max-age=0")));
    assert!(asks_refresh(&with("no-transform, Max-Age = 0")));
    assert!(asks_refresh(&with("no-cache")));
    assert!(!asks_refresh(&with("max-age=10")));
    assert!(!asks_refresh(&HeaderMap::new()));
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_is_not_stored() {
    let cache = StageCache::new("shop", "prod", 1 << 20);
    let key = key_for("/prod/pets/1", "1");
    let Lookup::Miss(fill) = cache.lookup(key.clone(), Duration::ZERO).await else {
        panic!("miss");
    };
    let mut collecting = fill
        .begin(
            StatusCode::OK,
            &HeaderMap::new(),
            &RULES,
            Duration::from_secs(60),
            Arc::from([]),
        )
        .unwrap();
    assert!(collecting.data(&Bytes::from(vec![b'a'; 1000])));
    assert!(!collecting.data(&Bytes::from(vec![b'a'; 25])));
    drop(collecting);
    assert!(matches!(
        cache.lookup(key, Duration::ZERO).await,
        Lookup::Miss(_)
    ));
    assert_eq!(cache.stats.stores.load(Ordering::Relaxed), 0);
}

#[test]
fn the_capacity_bounds_the_bytes_held() {
    let cache = StageCache::new("shop", "prod", 64 * 1024);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        for i in 0..200 {
            let key = key_for(&format!("/prod/pets/{i}"), &i.to_string());
            let Lookup::Miss(fill) = cache.lookup(key, Duration::ZERO).await else {
                panic!("miss");
            };
            let rules = Storable {
                max_entry_bytes: 4096,
                ..RULES
            };
            let mut collecting = fill
                .begin(
                    StatusCode::OK,
                    &HeaderMap::new(),
                    &rules,
                    Duration::from_secs(60),
                    Arc::from([]),
                )
                .unwrap();
            assert!(collecting.data(&Bytes::from(vec![b'x'; 4000])));
            collecting.finish();
        }
    });
    let (entries, bytes) = cache.usage();
    assert!(bytes <= 64 * 1024, "{bytes} bytes held");
    assert!(entries < 200 && entries > 0, "{entries} entries");
    assert!(cache.stats.evictions.load(Ordering::Relaxed) > 0);
}

proptest! {
    /// Requests that differ only in parameters the key does not name share one entry;
    /// a named parameter's value always separates.
    #[test]
    fn unnamed_parameters_do_not_change_the_key(
        id in "[a-z0-9]{1,8}",
        lang in proptest::option::of("[a-z]{2}"),
        other_query in proptest::collection::vec(("[b-k]{1,6}", "[a-z0-9]{0,6}"), 0..4),
        other_headers in proptest::collection::vec(("x-[a-z]{1,6}", "[a-z0-9]{1,6}"), 0..4),
        other_id in "[a-z0-9]{1,8}",
    ) {
        let base = match &lang {
            Some(l) => format!("/prod/pets/{id}?lang={l}"),
            None => format!("/prod/pets/{id}"),
        };
        let mut noisy = base.clone();
        for (k, v) in &other_query {
            noisy.push(if noisy.contains('?') { '&' } else { '?' });
            noisy.push_str(&format!("{k}={v}"));
        }
        let params = [
            RequestParam::Path { name: "id".into(), index: 0 },
            RequestParam::Query("lang".into()),
        ];
        let route: Arc<str> = Arc::from("GET /pets/{id}");
        let headers: Vec<(&str, &str)> =
            other_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let plain = StageCache::key(&Method::GET, &route, 1, &params, &parts(&base, &[]), &[&id]);
        let with_noise =
            StageCache::key(&Method::GET, &route, 1, &params, &parts(&noisy, &headers), &[&id]);
        prop_assert_eq!(&plain, &with_noise);

        let other = StageCache::key(&Method::GET, &route, 1, &params, &parts(&base, &[]), &[&other_id]);
        prop_assert_eq!(plain == other, id == other_id);
    }
}
