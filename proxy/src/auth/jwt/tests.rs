//! JWT verification against keys made here: a JWKS served by a real HTTP server on loopback
//! (counting its requests) for the fetch path, and a scripted fetcher on tokio's paused clock
//! for TTLs and refetch intervals.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{self as ring_signature, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::auth::jwks::{JwksFetchError, JwksFetchProblem, JwksFetcher};

const ISSUER: &str = "https://idp.test/pool";
const AUDIENCE: &str = "edgeway-api";
const RSA_A: &[u8] = include_bytes!("../testdata/rsa-2048-a.der");
const RSA_B: &[u8] = include_bytes!("../testdata/rsa-2048-b.der");

enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// An identity provider's key: signs tokens and describes itself as a JWK.
struct Signer {
    kid: String,
    alg: JwtAlgorithm,
    key: SigningKey,
}

impl Signer {
    /// `alg` is RS256 or PS256; `der` a PKCS#1 private key from testdata/.
    fn rsa(kid: &str, der: &[u8], alg: JwtAlgorithm) -> Self {
        let key = SigningKey::Rsa(RsaKeyPair::from_der(der).unwrap());
        Self::new(kid, alg, key)
    }

    fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &ring_signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        Self::new(kid, JwtAlgorithm::Es256, SigningKey::Ec(key))
    }

    fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self::new(kid, JwtAlgorithm::EdDsa, SigningKey::Ed(key))
    }

    fn new(kid: &str, alg: JwtAlgorithm, key: SigningKey) -> Self {
        Self {
            kid: kid.into(),
            alg,
            key,
        }
    }

    /// The same key under another `kid`.
    fn renamed(der: &[u8], kid: &str) -> Self {
        Self::rsa(kid, der, JwtAlgorithm::Rs256)
    }

    fn jwk(&self) -> Value {
        match &self.key {
            SigningKey::Rsa(key) => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "n": b64(&public.n), "e": b64(&public.e)})
            }
            SigningKey::Ec(key) => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            SigningKey::Ed(key) => {
                json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519", "x": b64(key.public_key().as_ref())})
            }
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.name(), "kid": self.kid, "typ": "JWT"});
        self.sign_with(&header, claims)
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{signed}.{}", b64(&self.signature(signed.as_bytes())))
    }

    fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Rsa(key) => {
                let padding: &dyn ring_signature::RsaEncoding = match self.alg {
                    JwtAlgorithm::Ps256 => &ring_signature::RSA_PSS_SHA256,
                    _ => &ring_signature::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, message, &mut signature).unwrap();
                signature
            }
            SigningKey::Ec(key) => key.sign(&rng, message).unwrap().as_ref().to_vec(),
            SigningKey::Ed(key) => key.sign(message).as_ref().to_vec(),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A valid token's claims, with `changes` merged in (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1",
        "exp": now() + 300, "iat": now(), "scope": "pets:read pets:write",
    });
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// What the JWKS server answers.
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

