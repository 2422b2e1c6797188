//! Stage response cache (issue 5), with the real binary: hit and miss counted at the origin,
//! TTL expiry, key parameters that separate and ignore, what is not stored (no-store, private,
//! Set-Cookie, Vary: *, non-2xx, too big), methods, request coalescing, each invalidation
//! strategy with the token-authorizer plugin, the admin cache API, and reload.
//!
//! The origin numbers its answers (`#N METHOD PATH?QUERY`), so a body shows which origin call
//! produced it: a hit repeats an earlier number, a miss has a new one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use edgeway_tests::*;

const WAIT: Duration = Duration::from_secs(10);

/// How long the slow origin paths take to answer: long enough for a burst of requests over
/// warm connections to arrive while the first is still at the origin, even on a busy machine.
const SLOW: Duration = Duration::from_millis(600);

/// An origin whose answer depends on the path, numbered per call:
/// - `/nostore*` → `cache-control: no-store`; `/private*` → `cache-control: private, max-age=600`
/// - `/cookie` → `set-cookie`; `/vary` → `vary: *`
/// - `/status/{code}` → that status
/// - `/big/{n}` → `n` pattern bytes with a content length; `/stream/{n}` → the same, chunked
/// - `/slow*` → answers after [`SLOW`] (and `/slow-nostore` says `no-store`)
/// - anything else → 200 `#N METHOD PATH?QUERY`, `content-type: text/plain`, `x-origin: 1`
async fn cache_origin() -> Origin {
    let calls = Arc::new(AtomicUsize::new(0));
    Origin::start_async(move |r: Recorded| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move { answer(n, &r).await }
    })
    .await
}

async fn answer(n: usize, r: &Recorded) -> http::Response<OriginBody> {
    let path = r.uri.path().to_owned();
    let body = format!("#{n} {} {}", r.method, r.path_and_query());
    let plain = [("content-type", "text/plain"), ("x-origin", "1")];
    let number = |prefix: &str| -> usize { path[prefix.len()..].parse().expect("a number") };
    if path.starts_with("/nostore") {
        reply(200, &[("cache-control", "no-store")], body)
    } else if path.starts_with("/private") {
        reply(200, &[("cache-control", "private, max-age=600")], body)
    } else if path == "/cookie" {
        reply(200, &[("set-cookie", "session=s1; Path=/")], body)
    } else if path == "/vary" {
        reply(200, &[("vary", "*")], body)
    } else if path.starts_with("/status/") {
        reply(number("/status/") as u16, &plain, body)
    } else if path.starts_with("/big/") {
        reply(200, &[], pattern_chunk(0, number("/big/")))
    } else if path.starts_with("/stream/") {
        let len = number("/stream/") as u64;
        http::Response::new(stream_body(len, 256, |_| true))
    } else if path.starts_with("/slow") {
        tokio::time::sleep(SLOW).await;
        let cc = if path == "/slow-nostore" {
            "no-store"
        } else {
            "public"
        };
        reply(200, &[("cache-control", cc)], body)
    } else {
        reply(200, &plain, body)
    }
}

/// The stage cache of `prod` in most tests: small entries so the size limit is easy to cross.
const STAGE_CACHE: &str = "{ ttl_s: 300, max_entry_bytes: 1000 }";

/// Routes of most tests (each integration goes to the same path at the origin).
const ROUTES: &str = r#"
      - { route: "GET /pets/{id}", integration: { http_proxy: "${origin}/pets/{id}" }, cache: { key: [path.id, query.lang] } }
      - { route: "GET /items/{id}", integration: { http_proxy: "${origin}/items/{id}" } }
      - { route: GET /greet, integration: { http_proxy: "${origin}/greet" }, cache: { key: [header.accept-language] } }
      - { route: GET /short, integration: { http_proxy: "${origin}/short" }, cache: { ttl_s: 1 } }
      - { route: GET /nostore, integration: { http_proxy: "${origin}/nostore" } }
      - { route: GET /nostore-ignored, integration: { http_proxy: "${origin}/nostore-ignored" }, cache: { ignore_cache_control: true } }
      - { route: GET /private, integration: { http_proxy: "${origin}/private" } }
      - { route: GET /private-ignored, integration: { http_proxy: "${origin}/private-ignored" }, cache: { ignore_cache_control: true } }
      - { route: GET /cookie, integration: { http_proxy: "${origin}/cookie" } }
      - { route: GET /vary, integration: { http_proxy: "${origin}/vary" } }
      - { route: "GET /status/{code}", integration: { http_proxy: "${origin}/status/{code}" }, cache: { key: [path.code] } }
      - { route: "GET /status-kept/{code}", integration: { http_proxy: "${origin}/status/{code}" }, cache: { key: [path.code], statuses: [404] } }
      - { route: "GET /big/{n}", integration: { http_proxy: "${origin}/big/{n}" }, cache: { key: [path.n] } }
      - { route: "GET /stream/{n}", integration: { http_proxy: "${origin}/stream/{n}" }, cache: { key: [path.n] } }
      - { route: POST /orders, integration: { http_proxy: "${origin}/orders" } }
      - { route: POST /search, integration: { http_proxy: "${origin}/search" }, cache: { enabled: true } }
      - { route: GET /uncached, integration: { http_proxy: "${origin}/uncached" }, cache: { enabled: false } }
      - { route: GET /slow, integration: { http_proxy: "${origin}/slow" } }
      - { route: GET /slow-nostore, integration: { http_proxy: "${origin}/slow-nostore" } }
      - { route: GET /warm, integration: { mock: { status: 200, body: warm } } }"#;

