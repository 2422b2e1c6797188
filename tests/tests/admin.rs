//! Admin listener: /healthz, /readyz without a token; /admin/config only with the bearer token
//! from `token_env`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;
use serde_json::Value;

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

/// `GET /admin/openapi` is a valid OpenAPI document (openapi-spec-validator), and every
/// operation it lists is one the admin API routes: called with placeholder parameters and no
/// body, each answers something other than the router's own 404 and 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_documents_itself() {
    let gw = setup().await;
    let c = client();
    let get = |query: &str| {
        c.get(gw.admin_url(&format!("/admin/openapi{query}")))
            .bearer_auth(TOKEN)
            .send()
    };
    let r = get("").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    assert!(r.text().await.unwrap().starts_with("openapi: 3.0.3"));
    let r = get("?format=json").await.unwrap();
    assert_eq!(r.status(), 200);
    let document = json_body(r).await;
    assert_eq!(get("?format=xml").await.unwrap().status(), 400);

    let file = gw.dir.join("admin-openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let checked = std::process::Command::new(tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let router_miss = json!({"message": "Not Found"});
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "no-such-thing"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = c
                .request(method.clone(), gw.admin_url(&concrete))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            let generic = status == 405
                || (status == 404
                    && serde_json::from_str::<Value>(&body).ok() == Some(router_miss.clone()));
            assert!(
                !generic,
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    assert!(operations >= 35, "{operations} operations documented");
}
