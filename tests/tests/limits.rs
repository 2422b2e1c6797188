//! Limits and bad input: 413 (declared Content-Length and chunked), 431 oversized headers,
//! 400 malformed HTTP; none of these reach the origin as a complete request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::{Duration, Instant};

use edgeway_tests::*;

const LIMIT: usize = 16 * 1024;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
limits:
  max_body_bytes: 16384
  max_header_bytes: 16384
apis:
  - name: up
    stages:
      prod: {}
    routes:
      - route: ANY /{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
"#
    .replace("ORIGIN", &origin.url())
}

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::start(|r: &Recorded| {
        http::Response::builder()
            .body(full(format!("got {}", r.body.len())))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&config(&origin)).await;
    (origin, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_at_the_limit_passes() {
    let (origin, gw) = setup().await;
    let r = client()
        .post(gw.url("/prod/x"))
        .body(vec![b'a'; LIMIT])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("got {LIMIT}"));
    assert_eq!(origin.complete_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_content_length_over_limit_is_413_and_origin_gets_nothing() {
    let (origin, gw) = setup().await;
    let r = client()
        .post(gw.url("/prod/x"))
        .body(vec![b'a'; LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 413, "Request Too Long", "REQUEST_TOO_LARGE").await;

    // refused before reading: only the head is sent, the 413 comes anyway
    let head = format!(
        "POST /prod/x HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n",
        100 * 1024 * 1024
    );
    let started = Instant::now();
    let raw = raw_request(gw.addr("listen[0]"), head.as_bytes())
        .await
        .expect("a response without sending the body");
    assert_eq!(raw.status, 413, "{}", raw.head);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        raw.header("x-edgeway-error-type"),
        Some("REQUEST_TOO_LARGE")
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(origin.request_count(), 0, "origin must receive nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_limit_is_413_and_origin_never_sees_it_complete() {
    let (origin, gw) = setup().await;
    // 24 KiB in 4 KiB chunks, then the client holds the request open (as a slow uploader
    // would) so the gateway has read everything sent when it answers
    let body = futures_util::stream::unfold(0usize, |i| async move {
        if i < 6 {
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'c'; 4096])),
                i + 1,
            ))
        } else if i == 6 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Some((
                Err(std::io::Error::other("gateway did not answer in 10 s")),
                i + 1,
            ))
        } else {
            None
        }
    });
    let started = Instant::now();
    let r = client()
        .post(gw.url("/prod/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("client gets a response, not a connection error");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "413 came only after the client gave up"
    );
    assert_gateway_error(r, 413, "Request Too Long", "REQUEST_TOO_LARGE").await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        origin.complete_count(),
        0,
        "origin saw a complete request: {:?}",
        origin.requests()
    );
    assert!(origin.requests().iter().all(|r| !r.complete));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_under_limit_passes() {
    let (origin, gw) = setup().await;
    let body = futures_util::stream::iter(
        (0..3).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'c'; 4096]))),
    );
    let r = client()
        .post(gw.url("/prod/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "got 12288");
    let rec = origin.single_request();
    assert!(rec.complete);
    assert_eq!(rec.body.len(), 12288);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_431() {
    let (origin, gw) = setup().await;

    // under the limit: fine
    let r = client()
        .get(gw.url("/prod/h"))
        .header("x-big", "a".repeat(4 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // over the limit, complete request
    let r = client()
        .get(gw.url("/prod/h"))
        .header("x-big", "a".repeat(2 * LIMIT))
        .send()
        .await
        .expect("client gets a 431, not a connection error");
    assert_eq!(r.status(), 431);
    assert!(
        r.bytes().await.unwrap().is_empty(),
        "431 from the parser has an empty body"
    );

    // over the limit, head never finished: the parser still answers 431
    let mut head = b"GET /prod/h HTTP/1.1\r\nHost: gw\r\nx-big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', LIMIT + 1024));
    let raw = raw_request(gw.addr("listen[0]"), &head)
        .await
        .expect("431 response");
    assert_eq!(raw.status, 431, "{}", raw.head);

    assert_eq!(
        origin.request_count(),
        1,
        "only the small request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_is_400_and_never_forwarded() {
    let (origin, gw) = setup().await;
    let cases: [&[u8]; 4] = [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET /prod/x HTTP/1.1\r\nHost: gw\r\nthis header has no colon\r\n\r\n",
        b"POST /prod/x HTTP/1.1\r\nHost: gw\r\nContent-Length: banana\r\n\r\n",
        b"GET /prod/x HTTP/1.1\r\nHost: gw\r\nX-Bad\x01Name: v\r\n\r\n",
    ];
    for case in cases {
        let raw = raw_request(gw.addr("listen[0]"), case)
            .await
            .unwrap_or_else(|e| panic!("no response to {:?}: {e}", String::from_utf8_lossy(case)));
        assert_eq!(
            raw.status,
            400,
            "for {:?}: {}",
            String::from_utf8_lossy(case),
            raw.head
        );
        assert!(raw.body.is_empty(), "400 from the parser has an empty body");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(origin.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_sender_is_cut_off_after_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::echo().await;
    let cfg = config(&origin).replace(
        "  max_header_bytes: 16384\n",
        "  max_header_bytes: 16384\n  header_read_timeout_ms: 300\n",
    );
    let gw = Gateway::start(&cfg).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("listen[0]"))
        .await
        .unwrap();
    s.write_all(b"GET /prod/x HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // the gateway answers (408) or closes; either way the read ends
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let took = started.elapsed();
    assert!(
        r.is_ok(),
        "connection still open 5 s after a 300 ms header read timeout"
    );
    assert!(
        took >= Duration::from_millis(250),
        "cut off after {took:?}, before the timeout"
    );
    if !buf.is_empty() {
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "unexpected response {text:?}"
        );
    }
    assert_eq!(origin.request_count(), 0);
}
