//! Header rewriting on the proxy path: a browser-like request toward the origin, and an
#![allow(clippy::expect_used)] // a bench with a bad fixture should stop at once
//! origin's response toward the client. Each iteration rewrites a fresh copy of the map.
//!
//! `cargo bench -p edgeway --bench headers`

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::upstream::headers::{Forwarded, rewrite_request, rewrite_response};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::hint::black_box;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
            HeaderValue::from_str(value).expect("valid value"),
        );
    }
    headers
}

fn rewrite(c: &mut Criterion) {
    let request = map(&[
        ("host", "api.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        ),
        ("accept", "application/json, text/plain, */*"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
        (
            "authorization",
            "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
        ),
        ("content-type", "application/json"),
        ("origin", "https://app.example.com"),
        ("referer", "https://app.example.com/dashboard"),
        ("cookie", "session=abc123; theme=dark"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "203.0.113.9"),
    ]);
    let response = map(&[
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("cache-control", "max-age=60"),
        ("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
        ("date", "Sat, 21 Nov 2026 08:00:00 GMT"),
        ("server", "origin"),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
    ]);
    let request_id = HeaderValue::from_static("0b7a4c3e-9f51-4a8e-8d1e-6c2f3a9b7d10");
    let authority = HeaderValue::from_static("api.example.com");
    let client_ip = HeaderValue::from_static("198.51.100.23");
    let forwarded = Forwarded {
        client_ip: &client_ip,
        proto: "https",
        host: Some(&authority),
        request_id: &request_id,
    };

    // A client straight to the gateway over HTTP/1.1: no hop-by-hop headers, no proxy before us.
    let mut direct = request.clone();
    direct.remove("connection");
    direct.remove("x-forwarded-for");

    // Each case rewrites a fresh clone; `clone_only` is that clone alone, to subtract.
    let mut group = c.benchmark_group("headers");
    for (name, headers) in [("direct_client", &direct), ("behind_proxy", &request)] {
        group.bench_function(format!("clone_only/{name}"), |b| {
            b.iter(|| black_box(headers.clone()))
        });
        group.bench_function(format!("rewrite_request/{name}"), |b| {
            b.iter(|| {
                let mut headers = headers.clone();
                rewrite_request(&mut headers, black_box(&forwarded));
                headers
            })
        });
    }
    group.bench_function("clone_only/response", |b| {
        b.iter(|| black_box(response.clone()))
    });
    group.bench_function("rewrite_response", |b| {
        b.iter(|| {
            let mut headers = response.clone();
            rewrite_response(&mut headers, black_box(&request_id));
            headers
        })
    });
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