/// A config with stages `prod` (cache `stage_cache`) and `dev` (no cache), an admin listener,
/// and `plugins` / `api_extra` spliced in (empty for most tests).
fn config(origin: &Origin, plugins: &str, stages: &str, api_extra: &str, routes: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
{plugins}
apis:
  - name: shop
    stages:
{stages}
{api_extra}
    routes:
{routes}
"#,
        origin = origin.url()
    )
}

fn stages(prod_cache: &str) -> String {
    format!("      prod: {{ cache: {prod_cache} }}\n      dev: {{}}")
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await
}

/// An origin and a gateway with the common routes and `prod` cache `stage_cache`.
async fn setup(stage_cache: &str) -> (Origin, Gateway) {
    let origin = cache_origin().await;
    let gw = start(&config(&origin, "", &stages(stage_cache), "", ROUTES)).await;
    (origin, gw)
}

/// `n` concurrent GETs of `url` with one client; all answers, in completion order.
async fn burst(c: &reqwest::Client, url: &str, n: usize) -> Vec<Got> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (c, url) = (c.clone(), url.to_owned());
        set.spawn(async move { Got::read(c.get(&url).send().await.expect("GET")).await });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(got) = set.join_next().await {
        all.push(got.expect("request task"));
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Hit, miss, TTL
// ---------------------------------------------------------------------------------------------

/// First GET is a miss that reaches the origin; the second is a hit with the same body and
/// headers, an `age`, its own request id, and the origin sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_counted_at_the_origin() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let url = gw.url("/prod/items/1");

    let first = get(&url, &[]).await;
    let body = first.assert_miss("first GET");
    assert_eq!(body, "#1 GET /items/1");
    assert_eq!(first.header("x-origin"), Some("1"));
    assert_eq!(origin.request_count(), 1);

    let second = get(&url, &[]).await;
    second.assert_hit(&body, "second GET");
    assert!(second.age().unwrap() <= 5, "age {:?}", second.age());
    assert_eq!(second.header("x-origin"), Some("1"), "origin headers kept");
    assert_eq!(second.header("content-type"), Some("text/plain"));
    assert_eq!(second.header("content-length"), Some("15"));
    let (rid1, rid2) = (first.header("x-request-id"), second.header("x-request-id"));
    assert!(
        is_uuid(rid2.unwrap_or("")),
        "a hit has a request id: {rid2:?}"
    );
    assert_ne!(rid1, rid2, "a hit must not replay the stored request id");
    assert_eq!(origin.request_count(), 1, "a hit does not reach the origin");

    let third = get(&url, &[]).await;
    third.assert_hit(&body, "third GET");
    assert_eq!(origin.request_count(), 1);
}

/// A route's `ttl_s: 1` expires: a hit before, a miss (new origin call) after; the stage's
/// 300 s entries live on and their `age` grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_their_ttl() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let short = gw.url("/prod/short");
    let long = gw.url("/prod/items/1");

    let body = get(&short, &[]).await.assert_miss("short, first");
    let long_body = get(&long, &[]).await.assert_miss("long, first");
    get(&short, &[])
        .await
        .assert_hit(&body, "short, within its 1 s");
    assert_eq!(origin.count_to("/short"), 1);

    tokio::time::sleep(Duration::from_millis(1500)).await;

    let after = get(&short, &[]).await;
    let fresh = after.assert_miss("short, after 1.5 s");
    assert_ne!(fresh, body, "an expired entry is fetched again");
    assert_eq!(origin.count_to("/short"), 2);
    get(&short, &[])
        .await
        .assert_hit(&fresh, "short, stored again");
    assert_eq!(origin.count_to("/short"), 2);

    let long_hit = get(&long, &[]).await;
    long_hit.assert_hit(&long_body, "stage ttl 300 s outlives the route's 1 s");
    assert!(
        long_hit.age().unwrap() >= 1,
        "age after 1.5 s: {:?}",
        long_hit.age()
    );
    assert_eq!(origin.count_to("/items/1"), 1);
}

/// A stage `ttl_s: 0` caches nothing (its routes answer as uncached ones, without `x-cache`),
/// except routes that set their own `ttl_s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_ttl_zero_stores_only_routes_with_their_own_ttl() {
    let (origin, gw) = setup("{ ttl_s: 0 }").await;
    let url = gw.url("/prod/items/1");
    for i in 0..2 {
        let g = get(&url, &[]).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.x_cache(), None, "stage ttl 0, #{i}: not cached: {g:?}");
        assert_eq!(g.header("age"), None);
    }
    assert_eq!(origin.count_to("/items/1"), 2, "stage ttl 0 stores nothing");

    let short = gw.url("/prod/short");
    let body = get(&short, &[]).await.assert_miss("route ttl 1, first");
    get(&short, &[])
        .await
        .assert_hit(&body, "route ttl 1 overrides stage 0");
    assert_eq!(origin.count_to("/short"), 1);
}

