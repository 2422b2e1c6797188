//! Custom domains with the real binary and curl as the client: two domains with their own
//! certificates chosen by SNI (each from its own CA, so a wrong choice fails the handshake),
//! base path mappings including a multi-level one and the empty one, a wildcard domain, an
//! unmapped path refused with 403 before the origin hears of it, a private domain, the
//! listener's own `/{stage}/...` addressing beside them, `edgeway domains`, and a bad mapping
//! refused by `edgeway validate` and by a reload that keeps the running config.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;
use std::time::Duration;

use edgeway_tests::*;
use serde_json::Value;

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
  - addr: 127.0.0.1:0
    tls: { certs: [{ cert: $DIR/listener.pem, key: $DIR/listener.key }] }
admin: { addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }
origin: ORIGIN
apis:
  - name: petstore
    stages: { prod: {} }
    routes:
      - route: GET /pets/{id}
        integration: { http_proxy: "${origin}/petstore/pets/{id}" }
  - name: orders
    stages: { prod: {} }
    routes:
      - route: GET /items/{id}
        integration: { http_proxy: "${origin}/orders/items/{id}" }
  - name: site
    stages: { live: {} }
    routes:
      - route: GET /
        integration: { mock: { status: 200, headers: { content-type: text/plain }, body: home } }
      - route: GET /{proxy+}
        integration: { http_proxy: "${origin}/site/{proxy+}" }
domains:
  - name: api.example.test
    tls: { cert: $DIR/api.pem, key: $DIR/api.key }
    mappings:
      - { base_path: v1, api: petstore, stage: prod }
      - { base_path: orders/v2, api: orders, stage: prod }
      - { base_path: "", api: site, stage: live }
  - name: shop.example.test
    tls: { cert: $DIR/shop.pem, key: $DIR/shop.key }
    mappings:
      - { base_path: /v1/, api: petstore, stage: prod }
  - name: "*.tenants.test"
    tls: { cert: $DIR/tenants.pem, key: $DIR/tenants.key }
    mappings:
      - { base_path: "(none)", api: site, stage: live }
  - name: private.example.test
    policy: { allow: [10.0.0.0/8] }
    mappings:
      - { base_path: "", api: site, stage: live }
  - name: lan.example.test
    policy: { allow: [127.0.0.0/8] }
    mappings:
      - { base_path: "", api: site, stage: live }
"#;

/// curl with `args`: its exit status, stdout (with `--include`, the head too) and stderr.
fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "10"])
        .args(["--noproxy", "*"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An https request to `host` on the gateway's TLS listener, trusting only `ca`.
fn https(gw: &Gateway, ca: &str, host: &str, path: &str) -> (bool, String, String) {
    let port = gw.addr("listen[1]").port();
    let resolve = format!("{host}:{port}:127.0.0.1");
    let ca = gw.dir.join(ca);
    curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        &format!("https://{host}:{port}{path}"),
    ])
}

/// A plain-HTTP request to the gateway's first listener with this `Host`.
fn http(gw: &Gateway, host: &str, path: &str) -> (bool, String, String) {
    curl(&["--header", &format!("Host: {host}"), &gw.url(path)])
}

