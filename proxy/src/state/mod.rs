//! Node state that must outlive a process: API keys, access keys, their usage, deployments and
//! the stage → deployment pointers. A [`StateStore`] hides the backend, chosen by
//! `state.backend` in config: [`EmbeddedStore`] (redb, a single-file ACID database under the
//! node's data directory) now; an etcd backend for a cluster implements the same trait.
//!
//! Every operation is async and fallible, as a networked backend's are. The trait is written
//! for backends that apply writes atomically on their side: usage is added as increments
//! ([`UsageIncrement`]), never read, modified and written back, so a Redis or etcd backend can
//! use its own atomic add. Deployments are immutable; a stage changes by pointing at another
//! one, and [`StateStore::watch`] reports both (in-process for the embedded store, an etcd
//! watch later), so every node can follow what one node's admin API deployed.

mod embedded;
#[cfg(test)]
pub(crate) mod suite;

use std::ops::RangeInclusive;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedStore;

/// An API key as stored: everything but its value, of which only a SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Stable identifier, used in the admin API and in usage records.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The usage plan the key belongs to, by name.
    #[serde(default)]
    pub plan: Option<String>,
    pub enabled: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Lowercase hex SHA-256 of the key's value.
    pub hash: String,
}

/// An access key for SigV4 authorizers as stored. The secret is kept as it is (SigV4 needs
/// it to recompute signatures): the state folder must be readable by the gateway only. `Debug`
/// leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccessKey {
    /// The access key id (`AKIA...`, 20 characters).
    pub id: String,
    /// The secret access key.
    pub secret: String,
    pub name: String,
    pub enabled: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

impl std::fmt::Debug for StoredAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("created", &self.created)
            .finish()
    }
}

/// Requests to add to a key's count for one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    pub key_id: String,
    /// Days since 1970-01-01 (UTC).
    pub day: u32,
    pub requests: u64,
}

/// One deployment of an API: an immutable snapshot of its definition, which stages point at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Unique in the store; a deployment is written once and never changed.
    pub id: String,
    /// The API's name.
    pub api: String,
    #[serde(default)]
    pub description: String,
    /// Who deployed it, when the admin API was told (`author` in the request).
    #[serde(default)]
    pub author: Option<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Lowercase hex SHA-256 of `definition` as compact JSON: two deployments of the same
    /// definition have the same hash.
    #[serde(default)]
    pub hash: String,
    /// The API's definition as deployed (its config entry, as JSON).
    pub definition: serde_json::Value,
}

/// Which deployment a stage of an API serves, and its canary if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePointer {
    pub api: String,
    pub stage: String,
    pub deployment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Stage settings set through the admin API on top of the config file's: a JSON merge
    /// patch (RFC 7386) of the stage's `variables`, `cache`, `throttle`, `policy` and `docs`,
    /// where `null` removes. Settings belong to the stage, so a deploy, rollback or promote
    /// keeps them. None: the file's settings alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

/// A stage's canary: a share of its requests served by another deployment of its API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The deployment the canary serves.
    pub deployment: String,
    /// The share of the stage's requests sent to the canary, 0.0 to 100.0.
    pub percent: f64,
    /// Stage variables that the canary's requests see instead of the stage's own.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    /// Whether the canary's requests read and fill the stage cache (API Gateway's
    /// `useStageCache`); off by default, so the canary's answers never reach the base.
    #[serde(default)]
    pub use_stage_cache: bool,
    /// A request header that picks the side: `canary` (or `true`) for the canary, `base`
    /// (or `false`) for the stage's deployment; any other value, or none, splits at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_header: Option<String>,
}

/// A usage plan created through the admin API (the config file's own plans are not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlan {
    pub name: String,
    /// The plan as the config file writes one under `usage_plans` (its `name` included).
    pub definition: serde_json::Value,
    /// Unix seconds.
    pub created: u64,
}

/// API Gateway's answer to deleting a deployment that a stage (or its canary) still serves.
pub const DEPLOYMENT_IN_USE: &str =
    "Active stages pointing to this deployment must be moved or deleted";

/// A change to deployments or stage pointers, as a [`Watch`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new deployment was written.
    Deployment { id: String, api: String },
    /// A stage now points at another deployment (or its canary changed).
    Stage(StagePointer),
    /// A deployment was deleted.
    Deleted { id: String, api: String },
    /// A stored usage plan was written or deleted.
    Plan { name: String },
    /// The watcher fell behind and missed changes: it should read what it follows again.
    Missed,
}

