//! `GET /admin/plugins` and `PUT /admin/plugins/{name}`.
//!
//! A PUT body is the new component. It is compiled and checked against the plugin's role off
//! the request threads, written over the plugin's file (so a restart or reload keeps it), and
//! swapped in; calls already running finish on the old version. A component that fails is
//! refused with 422 and the reason, and the old version keeps serving.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::json;
use crate::node::Node;
use crate::plugins::SwapError;

/// The largest component a PUT may carry (components built from Python are tens of MiB).
const MAX_COMPONENT_BYTES: usize = 256 * 1024 * 1024;

/// Every configured plugin with its current version and that version's call statistics.
pub fn list(node: &Node) -> Response<Full<Bytes>> {
    let set = node.plugins.current();
    let mut names: Vec<&String> = set.by_name.keys().collect();
    names.sort();
    let plugins: Vec<serde_json::Value> = names
        .into_iter()
        .filter_map(|name| set.get(name))
        .map(|plugin| {
            let version = plugin.current();
            let loaded_at = humantime::format_rfc3339_millis(version.loaded_at).to_string();
            let counters = crate::plugins::counters(plugin);
            serde_json::json!({
                "name": plugin.spec.name,
                "role": plugin.spec.role,
                "file": plugin.spec.file.display().to_string(),
                "version": version.hash,
                "loaded_at": loaded_at,
                "stats": version.stats.snapshot(),
                "counters": counters,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::to_vec_pretty(&serde_json::json!({ "plugins": plugins })).unwrap_or_default(),
    )
}

/// Swaps in the component in `body` as plugin `name`'s new version.
pub async fn put(node: &Arc<Node>, name: &str, body: Incoming) -> Response<Full<Bytes>> {
    let bytes = match Limited::new(body, MAX_COMPONENT_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("cannot read the component: {e}");
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({ "message": message }).to_string(),
            );
        }
    };
    let host = node.plugins.clone();
    let name = name.to_owned();
    let swapped = tokio::task::spawn_blocking(move || {
        let result = host.swap(&name, &bytes, true);
        (name, result)
    })
    .await;
    match swapped {
        Ok((name, Ok(swapped))) => {
            if swapped.changed {
                tracing::info!(
                    plugin = name,
                    version = swapped.version,
                    source = "admin",
                    "plugin swapped"
                );
            }
            json(
                StatusCode::OK,
                serde_json::json!({ "name": name, "version": swapped.version, "changed": swapped.changed })
                    .to_string(),
            )
        }
        Ok((name, Err(SwapError::Unknown(_)))) => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "message": format!("no plugin named {name:?} is configured") })
                .to_string(),
        ),
        Ok((name, Err(error))) => {
            tracing::warn!(plugin = name, error = %error, source = "admin", "plugin refused");
            json(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({ "message": error.to_string() }).to_string(),
            )
        }
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "message": e.to_string() }).to_string(),
        ),
    }
}
