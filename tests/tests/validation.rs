//! Request validation (issue 5), with the real binary: required path, query and header
//! parameters; bodies against JSON Schemas from a file, inline and by model name, drafts 4 and
//! 2020-12; `validate: body | parameters`; the body limit still applies. Every failure is a
//! 400 that lists what failed, and the origin receives nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;

/// Bodies larger than this are refused with 413 before any validation.
const MAX_BODY: usize = 4096;

/// A pet, as the `Pet` model (from `schemas/pet.json`) describes it. Draft 4 (no `$schema`).
const PET_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["name"],
  "properties": {
    "name": { "type": "string", "minLength": 1 },
    "age": { "type": "integer", "minimum": 0 },
    "tags": { "type": "array", "items": { "type": "string" } }
  },
  "additionalProperties": false
}"#;

/// An item, draft 2020-12, given to a route as `body: { file: schemas/item.json }`.
const ITEM_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["sku"],
  "properties": { "sku": { "type": "string", "pattern": "^[A-Z]{3}-[0-9]+$" } }
}"#;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
limits: { max_body_bytes: MAX_BODY }
apis:
  - name: shop
    models:
      Pet: { file: schemas/pet.json }
    stages:
      prod: {}
      cached: { cache: { ttl_s: 300 } }
    routes:
      - route: "GET /pets/{id}"
        integration: { http_proxy: "${origin}/pets/{id}" }
        validation: { required: [header.x-tenant, query.page, path.id] }
      - route: POST /pets
        integration: { http_proxy: "${origin}/pets" }
        validation: { body: { model: Pet } }
      - route: POST /items
        integration: { http_proxy: "${origin}/items" }
        validation: { body: { file: schemas/item.json } }
      - route: POST /orders
        integration: { http_proxy: "${origin}/orders" }
        validation: { body: { schema: { type: object, required: [id], properties: { id: { type: integer } } } } }
      - route: POST /list
        integration: { http_proxy: "${origin}/list" }
        validation: { body: { schema: { type: array, items: { type: integer } } } }
      - route: POST /draft4
        integration: { http_proxy: "${origin}/draft4" }
        validation:
          body:
            schema:
              "$schema": "http://json-schema.org/draft-04/schema#"
              type: object
              required: [qty]
              properties: { qty: { type: integer, minimum: 0, exclusiveMinimum: true } }
      - route: POST /draft4-default
        integration: { http_proxy: "${origin}/draft4-default" }
        validation:
          body:
            schema:
              type: object
              required: [qty]
              properties: { qty: { type: integer, minimum: 0, exclusiveMinimum: true } }
      - route: POST /draft2020
        integration: { http_proxy: "${origin}/draft2020" }
        validation:
          body:
            schema:
              "$schema": "https://json-schema.org/draft/2020-12/schema"
              type: array
              prefixItems: [{ type: string }, { type: number, exclusiveMinimum: 0 }]
              items: false
      - route: POST /all
        integration: { http_proxy: "${origin}/all" }
        validation: { validate: all, required: [header.x-tenant], body: { model: Pet } }
      - route: POST /body-only
        integration: { http_proxy: "${origin}/body-only" }
        validation: { validate: body, required: [header.x-tenant], body: { model: Pet } }
      - route: POST /params-only
        integration: { http_proxy: "${origin}/params-only" }
        validation: { validate: parameters, required: [header.x-tenant], body: { model: Pet } }
"#
    .replace("ORIGIN", &origin.url())
    .replace("MAX_BODY", &MAX_BODY.to_string())
}

async fn setup() -> (Origin, Gateway) {
    let origin =
        Origin::start(|r: &Recorded| reply(200, &[], format!("got {} bytes", r.body.len()))).await;
    let gw = Gateway::builder()
        .file("schemas/pet.json", PET_SCHEMA)
        .file("schemas/item.json", ITEM_SCHEMA)
        .start(&config(&origin))
        .await;
    (origin, gw)
}

