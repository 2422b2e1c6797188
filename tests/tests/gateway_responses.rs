//! Customised gateway responses (`gateway_responses` on an API, API Gateway's
//! `gatewayResponses`): a throttled request, a missing API key, a 404, a 504 and a plugin
//! failure each get the configured status, headers and body with the `$context` values filled
//! in, the API's CORS headers still added; an API without overrides keeps the default bodies
//! exactly; a bad override is refused with its line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::Value;

fn config(origin: &Origin) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
{plugins}
usage_plans:
  - {{ name: basic, apis: [shop/prod] }}
apis:
  - name: shop
    stages:
      prod: {{ variables: {{ team: payments }} }}
    cors:
      allow_origins: [https://app.example.com]
    gateway_responses:
      THROTTLED:
        status: 503
        headers: {{ x-why: "$context.error.responseType", x-retry-id: "$context.requestId" }}
        body: '{{"error":"$context.error.message","id":"$context.requestId","stage":"$context.stage","api":"$context.apiId","team":"$stageVariables.team"}}'
      INVALID_API_KEY:
        status: 401
        body: '{{"key":"missing","m":$context.error.messageString}}'
      RESOURCE_NOT_FOUND:
        headers: {{ x-not-found: "yes" }}
        body: '{{"nope":"$context.requestId","type":"$context.error.responseType"}}'
      INTEGRATION_TIMEOUT:
        status: 503
        body: '{{"timeout":true,"stage":"$context.stage"}}'
      DEFAULT_5XX:
        headers: {{ x-fault: "$context.error.responseType" }}
        body: '{{"fault":"$context.error.message","api":"$context.apiId"}}'
    routes:
      - route: GET /limited
        throttle: {{ rate: 1, burst: 1 }}
        integration: {{ mock: {{ status: 200, body: ok }} }}
      - route: GET /keyed
        api_key_required: true
        integration: {{ mock: {{ status: 200, body: ok }} }}
      - route: GET /slow
        timeout_ms: 200
        integration: {{ http_proxy: "${{origin}}/slow" }}
      - route: GET /trap
        integration: {{ function: trap }}
  - name: plain
    stages:
      dev: {{}}
    routes:
      - route: GET /limited
        throttle: {{ rate: 1, burst: 1 }}
        integration: {{ mock: {{ status: 200, body: ok }} }}
      - route: GET /trap
        integration: {{ function: trap }}
"#,
        origin = origin.url(),
        plugins = plugins_yaml(&[("trap", "test_trap", "role: handler")]),
    )
}

async fn setup() -> (Origin, Gateway) {
    let origin = Origin::start_async(|r: Recorded| async move {
        if r.uri.path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        http::Response::new(full("late"))
    })
    .await;
    let gw = Gateway::start(&config(&origin)).await;
    (origin, gw)
}

async fn get(
    gw: &Gateway,
    path: &str,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
    let r = client()
        .get(gw.url(path))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_fill_in_context_and_keep_cors() {
    let (origin, gw) = setup().await;

    // Throttled: the specific override, every variable filled in.
    assert_eq!(get(&gw, "/prod/limited").await.0, 200);
    let (status, headers, body) = get(&gw, "/prod/limited").await;
    assert_eq!(status, 503, "{body}");
    let id = header(&headers, "x-request-id");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"error": "Too Many Requests", "id": id, "stage": "prod", "api": "shop", "team": "payments"})
    );
    assert_eq!(header(&headers, "x-why"), "THROTTLED");
    assert_eq!(header(&headers, "x-retry-id"), id);
    // What the default carries and the override does not replace stays.
    assert_eq!(header(&headers, "x-edgeway-error-type"), "THROTTLED");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://app.example.com"
    );

    // A missing key: messageString is the quoted message.
    let (status, headers, body) = get(&gw, "/prod/keyed").await;
    assert_eq!(status, 401);
    assert_eq!(body, r#"{"key":"missing","m":"Forbidden"}"#);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://app.example.com"
    );

    // A 404 under the API's stage: no route, but the stage names the API.
    let (status, headers, body) = get(&gw, "/prod/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(header(&headers, "x-not-found"), "yes");
    let id = header(&headers, "x-request-id");
    assert_eq!(
        body,
        format!(r#"{{"nope":"{id}","type":"RESOURCE_NOT_FOUND"}}"#)
    );

    // A 504: its own override beats DEFAULT_5XX.
    let (status, headers, body) = get(&gw, "/prod/slow").await;
    assert_eq!(status, 503);
    assert_eq!(body, r#"{"timeout":true,"stage":"prod"}"#);
    assert!(!headers.contains_key("x-fault"));
    assert_eq!(
        header(&headers, "x-edgeway-error-type"),
        "INTEGRATION_TIMEOUT"
    );
    assert_eq!(origin.count_to("/slow"), 1);

    // A plugin failure has no type of its own: DEFAULT_5XX covers it, status unchanged.
    let (status, headers, body) = get(&gw, "/prod/trap?trap=1").await;
    assert_eq!(status, 500);
    assert_eq!(body, r#"{"fault":"Internal server error","api":"shop"}"#);
    assert_eq!(header(&headers, "x-fault"), "DEFAULT_5XX");
    assert_eq!(header(&headers, "x-edgeway-error-type"), "FUNCTION_FAILURE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_without_overrides_keeps_the_default_bodies() {
    let (_origin, gw) = setup().await;
    assert_eq!(get(&gw, "/dev/limited").await.0, 200);
    let r = client().get(gw.url("/dev/limited")).send().await.unwrap();
    assert_gateway_error(r, 429, "Too Many Requests", "THROTTLED").await;
    let r = client()
        .get(gw.url("/dev/trap?trap=1"))
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 500, "Internal server error", "FUNCTION_FAILURE").await;
    let r = client().get(gw.url("/dev/nothing")).send().await.unwrap();
    assert_gateway_error(r, 404, "Not Found", "RESOURCE_NOT_FOUND").await;
    // A stage no API has: the default too.
    let r = client().get(gw.url("/nostage/x")).send().await.unwrap();
    assert_gateway_error(r, 404, "Not Found", "RESOURCE_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_overrides_are_refused_with_their_line() {
    let dir = unique_temp_dir("gateway-responses");
    let config = r#"listen:
  - addr: 127.0.0.1:0
apis:
  - name: shop
    stages:
      prod: {}
    gateway_responses:
      THROTLED:
        status: 503
      DEFAULT_4XX:
        body: '{"ip":"$context.identity.sourceIp"}'
    routes:
      - route: GET /x
        integration: { mock: { status: 200 } }
"#;
    let path = dir.join("edgeway.yaml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(edgeway_bin())
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "edgeway.yaml:9: apis[0].gateway_responses.THROTLED: unknown gateway response type `THROTLED`; did you mean `THROTTLED`?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "edgeway.yaml:11: apis[0].gateway_responses.DEFAULT_4XX.body: unknown variable `$context.identity.sourceIp`"
        ),
        "{stderr}"
    );
}
