//! APIs, stages, deployments and canaries (the lifecycle `edgeway deploy`, `rollback` and
//! `canary` drive):
//!
//! - `GET /admin/apis`: every API with its stages and what each serves;
//!   `GET /admin/apis/{api}/stages`: one API's;
//! - `GET /admin/apis/{api}/deployments`: its deployments, oldest first (without
//!   definitions); `POST` with `{"stage", "description", "author"}` (all optional) deploys the
//!   API as the config file holds it now (201);
//! - `PUT /admin/apis/{api}/stages/{stage}/deployment` with `{"deployment": ID}` points the
//!   stage at a stored deployment; `POST .../rollback` with `{"to": ID}` or nothing points it
//!   at the deployment before its current one;
//! - `PUT /admin/apis/{api}/stages/{stage}/canary` with `{"percent", "variables",
//!   "use_stage_cache", "pin_header", "deployment", "description"}` starts or changes the
//!   canary; `POST .../canary/promote` promotes it; `DELETE .../canary` stops it;
//! - `PATCH /admin/apis/{api}/stages/{stage}` with a JSON merge patch of the stage's settings
//!   (`variables`, `cache`, `throttle`, `policy`, `docs`; `null` removes) sets them over the
//!   config file's; `DELETE .../settings` drops them (a stage served from a deployment only);
//! - `GET /admin/deployments/{id}` (with its definition), `DELETE /admin/deployments/{id}`
//!   (409 while a stage serves it), `GET /admin/deployments/{a}/diff/{b}`.
//!
//! A change answers once the node serves it. 404 names what is missing and what exists;
//! 409 says what to do first; 400 carries the config's or the request's errors.

#![allow(clippy::result_large_err)]

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::crud::Answer;
use super::{json as answer, message, read_body};
use crate::node::Node;
use crate::node::deploy::{CanaryRequest, DeployRequest, LifecycleError};
use crate::state::Deployment;

/// Largest request body: settings, not definitions.
const MAX_BODY: usize = 64 * 1024;

/// `/admin/apis[/...]` but `/admin/apis/{api}/openapi`; `rest` is the path after `/admin/apis`.
pub(crate) async fn apis(node: &Arc<Node>, method: &Method, rest: &str, body: Incoming) -> Answer {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let outcome = match (method, segments.as_slice()) {
        (&Method::GET, []) => list_apis(node).await,
        (&Method::GET, [api, "stages"]) => node
            .stage_status(api)
            .await
            .map(|s| ok(json!({ "api": api, "stages": s }))),
        (&Method::GET, [api, "deployments"]) => list_deployments(node, api).await,
        (&Method::POST, [api, "deployments"]) => match read::<DeployRequest>(body).await {
            Ok(request) => node
                .deploy(api, request)
                .await
                .map(|d| answer(StatusCode::CREATED, summary(&d, &[]).to_string())),
            Err(refused) => return refused,
        },
        (&Method::PUT, [api, "stages", stage, "deployment"]) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Point {
                deployment: String,
            }
            match read::<Point>(body).await {
                Ok(p) => node
                    .rollback(api, stage, Some(&p.deployment))
                    .await
                    .map(|p| ok(json!(p))),
                Err(refused) => return refused,
            }
        }
        (&Method::POST, [api, "stages", stage, "rollback"]) => {
            #[derive(Default, serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rollback {
                #[serde(default)]
                to: Option<String>,
            }
            match read::<Rollback>(body).await {
                Ok(r) => node
                    .rollback(api, stage, r.to.as_deref())
                    .await
                    .map(|p| ok(json!(p))),
                Err(refused) => return refused,
            }
        }
        (&Method::PUT, [api, "stages", stage, "canary"]) => {
            match read::<CanaryRequest>(body).await {
                Ok(c) => node.start_canary(api, stage, c).await.map(|p| ok(json!(p))),
                Err(refused) => return refused,
            }
        }
        (&Method::PATCH, [api, "stages", stage]) => match read::<Value>(body).await {
            Ok(patch) => node
                .set_stage(api, stage, Some(patch))
                .await
                .map(|p| ok(json!(p))),
            Err(refused) => return refused,
        },
        (&Method::DELETE, [api, "stages", stage, "settings"]) => {
            node.set_stage(api, stage, None).await.map(|p| ok(json!(p)))
        }
        (&Method::POST, [api, "stages", stage, "canary", "promote"]) => {
            node.promote_canary(api, stage).await.map(|p| ok(json!(p)))
        }
        (&Method::DELETE, [api, "stages", stage, "canary"]) => {
            node.stop_canary(api, stage).await.map(|p| ok(json!(p)))
        }
        _ => return message(StatusCode::NOT_FOUND, "Not Found"),
    };
    outcome.unwrap_or_else(refusal)
}

