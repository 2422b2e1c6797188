//! CORS per API with the real binary: preflights answered by the gateway (204) without reaching
//! the origin, allowed and refused; actual responses with the CORS headers and `Vary: Origin`,
//! the origin's own CORS headers replaced; gateway errors readable by browsers; an `OPTIONS`
//! route that preflights do not reach; an API without CORS left alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use edgeway_tests::*;
use http::Response;
use reqwest::Method;

const APP: &str = "https://app.example.com";

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: shop
    cors:
      allow_origins: [https://app.example.com, "https://*.example.org"]
      allow_methods: [GET, PUT]
      allow_headers: [content-type, x-api-key]
      expose_headers: [x-origin, x-request-id]
      allow_credentials: true
      max_age_s: 600
    stages:
      prod: {}
      locked: { policy: { deny: [127.0.0.0/8] } }
    routes:
      - route: "GET /pets/{id}"
        integration: { http_proxy: "${origin}/pets/{id}" }
      - route: "PUT /pets/{id}"
        integration: { http_proxy: "${origin}/pets/{id}" }
      - route: "DELETE /pets/{id}"
        integration: { http_proxy: "${origin}/pets/{id}" }
      - route: GET /orders
        integration: { http_proxy: "${origin}/orders" }
        validation: { required: [header.x-tenant] }
      - route: GET /explicit
        integration: { http_proxy: "${origin}/explicit" }
      - route: OPTIONS /explicit
        integration: { http_proxy: "${origin}/explicit" }
  - name: plain
    stages: { beta: {} }
    routes:
      - route: GET /things
        integration: { http_proxy: "${origin}/things" }
"#
    .replace("ORIGIN", &origin.url())
}

/// An origin that sets its own CORS headers and a `Vary`, which an API with CORS replaces.
async fn origin() -> Origin {
    Origin::start(|r: &Recorded| {
        Response::builder()
            .header("x-origin", "1")
            .header("access-control-allow-origin", "*")
            .header("access-control-max-age", "5")
            .header("vary", "Accept-Encoding")
            .body(full(format!("origin {} {}", r.method, r.path_and_query())))
            .unwrap()
    })
    .await
}

async fn start() -> (Origin, Gateway) {
    let origin = origin().await;
    let gw = Gateway::start(&config(&origin)).await;
    (origin, gw)
}