// ---------------------------------------------------------------------------------------------
// Key parameters
// ---------------------------------------------------------------------------------------------

/// `key: [path.id, query.lang]`: each combination is its own entry; other query parameters and
/// headers are ignored; an absent `lang` and an empty one are two more entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_key_parameters_separate_entries_and_others_are_ignored() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let en1 = get(&gw.url("/prod/pets/1?lang=en"), &[])
        .await
        .assert_miss("1 en");
    let en2 = get(&gw.url("/prod/pets/2?lang=en"), &[])
        .await
        .assert_miss("2 en");
    let de1 = get(&gw.url("/prod/pets/1?lang=de"), &[])
        .await
        .assert_miss("1 de");
    assert_eq!(
        [en1.as_str(), en2.as_str(), de1.as_str()],
        [
            "#1 GET /pets/1?lang=en",
            "#2 GET /pets/2?lang=en",
            "#3 GET /pets/1?lang=de"
        ]
    );
    assert_eq!(origin.request_count(), 3, "three entries");

    get(&gw.url("/prod/pets/1?lang=en&other=x"), &[])
        .await
        .assert_hit(&en1, "an unnamed query parameter is ignored");
    get(&gw.url("/prod/pets/1?other=y&lang=en"), &[])
        .await
        .assert_hit(&en1, "parameter order does not matter");
    get(&gw.url("/prod/pets/1?lang=en"), &[("x-unnamed", "z")])
        .await
        .assert_hit(&en1, "an unnamed header is ignored");
    get(&gw.url("/prod/pets/2?lang=en"), &[])
        .await
        .assert_hit(&en2, "2 en again");
    get(&gw.url("/prod/pets/1?lang=de"), &[])
        .await
        .assert_hit(&de1, "1 de again");
    assert_eq!(origin.request_count(), 3);

    let absent = get(&gw.url("/prod/pets/1"), &[])
        .await
        .assert_miss("no lang");
    let empty = get(&gw.url("/prod/pets/1?lang="), &[])
        .await
        .assert_miss("empty lang is not absent lang");
    assert_eq!(origin.request_count(), 5);
    get(&gw.url("/prod/pets/1"), &[])
        .await
        .assert_hit(&absent, "no lang again");
    get(&gw.url("/prod/pets/1?lang="), &[])
        .await
        .assert_hit(&empty, "empty lang again");
    assert_eq!(origin.request_count(), 5);
}

/// A header named in the key separates entries (its name in any case); unnamed parts of the
/// request, even the path parameter, do not: `/items/1` and `/items/2` share one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keys_separate_and_unnamed_path_parameters_share_an_entry() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let greet = gw.url("/prod/greet");
    let en = get(&greet, &[("accept-language", "en")])
        .await
        .assert_miss("en");
    let de = get(&greet, &[("accept-language", "de")])
        .await
        .assert_miss("de");
    get(&greet, &[("Accept-Language", "en")])
        .await
        .assert_hit(&en, "en again");
    get(&greet, &[("accept-language", "de"), ("x-other", "1")])
        .await
        .assert_hit(&de, "de again");
    assert_eq!(origin.count_to("/greet"), 2);

    let one = get(&gw.url("/prod/items/1"), &[])
        .await
        .assert_miss("item 1");
    get(&gw.url("/prod/items/2"), &[]).await.assert_hit(
        &one,
        "path.id is not in the key: item 2 gets item 1's entry",
    );
    assert_eq!(origin.count_to("/items/2"), 0);
    assert_eq!(origin.count_to("/items/1"), 1);
}

// ---------------------------------------------------------------------------------------------
// What is not stored
// ---------------------------------------------------------------------------------------------

/// Two GETs of `path`: both misses reaching the origin (not stored). Returns the bodies.
async fn assert_not_stored(gw: &Gateway, origin: &Origin, path: &str, status: u16) -> Vec<Got> {
    let before = origin.request_count();
    let mut got = Vec::new();
    for i in 0..2 {
        let g = get(&gw.url(&format!("/prod{path}")), &[]).await;
        assert_eq!(g.status, status, "{path} #{i}: {:?}", g.text());
        assert_eq!(g.x_cache(), Some("miss"), "{path} #{i}: {g:?}");
        assert_eq!(g.header("age"), None, "{path} #{i}");
        got.push(g);
    }
    assert_eq!(
        origin.request_count() - before,
        2,
        "{path}: not stored, both requests reach the origin"
    );
    assert_ne!(got[0].body, got[1].body, "{path}");
    got
}

/// Two GETs of `path`: a miss, then a hit with the same status and body.
async fn assert_stored(gw: &Gateway, origin: &Origin, path: &str, status: u16) {
    let before = origin.request_count();
    let url = gw.url(&format!("/prod{path}"));
    let first = get(&url, &[]).await;
    assert_eq!(first.status, status, "{path}: {:?}", first.text());
    assert_eq!(first.x_cache(), Some("miss"), "{path}: {first:?}");
    let second = get(&url, &[]).await;
    assert_eq!(second.status, status, "{path}: {:?}", second.text());
    assert_eq!(second.x_cache(), Some("hit"), "{path}: {second:?}");
    assert!(second.age().is_some(), "{path}: hit without age");
    assert_eq!(second.body, first.body, "{path}");
    assert_eq!(origin.request_count() - before, 1, "{path}: stored");
}