fn status(out: &str) -> u16 {
    out.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body(out: &str) -> &str {
    out.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

async fn start(origin: &Origin) -> (Gateway, [TestCa; 3]) {
    let cas = [
        TestCa::new("listener CA"),
        TestCa::new("api CA"),
        TestCa::new("shop CA"),
    ];
    let listener = cas[0].issue(&["listener.test"]);
    let api = cas[1].issue(&["api.example.test"]);
    let shop = cas[2].issue(&["shop.example.test"]);
    let tenants = cas[1].issue(&["*.tenants.test"]);
    let gw = Gateway::builder()
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .file("listener.pem", listener.cert_pem)
        .file("listener.key", listener.key_pem)
        .file("api.pem", api.cert_pem)
        .file("api.key", api.key_pem)
        .file("shop.pem", shop.cert_pem)
        .file("shop.key", shop.key_pem)
        .file("tenants.pem", tenants.cert_pem)
        .file("tenants.key", tenants.key_pem)
        .file("listener-ca.pem", cas[0].cert_pem.clone())
        .file("api-ca.pem", cas[1].cert_pem.clone())
        .file("shop-ca.pem", cas[2].cert_pem.clone())
        .start(&CONFIG.replace("ORIGIN", &origin.url()))
        .await;
    (gw, cas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_route_by_host_sni_and_base_path() {
    let origin = Origin::echo().await;
    let (gw, _cas) = start(&origin).await;

    // Each domain's own certificate, by SNI: each verifies against its CA only.
    let (ok, out, err) = https(&gw, "api-ca.pem", "api.example.test", "/v1/pets/7");
    assert!(ok && status(&out) == 200, "{out}\n{err}");
    let seen = origin.requests_to("/petstore/pets/7");
    assert_eq!(seen.len(), 1, "{out}");
    let host = format!("api.example.test:{}", gw.addr("listen[1]").port());
    assert_eq!(seen[0].header("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
    let (ok, out, err) = https(&gw, "shop-ca.pem", "shop.example.test", "/v1/pets/8");
    assert!(ok && status(&out) == 200, "{out}\n{err}");
    assert_eq!(origin.count_to("/petstore/pets/8"), 1);
    // The shop certificate is not the api one: trusting the other CA fails the handshake.
    let (ok, _, err) = https(&gw, "api-ca.pem", "shop.example.test", "/v1/pets/8");
    assert!(!ok, "shop.example.test verified against the api CA: {err}");
    // A name no domain has gets the listener's certificate, and `/{stage}/...` addressing.
    let (ok, out, err) = https(&gw, "listener-ca.pem", "listener.test", "/prod/pets/9");
    assert!(ok && status(&out) == 200, "{out}\n{err}");
    assert_eq!(origin.count_to("/petstore/pets/9"), 1);

    // The multi-level base path; the longest one wins over the empty one.
    let (_, out, _) = https(&gw, "api-ca.pem", "api.example.test", "/orders/v2/items/3");
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(origin.count_to("/orders/items/3"), 1);
    // The empty base path takes the rest, its root included.
    let (_, out, _) = https(&gw, "api-ca.pem", "api.example.test", "/");
    assert_eq!((status(&out), body(&out)), (200, "home"), "{out}");
    let (_, out, _) = https(&gw, "api-ca.pem", "api.example.test", "/about/team?x=1");
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(origin.count_to("/site/about/team"), 1);
    // `v10` is not under `v1`: the empty mapping has it.
    let (_, out, _) = https(&gw, "api-ca.pem", "api.example.test", "/v10/x");
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(origin.count_to("/site/v10/x"), 1);
    // A mapping serves its own API only: petstore has no `/items/{id}`.
    let before = origin.requests().len();
    let (_, out, _) = https(&gw, "api-ca.pem", "api.example.test", "/v1/items/3");
    assert_eq!(status(&out), 404, "{out}");

    // No mapping covers the path: API Gateway's bare 403, and the origin hears nothing.
    let (_, out, _) = https(&gw, "shop-ca.pem", "shop.example.test", "/v2/pets/1");
    assert_eq!(status(&out), 403, "{out}");
    assert_eq!(body(&out), r#"{"message":"Forbidden"}"#, "{out}");
    assert!(
        out.contains("x-edgeway-error-type: BASE_PATH_NOT_MAPPED"),
        "{out}"
    );
    let (_, out, _) = http(&gw, "shop.example.test", "/prod/pets/1");
    assert_eq!(
        status(&out),
        403,
        "the stage path is no way around a domain's mappings: {out}"
    );
    assert_eq!(
        origin.requests().len(),
        before,
        "refused requests reached the origin"
    );

    // The wildcard domain: any one label, with the wildcard certificate.
    let (ok, out, err) = https(&gw, "api-ca.pem", "acme.tenants.test", "/docs/a");
    assert!(ok && status(&out) == 200, "{out}\n{err}");
    assert_eq!(origin.count_to("/site/docs/a"), 1);
    let (_, out, _) = http(&gw, "Globex.Tenants.Test:80", "/");
    assert_eq!((status(&out), body(&out)), (200, "home"), "{out}");
    // Two labels are not the wildcard's: the listener's addressing, where `/docs` is no stage.
    let (_, out, _) = http(&gw, "a.b.tenants.test", "/docs/a");
    assert_eq!(status(&out), 404, "{out}");

    // A private domain refuses a source outside its policy; one that allows loopback serves.
    let (_, out, _) = http(&gw, "private.example.test", "/about");
    assert_eq!(status(&out), 403, "{out}");
    assert!(out.contains("x-edgeway-error-type: ACCESS_DENIED"), "{out}");
    assert_eq!(origin.count_to("/site/about"), 0);
    let (_, out, _) = http(&gw, "lan.example.test", "/about");
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(origin.count_to("/site/about"), 1);

    // The access log keeps the path the client sent, with the API and stage that served it.
    let log = gw.wait_access_log(1, Duration::from_secs(10)).await;
    assert!(
        log.iter().any(|l| l["path"] == "/orders/v2/items/3"
            && l["api"] == "orders"
            && l["stage"] == "prod"),
        "{log:?}"
    );

    // `edgeway domains`: a row per mapping for people, the admin API's JSON for scripts.
    let (ok, json) = gw.cli(&["domains", "--output", "json"]);
    assert!(ok, "{json}");
    let json: Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = json["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "*.tenants.test",
            "api.example.test",
            "lan.example.test",
            "private.example.test",
            "shop.example.test"
        ]
    );
    let api = &json["domains"][1];
    assert_eq!(api["mappings"][0]["base_path"], "orders/v2");
    assert_eq!(api["mappings"][2]["base_path"], "");
    assert_eq!(json["domains"][3]["private"], true);
    let (ok, table) = gw.cli(&["domains"]);
    assert!(ok, "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("DOMAIN") && lines[0].contains("BASE PATH"),
        "{table}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("api.example.test")
            && l.contains("/orders/v2")
            && l.contains("orders/prod")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_domain_is_refused_with_where_and_why_and_the_running_one_keeps_serving() {
    let origin = Origin::echo().await;
    let (gw, _cas) = start(&origin).await;
    let good = std::fs::read_to_string(&gw.config_path).unwrap();
    let bad = good
        .replace("api: orders, stage: prod", "api: orders, stage: prdo")
        .replace(
            "base_path: v1, api: petstore",
            "base_path: v1, api: petstor",
        )
        .replace("name: lan.example.test", "name: lan..example.test")
        .replace("/shop.pem", "/api.pem")
        .replace("/shop.key", "/api.key");

    let file = gw.dir.join("bad.yaml");
    std::fs::write(&file, &bad).unwrap();
    let out = Command::new(edgeway_bin())
        .args(["validate", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for expected in [
        "domains[0].mappings[1].stage",
        "API orders has no stage `prdo` (its stages: prod)",
        "domains[0].mappings[0].api",
        "did you mean `petstore`?",
        "domains[4].name",
        "invalid domain name \"lan..example.test\"",
        "domains[1].tls.cert",
        "does not cover shop.example.test",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.contains(&format!("{}:", file.display())) && text.contains(": domains[4].name"),
        "errors name their file and line: {text}"
    );

    // The same file given to the running node is refused; the domains keep serving.
    let generation = gw.generation();
    gw.replace_config(&bad);
    let event = gw
        .wait_event("config refused", Duration::from_secs(10), |_| true)
        .await;
    let error = event["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("API orders has no stage `prdo`"), "{event}");
    assert_eq!(gw.generation(), generation);
    let (ok, out, err) = https(&gw, "shop-ca.pem", "shop.example.test", "/v1/pets/1");
    assert!(ok && status(&out) == 200, "{out}\n{err}");

    // A good change to the domains reloads like any other: a new mapping serves at once.
    let (_, out, _) = https(&gw, "shop-ca.pem", "shop.example.test", "/v2/pets/1");
    assert_eq!(status(&out), 403, "{out}");
    gw.replace_config(&good.replace(
        "      - { base_path: /v1/, api: petstore, stage: prod }",
        "      - { base_path: /v1/, api: petstore, stage: prod }\n      - { base_path: v2, api: petstore, stage: prod }",
    ));
    gw.wait_event("config reloaded", Duration::from_secs(10), |e| {
        e["fields"]["generation"].as_u64() > Some(generation)
    })
    .await;
    let (ok, out, err) = https(&gw, "shop-ca.pem", "shop.example.test", "/v2/pets/1");
    assert!(ok && status(&out) == 200, "{out}\n{err}");
}
