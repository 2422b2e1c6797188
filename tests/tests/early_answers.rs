//! Early answers reach the client: when the gateway answers before reading the request body
//! (413 on a declared length, 401 from an authorizer), a client that writes its whole body
//! before reading, without `Expect: 100-continue` (as Python's `http.client` does), still reads
//! the answer: the connection lingers instead of resetting under it. The bound on lingering
//! (time and bytes) is configurable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use edgeway_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 1024 * 1024;
/// Twice the limit: more than the socket buffers on both sides hold.
const BIG: usize = 2 * LIMIT;

fn config(origin: &Origin, linger: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
limits:
  max_body_bytes: {LIMIT}
{linger}
apis:
  - name: up
    stages:
      prod: {{}}
    authorizers:
      users:
        jwt:
          issuer: https://issuer.example.com/pool-1
          audiences: [api]
          jwks_url: {origin}/jwks.json
    routes:
      - route: POST /private
        auth: users
        integration: {{ http_proxy: "${{origin}}/private" }}
      - route: GET /ok
        integration: {{ mock: {{ status: 200, body: "ok" }} }}
      - route: ANY /{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
"#,
        origin = origin.url()
    )
}

/// Writes `head` and `body` (all of it, as a client without `Expect` does), then reads every
/// response until the gateway closes. A write that fails is an error: the client never got to
/// read what was sent back.
async fn send_all_then_read(
    addr: SocketAddr,
    head: &[u8],
    body: &[u8],
) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(head).await?;
        s.write_all(body).await?;
        let mut answer = Vec::new();
        // The gateway closes after an unread body; a reset here loses the answer.
        s.read_to_end(&mut answer).await?;
        Ok(answer)
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 20 s"))?
}

fn statuses(answer: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(answer)
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12))
        .filter_map(|s| std::str::from_utf8(s).ok()?.parse().ok())
        .collect()
}

/// Sends `head` and `body` 20 times, each on a fresh connection, and checks that every time the
/// answers read back have exactly `expected` statuses. Returns the last answer's text.
async fn twenty_times(gw: &Gateway, head: &[u8], body: &[u8], expected: &[u16]) -> String {
    let mut text = String::new();
    for round in 0..20 {
        let answer = send_all_then_read(gw.addr("listen[0]"), head, body)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        text = String::from_utf8_lossy(&answer).into_owned();
        assert_eq!(statuses(&answer), expected, "round {round}: {text}");
    }
    text
}

fn post_head(path: &str, len: usize) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_reaches_a_client_that_sends_its_whole_body_first() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "")).await;
    let body = vec![b'a'; BIG];
    let text = twenty_times(&gw, &post_head("/prod/upload", BIG), &body, &[413]).await;
    assert!(text.contains("Request Too Long"), "{text}");
    assert_eq!(origin.request_count(), 0, "the origin receives nothing");
}

/// Keep-alive requests pipelined ahead of the oversized one are answered, then the 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_after_pipelined_keep_alive_requests() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "")).await;
    let body = vec![b'a'; BIG];
    let mut head = Vec::new();
    for _ in 0..3 {
        head.extend_from_slice(b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n\r\n");
    }
    head.extend_from_slice(&post_head("/prod/upload", BIG));
    twenty_times(&gw, &head, &body, &[200, 200, 200, 413]).await;
    assert_eq!(origin.request_count(), 0);
}

/// A 401 from an authorizer on a large POST (within the limit): the body is never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_an_authorizer_reaches_a_client_sending_a_large_post() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "")).await;
    let len = LIMIT - 1;
    let body = vec![b'a'; len];
    let text = twenty_times(&gw, &post_head("/prod/private", len), &body, &[401]).await;
    assert!(text.contains("Unauthorized"), "{text}");
    assert_eq!(origin.request_count(), 0, "no JWKS fetch, no request");
}

/// `limits.linger_max_bytes`: a client that goes on sending past it is cut off, so lingering
/// cannot be used to make the gateway read without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_stops_at_the_configured_byte_bound() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(
        &origin,
        "  linger_max_bytes: 65536\n  linger_timeout_ms: 30000",
    ))
    .await;
    let total: usize = 256 * 1024 * 1024;
    let mut s = TcpStream::connect(gw.addr("listen[0]")).await.unwrap();
    s.write_all(&post_head("/prod/upload", total))
        .await
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let started = Instant::now();
    let mut sent = 0usize;
    let cut = tokio::time::timeout(Duration::from_secs(20), async {
        while sent < total {
            if s.write_all(&chunk).await.is_err() {
                return true;
            }
            sent += chunk.len();
        }
        false
    })
    .await
    .expect("the gateway neither cut the client off nor read 256 MiB in 20 s");
    assert!(cut, "all {total} bytes were accepted");
    // Socket buffers hold a few MiB; the gateway discarded at most 64 KiB past the answer.
    assert!(
        sent < 32 * 1024 * 1024,
        "{sent} bytes went in before the cut"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// `limits.linger_timeout_ms`: a client that neither sends nor closes is let go after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_stops_at_the_configured_timeout() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "  linger_timeout_ms: 300")).await;
    let mut s = TcpStream::connect(gw.addr("listen[0]")).await.unwrap();
    // A declared body over the limit, of which nothing is sent.
    s.write_all(&post_head("/prod/upload", BIG)).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("FIN follows the answer");
    assert!(read.is_ok());
    assert_eq!(statuses(&answer), [413]);
    // The gateway's FIN comes at once; the socket itself is closed after the timeout, which
    // a write then shows (the first write after the close is answered with a reset).
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if s.write_all(b"more").await.is_err() {
                return started.elapsed();
            }
        }
    })
    .await
    .expect("the socket is closed after linger_timeout_ms");
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}
