//! API keys with the real binary: the lifecycle through `edgeway keys` (the CLI) and the admin
//! API, the 403s a route with `api_key_required` gives (missing, unknown, disabled, deleted,
//! or a key whose plan does not cover the stage) with nothing reaching the origin, CSV import
//! in API Gateway's format, keys returned by an authorizer, and keys surviving `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use edgeway_tests::*;
use serde_json::Value;

fn config(origin: &Origin, state_dir: &std::path::Path, plugins: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
{plugins}
apis:
  - name: shop
    stages: {{ prod: {{}}, beta: {{}} }}
    routes:
      - route: GET /pets
        api_key_required: true
        integration: {{ http_proxy: "${{origin}}/pets" }}
      - route: GET /open
        integration: {{ http_proxy: "${{origin}}/open" }}
usage_plans:
  - {{ name: basic, apis: [shop/prod] }}
  - {{ name: beta-testers, apis: [shop/beta, shop/prod] }}
"#,
        origin = origin.url(),
        state = state_dir.display(),
    )
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await
}

/// Runs `edgeway keys --admin URL ARGS...`; exit success and stdout as JSON (or text).
fn cli(gw: &Gateway, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(edgeway_bin())
        .arg("keys")
        .arg("--admin")
        .arg(gw.admin_url(""))
        .arg("--token-env")
        .arg("ADMIN_TOKEN")
        .args(args)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

async fn get(gw: &Gateway, path: &str, key: Option<&str>) -> (u16, String, Option<String>) {
    let mut req = client().get(gw.url(path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("x-edgeway-error-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), kind)
}

/// A 403 `{"message":"Forbidden"}` of type INVALID_API_KEY, and the origin saw nothing new.
async fn assert_forbidden(gw: &Gateway, origin: &Origin, path: &str, key: Option<&str>) {
    let before = origin.request_count();
    let (status, body, kind) = get(gw, path, key).await;
    assert_eq!(status, 403, "{path} with {key:?}: {body}");
    assert_eq!(body, r#"{"message":"Forbidden"}"#);
    assert_eq!(kind.as_deref(), Some("INVALID_API_KEY"));
    assert_eq!(
        origin.request_count(),
        before,
        "a refused request reached the origin"
    );
}

async fn assert_allowed(gw: &Gateway, origin: &Origin, path: &str, key: &str) {
    let before = origin.request_count();
    let (status, body, _) = get(gw, path, Some(key)).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(origin.request_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_through_the_cli_and_the_admin_api() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-keys-state");
    let gw = start(&config(&origin, &state, "")).await;

    // Routes without the requirement need no key.
    assert_eq!(get(&gw, "/prod/open", None).await.0, 200);

    let (ok, created, text) = cli(&gw, &["create", "--name", "alice", "--plan", "basic"]);
    assert!(ok, "{text}");
    let value = created["value"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(value.len(), 40);
    assert_eq!(created["plan"], "basic");
    assert_eq!(created["enabled"], true);

    assert_allowed(&gw, &origin, "/prod/pets", &value).await;
    assert_forbidden(&gw, &origin, "/prod/pets", None).await;
    assert_forbidden(
        &gw,
        &origin,
        "/prod/pets",
        Some("no-such-key-0123456789abcdefgh"),
    )
    .await;
    // The plan covers prod, not beta.
    assert_forbidden(&gw, &origin, "/beta/pets", Some(&value)).await;

    // The value is shown once: never in listings, and no hash either.
    let (ok, listed, text) = cli(&gw, &["list"]);
    assert!(ok, "{text}");
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], id.as_str());
    assert!(!text.contains(&value), "a listing shows the key's value");
    assert!(keys[0].get("value").is_none() && keys[0].get("hash").is_none());

    let (ok, _, text) = cli(&gw, &["disable", &id]);
    assert!(ok, "{text}");
    assert_forbidden(&gw, &origin, "/prod/pets", Some(&value)).await;
    let (ok, _, text) = cli(&gw, &["enable", &id]);
    assert!(ok, "{text}");
    assert_allowed(&gw, &origin, "/prod/pets", &value).await;

    let (ok, _, text) = cli(&gw, &["set-plan", &id, "beta-testers"]);
    assert!(ok, "{text}");
    assert_allowed(&gw, &origin, "/beta/pets", &value).await;

    // Through the admin API: out of any plan, then back.
    let path = format!("/admin/keys/{id}");
    let (status, body) = gw
        .admin(
            reqwest::Method::PATCH,
            &path,
            Some(serde_json::json!({ "plan": null })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"], Value::Null);
    assert_forbidden(&gw, &origin, "/prod/pets", Some(&value)).await;
    let (status, body) = gw
        .admin(
            reqwest::Method::PATCH,
            &path,
            Some(serde_json::json!({ "plan": "basic" })),
        )
        .await;
    assert_eq!((status, &body["plan"]), (200, &Value::from("basic")));

    // Unknown plans and bad bodies are refused with a reason.
    let (ok, body, text) = cli(&gw, &["create", "--name", "bob", "--plan", "gold"]);
    assert!(!ok, "{text}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no usage plan named \"gold\""),
        "{text}"
    );
    let (status, _) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(serde_json::json!({ "nme": "x" })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .admin(
            reqwest::Method::PATCH,
            "/admin/keys/nope",
            Some(serde_json::json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 404);

    // CSV import in API Gateway's format: header names in any case and order.
    let csv = "Enabled,Name,key,UsageplanIds\ntrue,carol,apikey1234abcdefghij0123456789,\"basic\"\nfalse,dave,apikey1234abcdefghij0123456780,basic\n";
    let csv_path = state.join("keys.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let (ok, imported, text) = cli(&gw, &["import", csv_path.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert_eq!(imported["imported"], 2);
    assert_allowed(&gw, &origin, "/prod/pets", "apikey1234abcdefghij0123456789").await;
    assert_forbidden(
        &gw,
        &origin,
        "/prod/pets",
        Some("apikey1234abcdefghij0123456780"),
    )
    .await;
    // Importing a value that exists refuses the whole file.
    let again =
        "Name,Key\neve,apikey1234abcdefghij0123456781\ncarol2,apikey1234abcdefghij0123456789\n";
    std::fs::write(&csv_path, again).unwrap();
    let (ok, _, text) = cli(&gw, &["import", csv_path.to_str().unwrap()]);
    assert!(!ok && text.contains("already exists"), "{text}");
    assert_eq!(cli(&gw, &["list"]).1["keys"].as_array().unwrap().len(), 3);

    let (ok, _, text) = cli(&gw, &["delete", &id]);
    assert!(ok, "{text}");
    assert_forbidden(&gw, &origin, "/prod/pets", Some(&value)).await;
    let (status, _) = gw.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 404);

    // The admin API needs its token.
    let r = client()
        .get(gw.admin_url("/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_kill_9_and_restart() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-keys-state");
    let yaml = config(&origin, &state, "");
    let gw = start(&yaml).await;
    let (_, a, _) = cli(&gw, &["create", "--name", "kept", "--plan", "basic"]);
    let (_, b, _) = cli(&gw, &["create", "--name", "off", "--plan", "basic"]);
    let (ok, _, text) = cli(&gw, &["disable", b["id"].as_str().unwrap()]);
    assert!(ok, "{text}");
    gw.signal("KILL");
    drop(gw);

    let gw = start(&yaml).await;
    assert_allowed(&gw, &origin, "/prod/pets", a["value"].as_str().unwrap()).await;
    assert_forbidden(
        &gw,
        &origin,
        "/prod/pets",
        Some(b["value"].as_str().unwrap()),
    )
    .await;
    let listed = cli(&gw, &["list"]).1;
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"kept") && names.contains(&"off"));
}

/// With `api_key_source: authorizer`, the key is the `usage-key` the route's authorizer
/// returned, not a header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_can_supply_the_key() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-keys-state");
    let value = "authorizer-key-0123456789abcdefgh";
    let tokens = format!(
        "role: authorizer, config: {{ tokens: {{ good: {{ principal: p1, usage_key: {value} }}, keyless: {{ principal: p2 }} }} }}"
    );
    let plugins = plugins_yaml(&[("auth", "token_authorizer", &tokens)]);
    let yaml = config(&origin, &state, &plugins)
        .replace(
            "    stages: { prod: {}, beta: {} }",
            "    api_key_source: authorizer\n    authorizers:\n      tok: { plugin: auth, identity_source: [header.authorization] }\n    stages: { prod: {}, beta: {} }",
        )
        .replace("        api_key_required: true", "        api_key_required: true\n        auth: tok");
    let gw = start(&yaml).await;
    let (status, body) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(serde_json::json!({ "name": "from-authorizer", "plan": "basic", "value": value })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let call = |token: &'static str, header_key: Option<&'static str>| {
        let mut req = client()
            .get(gw.url("/prod/pets"))
            .header("authorization", format!("Bearer {token}"));
        if let Some(k) = header_key {
            req = req.header("x-api-key", k);
        }
        req.send()
    };
    assert_eq!(call("good", None).await.unwrap().status(), 200);
    // A header key does not count when the API takes keys from its authorizer.
    assert_eq!(call("keyless", Some(value)).await.unwrap().status(), 403);
    assert_eq!(origin.request_count(), 1);
}
