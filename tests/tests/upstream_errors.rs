//! Integration failures: 502 when the origin refuses or resets, 504 on a per-route
//! `timeout_ms` and on `limits.integration_timeout_ms`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edgeway_tests::*;

fn config(origin_url: &str) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
limits:
  integration_timeout_ms: 400
apis:
  - name: up
    stages:
      prod: {}
    routes:
      - route: GET /slow
        integration: { http_proxy: "${origin}/slow" }
        timeout_ms: 200
      - route: GET /slow-default
        integration: { http_proxy: "${origin}/slow" }
      - route: GET /slowish
        integration: { http_proxy: "${origin}/slowish" }
        timeout_ms: 3000
      - route: GET /x
        integration: { http_proxy: "${origin}/x" }
"#
    .replace("ORIGIN", origin_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_refusing_connections_is_502() {
    let addr = refused_addr().await;
    let gw = Gateway::start(&config(&format!("http://{addr}"))).await;
    let r = client().get(gw.url("/prod/x")).send().await.unwrap();
    assert_gateway_error(
        r,
        502,
        "Network error communicating with endpoint",
        "INTEGRATION_FAILURE",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_resetting_connections_is_502() {
    let (addr, accepted, _task) = resetting_server().await;
    let gw = Gateway::start(&config(&format!("http://{addr}"))).await;
    let r = client().get(gw.url("/prod/x")).send().await.unwrap();
    assert_gateway_error(
        r,
        502,
        "Network error communicating with endpoint",
        "INTEGRATION_FAILURE",
    )
    .await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the gateway did connect to the origin"
    );
}

async fn sleepy_origin() -> Origin {
    Origin::start_async(|r: Recorded| async move {
        let wait = match r.uri.path() {
            "/slow" => Duration::from_secs(3),
            "/slowish" => Duration::from_millis(600),
            _ => Duration::ZERO,
        };
        tokio::time::sleep(wait).await;
        http::Response::builder().body(full("finally")).unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_route_timeout_is_504() {
    let origin = sleepy_origin().await;
    let gw = Gateway::start(&config(&origin.url())).await;
    let started = Instant::now();
    let r = client().get(gw.url("/prod/slow")).send().await.unwrap();
    let took = started.elapsed();
    assert_gateway_error(r, 504, "Endpoint request timed out", "INTEGRATION_TIMEOUT").await;
    assert!(
        took >= Duration::from_millis(180),
        "504 after {took:?}, before the 200 ms timeout"
    );
    assert!(
        took < Duration::from_millis(1500),
        "504 after {took:?}, 200 ms timeout"
    );
    assert_eq!(origin.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_integration_timeout_is_504_and_route_timeout_overrides_it() {
    let origin = sleepy_origin().await;
    let gw = Gateway::start(&config(&origin.url())).await;
    let started = Instant::now();
    let r = client()
        .get(gw.url("/prod/slow-default"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_gateway_error(r, 504, "Endpoint request timed out", "INTEGRATION_TIMEOUT").await;
    assert!(
        took >= Duration::from_millis(380) && took < Duration::from_millis(2000),
        "{took:?}"
    );

    // 600 ms origin, 400 ms global limit, 3 s route timeout: the route wins
    let r = client().get(gw.url("/prod/slowish")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "finally");
}
