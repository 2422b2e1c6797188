//! The stage cache and request validation on the request path.
//!
//! - `validation/order_4k`: a 4 KiB order (customer, address, 19 line items) parsed and checked
//!   against a realistic draft 4 schema: required fields, types, string patterns and lengths,
//!   enums, numeric bounds, nested objects and arrays. Also the same with a 2020-12 schema.
//! - `cache/hit`: building a request's key (path and query parameters) and serving a hit:
//!   lookup, freshness, and the response with `x-cache` and `Age`, in a stage cache holding
//!   10,000 entries.
//!
//! `cargo bench -p edgeway --bench cache_validation`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::cache::{Lookup, StageCache, Storable};
use edgeway::validation::BodySchema;
use edgeway::validation::params::RequestParam;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde_json::json;

fn order_schema(draft_2020: bool) -> serde_json::Value {
    let mut schema = json!({
        "title": "Order",
        "type": "object",
        "required": ["id", "customer", "shipping", "items", "currency", "created"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^ord_[A-Za-z0-9]{16}$"},
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY"]},
            "created": {"type": "string", "minLength": 20, "maxLength": 32},
            "notes": {"type": "string", "maxLength": 500},
            "customer": {
                "type": "object",
                "required": ["id", "email", "name"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 120},
                    "tier": {"type": "string", "enum": ["standard", "gold", "platinum"]}
                }
            },
            "shipping": {
                "type": "object",
                "required": ["line1", "city", "postcode", "country"],
                "properties": {
                    "line1": {"type": "string", "maxLength": 200},
                    "line2": {"type": "string", "maxLength": 200},
                    "city": {"type": "string", "maxLength": 100},
                    "postcode": {"type": "string", "pattern": "^[A-Z0-9 -]{3,10}$"},
                    "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
                }
            },
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity", "unit_price"],
                    "additionalProperties": false,
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{6}$"},
                        "title": {"type": "string", "maxLength": 200},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 999},
                        "unit_price": {"type": "number", "minimum": 0},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                        "gift": {"type": "boolean"}
                    }
                }
            }
        }
    });
    if draft_2020 {
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    }
    schema
}

fn order_body() -> Bytes {
    let items: Vec<serde_json::Value> = (0..19)
        .map(|i| {
            json!({
                "sku": format!("ABC-{:06}", 100_000 + i),
                "title": format!("Stainless steel water bottle, 750 ml, colour {i}, with a spare lid and a carry strap"),
                "quantity": 1 + i % 5,
                "unit_price": 12.5 + f64::from(i),
                "tags": ["kitchen", "outdoor", "gift-ideas"],
                "gift": i % 3 == 0
            })
        })
        .collect();
    let body = json!({
        "id": "ord_A1b2C3d4E5f6G7h8",
        "currency": "EUR",
        "created": "2026-11-21T10:15:30.123Z",
        "notes": "Please leave the parcel with the neighbour at number 12 if nobody is at home. Ring twice.",
        "customer": {"id": 48213, "email": "ada.lovelace@example.com", "name": "Ada Lovelace", "tier": "gold"},
        "shipping": {"line1": "12 Analytical Engine Street", "line2": "Flat 3", "city": "London", "postcode": "NW1 6XE", "country": "GB"},
        "items": items
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    assert!(
        (3800..=4400).contains(&bytes.len()),
        "the body should be about 4 KiB, is {}",
        bytes.len()
    );
    Bytes::from(bytes)
}

fn validation(c: &mut Criterion) {
    let body = order_body();
    for (name, draft_2020) in [("order_4k_draft4", false), ("order_4k_2020_12", true)] {
        let schema = BodySchema::compile("bench".into(), &order_schema(draft_2020)).unwrap();
        assert!(schema.check(&body).is_ok(), "the fixture is valid");
        c.bench_function(&format!("validation/{name}"), |b| {
            b.iter(|| schema.check(black_box(&body)))
        });
    }
    // What the JSON parse alone costs of the above.
    c.bench_function("validation/order_4k_parse_only", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
    });
    let schema = BodySchema::compile("bench".into(), &order_schema(false)).unwrap();
    let mut bad: serde_json::Value = serde_json::from_slice(&body).unwrap();
    bad["items"][3]["quantity"] = json!(0);
    bad["customer"]["email"] = json!("not-an-email");
    let bad = Bytes::from(serde_json::to_vec(&bad).unwrap());
    assert!(schema.check(&bad).is_err());
    c.bench_function("validation/order_4k_two_errors", |b| {
        b.iter(|| schema.check(black_box(&bad)))
    });
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let cache = StageCache::new("shop", "prod", 256 * 1024 * 1024);
    let route: Arc<str> = Arc::from("GET /pets/{id}");
    let params: Arc<[RequestParam]> = Arc::from(vec![
        RequestParam::Path {
            name: "id".into(),
            index: 0,
        },
        RequestParam::Query("lang".into()),
    ]);
    let rules = Storable {
        statuses: None,
        ignore_cache_control: false,
        max_entry_bytes: 1 << 20,
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from_static("100"));
    headers.insert(
        "date",
        HeaderValue::from_static("Sat, 21 Nov 2026 08:00:00 GMT"),
    );
    let request = |id: u32| {
        Request::get(format!("/prod/pets/{id}?lang=en&utm=x"))
            .header("accept", "application/json")
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    runtime.block_on(async {
        for id in 0..10_000u32 {
            let parts = request(id);
            let id_text = id.to_string();
            let key = StageCache::key(&Method::GET, &route, 1, &params, &parts, &[&id_text]);
            let Lookup::Miss(fill) = cache.lookup(key, Duration::ZERO).await else {
                panic!("cold");
            };
            let mut collecting = fill
                .begin(
                    StatusCode::OK,
                    &headers,
                    &rules,
                    Duration::from_secs(3600),
                    params.clone(),
                )
                .unwrap();
            collecting.data(&Bytes::from(vec![b'x'; 100]));
            collecting.finish();
        }
    });
    let parts = request(4242);
    c.bench_function("cache/hit_10k_entries", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let key = StageCache::key(&Method::GET, &route, 1, &params, &parts, &["4242"]);
                match cache.lookup(black_box(key), Duration::ZERO).await {
                    Lookup::Hit(entry, age) => entry.to_response(age),
                    Lookup::Miss(_) => panic!("warm"),
                }
            })
        })
    });
}

criterion_group!(benches, validation, cache_hit);
criterion_main!(benches);
