//! Node state that must outlive a process: API keys and their usage. A [`StateStore`] hides
//! the backend: [`EmbeddedStore`] (redb, a single-file ACID database under the node's data
//! directory) now; an etcd backend for a cluster can implement the same trait.
//!
//! The trait is written for backends that apply writes atomically on their side: usage is
//! added as increments ([`UsageIncrement`]), never read, modified and written back, so a
//! Redis or etcd backend can use its own atomic add.

mod embedded;

use std::ops::RangeInclusive;

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

/// A state backend failed; the operation did not happen.
#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StateError(pub String);

/// Where API keys and usage are kept.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// Inserts the keys, or replaces those with the same id, in one transaction.
    fn put_keys(&self, keys: &[StoredKey]) -> Result<(), StateError>;
    /// Removes a key; false if there was none with this id. Its usage records stay.
    fn delete_key(&self, id: &str) -> Result<bool, StateError>;
    /// Every key.
    fn keys(&self) -> Result<Vec<StoredKey>, StateError>;
    /// Inserts the access keys, or replaces those with the same id, in one transaction.
    fn put_access_keys(&self, keys: &[StoredAccessKey]) -> Result<(), StateError> {
        let _ = keys;
        Err(StateError("this backend does not keep access keys".into()))
    }
    /// Removes an access key; false if there was none with this id.
    fn delete_access_key(&self, id: &str) -> Result<bool, StateError> {
        let _ = id;
        Err(StateError("this backend does not keep access keys".into()))
    }
    /// Every access key (none for a backend that does not keep them).
    fn access_keys(&self) -> Result<Vec<StoredAccessKey>, StateError> {
        Ok(Vec::new())
    }
    /// Adds the increments to the per-day counts, all or none.
    fn add_usage(&self, increments: &[UsageIncrement]) -> Result<(), StateError>;
    /// A key's per-day counts for the days in `days` that have any, in day order.
    fn usage(&self, key_id: &str, days: RangeInclusive<u32>)
    -> Result<Vec<(u32, u64)>, StateError>;
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
