//! SigV4 authorizers with the real binary: an access key created through the admin API, and
//! requests signed in the test with `aws-sigv4`, as the AWS SDKs sign them. Signed GETs and
//! POSTs reach the origin with the access key id as the principal and without the signature;
//! a request changed after signing (path, header, body), signed too long ago, signed with a
//! disabled or deleted key, or not signed at all is 403 with a message saying what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use edgeway_tests::*;
use serde_json::Value;

const REGION: &str = "eu-west-1";

fn config(origin: &Origin, state: &std::path::Path) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
apis:
  - name: shop
    stages: {{ prod: {{}} }}
    authorizers:
      iam:
        sigv4: {{ regions: [{REGION}] }}
    routes:
      - route: GET /pets
        auth: iam
        integration: {{ http_proxy: "${{origin}}/pets" }}
      - route: GET /pets/{{id}}
        auth: iam
        integration: {{ http_proxy: "${{origin}}/pets/{{id}}" }}
      - route: POST /pets
        auth: iam
        integration: {{ http_proxy: "${{origin}}/pets" }}
"#,
        origin = origin.url(),
        state = state.display(),
    )
}

/// How a request is signed: now, with the key's secret, the body hashed.
struct Signing<'a> {
    key: &'a AccessKey,
    time: SystemTime,
    unsigned_payload: bool,
}

struct AccessKey {
    id: String,
    secret: String,
}

impl<'a> Signing<'a> {
    fn now(key: &'a AccessKey) -> Self {
        Self {
            key,
            time: SystemTime::now(),
            unsigned_payload: false,
        }
    }

    /// `request` signed for `execute-api` in the gateway's region.
    fn sign(&self, mut request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
        let identity = Credentials::new(&self.key.id, &self.key.secret, None, None, "test").into();
        let mut settings = SigningSettings::default();
        if self.unsigned_payload {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("execute-api")
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        let body = if self.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(request.body())
        };
        let signable =
            SignableRequest::new(request.method().as_str(), uri, headers.into_iter(), body)
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        request
    }
}

fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.as_bytes().to_vec()).unwrap()
}