/// The origin's `no-store` and `private` are honoured unless the route ignores cache control;
/// `Set-Cookie` and `Vary: *` responses are never stored (and reach the client intact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_private_set_cookie_and_vary_star_are_not_stored() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let got = assert_not_stored(&gw, &origin, "/nostore", 200).await;
    assert_eq!(got[0].header("cache-control"), Some("no-store"));
    assert_not_stored(&gw, &origin, "/private", 200).await;
    let got = assert_not_stored(&gw, &origin, "/cookie", 200).await;
    assert_eq!(got[1].header("set-cookie"), Some("session=s1; Path=/"));
    assert_not_stored(&gw, &origin, "/vary", 200).await;

    assert_stored(&gw, &origin, "/nostore-ignored", 200).await;
    assert_stored(&gw, &origin, "/private-ignored", 200).await;
}

/// Only 2xx is stored by default; `statuses: [404]` stores a 404 (served as a 404 hit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_is_not_stored_unless_listed_in_statuses() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    assert_not_stored(&gw, &origin, "/status/404", 404).await;
    assert_not_stored(&gw, &origin, "/status/500", 500).await;
    assert_not_stored(&gw, &origin, "/status/301", 301).await;
    assert_stored(&gw, &origin, "/status/204", 204).await;
    assert_stored(&gw, &origin, "/status/203", 203).await;
    assert_stored(&gw, &origin, "/status-kept/404", 404).await;
    assert_not_stored(&gw, &origin, "/status-kept/500", 500).await;
}

/// `max_entry_bytes: 1000`: a larger body is served whole but not stored; one at or below the
/// limit is stored; the same with a chunked body of unknown length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_entry_bytes_are_served_whole_but_not_stored() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    for kind in ["big", "stream"] {
        for _ in 0..2 {
            let g = get(&gw.url(&format!("/prod/{kind}/1500")), &[]).await;
            assert_eq!(g.status, 200, "{kind} 1500");
            assert_eq!(g.body.len(), 1500, "{kind} 1500: served whole");
            assert!(is_pattern(0, &g.body), "{kind} 1500: body intact");
            assert_eq!(g.x_cache(), Some("miss"), "{kind} 1500");
        }
        assert_eq!(
            origin.count_to(&format!("/{kind}/1500")),
            2,
            "{kind}: a body over max_entry_bytes is not stored"
        );

        for len in [900, 1000] {
            let url = gw.url(&format!("/prod/{kind}/{len}"));
            let first = get(&url, &[]).await;
            assert_eq!(first.body.len(), len, "{kind} {len}");
            assert_eq!(first.x_cache(), Some("miss"), "{kind} {len}");
            let second = get(&url, &[]).await;
            assert_eq!(second.x_cache(), Some("hit"), "{kind} {len}: stored");
            assert_eq!(second.body, first.body, "{kind} {len}");
            assert!(is_pattern(0, &second.body), "{kind} {len}");
            assert_eq!(
                origin.count_to(&format!("/{kind}/{len}")),
                1,
                "{kind} {len}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Methods and stages
// ---------------------------------------------------------------------------------------------

/// POST is not cached unless the route opts in; HEAD is cached (and a later GET still gets a
/// body); a stage without `cache` and a route with `enabled: false` give no `x-cache` at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_stages_and_routes_without_a_cache() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let c = client();

    for i in 0..2 {
        let r = c
            .post(gw.url("/prod/orders"))
            .body("o")
            .send()
            .await
            .unwrap();
        let g = Got::read(r).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.x_cache(), None, "POST without opt-in #{i}: {g:?}");
        assert_eq!(g.header("age"), None);
    }
    assert_eq!(origin.count_to("/orders"), 2);

    let post = |body: &'static str| c.post(gw.url("/prod/search")).body(body).send();
    let first = Got::read(post("q=1").await.unwrap()).await;
    let body = first.assert_miss("POST opted in, first");
    Got::read(post("q=1").await.unwrap())
        .await
        .assert_hit(&body, "POST opted in, second");
    assert_eq!(origin.count_to("/search"), 1);

    let head = || c.head(gw.url("/prod/items/9")).send();
    let h1 = Got::read(head().await.unwrap()).await;
    assert_eq!(h1.status, 200);
    assert_eq!(h1.x_cache(), Some("miss"), "HEAD, first: {h1:?}");
    assert!(h1.body.is_empty());
    let h2 = Got::read(head().await.unwrap()).await;
    assert_eq!(h2.status, 200);
    assert_eq!(h2.x_cache(), Some("hit"), "HEAD, second: {h2:?}");
    assert!(h2.body.is_empty(), "a HEAD hit has no body");
    assert_eq!(origin.count_to("/items/9"), 1, "HEAD is cached");
    let g = get(&gw.url("/prod/items/9"), &[]).await;
    assert_eq!(g.status, 200);
    assert!(
        g.text().starts_with('#') && g.text().ends_with("/items/9"),
        "a GET after a cached HEAD gets a whole body: {g:?}"
    );

    for (path, what) in [
        ("/dev/items/1", "a stage without cache"),
        ("/prod/uncached", "a route with enabled: false"),
    ] {
        for i in 0..2 {
            let g = get(&gw.url(path), &[]).await;
            assert_eq!(g.status, 200, "{what}");
            assert_eq!(g.x_cache(), None, "{what} #{i}: {g:?}");
            assert_eq!(g.header("age"), None, "{what} #{i}");
        }
    }
    assert_eq!(origin.count_to("/items/1"), 2, "dev stage: not cached");
    assert_eq!(origin.count_to("/uncached"), 2);
}