/// A JWKS endpoint on 127.0.0.1:0 that counts the requests it gets.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    answer: Arc<Mutex<Answer>>,
    accept: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(signers: &[&Signer]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(Mutex::new(Answer {
            status: 200,
            body: jwks(signers),
            delay: Duration::ZERO,
        }));
        let (served_hits, served_answer) = (hits.clone(), answer.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (hits, answer) = (served_hits.clone(), served_answer.clone());
                let service = hyper::service::service_fn(move |request| {
                    let (hits, answer) = (hits.clone(), answer.clone());
                    async move {
                        assert_eq!(request.uri().path(), "/.well-known/jwks.json");
                        hits.fetch_add(1, Ordering::SeqCst);
                        let (status, body, delay) = {
                            let answer = answer.lock().unwrap();
                            (answer.status, answer.body.clone(), answer.delay)
                        };
                        tokio::time::sleep(delay).await;
                        let response = http::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            hits,
            answer,
            accept,
        }
    }

    fn serve(&self, signers: &[&Signer]) {
        let mut answer = self.answer.lock().unwrap();
        answer.status = 200;
        answer.body = jwks(signers);
    }

    fn fail(&self, status: u16) {
        self.answer.lock().unwrap().status = status;
    }

    fn delay(&self, delay: Duration) {
        self.answer.lock().unwrap().delay = delay;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn upstream() -> Upstream {
    let tls = rustls::ClientConfig::builder_with_provider(crate::listener::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Upstream {
        tls: Arc::new(tls),
        connect_timeout: Duration::from_secs(2),
        pool_idle_timeout: Duration::from_secs(30),
        fingerprint: String::new(),
    }
}

fn settings(url: &str) -> JwtSettings {
    let mut settings = JwtSettings::new(ISSUER, url);
    settings.audiences = vec![AUDIENCE.into()];
    settings
}

fn http_verifier(server: &JwksServer) -> JwtVerifier {
    JwtVerifier::new(settings(&server.url), &upstream()).unwrap()
}

/// Where [`ScriptedFetcher`]'s JWKS is said to be.
const SCRIPTED_JWKS_URL: &str = "https://idp.test/jwks";

/// A JWKS source that answers what the test says and counts fetches; `delay` runs on
/// tokio's clock.
#[derive(Debug)]
struct ScriptedFetcher {
    document: Mutex<Result<String, String>>,
    fetches: AtomicUsize,
    delay: Duration,
}

impl ScriptedFetcher {
    fn new(signers: &[&Signer]) -> Arc<Self> {
        Self::with_delay(signers, Duration::ZERO)
    }

    fn with_delay(signers: &[&Signer], delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            document: Mutex::new(Ok(jwks(signers))),
            fetches: AtomicUsize::new(0),
            delay,
        })
    }

    fn serve(&self, signers: &[&Signer]) {
        *self.document.lock().unwrap() = Ok(jwks(signers));
    }

    fn fail(&self) {
        *self.document.lock().unwrap() = Err("connect: connection refused".into());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for ScriptedFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<Bytes, JwksFetchError>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let document = self.document.lock().unwrap().clone();
            document.map(Bytes::from).map_err(|e| JwksFetchError {
                url: SCRIPTED_JWKS_URL.into(),
                problem: JwksFetchProblem::Transport(e.into()),
            })
        })
    }
}

fn scripted_verifier(fetcher: &Arc<ScriptedFetcher>) -> JwtVerifier {
    let fetcher: Arc<dyn JwksFetcher> = fetcher.clone();
    JwtVerifier::with_fetcher(settings(SCRIPTED_JWKS_URL), fetcher).unwrap()
}

// --- Through a real JWKS server ---

#[tokio::test]
async fn each_algorithm_verifies_with_a_key_from_the_jwks() {
    let rs256 = Signer::rsa("rsa", RSA_A, JwtAlgorithm::Rs256);
    let ps256 = Signer::rsa("rsa-pss", RSA_B, JwtAlgorithm::Ps256);
    let es256 = Signer::es256("ec");
    let eddsa = Signer::ed25519("ed");
    let server = JwksServer::start(&[&rs256, &ps256, &es256, &eddsa]).await;
    let mut settings = settings(&server.url);
    settings.algorithms.push(JwtAlgorithm::Ps256);
    let verifier = JwtVerifier::new(settings, &upstream()).unwrap();

    for signer in [&rs256, &ps256, &es256, &eddsa] {
        let token = signer.sign(&claims(json!({"sub": signer.kid})));
        let verified = verifier.verify(&token).await;
        let claims = verified.unwrap_or_else(|e| panic!("{}: {e}", signer.alg));
        assert_eq!(claims.sub(), Some(signer.kid.as_str()));
    }
    assert_eq!(server.hits(), 1, "one fetch serves every key");

    // PS256 is not a default algorithm.
    let defaults = http_verifier(&server);
    let token = ps256.sign(&claims(json!({})));
    assert_eq!(
        defaults.verify(&token).await,
        Err(JwtError::AlgorithmNotAllowed("PS256".into()))
    );
}

#[tokio::test]
async fn the_token_may_come_with_or_without_bearer() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    let verifier = http_verifier(&server);
    for missing in ["", "   ", "Bearer", "Bearer ", "bearer   "] {
        assert_eq!(
            verifier.verify(missing).await,
            Err(JwtError::MissingToken),
            "{missing:?}"
        );
    }
    assert_eq!(server.hits(), 0, "no token, no fetch");
    let token = signer.sign(&claims(json!({})));
    for presented in [
        token.clone(),
        format!("Bearer {token}"),
        format!("bearer  {token} "),
    ] {
        assert!(verifier.verify(&presented).await.is_ok(), "{presented}");
    }
}