/// Changes, in the order the store made them.
#[derive(Debug)]
pub struct Watch {
    changes: tokio::sync::broadcast::Receiver<Change>,
}

impl Watch {
    pub(crate) fn new(changes: tokio::sync::broadcast::Receiver<Change>) -> Self {
        Self { changes }
    }

    /// The next change; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<Change> {
        use tokio::sync::broadcast::error::RecvError;
        match self.changes.recv().await {
            Ok(change) => Some(change),
            Err(RecvError::Lagged(_)) => Some(Change::Missed),
            Err(RecvError::Closed) => None,
        }
    }
}

/// A state operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The backend failed (I/O, a corrupt record, a lost connection).
    #[error("state store: {0}")]
    Backend(String),
    /// The write contradicts what is stored: a deployment id that exists, a stage pointed at a
    /// deployment that does not, or one of another API.
    #[error("{0}")]
    Conflict(String),
}

/// What a store operation returns: the stores' work is I/O (a disk sync, a network round
/// trip), so every operation is a future.
pub type StateFuture<'a, T> = BoxFuture<'a, Result<T, StateError>>;

/// Where API keys, usage, deployments and stage pointers are kept.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// Inserts the keys, or replaces those with the same id, in one transaction.
    fn put_keys(&self, keys: Vec<StoredKey>) -> StateFuture<'_, ()>;
    /// Removes a key; false if there was none with this id. Its usage records stay.
    fn delete_key(&self, id: &str) -> StateFuture<'_, bool>;
    /// Every key.
    fn keys(&self) -> StateFuture<'_, Vec<StoredKey>>;
    /// Inserts the access keys, or replaces those with the same id, in one transaction.
    fn put_access_keys(&self, keys: Vec<StoredAccessKey>) -> StateFuture<'_, ()>;
    /// Removes an access key; false if there was none with this id.
    fn delete_access_key(&self, id: &str) -> StateFuture<'_, bool>;
    /// Every access key.
    fn access_keys(&self) -> StateFuture<'_, Vec<StoredAccessKey>>;
    /// Adds the increments to the per-day counts, all or none.
    fn add_usage(&self, increments: Vec<UsageIncrement>) -> StateFuture<'_, ()>;
    /// A key's per-day counts for the days in `days` that have any, in day order.
    fn usage(&self, key_id: &str, days: RangeInclusive<u32>) -> StateFuture<'_, Vec<(u32, u64)>>;
    /// Writes a new deployment; [`StateError::Conflict`] when its id exists.
    fn put_deployment(&self, deployment: Deployment) -> StateFuture<'_, ()>;
    /// The deployment with this id.
    fn deployment(&self, id: &str) -> StateFuture<'_, Option<Deployment>>;
    /// An API's deployments, oldest first: by `created`, then in the order they were written
    /// (two made within one second keep their order, whatever their ids).
    fn deployments(&self, api: &str) -> StateFuture<'_, Vec<Deployment>>;
    /// Deletes a deployment; false if there was none with this id, [`StateError::Conflict`]
    /// (with [`DEPLOYMENT_IN_USE`]) while a stage or a canary points at it.
    fn delete_deployment(&self, id: &str) -> StateFuture<'_, bool>;
    /// Points a stage (and its canary, if any) at deployments of its API, replacing what it
    /// pointed at; [`StateError::Conflict`] when a deployment is missing or another API's.
    fn point_stage(&self, pointer: StagePointer) -> StateFuture<'_, ()>;
    /// An API's stage pointers, by stage name.
    fn stages(&self, api: &str) -> StateFuture<'_, Vec<StagePointer>>;
    /// Writes a usage plan; `Conflict` if one of that name is stored.
    fn put_plan(&self, plan: StoredPlan) -> StateFuture<'_, ()>;
    /// Deletes a usage plan; false when there was none of that name.
    fn delete_plan(&self, name: &str) -> StateFuture<'_, bool>;
    /// Every stored usage plan, by name.
    fn plans(&self) -> StateFuture<'_, Vec<StoredPlan>>;
    /// Changes to deployments and stage pointers from now on, whoever made them.
    fn watch(&self) -> Watch;
}

#[cfg(test)]
mod tests {
    use super::StoredAccessKey;

    #[test]
    fn debug_leaves_the_secret_out() {
        let key = StoredAccessKey {
            id: "AKIAEXAMPLE000000000".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            name: "ci".into(),
            enabled: true,
            created: 0,
        };
        let shown = format!("{key:?}");
        assert!(shown.contains("AKIAEXAMPLE000000000"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    }
}