// ---------------------------------------------------------------------------------------------
// Coalescing
// ---------------------------------------------------------------------------------------------

/// A client holding `n` open connections to the gateway, so a later burst of `n` requests
/// does not wait for connection setup.
async fn warm_client(gw: &Gateway, n: usize) -> reqwest::Client {
    let c = client();
    for g in burst(&c, &gw.url("/dev/warm"), n).await {
        assert_eq!(g.status, 200, "warm-up");
    }
    c
}

/// 100 concurrent GETs for one cold key while the origin takes its time: the origin sees one
/// request, every client gets 200 with the same body, the others wait for it and are served
/// from the entry; the admin counters say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_for_one_key_send_one_origin_request() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let c = warm_client(&gw, 100).await;

    let all = burst(&c, &gw.url("/prod/slow"), 100).await;
    assert_eq!(all.len(), 100);
    assert_eq!(
        origin.count_to("/slow"),
        1,
        "one origin request for 100 clients"
    );
    for g in &all {
        assert_eq!(g.status, 200, "{g:?}");
        assert_eq!(g.text(), "#1 GET /slow");
    }
    let misses = all.iter().filter(|g| g.x_cache() == Some("miss")).count();
    let hits = all.iter().filter(|g| g.x_cache() == Some("hit")).count();
    assert_eq!((misses, hits), (1, 99), "x-cache of the 100 answers");

    let stats = cache_stats(&gw.admin_url(""), "shop", "prod").await;
    assert_eq!(stats["misses"], 1, "{stats}");
    assert_eq!(stats["stores"], 1, "{stats}");
    assert_eq!(
        stats["hits"], 99,
        "hits count what clients saw as hits: {stats}"
    );
    let coalesced = stats["coalesced"].as_u64().expect("coalesced");
    assert!(
        (1..=99).contains(&coalesced),
        "requests that waited for the first one's origin request: {stats}"
    );
}

