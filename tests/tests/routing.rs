//! Routing: precedence (literal > {param} > {proxy+}), method fallback, 404, 405 + Allow,
//! HEAD served by GET, ANY, stage as the first path segment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: petstore
    stages:
      prod: {}
      beta: {}
    routes:
      - route: GET /pets/{id}
        integration: { http_proxy: "${origin}/param/{id}" }
      - route: GET /pets/{proxy+}
        integration: { http_proxy: "${origin}/greedy/{proxy+}" }
      - route: GET /pets/mine
        integration: { mock: { status: 200, body: literal } }
      - route: DELETE /pets/{id}
        integration: { mock: { status: 200, body: "deleted by param route" } }
      - route: POST /pets
        integration: { mock: { status: 201, body: created } }
      - route: ANY /any/{proxy+}
        integration: { http_proxy: "${origin}/any/{proxy+}" }
      - route: GET /things
        integration: { mock: { status: 200, headers: { content-type: text/plain }, body: things } }
"#;

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&CONFIG.replace("ORIGIN", &origin.url())).await;
    (origin, gw)
}

async fn get_text(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_beats_param_beats_greedy() {
    let (origin, gw) = setup().await;

    // literal /pets/mine is declared after {id} and {proxy+} and still wins
    assert_eq!(
        get_text(&gw.url("/prod/pets/mine")).await,
        (200, "literal".into())
    );
    // one segment: {param}
    assert_eq!(
        get_text(&gw.url("/prod/pets/7")).await,
        (200, "origin GET /param/7".into())
    );
    // several segments: only {proxy+} matches
    assert_eq!(
        get_text(&gw.url("/prod/pets/7/toys/1")).await,
        (200, "origin GET /greedy/7/toys/1".into())
    );
    // the stage is the first segment; other stages route the same way
    assert_eq!(
        get_text(&gw.url("/beta/pets/9")).await,
        (200, "origin GET /param/9".into())
    );
    let paths: Vec<String> = origin
        .requests()
        .iter()
        .map(|r| r.path_and_query())
        .collect();
    assert_eq!(paths, ["/param/7", "/greedy/7/toys/1", "/param/9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_mismatch_falls_back_to_less_specific_route() {
    let (origin, gw) = setup().await;
    // literal /pets/mine has only GET; DELETE falls back to DELETE /pets/{id}
    let r = client()
        .delete(gw.url("/prod/pets/mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "deleted by param route");
    assert_eq!(origin.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404() {
    let (origin, gw) = setup().await;
    for path in [
        "/prod/nothing",
        "/staging/pets/7", // unknown stage
        "/prod",
        "/",
        "/prod/things/extra",
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_gateway_error(r, 404, "Not Found", "RESOURCE_NOT_FOUND").await;
    }
    assert_eq!(
        origin.request_count(),
        0,
        "nothing may reach the origin on a 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let (origin, gw) = setup().await;

    // /pets/7 matches GET /pets/{id}, DELETE /pets/{id} and GET /pets/{proxy+}
    let r = client()
        .put(gw.url("/prod/pets/7"))
        .body("x")
        .send()
        .await
        .unwrap();
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("405 without Allow header: {:?}", r.headers()));
    assert_gateway_error(r, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED").await;
    let methods: Vec<String> = allow
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    assert!(methods.contains(&"GET".into()), "Allow {allow:?} lacks GET");
    assert!(
        methods.contains(&"DELETE".into()),
        "Allow {allow:?} lacks DELETE"
    );
    assert!(
        !methods.contains(&"PUT".into()) && !methods.contains(&"POST".into()),
        "Allow {allow:?}"
    );

    // /pets matches only POST /pets ({proxy+} needs at least one segment)
    let r = client().get(gw.url("/prod/pets")).send().await.unwrap();
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    assert_gateway_error(r, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED").await;
    let allow = allow.expect("405 without Allow header");
    let methods: Vec<String> = allow
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    assert_eq!(methods, ["POST"], "Allow for /pets");

    // and POST /pets works
    let r = client()
        .post(gw.url("/prod/pets"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "created");
    assert_eq!(origin.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_served_by_get() {
    let (origin, gw) = setup().await;

    // mock GET route
    let r = client().head(gw.url("/prod/things")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.bytes().await.unwrap().len(),
        0,
        "HEAD response has no body"
    );

    // proxied GET route: the origin is asked with HEAD
    let r = client().head(gw.url("/prod/pets/7")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    let req = origin.single_request();
    assert_eq!(req.method, "HEAD");
    assert_eq!(req.path_and_query(), "/param/7");

    // HEAD where only POST exists: 405
    let r = client().head(gw.url("/prod/pets")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_matches_every_method() {
    let (origin, gw) = setup().await;
    let c = client();
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    for m in methods {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let r = c
            .request(method, gw.url(&format!("/prod/any/{}/x", m.to_lowercase())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{m} on ANY route");
    }
    let got: Vec<(String, String)> = origin
        .requests()
        .iter()
        .map(|r| (r.method.to_string(), r.path_and_query()))
        .collect();
    let want: Vec<(String, String)> = methods
        .iter()
        .map(|m| (m.to_string(), format!("/any/{}/x", m.to_lowercase())))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_refused_before_routing() {
    let (origin, gw) = setup().await;
    for path in [
        "/prod/any/../pets/mine",
        "/prod/any/%2e%2e/secret",
        "/prod/any/./x",
        "/prod/any/a/.%2E/b",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let raw = raw_request(gw.addr("listen[0]"), request.as_bytes())
            .await
            .unwrap();
        assert_eq!(raw.status, 400, "{path}: {}", raw.head);
        assert_eq!(raw.header("x-edgeway-error-type"), Some("BAD_REQUEST_PATH"));
        assert_eq!(raw.body, br#"{"message":"Invalid request path"}"#);
    }
    // Dots inside a segment are ordinary characters.
    let (status, _) = get_text(&gw.url("/prod/any/v1.2/file..txt")).await;
    assert_eq!(status, 200);
    let paths: Vec<String> = origin
        .requests()
        .iter()
        .map(|r| r.path_and_query())
        .collect();
    assert_eq!(
        paths,
        ["/any/v1.2/file..txt"],
        "dot segments never reach the origin"
    );
}
