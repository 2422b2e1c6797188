//! Plugins on routes, with the real binary and the components `scripts/build-plugins.sh`
//! builds: the Rust, JavaScript and Python authorizers (allow / 401 / 403 / 500, result
//! caching counted by the plugin's calls), a transform chain both ways, the function
//! integration, the host imports, and refusal of a component with the wrong world.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use edgeway_tests::*;

const TOKENS: &str = r#"config: { tokens: { abc: { principal: alice, context: { tier: gold } }, xyz: { principal: bob, context: { tier: silver } } } }"#;

fn config(origin: &Origin, plugins: &str, api_extra: &str, routes: &str) -> String {
    format!(
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
{api_extra}
    routes:
{routes}
"#,
        origin = origin.url()
    )
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("EDGEWAY_SECRET", "must-not-leak")
        .start(yaml)
        .await
}

/// A gateway with one authorizer plugin `component` guarding `GET /pets/{id}`.
async fn authorizer_gateway(origin: &Origin, component: &str, ttl: u64) -> Gateway {
    // A component that embeds a language runtime (JavaScript, Python) maps tens of MiB of
    // compiled code from the cache; its first call pages in what it runs and, on a cold page
    // cache with other gateways and test binaries busy on a 2-core machine, has been seen to
    // take over a second. As for any such plugin in production, give it a longer deadline.
    let timeout_ms = if component == "token_authorizer" {
        50
    } else {
        3000
    };
    let plugins = plugins_yaml(&[(
        "auth",
        component,
        &format!("role: authorizer, timeout_ms: {timeout_ms}, {TOKENS}"),
    )]);
    let api_extra = format!(
        "    authorizers:\n      tok: {{ plugin: auth, identity_source: [header.authorization], result_ttl_s: {ttl}, context_headers: {{ tier: x-tier, lang: x-lang }} }}"
    );
    let routes = r#"      - { route: "GET /pets/{id}", auth: tok, integration: { http_proxy: "${origin}/pets/{id}" } }
      - { route: GET /open, integration: { http_proxy: "${origin}/open" } }"#;
    start(&config(origin, &plugins, &api_extra, routes)).await
}

