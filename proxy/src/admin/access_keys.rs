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

use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crud::{self, Answer, Collection};
use super::message;
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

fn key_error(e: AccessKeyError) -> Answer {
    match e {
        AccessKeyError::Invalid(_) => message(StatusCode::BAD_REQUEST, e),
        AccessKeyError::State(_) => {
            tracing::error!(error = %e, "access key change failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// The access keys as an admin collection.
struct AccessKeys;

impl Collection for AccessKeys {
    const ITEM: &'static str = "access key";
    const NEW_ITEM: &'static str = "access key";
    const LIST: &'static str = "access_keys";
    const MAX_BODY: usize = MAX_BODY;
    type Create = CreateBody;
    type Patch = PatchBody;

    fn list(node: &Node) -> Vec<Value> {
        node.access_keys
            .list()
            .iter()
            .map(|k| key_json(k, None))
            .collect()
    }

    fn get(node: &Node, id: &str) -> Option<Value> {
        node.access_keys.get(id).map(|k| key_json(&k, None))
    }

    async fn create(node: &Node, body: CreateBody) -> Result<Value, Answer> {
        let enabled = body.enabled.unwrap_or(true);
        let (key, secret) = node
            .access_keys
            .create(&body.name, enabled)
            .await
            .map_err(key_error)?;
        tracing::info!(access_key = key.id, name = key.name, "access key created");
        Ok(key_json(&key, Some(&secret)))
    }

    async fn patch(node: &Node, id: &str, body: PatchBody) -> Result<Option<Value>, Answer> {
        let change = AccessKeyPatch {
            name: body.name,
            enabled: body.enabled,
        };
        let changed = node
            .access_keys
            .update(id, change)
            .await
            .map_err(key_error)?;
        Ok(changed.map(|key| {
            tracing::info!(
                access_key = key.id,
                enabled = key.enabled,
                "access key changed"
            );
            key_json(&key, None)
        }))
    }

    async fn delete(node: &Node, id: &str) -> Result<bool, Answer> {
        let deleted = node.access_keys.delete(id).await.map_err(key_error)?;
        if deleted {
            tracing::info!(access_key = id, "access key deleted");
        }
        Ok(deleted)
    }
}

/// `rest` is the path after `/admin/access-keys` (empty or `/ID`).
pub async fn handle(node: &Arc<Node>, method: &Method, rest: &str, body: Incoming) -> Answer {
    crud::handle::<AccessKeys>(node, method, rest.strip_prefix('/').unwrap_or(rest), body).await
}
