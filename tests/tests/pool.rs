//! Origin connections: kept alive and reused across requests, and replaced without failing a
//! request when the origin closes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgeway_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn config(origin: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
apis:
  - name: t
    stages:
      prod: {{}}
    routes:
      - route: ANY /p/{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_connections_are_kept_alive_and_reused() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin.url())).await;
    let c = client();
    for i in 0..20 {
        let r = c
            .get(gw.url(&format!("/prod/p/seq/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert_eq!(
        origin.connection_count(),
        1,
        "sequential requests share one connection"
    );

    // Eight at once need at most eight connections, and then they are all reused.
    let burst = |tag: &'static str| {
        let urls: Vec<String> = (0..8)
            .map(|i| gw.url(&format!("/prod/p/{tag}/{i}")))
            .collect();
        let c = c.clone();
        async move {
            let sends = urls.into_iter().map(|u| {
                let c = c.clone();
                async move { c.get(u).send().await.unwrap().bytes().await.unwrap() }
            });
            futures_util::future::join_all(sends).await
        }
    };
    burst("a").await;
    let after_first_burst = origin.connection_count();
    assert!(
        after_first_burst <= 8,
        "{after_first_burst} connections for 8 requests"
    );
    burst("b").await;
    burst("c").await;
    assert!(
        origin.connection_count() <= 8,
        "later bursts reuse pooled connections ({} in all)",
        origin.connection_count()
    );
    assert_eq!(origin.request_count(), 44);
}

/// An origin that answers one request per connection with keep-alive, then closes the
/// connection 50 ms later: the gateway's pooled connection dies while idle.
async fn closing_origin() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    (format!("http://{addr}"), connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_closing_idle_connections_fails_no_request() {
    let (origin, connections) = closing_origin().await;
    let gw = Gateway::start(&config(&origin)).await;
    let c = client();
    for i in 0..6 {
        let r = c.get(gw.url(&format!("/prod/p/{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().await.unwrap(), "ok");
        // Let the origin close the connection the gateway just pooled.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        6,
        "each closed connection was replaced"
    );
}