/// When the response the others waited for may not be stored (`no-store`), each waiter goes to
/// the origin itself (at once, not one after another) and all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_fetch_for_themselves_when_the_response_is_not_storable() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let n = 30;
    let c = warm_client(&gw, n).await;

    let started = Instant::now();
    let all = burst(&c, &gw.url("/prod/slow-nostore"), n).await;
    let took = started.elapsed();
    for g in &all {
        assert_eq!(g.status, 200, "{g:?}");
        assert!(g.text().ends_with(" GET /slow-nostore"), "{g:?}");
        assert_eq!(g.x_cache(), Some("miss"), "nothing was stored: {g:?}");
    }
    let seen = origin.count_to("/slow-nostore");
    assert!(
        seen > 1 && seen <= n,
        "waiters go to the origin themselves: origin saw {seen}"
    );
    // Serialised waiters would take n × 600 ms = 18 s.
    assert!(
        took < Duration::from_secs(8),
        "waiters must not queue behind each other: {n} requests took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Invalidation
// ---------------------------------------------------------------------------------------------

const TOKENS: &str = "role: authorizer, config: { tokens: { ops-token: { principal: ops }, alice-token: { principal: alice }, key-token: { principal: carol, usage_key: k-ops } } }";

/// One stage per invalidation setting; `GET /pets/{id}` is guarded by the token authorizer,
/// `GET /pub` is not.
async fn invalidation_gateway(origin: &Origin) -> Gateway {
    let plugins = plugins_yaml(&[("auth", "token_authorizer", TOKENS)]);
    let stages = r#"      s403: { cache: { invalidation: { unauthorized_strategy: fail_with_403, principals: [ops], api_keys: [k-ops] } } }
      header: { cache: { invalidation: { principals: [ops] } } }
      silent: { cache: { invalidation: { unauthorized_strategy: succeed_without_response_header, principals: [ops] } } }
      open: { cache: { invalidation: { require_authorization: false } } }"#;
    let api_extra =
        "    authorizers:\n      tok: { plugin: auth, identity_source: [header.authorization] }";
    let routes = r#"
      - { route: "GET /pets/{id}", auth: tok, integration: { http_proxy: "${origin}/pets/{id}" }, cache: { key: [path.id] } }
      - { route: GET /pub, integration: { http_proxy: "${origin}/pub" } }"#;
    start(&config(origin, &plugins, stages, api_extra, routes)).await
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// GET with an optional token and an optional request `Cache-Control`.
async fn get_as(gw: &Gateway, path: &str, token: Option<&str>, cc: Option<&str>) -> Got {
    let mut req = client().get(gw.url(path));
    if let Some(t) = token {
        let (k, v) = bearer(t);
        req = req.header(k, v);
    }
    if let Some(cc) = cc {
        req = req.header("cache-control", cc);
    }
    Got::read(req.send().await.unwrap()).await
}

/// A principal listed in `principals` (or a usage key in `api_keys`) refreshes with
/// `max-age=0` or `no-cache`: a miss that reaches the origin and replaces the entry, whatever
/// the stage's unauthorized strategy. The cache never bypasses the authorizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_principals_and_keys_refresh_the_entry() {
    let origin = cache_origin().await;
    let gw = invalidation_gateway(&origin).await;
    for stage in ["s403", "header", "silent"] {
        let path = format!("/{stage}/pets/1");
        let before = origin.request_count();
        let v1 = get_as(&gw, &path, Some("ops-token"), None)
            .await
            .assert_miss(stage);
        get_as(&gw, &path, Some("ops-token"), None)
            .await
            .assert_hit(&v1, stage);
        assert_eq!(origin.request_count() - before, 1, "{stage}");

        for cc in ["max-age=0", "no-cache"] {
            let refreshed = get_as(&gw, &path, Some("ops-token"), Some(cc)).await;
            let v2 = refreshed.assert_miss(&format!("{stage}: ops with {cc}"));
            assert_ne!(v2, v1, "{stage}: {cc} fetched a new body");
            assert_eq!(refreshed.header("x-cache-invalidation"), None, "{stage}");
            let next = get_as(&gw, &path, Some("alice-token"), None).await;
            next.assert_hit(&v2, &format!("{stage}: the entry was replaced ({cc})"));
            assert_eq!(next.header("x-cache-invalidation"), None);
        }
        assert_eq!(origin.request_count() - before, 3, "{stage}");

        let anonymous = get_as(&gw, &path, None, None).await;
        assert_eq!(
            anonymous.status, 401,
            "{stage}: a cached route still needs its authorizer"
        );
        assert_eq!(anonymous.x_cache(), None, "{stage}: {anonymous:?}");
        let denied = get_as(&gw, &path, Some("bad-token"), None).await;
        assert_eq!(denied.status, 403, "{stage}: unknown token");
    }

    // In s403, carol is not a listed principal but her usage key is.
    let before = origin.request_count();
    let v1 = get_as(&gw, "/s403/pets/1", Some("key-token"), None).await;
    let v1 = v1.text();
    let r = get_as(&gw, "/s403/pets/1", Some("key-token"), Some("max-age=0")).await;
    let v2 = r.assert_miss("usage key in api_keys");
    assert_ne!(v2, v1);
    assert_eq!(origin.request_count() - before, 1);
}

/// `fail_with_403`: a refresh by a principal that is not listed (or on a route without an
/// authorizer) is refused with 403 and the origin sees nothing; the entry stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_with_403_refuses_unlisted_refreshes() {
    let origin = cache_origin().await;
    let gw = invalidation_gateway(&origin).await;
    let v1 = get_as(&gw, "/s403/pets/1", Some("alice-token"), None)
        .await
        .assert_miss("fill");
    let pub1 = get_as(&gw, "/s403/pub", None, None)
        .await
        .assert_miss("fill pub");
    let before = origin.request_count();

    for (path, token) in [("/s403/pets/1", Some("alice-token")), ("/s403/pub", None)] {
        for cc in ["max-age=0", "no-cache"] {
            let mut req = client().get(gw.url(path)).header("cache-control", cc);
            if let Some(t) = token {
                let (k, v) = bearer(t);
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            assert_gateway_error(
                r,
                403,
                "Not authorized to invalidate the cache",
                "CACHE_INVALIDATION_DENIED",
            )
            .await;
        }
    }
    assert_eq!(
        origin.request_count(),
        before,
        "a refused refresh sends nothing"
    );
    get_as(&gw, "/s403/pets/1", Some("alice-token"), None)
        .await
        .assert_hit(&v1, "the entry stays");
    get_as(&gw, "/s403/pub", None, None)
        .await
        .assert_hit(&pub1, "the entry stays");
}

/// `succeed_with_response_header` (the default): the refresh is ignored, the hit stays a hit
/// and says `x-cache-invalidation: denied`. `succeed_without_response_header`: ignored quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn succeed_strategies_ignore_unlisted_refreshes() {
    let origin = cache_origin().await;
    let gw = invalidation_gateway(&origin).await;
    for (stage, header) in [("header", Some("denied")), ("silent", None)] {
        let path = format!("/{stage}/pets/1");
        let v1 = get_as(&gw, &path, Some("alice-token"), None)
            .await
            .assert_miss(stage);
        let before = origin.request_count();
        for cc in ["max-age=0", "no-cache"] {
            let g = get_as(&gw, &path, Some("alice-token"), Some(cc)).await;
            g.assert_hit(&v1, &format!("{stage}: alice with {cc}"));
            assert_eq!(
                g.header("x-cache-invalidation"),
                header,
                "{stage}: alice with {cc}"
            );
            // a route without an authorizer has no principal: never allowed
            let g = get_as(&gw, &format!("/{stage}/pub"), None, Some(cc)).await;
            assert_eq!(g.status, 200);
            assert_eq!(
                g.header("x-cache-invalidation"),
                header,
                "{stage}: pub {cc}"
            );
        }
        let plain = get_as(&gw, &path, Some("alice-token"), None).await;
        plain.assert_hit(&v1, stage);
        assert_eq!(
            plain.header("x-cache-invalidation"),
            None,
            "{stage}: no header without a refresh request"
        );
        // the two pub requests: at most the first filled the entry
        assert!(origin.request_count() - before <= 1, "{stage}");
    }
}