#[tokio::test]
async fn expiry_and_not_before_allow_the_leeway() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    let verifier = http_verifier(&server);
    let check = |changes: Value| {
        let token = signer.sign(&claims(changes));
        let verifier = &verifier;
        async move { verifier.verify(&token).await.map(|_| ()) }
    };
    assert_eq!(
        check(json!({"exp": now() - 120})).await,
        Err(JwtError::Expired)
    );
    assert_eq!(
        check(json!({"exp": now() - 30})).await,
        Ok(()),
        "within 60 s"
    );
    assert_eq!(
        check(json!({"exp": now() as f64 - 119.5})).await,
        Err(JwtError::Expired)
    );
    assert_eq!(check(json!({"exp": now() as f64 - 29.5})).await, Ok(()));
    assert_eq!(
        check(json!({"nbf": now() + 120})).await,
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        check(json!({"nbf": now() + 30})).await,
        Ok(()),
        "within 60 s"
    );
    assert_eq!(check(json!({"nbf": now() - 30})).await, Ok(()));
    assert_eq!(
        check(json!({"iat": now() + 120})).await,
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        check(json!({"exp": null})).await,
        Err(JwtError::Malformed("the token has no exp claim"))
    );
    assert!(matches!(
        check(json!({"exp": "tomorrow"})).await,
        Err(JwtError::Malformed(_))
    ));

    let mut strict = settings(&server.url);
    strict.leeway = Duration::ZERO;
    let strict = JwtVerifier::new(strict, &upstream()).unwrap();
    let token = signer.sign(&claims(json!({"exp": now() - 30})));
    assert_eq!(strict.verify(&token).await, Err(JwtError::Expired));
    let token = signer.sign(&claims(json!({"nbf": now() + 30})));
    assert_eq!(strict.verify(&token).await, Err(JwtError::NotYetValid));
}

#[tokio::test]
async fn issuer_and_audience_are_checked() {
    let signer = Signer::es256("ec");
    let server = JwksServer::start(&[&signer]).await;
    let verifier = http_verifier(&server);
    let check = |changes: Value| {
        let token = signer.sign(&claims(changes));
        let verifier = &verifier;
        async move { verifier.verify(&token).await.map(|_| ()) }
    };
    for iss in [
        json!("https://idp.test/pool/"),
        json!("https://evil.test/pool"),
        json!(null),
        json!(["https://idp.test/pool"]),
    ] {
        assert_eq!(
            check(json!({"iss": iss})).await,
            Err(JwtError::WrongIssuer),
            "{iss}"
        );
    }
    assert_eq!(
        check(json!({"aud": "other"})).await,
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        check(json!({"aud": null})).await,
        Err(JwtError::WrongAudience)
    );
    assert_eq!(check(json!({"aud": ["other", AUDIENCE]})).await, Ok(()));
    assert_eq!(
        check(json!({"aud": ["other", "more"]})).await,
        Err(JwtError::WrongAudience)
    );
    // Cognito access tokens name the app client in `client_id` and have no `aud`.
    assert_eq!(
        check(json!({"aud": null, "client_id": AUDIENCE})).await,
        Ok(())
    );
    assert_eq!(
        check(json!({"aud": null, "client_id": "other"})).await,
        Err(JwtError::WrongAudience)
    );

    let mut any_audience = settings(&server.url);
    any_audience.audiences.clear();
    let any_audience = JwtVerifier::new(any_audience, &upstream()).unwrap();
    let token = signer.sign(&claims(json!({"aud": "whatever"})));
    assert!(any_audience.verify(&token).await.is_ok());
}

