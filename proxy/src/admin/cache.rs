//! The stage caches in the admin API.
//!
//! - `GET /admin/cache`: every stage cache with its size and counters.
//! - `DELETE /admin/cache/{api}/{stage}`: flush the stage.
//! - `DELETE /admin/cache/{api}/{stage}?route=GET%20/pets/{id}&path.id=7`: drop the route's
//!   entries whose key parameters have the given values (any of `query.x`, `header.x`,
//!   `path.x`; none given drops all of the route's entries).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::json;
use crate::node::Node;

pub fn list(node: &Node) -> Response<Full<Bytes>> {
    let gateway = node.generation.load();
    let stages: Vec<serde_json::Value> = gateway
        .caches
        .all()
        .into_iter()
        .map(|cache| {
            let (entries, bytes) = cache.usage();
            let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let stats = &cache.stats;
            json!({
                "api": &*cache.api,
                "stage": &*cache.stage,
                "capacity_bytes": cache.capacity_bytes,
                "entries": entries,
                "bytes": bytes,
                "hits": count(&stats.hits),
                "misses": count(&stats.misses),
                "stores": count(&stats.stores),
                "evictions": count(&stats.evictions),
                "coalesced": count(&stats.coalesced),
            })
        })
        .collect();
    json(StatusCode::OK, json!({ "stages": stages }).to_string())
}

/// `rest` is the path after `/admin/cache/`.
pub fn delete(node: &Node, rest: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some((api, stage)) = rest.split_once('/').filter(|(_, s)| !s.contains('/')) else {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"message":"expected /admin/cache/{api}/{stage}"}"#,
        );
    };
    let gateway = node.generation.load();
    let Some(cache) = gateway.caches.get(api, stage) else {
        return json(
            StatusCode::NOT_FOUND,
            json!({ "message": format!("stage {stage} of api {api} has no cache") }).to_string(),
        );
    };
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            crate::encoding::query_pairs(q)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let route = pairs.iter().find(|(k, _)| k == "route").map(|(_, v)| v);
    let dropped = match route {
        None if pairs.is_empty() => cache.flush(),
        None => {
            return json(
                StatusCode::BAD_REQUEST,
                r#"{"message":"dropping entries by parameter needs `route`, e.g. ?route=GET%20/pets/{id}&path.id=7"}"#,
            );
        }
        Some(route) => {
            let filters: Vec<(String, String)> = pairs
                .iter()
                .filter(|(k, _)| k != "route")
                .cloned()
                .collect();
            cache.drop_matching(route, &filters)
        }
    };
    tracing::info!(api, stage, route, dropped, "cache entries dropped");
    json(
        StatusCode::OK,
        json!({ "api": api, "stage": stage, "dropped": dropped }).to_string(),
    )
}
