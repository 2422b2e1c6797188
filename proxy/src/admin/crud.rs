//! The shape every admin collection has (API keys, access keys; deployments next):
//!
//! - `GET /admin/NAME`: every item, as `{"LIST": [...]}`;
//! - `POST /admin/NAME` with a JSON body: creates one (201);
//! - `GET /admin/NAME/{id}`, `PATCH /admin/NAME/{id}` with a JSON body, `DELETE /admin/NAME/{id}`
//!   (`{"deleted": id}`);
//!
//! 400 for a body that is not the collection's JSON, 404 naming the id, 405 for anything else.
//! A collection says what its items are and how they change; [`handle`] does the rest.

// The errors here are the admin responses themselves, made once per admin call.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{json, message, read_body};
use crate::node::Node;

/// An admin answer.
pub(crate) type Answer = Response<Full<Bytes>>;

/// One admin collection. Each change returns the item's JSON, or the answer that refuses it.
pub(crate) trait Collection {
    /// What a 404 calls an item: `no API key with id "..."`.
    const ITEM: &'static str;
    /// What a 400 calls a create body: `invalid key: ...`.
    const NEW_ITEM: &'static str;
    /// The list's field in the answer to `GET`.
    const LIST: &'static str;
    /// Largest request body.
    const MAX_BODY: usize;
    type Create: DeserializeOwned;
    type Patch: DeserializeOwned;

    fn list(node: &Node) -> Vec<Value>;
    fn get(node: &Node, id: &str) -> Option<Value>;
    fn create(node: &Node, body: Self::Create) -> impl Future<Output = Result<Value, Answer>>;
    /// `None` when there is no item with this id.
    fn patch(
        node: &Node,
        id: &str,
        body: Self::Patch,
    ) -> impl Future<Output = Result<Option<Value>, Answer>>;
    /// False when there is no item with this id.
    fn delete(node: &Node, id: &str) -> impl Future<Output = Result<bool, Answer>>;
}

/// Serves one request to collection `C`; `id` is the path after `/admin/NAME/` (empty for the
/// collection itself).
pub(crate) async fn handle<C: Collection>(
    node: &Arc<Node>,
    method: &Method,
    id: &str,
    body: Incoming,
) -> Answer {
    let outcome = match (method, id) {
        (&Method::GET, "") => Ok(json(
            StatusCode::OK,
            json!({ C::LIST: C::list(node) }).to_string(),
        )),
        (&Method::POST, "") => match read::<C::Create>(body, C::MAX_BODY, C::NEW_ITEM).await {
            Ok(body) => C::create(node, body)
                .await
                .map(|item| json(StatusCode::CREATED, item.to_string())),
            Err(answer) => Err(answer),
        },
        (&Method::GET, id) => Ok(C::get(node, id).map_or_else(
            || not_found::<C>(id),
            |item| json(StatusCode::OK, item.to_string()),
        )),
        (&Method::PATCH, id) if !id.is_empty() => {
            match read::<C::Patch>(body, C::MAX_BODY, "change").await {
                Ok(body) => C::patch(node, id, body).await.map(|item| match item {
                    Some(item) => json(StatusCode::OK, item.to_string()),
                    None => not_found::<C>(id),
                }),
                Err(answer) => Err(answer),
            }
        }
        (&Method::DELETE, id) if !id.is_empty() => {
            C::delete(node, id).await.map(|deleted| match deleted {
                true => json(StatusCode::OK, json!({ "deleted": id }).to_string()),
                false => not_found::<C>(id),
            })
        }
        _ => Ok(message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        )),
    };
    outcome.unwrap_or_else(|answer| answer)
}

/// 404 naming the id.
pub(crate) fn not_found<C: Collection>(id: &str) -> Answer {
    message(
        StatusCode::NOT_FOUND,
        format!("no {} with id \"{id}\"", C::ITEM),
    )
}

/// A JSON body of at most `limit` bytes; 400 naming `what` when it is not a `T`.
pub(crate) async fn read<T: DeserializeOwned>(
    body: Incoming,
    limit: usize,
    what: &str,
) -> Result<T, Answer> {
    let bytes = read_body(body, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| message(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}