#[tokio::test]
async fn bad_signatures_are_refused() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let impostor = Signer::renamed(RSA_B, "a");
    let es = Signer::es256("ec");
    let server = JwksServer::start(&[&signer, &es]).await;
    let verifier = http_verifier(&server);

    let forged = impostor.sign(&claims(json!({})));
    assert_eq!(verifier.verify(&forged).await, Err(JwtError::BadSignature));

    // A valid token whose payload was swapped for another.
    let token = signer.sign(&claims(json!({})));
    let (header, rest) = token.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let payload = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
    let tampered = format!("{header}.{payload}.{signature}");
    assert_eq!(
        verifier.verify(&tampered).await,
        Err(JwtError::BadSignature)
    );

    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature.pop();
    let truncated = format!("{signed}.{}", b64(&signature));
    assert_eq!(
        verifier.verify(&truncated).await,
        Err(JwtError::BadSignature)
    );
    let es_token = es.sign(&claims(json!({})));
    let (signed, _) = es_token.rsplit_once('.').unwrap();
    let zeros = format!("{signed}.{}", b64(&[0; 64]));
    assert_eq!(verifier.verify(&zeros).await, Err(JwtError::BadSignature));
}

#[tokio::test]
async fn none_and_shared_secret_algorithms_are_refused_before_any_fetch() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    // Even a JWKS that publishes a shared secret under the token's kid does not help.
    let mut document: Value = serde_json::from_str(&jwks(&[&signer])).unwrap();
    document["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "secret", "k": b64(b"hunter2")}));
    server.answer.lock().unwrap().body = document.to_string();
    let verifier = http_verifier(&server);

    let payload = b64(claims(json!({})).to_string().as_bytes());
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(
        verifier.verify(&none).await,
        Err(JwtError::AlgorithmNotAllowed("none".into()))
    );
    let header = b64(br#"{"alg":"HS256","kid":"secret"}"#);
    let signed = format!("{header}.{payload}");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"hunter2"),
        signed.as_bytes(),
    );
    let hs256 = format!("{signed}.{}", b64(mac.as_ref()));
    assert_eq!(
        verifier.verify(&hs256).await,
        Err(JwtError::AlgorithmNotAllowed("HS256".into()))
    );
    assert_eq!(server.hits(), 0);

    // Nor can they be configured.
    for name in ["none", "HS256", "hs512"] {
        let error = name.parse::<JwtAlgorithm>().unwrap_err().to_string();
        assert!(error.contains("never accepted"), "{error}");
    }
    assert!(
        "ES512"
            .parse::<JwtAlgorithm>()
            .unwrap_err()
            .to_string()
            .contains("valid: RS256")
    );
    for alg in JwtAlgorithm::ALL {
        assert_eq!(alg.name().parse::<JwtAlgorithm>(), Ok(alg));
    }
}

