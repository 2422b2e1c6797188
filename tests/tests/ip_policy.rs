//! Resource policies and trusted proxies with the real binary: source-IP allow and deny lists on
//! an API and its stages (403 with API Gateway's message, nothing reaching the origin), and
//! `X-Forwarded-For` believed only from trusted proxies (rightmost untrusted entry), as the
//! policy, the access log and the origin see it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;

/// The gateway listens on 127.0.0.1: loopback is the client unless a trusted proxy says not.
fn config(origin: &Origin, trusted: &str, api_policy: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
trusted_proxies: {trusted}
apis:
  - name: shop
    policy: {api_policy}
    stages:
      prod: {{}}
      internal: {{ policy: {{ allow: [10.0.0.0/8] }} }}
      blocked: {{ policy: {{ allow: [127.0.0.0/8], deny: [127.0.0.1] }} }}
      open: {{ policy: {{}} }}
    routes:
      - route: GET /pets
        integration: {{ http_proxy: "${{origin}}/pets" }}
"#,
        origin = origin.url(),
    )
}

async fn get(gw: &Gateway, path: &str, xff: Option<&str>) -> reqwest::Response {
    let mut req = client().get(gw.url(path));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

/// The denial API Gateway gives for a resource policy, for `stage`.
fn denial(stage: &str, explicit: bool) -> String {
    format!(
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: \
         arn:aws:execute-api:edgeway:local:shop/{stage}/GET/pets{}",
        if explicit {
            " with an explicit deny"
        } else {
            ""
        }
    )
}

async fn assert_denied(
    gw: &Gateway,
    origin: &Origin,
    path: &str,
    xff: Option<&str>,
    message: &str,
) {
    let before = origin.request_count();
    let r = get(gw, path, xff).await;
    assert_gateway_error(r, 403, message, "ACCESS_DENIED").await;
    assert_eq!(
        origin.request_count(),
        before,
        "a denied request reached the origin"
    );
}

async fn assert_allowed(gw: &Gateway, origin: &Origin, path: &str, xff: Option<&str>) {
    let before = origin.request_count();
    let r = get(gw, path, xff).await;
    assert_eq!(r.status().as_u16(), 200, "{path} {xff:?}");
    assert_eq!(r.text().await.unwrap(), "origin GET /pets");
    assert_eq!(origin.request_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_lists_by_stage() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "[]", "{ allow: [127.0.0.0/8, ::1] }")).await;
    // The API's allow list admits loopback.
    assert_allowed(&gw, &origin, "/prod/pets", None).await;
    // A stage's policy replaces the API's: only 10/8 here, so loopback is not allowed.
    assert_denied(
        &gw,
        &origin,
        "/internal/pets",
        None,
        &denial("internal", false),
    )
    .await;
    // Deny wins over allow.
    assert_denied(
        &gw,
        &origin,
        "/blocked/pets",
        None,
        &denial("blocked", true),
    )
    .await;
    // An empty stage policy lets everyone in.
    assert_allowed(&gw, &origin, "/open/pets", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_list_refuses_loopback() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "[]", "{ deny: [127.0.0.0/8] }")).await;
    assert_denied(&gw, &origin, "/prod/pets", None, &denial("prod", true)).await;
    let lines = gw.wait_access_log(1, Duration::from_secs(5)).await;
    assert_eq!(lines[0]["status"], 403, "{}", lines[0]);
    assert_eq!(lines[0]["source_ip"], "127.0.0.1", "{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_client_of_a_trusted_proxy_is_checked() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, "[127.0.0.1/32]", "{ deny: [10.0.0.0/8] }")).await;
    // 127.0.0.1 is a trusted proxy: the client is the address it forwarded for.
    assert_denied(
        &gw,
        &origin,
        "/prod/pets",
        Some("10.1.2.3"),
        &denial("prod", true),
    )
    .await;
    // Trusted entries are skipped from the right; what a client wrote on the left is ignored.
    assert_denied(
        &gw,
        &origin,
        "/prod/pets",
        Some("203.0.113.9, 10.1.2.3, 127.0.0.1"),
        &denial("prod", true),
    )
    .await;
    assert_allowed(&gw, &origin, "/prod/pets", Some("10.1.2.3, 203.0.113.5")).await;
    // The origin gets the header with the peer appended, as from any proxy.
    let seen = origin.requests().pop().unwrap();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("10.1.2.3, 203.0.113.5, 127.0.0.1")
    );
    // An entry that is not an address stops the walk at the last good one: the proxy itself.
    assert_allowed(&gw, &origin, "/prod/pets", Some("10.1.2.3, not-an-ip")).await;
    // No header: the peer.
    assert_allowed(&gw, &origin, "/prod/pets", None).await;

    let lines = gw.wait_access_log(5, Duration::from_secs(5)).await;
    let ips: Vec<&str> = lines
        .iter()
        .map(|l| l["source_ip"].as_str().unwrap())
        .collect();
    assert_eq!(
        ips,
        [
            "10.1.2.3",
            "10.1.2.3",
            "203.0.113.5",
            "127.0.0.1",
            "127.0.0.1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let origin = Origin::echo().await;
    // 127.0.0.1 is not trusted: a spoofed header neither gets a client denied...
    let gw = Gateway::start(&config(
        &origin,
        "[192.168.0.0/16]",
        "{ deny: [10.0.0.0/8] }",
    ))
    .await;
    assert_allowed(&gw, &origin, "/prod/pets", Some("10.1.2.3")).await;
    let lines = gw.wait_access_log(1, Duration::from_secs(5)).await;
    assert_eq!(lines[0]["source_ip"], "127.0.0.1", "{}", lines[0]);
    drop(gw);
    // ...nor lets one in.
    let gw = Gateway::start(&config(&origin, "[]", "{ allow: [10.0.0.0/8] }")).await;
    assert_denied(
        &gw,
        &origin,
        "/prod/pets",
        Some("10.1.2.3"),
        &denial("prod", false),
    )
    .await;
}
