//! `GET /admin/domains`: the custom domains the node serves, with their base path mappings.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::json;
use crate::node::Node;

pub fn list(node: &Node) -> Response<Full<Bytes>> {
    let gateway = node.generation.load();
    let domains: Vec<serde_json::Value> = gateway
        .domains
        .sorted()
        .into_iter()
        .map(|d| {
            json!({
                "name": d.name,
                "tls": d.tls.as_ref().map(|t| t.cert.display().to_string()),
                "private": d.policy.is_some(),
                "mappings": d.mappings.iter().map(|m| json!({
                    "base_path": m.base_path,
                    "api": m.api,
                    "stage": m.stage,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(StatusCode::OK, json!({ "domains": domains }).to_string())
}