#[tokio::test]
async fn a_key_only_verifies_its_own_algorithm() {
    let rsa = Signer::rsa("rsa", RSA_A, JwtAlgorithm::Rs256);
    let es = Signer::es256("ec");
    let server = JwksServer::start(&[&rsa, &es]).await;
    let verifier = http_verifier(&server);
    // An ES256 header naming the RSA key's kid.
    let confused = es.sign_with(&json!({"alg": "ES256", "kid": "rsa"}), &claims(json!({})));
    assert_eq!(
        verifier.verify(&confused).await,
        Err(JwtError::AlgorithmNotAllowed("ES256".into()))
    );

    // A JWK that names its `alg` verifies that one only.
    let mut document: Value = serde_json::from_str(&jwks(&[&rsa])).unwrap();
    document["keys"][0]["alg"] = json!("RS384");
    server.answer.lock().unwrap().body = document.to_string();
    let mut with_rs384 = settings(&server.url);
    with_rs384.algorithms.push(JwtAlgorithm::Rs384);
    let pinned = JwtVerifier::new(with_rs384, &upstream()).unwrap();
    let token = rsa.sign(&claims(json!({})));
    assert_eq!(
        pinned.verify(&token).await,
        Err(JwtError::AlgorithmNotAllowed("RS256".into()))
    );

    // Allowed algorithms are the settings' only.
    let mut rs_only = settings(&server.url);
    rs_only.algorithms = vec![JwtAlgorithm::Rs256];
    let rs_only = JwtVerifier::new(rs_only, &upstream()).unwrap();
    let token = es.sign(&claims(json!({})));
    assert_eq!(
        rs_only.verify(&token).await,
        Err(JwtError::AlgorithmNotAllowed("ES256".into()))
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    let verifier = http_verifier(&server);
    let payload = b64(claims(json!({})).to_string().as_bytes());
    let header = b64(br#"{"alg":"RS256","kid":"a"}"#);
    let cases = [
        "not-a-token".to_owned(),
        "a.b".to_owned(),
        format!("{header}.{payload}.sig.extra.parts"),
        format!("%%%.{payload}.c2ln"),
        format!("{}.{payload}.c2ln", b64(b"[1, 2]")),
        format!("{header}.{payload}.not*base64"),
        format!("{header}.{payload}.{}", b64(&[7; 2048])),
    ];
    for token in &cases {
        assert!(
            matches!(verifier.verify(token).await, Err(JwtError::Malformed(_))),
            "{token}"
        );
    }
    let crit = signer.sign_with(
        &json!({"alg": "RS256", "kid": "a", "crit": ["b64"], "b64": false}),
        &claims(json!({})),
    );
    assert!(matches!(
        verifier.verify(&crit).await,
        Err(JwtError::Malformed(_))
    ));
    // Signed correctly, but the payload is not a claims object.
    let header = json!({"alg": "RS256", "kid": "a"});
    let array = signer.sign_with(&header, &json!([1, 2]));
    assert_eq!(
        verifier.verify(&array).await,
        Err(JwtError::Malformed(
            "the token's payload is not a JSON object"
        ))
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_and_picks_up_a_rotated_key() {
    let old = Signer::rsa("2024", RSA_A, JwtAlgorithm::Rs256);
    let new = Signer::rsa("2025", RSA_B, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&old]).await;
    let verifier = http_verifier(&server);
    assert!(verifier.verify(&old.sign(&claims(json!({})))).await.is_ok());
    assert_eq!(server.hits(), 1);

    server.serve(&[&new]);
    let token = new.sign(&claims(json!({})));
    assert!(
        verifier.verify(&token).await.is_ok(),
        "the rotated key is fetched"
    );
    assert_eq!(server.hits(), 2);
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.hits(), 2, "and then cached");

    // Another unknown kid within the minimum interval: no fetch.
    let stranger = Signer::renamed(RSA_B, "made-up");
    assert_eq!(
        verifier.verify(&stranger.sign(&claims(json!({})))).await,
        Err(JwtError::UnknownKey(Some("made-up".into())))
    );
    // The retired key is gone with the old JWKS.
    assert_eq!(
        verifier.verify(&old.sign(&claims(json!({})))).await,
        Err(JwtError::UnknownKey(Some("2024".into())))
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_share_one_fetch() {
    let first = Signer::rsa("first", RSA_A, JwtAlgorithm::Rs256);
    let second = Signer::es256("second");
    let server = JwksServer::start(&[&first]).await;
    server.delay(Duration::from_millis(200));
    let verifier = Arc::new(http_verifier(&server));

    let verify_all = |token: String| {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (verifier, token) = (verifier.clone(), token.clone());
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        async move {
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        }
    };
    verify_all(first.sign(&claims(json!({})))).await;
    assert_eq!(server.hits(), 1, "first use: one fetch for 32 tokens");

    server.serve(&[&first, &second]);
    verify_all(second.sign(&claims(json!({})))).await;
    assert_eq!(server.hits(), 2, "a new kid: one refetch for 32 tokens");
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    let verifier = JwtVerifier::new(settings(&url), &upstream()).unwrap();
    let signer = Signer::ed25519("ed");
    let error = verifier
        .verify(&signer.sign(&claims(json!({}))))
        .await
        .unwrap_err();
    let JwtError::JwksUnavailable(why) = &error else {
        panic!("{error:?}");
    };
    assert!(why.contains(&url) && why.contains("connect"), "{why}");
    assert_eq!(
        error.www_authenticate(),
        "Bearer error=\"invalid_token\", error_description=\"the signing keys could not be \
         retrieved\""
    );
}

#[tokio::test]
async fn a_failed_first_fetch_is_not_retried_within_the_interval() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    server.fail(503);
    let verifier = http_verifier(&server);
    let token = signer.sign(&claims(json!({})));
    for _ in 0..3 {
        let error = verifier.verify(&token).await.unwrap_err();
        assert!(
            matches!(&error, JwtError::JwksUnavailable(why) if why.contains("answered 503")),
            "{error:?}"
        );
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_last_good_jwks() {
    let known = Signer::rsa("known", RSA_A, JwtAlgorithm::Rs256);
    let rotated = Signer::es256("rotated");
    let server = JwksServer::start(&[&known]).await;
    let verifier = http_verifier(&server);
    assert!(
        verifier
            .verify(&known.sign(&claims(json!({}))))
            .await
            .is_ok()
    );

    server.fail(500);
    let error = verifier
        .verify(&rotated.sign(&claims(json!({}))))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, JwtError::JwksUnavailable(why) if why.contains("500")),
        "{error:?}"
    );
    assert_eq!(server.hits(), 2);
    assert!(
        verifier
            .verify(&known.sign(&claims(json!({}))))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn an_oversized_or_slow_jwks_is_refused() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let server = JwksServer::start(&[&signer]).await;
    let token = signer.sign(&claims(json!({})));

    let mut small = settings(&server.url);
    small.max_jwks_bytes = 64;
    let small = JwtVerifier::new(small, &upstream()).unwrap();
    let error = small.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, JwtError::JwksUnavailable(why) if why.contains("larger than 64 bytes")),
        "{error:?}"
    );

    server.delay(Duration::from_secs(2));
    let mut impatient = settings(&server.url);
    impatient.fetch_timeout = Duration::from_millis(100);
    let impatient = JwtVerifier::new(impatient, &upstream()).unwrap();
    let error = impatient.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, JwtError::JwksUnavailable(why) if why.contains("no answer within 100 ms")),
        "{error:?}"
    );
}

