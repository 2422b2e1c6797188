//! Client mistakes are the client's: requests that break HTTP/1.1's framing or host rules are
//! answered 400 by the gateway (as nginx and HAProxy answer them), never forwarded and never
//! blamed on the origin with a 502. Raw bytes, because client libraries will not send these.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {}
apis:
  - name: up
    stages:
      prod: {{}}
    routes:
      - route: ANY /{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
"#,
        origin.url()
    ))
    .await;
    (origin, gw)
}

/// Sends `request` raw and expects the gateway's own 400; the origin is given `origin_sees`
/// time to show what reached it.
async fn assert_400(gw: &Gateway, request: &str) -> RawResponse {
    let r = raw_request(gw.addr("listen[0]"), request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    assert_eq!(r.status, 400, "{request:?}: {}", r.head);
    assert_eq!(
        r.header("x-edgeway-error-type"),
        Some("BAD_REQUEST"),
        "{}",
        r.head
    );
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"{"message":"Bad Request"}"#
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_400_and_not_forwarded() {
    let (origin, gw) = setup().await;
    assert_400(
        &gw,
        "GET /prod/x HTTP/1.1\r\nHost: good\r\nHost: evil\r\n\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(origin.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_1_without_host_is_400_and_1_0_is_served() {
    let (origin, gw) = setup().await;
    assert_400(&gw, "GET /prod/x HTTP/1.1\r\n\r\n").await;
    assert_eq!(origin.request_count(), 0);
    let r = raw_request(gw.addr("listen[0]"), b"GET /prod/old HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(origin.single_request().uri.path(), "/old");
}

/// `Transfer-Encoding` with `Content-Length`: RFC 9112 §6.1's rule for an intermediary. The
/// chunked framing wins, `Content-Length` is removed before forwarding, and the connection is
/// closed after the answer, so nothing the client appended (a smuggled second request) is ever
/// read as a request, by the gateway or by the origin (which gets the gateway's own framing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_encoding_with_content_length_cannot_smuggle() {
    let (origin, gw) = setup().await;
    // Both forms: plain, and with the whitespace that some parsers read as another coding.
    for (round, te) in ["Transfer-Encoding: chunked", "Transfer-Encoding:\tchunked "]
        .into_iter()
        .enumerate()
    {
        let request = format!(
            "POST /prod/smuggle HTTP/1.1\r\nHost: gw\r\n{te}\r\nContent-Length: 4\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n\
             GET /prod/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
        );
        let mut s = tokio::net::TcpStream::connect(gw.addr("listen[0]"))
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
            .await
            .expect("the gateway closes the connection after the answer")
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "one answer: {text}");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let seen = origin.requests();
        assert_eq!(seen.len(), round + 1, "{seen:#?}");
        let last = seen.last().unwrap();
        assert_eq!(last.uri.path(), "/smuggle");
        assert_eq!(&last.body[..], b"hello");
        assert!(last.complete);
        assert_eq!(last.header("content-length"), None);
    }
    assert_eq!(
        origin.count_to("/smuggled"),
        0,
        "the appended request never runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunked_body_is_400_not_502() {
    let (origin, gw) = setup().await;
    for chunk in [
        "zz\r\nhello\r\n0\r\n\r\n",                    // not hex
        "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", // overflows
        "5\r\nhelloXX0\r\n\r\n",                       // no CRLF after the data
    ] {
        let request = format!(
            "POST /prod/chunks HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
        );
        assert_400(&gw, &request).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The head may have been forwarded while the body streamed; no body ever completed.
    assert_eq!(origin.complete_count(), 0, "{:#?}", origin.requests());
}

/// RFC 9112 §3.2.2: in the absolute form the request target's authority is the host, and
/// `Host` is ignored. The origin is told that authority, and the path routes as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_absolute_form_authority_wins_over_host() {
    let (origin, gw) = setup().await;
    let r = raw_request(
        gw.addr("listen[0]"),
        b"GET http://other.example/prod/abs?q=1 HTTP/1.1\r\nHost: good.example\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    let seen = origin.single_request();
    assert_eq!(seen.path_and_query(), "/abs?q=1");
    assert_eq!(seen.header("x-forwarded-host"), Some("other.example"));
    assert_eq!(seen.header_all("host").len(), 1);
    assert_ne!(seen.header("host"), Some("good.example"));
}
