//! WebSocket APIs with the real binary and a real client: `$connect` with its integration,
//! API keys and subprotocols, route selection for each row of API Gateway's table, two-way
//! and one-way routes, `$default`, `@connections` on the admin API, `$disconnect` whichever
//! side ends the connection, limits (1009, 1003, idle timeout) and a reload under 100 open
//! connections.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::Value;

const MESSAGE: &str = r#"{"service":"chat","action":"join","data":{"room":"room1234"}}"#;
const QUIET: Duration = Duration::from_millis(300);

/// An origin for `$connect`, messages and `$disconnect`: `/connect?deny` refuses with 403,
/// `/connect` chooses the subprotocol `chat.v2` when offered (and says `welcome`, which the
/// client never sees); `/messages` answers
/// `got:<body>`.
async fn origin() -> Origin {
    Origin::start(|r| {
        let path = r.path_and_query();
        if path.starts_with("/connect?deny") {
            return reply(
                403,
                &[("content-type", "application/json")],
                r#"{"message":"no"}"#,
            );
        }
        if path.starts_with("/connect") {
            let offered = r.header("sec-websocket-protocol").unwrap_or_default();
            let chosen = if offered.contains("chat.v2") {
                "chat.v2"
            } else {
                ""
            };
            let headers: Vec<(&str, &str)> = if chosen.is_empty() {
                vec![]
            } else {
                vec![("sec-websocket-protocol", chosen)]
            };
            return reply(200, &headers, "welcome");
        }
        if path.starts_with("/messages") {
            let body = format!("got:{}", String::from_utf8_lossy(&r.body));
            return reply(200, &[], body);
        }
        reply(200, &[], "")
    })
    .await
}

fn chat_config(origin: &Origin, state: &std::path::Path, extra_ws: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
apis:
  - name: chat
    protocol: websocket
    route_selection: "$request.body.action"
    websocket: {{ {extra_ws} }}
    stages: {{ prod: {{}} }}
    routes:
      - route: $connect
        integration: {{ http_proxy: "${{origin}}/connect" }}
      - route: $disconnect
        integration: {{ http_proxy: "${{origin}}/disconnect" }}
      - route: sendmessage
        response: two-way
        integration: {{ http_proxy: "${{origin}}/messages" }}
      - route: oneway
        integration: {{ http_proxy: "${{origin}}/messages" }}
      - route: $default
        response: two-way
        integration: {{ mock: {{ echo: true }} }}
"#,
        origin = origin.url(),
        state = state.display(),
    )
}

/// The chat API (`chat_config` with `extra_ws` in its `websocket`) in front of [`origin`].
async fn chat(extra_ws: &str) -> (Origin, Gateway) {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let gw = start(&chat_config(&origin, &state, extra_ws)).await;
    (origin, gw)
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await
}

