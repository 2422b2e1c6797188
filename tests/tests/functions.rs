//! Lambda-style functions with the real binary: the same handler written in Rust, JavaScript
//! and Python (plugins/lambda-echo, plugins/js-lambda, plugins/py-lambda, the last two built
//! unchanged through the SDK's adapters) answers `aws-proxy-1.0` and `aws-proxy-2.0` routes
//! with the status, headers, multi-value headers, cookies and base64 bodies it returns; what
//! it was given is the API Gateway event, checked field by field; garbage and a throw are 502
//! and the node keeps serving. Lambda authorizers in each language return IAM policies that
//! allow what they name and deny the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::{Value, json};

/// A component that embeds a language runtime takes longer on its first call on a busy
/// machine (see tests/tests/plugins.rs); the Rust one keeps the default deadline.
fn timeout_ms(component: &str) -> u64 {
    if component.starts_with("lambda_") {
        50
    } else {
        3000
    }
}

async fn function_gateway(origin: &Origin, component: &str) -> Gateway {
    let plugins = plugins_yaml(&[(
        "fn",
        component,
        &format!("role: lambda, timeout_ms: {}", timeout_ms(component)),
    )]);
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
{plugins}
apis:
  - name: shop
    stages:
      prod: {{ variables: {{ tier: live }} }}
    routes:
      - {{ route: "GET /v1/items/{{id}}", integration: {{ function: {{ plugin: fn, payload: aws-proxy-1.0 }} }} }}
      - {{ route: "ANY /v2/items/{{id}}", integration: {{ function: {{ plugin: fn, payload: aws-proxy-2.0 }} }} }}
"#,
        origin = origin.url()
    );
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&yaml)
        .await
}

