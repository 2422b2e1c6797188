//! API keys in the admin API.
//!
//! - `POST /admin/keys` `{"name", "plan"?, "description"?, "enabled"?, "value"?}`: creates a
//!   key; the answer (201) is the only place its value ever appears.
//! - `GET /admin/keys`, `GET /admin/keys/{id}`: keys without values.
//! - `PATCH /admin/keys/{id}` `{"name"?, "description"?, "plan"? (null: no plan), "enabled"?}`.
//! - `DELETE /admin/keys/{id}`.
//! - `POST /admin/keys/import` with API Gateway's CSV (`Name`, `Key`, `Description`, `Enabled`,
//!   `UsagePlanIds`; header names in any case and order): all rows or none.
//!
//! A plan must be one of the current config's `usage_plans`.

// The errors here are the admin responses themselves, made once per admin call.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crud::{self, Answer, Collection};
use super::{json, message, read_body};
use crate::auth::keys::{ApiKey, KeyError, KeyPatch, NewKey};
use crate::node::Node;

/// Largest admin request body (a CSV of many thousand keys fits).
const MAX_BODY: usize = 16 * 1024 * 1024;

fn key_json(key: &ApiKey, value: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "id": key.id,
        "name": key.name,
        "description": key.description,
        "plan": key.plan,
        "enabled": key.enabled,
        "created": key.created,
    });
    if let Some(value) = value {
        v["value"] = json!(value);
    }
    v
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Absent: unchanged; `null`: out of its plan.
    #[serde(default, deserialize_with = "present")]
    plan: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_plan(node: &Node, plan: Option<&str>) -> Result<(), Response<Full<Bytes>>> {
    let Some(plan) = plan else { return Ok(()) };
    let gateway = node.generation.load();
    if gateway.usage_plans.iter().any(|p| p.name == plan) {
        return Ok(());
    }
    let names: Vec<&str> = gateway
        .usage_plans
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    Err(message(
        StatusCode::BAD_REQUEST,
        format!(
            "no usage plan named \"{plan}\" (configured: {})",
            names.join(", ")
        ),
    ))
}