/// Waits up to 5 s for the origin to have seen `n` `$disconnect`s.
async fn assert_disconnects(origin: &Origin, n: usize) {
    let seen = eventually(Duration::from_secs(5), || async {
        (origin.count_to("/disconnect") == n).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "{} $disconnects, not {n}",
        origin.count_to("/disconnect")
    );
}

/// The connection id the origin saw on `$connect` (the last one).
fn connection_id(origin: &Origin) -> String {
    let connect = origin.requests_to("/connect");
    connect
        .last()
        .unwrap()
        .header("x-edgeway-connection-id")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn connect_routes_messages_and_answers_two_way_routes() {
    let (origin, gw) = chat("").await;
    let addr = gw.addr("listen[0]");

    // $connect: the integration is called during the upgrade and picks the subprotocol.
    let Handshake::Open(ws, headers) = ws_connect(
        addr,
        "/prod",
        &[("sec-websocket-protocol", "chat.v1, chat.v2")],
    )
    .await
    else {
        panic!("refused");
    };
    let mut ws = *ws;
    assert_eq!(headers["sec-websocket-protocol"], "chat.v2");
    let connect = origin.requests_to("/connect");
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0].method, "GET");
    assert_eq!(connect[0].header("x-edgeway-route-key"), Some("$connect"));
    assert_eq!(connect[0].header("x-edgeway-event-type"), Some("CONNECT"));
    let id = connection_id(&origin);
    assert_eq!(id.len(), 16, "{id}");

    // A two-way route: the message is POSTed to the origin, its answer comes back.
    ws_send(&mut ws, r#"{"action":"sendmessage","data":"hi"}"#).await;
    assert_eq!(
        ws_recv(&mut ws).await,
        r#"got:{"action":"sendmessage","data":"hi"}"#
    );
    let posted = origin.requests_to("/messages");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].method, "POST");
    assert_eq!(
        posted[0].header("x-edgeway-connection-id"),
        Some(id.as_str())
    );
    assert_eq!(posted[0].header("x-edgeway-route-key"), Some("sendmessage"));
    assert_eq!(posted[0].header("x-edgeway-event-type"), Some("MESSAGE"));
    assert_eq!(posted[0].header("content-type"), Some("application/json"));
    assert_eq!(
        posted[0].header("x-edgeway-message-id").map(str::len),
        Some(16)
    );

    // A one-way route calls the origin and sends nothing back.
    ws_send(&mut ws, r#"{"action":"oneway","n":1}"#).await;
    assert_eq!(ws_next(&mut ws, QUIET).await, None);
    assert_eq!(origin.count_to("/messages"), 2);

    // Non-JSON and unknown keys go to $default (here an echo).
    ws_send(&mut ws, "hello, not json").await;
    assert_eq!(ws_recv(&mut ws).await, "hello, not json");
    ws_send(&mut ws, r#"{"action":"nosuch"}"#).await;
    assert_eq!(ws_recv(&mut ws).await, r#"{"action":"nosuch"}"#);

    // The client closes: $disconnect reaches the origin with the connection id.
    ws.close(None).await.unwrap();
    let disconnect = eventually(Duration::from_secs(5), || async {
        origin.requests_to("/disconnect").pop()
    })
    .await
    .expect("$disconnect within 5 s");
    assert_eq!(
        disconnect.header("x-edgeway-connection-id"),
        Some(id.as_str())
    );
    assert_eq!(
        disconnect.header("x-edgeway-event-type"),
        Some("DISCONNECT")
    );

    // One access-log line per connect, message and disconnect, with the connection's id.
    let lines = gw.wait_access_log(6, Duration::from_secs(5)).await;
    let events: Vec<(&str, &str, u64)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["connection_id"], id.as_str(), "{l}");
            (
                l["event_type"].as_str().unwrap(),
                l["route"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("CONNECT", "$connect", 101),
            ("MESSAGE", "sendmessage", 200),
            ("MESSAGE", "oneway", 200),
            ("MESSAGE", "$default", 200),
            ("MESSAGE", "$default", 200),
            ("DISCONNECT", "$disconnect", 200),
        ][..],
        "{lines:#?}"
    );
    let message_ids: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l["message_id"].as_str())
        .collect();
    assert_eq!(message_ids.len(), 4, "a message id per message");
    assert!(lines[0].get("message_id").is_none());
}

