//! JWT authorizers with the real binary: tokens signed in the test with RSA keys whose JWKS a
//! local HTTP server publishes. A valid token reaches the origin with the principal and the
//! configured claims in headers (and never the client's own copies of them); a missing,
//! expired, wrongly issued, wrongly addressed or badly signed token is 401 with a
//! `WWW-Authenticate` challenge; a token without the route's scopes is 403; and a key rotated
//! in at the issuer is picked up when a token first names it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgeway_tests::*;
use http::Response;
use ring::rand::SystemRandom;
use ring::signature::{self as ring_signature, RsaKeyPair};
use serde_json::Value;

const ISSUER: &str = "https://issuer.example.com/pool-1";
const AUDIENCE: &str = "shop-api";
const KEY_A: &[u8] = include_bytes!("../../proxy/src/auth/testdata/rsa-2048-a.der");
const KEY_B: &[u8] = include_bytes!("../../proxy/src/auth/testdata/rsa-2048-b.der");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The identity provider's RS256 key under a `kid`.
struct Signer {
    kid: &'static str,
    key: RsaKeyPair,
}

impl Signer {
    fn new(kid: &'static str, der: &[u8]) -> Self {
        Self {
            kid,
            key: RsaKeyPair::from_der(der).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.key.public());
        json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
               "n": b64(&public.n), "e": b64(&public.e)})
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring_signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signed}.{}", b64(&signature))
    }
}

/// Claims of a token that is valid now; `extra` is merged in (and may replace any).
fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "email": "ada@example.com",
        "tenant": "acme",
        "iat": now() - 10,
        "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// A JWKS endpoint: a real HTTP server whose document the test can replace.
struct Jwks {
    server: Origin,
    document: Arc<Mutex<String>>,
}

impl Jwks {
    async fn start(keys: &[&Signer]) -> Jwks {
        let document = Arc::new(Mutex::new(String::new()));
        let served = document.clone();
        let server = Origin::start(move |_| {
            Response::builder()
                .header("content-type", "application/json")
                .body(full(served.lock().unwrap().clone()))
                .unwrap()
        })
        .await;
        let jwks = Jwks { server, document };
        jwks.publish(keys);
        jwks
    }

    fn publish(&self, keys: &[&Signer]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        *self.document.lock().unwrap() = json!({ "keys": keys }).to_string();
    }

    fn url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.server.url())
    }

    fn fetches(&self) -> usize {
        self.server.count_to("/.well-known/jwks.json")
    }
}

fn config(origin: &Origin, jwks: &Jwks) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
apis:
  - name: shop
    stages: {{ prod: {{}} }}
    authorizers:
      users:
        jwt:
          issuer: {ISSUER}
          audiences: [other-api, {AUDIENCE}]
          jwks_url: {jwks}
        claims_headers: {{ email: x-user-email, tenant: x-tenant }}
    routes:
      - route: GET /pets
        auth: users
        integration: {{ http_proxy: "${{origin}}/pets" }}
      - route: POST /pets
        auth: users
        scopes: [pets/write, pets/admin]
        integration: {{ http_proxy: "${{origin}}/pets" }}
      - route: GET /open
        integration: {{ http_proxy: "${{origin}}/open" }}
"#,
        origin = origin.url(),
        jwks = jwks.url(),
    )
}

struct Setup {
    gw: Gateway,
    origin: Origin,
    jwks: Jwks,
    key_a: Signer,
}

async fn setup() -> Setup {
    let key_a = Signer::new("key-a", KEY_A);
    let jwks = Jwks::start(&[&key_a]).await;
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, &jwks)).await;
    Setup {
        gw,
        origin,
        jwks,
        key_a,
    }
}

