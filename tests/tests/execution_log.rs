//! Execution logs: a stage's `logging_level` (off, error, info) and `data_trace`, written to
//! stderr as JSON lines with the target `execution`, secrets redacted and bodies cut at 1,024
//! bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::Value;

const TOKENS: &str = "role: authorizer, config: { tokens: { ops-token: { principal: ops } } }";

fn config(origin: &Origin) -> String {
    let plugins = plugins_yaml(&[("auth", "token_authorizer", TOKENS)]);
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
{plugins}
apis:
  - name: shop
    authorizers:
      tok: {{ plugin: auth, identity_source: [header.authorization] }}
    stages:
      quiet: {{}}
      errors: {{ logging_level: error }}
      info: {{ logging_level: INFO, cache: {{ ttl_s: 60 }} }}
      trace: {{ logging_level: info, data_trace: true }}
    routes:
      - route: POST /orders
        auth: tok
        integration: {{ http_proxy: "${{origin}}/orders" }}
      - route: GET /items/{{id}}
        cache: {{ key: [path.id] }}
        integration: {{ http_proxy: "${{origin}}/items/{{id}}" }}
      - route: GET /down
        integration: {{ http_proxy: "http://127.0.0.1:9/down" }}
"#,
        origin = origin.url()
    )
}

async fn origin() -> Origin {
    Origin::start(|r: &Recorded| {
        // A response that sets a cookie is not cached: only the orders set one.
        if r.uri.path() == "/orders" {
            http::Response::builder()
                .header("set-cookie", "session=origin-secret")
                .body(full("b".repeat(2000)))
                .unwrap()
        } else {
            http::Response::builder().body(full("item")).unwrap()
        }
    })
    .await
}

/// The execution-log lines of one request, by message.
fn lines_of(gw: &Gateway, request_id: &str) -> Vec<Value> {
    gw.stderr_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "execution" && v["fields"]["request_id"] == request_id)
        .collect()
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap())
        .collect()
}