#[tokio::test]
async fn connect_is_refused_with_the_integrations_status_or_the_gateways() {
    let (origin, gw) = chat("").await;
    let addr = gw.addr("listen[0]");

    // The $connect integration's non-2xx answer refuses the upgrade with that status.
    let (status, body) = ws_connect(addr, "/prod?deny=1", &[]).await.refused();
    assert_eq!((status, body.as_str()), (403, r#"{"message":"no"}"#));
    // No subprotocol offered, none chosen.
    let Handshake::Open(_, headers) = ws_connect(addr, "/prod", &[]).await else {
        panic!("refused");
    };
    assert!(headers.get("sec-websocket-protocol").is_none());

    // A plain GET of the stage: 426 with the upgrade it needs.
    let r = client().get(gw.url("/prod")).send().await.unwrap();
    assert_eq!(r.status(), 426);
    assert_eq!(r.headers()["upgrade"], "websocket");
    assert_eq!(r.text().await.unwrap(), r#"{"message":"Upgrade Required"}"#);
    assert_eq!(
        origin.count_to("/connect"),
        2,
        "a refused upgrade never reaches the origin"
    );
}

#[tokio::test]
async fn api_keys_are_checked_on_connect_and_messages_count_against_the_plan() {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let yaml = chat_config(&origin, &state, "").replace(
        "      - route: $connect\n",
        "      - route: $connect\n        api_key_required: true\n",
    ) + "usage_plans:\n  - { name: basic, apis: [chat/prod], throttle: { rate: 1, burst: 2 } }\n";
    let gw = start(&yaml).await;
    let addr = gw.addr("listen[0]");
    let (status, key) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({ "name": "alice", "plan": "basic" })),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let value = key["value"].as_str().unwrap();

    let (status, body) = ws_connect(addr, "/prod", &[]).await.refused();
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    let (status, _) = ws_connect(addr, "/prod", &[("x-api-key", "wrong")])
        .await
        .refused();
    assert_eq!(status, 403);
    assert_eq!(origin.count_to("/connect"), 0);

    // The key's bucket held 2 tokens; $connect took one. One message passes, the next is
    // refused with API Gateway's error message.
    let mut ws = ws_connect(addr, "/prod", &[("x-api-key", value)])
        .await
        .open();
    ws_send(&mut ws, "first").await;
    assert_eq!(ws_recv(&mut ws).await, "first");
    ws_send(&mut ws, "second").await;
    let refusal: Value = serde_json::from_str(&ws_recv(&mut ws).await).unwrap();
    assert_eq!(refusal["message"], "Too Many Requests");
    assert_eq!(refusal["connectionId"], connection_id(&origin).as_str());
    assert!(refusal["requestId"].as_str().is_some_and(|r| !r.is_empty()));
}

/// One API per row of API Gateway's evaluation table (each on its own stage), all sent the
/// reference's message.
#[tokio::test]
async fn route_selection_follows_api_gateways_table() {
    let rows = [
        ("a", r#"$request.body.action"#, "join"),
        ("b", r#"${request.body.action}"#, "join"),
        (
            "c",
            r#"${request.body.service}/${request.body.action}"#,
            "chat/join",
        ),
        (
            "d",
            r#"${request.body.action}-${request.body.invalidPath}"#,
            "join-",
        ),
        ("e", r#"action"#, "action"),
    ];
    let mut yaml = String::from("listen:\n  - addr: 127.0.0.1:0\napis:\n");
    for (name, expression, key) in rows {
        yaml += &format!(
            r#"  - name: {name}
    protocol: websocket
    route_selection: '{expression}'
    stages: {{ {name}: {{}} }}
    routes:
      - {{ route: "{key}", response: two-way, integration: {{ mock: {{ body: "{name} chose {key}" }} }} }}
      - {{ route: "chat", response: two-way, integration: {{ mock: {{ body: "{name} chose chat" }} }} }}
"#
        );
    }
    // `\$default`: every message goes to $default, whatever else matches.
    yaml += r#"  - name: f
    protocol: websocket
    route_selection: '\$default'
    stages: { f: {} }
    routes:
      - { route: join, response: two-way, integration: { mock: { body: "f chose join" } } }
      - { route: $default, response: two-way, integration: { mock: { body: "f chose $default" } } }
"#;
    let gw = Gateway::start(&yaml).await;
    let addr = gw.addr("listen[0]");
    for (name, _, key) in rows {
        let mut ws = ws_connect(addr, &format!("/{name}"), &[]).await.open();
        ws_send(&mut ws, MESSAGE).await;
        assert_eq!(
            ws_recv(&mut ws).await,
            format!("{name} chose {key}"),
            "row {name}"
        );
    }
    let mut ws = ws_connect(addr, "/f", &[]).await.open();
    ws_send(&mut ws, MESSAGE).await;
    assert_eq!(ws_recv(&mut ws).await, "f chose $default");

    // No route for the key and no $default: API Gateway's error frame.
    let mut ws = ws_connect(addr, "/a", &[]).await.open();
    ws_send(&mut ws, r#"{"action":"leave"}"#).await;
    let refusal: Value = serde_json::from_str(&ws_recv(&mut ws).await).unwrap();
    assert_eq!(refusal["message"], "Forbidden");
    assert_eq!(refusal["connectionId"].as_str().map(str::len), Some(16));
    // Non-JSON, no $default: the same.
    ws_send(&mut ws, "plain text").await;
    let refusal: Value = serde_json::from_str(&ws_recv(&mut ws).await).unwrap();
    assert_eq!(refusal["message"], "Forbidden");
}

#[tokio::test]
async fn connections_api_posts_describes_and_deletes_connections() {
    let (origin, gw) = chat("send_queue: 2").await;
    let addr = gw.addr("listen[0]");
    let mut ws = ws_connect(addr, "/prod", &[("user-agent", "ws-test/1.0")])
        .await
        .open();
    let id = connection_id(&origin);
    let url = |id: &str| gw.admin_url(&format!("/admin/connections/{id}"));
    let admin = |method: reqwest::Method, id: &str, body: &str| {
        client()
            .request(method, url(id))
            .bearer_auth(ADMIN_TOKEN)
            .body(body.to_owned())
            .send()
    };

    // POST: the message reaches the client.
    let r = admin(reqwest::Method::POST, &id, "pushed").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(ws_recv(&mut ws).await, "pushed");

    // GET: when it connected, from where, and with what.
    let r = admin(reqwest::Method::GET, &id, "").await.unwrap();
    assert_eq!(r.status(), 200);
    let described: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(described["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(described["identity"]["userAgent"], "ws-test/1.0");
    let connected = described["connectedAt"].as_str().unwrap();
    assert!(
        connected.ends_with('Z') && connected.len() == 24,
        "{connected}"
    );
    assert!(described["lastActiveAt"].as_str().unwrap() >= connected);

    // 413 over the frame limit (32 KiB); 429 once the socket's buffers and then the send
    // queue are full: the client is not reading.
    let r = admin(reqwest::Method::POST, &id, &"x".repeat(32 * 1024 + 1))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-amzn-errortype"], "PayloadTooLargeException");
    let mut statuses = Vec::new();
    let frame = "y".repeat(32 * 1024);
    for _ in 0..4000 {
        let r = admin(reqwest::Method::POST, &id, &frame).await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["x-amzn-errortype"], "LimitExceededException");
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "after {} POSTs",
        statuses.len()
    );

    // DELETE: 204, the client gets a normal close, $disconnect runs, then 410 for everything.
    let r = admin(reqwest::Method::DELETE, &id, "").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1000)
    );
    let disconnect = eventually(Duration::from_secs(5), || async {
        origin.requests_to("/disconnect").pop()
    })
    .await
    .expect("$disconnect after DELETE");
    assert_eq!(
        disconnect.header("x-edgeway-connection-id"),
        Some(id.as_str())
    );
    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
        let r = admin(method.clone(), &id, "late").await.unwrap();
        assert_eq!(r.status(), 410, "{method}");
        assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
    }
    // An id that never existed, and the admin token required.
    let r = admin(reqwest::Method::GET, "AAAAAAAAAAAAAAAA", "")
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let r = client().get(url(&id)).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn limits_close_with_api_gateways_codes() {
    let (origin, gw) =
        chat("max_message_bytes: 1000, max_frame_bytes: 100, idle_timeout_s: 1").await;
    let addr = gw.addr("listen[0]");

    // A frame over the frame limit: 1009.
    let mut ws = ws_connect(addr, "/prod", &[]).await.open();
    ws_send(&mut ws, &"a".repeat(101)).await;
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1009)
    );

    // A binary frame to an API that does not allow binary: 1003.
    let mut ws = ws_connect(addr, "/prod", &[]).await.open();
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::Binary(vec![1u8, 2, 3].into()),
    )
    .await
    .unwrap();
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1003)
    );

    // Idle for longer than idle_timeout_s: 1001.
    let mut ws = ws_connect(addr, "/prod", &[]).await.open();
    ws_send(&mut ws, "still here").await;
    assert_eq!(ws_recv(&mut ws).await, "still here");
    let closed = std::time::Instant::now();
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1001)
    );
    assert!(
        closed.elapsed() >= Duration::from_millis(500),
        "{:?}",
        closed.elapsed()
    );
    // Each ended connection ran $disconnect.
    assert_disconnects(&origin, 3).await;
}