#[test]
fn settings_are_checked_when_the_verifier_is_built() {
    let error = |settings: JwtSettings| {
        JwtVerifier::new(settings, &upstream())
            .unwrap_err()
            .to_string()
    };
    assert!(error(settings("ftp://idp.test/jwks")).contains("http:// or https://"));
    assert!(error(settings("/jwks")).contains("jwks_url"));
    assert!(error(JwtSettings::new("", "https://idp.test/jwks")).contains("issuer"));
    let mut none = settings("https://idp.test/jwks");
    none.algorithms.clear();
    assert!(error(none).contains("algorithms"));
    assert!(JwtVerifier::new(settings("https://idp.test/jwks"), &upstream()).is_ok());
}

// --- JWKS contents, through a scripted fetcher ---

#[tokio::test(start_paused = true)]
async fn keys_that_cannot_verify_tokens_are_skipped() {
    let usable = Signer::ed25519("ed");
    let short_n = b64(&[0xc5; 128]);
    let document = json!({"keys": [
        {"kty": "RSA", "kid": "weak", "n": short_n, "e": "AQAB"},
        {"kty": "oct", "kid": "secret", "k": "aHVudGVyMg"},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[0xc5; 256]), "e": "AQAB"},
        {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": b64(&[0xc5; 256]), "e": "AQAB"},
        {"kty": "RSA", "kid": "wrap", "key_ops": ["wrapKey"], "n": b64(&[0xc5; 256]), "e": "AQAB"},
        {"kty": "RSA", "kid": "misfit", "alg": "ES256", "n": b64(&[0xc5; 256]), "e": "AQAB"},
        {"kty": "EC", "kid": "short", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "kid": "bad-b64", "crv": "P-256", "x": "!!", "y": "!!"},
        {"something": "else"},
    ]});
    let fetcher = ScriptedFetcher::new(&[]);
    *fetcher.document.lock().unwrap() = Ok(document.to_string());
    let verifier = scripted_verifier(&fetcher);
    let error = verifier.prefetch().await.unwrap_err();
    assert!(
        matches!(&error, JwtError::JwksUnavailable(why) if why.contains("none of its 10 keys")),
        "{error:?}"
    );

    // One good key among them is enough.
    let mut keys = document["keys"].as_array().unwrap().clone();
    keys.push(usable.jwk());
    *fetcher.document.lock().unwrap() = Ok(json!({ "keys": keys }).to_string());
    tokio::time::advance(DEFAULT_MIN_REFETCH_INTERVAL).await;
    assert_eq!(verifier.prefetch().await, Ok(1));
    assert!(
        verifier
            .verify(&usable.sign(&claims(json!({}))))
            .await
            .is_ok()
    );

    *fetcher.document.lock().unwrap() = Ok("<html>".into());
    let garbage = scripted_verifier(&fetcher);
    let error = garbage.prefetch().await.unwrap_err();
    assert!(
        matches!(&error, JwtError::JwksUnavailable(why) if why.contains("not a JWKS")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_for_its_algorithm() {
    let rsa = Signer::rsa("", RSA_A, JwtAlgorithm::Rs256);
    let es = Signer::es256("");
    let mut document: Value = serde_json::from_str(&jwks(&[&rsa, &es])).unwrap();
    for key in document["keys"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("kid");
    }
    let fetcher = ScriptedFetcher::new(&[]);
    *fetcher.document.lock().unwrap() = Ok(document.to_string());
    let verifier = scripted_verifier(&fetcher);
    for signer in [&rsa, &es] {
        let header = json!({"alg": signer.alg.name()});
        let token = signer.sign_with(&header, &claims(json!({})));
        assert!(verifier.verify(&token).await.is_ok(), "{}", signer.alg);
    }

    // Two RSA keys and no kid: which one is unknown.
    let other = Signer::rsa("", RSA_B, JwtAlgorithm::Rs256);
    let mut two = document.clone();
    two["keys"].as_array_mut().unwrap().push(other.jwk());
    two["keys"][2].as_object_mut().unwrap().remove("kid");
    let fetcher = ScriptedFetcher::new(&[]);
    *fetcher.document.lock().unwrap() = Ok(two.to_string());
    let verifier = scripted_verifier(&fetcher);
    let token = rsa.sign_with(&json!({"alg": "RS256"}), &claims(json!({})));
    assert_eq!(
        verifier.verify(&token).await,
        Err(JwtError::UnknownKey(None))
    );
}

// --- Caching on tokio's paused clock ---

#[tokio::test(start_paused = true)]
async fn the_jwks_is_refetched_after_its_ttl() {
    let signer = Signer::ed25519("ed");
    let fetcher = ScriptedFetcher::new(&[&signer]);
    let verifier = scripted_verifier(&fetcher);
    let token = signer.sign(&claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    tokio::time::advance(DEFAULT_JWKS_TTL - Duration::from_secs(1)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 2);
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let known = Signer::ed25519("known");
    let late = Signer::es256("late");
    let fetcher = ScriptedFetcher::new(&[&known]);
    let verifier = scripted_verifier(&fetcher);
    assert!(
        verifier
            .verify(&known.sign(&claims(json!({}))))
            .await
            .is_ok()
    );

    // An unknown kid refetches, in case the provider rotated its keys; it had not.
    let token = late.sign(&claims(json!({})));
    let unknown = Err(JwtError::UnknownKey(Some("late".into())));
    assert_eq!(verifier.verify(&token).await, unknown);
    assert_eq!(fetcher.fetches(), 2);

    // The provider publishes the key; a flood of tokens within the interval changes nothing.
    fetcher.serve(&[&known, &late]);
    for step in 0..29 {
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(verifier.verify(&token).await, unknown, "{step}");
    }
    assert_eq!(fetcher.fetches(), 2);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 3);

    // That refetch starts the interval again.
    let stranger = Signer::es256("stranger").sign(&claims(json!({})));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(verifier.verify(&stranger).await.is_err());
    assert_eq!(fetcher.fetches(), 3);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert!(verifier.verify(&stranger).await.is_err());
    assert_eq!(fetcher.fetches(), 4);
    assert!(verifier.verify(&stranger).await.is_err());
    assert_eq!(fetcher.fetches(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_expired_jwks_serves_while_one_caller_refreshes_it() {
    let signer = Signer::ed25519("ed");
    let fetcher = ScriptedFetcher::with_delay(&[&signer], Duration::from_secs(2));
    let verifier = Arc::new(scripted_verifier(&fetcher));
    assert_eq!(verifier.prefetch().await, Ok(1));
    tokio::time::advance(DEFAULT_JWKS_TTL).await;

    let token = signer.sign(&claims(json!({})));
    let refresher = {
        let (verifier, token) = (verifier.clone(), token.clone());
        tokio::spawn(async move { verifier.verify(&token).await })
    };
    tokio::task::yield_now().await;
    assert_eq!(fetcher.fetches(), 2, "the refresh is under way");
    let before = Instant::now();
    for _ in 0..10 {
        assert!(verifier.verify(&token).await.is_ok());
    }
    assert_eq!(Instant::now(), before, "the others did not wait for it");
    assert!(refresher.await.unwrap().is_ok());
    assert_eq!(fetcher.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_serving_the_expired_jwks() {
    let signer = Signer::rsa("a", RSA_A, JwtAlgorithm::Rs256);
    let fetcher = ScriptedFetcher::new(&[&signer]);
    let verifier = scripted_verifier(&fetcher);
    let token = signer.sign(&claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());

    fetcher.fail();
    tokio::time::advance(DEFAULT_JWKS_TTL).await;
    assert!(verifier.verify(&token).await.is_ok(), "the last good JWKS");
    assert_eq!(fetcher.fetches(), 2);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 2, "retried no sooner than the interval");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_fetch_is_retried_after_the_interval() {
    let signer = Signer::es256("ec");
    let fetcher = ScriptedFetcher::new(&[&signer]);
    fetcher.fail();
    let verifier = scripted_verifier(&fetcher);
    let token = signer.sign(&claims(json!({})));
    let unavailable = Err(JwtError::JwksUnavailable(
        "GET https://idp.test/jwks: connect: connection refused".into(),
    ));
    assert_eq!(verifier.verify(&token).await, unavailable);
    fetcher.serve(&[&signer]);
    tokio::time::advance(DEFAULT_MIN_REFETCH_INTERVAL - Duration::from_secs(1)).await;
    assert_eq!(verifier.verify(&token).await, unavailable);
    assert_eq!(fetcher.fetches(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(fetcher.fetches(), 2);
}

// --- Claims and challenges ---

#[test]
fn claims_give_sub_scopes_and_text() {
    let claims = Claims(
        serde_json::from_value(json!({
            "sub": "user-1", "scope": "pets:read  pets:write", "scp": ["admin", 7],
            "n": 42, "ok": true, "groups": ["a", "b"], "nothing": null,
        }))
        .unwrap(),
    );
    assert_eq!(claims.sub(), Some("user-1"));
    assert_eq!(
        claims.scopes().collect::<Vec<_>>(),
        ["pets:read", "pets:write", "admin"]
    );
    assert!(claims.has_scopes(&["admin".into()]));
    assert!(claims.has_scopes(&["nope".into(), "pets:write".into()]));
    assert!(!claims.has_scopes(&["pets".into()]));
    assert!(claims.has_scopes(&[]));
    assert_eq!(claims.text("sub").as_deref(), Some("user-1"));
    assert_eq!(claims.text("n").as_deref(), Some("42"));
    assert_eq!(claims.text("ok").as_deref(), Some("true"));
    assert_eq!(claims.text("groups").as_deref(), Some(r#"["a","b"]"#));
    assert_eq!(claims.text("nothing"), None);
    assert_eq!(claims.text("absent"), None);

    let azure = Claims(serde_json::from_value(json!({"scp": "User.Read Mail.Read"})).unwrap());
    assert!(azure.has_scopes(&["Mail.Read".into()]));
    let none = Claims(serde_json::from_value(json!({"sub": 1})).unwrap());
    assert_eq!(none.sub(), None);
    assert_eq!(none.scopes().count(), 0);
    assert!(!none.has_scopes(&["a".into()]));
}

#[test]
fn challenges_follow_rfc_6750() {
    assert_eq!(JwtError::MissingToken.www_authenticate(), "Bearer");
    assert_eq!(
        JwtError::WrongAudience.www_authenticate(),
        "Bearer error=\"invalid_token\", error_description=\"the token does not have a valid \
         audience\""
    );
    assert_eq!(
        JwtError::UnknownKey(Some("\"injected\r\n".into())).www_authenticate(),
        "Bearer error=\"invalid_token\", error_description=\"the token's signing key is unknown\""
    );
    assert_eq!(
        insufficient_scope(&[
            "pets:write".into(),
            "has space".into(),
            "quo\"te".into(),
            "admin".into()
        ]),
        "Bearer error=\"insufficient_scope\", error_description=\"the token does not have a \
         required scope\", scope=\"pets:write admin\""
    );
}
