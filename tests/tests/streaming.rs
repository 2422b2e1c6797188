//! Streaming: a 50 MiB response and a 50 MiB request body pass through without being buffered
//! whole; the proxy's peak RSS (VmHWM) stays under 100 MiB. Through `http_proxy`, and through a
//! non-proxy `http` integration whose bodies pass through unmapped (no template for their
//! media type, no integration responses).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgeway_tests::*;
use futures_util::StreamExt;

const MIB: u64 = 1024 * 1024;
const TOTAL: u64 = 50 * MIB;
const RSS_LIMIT_KIB: u64 = 100 * 1024;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
limits:
  max_body_bytes: 67108864
apis:
  - name: files
    stages:
      prod: {}
    routes:
      - route: ANY /{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
      - route: ANY /via-http/{proxy+}
        integration:
          http:
            uri: "${origin}/{proxy+}"
            passthrough: when_no_match
            request_templates: { application/json: '{"mapped": true}' }
"#
    .replace("ORIGIN", &origin.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_response_streams_with_bounded_memory() {
    large_response("/prod/big.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_http_integration_response_streams_with_bounded_memory() {
    large_response("/prod/via-http/big.bin").await;
}

async fn large_response(path: &str) {
    // bytes the client has read, and bytes the origin has produced
    let client_got = Arc::new(AtomicU64::new(0));
    let origin_sent = Arc::new(AtomicU64::new(0));
    let (cg, os) = (client_got.clone(), origin_sent.clone());
    let origin = Origin::start(move |_r: &Recorded| {
        let (cg, os) = (cg.clone(), os.clone());
        // past 4 MiB the origin waits until the client has read 1 MiB: a proxy that buffered
        // the whole response would deadlock here (and the test fail on the length)
        let gate = move |sent: u64| {
            os.store(sent, Ordering::SeqCst);
            sent < 4 * MIB || cg.load(Ordering::SeqCst) >= MIB
        };
        http::Response::builder()
            .header("content-type", "application/octet-stream")
            .body(stream_body(TOTAL, 64 * 1024, gate))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&config(&origin)).await;

    let resp = client().get(gw.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut n: u64 = 0;
    let mut paused = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("body error after {n} bytes: {e}"));
        assert!(is_pattern(n, &chunk), "corrupt data at offset {n}");
        n += chunk.len() as u64;
        client_got.store(n, Ordering::SeqCst);
        if !paused && n >= 2 * MIB {
            // a slow client: the proxy must apply backpressure rather than read the origin dry
            paused = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let sent = origin_sent.load(Ordering::SeqCst);
            assert!(
                sent < TOTAL,
                "origin sent all {sent} bytes while the client read only {n}: no backpressure"
            );
        }
        assert!(Instant::now() < deadline, "50 MiB took over 60 s");
    }
    assert_eq!(n, TOTAL, "client received the whole body");
    let hwm = vm_hwm_kib(gw.pid());
    eprintln!("proxy peak RSS (VmHWM): {hwm} KiB");
    assert!(
        hwm < RSS_LIMIT_KIB,
        "proxy peak RSS {hwm} KiB >= {RSS_LIMIT_KIB} KiB"
    );
}

async fn upload(declare_length: bool, path: &str) {
    let origin = Arc::new(
        Origin::start(|r: &Recorded| {
            http::Response::builder()
                .body(full(format!("{} {}", r.body.len(), is_pattern(0, &r.body))))
                .unwrap()
        })
        .await,
    );
    let gw = Gateway::start(&config(&origin)).await;

    let o = origin.clone();
    let chunk = 64 * 1024;
    // past 4 MiB the client waits until the origin has received 1 MiB
    let body = futures_util::stream::unfold(0u64, move |sent| {
        let o = o.clone();
        async move {
            if sent >= TOTAL {
                return None;
            }
            if sent >= 4 * MIB {
                let deadline = Instant::now() + Duration::from_secs(10);
                while o.bytes_received() < MIB {
                    if Instant::now() > deadline {
                        return Some((
                            Err(std::io::Error::other(
                                "origin got nothing: request body buffered?",
                            )),
                            TOTAL,
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let n = (TOTAL - sent).min(chunk);
            Some((Ok(pattern_chunk(sent, n as usize)), sent + n))
        }
    });
    let mut req = client()
        .put(gw.url(path))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    if declare_length {
        req = req.header("content-length", TOTAL.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), format!("{TOTAL} true"));

    let rec = origin.single_request();
    assert!(rec.complete);
    assert_eq!(rec.method, "PUT");
    assert_eq!(rec.path_and_query(), "/upload.bin");
    assert_eq!(rec.body.len() as u64, TOTAL);
    let hwm = vm_hwm_kib(gw.pid());
    eprintln!("proxy peak RSS (VmHWM): {hwm} KiB");
    assert!(
        hwm < RSS_LIMIT_KIB,
        "proxy peak RSS {hwm} KiB >= {RSS_LIMIT_KIB} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_http_integration_request_body_streams_to_origin_intact() {
    upload(false, "/prod/via-http/upload.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunked_request_body_streams_to_origin_intact() {
    upload(false, "/prod/upload.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_request_body_with_content_length_streams_to_origin_intact() {
    upload(true, "/prod/upload.bin").await;
}