/// POST `body` as JSON to `path`.
async fn post(gw: &Gateway, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// POST `body` to `path`: 400 `Invalid request body`; returns the listed errors.
async fn assert_body_refused(gw: &Gateway, path: &str, body: &str) -> Vec<String> {
    let errors = assert_error_with_list(
        post(gw, path, body).await,
        400,
        "Invalid request body",
        "BAD_REQUEST_BODY",
    )
    .await;
    assert!(!errors.is_empty(), "{path} {body}: no errors listed");
    assert!(errors.len() <= 20, "{path}: at most 20 errors: {errors:?}");
    errors
}

/// POST `body` to `path`: 200, and the origin received exactly `body`.
async fn assert_body_accepted(gw: &Gateway, origin: &Origin, path: &str, body: &str) {
    let before = origin.count_to(path);
    let r = post(gw, &format!("/prod{path}"), body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path} {body}: {text}");
    assert_eq!(text, format!("got {} bytes", body.len()));
    let seen = origin.requests_to(path);
    assert_eq!(
        seen.len(),
        before + 1,
        "{path}: one request reached the origin"
    );
    let last = seen.last().unwrap();
    assert_eq!(
        last.body,
        body.as_bytes(),
        "{path}: the origin gets the body as sent"
    );
    assert_eq!(last.header("content-type"), Some("application/json"));
}

/// Whether one of `errors` is about the instance at JSON pointer `at` (`"<at>: <error>"`).
fn mentions(errors: &[String], at: &str) -> bool {
    errors.iter().any(|e| e.starts_with(&format!("{at}: ")))
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// Each missing (or empty) required header and query parameter is listed, in `required`
/// order, and the origin sees none of these requests; with all present the origin gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_parameters_are_400_and_never_reach_the_origin() {
    let (origin, gw) = setup().await;
    let c = client();
    let cases: [(&str, Option<&str>, &str, &[&str]); 6] = [
        (
            "/prod/pets/7",
            None,
            "Missing required request parameters: [x-tenant, page]",
            &["missing header x-tenant", "missing query parameter page"],
        ),
        (
            "/prod/pets/7?page=2",
            None,
            "Missing required request parameters: [x-tenant]",
            &["missing header x-tenant"],
        ),
        (
            "/prod/pets/7",
            Some("t1"),
            "Missing required request parameters: [page]",
            &["missing query parameter page"],
        ),
        (
            "/prod/pets/7?page=&x=1",
            Some(""),
            "Missing required request parameters: [x-tenant, page]",
            &["missing header x-tenant", "missing query parameter page"],
        ),
        (
            "/prod/pets/7?page",
            Some("t1"),
            "Missing required request parameters: [page]",
            &["missing query parameter page"],
        ),
        (
            "/prod/pets/7?Page=2&pages=2",
            Some("t1"),
            "Missing required request parameters: [page]",
            &["missing query parameter page"],
        ),
    ];
    for (path, tenant, message, want) in cases {
        let mut req = c.get(gw.url(path));
        if let Some(t) = tenant {
            req = req.header("x-tenant", t);
        }
        let errors = assert_error_with_list(
            req.send().await.unwrap(),
            400,
            message,
            "BAD_REQUEST_PARAMETERS",
        )
        .await;
        assert_eq!(errors, want, "{path} x-tenant={tenant:?}");
    }
    // A validation failure on a cached route is not served from the cache either.
    let r = c
        .get(gw.url("/cached/pets/7?page=2"))
        .header("x-tenant", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "miss");
    let r = c.get(gw.url("/cached/pets/7?page=2")).send().await.unwrap();
    let errors = assert_error_with_list(
        r,
        400,
        "Missing required request parameters: [x-tenant]",
        "BAD_REQUEST_PARAMETERS",
    )
    .await;
    assert_eq!(errors, ["missing header x-tenant"]);
    assert_eq!(
        origin.request_count(),
        1,
        "only the valid request reached the origin"
    );

    let r = c
        .get(gw.url("/prod/pets/7?page=2"))
        .header("X-Tenant", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.path_and_query(), "/pets/7?page=2");
    assert_eq!(seen.header("x-tenant"), Some("t1"));
    assert_eq!(origin.request_count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// The `Pet` model (a schema file): good bodies pass byte for byte; each kind of bad one is
/// listed with its instance path; empty and non-JSON bodies have their own errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_against_a_model_from_a_file() {
    let (origin, gw) = setup().await;
    assert_body_accepted(
        &gw,
        &origin,
        "/pets",
        r#"{ "name" : "rex","age":3 ,"tags":["a"]}"#,
    )
    .await;
    assert_body_accepted(&gw, &origin, "/pets", r#"{"name":"ümlaut ✓"}"#).await;
    let accepted = origin.request_count();

    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"name":"rex","age":"old"}"#).await;
    assert!(mentions(&errors, "/age"), "wrong type at /age: {errors:?}");
    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"name":"rex","age":-1}"#).await;
    assert!(mentions(&errors, "/age"), "minimum at /age: {errors:?}");
    let errors =
        assert_body_refused(&gw, "/prod/pets", r#"{"name":"rex","tags":["a",2,"c"]}"#).await;
    assert!(
        mentions(&errors, "/tags/1"),
        "item type at /tags/1: {errors:?}"
    );
    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"name":""}"#).await;
    assert!(mentions(&errors, "/name"), "minLength at /name: {errors:?}");
    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"age":1}"#).await;
    assert!(
        errors.iter().any(|e| e.contains("name")),
        "missing required property: {errors:?}"
    );
    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"name":"rex","colour":"red"}"#).await;
    assert!(
        errors.iter().any(|e| e.contains("colour")),
        "additional property: {errors:?}"
    );
    let errors = assert_body_refused(&gw, "/prod/pets", r#"{"name":7,"age":"x","tags":"y"}"#).await;
    assert_eq!(errors.len(), 3, "each failure listed: {errors:?}");
    for at in ["/name", "/age", "/tags"] {
        assert!(mentions(&errors, at), "{at}: {errors:?}");
    }

    let errors = assert_body_refused(&gw, "/prod/pets", "").await;
    assert_eq!(errors, ["the body is empty"]);
    for not_json in ["{name: rex}", "{\"name\":\"rex\"", "\u{1}", "null null"] {
        let errors = assert_body_refused(&gw, "/prod/pets", not_json).await;
        assert_eq!(errors.len(), 1, "{not_json:?}: {errors:?}");
        assert!(
            errors[0].starts_with("the body is not JSON: "),
            "{not_json:?}: {errors:?}"
        );
    }
    // valid JSON of the wrong type
    let errors = assert_body_refused(&gw, "/prod/pets", "[1]").await;
    assert_eq!(errors.len(), 1, "{errors:?}");

    assert_eq!(
        origin.request_count(),
        accepted,
        "no refused body reached the origin"
    );
}

