//! Integrations: http_proxy URI substitution (${origin}, ${stageVariables.X}, {param},
//! {proxy+}), query pass-through, what the origin receives (method, path+query, headers, body),
//! the origin's response passed back, and mock integrations.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: petstore
    stages:
      prod: { variables: { version: v1, bucket: red } }
      beta: { variables: { version: v2, bucket: blue } }
    routes:
      - route: GET /pets/{id}
        integration: { http_proxy: "${origin}/${stageVariables.version}/pets/{id}" }
      - route: GET /owners/{owner}/pets/{pet}
        integration: { http_proxy: "${origin}/o/{owner}/p/{pet}/${stageVariables.bucket}" }
      - route: ANY /files/{proxy+}
        integration: { http_proxy: "${origin}/store/${stageVariables.bucket}/{proxy+}" }
      - route: GET /teapot
        integration: { http_proxy: "${origin}/teapot" }
      - route: GET /health
        integration:
          mock:
            status: 202
            headers: { content-type: application/json, x-mock: "yes" }
            body: '{"ok":true}'
      - route: POST /empty
        integration: { mock: { status: 204 } }
"#;

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::start(|r: &Recorded| {
        if r.uri.path() == "/teapot" {
            return http::Response::builder()
                .status(418)
                .header("x-origin-header", "kettle")
                .header("content-type", "text/x-tea")
                .body(full("short and stout"))
                .unwrap();
        }
        http::Response::builder()
            .status(201)
            .header("x-origin", "1")
            .body(full(format!("origin {} {}", r.method, r.path_and_query())))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&CONFIG.replace("ORIGIN", &origin.url())).await;
    (origin, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_variables_and_path_params_are_substituted() {
    let (origin, gw) = setup().await;
    let c = client();

    let r = c.get(gw.url("/prod/pets/7")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "origin GET /v1/pets/7");
    let r = c.get(gw.url("/beta/pets/8")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "origin GET /v2/pets/8");
    let r = c
        .get(gw.url("/beta/owners/ann/pets/rex"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "origin GET /o/ann/p/rex/blue");

    let paths: Vec<String> = origin
        .requests()
        .iter()
        .map(|r| r.path_and_query())
        .collect();
    assert_eq!(paths, ["/v1/pets/7", "/v2/pets/8", "/o/ann/p/rex/blue"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_passes_through_unchanged() {
    let (origin, gw) = setup().await;
    let r = client()
        .get(gw.url("/prod/pets/7?color=red&x=a%20b&x=2&empty="))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let req = origin.single_request();
    assert_eq!(
        req.path_and_query(),
        "/v1/pets/7?color=red&x=a%20b&x=2&empty="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_proxy_forwards_method_path_query_headers_and_body() {
    let (origin, gw) = setup().await;
    let body = "{\"name\":\"rex\",\"bytes\":\"\u{e9}\u{1f600}\"}";
    let r = client()
        .post(gw.url("/beta/files/a/b/c.txt?v=1&w=two"))
        .header("content-type", "application/json")
        .header("x-custom", "hello")
        .header("authorization", "Bearer abc")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["x-origin"],
        "1",
        "origin response headers reach the client"
    );
    assert_eq!(
        r.text().await.unwrap(),
        "origin POST /store/blue/a/b/c.txt?v=1&w=two"
    );

    let req = origin.single_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path_and_query(), "/store/blue/a/b/c.txt?v=1&w=two");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-custom"), Some("hello"));
    assert_eq!(req.header("authorization"), Some("Bearer abc"));
    assert_eq!(req.body, body.as_bytes());
    assert!(req.complete);

    // other methods and a single segment
    for m in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = client()
            .request(m.clone(), gw.url("/prod/files/one"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.text().await.unwrap(),
            format!("origin {m} /store/red/one")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_status_headers_and_body_pass_back() {
    let (_origin, gw) = setup().await;
    let r = client().get(gw.url("/prod/teapot")).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-origin-header"], "kettle");
    assert_eq!(r.headers()["content-type"], "text/x-tea");
    assert!(is_uuid(r.headers()["x-request-id"].to_str().unwrap()));
    assert_eq!(r.text().await.unwrap(), "short and stout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_integration_returns_status_headers_and_body() {
    let (origin, gw) = setup().await;
    let r = client().get(gw.url("/prod/health")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-mock"], "yes");
    assert!(is_uuid(r.headers()["x-request-id"].to_str().unwrap()));
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);

    // over HTTP/2 (h2c) as well
    let r = h2c_client()
        .get(gw.url("/beta/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.status(), 202);
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);

    // status only, no body
    let r = client()
        .post(gw.url("/prod/empty"))
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.bytes().await.unwrap().len(), 0);

    assert_eq!(origin.request_count(), 0, "a mock never calls the origin");
}
