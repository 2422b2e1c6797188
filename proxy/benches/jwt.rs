//! JWT verification on the request path, with the issuer's key already cached: the header,
//! the signature, the claims (iss, aud, sub, exp, iat, scope and a few custom ones, about
//! 600 bytes as a Cognito ID token has) and their checks.
//!
//! - `jwt/verify_rs256_2048`: the issue's target, at most 50 µs median.
//! - `jwt/verify_es256`, `jwt/verify_eddsa`: for reference.
//!
//! `cargo bench -p edgeway --bench jwt`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::auth::jwks::{JwksFetchError, JwksFetcher};
use edgeway::auth::jwt::{JwtSettings, JwtVerifier};
use futures_util::future::BoxFuture;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";
const CLIENT: &str = "4m1b2c3d4e5f6g7h8i9j0k1l2m";

/// A JWKS that is always the same document.
#[derive(Debug)]
struct StaticJwks(Bytes);

impl JwksFetcher for StaticJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<Bytes, JwksFetchError>> {
        let document = self.0.clone();
        Box::pin(async move { Ok(document) })
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": "7d8ca528-4931-4254-9273-ea5ee853f271",
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "auth_time": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
        "scope": "openid profile pets/read pets/write orders/read",
        "email": "ada.lovelace@example.com",
        "email_verified": true,
        "cognito:username": "ada",
        "cognito:groups": ["admins", "billing"],
        "custom:tenant": "acme-eu",
        "custom:plan": "gold",
        "jti": "c0a8e1f2-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    });
    let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    format!("{signed}.{}", b64(&sign(signed.as_bytes())))
}

fn verify(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::from_der(include_bytes!("../src/auth/testdata/rsa-2048-a.der")).unwrap();
    let ec_pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let ed =
        Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();

    let rsa_public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let point = ec.public_key().as_ref();
    let keys: Vec<Value> = vec![
        json!({"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": b64(&rsa_public.n), "e": b64(&rsa_public.e)}),
        json!({"kty": "EC", "kid": "ec", "use": "sig", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        json!({"kty": "OKP", "kid": "ed", "use": "sig", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())}),
    ];
    let document = Bytes::from(json!({ "keys": keys }).to_string());

    let mut settings = JwtSettings::new(ISSUER, "https://idp.invalid/jwks.json");
    settings.audiences = vec![CLIENT.into()];
    let verifier = JwtVerifier::with_fetcher(settings, Arc::new(StaticJwks(document))).unwrap();
    // Criterion's async support is not enabled; `block_on` on a current-thread runtime is a
    // few dozen nanoseconds around a future that completes at once with the key cached.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(verifier.prefetch()), Ok(3));

    let tokens = [
        (
            "jwt/verify_rs256_2048",
            token("RS256", "rsa", |message| {
                let mut signature = vec![0; rsa.public().modulus_len()];
                rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .unwrap();
                signature
            }),
        ),
        (
            "jwt/verify_es256",
            token("ES256", "ec", |message| {
                ec.sign(&rng, message).unwrap().as_ref().to_vec()
            }),
        ),
        (
            "jwt/verify_eddsa",
            token("EdDSA", "ed", |message| ed.sign(message).as_ref().to_vec()),
        ),
    ];
    for (name, token) in &tokens {
        let claims = runtime.block_on(verifier.verify(token)).unwrap();
        assert!(claims.has_scopes(&["pets/write".into()]));
        c.bench_function(name, |b| {
            b.iter(|| runtime.block_on(verifier.verify(black_box(token))).unwrap())
        });
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