fn header_values(r: &reqwest::Response, name: &str) -> Vec<String> {
    r.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The body a well-formed answer carries: `{lang, event, context}`.
async fn echoed(r: reqwest::Response, lang: &str) -> (Value, Value) {
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(header_values(&r, "x-lang"), [lang]);
    assert_eq!(header_values(&r, "x-multi"), ["one", "two"]);
    assert_eq!(header_values(&r, "content-type"), ["application/json"]);
    let body = json_body(r).await;
    assert_eq!(body["lang"], lang);
    let context = &body["context"];
    assert_eq!(context["awsRequestId"], request_id.as_str(), "{body}");
    assert_eq!(context["functionName"], "fn");
    assert_eq!(context["hasTime"], true);
    let event = body["event"].clone();
    assert_eq!(event["requestContext"]["requestId"], request_id.as_str());
    (event, body)
}

async fn check_handler(component: &str, lang: &str) {
    let origin = Origin::echo().await;
    let gw = function_gateway(&origin, component).await;

    // Payload 1.0: the REST event, repeated headers and query parameters in the multi-value maps.
    let r = client()
        .get(gw.url("/prod/v1/items/7?x=1&x=2&y=3"))
        .header("x-h", "one")
        .header("x-h", "two")
        .header("user-agent", "edgeway-test")
        .send()
        .await
        .unwrap();
    let (event, _) = echoed(r, lang).await;
    assert_eq!(event["version"], "1.0", "{event}");
    assert_eq!(event["resource"], "/v1/items/{id}");
    assert_eq!(event["path"], "/v1/items/7");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["headers"]["x-h"], "two");
    assert_eq!(event["multiValueHeaders"]["x-h"], json!(["one", "two"]));
    assert_eq!(
        event["queryStringParameters"],
        json!({ "x": "2", "y": "3" })
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({ "x": ["1", "2"], "y": ["3"] })
    );
    assert_eq!(event["pathParameters"], json!({ "id": "7" }));
    assert_eq!(event["stageVariables"], json!({ "tier": "live" }));
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    let rc = &event["requestContext"];
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["path"], "/prod/v1/items/7");
    assert_eq!(rc["resourcePath"], "/v1/items/{id}");
    assert_eq!(rc["apiId"], "shop");
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["identity"]["userAgent"], "edgeway-test");
    assert!(rc["requestTimeEpoch"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        origin.request_count(),
        0,
        "a function answers without the origin"
    );

    let r = client()
        .get(gw.url("/prod/v1/items/7?status=201"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{lang}: the status the function chose");
    assert!(
        header_values(&r, "set-cookie").is_empty(),
        "1.0 answers carry no cookies here"
    );

    // Payload 2.0: cookies out of the headers, comma-joined repeats, the body as text; the
    // answer's cookies become Set-Cookie headers.
    let r = client()
        .post(gw.url("/prod/v2/items/9?x=1&x=2"))
        .header("cookie", "c1=1; c2=2")
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header_values(&r, "set-cookie"),
        ["session=abc; Path=/", "theme=dark"]
    );
    let (event, _) = echoed(r, lang).await;
    assert_eq!(event["version"], "2.0", "{event}");
    assert_eq!(event["routeKey"], "ANY /v2/items/{id}");
    assert_eq!(event["rawPath"], "/prod/v2/items/9");
    assert_eq!(event["rawQueryString"], "x=1&x=2");
    assert_eq!(event["cookies"], json!(["c1=1", "c2=2"]));
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert_eq!(event["queryStringParameters"], json!({ "x": "1,2" }));
    assert_eq!(event["pathParameters"], json!({ "id": "9" }));
    assert_eq!(event["body"], r#"{"a":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");

    // A body that is not UTF-8 reaches the function in base64.
    let r = client()
        .post(gw.url("/prod/v2/items/9"))
        .body(vec![0xff_u8, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    let (event, _) = echoed(r, lang).await;
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "//4A");

    // A base64 answer reaches the client as bytes, in either format.
    for path in [
        "/prod/v1/items/1?shape=binary",
        "/prod/v2/items/1?shape=binary",
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{lang} {path}");
        assert_eq!(
            header_values(&r, "content-type"),
            ["application/octet-stream"]
        );
        assert_eq!(&r.bytes().await.unwrap()[..], [0, 1, 2, 0xfe, 0xff]);
    }

    // 2.0: a bare JSON value is a 200 JSON body; 1.0 has no such rule.
    let r = client()
        .get(gw.url("/prod/v2/items/1?shape=bare"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header_values(&r, "content-type"), ["application/json"]);
    assert_eq!(json_body(r).await, json!({ "bare": true, "lang": lang }));

    // Garbage, a 1.0 bare value and a throw: API Gateway's 502, logged with why.
    for (path, why) in [
        ("/prod/v1/items/1?shape=garbage", "statusCode"),
        ("/prod/v2/items/1?shape=garbage", "statusCode"),
        (
            "/prod/v1/items/1?shape=bare",
            "malformed Lambda proxy response",
        ),
        ("/prod/v2/items/1?shape=throw", "boom"),
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_gateway_error(r, 502, "Internal server error", "LAMBDA_FAILURE").await;
        gw.wait_event("request failed", Duration::from_secs(5), |e| {
            e["fields"]["request_id"] == request_id.as_str()
                && e["fields"]["error"]
                    .as_str()
                    .is_some_and(|m| m.contains(why))
        })
        .await;
    }

    // The node keeps serving.
    let r = client()
        .get(gw.url("/prod/v1/items/2"))
        .send()
        .await
        .unwrap();
    let (event, _) = echoed(r, lang).await;
    assert_eq!(event["pathParameters"], json!({ "id": "2" }));
}

#[tokio::test]
async fn rust_lambda_handler_answers_both_payloads() {
    check_handler("lambda_echo", "rust").await;
}

#[tokio::test]
async fn javascript_lambda_handler_answers_both_payloads() {
    check_handler("js_lambda_echo", "js").await;
}

#[tokio::test]
async fn python_lambda_handler_answers_both_payloads() {
    check_handler("py_lambda_echo", "python").await;
}

const ARN_PREFIX: &str = "arn:aws:execute-api:us-west-2:123456789012:shopapi";

async fn authorizer_gateway(origin: &Origin, component: &str, input: &str) -> Gateway {
    let plugins = plugins_yaml(&[
        (
            "gate",
            component,
            &format!("role: lambda, timeout_ms: {}", timeout_ms(component)),
        ),
        ("fn", "lambda_echo", "role: lambda"),
    ]);
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
{plugins}
apis:
  - name: shop
    stages:
      prod: {{}}
    authorizers:
      gate:
        lambda: {{ plugin: gate, type: {input}, region: us-west-2, account_id: "123456789012", api_id: shopapi }}
        identity_source: [header.authorization]
        result_ttl_s: 300
        context_headers: {{ tier: x-tier, count: x-count }}
    routes:
      - {{ route: "GET /pets/{{id}}", auth: gate, integration: {{ http_proxy: "${{origin}}/pets/{{id}}" }} }}
      - {{ route: "POST /pets", auth: gate, integration: {{ http_proxy: "${{origin}}/pets" }} }}
      - {{ route: "GET /whoami", auth: gate, integration: {{ function: {{ plugin: fn, payload: aws-proxy-1.0 }} }} }}
"#,
        origin = origin.url()
    );
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&yaml)
        .await
}

async fn check_authorizer(component: &str, input: &str) {
    let origin = Origin::echo().await;
    let gw = authorizer_gateway(&origin, component, input).await;
    let admin = gw.admin_url("");
    let get = |path: &str, token: Option<&str>| {
        let mut request = client().get(gw.url(path));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        request.send()
    };

    // Allowed: the policy names GET on every path of the stage; the principal and context
    // reach the origin in the configured headers, not the client's forgeries.
    let r = client()
        .get(gw.url("/prod/pets/7"))
        .header("authorization", "allow")
        .header("x-tier", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{component}: {}", r.text().await.unwrap());
    let seen = origin.single_request();
    assert_eq!(seen.path_and_query(), "/pets/7");
    assert_eq!(seen.header_all("x-edgeway-principal"), ["user-allow"]);
    assert_eq!(seen.header_all("x-tier"), ["gold"]);
    assert_eq!(seen.header_all("x-count"), ["3"]);

    // The cached policy is evaluated against each request's method ARN: POST is not in it.
    let r = client()
        .post(gw.url("/prod/pets"))
        .header("authorization", "allow")
        .send()
        .await
        .unwrap();
    assert_gateway_error(
        r,
        403,
        "User is not authorized to access this resource",
        "ACCESS_DENIED",
    )
    .await;
    assert_eq!(
        plugin_calls(&admin, "gate").await,
        1,
        "{component}: one call for the identity; its policy is cached"
    );

    // The authorizer's principal and context reach a function's event.
    let r = get("/prod/whoami", Some("allow")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    let authorizer = &body["event"]["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "user-allow", "{body}");
    assert_eq!(authorizer["tier"], "gold");
    assert_eq!(authorizer["vip"], "true");
    // The method ARN the function was given (it echoes it in its context): region, account
    // and API id as configured, then stage, method and path; the context is the cached
    // answer's, from the identity's first request.
    assert_eq!(authorizer["arn"], format!("{ARN_PREFIX}/prod/GET/pets/7"));

    // An explicit deny on the method ARN it was given.
    let r = get("/prod/pets/7", Some("deny")).await.unwrap();
    assert_gateway_error(
        r,
        403,
        "User is not authorized to access this resource with an explicit deny",
        "ACCESS_DENIED",
    )
    .await;
    // "Unauthorized" from the function is a 401; other failures and a malformed policy a 500.
    let r = get("/prod/pets/7", Some("unauthorized")).await.unwrap();
    assert_gateway_error(r, 401, "Unauthorized", "UNAUTHORIZED").await;
    for token in ["broken", "other"] {
        let r = get("/prod/pets/7", Some(token)).await.unwrap();
        assert_gateway_error(r, 500, "Internal server error", "AUTHORIZER_FAILURE").await;
    }
    // No identity: 401 without a call.
    let calls = plugin_calls(&admin, "gate").await;
    let r = get("/prod/pets/7", None).await.unwrap();
    assert_gateway_error(r, 401, "Unauthorized", "UNAUTHORIZED").await;
    assert_eq!(plugin_calls(&admin, "gate").await, calls);
    assert_eq!(
        origin.request_count(),
        1,
        "only the allowed request reached the origin"
    );
}

#[tokio::test]
async fn rust_lambda_token_authorizer_returns_a_policy() {
    check_authorizer("lambda_authorizer", "token").await;
}

#[tokio::test]
async fn rust_lambda_request_authorizer_returns_a_policy() {
    check_authorizer("lambda_authorizer", "request").await;
}

#[tokio::test]
async fn javascript_lambda_authorizer_returns_a_policy() {
    check_authorizer("js_lambda_authorizer", "token").await;
}

#[tokio::test]
async fn python_lambda_authorizer_returns_a_policy() {
    check_authorizer("py_lambda_authorizer", "request").await;
}
