//! Lambda proxy events and responses, as a `function` integration with an `aws-proxy-*`
//! payload builds and reads them per request.
//!
//! - `lambda/event_v1` and `lambda/event_v2`: a `POST /prod/orders/{id}` with 10 headers (one
//!   repeated, a cookie), a 3-parameter query, a path parameter, two stage variables, an
//!   authorizer context and a 1 KiB JSON body, as a 1.0 and a 2.0 event serialized to bytes.
//! - `lambda/parse_v2`: a 2.0 response with headers, two cookies and a 1 KiB body.
//!
//! `cargo bench -p edgeway --bench lambda`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::lambda::{EventAuthorizer, EventRequest, event_v1, event_v2, parse_v2};
use http::{HeaderMap, HeaderValue};

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.signature"),
        ("x-request-id", "7f9c2b4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"),
        ("x-forwarded-for", "203.0.113.7"),
        ("cookie", "session=abc123; theme=dark"),
    ] {
        h.append(name, HeaderValue::from_static(value));
    }
    h.append("accept", HeaderValue::from_static("text/plain"));
    h
}

fn bench(c: &mut Criterion) {
    let headers = headers();
    let body = format!("{{\"items\":\"{}\"}}", "x".repeat(1010));
    let params = [("id".to_owned(), "ord_1234".to_owned())];
    let variables = [
        ("backend".to_owned(), "v2".to_owned()),
        ("color".to_owned(), "blue".to_owned()),
    ];
    let context = [
        ("tier".to_owned(), "gold".to_owned()),
        ("org".to_owned(), "acme".to_owned()),
    ];
    let request = EventRequest {
        method: "POST",
        path: "/prod/orders/ord_1234",
        route_path: "/orders/ord_1234",
        resource: "/orders/{id}",
        route_key: "POST /orders/{id}",
        stage: "prod",
        query: Some("expand=items&expand=customer&dry_run=false"),
        headers: &headers,
        path_parameters: &params,
        stage_variables: &variables,
        body: body.as_bytes(),
        request_id: "7f9c2b4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        source_ip: "203.0.113.7",
        received_at: std::time::SystemTime::now(),
        protocol: "HTTP/1.1",
        api: "orders",
        authorizer: Some(EventAuthorizer {
            principal_id: "alice",
            context: &context,
        }),
        api_key: None,
        client_cert: None,
    };
    let mut group = c.benchmark_group("lambda");
    group.bench_function("event_v1", |b| {
        b.iter(|| serde_json::to_vec(&event_v1(black_box(&request))).unwrap())
    });
    group.bench_function("event_v2", |b| {
        b.iter(|| serde_json::to_vec(&event_v2(black_box(&request))).unwrap())
    });
    let response = serde_json::json!({
        "statusCode": 201,
        "headers": { "content-type": "application/json", "x-order": "ord_1234" },
        "cookies": ["a=1", "b=2; Secure"],
        "body": body,
    })
    .to_string();
    group.bench_function("parse_v2", |b| {
        b.iter(|| parse_v2(black_box(response.as_bytes())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