async fn preflight(
    gw: &Gateway,
    path: &str,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> reqwest::Response {
    let mut req = client()
        .request(Method::OPTIONS, gw.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        req = req.header("access-control-request-headers", h);
    }
    req.send().await.unwrap()
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn cors_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .map(|k| k.to_string())
        .collect()
}

fn vary(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_preflight_is_answered_by_the_gateway() {
    let (origin, gw) = start().await;
    for from in [APP, "https://a.b.example.org"] {
        let r = preflight(
            &gw,
            "/prod/pets/7",
            from,
            "PUT",
            Some("content-type,x-api-key"),
        )
        .await;
        assert_eq!(r.status().as_u16(), 204, "{from}");
        assert_eq!(header(&r, "access-control-allow-origin"), Some(from));
        assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(&r, "access-control-allow-methods"), Some("GET, PUT"));
        assert_eq!(
            header(&r, "access-control-allow-headers"),
            Some("content-type, x-api-key")
        );
        assert_eq!(header(&r, "access-control-max-age"), Some("600"));
        assert!(is_uuid(header(&r, "x-request-id").unwrap()));
        let vary = vary(&r);
        for v in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            assert!(vary.contains(&v.to_owned()), "{vary:?}");
        }
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // A stage whose policy denies this client still answers preflights (phase 3 comes before
    // the policy); the actual request is what is refused.
    let r = preflight(&gw, "/locked/pets/7", APP, "GET", None).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(origin.request_count(), 0, "a preflight reached the origin");

    let lines = gw
        .wait_access_log(3, std::time::Duration::from_secs(5))
        .await;
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == 204 && l["method"] == "OPTIONS"),
        "{lines:?}"
    );
    assert_eq!(lines[0]["api"], "shop", "{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_preflight_gets_no_cors_headers() {
    let (origin, gw) = start().await;
    let cases = [
        // Not an allowed origin (the wildcard needs a subdomain; ports must match).
        ("https://evil.example", "PUT", None),
        ("https://example.org", "GET", None),
        ("https://app.example.com:8443", "GET", None),
        ("http://app.example.com", "GET", None),
        // DELETE has a route but is not in allow_methods; PATCH has no route at all.
        (APP, "DELETE", None),
        (APP, "PATCH", None),
        // Not a method at all: answered here, not routed as a plain OPTIONS request.
        (APP, "GET POST", None),
        // A header not in allow_headers.
        (APP, "PUT", Some("content-type, authorization")),
    ];
    for (from, method, headers) in cases {
        let r = preflight(&gw, "/prod/pets/7", from, method, headers).await;
        assert_eq!(r.status().as_u16(), 204, "{from} {method} {headers:?}");
        assert_eq!(
            cors_headers(&r),
            Vec::<String>::new(),
            "{from} {method} {headers:?}"
        );
        assert!(vary(&r).contains(&"origin".to_owned()));
    }
    assert_eq!(origin.request_count(), 0, "a preflight reached the origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actual_responses_carry_cors_for_allowed_origins_only() {
    let (origin, gw) = start().await;
    let r = client()
        .get(gw.url("/prod/pets/7"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert_eq!(
        header(&r, "access-control-expose-headers"),
        Some("x-origin, x-request-id")
    );
    // The origin's own CORS headers are replaced, its Vary is kept and Origin added.
    assert!(header(&r, "access-control-max-age").is_none());
    assert_eq!(vary(&r), ["accept-encoding", "origin"]);
    assert_eq!(header(&r, "x-origin"), Some("1"));
    assert_eq!(r.text().await.unwrap(), "origin GET /pets/7");
    // The request reached the origin with its Origin header.
    assert_eq!(origin.single_request().header("origin"), Some(APP));

    for from in [Some("https://evil.example"), None] {
        let mut req = client().put(gw.url("/prod/pets/7"));
        if let Some(from) = from {
            req = req.header("origin", from);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{from:?}");
        assert_eq!(vary(&r), ["accept-encoding", "origin"]);
        assert_eq!(r.text().await.unwrap(), "origin PUT /pets/7");
    }
    assert_eq!(origin.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_are_readable_by_allowed_origins() {
    let (origin, gw) = start().await;
    // A 400 from validation and a 403 from the stage's resource policy: browser code can read
    // them.
    let r = client()
        .get(gw.url("/prod/orders"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert!(vary(&r).contains(&"origin".to_owned()));
    let body = json_body_with_status(r, 400).await;
    assert_eq!(
        body["message"],
        "Missing required request parameters: [x-tenant]"
    );

    let r = client()
        .get(gw.url("/locked/pets/7"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&r, "x-edgeway-error-type"), Some("ACCESS_DENIED"));
    json_body_with_status(r, 403).await;

    // An unknown path matches no API: no CORS headers.
    let r = client()
        .get(gw.url("/prod/nowhere"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    assert_eq!(origin.request_count(), 0);
}

async fn json_body_with_status(r: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status);
    json_body(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_routes_get_plain_options_but_not_preflights() {
    let (origin, gw) = start().await;
    let r = preflight(&gw, "/prod/explicit", APP, "GET", None).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(origin.request_count(), 0);

    // OPTIONS without Access-Control-Request-Method is not a preflight: the route serves it.
    let r = client()
        .request(Method::OPTIONS, gw.url("/prod/explicit"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "origin OPTIONS /explicit");
    assert_eq!(origin.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_without_cors_is_left_alone() {
    let (origin, gw) = start().await;
    // No CORS: a preflight is routed as any OPTIONS request (405 here).
    let r = preflight(&gw, "/beta/things", APP, "GET", None).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    // The origin's CORS headers pass through untouched.
    let r = client()
        .get(gw.url("/beta/things"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&r, "access-control-max-age"), Some("5"));
    assert_eq!(vary(&r), ["accept-encoding"]);
    assert_eq!(origin.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_preflight_as_a_browser_sends_it() {
    let (origin, gw) = start().await;
    let url = gw.url("/prod/pets/7");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "10",
                "--noproxy",
                "*",
            ])
            .args(["--include", "--request", "OPTIONS"])
            .args(["--header", "Origin: https://app.example.com"])
            .args(["--header", "Access-Control-Request-Method: PUT"])
            .args(["--header", "Access-Control-Request-Headers: content-type"])
            .args(["--header", "Sec-Fetch-Mode: cors"])
            .args(["--header", "Referer: https://app.example.com/"])
            .arg(url)
            .output()
            .expect("curl is installed (scripts/test.sh installs it)")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 204"), "{text}");
    for line in [
        "access-control-allow-origin: https://app.example.com",
        "access-control-allow-credentials: true",
        "access-control-allow-methods: get, put",
        "access-control-max-age: 600",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert_eq!(origin.request_count(), 0);
}
