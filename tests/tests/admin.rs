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

/// API keys and access keys are served by one collection shape: the same statuses and messages
/// for a bad body, an unknown id, a delete and a method the collection does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_collections_answer_alike() {
    let state = unique_temp_dir("edgeway-admin-state");
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: http://127.0.0.1:9
state: {{ path: {state} }}
apis:
  - name: shop
    stages: {{ prod: {{}} }}
    routes:
      - route: GET /pets
        integration: {{ mock: {{ status: 200 }} }}
usage_plans:
  - {{ name: basic, apis: [shop/prod] }}
"#,
        state = state.display()
    );
    let gw = Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&yaml)
        .await;
    use reqwest::Method;
    for (path, item, new_item, list, create) in [
        (
            "/admin/keys",
            "API key",
            "key",
            "keys",
            json!({"name": "alice", "plan": "basic"}),
        ),
        (
            "/admin/access-keys",
            "access key",
            "access key",
            "access_keys",
            json!({"name": "ci"}),
        ),
    ] {
        let (status, body) = gw
            .admin(Method::POST, path, Some(json!("not an object")))
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        let text = body["message"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("invalid {new_item}: ")),
            "{path}: {text}"
        );

        let (status, created) = gw.admin(Method::POST, path, Some(create)).await;
        assert_eq!(status, 201, "{path}: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (status, listed) = gw.admin(Method::GET, path, None).await;
        assert_eq!(status, 200);
        assert_eq!(
            listed[list].as_array().unwrap().len(),
            1,
            "{path}: {listed}"
        );
        let one = format!("{path}/{id}");
        let (status, got) = gw.admin(Method::GET, &one, None).await;
        assert_eq!((status, &got["id"]), (200, &json!(id)), "{path}");

        let (status, body) = gw
            .admin(Method::PATCH, &one, Some(json!({"colour": 1})))
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        let text = body["message"].as_str().unwrap();
        assert!(text.starts_with("invalid change: "), "{path}: {text}");
        let (status, changed) = gw
            .admin(Method::PATCH, &one, Some(json!({"enabled": false})))
            .await;
        assert_eq!(
            (status, &changed["enabled"]),
            (200, &json!(false)),
            "{path}"
        );

        let missing = json!({ "message": format!("no {item} with id \"nope\"") });
        let gone = format!("{path}/nope");
        assert_eq!(
            gw.admin(Method::GET, &gone, None).await,
            (404, missing.clone())
        );
        assert_eq!(
            gw.admin(Method::PATCH, &gone, Some(json!({"enabled": true})))
                .await,
            (404, missing.clone())
        );
        assert_eq!(gw.admin(Method::DELETE, &gone, None).await, (404, missing));

        assert_eq!(
            gw.admin(Method::DELETE, &one, None).await,
            (200, json!({ "deleted": id }))
        );
        let (status, _) = gw.admin(Method::GET, &one, None).await;
        assert_eq!(status, 404, "{path}: deleted");
        assert_eq!(
            gw.admin(Method::PUT, &one, Some(json!({}))).await,
            (405, json!({"message": "Method Not Allowed"}))
        );
    }
    let _ = std::fs::remove_dir_all(state);
}
