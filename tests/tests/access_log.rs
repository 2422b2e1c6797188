//! Access log: one JSON line per request on stdout with the contract's fields.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::Value;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: petstore
    stages:
      prod: {}
    routes:
      - route: GET /pets/{id}
        integration: { http_proxy: "${origin}/pets/{id}" }
      - route: POST /pets
        integration: { http_proxy: "${origin}/pets" }
      - route: GET /health
        integration: { mock: { status: 200, body: '{"ok":true}' } }
"#
    .replace("ORIGIN", &origin.url())
}

fn assert_common(line: &Value, request_id: &str) {
    assert_eq!(line["request_id"], request_id, "{line}");
    let time = line["time"]
        .as_str()
        .unwrap_or_else(|| panic!("time: {line}"));
    // RFC 3339 UTC, e.g. 2026-11-21T08:00:00.123Z
    assert!(
        time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "time {time:?}"
    );
    assert!(
        line["latency_ms"].as_f64().is_some_and(|v| v >= 0.0),
        "latency_ms: {line}"
    );
    assert_eq!(line["source_ip"], "127.0.0.1", "{line}");
    assert!(
        line["bytes_in"].is_u64() && line["bytes_out"].is_u64(),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_json_line_per_request_with_contract_fields() {
    let origin =
        Origin::start(|_r: &Recorded| http::Response::builder().body(full("0123456789")).unwrap())
            .await;
    let gw = Gateway::start(&config(&origin)).await;
    let c = client();
    let rid = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();

    let r1 = c.get(gw.url("/prod/pets/7")).send().await.unwrap();
    let id1 = rid(&r1);
    assert_eq!(r1.text().await.unwrap(), "0123456789");
    let r2 = c
        .post(gw.url("/prod/pets"))
        .body("hello")
        .send()
        .await
        .unwrap();
    let id2 = rid(&r2);
    r2.bytes().await.unwrap();
    let r3 = c.get(gw.url("/prod/health")).send().await.unwrap();
    let id3 = rid(&r3);
    r3.bytes().await.unwrap();
    let r4 = c.get(gw.url("/prod/missing")).send().await.unwrap();
    let id4 = rid(&r4);
    r4.bytes().await.unwrap();
    let r5 = c.delete(gw.url("/prod/pets")).send().await.unwrap();
    let id5 = rid(&r5);
    r5.bytes().await.unwrap();

    let lines = gw.wait_access_log(5, Duration::from_secs(5)).await;
    // give a stray duplicate line a moment to show up
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = if lines.len() == 5 {
        gw.access_log()
    } else {
        lines
    };
    assert_eq!(lines.len(), 5, "one line per request: {lines:#?}");
    let by_id = |id: &str| -> Value {
        lines
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap_or_else(|| panic!("no access log line for {id}: {lines:#?}"))
            .clone()
    };

    let l = by_id(&id1);
    assert_common(&l, &id1);
    assert_eq!(l["api"], "petstore");
    assert_eq!(l["stage"], "prod");
    assert_eq!(l["route"], "GET /pets/{id}");
    assert_eq!(l["method"], "GET");
    assert_eq!(l["path"], "/prod/pets/7");
    assert_eq!(l["status"], 200);
    assert_eq!(l["bytes_in"], 0);
    assert_eq!(l["bytes_out"], 10);
    assert!(
        l["integration_latency_ms"]
            .as_f64()
            .is_some_and(|v| v >= 0.0),
        "{l}"
    );
    assert!(
        l["integration_latency_ms"].as_f64() <= l["latency_ms"].as_f64(),
        "{l}"
    );

    let l = by_id(&id2);
    assert_common(&l, &id2);
    assert_eq!(l["route"], "POST /pets");
    assert_eq!(l["method"], "POST");
    assert_eq!(l["bytes_in"], 5);
    assert_eq!(l["bytes_out"], 10);

    let l = by_id(&id3);
    assert_common(&l, &id3);
    assert_eq!(l["route"], "GET /health");
    assert_eq!(l["status"], 200);
    assert_eq!(l["bytes_out"], 11);
    assert!(l["integration_latency_ms"].is_null(), "mock: {l}");

    let l = by_id(&id4);
    assert_common(&l, &id4);
    assert_eq!(l["status"], 404);
    assert_eq!(l["path"], "/prod/missing");
    assert!(
        l["api"].is_null() && l["stage"].is_null() && l["route"].is_null(),
        "{l}"
    );

    let l = by_id(&id5);
    assert_common(&l, &id5);
    assert_eq!(l["status"], 405);
    assert_eq!(l["method"], "DELETE");
}

fn formats_config(origin: &Origin, stage_format: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
access_log: {{ format: json }}
apis:
  - name: petstore
    stages:
      prod:
        access_log:
          format: '{stage_format}'
          destination: {{ file: access.log }}
      quiet:
        access_log: {{ destination: off }}
    routes:
      - route: GET /pets/{{id}}
        integration: {{ http_proxy: "${{origin}}/pets/{{id}}" }}
"#,
        origin = origin.url()
    )
}

const STAGE_FORMAT: &str = r#"$context.requestId $context.httpMethod $context.resourcePath $context.status $context.responseLength "$context.identity.userAgent" $context.domainName $context.protocol $context.error.responseType"#;

/// The stage's file, once it holds `n` lines.
async fn file_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= n).then_some(lines)
    })
    .await
    .unwrap_or_else(|| panic!("{} never had {n} lines", path.display()))
}