#[tokio::test]
async fn draining_closes_connections_with_going_away_and_runs_disconnect() {
    let (origin, mut gw) = chat("").await;
    let addr = gw.addr("listen[0]");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(ws_connect(addr, "/prod", &[]).await.open());
    }
    gw.signal("TERM");
    for ws in &mut clients {
        assert_eq!(ws_close_code(ws, Duration::from_secs(5)).await, Some(1001));
    }
    assert!(gw.wait_exit(Duration::from_secs(10)).await.is_some());
    assert_eq!(origin.count_to("/disconnect"), 3);
}

#[tokio::test]
async fn a_reload_keeps_100_connections_open_and_new_messages_use_new_routes() {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let yaml = chat_config(&origin, &state, "");
    let gw = start(&yaml).await;
    let addr = gw.addr("listen[0]");
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(ws_connect(addr, "/prod", &[]).await.open());
    }
    // One after another, the 100 `$connect`s reuse one origin connection.
    assert_eq!(origin.connection_count(), 1);
    let generation = gw.generation();
    gw.replace_config(&yaml.replace(
        "integration: { mock: { echo: true } }",
        "integration: { mock: { body: reloaded } }",
    ));
    let reloaded = eventually(Duration::from_secs(10), || async {
        (gw.generation() > generation).then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "no reload: {}", gw.stderr_text());
    for (i, ws) in clients.iter_mut().enumerate() {
        ws_send(ws, "which routes?").await;
        assert_eq!(ws_recv(ws).await, "reloaded", "connection {i}");
    }
    assert_eq!(
        origin.count_to("/disconnect"),
        0,
        "no connection was closed"
    );
}