fn key_error(e: KeyError) -> Response<Full<Bytes>> {
    match e {
        KeyError::Invalid(_) => message(StatusCode::BAD_REQUEST, e),
        KeyError::Duplicate => message(StatusCode::CONFLICT, e),
        KeyError::State(_) => {
            tracing::error!(error = %e, "API key change failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// The API keys as an admin collection.
struct Keys;

impl Collection for Keys {
    const ITEM: &'static str = "API key";
    const NEW_ITEM: &'static str = "key";
    const LIST: &'static str = "keys";
    const MAX_BODY: usize = MAX_BODY;
    type Create = CreateBody;
    type Patch = PatchBody;

    fn list(node: &Node) -> Vec<Value> {
        node.keys.list().iter().map(|k| key_json(k, None)).collect()
    }

    fn get(node: &Node, id: &str) -> Option<Value> {
        node.keys.get(id).map(|k| key_json(&k, None))
    }

    async fn create(node: &Node, body: CreateBody) -> Result<Value, Answer> {
        check_plan(node, body.plan.as_deref())?;
        let new = NewKey {
            name: body.name,
            description: body.description,
            plan: body.plan,
            enabled: body.enabled.unwrap_or(true),
            value: body.value,
        };
        let (key, value) = node
            .keys
            .create(vec![new])
            .await
            .map_err(key_error)?
            .remove(0);
        tracing::info!(
            key = key.id,
            name = key.name,
            plan = key.plan,
            "API key created"
        );
        Ok(key_json(&key, Some(&value)))
    }

    async fn patch(node: &Node, id: &str, body: PatchBody) -> Result<Option<Value>, Answer> {
        if let Some(Some(plan)) = &body.plan {
            check_plan(node, Some(plan))?;
        }
        let change = KeyPatch {
            name: body.name,
            description: body.description,
            plan: body.plan,
            enabled: body.enabled,
        };
        let changed = node.keys.update(id, change).await.map_err(key_error)?;
        Ok(changed.map(|key| {
            tracing::info!(
                key = key.id,
                enabled = key.enabled,
                plan = key.plan,
                "API key changed"
            );
            key_json(&key, None)
        }))
    }

    async fn delete(node: &Node, id: &str) -> Result<bool, Answer> {
        let deleted = node.keys.delete(id).await.map_err(key_error)?;
        if deleted {
            tracing::info!(key = id, "API key deleted");
        }
        Ok(deleted)
    }
}

/// `rest` is the path after `/admin/keys` (empty, `/ID` or `/import`).
pub async fn handle(node: &Arc<Node>, method: &Method, rest: &str, body: Incoming) -> Answer {
    let id = rest.strip_prefix('/').unwrap_or(rest);
    if (method, id) == (&Method::POST, "import") {
        return import(node, body).await.unwrap_or_else(|answer| answer);
    }
    crud::handle::<Keys>(node, method, id, body).await
}

/// One imported row, before it is checked against the plans.
fn parse_csv(text: &[u8]) -> Result<Vec<NewKey>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(name_at), Some(key_at)) = (column("name"), column("key")) else {
        return Err("the header line needs the columns Name and Key".into());
    };
    let (description_at, enabled_at, plans_at) = (
        column("description"),
        column("enabled"),
        column("usageplanids"),
    );
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field = |at: Option<usize>| at.and_then(|a| record.get(a)).unwrap_or_default();
        let enabled = match field(enabled_at).to_ascii_lowercase().as_str() {
            "" | "true" => true,
            "false" => false,
            other => {
                problems.push(format!(
                    "line {line}: Enabled is \"{other}\", not true or false"
                ));
                continue;
            }
        };
        let plans: Vec<&str> = field(plans_at)
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if plans.len() > 1 {
            problems.push(format!(
                "line {line}: a key belongs to one usage plan here, this row names {}",
                plans.len()
            ));
            continue;
        }
        keys.push(NewKey {
            name: field(Some(name_at)).to_owned(),
            description: field(description_at).to_owned(),
            plan: plans.first().map(|p| (*p).to_owned()),
            enabled,
            value: Some(field(Some(key_at)).to_owned()),
        });
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems.join("; "))
    }
}

async fn import(
    node: &Arc<Node>,
    body: Incoming,
) -> Result<Response<Full<Bytes>>, Response<Full<Bytes>>> {
    let bytes = read_body(body, MAX_BODY).await?;
    let rows = parse_csv(&bytes).map_err(|e| message(StatusCode::BAD_REQUEST, e))?;
    for row in &rows {
        check_plan(node, row.plan.as_deref())?;
    }
    let count = rows.len();
    match node.keys.create(rows).await {
        Ok(created) => {
            tracing::info!(count, "API keys imported");
            let keys: Vec<_> = created.iter().map(|(k, _)| key_json(k, None)).collect();
            Ok(json(
                StatusCode::OK,
                json!({ "imported": count, "keys": keys }).to_string(),
            ))
        }
        Err(e) => Ok(key_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_csv;

    #[test]
    fn csv_as_api_gateway_exports_it() {
        let text = b"Enabled,Name,key,UsageplanIds\ntrue,MyFirstApiKey,apikey1234abcdefghij0123456789,\"basic\"\nfalse,Second, apikey1234abcdefghij0123456780 ,\n";
        let keys = parse_csv(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, "MyFirstApiKey");
        assert_eq!(keys[0].plan.as_deref(), Some("basic"));
        assert!(keys[0].enabled && !keys[1].enabled);
        assert_eq!(
            keys[1].value.as_deref(),
            Some("apikey1234abcdefghij0123456780")
        );
        assert!(parse_csv(b"Name\nx\n").is_err());
        let err = parse_csv(b"Name,Key,Enabled,UsagePlanIds\na,k,maybe,\nb,k2,true,\"p1,p2\"\n")
            .unwrap_err();
        assert!(err.contains("line 2") && err.contains("line 3"), "{err}");
    }
}
