//! Access keys for SigV4 authorizers in the admin API.
//!
//! - `POST /admin/access-keys` `{"name", "enabled"?}`: creates a key; the answer (201) is the
//!   only place its secret (`secret_access_key`) ever appears.
//! - `GET /admin/access-keys`, `GET /admin/access-keys/{id}`: keys without secrets.
//! - `PATCH /admin/access-keys/{id}` `{"name"?, "enabled"?}`: a disabled key's signatures are
//!   refused at once.
//! - `DELETE /admin/access-keys/{id}`.

// The errors here are the admin responses themselves, made once per admin call.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::{json, message, read_body};
use crate::auth::access_keys::{AccessKey, AccessKeyError, AccessKeyPatch};
use crate::node::Node;

/// Largest admin request body here: a name and a flag.
const MAX_BODY: usize = 64 * 1024;

fn key_json(key: &AccessKey, secret: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "id": key.id,
        "name": key.name,
        "enabled": key.enabled,
        "created": key.created,
    });
    if let Some(secret) = secret {
        v["secret_access_key"] = json!(secret);
    }
    v
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn read<T: serde::de::DeserializeOwned>(
    body: Incoming,
    what: &str,
) -> Result<T, Response<Full<Bytes>>> {
    let bytes = read_body(body, MAX_BODY).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| message(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}

fn key_error(e: AccessKeyError) -> Response<Full<Bytes>> {
    match e {
        AccessKeyError::Invalid(_) => message(StatusCode::BAD_REQUEST, e),
        AccessKeyError::State(_) => {
            tracing::error!(error = %e, "access key change failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

fn not_found(id: &str) -> Response<Full<Bytes>> {
    message(
        StatusCode::NOT_FOUND,
        format!("no access key with id \"{id}\""),
    )
}

/// `rest` is the path after `/admin/access-keys` (empty or `/ID`).
pub async fn handle(
    node: &Arc<Node>,
    method: &Method,
    rest: &str,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let id = rest.strip_prefix('/').unwrap_or(rest);
    let outcome = match (method, id) {
        (&Method::GET, "") => {
            let keys: Vec<_> = node
                .access_keys
                .list()
                .iter()
                .map(|k| key_json(k, None))
                .collect();
            Ok(json(
                StatusCode::OK,
                json!({ "access_keys": keys }).to_string(),
            ))
        }
        (&Method::POST, "") => create(node, body).await,
        (&Method::GET, id) => Ok(match node.access_keys.get(id) {
            Some(key) => json(StatusCode::OK, key_json(&key, None).to_string()),
            None => not_found(id),
        }),
        (&Method::PATCH, id) if !id.is_empty() => patch(node, id, body).await,
        (&Method::DELETE, id) if !id.is_empty() => match node.access_keys.delete(id).await {
            Ok(true) => {
                tracing::info!(access_key = id, "access key deleted");
                Ok(json(StatusCode::OK, json!({ "deleted": id }).to_string()))
            }
            Ok(false) => Ok(not_found(id)),
            Err(e) => Ok(key_error(e)),
        },
        _ => Ok(message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        )),
    };
    outcome.unwrap_or_else(|response| response)
}

async fn create(
    node: &Arc<Node>,
    body: Incoming,
) -> Result<Response<Full<Bytes>>, Response<Full<Bytes>>> {
    let body: CreateBody = read(body, "access key").await?;
    let enabled = body.enabled.unwrap_or(true);
    let created = node.access_keys.create(&body.name, enabled).await;
    Ok(match created {
        Ok((key, secret)) => {
            tracing::info!(access_key = key.id, name = key.name, "access key created");
            json(
                StatusCode::CREATED,
                key_json(&key, Some(&secret)).to_string(),
            )
        }
        Err(e) => key_error(e),
    })
}

async fn patch(
    node: &Arc<Node>,
    id: &str,
    body: Incoming,
) -> Result<Response<Full<Bytes>>, Response<Full<Bytes>>> {
    let body: PatchBody = read(body, "change").await?;
    let change = AccessKeyPatch {
        name: body.name,
        enabled: body.enabled,
    };
    Ok(match node.access_keys.update(id, change).await {
        Ok(Some(key)) => {
            tracing::info!(
                access_key = key.id,
                enabled = key.enabled,
                "access key changed"
            );
            json(StatusCode::OK, key_json(&key, None).to_string())
        }
        Ok(None) => not_found(id),
        Err(e) => key_error(e),
    })
}
