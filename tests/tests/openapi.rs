//! OpenAPI import, end to end: an API Gateway export (tests/golden/openapi/
//! petstore-rest.oas30.json) named by a config's `openapi:` serves through the real binary
//! with the behaviour each of its extensions asks for, and a change to the document reloads
//! it like a change to the config.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use edgeway_tests::*;
use serde_json::{Value, json};

fn petstore_document() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/openapi/petstore-rest.oas30.json");
    std::fs::read_to_string(path).unwrap()
}

/// An origin that says what it received and gives created pets an id.
async fn origin() -> Origin {
    Origin::start(|r: &Recorded| {
        let body = json!({
            "id": 7,
            "method": r.method.as_str(),
            "path": r.path_and_query(),
            "body": String::from_utf8_lossy(&r.body),
        });
        http::Response::builder()
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap()
    })
    .await
}

fn config(origin: &Origin) -> String {
    let plugins = plugins_yaml(&[
        ("token-authorizer", "lambda_authorizer", "role: lambda"),
        ("orders", "lambda_echo", "role: lambda"),
    ]);
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
state: {{ path: $DIR/state }}
{plugins}
apis:
  - name: petstore
    openapi:
      file: petstore.json
      functions:
        orders: orders
        arn:aws:lambda:us-east-1:123456789012:function:token-auth: token-authorizer
    stages:
      prod: {{ variables: {{ origin: "{origin}" }} }}
usage_plans:
  - {{ name: basic, apis: [petstore/prod] }}
"#,
        origin = origin.url()
    )
}

async fn start(origin: &Origin) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .file("petstore.json", petstore_document())
        .start(&config(origin))
        .await
}

