//! Admin listener: /healthz, /readyz without a token; /admin/config only with the bearer token
//! from `token_env`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;

const TOKEN: &str = "s3cret-admin-token-4711";

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
admin: { addr: 127.0.0.1:0, token_env: EDGEWAY_TEST_ADMIN_TOKEN }
origin: http://127.0.0.1:9
apis:
  - name: petstore
    stages:
      prod: { variables: { version: v1 } }
    routes:
      - route: GET /health
        integration: { mock: { status: 200, body: ok } }
"#;

async fn setup() -> Gateway {
    Gateway::builder()
        .env("EDGEWAY_TEST_ADMIN_TOKEN", TOKEN)
        .start(CONFIG)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz() {
    let gw = setup().await;
    let r = client().get(gw.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await, json!({"status": "ok"}));
    let r = client().get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await, json!({"status": "ready"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_config_requires_the_bearer_token() {
    let gw = setup().await;
    let c = client();
    let url = gw.admin_url("/admin/config");

    for auth in [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer ".to_string()),
    ] {
        let mut req = c.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "Authorization {auth:?}");
        let body = json_body(r).await;
        assert_eq!(
            body,
            json!({"message": "Unauthorized"}),
            "Authorization {auth:?}"
        );
    }

    let r = c
        .get(&url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(TOKEN),
        "the admin token leaks in /admin/config: {text}"
    );
    let cfg: serde_json::Value = serde_json::from_str(&text).expect("config as JSON");
    assert_eq!(cfg["apis"][0]["name"], "petstore", "active config: {cfg}");
    assert_eq!(
        cfg["apis"][0]["routes"][0]["route"], "GET /health",
        "active config: {cfg}"
    );
    assert_eq!(
        cfg["apis"][0]["stages"]["prod"]["variables"]["version"],
        "v1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_are_not_on_the_data_listener() {
    let gw = setup().await;
    let r = client()
        .get(gw.url("/admin/config"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
