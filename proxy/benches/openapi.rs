//! OpenAPI import and export of a large API Gateway export: 500 operations on 250 paths
//! (an http_proxy GET and a mapped, validated POST on each, half behind a Lambda authorizer),
//! with 50 models and the root extensions: about 300 KB of JSON.
//!
//! - `openapi/import_500_operations`: text → Edgeway definition (the figure: well
//!   under a second).
//! - `openapi/export_500_operations`: the definition → OpenAPI document with extensions.
//!
//! `cargo bench -p edgeway --bench openapi`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench with a bad fixture should stop at once

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::config::{ExportOptions, export};
use edgeway::openapi::{Options, import_text};
use serde_json::{Map, Value, json};

fn document() -> String {
    let mut paths = Map::new();
    for i in 0..250 {
        let model = format!("Model{}", i % 50);
        let mut item = Map::new();
        item.insert(
            "get".into(),
            json!({
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "q", "in": "query", "required": true, "schema": { "type": "string" } },
                ],
                "security": if i % 2 == 0 { json!([{ "lambda": [] }]) } else { json!([]) },
                "x-amazon-apigateway-request-validator": "params",
                "x-amazon-apigateway-integration": {
                    "type": "http_proxy", "httpMethod": "GET",
                    "uri": format!("https://backend.example.com/r{i}/{{id}}"),
                    "requestParameters": { "integration.request.path.id": "method.request.path.id" },
                    "responses": { "default": { "statusCode": "200" } },
                },
            }),
        );
        item.insert(
            "post".into(),
            json!({
                "requestBody": { "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{model}") } } } },
                "x-amazon-apigateway-request-validator": "all",
                "x-amazon-apigateway-integration": {
                    "type": "http", "httpMethod": "PUT",
                    "uri": format!("https://backend.example.com/r{i}/{{id}}"),
                    "requestParameters": { "integration.request.path.id": "method.request.path.id" },
                    "requestTemplates": { "application/json": format!("#set($b = $input.path('$'))\n{{\"resource\": {i}, \"name\": \"$util.escapeJavaScript($b.name)\", \"items\": $input.json('$.items')}}") },
                    "passthroughBehavior": "when_no_templates",
                    "responses": {
                        "2\\d{2}": { "statusCode": "201", "responseTemplates": { "application/json": "{\"id\": $input.json('$.id')}" } },
                        "default": { "statusCode": "502" },
                    },
                },
            }),
        );
        paths.insert(format!("/r{i}/{{id}}"), Value::Object(item));
    }
    let schemas: Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("Model{i}"),
                json!({
                    "type": "object", "required": ["name"],
                    "properties": {
                        "name": { "type": "string", "minLength": 1 },
                        "items": { "type": "array", "items": { "$ref": "#/components/schemas/Item" } },
                    },
                }),
            )
        })
        .chain([(
            "Item".to_owned(),
            json!({ "type": "object", "properties": { "sku": { "type": "string" } } }),
        )])
        .collect();
    json!({
        "openapi": "3.0.1",
        "info": { "title": "Large", "version": "1" },
        "servers": [{ "url": "https://abc.execute-api.eu-west-1.amazonaws.com/{basePath}", "variables": { "basePath": { "default": "prod" } } }],
        "x-amazon-apigateway-request-validators": {
            "all": { "validateRequestBody": true, "validateRequestParameters": true },
            "params": { "validateRequestBody": false, "validateRequestParameters": true },
        },
        "x-amazon-apigateway-gateway-responses": { "DEFAULT_4XX": { "responseTemplates": { "application/json": "{\"message\": $context.error.messageString}" } } },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "lambda": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authorizer": {
                    "type": "token",
                    "authorizerUri": "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:auth/invocations",
                },
            } },
        },
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let text = document();
    let mut options = Options::default();
    options.functions.insert("auth".into(), "auth".into());
    let imported = import_text(&text, Path::new("large.json"), &options).unwrap();
    assert_eq!(
        imported
            .api
            .get("routes")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        500
    );
    let mut group = c.benchmark_group("openapi");
    group.sample_size(20);
    group.bench_function("import_500_operations", |b| {
        b.iter(|| import_text(black_box(&text), Path::new("large.json"), &options).unwrap())
    });
    let raw: edgeway::config::raw::RawApi = serde_json::from_value(imported.api.to_json()).unwrap();
    let export_options = ExportOptions {
        stage: "prod".into(),
        server_url: None,
        extensions: true,
        origin: None,
    };
    group.bench_function("export_500_operations", |b| {
        b.iter(|| export(black_box(&raw), &export_options, Path::new(".")))
    });
    group.finish();
    eprintln!("document: {} bytes", text.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