/// A stage's own format to its own file, the node-wide JSON preset on stdout for a request
/// that matched no route, a stage whose log is off, SIGUSR1 after logrotate's rename, and a
/// reload with a bad format that leaves the log as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_formats_files_and_reopen() {
    let origin =
        Origin::start(|_r: &Recorded| http::Response::builder().body(full("0123456789")).unwrap())
            .await;
    let gw = Gateway::start(&formats_config(&origin, STAGE_FORMAT)).await;
    let c = client();
    let host = gw.addr("listen[0]").to_string();
    let get = |path: &str, agent: &str| {
        c.get(gw.url(path))
            .header("user-agent", agent.to_owned())
            .send()
    };
    let rid = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    let log_file = gw.dir.join("access.log");

    let r = get("/prod/pets/7", "probe \"1\" ü").await.unwrap();
    let first = rid(&r);
    assert_eq!(r.text().await.unwrap(), "0123456789");
    let lines = file_lines(&log_file, 1).await;
    assert_eq!(
        lines,
        [format!(
            r#"{first} GET /pets/{{id}} 200 10 "probe \x221\x22 \xC3\xBC" {host} HTTP/1.1 -"#
        )]
    );

    // No route: the node-wide format, on stdout, parsed back.
    let r = get("/nowhere", "x").await.unwrap();
    let unrouted = rid(&r);
    assert_eq!(r.status(), 404);
    let json = gw.wait_access_log(1, Duration::from_secs(5)).await;
    assert_eq!(json.len(), 1, "{json:#?}");
    let line = &json[0];
    assert_eq!(line["requestId"], unrouted, "{line}");
    assert_eq!(line["extendedRequestId"], unrouted, "{line}");
    assert_eq!(line["ip"], "127.0.0.1", "{line}");
    assert_eq!(line["caller"], "-", "{line}");
    assert_eq!(line["status"], "404", "{line}");
    assert_eq!(line["resourcePath"], "-", "{line}");
    assert_eq!(line["httpMethod"], "GET", "{line}");
    assert_eq!(line["protocol"], "HTTP/1.1", "{line}");
    assert!(
        line["responseLength"]
            .as_str()
            .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0)),
        "{line}"
    );

    // A stage whose log is off writes nowhere.
    let r = get("/quiet/pets/7", "x").await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();

    // logrotate: rename, then SIGUSR1; the next line goes to a new file at the old path.
    let rotated = gw.dir.join("access.log.1");
    std::fs::rename(&log_file, &rotated).unwrap();
    gw.signal("USR1");
    gw.wait_event("access-log files reopened", Duration::from_secs(5), |_| {
        true
    })
    .await;
    let r = get("/prod/pets/8", "after").await.unwrap();
    let second = rid(&r);
    r.bytes().await.unwrap();
    let lines = file_lines(&log_file, 1).await;
    assert_eq!(
        lines,
        [format!(
            r#"{second} GET /pets/{{id}} 200 10 "after" {host} HTTP/1.1 -"#
        )]
    );
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );

    // A reload with an unknown variable is refused; the stage logs on as before.
    gw.replace_config(&formats_config(&origin, "$context.requestId $context.nope"));
    let refused = gw
        .wait_event("config refused", Duration::from_secs(10), |_| true)
        .await;
    assert!(
        refused
            .to_string()
            .contains("unknown variable $context.nope"),
        "{refused}"
    );
    let r = get("/prod/pets/9", "still").await.unwrap();
    let third = rid(&r);
    r.bytes().await.unwrap();
    let lines = file_lines(&log_file, 2).await;
    assert_eq!(
        lines[1],
        format!(r#"{third} GET /pets/{{id}} 200 10 "still" {host} HTTP/1.1 -"#)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gw.access_log().len(),
        1,
        "only the unrouted request is on stdout"
    );
}