/// Python's `websockets` client (from PyPI) against the same API: the handshake, a
/// subprotocol, a two-way route, `$default`, and a normal close that runs `$disconnect`.
#[tokio::test]
async fn the_python_websockets_client_works_the_same() {
    let (origin, gw) = chat("").await;
    let url = format!("ws://{}/prod", gw.addr("listen[0]"));
    let script = workspace().join("tests/tools/ws_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(tool("python"))
            .arg(script)
            .args([
                &url,
                "chat.v2",
                r#"{"action":"sendmessage","data":"py"}"#,
                "plain",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["subprotocol"], "chat.v2");
    assert_eq!(
        result["replies"],
        json!([r#"got:{"action":"sendmessage","data":"py"}"#, "plain"])
    );
    let id = connection_id(&origin);
    let disconnect = eventually(Duration::from_secs(5), || async {
        origin.requests_to("/disconnect").pop()
    })
    .await
    .expect("$disconnect after the client closed");
    assert_eq!(
        disconnect.header("x-edgeway-connection-id"),
        Some(id.as_str())
    );
}

/// `@connections` on the listener, as a backend calls it: boto3's `apigatewaymanagementapi`
/// client (which sends `%40connections`), signed with an access key from the store and
/// checked by the API's `connections_auth` authorizer; an unsigned call is refused.
#[tokio::test]
async fn boto3_manages_connections_through_the_listener_with_sigv4() {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let yaml = chat_config(&origin, &state, "connections_auth: iam").replace(
        "    stages: { prod: {} }\n",
        "    stages: { prod: {} }\n    authorizers:\n      iam: { sigv4: { regions: [eu-west-1] } }\n",
    );
    let gw = start(&yaml).await;
    let (status, created) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/access-keys",
            Some(json!({ "name": "chat-backend" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let mut ws = ws_connect(gw.addr("listen[0]"), "/prod", &[]).await.open();
    let id = connection_id(&origin);

    // Unsigned: refused before the registry is asked.
    let r = client()
        .post(gw.url(&format!("/prod/@connections/{id}")))
        .body("unsigned")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(ws_next(&mut ws, QUIET).await, None);

    let args = [
        gw.url("/prod"),
        "eu-west-1".to_owned(),
        created["id"].as_str().unwrap().to_owned(),
        created["secret_access_key"].as_str().unwrap().to_owned(),
        id.clone(),
    ];
    let script = workspace().join("tests/tools/connections_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(tool("python"))
            .arg(script)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(calls["post"], json!({ "status": 200 }), "{calls}");
    assert_eq!(
        calls["get"],
        json!({ "status": 200, "sourceIp": "127.0.0.1" }),
        "{calls}"
    );
    assert_eq!(calls["delete"], json!({ "status": 204 }), "{calls}");
    assert_eq!(
        calls["post_after"],
        json!({ "status": 410, "error": "GoneException" }),
        "{calls}"
    );
    assert_eq!(ws_recv(&mut ws).await, "from boto3");
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1000)
    );
}

/// A Lambda-style function (plugins/lambda-echo, which answers with the event it was given)
/// on `$connect` and `$default`: it gets API Gateway's WebSocket event, and its status decides
/// the upgrade.
#[tokio::test]
async fn functions_get_the_websocket_lambda_event() {
    let plugins = plugins_yaml(&[("fn", "lambda_echo", "role: lambda, timeout_ms: 3000")]);
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
{plugins}
apis:
  - name: chat
    protocol: websocket
    route_selection: "$request.body.action"
    stages: {{ prod: {{}} }}
    routes:
      - route: $connect
        integration: {{ function: {{ plugin: fn, payload: aws-proxy-1.0 }} }}
      - route: $default
        response: two-way
        integration: {{ function: {{ plugin: fn, payload: aws-proxy-1.0 }} }}
"#
    );
    let gw = Gateway::start(&yaml).await;
    let addr = gw.addr("listen[0]");

    // The function's status decides: 403 refuses the upgrade.
    let (status, _) = ws_connect(addr, "/prod?status=403", &[]).await.refused();
    assert_eq!(status, 403);

    let mut ws = ws_connect(addr, "/prod?room=7", &[("user-agent", "ws-test/2")])
        .await
        .open();
    ws_send(&mut ws, r#"{"action":"nosuch","n":1}"#).await;
    let answer: Value = serde_json::from_str(&ws_recv(&mut ws).await).unwrap();
    let event = &answer["event"];
    let context = &event["requestContext"];
    assert_eq!(context["routeKey"], "$default", "{event:#}");
    assert_eq!(context["eventType"], "MESSAGE");
    assert_eq!(context["messageDirection"], "IN");
    assert_eq!(context["stage"], "prod");
    assert_eq!(context["apiId"], "chat");
    assert_eq!(context["domainName"], "127.0.0.1");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["connectionId"].as_str().map(str::len), Some(16));
    assert_eq!(context["messageId"].as_str().map(str::len), Some(16));
    assert!(
        context["connectedAt"].as_u64().unwrap() <= context["requestTimeEpoch"].as_u64().unwrap()
    );
    assert_eq!(event["body"], r#"{"action":"nosuch","n":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert!(
        event.get("headers").is_none(),
        "a message carries no headers"
    );

    // Each message is its own event, on the same connection.
    ws_send(&mut ws, "second").await;
    let second: Value = serde_json::from_str(&ws_recv(&mut ws).await).unwrap();
    assert_eq!(
        second["event"]["requestContext"]["connectionId"],
        context["connectionId"]
    );
    assert_ne!(
        second["event"]["requestContext"]["messageId"],
        context["messageId"]
    );
    assert_eq!(second["event"]["body"], "second");
}

/// Edgeway pings; a peer that never answers is dropped after two intervals, and a connection
/// is closed at `max_duration_s` however busy it is. Both run `$disconnect`.
#[tokio::test]
async fn dead_peers_and_old_connections_are_closed() {
    let (origin, gw) = chat("ping_interval_s: 1, max_duration_s: 3").await;
    let addr = gw.addr("listen[0]");

    // A client that never reads never answers a ping: gone within about two intervals.
    let silent = ws_connect(addr, "/prod", &[]).await.open();
    assert_disconnects(&origin, 1).await;
    drop(silent);

    // A busy connection (it reads, so it answers pings) still ends at max_duration_s: 1001.
    let mut ws = ws_connect(addr, "/prod", &[]).await.open();
    let opened = std::time::Instant::now();
    let code = loop {
        ws_send(&mut ws, "busy").await;
        match ws_receive(&mut ws, Duration::from_secs(5)).await {
            Received::Message(reply) => assert_eq!(reply, "busy"),
            Received::Closed(code) => break code,
            Received::Nothing => panic!("neither a reply nor a close"),
        }
        assert!(
            opened.elapsed() < Duration::from_secs(10),
            "still open after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(2500),
        "closed after {lasted:?}"
    );
    assert_eq!(code, Some(1001));
    assert_disconnects(&origin, 2).await;
}

/// An `http` integration (mapping templates) on a WebSocket route: the template reads the
/// message and the WebSocket `$context` (connection id, route key, event type, message id).
#[tokio::test]
async fn mapping_templates_read_the_websocket_context() {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let yaml = chat_config(&origin, &state, "").replace(
        "      - route: oneway\n",
        r#"      - route: relay
        response: two-way
        integration:
          http:
            uri: "${origin}/messages"
            request_templates:
              application/json: '{"connection":"$context.connectionId","route":"$context.routeKey","event":"$context.eventType","message":"$context.messageId","said":$input.json(''$.data'')}'
      - route: oneway
"#,
    );
    let gw = start(&yaml).await;
    let mut ws = ws_connect(gw.addr("listen[0]"), "/prod", &[]).await.open();
    let id = connection_id(&origin);
    ws_send(&mut ws, r#"{"action":"relay","data":{"text":"hi"}}"#).await;
    let reply = ws_recv(&mut ws).await;
    let sent: Value = serde_json::from_str(reply.strip_prefix("got:").unwrap()).unwrap();
    assert_eq!(sent["connection"], id.as_str(), "{sent}");
    assert_eq!(sent["route"], "relay");
    assert_eq!(sent["event"], "MESSAGE");
    assert_eq!(sent["message"].as_str().map(str::len), Some(16));
    assert_eq!(sent["said"], json!({ "text": "hi" }));
}

/// WebSocket over HTTP/2 (RFC 8441): an extended CONNECT on an h2c connection runs `$connect`
/// like an upgrade (the integration, the subprotocol it picks), and the stream carries the
/// messages; the same integration's refusal refuses it.
#[tokio::test]
async fn websockets_open_over_http2_with_extended_connect() {
    let (origin, gw) = chat("").await;
    let addr = gw.addr("listen[0]");

    let (mut ws, headers) = ws_connect_h2(addr, "/prod", &[("sec-websocket-protocol", "chat.v2")])
        .await
        .unwrap();
    assert_eq!(headers["sec-websocket-protocol"], "chat.v2");
    let connect = origin.requests_to("/connect");
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0].method, "GET");
    ws_send(&mut ws, r#"{"action":"sendmessage","data":"over h2"}"#).await;
    assert_eq!(
        ws_recv(&mut ws).await,
        r#"got:{"action":"sendmessage","data":"over h2"}"#
    );
    ws_send(&mut ws, "echo me").await;
    assert_eq!(ws_recv(&mut ws).await, "echo me");
    ws.close(None).await.unwrap();
    assert_disconnects(&origin, 1).await;

    assert_eq!(
        ws_connect_h2(addr, "/prod?deny=1", &[]).await.err(),
        Some(403)
    );
}

/// A plugin authorizer on `$connect`: no token 401, a wrong one 403 (neither reaching the
/// integration), a good one 101 with the principal reaching the `$connect` integration in the
/// authorizer's `principal_header`; messages then flow.
#[tokio::test]
async fn authorizers_decide_the_upgrade() {
    let origin = origin().await;
    let state = unique_temp_dir("ws-state");
    let plugins = plugins_yaml(&[(
        "auth",
        "token_authorizer",
        "role: authorizer, config: { tokens: { chat-token: { principal: carol } } }",
    )]);
    let yaml = format!("{plugins}{}", chat_config(&origin, &state, ""))
        .replace(
            "    stages: { prod: {} }\n",
            "    stages: { prod: {} }\n    authorizers:\n      tok: { plugin: auth, identity_source: [header.authorization], principal_header: x-chat-user }\n",
        )
        .replace(
            "      - route: $connect\n",
            "      - route: $connect\n        auth: tok\n",
        );
    let gw = start(&yaml).await;
    let addr = gw.addr("listen[0]");

    let (status, _) = ws_connect(addr, "/prod", &[]).await.refused();
    assert_eq!(status, 401);
    let (status, _) = ws_connect(addr, "/prod", &[("authorization", "Bearer nope")])
        .await
        .refused();
    assert_eq!(status, 403);
    assert_eq!(
        origin.count_to("/connect"),
        0,
        "refused before the integration"
    );

    let mut ws = ws_connect(addr, "/prod", &[("authorization", "Bearer chat-token")])
        .await
        .open();
    let connect = origin.requests_to("/connect");
    assert_eq!(connect[0].header("x-chat-user"), Some("carol"));
    ws_send(&mut ws, r#"{"action":"sendmessage","data":"as carol"}"#).await;
    assert_eq!(
        ws_recv(&mut ws).await,
        r#"got:{"action":"sendmessage","data":"as carol"}"#
    );
}