/// Allow → the origin sees the principal and context headers (not the client's forgeries);
/// unknown token → 403 with the plugin's message; no identity → 401 without a plugin call.
async fn check_authorizer(component: &str, lang: Option<&str>) {
    let origin = Origin::echo().await;
    let gw = authorizer_gateway(&origin, component, 300).await;
    let admin = gw.admin_url("");

    let r = client()
        .get(gw.url("/prod/pets/7"))
        .header("authorization", "Bearer abc")
        .header("x-edgeway-principal", "forged")
        .header("x-tier", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{component}: {}", r.text().await.unwrap());
    let seen = origin.single_request();
    assert_eq!(seen.path_and_query(), "/pets/7");
    assert_eq!(seen.header_all("x-edgeway-principal"), vec!["alice"]);
    assert_eq!(seen.header_all("x-tier"), vec!["gold"]);
    assert_eq!(seen.header("x-lang"), lang, "{component}: x-lang");

    let r = client()
        .get(gw.url("/prod/pets/7"))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 403, "token not recognised", "ACCESS_DENIED").await;

    let calls = plugin_calls(&admin, "auth").await;
    assert_eq!(calls, 2, "{component}: one call per distinct identity");
    let r = client().get(gw.url("/prod/pets/7")).send().await.unwrap();
    assert_gateway_error(r, 401, "Unauthorized", "UNAUTHORIZED").await;
    assert_eq!(
        plugin_calls(&admin, "auth").await,
        calls,
        "{component}: a missing identity source must not call the plugin"
    );
    assert_eq!(
        origin.request_count(),
        1,
        "only the allowed request reached the origin"
    );

    // On a route without `auth`, the API's principal headers are still the gateway's own.
    let r = client()
        .get(gw.url("/prod/open"))
        .header("x-edgeway-principal", "forged")
        .header("x-tier", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let open = origin.requests().pop().unwrap();
    assert_eq!(open.path_and_query(), "/open");
    assert_eq!(
        open.header("x-edgeway-principal"),
        None,
        "{component}: forged principal"
    );
    assert_eq!(open.header("x-tier"), None, "{component}: forged context");
}

#[tokio::test]
async fn rust_token_authorizer_allows_denies_and_401s() {
    check_authorizer("token_authorizer", None).await;
}

#[tokio::test]
async fn javascript_authorizer_allows_denies_and_401s() {
    check_authorizer("js_authorizer", Some("js")).await;
}

#[tokio::test]
async fn python_authorizer_allows_denies_and_401s() {
    check_authorizer("py_authorizer", Some("python")).await;
}

#[tokio::test]
async fn authorizer_results_are_cached_per_identity() {
    let origin = Origin::echo().await;
    let gw = authorizer_gateway(&origin, "token_authorizer", 300).await;
    let admin = gw.admin_url("");
    for token in ["abc", "abc", "abc", "xyz", "abc", "xyz", "wrong", "wrong"] {
        client()
            .get(gw.url("/prod/pets/1"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
    }
    // Three identities: three calls; the deny is cached like the allows.
    assert_eq!(plugin_calls(&admin, "auth").await, 3);
    let listed = &admin_plugins(&admin).await["auth"];
    assert_eq!(listed["role"], "authorizer");
    assert_eq!(
        listed["version"].as_str().map(str::len),
        Some(64),
        "{listed}"
    );
    assert!(
        listed["loaded_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{listed}"
    );
    let (p50, p99) = (
        listed["stats"]["p50_us"].as_f64().unwrap(),
        listed["stats"]["p99_us"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "call times {p50} / {p99} µs");
    assert_eq!(listed["stats"]["failures"], 0);
    assert_eq!(origin.request_count(), 6);

    let origin = Origin::echo().await;
    let gw = authorizer_gateway(&origin, "token_authorizer", 0).await;
    for _ in 0..5 {
        let r = client()
            .get(gw.url("/prod/pets/1"))
            .header("authorization", "Bearer abc")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        plugin_calls(&gw.admin_url(""), "auth").await,
        5,
        "result_ttl_s: 0 calls every time"
    );
}

#[tokio::test]
async fn failing_authorizer_is_500_and_counted_and_fails_closed() {
    let origin = Origin::echo().await;
    // The token authorizer refuses a config without `tokens`: every call returns an error.
    let plugins = plugins_yaml(&[(
        "auth",
        "token_authorizer",
        "role: authorizer, config: { wrong: 1 }",
    )]);
    let api_extra =
        "    authorizers:\n      tok: { plugin: auth, identity_source: [header.authorization] }";
    let routes =
        r#"      - { route: GET /x, auth: tok, integration: { http_proxy: "${origin}/x" } }"#;
    let gw = start(&config(&origin, &plugins, api_extra, routes)).await;
    for _ in 0..3 {
        let r = client()
            .get(gw.url("/prod/x"))
            .header("authorization", "Bearer abc")
            .send()
            .await
            .unwrap();
        assert_gateway_error(r, 500, "Internal server error", "AUTHORIZER_FAILURE").await;
    }
    let stats = &admin_plugins(&gw.admin_url("")).await["auth"]["stats"];
    assert_eq!(stats["calls"], 3, "failures are not cached: {stats}");
    assert_eq!(stats["failures"], 3);
    assert_eq!(
        origin.request_count(),
        0,
        "an authorizer failure fails closed"
    );
}

#[tokio::test]
async fn transform_chain_changes_headers_both_ways() {
    let origin = Origin::start(|_req| {
        let mut r = http::Response::new(full("ok"));
        r.headers_mut()
            .insert("server", "origin/1".parse().unwrap());
        r.headers_mut()
            .insert("x-internal", "secret".parse().unwrap());
        r
    })
    .await;
    let first = r#"role: transformer, config: { request: { rename: { x-old: x-renamed }, remove: [cookie], set: { x-env: prod } }, response: { remove: [server], add: { x-chain: first } } }"#;
    let second = r#"role: transformer, config: { request: { set: { x-env: staging }, add: { x-seen: second } }, response: { rename: { x-internal: x-public }, add: { x-chain: second } } }"#;
    let plugins = plugins_yaml(&[
        ("first", "header_rewrite", first),
        ("second", "header_rewrite", second),
    ]);
    let routes = r#"      - { route: GET /t, request_transforms: [first, second], response_transforms: [first, second], integration: { http_proxy: "${origin}/t" } }"#;
    let gw = start(&config(&origin, &plugins, "", routes)).await;

    let r = client()
        .get(gw.url("/prod/t"))
        .header("x-old", "value")
        .header("cookie", "session=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert!(h.get("server").is_none(), "first removed server");
    assert_eq!(
        h.get("x-public").unwrap(),
        "secret",
        "second renamed x-internal"
    );
    assert!(h.get("x-internal").is_none());
    let chain: Vec<_> = h
        .get_all("x-chain")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        ["first", "second"],
        "response transforms run in order"
    );
    assert_eq!(r.text().await.unwrap(), "ok");

    let seen = origin.single_request();
    assert_eq!(seen.header("x-renamed"), Some("value"));
    assert_eq!(seen.header("x-old"), None);
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(
        seen.header_all("x-env"),
        vec!["staging"],
        "second's set wins"
    );
    assert_eq!(seen.header("x-seen"), Some("second"));
}

#[tokio::test]
async fn function_integration_answers_from_the_handler() {
    let origin = Origin::echo().await;
    let plugins = plugins_yaml(&[
        (
            "auth",
            "token_authorizer",
            &format!("role: authorizer, {TOKENS}"),
        ),
        ("echo", "echo_function", "role: handler, body: true"),
        (
            "echo-some",
            "echo_function",
            "role: handler, headers: [x-keep]",
        ),
    ]);
    let api_extra =
        "    authorizers:\n      tok: { plugin: auth, identity_source: [header.authorization] }";
    let routes = r#"      - { route: "POST /fn/{id}", auth: tok, integration: { function: echo } }
      - { route: GET /some, integration: { function: echo-some } }"#;
    let gw = start(&config(&origin, &plugins, api_extra, routes)).await;

    let r = client()
        .post(gw.url("/prod/fn/42?q=1"))
        .header("authorization", "Bearer xyz")
        .body("hello plugin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let v = json_body(r).await;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/prod/fn/42");
    assert_eq!(v["query"], "q=1");
    assert_eq!(v["path_params"], json!({ "id": "42" }));
    assert_eq!(v["stage_variables"], json!({ "tier": "live" }));
    assert_eq!(
        (v["api"].as_str(), v["stage"].as_str()),
        (Some("shop"), Some("prod"))
    );
    assert_eq!(v["route"], "POST /fn/{id}");
    assert_eq!(v["request_id"], rid.as_str());
    assert_eq!(v["source_ip"], "127.0.0.1");
    assert_eq!(
        v["principal"],
        json!({ "id": "bob", "context": { "tier": "silver" } })
    );
    assert_eq!(v["body"], "hello plugin");
    assert_eq!(
        origin.request_count(),
        0,
        "a function route does not call the origin"
    );

    // A handler whose config names headers is given those only.
    let r = client()
        .get(gw.url("/prod/some"))
        .header("x-keep", "1")
        .header("x-drop", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(r).await["headers"], json!([["x-keep", "1"]]));
}

#[tokio::test]
async fn host_imports_kv_metrics_config_log_and_allowlisted_http() {
    let origin = Origin::echo().await;
    let allowed = origin.url().trim_start_matches("http://").to_owned();
    let plugins = plugins_yaml(&[
        (
            "kv",
            "test_kv",
            &format!("role: handler, allowed_hosts: [\"{allowed}\"], config: {{ greeting: hi }}"),
        ),
        ("kv-closed", "test_kv", "role: handler"),
    ]);
    let routes = "      - { route: GET /kv, integration: { function: kv } }\n      - { route: GET /closed, integration: { function: kv-closed } }";
    let gw = start(&config(&origin, &plugins, "", routes)).await;

    for want in 1..=3 {
        let v = json_body(client().get(gw.url("/prod/kv")).send().await.unwrap()).await;
        assert_eq!(v["hits"], want, "kv keeps the counter across calls: {v}");
        assert_eq!(v["config"], json!({ "greeting": "hi" }));
    }
    // Each plugin has its own key space.
    let v = json_body(client().get(gw.url("/prod/closed")).send().await.unwrap()).await;
    assert_eq!(v["hits"], 1);

    let fetch = format!("{}/inside?x=1", origin.url());
    let v = json_body(
        client()
            .get(gw.url("/prod/kv"))
            .query(&[("fetch", fetch.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["fetch"]["status"], 200, "{v}");
    let seen = origin.single_request();
    assert_eq!(seen.path_and_query(), "/inside?x=1");
    assert_eq!(seen.header("x-from-plugin"), Some("test-kv"));

    // Not on the allowlist: refused by the host, nothing sent.
    let v = json_body(
        client()
            .get(gw.url("/prod/closed"))
            .query(&[("fetch", fetch.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        v["fetch"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("allowed_hosts")),
        "{v}"
    );
    assert_eq!(origin.request_count(), 1);

    let plugins = admin_plugins(&gw.admin_url("")).await;
    assert_eq!(plugins["kv"]["counters"]["calls"], 4);
    let logged = gw
        .wait_event("test-kv: hits=3", std::time::Duration::from_secs(5), |_| {
            true
        })
        .await;
    assert_eq!(logged["fields"]["plugin"], "kv");
}

#[test]
fn a_component_with_the_wrong_world_or_a_missing_plugin_is_a_config_error() {
    let dir = unique_temp_dir("edgeway-plugin-validate");
    let write = |yaml: &str| {
        let path = dir.join("edgeway.yaml");
        std::fs::write(&path, yaml).unwrap();
        Command::new(edgeway_bin())
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let base = |plugins: &str, route: &str| {
        format!(
            "listen: [{{ addr: 127.0.0.1:0 }}]\n{plugins}apis:\n  - name: a\n    stages: {{ prod: {{}} }}\n    routes:\n      - {route}\n"
        )
    };
    // A handler component loaded as a transformer: refused when linking, with the reason.
    let out = write(&base(
        &plugins_yaml(&[("t", "echo_function", "role: transformer")]),
        "{ route: GET /x, request_transforms: [t], integration: { mock: {} } }",
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("plugins: t: does not export the `transformer` world"),
        "{stderr}"
    );
    // A route naming a plugin that is not loaded, and one of the wrong role.
    let out = write(&base(
        &plugins_yaml(&[("echo", "echo_function", "role: handler")]),
        "{ route: GET /x, request_transforms: [echo, ech], integration: { function: echoo } }",
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("plugin \"echo\" is a handler, not a transformer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no plugin named \"ech\" in plugins.load; did you mean \"echo\"?"),
        "{stderr}"
    );
    assert!(stderr.contains("no plugin named \"echoo\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