/// Runs a command off the test's runtime threads (the origin answers on them).
async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Runs a command that must succeed: its stdout.
async fn run_ok(command: Command) -> Vec<u8> {
    let out = run(command).await;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn error_type(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-edgeway-error-type")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_api_gateway_export_serves_what_its_extensions_say() {
    let origin = origin().await;
    let gw = start(&origin).await;
    let c = client();

    // The import's warnings are logged, each with its JSON pointer.
    let warnings = gw.events("config warning");
    assert!(
        warnings
            .iter()
            .any(|w| w["fields"]["warning"].as_str().unwrap().contains(
                "#/paths/~1pets~1{petId}/get/x-amazon-apigateway-integration/cacheKeyParameters"
            )),
        "{warnings:?}"
    );

    // http_proxy with a required query parameter (the params-only validator).
    let r = c
        .get(gw.url("/prod/pets?type=dog&page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["path"], "/petstore/pets?type=dog&page=2");
    let r = c.get(gw.url("/prod/pets?page=2")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_type(&r).as_deref(), Some("BAD_REQUEST_PARAMETERS"));
    // DEFAULT_4XX adds its header and body to every 4xx without its own override.
    assert_eq!(r.headers()["x-error-source"], "gateway");
    let body = json_body(r).await;
    assert!(body["message"].as_str().unwrap().contains("type"), "{body}");
    assert_eq!(origin.count_to("/petstore/pets"), 1);

    // The path parameter renamed by requestParameters, behind the Lambda authorizer (a lambda
    // plugin returning an IAM policy: `allow` allows GETs, `deny` denies).
    let r = c.get(gw.url("/prod/pets/12")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.url("/prod/pets/12"))
        .header("authorization", "deny")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(gw.url("/prod/pets/12"))
        .header("authorization", "allow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["path"], "/petstore/pets/12");

    // The API key route: an unknown key gets INVALID_API_KEY as the document overrides it.
    let pet = r#"{"name": "Rex \"the dog\""}"#;
    let r = c
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/json")
        .header("x-api-key", "not-a-key-0123456789abcdefghij")
        .body(pet)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        json_body(r).await,
        json!({"message": "Bad api-key", "id": id})
    );
    let (status, key) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({"name": "tester", "plan": "basic"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let key = key["value"].as_str().unwrap().to_owned();

    // The body validator (the NewPet model, its $ref and nullable brought along).
    let r = c
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/json")
        .header("x-api-key", &key)
        .body(r#"{"name": "", "tag": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_type(&r).as_deref(), Some("BAD_REQUEST_BODY"));
    let r = c
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/json")
        .header("x-api-key", &key)
        .body(r#"{"name": "Rex", "tag": null, "owner": {"email": 5}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the referenced Owner schema applies");
    assert_eq!(
        origin.count_to("/petstore/pets"),
        1,
        "refused bodies never reach the origin"
    );

    // The mapped http integration: the request template, then the 2\d{2} response.
    let r = c
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/json")
        .header("x-api-key", &key)
        .body(pet)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-pet-id"], "7");
    assert_eq!(json_body(r).await, json!({"created": 7}));
    let seen = origin.requests_to("/petstore/pets").pop().unwrap();
    assert_eq!(seen.method, "POST");
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent, json!({"name": "Rex \"the dog\"", "stage": "prod"}));
    // passthroughBehavior: never refuses an unmapped content type.
    let r = c
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/vnd.pet+json")
        .header("x-api-key", &key)
        .body(pet)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // The mock, with its static response header.
    let r = c.get(gw.url("/prod/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock"], "yes");
    assert_eq!(json_body(r).await, json!({"status": "ok"}));

    // x-amazon-apigateway-any-method on a greedy path.
    let r = c
        .delete(gw.url("/prod/files/a/b.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(
        (&body["method"], &body["path"]),
        (&json!("DELETE"), &json!("/files/a/b.txt"))
    );

    // aws_proxy: the Lambda ARN mapped to a lambda plugin, given API Gateway's proxy event.
    let r = c
        .post(gw.url("/prod/orders"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["event"]["httpMethod"], "POST", "{body}");
    assert_eq!(body["event"]["resource"], "/orders");
    assert_eq!(body["event"]["body"], "{}");

    // x-amazon-apigateway-cors: preflights answered by the gateway.
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/prod/pets"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-max-age"], "600");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_document_reloads_and_a_broken_one_is_refused() {
    let origin = origin().await;
    let gw = start(&origin).await;
    let c = client();
    let r = c.get(gw.url("/prod/health")).send().await.unwrap();
    assert_eq!(json_body(r).await, json!({"status": "ok"}));

    // Editors and deploy tools replace the file: write a sibling, rename it over.
    let replace = |text: String| {
        let tmp = gw.dir.join(".petstore.json.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, gw.dir.join("petstore.json")).unwrap();
    };
    let generation = gw.generation();
    replace(petstore_document().replace(r#"{\"status\": \"ok\"}"#, r#"{\"status\": \"changed\"}"#));
    gw.wait_event("config reloaded", Duration::from_secs(10), |e| {
        e["fields"]["generation"].as_u64() > Some(generation)
    })
    .await;
    let r = c.get(gw.url("/prod/health")).send().await.unwrap();
    assert_eq!(json_body(r).await, json!({"status": "changed"}));

    // A document that no longer imports is refused with where and why; the API keeps serving.
    replace(petstore_document().replace(r#""type": "mock""#, r#""type": "vpc""#));
    let refused = gw
        .wait_event("config refused", Duration::from_secs(10), |_| true)
        .await;
    let why = refused["fields"]["error"].as_str().unwrap();
    assert!(
        why.contains("#/paths/~1health/get/x-amazon-apigateway-integration/type: unknown integration type \"vpc\""),
        "{why}"
    );
    let r = c.get(gw.url("/prod/health")).send().await.unwrap();
    assert_eq!(json_body(r).await, json!({"status": "changed"}));
}

/// The test config with docs on `prod`, and on `internal`, a stage only 10.0.0.0/8 may call.
fn docs_config(origin: &Origin) -> String {
    let config = config(origin);
    let prod = config
        .lines()
        .find(|l| l.trim_start().starts_with("prod: {"))
        .unwrap()
        .to_owned();
    let internal = prod.replace(
        "prod: {",
        "internal: { policy: { allow: [10.0.0.0/8] }, docs: {},",
    );
    config.replace(
        &prod,
        &format!(
            "{}\n{internal}",
            prod.replace("prod: {", "prod: { docs: {},")
        ),
    )
}

/// A stage with `docs: {}` serves a Swagger UI page that a real browser renders with the API's
/// operations; the admin API exports the API with or without API Gateway's extensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_in_chromium_and_the_admin_api_exports() {
    let origin = origin().await;
    let gw = Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .file("petstore.json", petstore_document())
        .start(&docs_config(&origin))
        .await;

    let document = json_body(
        client()
            .get(gw.url("/prod/docs/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(document["servers"][0]["url"], "/prod");
    // A stage's source-IP policy covers its docs as it covers its routes.
    let r = client()
        .get(gw.url("/internal/docs/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_type(&r).as_deref(), Some("ACCESS_DENIED"));
    assert!(
        !document.to_string().contains("x-amazon-apigateway"),
        "a public docs page shows no integrations: {document}"
    );

    let screenshot = gw.dir.join("docs.png");
    let mut node = Command::new("node");
    node.arg(tools_dir().join("docs-page.mjs"))
        .arg(gw.url("/prod/docs"))
        .arg(&screenshot);
    let out = run_ok(node).await;
    let seen: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(seen["title"], "petstore");
    assert_eq!(seen["errors"], json!([]), "the page logged errors");
    let operations: Vec<String> = seen["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["method"].as_str().unwrap(),
                o["path"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "GET /pets",
        "POST /pets",
        "GET /pets/{petId}",
        "GET /health",
        "DELETE /files/{proxy}",
        "POST /orders",
    ] {
        assert!(
            operations.iter().any(|o| o == expected),
            "{expected} not in {operations:?}"
        );
    }
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);

    // The admin API: the same export `edgeway export` makes, as the generation serves it.
    let (status, with) = gw
        .admin(
            reqwest::Method::GET,
            "/admin/apis/petstore/openapi?stage=prod",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        with["paths"]["/pets/{petId}"]["get"]["x-amazon-apigateway-integration"]["type"],
        "http_proxy"
    );
    let (status, plain) = gw
        .admin(
            reqwest::Method::GET,
            "/admin/apis/petstore/openapi?extensions=none&stage=prod",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(plain, document);
    let (status, missing) = gw
        .admin(reqwest::Method::GET, "/admin/apis/nope/openapi", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(missing["apis"], json!(["petstore"]));
}

/// `edgeway sdk` with the test tools on `PATH`, from the gateway's own config.
fn sdk(gw: &Gateway, lang: &str, out: &std::path::Path) {
    let path = format!(
        "{}:{}:{}",
        tools_dir().join("node_modules/.bin").display(),
        tool("openapi-python-client").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let done = Command::new(edgeway_bin())
        .args(["sdk", "--lang", lang, "--config"])
        .arg(&gw.config_path)
        .args(["--server-url", gw.url("").trim_end_matches('/'), "--out"])
        .arg(out)
        .env("PATH", path)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

async fn api_key(gw: &Gateway) -> String {
    let (status, key) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({"name": "sdk", "plan": "basic"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["value"].as_str().unwrap().to_owned()
}

/// The TypeScript client type-checks with `tsc` (and a wrong call does not), and its calls
/// reach the gateway with the API key wired in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_type_checks_and_calls_the_gateway() {
    let origin = origin().await;
    let gw = start(&origin).await;
    let key = api_key(&gw).await;
    let out = gw.dir.join("ts-client");
    sdk(&gw, "typescript", &out);
    std::os::unix::fs::symlink(tools_dir().join("node_modules"), out.join("node_modules")).unwrap();
    std::fs::write(
        out.join("main.ts"),
        format!(
            r#"import {{ createApiClient }} from "./client.js";
const client = createApiClient({{ apiKey: {key:?} }});
const pets = await client.GET("/pets", {{ params: {{ query: {{ type: "dog" }} }} }});
const created = await client.POST("/pets", {{ body: {{ name: "Rex", tag: null }} }});
const pet = await client.GET("/pets/{{petId}}", {{ params: {{ path: {{ petId: "3" }} }} }});
console.log(JSON.stringify({{ pets: pets.response.status, created: created.response.status, pet: pet.response.status }}));
"#
        ),
    )
    .unwrap();
    let tsc = tools_dir().join("node_modules/.bin/tsc");
    let mut check = Command::new(&tsc);
    check.args(["-p", "."]).current_dir(&out);
    run_ok(check).await;
    let mut node = Command::new("node");
    node.arg("dist/main.js").current_dir(&out);
    let ran = run_ok(node).await;
    let statuses: Value = serde_json::from_slice(&ran).unwrap();
    // The token authorizer guards GET /pets/{petId}: the client reached it without a token.
    assert_eq!(statuses, json!({"pets": 200, "created": 201, "pet": 401}));
    assert_eq!(origin.requests_to("/petstore/pets").len(), 2);

    // The types are the API's: a misspelt parameter does not compile.
    std::fs::write(
        out.join("wrong.ts"),
        "import { createApiClient } from \"./client.js\";\nawait createApiClient().GET(\"/pets\", { params: { query: { kind: \"dog\" } } });\n",
    )
    .unwrap();
    let mut check = Command::new(&tsc);
    check.args(["-p", ".", "--noEmit"]).current_dir(&out);
    let wrong = run(check).await;
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("wrong.ts"));
}

/// The Python client imports, and its calls reach the gateway with the API key wired in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_imports_and_calls_the_gateway() {
    let origin = origin().await;
    let gw = start(&origin).await;
    let key = api_key(&gw).await;
    let out = gw.dir.join("py-client");
    sdk(&gw, "python", &out);
    let script = format!(
        r#"
import json
from petstore_client.edgeway_client import connect
from petstore_client.api.default import get_pets, post_pets
from petstore_client.models import NewPet
client = connect(api_key={key:?})
pets = get_pets.sync_detailed(client=client, type_="dog")
created = post_pets.sync_detailed(client=client, body=NewPet(name="Rex"))
print(json.dumps({{"pets": pets.status_code, "created": created.status_code}}))
"#
    );
    let mut python = Command::new(tool("python"));
    python.args(["-c", &script]).env("PYTHONPATH", &out);
    let ran = run_ok(python).await;
    let statuses: Value = serde_json::from_slice(&ran).unwrap();
    assert_eq!(statuses, json!({"pets": 200, "created": 201}));
    let sent = origin.requests_to("/petstore/pets").pop().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap(),
        json!({"name": "Rex", "stage": "prod"})
    );
}

/// Schemathesis (a contract tester) runs a bounded number of generated requests, valid and
/// not, against a running gateway with the API's exported document, and finds no server error
/// and no response the document does not allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let origin = origin().await;
    let gw = start(&origin).await;
    let key = api_key(&gw).await;
    let document = gw.dir.join("contract.json");
    let exported = Command::new(edgeway_bin())
        .args(["export", "--config"])
        .arg(&gw.config_path)
        .args(["--api", "petstore", "--extensions", "none", "--server-url"])
        .arg(gw.url("").trim_end_matches('/'))
        .arg("--out")
        .arg(&document)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let mut st = Command::new(tool("schemathesis"));
    st.arg("run")
        .arg(&document)
        .args(["--url", &gw.url("/prod")])
        .args(["--header", &format!("x-api-key: {key}")])
        .args(["--header", "authorization: allow"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "20",
            "--max-time",
            "40",
            "--seed",
            "7",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ])
        .arg("--report-dir")
        .arg(gw.dir.join("st-report"))
        .env("NO_COLOR", "1");
    let ran = run(st).await;
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    // It did run the operations (not an empty pass).
    assert!(stdout.contains("GET /pets"), "{stdout}");
    assert!(origin.request_count() > 0);
}

/// `edgeway import openapi` prints a definition that, pasted under `apis:`, validates.
#[test]
fn the_import_command_writes_a_definition_a_config_can_hold() {
    let dir = unique_temp_dir("edgeway-import");
    let doc = dir.join("petstore.json");
    std::fs::write(&doc, petstore_document()).unwrap();
    let out = Command::new(edgeway_bin())
        .args(["import", "openapi"])
        .arg(&doc)
        .args([
            "--function",
            "orders=orders",
            "--function",
            "token-auth=token-authorizer",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let api = String::from_utf8(out.stdout).unwrap();
    // The Lambda proxy integration: the function is given API Gateway's 1.0 event (a REST
    // export has no payloadFormatVersion).
    assert!(
        api.contains("plugin: orders") && api.contains("payload: aws-proxy-1.0"),
        "{api}"
    );
    assert!(api.starts_with("# Imported from"), "{api}");
    let plugins = plugins_yaml(&[
        ("token-authorizer", "lambda_authorizer", "role: lambda"),
        ("orders", "lambda_echo", "role: lambda"),
    ]);
    let api = api.replace(
        "  prod: {}",
        "  prod: { variables: { origin: \"http://127.0.0.1:9\" } }",
    );
    std::fs::write(
        dir.join("edgeway.yaml"),
        format!("listen: [{{ addr: 127.0.0.1:0 }}]\n{plugins}apis:\n{api}"),
    )
    .unwrap();
    let out = Command::new(edgeway_bin())
        .args(["validate", "-c"])
        .arg(dir.join("edgeway.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("edgeway.yaml")).unwrap()
    );

    // --strict refuses what would only be warned about, and writes nothing.
    let out = Command::new(edgeway_bin())
        .args(["import", "openapi", "--strict", "--out"])
        .arg(dir.join("strict.yaml"))
        .arg(&doc)
        .args([
            "--function",
            "orders=orders",
            "--function",
            "token-auth=token-authorizer",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused by --strict"));
    assert!(!dir.join("strict.yaml").exists());
}