/// Sends `request` as it is (reqwest adds only `host`, from the same URL).
async fn send(request: http::Request<Vec<u8>>) -> (u16, Value, reqwest::header::HeaderMap) {
    let (parts, body) = request.into_parts();
    let r = client()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

struct Setup {
    gw: Gateway,
    origin: Origin,
    key: AccessKey,
}

async fn setup() -> Setup {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-sigv4-state");
    let gw = Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&config(&origin, &state))
        .await;
    let (status, created) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/access-keys",
            Some(json!({ "name": "deploy-bot" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = AccessKey {
        id: created["id"].as_str().unwrap().to_owned(),
        secret: created["secret_access_key"].as_str().unwrap().to_owned(),
    };
    Setup { gw, origin, key }
}

/// A 403 whose message contains `text`, with nothing reaching the origin.
async fn assert_refused(s: &Setup, request: http::Request<Vec<u8>>, text: &str, kind: &str) {
    let before = s.origin.request_count();
    let (status, body, headers) = send(request).await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{message:?} lacks {text:?}");
    assert_eq!(headers["x-amzn-errortype"], kind, "{message}");
    assert_eq!(
        s.origin.request_count(),
        before,
        "a refused request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_reach_the_origin_as_the_access_key() {
    let s = setup().await;
    assert_eq!(s.key.id.len(), 20);
    assert!(s.key.id.starts_with("AKIA"));
    assert_eq!(s.key.secret.len(), 40);

    let signed = Signing::now(&s.key).sign(request(
        "GET",
        &s.gw.url("/prod/pets?color=red&size=2"),
        &[("x-edgeway-principal", "someone-else")],
        "",
    ));
    let (status, body, _) = send(signed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "origin GET /pets?color=red&size=2");
    let seen = s.origin.single_request();
    assert_eq!(seen.header_all("x-edgeway-principal"), [s.key.id.as_str()]);
    assert_eq!(
        seen.header("authorization"),
        None,
        "the signature went to the origin"
    );

    let payload = r#"{"name":"Rex","tags":["good boy"]}"#;
    let signed = Signing::now(&s.key).sign(request(
        "POST",
        &s.gw.url("/prod/pets"),
        &[("content-type", "application/json")],
        payload,
    ));
    let (status, body, _) = send(signed).await;
    assert_eq!(status, 200, "{body}");
    let seen = &s.origin.requests()[1];
    assert_eq!(seen.body, payload.as_bytes());
    assert_eq!(seen.header("x-edgeway-principal"), Some(s.key.id.as_str()));

    // The admin API never shows the secret again.
    let (status, listed) =
        s.gw.admin(reqwest::Method::GET, "/admin/access-keys", None)
            .await;
    assert_eq!(status, 200);
    assert_eq!(listed["access_keys"][0]["id"], s.key.id.as_str());
    assert_eq!(listed["access_keys"][0]["name"], "deploy-bot");
    assert!(!listed.to_string().contains(&s.key.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_changed_after_signing_are_refused() {
    let s = setup().await;
    let mismatch = "The request signature we calculated does not match";

    // Path.
    let mut signed = Signing::now(&s.key).sign(request("GET", &s.gw.url("/prod/pets/1"), &[], ""));
    *signed.uri_mut() = s.gw.url("/prod/pets/2").parse().unwrap();
    assert_refused(&s, signed, mismatch, "InvalidSignatureException").await;

    // A signed header.
    let mut signed = Signing::now(&s.key).sign(request(
        "GET",
        &s.gw.url("/prod/pets"),
        &[("x-tenant", "acme")],
        "",
    ));
    signed
        .headers_mut()
        .insert("x-tenant", "evil-corp".parse().unwrap());
    assert_refused(&s, signed, mismatch, "InvalidSignatureException").await;

    // The body.
    let mut signed = Signing::now(&s.key).sign(request(
        "POST",
        &s.gw.url("/prod/pets"),
        &[("content-type", "application/json")],
        r#"{"price":10}"#,
    ));
    *signed.body_mut() = br#"{"price":1}"#.to_vec();
    assert_refused(&s, signed, mismatch, "InvalidSignatureException").await;

    // A signature that leaves the body out is refused unless the authorizer allows it.
    let unsigned = Signing {
        unsigned_payload: true,
        ..Signing::now(&s.key)
    }
    .sign(request("POST", &s.gw.url("/prod/pets"), &[], "{}"));
    assert_refused(
        &s,
        unsigned,
        "UNSIGNED-PAYLOAD is not accepted",
        "InvalidSignatureException",
    )
    .await;

    // Signed 20 minutes ago: outside the 15-minute window.
    let old = Signing {
        time: SystemTime::now() - Duration::from_secs(20 * 60),
        ..Signing::now(&s.key)
    }
    .sign(request("GET", &s.gw.url("/prod/pets"), &[], ""));
    assert_refused(&s, old, "Signature expired", "InvalidSignatureException").await;

    // Not signed at all: what API Gateway says for an IAM route.
    let before = s.origin.request_count();
    let (status, body, headers) = send(request("GET", &s.gw.url("/prod/pets"), &[], "")).await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({ "message": "Missing Authentication Token" }));
    assert_eq!(
        headers["x-edgeway-error-type"],
        "MISSING_AUTHENTICATION_TOKEN"
    );
    assert_eq!(s.origin.request_count(), before);

    // The same request, untouched, passes.
    let signed = Signing::now(&s.key).sign(request("GET", &s.gw.url("/prod/pets/1"), &[], ""));
    assert_eq!(send(signed).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_deleted_keys_are_refused_at_once() {
    let s = setup().await;
    let signed = || Signing::now(&s.key).sign(request("GET", &s.gw.url("/prod/pets"), &[], ""));
    assert_eq!(send(signed()).await.0, 200);
    let invalid = "The security token included in the request is invalid";

    let path = format!("/admin/access-keys/{}", s.key.id);
    let (status, changed) =
        s.gw.admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["enabled"], false);
    assert_refused(&s, signed(), invalid, "UnrecognizedClientException").await;

    let (status, _) =
        s.gw.admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(send(signed()).await.0, 200);

    let (status, _) = s.gw.admin(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    assert_refused(&s, signed(), invalid, "UnrecognizedClientException").await;
    let (status, _) = s.gw.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 404);

    // A key someone made up.
    let made_up = AccessKey {
        id: "AKIAEXAMPLE000000000".into(),
        secret: "x".repeat(40),
    };
    let forged = Signing::now(&made_up).sign(request("GET", &s.gw.url("/prod/pets"), &[], ""));
    assert_refused(&s, forged, invalid, "UnrecognizedClientException").await;
}
