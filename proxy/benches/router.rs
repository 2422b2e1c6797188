//! Route lookup in a table of 1,000 routes: literal, parameter, greedy-fallback and miss paths.
#![allow(clippy::expect_used)] // a bench with a bad fixture should stop at once
//!
//! `cargo bench -p edgeway --bench router`

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::router::{Router, parse_route_key};
use http::Method;
use std::hint::black_box;

/// 100 resources × 10 routes each, the shapes a large REST API has.
fn table() -> Router<usize> {
    let mut router = Router::new();
    let mut n = 0;
    for r in 0..100 {
        for key in [
            format!("GET /resource{r}"),
            format!("POST /resource{r}"),
            format!("GET /resource{r}/{{id}}"),
            format!("PUT /resource{r}/{{id}}"),
            format!("DELETE /resource{r}/{{id}}"),
            format!("GET /resource{r}/{{id}}/items"),
            format!("POST /resource{r}/{{id}}/items"),
            format!("GET /resource{r}/{{id}}/items/{{itemId}}"),
            format!("GET /resource{r}/search"),
            format!("ANY /resource{r}/files/{{proxy+}}"),
        ] {
            let (method, pattern) = parse_route_key(&key).expect("valid route");
            router
                .insert("prod", method, &pattern, n)
                .expect("unique route");
            n += 1;
        }
    }
    assert_eq!(router.len(), 1000);
    router
}

fn lookup(c: &mut Criterion) {
    let router = table();
    let mut group = c.benchmark_group("router_1000_routes");
    for (name, method, path) in [
        ("literal", Method::GET, "/prod/resource57/search"),
        ("param", Method::GET, "/prod/resource57/12345"),
        (
            "two_params",
            Method::GET,
            "/prod/resource99/12345/items/678",
        ),
        ("greedy", Method::GET, "/prod/resource3/files/a/b/c.txt"),
        (
            "method_not_allowed",
            Method::PATCH,
            "/prod/resource57/12345",
        ),
        ("not_found", Method::GET, "/prod/nothing/here"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let found = router.lookup(black_box(&method), black_box(path));
                black_box(found.map(|m| *m.route).ok())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