fn field<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    &lines
        .iter()
        .find(|l| l["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))["fields"]
}

/// Sends a request and returns its request id once its `method completed` line (or, for
/// stages that write none, its access-log line) is out.
async fn send(gw: &Gateway, request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.bytes().await.unwrap();
    // The access log is written when the body ends, after the execution lines.
    eventually(Duration::from_secs(5), || async {
        gw.access_log()
            .iter()
            .any(|l| l["request_id"] == id.as_str())
            .then_some(())
    })
    .await
    .expect("access-log line");
    (status, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_writes_what_it_promises() {
    let origin = origin().await;
    let gw = Gateway::start(&config(&origin)).await;
    let c = client();
    let order = |stage: &str, token: &str| {
        c.post(gw.url(&format!("/{stage}/orders")))
            .header("authorization", format!("Bearer {token}"))
            .body("{}")
    };

    // off: nothing, even for a failure.
    let (status, id) = send(&gw, order("quiet", "ops-token")).await;
    assert_eq!(status, 200);
    assert!(lines_of(&gw, &id).is_empty(), "{:#?}", lines_of(&gw, &id));
    let (status, id) = send(&gw, c.get(gw.url("/quiet/down"))).await;
    assert_eq!(status, 502);
    assert!(lines_of(&gw, &id).is_empty());

    // error: nothing for a success; one line for a failure, with its cause.
    let (_, id) = send(&gw, order("errors", "ops-token")).await;
    assert!(lines_of(&gw, &id).is_empty(), "{:#?}", lines_of(&gw, &id));
    let (status, id) = send(&gw, c.get(gw.url("/errors/down"))).await;
    assert_eq!(status, 502);
    let lines = lines_of(&gw, &id);
    assert_eq!(messages(&lines), ["execution failed"], "{lines:#?}");
    let failed = field(&lines, "execution failed");
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(failed["type"], "INTEGRATION_FAILURE");
    assert_eq!(failed["status"], 502);
    assert_eq!(
        failed["error_message"],
        "Network error communicating with endpoint"
    );
    assert_eq!(failed["api"], "shop");
    assert_eq!(failed["stage"], "errors");
    assert_eq!(failed["route"], "GET /down");
    assert!(
        failed["cause"].as_str().unwrap().contains("127.0.0.1:9"),
        "{failed}"
    );

    // info: each decision, in order.
    let (status, id) = send(&gw, order("info", "ops-token")).await;
    assert_eq!(status, 200);
    let lines = lines_of(&gw, &id);
    assert_eq!(
        messages(&lines),
        [
            "authorizer decision",
            "throttle decision",
            "integration response",
            "method completed"
        ],
        "{lines:#?}"
    );
    let decision = field(&lines, "authorizer decision");
    assert_eq!(decision["result"], "allow");
    assert_eq!(decision["principal"], "ops");
    assert!(decision["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(field(&lines, "throttle decision")["result"], "allowed");
    let integration = field(&lines, "integration response");
    assert_eq!(integration["status"], 200);
    assert!(integration["latency_ms"].as_f64().unwrap() > 0.0);
    let completed = field(&lines, "method completed");
    assert_eq!(completed["status"], 200);
    assert_eq!(completed["bytes"], 2000);
    assert!(
        !lines
            .iter()
            .any(|l| l["fields"]["message"] == "method request"),
        "no data trace at info alone"
    );

    // info: a refusal, and the cache's misses and hits.
    let (status, id) = send(&gw, order("info", "wrong-token")).await;
    assert!(status == 401 || status == 403, "{status}");
    let lines = lines_of(&gw, &id);
    assert_eq!(
        messages(&lines),
        [
            "authorizer decision",
            "execution failed",
            "method completed"
        ],
        "{lines:#?}"
    );
    assert_eq!(field(&lines, "authorizer decision")["result"], "deny");
    let (_, miss) = send(&gw, c.get(gw.url("/info/items/1"))).await;
    let (_, hit) = send(&gw, c.get(gw.url("/info/items/1"))).await;
    assert_eq!(
        field(&lines_of(&gw, &miss), "cache lookup")["result"],
        "miss"
    );
    let hit_lines = lines_of(&gw, &hit);
    assert_eq!(field(&hit_lines, "cache lookup")["result"], "hit");
    assert!(
        !messages(&hit_lines).contains(&"integration response"),
        "{hit_lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_trace_cuts_bodies_and_redacts_secrets() {
    let origin = origin().await;
    let gw = Gateway::start(&config(&origin)).await;
    let body = "a".repeat(3000);
    let request = client()
        .post(gw.url("/trace/orders"))
        .header("authorization", "Bearer ops-token")
        .header("x-api-key", "key-secret")
        .header("cookie", "session=client-secret")
        .header("x-note", "kept")
        .body(body.clone());
    let (status, id) = send(&gw, request).await;
    assert_eq!(status, 200);
    // The origin still got the whole body.
    assert_eq!(origin.requests_to("/orders")[0].body.len(), 3000);

    let lines = lines_of(&gw, &id);
    let request = field(&lines, "method request");
    assert_eq!(request["bytes"], 3000);
    assert_eq!(request["body"].as_str().unwrap(), &body[..1024]);
    let headers: Value = serde_json::from_str(request["headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["authorization"], "[redacted]");
    assert_eq!(headers["x-api-key"], "[redacted]");
    assert_eq!(headers["cookie"], "[redacted]");
    assert_eq!(headers["x-note"], "kept");

    let response = field(&lines, "method response headers");
    assert_eq!(response["status"], 200);
    let headers: Value = serde_json::from_str(response["headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["set-cookie"], "[redacted]");
    let response_body = field(&lines, "method response body");
    assert_eq!(response_body["bytes"], 2000);
    assert_eq!(response_body["body"].as_str().unwrap(), "b".repeat(1024));

    let stderr = gw.stderr_text();
    for secret in ["ops-token", "key-secret", "client-secret", "origin-secret"] {
        assert!(!stderr.contains(secret), "{secret} written to stderr");
    }
}