/// A schema file given to the route directly (draft 2020-12 by `$schema`) and an inline one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_against_a_schema_file_and_an_inline_schema() {
    let (origin, gw) = setup().await;
    assert_body_accepted(&gw, &origin, "/items", r#"{"sku":"ABC-12"}"#).await;
    assert_body_accepted(&gw, &origin, "/orders", r#"{"id":12,"extra":true}"#).await;
    let accepted = origin.request_count();

    let errors = assert_body_refused(&gw, "/prod/items", r#"{"sku":"abc"}"#).await;
    assert!(mentions(&errors, "/sku"), "pattern at /sku: {errors:?}");
    assert_body_refused(&gw, "/prod/items", r#"{}"#).await;
    let errors = assert_body_refused(&gw, "/prod/orders", r#"{"id":"12"}"#).await;
    assert!(mentions(&errors, "/id"), "{errors:?}");
    assert_body_refused(&gw, "/prod/orders", r#"{"no_id":1}"#).await;
    assert_eq!(
        assert_body_refused(&gw, "/prod/orders", "").await,
        ["the body is empty"]
    );

    // 30 failing items: the list stops at 20.
    let many = format!("[{}]", vec!["\"x\""; 30].join(","));
    let errors = assert_body_refused(&gw, "/prod/list", &many).await;
    assert_eq!(errors.len(), 20, "{errors:?}");
    assert!(mentions(&errors, "/0"), "{errors:?}");
    assert_body_accepted(&gw, &origin, "/list", "[1,2,3]").await;

    assert_eq!(origin.request_count(), accepted + 1);
}

/// Draft 4 (declared, and by default): `exclusiveMinimum: true` excludes the minimum.
/// Draft 2020-12: `prefixItems`, numeric `exclusiveMinimum` and `items: false` apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_4_and_2020_12() {
    let (origin, gw) = setup().await;
    for path in ["/draft4", "/draft4-default"] {
        assert_body_accepted(&gw, &origin, path, r#"{"qty":1}"#).await;
        let errors = assert_body_refused(&gw, &format!("/prod{path}"), r#"{"qty":0}"#).await;
        assert!(mentions(&errors, "/qty"), "{path}: {errors:?}");
        assert_body_refused(&gw, &format!("/prod{path}"), r#"{"qty":1.5}"#).await;
    }

    assert_body_accepted(&gw, &origin, "/draft2020", r#"["a",1]"#).await;
    assert_body_accepted(&gw, &origin, "/draft2020", r#"["a"]"#).await;
    let errors = assert_body_refused(&gw, "/prod/draft2020", r#"["a",0]"#).await;
    assert!(
        mentions(&errors, "/1"),
        "exclusiveMinimum 0 at /1: {errors:?}"
    );
    let errors = assert_body_refused(&gw, "/prod/draft2020", r#"[1,1]"#).await;
    assert!(mentions(&errors, "/0"), "prefixItems[0] at /0: {errors:?}");
    assert_body_refused(&gw, "/prod/draft2020", r#"["a",1,2]"#).await;
    assert_eq!(origin.request_count(), 4);
}

/// `validate: all` checks parameters first (and reports only them); `validate: body` skips the
/// parameters; `validate: parameters` skips the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_all_body_only_and_parameters_only() {
    let (origin, gw) = setup().await;
    let c = client();
    let send = |path: &str, tenant: bool, body: &str| {
        let mut req = c
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if tenant {
            req = req.header("x-tenant", "t1");
        }
        req.send()
    };
    let good = r#"{"name":"rex"}"#;
    let bad = r#"{"name":1}"#;

    let errors = assert_error_with_list(
        send("/prod/all", false, bad).await.unwrap(),
        400,
        "Missing required request parameters: [x-tenant]",
        "BAD_REQUEST_PARAMETERS",
    )
    .await;
    assert_eq!(
        errors,
        ["missing header x-tenant"],
        "parameters before the body"
    );
    let errors = assert_error_with_list(
        send("/prod/all", true, bad).await.unwrap(),
        400,
        "Invalid request body",
        "BAD_REQUEST_BODY",
    )
    .await;
    assert!(mentions(&errors, "/name"), "{errors:?}");
    assert_error_with_list(
        send("/prod/body-only", true, bad).await.unwrap(),
        400,
        "Invalid request body",
        "BAD_REQUEST_BODY",
    )
    .await;
    assert_error_with_list(
        send("/prod/params-only", false, good).await.unwrap(),
        400,
        "Missing required request parameters: [x-tenant]",
        "BAD_REQUEST_PARAMETERS",
    )
    .await;
    assert_eq!(
        origin.request_count(),
        0,
        "no refused request reached the origin"
    );

    for (path, tenant, body) in [
        ("/all", true, good),
        ("/body-only", false, good),
        ("/params-only", true, bad),
        ("/params-only", true, "not even JSON"),
    ] {
        let r = send(&format!("/prod{path}"), tenant, body).await.unwrap();
        assert_eq!(r.status(), 200, "{path} tenant={tenant} {body}");
        let seen = origin.requests().pop().unwrap();
        assert_eq!(seen.path_and_query(), path);
        assert_eq!(seen.body, body.as_bytes(), "{path}");
    }
    assert_eq!(origin.request_count(), 4);
}

/// A body over `limits.max_body_bytes` is 413 on a validated route, declared or chunked; a
/// body just under it is validated and forwarded whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_applies_before_validation() {
    let (origin, gw) = setup().await;
    let pet = |len: usize| {
        let filler = len - r#"{"name":""}"#.len();
        format!(r#"{{"name":"{}"}}"#, "a".repeat(filler))
    };

    let r = post(&gw, "/prod/pets", &pet(MAX_BODY + 1)).await;
    assert_gateway_error(r, 413, "Request Too Long", "REQUEST_TOO_LARGE").await;

    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = pet(MAX_BODY * 3)
        .into_bytes()
        .chunks(1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let r = client()
        .post(gw.url("/prod/pets"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 413, "Request Too Long", "REQUEST_TOO_LARGE").await;
    assert_eq!(origin.request_count(), 0);

    assert_body_accepted(&gw, &origin, "/pets", &pet(MAX_BODY)).await;
}