/// `require_authorization: false`: anyone refreshes, with or without an authorizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_required_authorization_anyone_refreshes() {
    let origin = cache_origin().await;
    let gw = invalidation_gateway(&origin).await;
    for (path, token) in [("/open/pets/1", Some("alice-token")), ("/open/pub", None)] {
        let v1 = get_as(&gw, path, token, None).await.assert_miss(path);
        get_as(&gw, path, token, None).await.assert_hit(&v1, path);
        let before = origin.request_count();
        let v2 = get_as(&gw, path, token, Some("max-age=0"))
            .await
            .assert_miss(path);
        assert_ne!(v2, v1, "{path}");
        assert_eq!(origin.request_count() - before, 1, "{path}");
        get_as(&gw, path, token, None).await.assert_hit(&v2, path);
    }
}

// ---------------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------------

/// `DELETE /admin/cache/...` with the admin token.
async fn admin_delete(gw: &Gateway, path_and_query: &str) -> (u16, serde_json::Value) {
    let r = client()
        .delete(gw.admin_url(path_and_query))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, json_body(r).await)
}

/// The answer to dropping one route's entries: 200 with `dropped` (the spec shows only
/// `dropped`; the api and stage, which the flush answer also names, are accepted).
fn assert_dropped(status: u16, body: &serde_json::Value, n: u64) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped"], n, "{body}");
    for (k, v) in body.as_object().expect("an object") {
        match k.as_str() {
            "dropped" => {}
            "api" => assert_eq!(v, "shop", "{body}"),
            "stage" => assert_eq!(v, "prod", "{body}"),
            _ => panic!("unexpected field {k} in {body}"),
        }
    }
}

