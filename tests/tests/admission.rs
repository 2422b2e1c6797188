//! Admission: connections over `limits.max_connections` (the node) or
//! `limits.max_connections_per_ip` (one source address) are closed as soon as they are
//! accepted, while the ones let in are served and a freed place is taken again; the overload
//! guard answers 503 with `Retry-After` once `limits.max_in_flight` requests are being answered
//! or the node's memory passes `limits.max_memory_mib`, and serves again when the load falls.
//! A request body that stalls for `limits.body_read_timeout_ms` (slow POST) is answered 408 and
//! never reaches the origin whole, while a slow but steady one is served. Every refusal is
//! counted in `/metrics`. Loopback addresses only (127.0.0.1-3).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgeway_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn config(limits: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }}
origin: ORIGIN
limits: {{ {limits} }}
apis:
  - name: t
    stages:
      prod: {{}}
    routes:
      - route: GET /hello
        integration: {{ mock: {{ status: 200, body: hello }} }}
      - route: GET /slow
        integration: {{ http_proxy: "${{origin}}/slow" }}
      - route: ANY /p/{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
"#
    )
}

/// A connection from `source` (a loopback address) to `to`.
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends a GET on `stream` and returns the status, or `None` if the gateway closed it.
async fn get(stream: &mut TcpStream) -> Option<u16> {
    let request = b"GET /prod/hello HTTP/1.1\r\nHost: t\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return None;
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer or a close within 5 s")
        .unwrap_or(0);
    if n == 0 {
        return None;
    }
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

async fn metrics(gw: &Gateway) -> String {
    client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn connections_over_the_node_and_address_bounds_are_closed() {
    let gw = Gateway::builder()
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(
            &config("max_connections: 4, max_connections_per_ip: 2")
                .replace("ORIGIN", "http://127.0.0.1:9"),
        )
        .await;
    let addr = gw.addr("listen[0]");
    let mut a1 = connect_from("127.0.0.1", addr).await;
    let mut a2 = connect_from("127.0.0.1", addr).await;
    assert_eq!(get(&mut a1).await, Some(200));
    assert_eq!(get(&mut a2).await, Some(200));
    let mut a3 = connect_from("127.0.0.1", addr).await;
    assert_eq!(
        get(&mut a3).await,
        None,
        "a third from one address is closed"
    );

    let mut b1 = connect_from("127.0.0.2", addr).await;
    let mut b2 = connect_from("127.0.0.2", addr).await;
    assert_eq!(get(&mut b1).await, Some(200));
    assert_eq!(get(&mut b2).await, Some(200));
    let mut c1 = connect_from("127.0.0.3", addr).await;
    assert_eq!(get(&mut c1).await, None, "a fifth on the node is closed");

    // The ones let in are still served; a freed place is taken again.
    assert_eq!(get(&mut a1).await, Some(200));
    // Once the node has seen a2 close (so that no attempt here is refused and counted).
    drop(a2);
    let open = format!(r#"edgeway_connections_open{{listener="{addr}"}} 3"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !metrics(&gw).await.contains(&open) {
        assert!(
            Instant::now() < deadline,
            "the node saw the connection close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = connect_from("127.0.0.1", addr).await;
    assert_eq!(
        get(&mut again).await,
        Some(200),
        "the freed place is taken again"
    );

    let text = metrics(&gw).await;
    assert!(
        text.contains(r#"edgeway_refused_connections_total{reason="node_limit"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"edgeway_refused_connections_total{reason="ip_limit"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_overload_guard_sheds_with_503_and_recovers() {
    let arrived = Arc::new(AtomicU64::new(0));
    let seen = arrived.clone();
    let origin = Origin::start_async(move |_r: Recorded| {
        seen.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            http::Response::builder().body(full("slow")).unwrap()
        }
    })
    .await;
    let gw = Gateway::builder()
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&config("max_in_flight: 2").replace("ORIGIN", &origin.url()))
        .await;
    let url = gw.url("/prod/slow");
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { client().get(url).send().await.unwrap().status() })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrived.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the two requests reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = client().get(gw.url("/prod/hello")).send().await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.headers()["x-edgeway-error-type"], "OVERLOADED");
    for task in slow {
        assert_eq!(task.await.unwrap(), 200, "the requests let in finish");
    }
    let r = client().get(gw.url("/prod/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200, "served again once the load fell");
    assert_eq!(arrived.load(Ordering::SeqCst), 2);

    // Memory: a bound the node is already over sheds everything; lifted, it serves again.
    gw.replace_config(
        &config("max_in_flight: 2, max_memory_mib: 1").replace("ORIGIN", &origin.url()),
    );
    gw.wait_event_count("config reloaded", 2, Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client().get(gw.url("/prod/hello")).send().await.unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "shed once over the memory bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.replace_config(&config("max_in_flight: 2").replace("ORIGIN", &origin.url()));
    gw.wait_event_count("config reloaded", 3, Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client().get(gw.url("/prod/hello")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "served again with the bound lifted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics(&gw).await;
    assert!(
        text.contains(r#"edgeway_shed_requests_total{reason="in_flight"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"edgeway_shed_requests_total{reason="memory"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off_with_408() {
    let origin = Origin::echo().await;
    let gw = Gateway::builder()
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&config("body_read_timeout_ms: 300").replace("ORIGIN", &origin.url()))
        .await;
    let addr = gw.addr("listen[0]");

    // 10 of 100 declared bytes, then nothing.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(
            b"POST /prod/p/stalled HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(origin.requests_to("/stalled").iter().all(|r| !r.complete));

    // Slow but steady: a byte every 100 ms (under the timeout) for a second is served.
    let mut steady = TcpStream::connect(addr).await.unwrap();
    steady
        .write_all(b"POST /prod/p/steady HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
        .await
        .unwrap();
    for b in b"0123456789" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        steady.write_all(&[*b]).await.unwrap();
    }
    let n = tokio::time::timeout(Duration::from_secs(5), steady.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let got = origin.requests_to("/steady");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "0123456789");
}