async fn call(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client().request(method, gw.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

/// A 401 `{"message":"Unauthorized"}` whose challenge contains `challenge`; nothing reached
/// the origin.
async fn assert_unauthorized(s: &Setup, token: Option<&str>, challenge: &str) {
    let before = s.origin.request_count();
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", token).await;
    assert_eq!(r.status(), 401, "token {token:?}");
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with("Bearer"), "{www}");
    assert!(www.contains(challenge), "{www} lacks {challenge}");
    assert_eq!(r.headers()["x-edgeway-error-type"], "UNAUTHORIZED");
    assert_eq!(r.text().await.unwrap(), r#"{"message":"Unauthorized"}"#);
    assert_eq!(
        s.origin.request_count(),
        before,
        "a refused request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_reaches_the_origin_with_its_principal_and_claims() {
    let s = setup().await;
    let token = s.key_a.sign(&claims(json!({})));
    let r = client()
        .get(s.gw.url("/prod/pets"))
        .bearer_auth(&token)
        // Copies a client makes up are replaced by the token's.
        .header("x-edgeway-principal", "admin")
        .header("x-user-email", "root@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "origin GET /pets");
    let seen = s.origin.single_request();
    assert_eq!(seen.header_all("x-edgeway-principal"), ["user-42"]);
    assert_eq!(seen.header_all("x-user-email"), ["ada@example.com"]);
    assert_eq!(seen.header_all("x-tenant"), ["acme"]);
    // The token goes on to the origin, as API Gateway forwards it.
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    // A token without a claim sends no header for it, and a forged copy does not get through.
    let token = s.key_a.sign(&claims(json!({ "tenant": null })));
    let r = client()
        .get(s.gw.url("/prod/pets"))
        .bearer_auth(&token)
        .header("x-tenant", "evil-corp")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.origin.requests()[1].header("x-tenant"), None);

    // On a route without auth, the principal headers of the API are stripped all the same.
    let r = client()
        .get(s.gw.url("/prod/open"))
        .header("x-edgeway-principal", "admin")
        .header("x-user-email", "root@example.com")
        .header("x-tenant", "evil-corp")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = &s.origin.requests_to("/open")[0];
    for header in ["x-edgeway-principal", "x-user-email", "x-tenant"] {
        assert_eq!(seen.header(header), None, "{header} reached the origin");
    }
    assert_eq!(s.jwks.fetches(), 1, "the JWKS is fetched once and cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_missing_or_not_valid_are_401_with_a_challenge() {
    let s = setup().await;
    // No token at all: a plain challenge.
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.text().await.unwrap(), r#"{"message":"Unauthorized"}"#);

    let expired = s
        .key_a
        .sign(&claims(json!({ "iat": now() - 7200, "exp": now() - 3600 })));
    assert_unauthorized(&s, Some(&expired), "the token has expired").await;
    let not_yet = s.key_a.sign(&claims(json!({ "nbf": now() + 3600 })));
    assert_unauthorized(&s, Some(&not_yet), "not valid yet").await;
    let issuer = s
        .key_a
        .sign(&claims(json!({ "iss": "https://evil.example.com/" })));
    assert_unauthorized(&s, Some(&issuer), "valid issuer").await;
    let audience = s.key_a.sign(&claims(json!({ "aud": "someone-else" })));
    assert_unauthorized(&s, Some(&audience), "valid audience").await;
    // Signed by another key under the issuer's kid.
    let forged = Signer::new("key-a", KEY_B).sign(&claims(json!({})));
    assert_unauthorized(&s, Some(&forged), "signature is invalid").await;
    // A valid token with its payload swapped.
    let valid = s.key_a.sign(&claims(json!({})));
    let mut parts: Vec<&str> = valid.split('.').collect();
    let admin = b64(claims(json!({ "sub": "admin" })).to_string().as_bytes());
    parts[1] = &admin;
    assert_unauthorized(&s, Some(&parts.join(".")), "signature is invalid").await;
    assert_unauthorized(&s, Some("not-a-jwt"), "invalid_token").await;
    assert_eq!(s.origin.request_count(), 0);

    // The same tokens' cousin, valid, still passes: the refusals changed nothing.
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&valid)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_needs_one_of_the_route_scopes() {
    let s = setup().await;
    let post = |token: String| {
        let gw = &s.gw;
        async move { call(gw, reqwest::Method::POST, "/prod/pets", Some(&token)).await }
    };

    let r = post(
        s.key_a
            .sign(&claims(json!({ "scope": "pets/read openid" }))),
    )
    .await;
    assert_eq!(r.status(), 403);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    assert!(www.contains(r#"scope="pets/write pets/admin""#), "{www}");
    assert_eq!(r.text().await.unwrap(), r#"{"message":"Forbidden"}"#);
    // No scope claim at all.
    assert_eq!(post(s.key_a.sign(&claims(json!({})))).await.status(), 403);
    assert_eq!(s.origin.request_count(), 0);

    // Any one of them is enough, in `scope` (a string) or `scp` (a list).
    let r = post(
        s.key_a
            .sign(&claims(json!({ "scope": "pets/read pets/admin" }))),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(s.key_a.sign(&claims(json!({ "scp": ["pets/write"] })))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.origin.request_count(), 2);
    // A route without scopes takes any valid token.
    let r = call(
        &s.gw,
        reqwest::Method::GET,
        "/prod/pets",
        Some(&s.key_a.sign(&claims(json!({})))),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_in_at_the_issuer_is_fetched_when_a_token_names_it() {
    let s = setup().await;
    let old = s.key_a.sign(&claims(json!({})));
    assert_eq!(
        call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&old))
            .await
            .status(),
        200
    );
    assert_eq!(s.jwks.fetches(), 1);

    // The issuer rotates: a new key under a new kid, the old one retired.
    let key_b = Signer::new("key-b", KEY_B);
    s.jwks.publish(&[&key_b]);
    let new = key_b.sign(&claims(json!({ "sub": "user-43" })));
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&new)).await;
    assert_eq!(r.status(), 200, "{}", s.gw.stderr_text());
    assert_eq!(
        s.jwks.fetches(),
        2,
        "the unknown kid made the gateway refetch"
    );
    assert_eq!(
        s.origin.requests()[1].header("x-edgeway-principal"),
        Some("user-43")
    );

    // The retired key's tokens are now refused, without hammering the issuer for its kid.
    assert_unauthorized(&s, Some(&old), "signing key is unknown").await;
    assert_unauthorized(&s, Some(&old), "signing key is unknown").await;
    assert_eq!(
        s.jwks.fetches(),
        2,
        "refetches for unknown kids are rate-limited"
    );
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&new)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_jwks_refuses_tokens_and_says_why_in_the_log() {
    let key_a = Signer::new("key-a", KEY_A);
    let jwks = Jwks::start(&[&key_a]).await;
    *jwks.document.lock().unwrap() = "not json".to_owned();
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, &jwks)).await;
    let token = key_a.sign(&claims(json!({})));
    let r = call(&gw, reqwest::Method::GET, "/prod/pets", Some(&token)).await;
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains("could not be retrieved"), "{www}");
    assert_eq!(origin.request_count(), 0);
    gw.wait_event(
        "JWT refused: the issuer's keys are unavailable",
        std::time::Duration::from_secs(5),
        |_| true,
    )
    .await;
}

/// A reload keeps a JWT authorizer whose settings did not change, with its cached keys: the
/// issuer is not asked again, and need not be reachable at that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_keys_already_fetched() {
    let s = setup().await;
    let token = s.key_a.sign(&claims(json!({})));
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.jwks.fetches(), 1);

    // The issuer now serves nothing usable; the node reloads a config that changes a route.
    *s.jwks.document.lock().unwrap() = "not a key set".into();
    let changed = config(&s.origin, &s.jwks).replace("GET /open", "GET /opened");
    s.gw.replace_config(&changed);
    s.gw.wait_event("config reloaded", Duration::from_secs(10), |e| {
        e["fields"]["generation"] == 2
    })
    .await;
    let r = call(&s.gw, reqwest::Method::GET, "/prod/pets", Some(&token)).await;
    assert_eq!(r.status(), 200, "{}", s.gw.stderr_text());
    assert_eq!(s.jwks.fetches(), 1, "the reload fetched the JWKS again");
}
