//! Headers: x-request-id (UUID, per request, same at the origin), forwarded headers,
//! Host rewritten to the origin authority, hop-by-hop headers removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::HashSet;

use edgeway_tests::*;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: h
    stages:
      prod: {}
    routes:
      - route: ANY /p/{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
      - route: GET /mock
        integration: { mock: { status: 200, body: m } }
"#
    .replace("ORIGIN", &origin.url())
}

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin)).await;
    (origin, gw)
}

fn request_id(r: &reqwest::Response) -> String {
    let v = r
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {} response", r.status()))
        .to_str()
        .unwrap()
        .to_string();
    assert!(is_uuid(&v), "x-request-id {v:?} is not a UUID");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_a_fresh_uuid_shared_with_the_origin() {
    let (origin, gw) = setup().await;
    let c = client();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = c
            .get(gw.url(&format!("/prod/p/r{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(request_id(&r));
    }
    let at_origin: Vec<String> = origin
        .requests()
        .iter()
        .map(|r| {
            r.header("x-request-id")
                .expect("origin got no x-request-id")
                .to_string()
        })
        .collect();
    assert_eq!(ids, at_origin, "the origin sees the id the client gets");

    // mock, 404 and 405 responses carry one too
    for path in ["/prod/mock", "/prod/nope", "/nostage/x"] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        ids.push(request_id(&r));
    }
    let r = c.post(gw.url("/prod/mock")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    ids.push(request_id(&r));

    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "request ids repeat: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_set_and_host_is_the_origin() {
    let (origin, gw) = setup().await;
    let gw_addr = gw.addr("listen[0]");
    let c = client();

    c.get(gw.url("/prod/p/a")).send().await.unwrap();
    c.get(gw.url("/prod/p/b"))
        .header("host", "api.example.test")
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    let reqs = origin.requests();
    assert_eq!(reqs.len(), 2);

    let a = &reqs[0];
    assert_eq!(
        a.header("host"),
        Some(origin.addr.to_string().as_str()),
        "Host = origin authority"
    );
    assert_eq!(a.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(a.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        a.header("x-forwarded-host"),
        Some(gw_addr.to_string().as_str())
    );

    let b = &reqs[1];
    assert_eq!(b.header("host"), Some(origin.addr.to_string().as_str()));
    let xff: Vec<String> = b
        .header_all("x-forwarded-for")
        .join(",")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(
        xff,
        ["10.1.2.3", "127.0.0.1"],
        "client IP appended to the existing value"
    );
    assert_eq!(b.header("x-forwarded-proto"), Some("http"));
    assert_eq!(b.header("x-forwarded-host"), Some("api.example.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed() {
    let (origin, gw) = setup().await;
    // raw bytes: a client library would not let us send all of these
    let req = "GET /prod/p/hop HTTP/1.1\r\n\
               Host: gw.test\r\n\
               Connection: close, X-Drop-Me, x-also-drop\r\n\
               X-Drop-Me: 1\r\n\
               X-Also-Drop: 2\r\n\
               Keep-Alive: timeout=5\r\n\
               Proxy-Connection: keep-alive\r\n\
               TE: trailers\r\n\
               Trailer: X-Checksum\r\n\
               Upgrade: h2c-not-really\r\n\
               X-Keep: yes\r\n\
               \r\n";
    let r = raw_request(gw.addr("listen[0]"), req.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    let rec = origin.single_request();
    for h in [
        "connection",
        "x-drop-me",
        "x-also-drop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            rec.headers.get(h).is_none(),
            "hop-by-hop header {h} reached the origin: {:?}",
            rec.headers
        );
    }
    assert_eq!(rec.header("x-keep"), Some("yes"), "end-to-end headers pass");
    assert_eq!(rec.header("x-forwarded-host"), Some("gw.test"));
}
