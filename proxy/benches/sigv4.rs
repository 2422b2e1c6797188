//! SigV4 verification of one request, as the authorize phase runs it: requests signed once
//! with the `aws-sigv4` crate, verified against a fixed `now` with the signing key cached (a
//! client's second and later requests of the day).
//!
//! - `sigv4/get_header`: GET with a query string and 4 headers, `Authorization` header form.
//! - `sigv4/post_4k_json`: POST of a 4 KiB JSON body, hashed as part of verification.
//! - `sigv4/get_presigned`: the same GET as a presigned URL.
//! - `sigv4/get_header_cold_key`: the first GET, deriving the signing key (4 more HMACs).
//! - `sigv4/sign_1k`: the other direction, an `aws` integration signing its outgoing request
//!   (a 1 KiB DynamoDB `PutItem`) with `edgeway::upstream::aws::sign_request`.
//!
//! `cargo bench -p edgeway --bench sigv4`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use edgeway::auth::sigv4::{Payload, Secret, SigV4Settings, SigV4Verifier};
use http::request::Parts;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn signed_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_256_100) // 2026-11-21T10:15:00Z
}

fn signed(method: &str, uri: &str, body: &[u8], presign: bool) -> Parts {
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0",
        )
        .header(
            "amz-sdk-invocation-id",
            "9e8a1c7e-0f57-4d0b-a3a1-5f0d2c6a7b11",
        )
        .body(body.to_vec())
        .unwrap();
    let identity = Credentials::new(ACCESS_KEY, SECRET, None, None, "bench").into();
    let mut settings = SigningSettings::default();
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(900));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(signed_at())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    // As an HTTP/1.1 server hands it over: origin-form URI and a Host header.
    let (mut parts, _) = request.into_parts();
    parts.headers.insert(
        "host",
        parts.uri.authority().unwrap().as_str().parse().unwrap(),
    );
    parts.uri = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    parts
}

fn json_4k() -> Vec<u8> {
    let mut body = String::from("{\"items\":[");
    let mut i = 0;
    while body.len() < 4_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"sku\":\"SKU-{i:05}\",\"name\":\"Item number {i}\",\"qty\":{},\"price\":{}.99}}",
            i % 7 + 1,
            i * 3 + 10
        ));
        i += 1;
    }
    body.push_str("]}");
    body.into_bytes()
}

fn bench_sigv4(c: &mut Criterion) {
    let verifier = SigV4Verifier::new(SigV4Settings::default());
    // The state store's lookup stands in as a map (its own cost is benched with the store).
    let secrets = HashMap::from([(ACCESS_KEY.to_owned(), Secret::new(SECRET))]);
    let now = signed_at() + Duration::from_secs(2);
    let uri = "https://abc123.execute-api.example.com/prod/pets/42/orders?limit=25&status=open";

    let mut run = |name: &str, parts: Parts, body: &[u8]| {
        // Once outside the loop: checks the fixture and caches the signing key.
        verifier
            .verify(&parts, Payload::Buffered(body), &secrets, now)
            .unwrap();
        c.bench_function(name, |b| {
            b.iter(|| {
                verifier
                    .verify(
                        black_box(&parts),
                        Payload::Buffered(black_box(body)),
                        &secrets,
                        now,
                    )
                    .unwrap()
            })
        });
    };
    run("sigv4/get_header", signed("GET", uri, b"", false), b"");
    let body = json_4k();
    run(
        "sigv4/post_4k_json",
        signed("POST", uri, &body, false),
        &body,
    );
    run("sigv4/get_presigned", signed("GET", uri, b"", true), b"");

    let parts = signed("GET", uri, b"", false);
    c.bench_function("sigv4/get_header_cold_key", |b| {
        b.iter_batched_ref(
            || SigV4Verifier::new(SigV4Settings::default()),
            |verifier| {
                verifier
                    .verify(black_box(&parts), Payload::Buffered(b""), &secrets, now)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

/// An `aws` integration's outgoing request: a 1 KiB DynamoDB `PutItem`, signed.
fn bench_sign(c: &mut Criterion) {
    use edgeway::upstream::aws::{AwsCredentials, sign_request};
    let mut item = String::from(
        "{\"TableName\":\"orders\",\"Item\":{\"id\":{\"S\":\"ord_1\"},\"note\":{\"S\":\"",
    );
    item.push_str(&"x".repeat(1024 - item.len() - 4));
    item.push_str("\"}}}");
    assert_eq!(item.len(), 1024);
    let body = bytes::Bytes::from(item);
    let credentials = AwsCredentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
    };
    c.bench_function("sigv4/sign_1k", |b| {
        b.iter_batched(
            || {
                http::Request::builder()
                    .method("POST")
                    .uri("https://dynamodb.us-east-1.amazonaws.com/")
                    .header("content-type", "application/x-amz-json-1.0")
                    .header("x-amz-target", "DynamoDB_20120810.PutItem")
                    .body(body.clone())
                    .unwrap()
            },
            |mut request| {
                sign_request(
                    &mut request,
                    &credentials,
                    "us-east-1",
                    "dynamodb",
                    signed_at(),
                )
                .unwrap();
                request
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_sigv4, bench_sign);
criterion_main!(benches);