/// Counters match what the test did; one route's entries for one parameter value are dropped;
/// a stage is flushed; unknown api or stage 404; no token 401 (and nothing is dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_counters_drop_and_flush() {
    let (origin, gw) = setup("{ capacity_mib: 2, ttl_s: 300, max_entry_bytes: 1000 }").await;
    let admin = gw.admin_url("");

    let listing = admin_cache(&admin).await;
    let stages = listing["stages"].as_array().expect("stages");
    assert_eq!(
        stages.len(),
        1,
        "only stages with a cache are listed: {listing}"
    );
    let s = &stages[0];
    assert_eq!(
        (s["api"].as_str(), s["stage"].as_str()),
        (Some("shop"), Some("prod"))
    );
    assert_eq!(s["capacity_bytes"], 2 * 1024 * 1024, "{s}");
    for k in [
        "entries",
        "bytes",
        "hits",
        "misses",
        "stores",
        "evictions",
        "coalesced",
    ] {
        assert_eq!(s[k], 0, "{k} on a fresh cache: {s}");
    }

    // 3 misses (3 stores), 4 hits, 1 miss not stored
    let en1 = get(&gw.url("/prod/pets/1?lang=en"), &[])
        .await
        .assert_miss("1 en");
    let de1 = get(&gw.url("/prod/pets/1?lang=de"), &[])
        .await
        .assert_miss("1 de");
    let en2 = get(&gw.url("/prod/pets/2?lang=en"), &[])
        .await
        .assert_miss("2 en");
    for _ in 0..2 {
        get(&gw.url("/prod/pets/1?lang=en"), &[])
            .await
            .assert_hit(&en1, "1 en");
        get(&gw.url("/prod/pets/2?lang=en"), &[])
            .await
            .assert_hit(&en2, "2 en");
    }
    get(&gw.url("/prod/nostore"), &[])
        .await
        .assert_miss("nostore");
    get(&gw.url("/dev/items/1"), &[]).await; // no cache: not counted
    let stats = eventually(WAIT, || async {
        let s = cache_stats(&admin, "shop", "prod").await;
        (s["entries"] == 3).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("3 entries expected"));
    assert_eq!(stats["hits"], 4, "{stats}");
    assert_eq!(stats["misses"], 4, "{stats}");
    assert_eq!(stats["stores"], 3, "{stats}");
    assert_eq!(stats["evictions"], 0, "{stats}");
    assert_eq!(stats["coalesced"], 0, "{stats}");
    assert_eq!(origin.request_count(), 5, "3 stored, 1 not stored, 1 dev");
    let bytes = stats["bytes"].as_u64().expect("bytes");
    assert!(
        bytes >= 3 * 20 && bytes <= stats["capacity_bytes"].as_u64().unwrap(),
        "bytes (bodies + headers + keys) {stats}"
    );

    // No token: 401 and nothing happens.
    let r = client()
        .get(gw.admin_url("/admin/cache"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json_body(r).await, json!({"message": "Unauthorized"}));
    let r = client()
        .delete(gw.admin_url("/admin/cache/shop/prod"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    get(&gw.url("/prod/pets/1?lang=en"), &[])
        .await
        .assert_hit(&en1, "not flushed by a 401");

    // Drop the route's entries with path.id = 1 (both languages); id 2 stays.
    let (status, body) = admin_delete(
        &gw,
        "/admin/cache/shop/prod?route=GET%20%2Fpets%2F%7Bid%7D&path.id=1",
    )
    .await;
    assert_dropped(status, &body, 2);
    let en1b = get(&gw.url("/prod/pets/1?lang=en"), &[])
        .await
        .assert_miss("1 en dropped");
    assert_ne!(en1b, en1);
    let de1b = get(&gw.url("/prod/pets/1?lang=de"), &[])
        .await
        .assert_miss("1 de dropped");
    assert_ne!(de1b, de1);
    get(&gw.url("/prod/pets/2?lang=en"), &[])
        .await
        .assert_hit(&en2, "2 en kept");

    // Narrower: path.id = 1 and query.lang = de drops one entry.
    let (status, body) = admin_delete(
        &gw,
        "/admin/cache/shop/prod?route=GET%20%2Fpets%2F%7Bid%7D&path.id=1&query.lang=de",
    )
    .await;
    assert_dropped(status, &body, 1);
    get(&gw.url("/prod/pets/1?lang=en"), &[])
        .await
        .assert_hit(&en1b, "1 en kept");
    get(&gw.url("/prod/pets/1?lang=de"), &[])
        .await
        .assert_miss("1 de dropped again");

    // Nothing matches: nothing dropped.
    let (status, body) = admin_delete(
        &gw,
        "/admin/cache/shop/prod?route=GET%20%2Fpets%2F%7Bid%7D&path.id=99",
    )
    .await;
    assert_dropped(status, &body, 0);

    // Flush the stage: 3 pets entries.
    let (status, body) = admin_delete(&gw, "/admin/cache/shop/prod").await;
    assert_eq!(
        (status, &body),
        (200, &json!({"api": "shop", "stage": "prod", "dropped": 3}))
    );
    get(&gw.url("/prod/pets/2?lang=en"), &[])
        .await
        .assert_miss("flushed");
    let after = eventually(WAIT, || async {
        let s = cache_stats(&admin, "shop", "prod").await;
        (s["entries"] == 1).then_some(s)
    })
    .await;
    assert!(after.is_some(), "one entry after the flush and one miss");

    for path in [
        "/admin/cache/shop/nope",
        "/admin/cache/nope/prod",
        "/admin/cache/shop/dev",
    ] {
        let (status, body) = admin_delete(&gw, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: 404 is JSON: {body}");
    }
}

/// Over `capacity_mib`, entries are evicted: the stored bytes stay within the capacity and the
/// evictions are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_weighted_by_bytes_and_evictions_are_counted() {
    let (_origin, gw) = setup("{ capacity_mib: 1, max_entry_bytes: 1048576 }").await;
    for i in 0..6 {
        let g = get(&gw.url(&format!("/prod/big/{}", 300_000 + i)), &[]).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.body.len(), 300_000 + i);
    }
    let admin = gw.admin_url("");
    let stats = eventually(WAIT, || async {
        let s = cache_stats(&admin, "shop", "prod").await;
        let within = s["bytes"].as_u64()? <= s["capacity_bytes"].as_u64()?;
        (within && s["evictions"].as_u64()? >= 1).then_some(s)
    })
    .await;
    let stats = match stats {
        Some(s) => s,
        None => panic!(
            "after 6 × 300 kB into 1 MiB: {}",
            cache_stats(&admin, "shop", "prod").await
        ),
    };
    assert_eq!(stats["capacity_bytes"], 1024 * 1024, "{stats}");
    assert!(stats["entries"].as_u64().unwrap() <= 3, "{stats}");
    assert_eq!(stats["stores"], 6, "{stats}");
}

// ---------------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------------

/// A reload can add a stage cache; a reload with a bad cache setting is refused and the
/// running config (and its cache) keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_a_cache_and_refuses_a_bad_one() {
    let (origin, gw) = setup(STAGE_CACHE).await;
    let body = get(&gw.url("/prod/items/1"), &[]).await.assert_miss("prod");
    assert_eq!(get(&gw.url("/dev/items/1"), &[]).await.x_cache(), None);

    let both =
        format!("      prod: {{ cache: {STAGE_CACHE} }}\n      dev: {{ cache: {{ ttl_s: 60 }} }}");
    gw.replace_config(&config(&origin, "", &both, "", ROUTES));
    // generation 1 is the config the node started with
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 2)
        .await;
    let dev = get(&gw.url("/dev/items/1"), &[])
        .await
        .assert_miss("dev, cached now");
    get(&gw.url("/dev/items/1"), &[])
        .await
        .assert_hit(&dev, "dev");
    let prod = get(&gw.url("/prod/items/1"), &[]).await;
    assert_eq!(prod.status, 200);
    assert!(prod.x_cache().is_some(), "prod still cached after reload");
    if prod.x_cache() == Some("hit") {
        assert_eq!(prod.text(), body);
    }

    let bad = "      prod: { cache: { ttl_s: 4000 } }\n      dev: {}";
    gw.replace_config(&config(&origin, "", bad, "", ROUTES));
    let ev = gw.wait_event("config refused", WAIT, |_| true).await;
    assert!(
        ev.to_string().contains("ttl_s"),
        "refusal names the key: {ev}"
    );
    get(&gw.url("/dev/items/1"), &[])
        .await
        .assert_hit(&dev, "old config keeps serving");
    assert_eq!(gw.generation(), 2);
}