/// `/admin/deployments/...`; `rest` is the path after `/admin/deployments`.
pub(crate) async fn deployments(node: &Arc<Node>, method: &Method, rest: &str) -> Answer {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let outcome = match (method, segments.as_slice()) {
        (&Method::GET, [id]) => stored(node, id).await.map(|d| {
            let mut shown = summary(&d, &[]);
            shown["definition"] = d.definition;
            ok(shown)
        }),
        (&Method::DELETE, [id]) => node
            .delete_deployment(id)
            .await
            .map(|()| ok(json!({ "deleted": id }))),
        (&Method::GET, [from, "diff", to]) => {
            match (stored(node, from).await, stored(node, to).await) {
                (Ok(a), Ok(b)) => Ok(ok(json!({
                    "from": a.id,
                    "to": b.id,
                    "changes": crate::config::deploy::diff(&a.definition, &b.definition),
                }))),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        _ => return message(StatusCode::NOT_FOUND, "Not Found"),
    };
    outcome.unwrap_or_else(refusal)
}

async fn list_apis(node: &Node) -> Result<Answer, LifecycleError> {
    let config = node.config();
    let mut apis = Vec::new();
    for api in &config.apis {
        apis.push(json!({
            "name": api.name,
            "routes": api.routes.len(),
            "stages": node.stage_status(&api.name).await?,
        }));
    }
    Ok(ok(json!({ "apis": apis })))
}

async fn list_deployments(node: &Node, api: &str) -> Result<Answer, LifecycleError> {
    let stages = node.store.stages(api).await?;
    let list: Vec<Value> = node
        .store
        .deployments(api)
        .await?
        .iter()
        .map(|d| {
            let serving: Vec<String> = stages
                .iter()
                .filter_map(|p| {
                    if p.deployment == d.id {
                        Some(p.stage.clone())
                    } else if p.canary.as_ref().is_some_and(|c| c.deployment == d.id) {
                        Some(format!("{} (canary)", p.stage))
                    } else {
                        None
                    }
                })
                .collect();
            summary(d, &serving)
        })
        .collect();
    Ok(ok(json!({ "api": api, "deployments": list })))
}

async fn stored(node: &Node, id: &str) -> Result<Deployment, LifecycleError> {
    node.store
        .deployment(id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(format!("no deployment {id}")))
}

/// A deployment without its definition, and the stages that serve it.
fn summary(d: &Deployment, stages: &[String]) -> Value {
    json!({
        "id": d.id,
        "api": d.api,
        "description": d.description,
        "author": d.author,
        "created": d.created,
        "hash": d.hash,
        "stages": stages,
    })
}

fn ok(value: Value) -> Answer {
    answer(StatusCode::OK, value.to_string())
}

pub(super) fn refusal(error: LifecycleError) -> Answer {
    let status = match &error {
        LifecycleError::NotFound(_) => StatusCode::NOT_FOUND,
        LifecycleError::Conflict(_) => StatusCode::CONFLICT,
        LifecycleError::Invalid(_) => StatusCode::BAD_REQUEST,
        LifecycleError::State(_) | LifecycleError::Swap(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(status, error)
}

/// A JSON body; an empty one reads as `{}`.
pub(super) async fn read<T: DeserializeOwned>(body: Incoming) -> Result<T, Answer> {
    let bytes = read_body(body, MAX_BODY).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        message(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {e}"),
        )
    })
}
