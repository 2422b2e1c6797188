//! API keys: the registry the pipeline looks keys up in and the admin API manages.
//!
//! Keys are kept in a [`StateStore`] with only a SHA-256 of their value; the value is shown
//! once, when the key is created. [`ApiKeys`] is a [`Registry`] whose view indexes keys by that
//! hash, so a lookup on the request path is a hash and a map read with no lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::auth::registry::{Registry, View};
use crate::encoding::{hex, unhex32};
use crate::state::{StateError, StateStore, StoredKey};

/// Length of generated key values (alphanumeric; API Gateway's are 20 to 128).
pub const GENERATED_KEY_LEN: usize = 40;
/// Shortest value a user may bring (API Gateway's CSV import requires 30).
pub const MIN_IMPORTED_KEY_LEN: usize = 20;
/// Longest key value.
pub const MAX_KEY_LEN: usize = 128;

/// An API key as the gateway uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub description: String,
    pub plan: Option<String>,
    pub enabled: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// A number for this key, unique in this process and stable while the key exists: what
    /// the throttle state is keyed by, so that a request's check compares numbers, not ids.
    #[serde(skip)]
    pub slot: u64,
}

impl crate::telemetry::access_log::KeyId for ApiKey {
    fn key_id(&self) -> &str {
        &self.id
    }
}

impl ApiKey {
    fn from_stored(stored: &StoredKey, slot: u64) -> Self {
        Self {
            slot,
            id: stored.id.clone(),
            name: stored.name.clone(),
            description: stored.description.clone(),
            plan: stored.plan.clone(),
            enabled: stored.enabled,
            created: stored.created,
        }
    }
}

/// What a new key is made of.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub description: String,
    pub plan: Option<String>,
    pub enabled: bool,
    /// The value to use; one is generated when `None`.
    pub value: Option<String>,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` takes the key out of its plan.
    pub plan: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// Why a key change was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("a key with this value already exists")]
    Duplicate,
    #[error(transparent)]
    State(#[from] StateError),
}

type Digest = [u8; 32];

/// The request path's view of the keys: by hash of the value, with each key's slot.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_hash: HashMap<Digest, Arc<ApiKey>, foldhash::fast::RandomState>,
    /// Each key's [`ApiKey::slot`], by id: kept across changes while the key exists.
    slots: HashMap<String, u64>,
    /// The next [`ApiKey::slot`].
    next_slot: u64,
}

impl View<StoredKey> for KeyIndex {
    fn build(records: &HashMap<String, StoredKey>, previous: &Self) -> Self {
        let mut next_slot = previous.next_slot.max(1);
        let slots: HashMap<String, u64> = records
            .keys()
            .map(|id| {
                let slot = previous.slots.get(id).copied().unwrap_or_else(|| {
                    next_slot += 1;
                    next_slot - 1
                });
                (id.clone(), slot)
            })
            .collect();
        let by_hash = records
            .values()
            .filter_map(|k| {
                Some((
                    unhex32(&k.hash)?,
                    Arc::new(ApiKey::from_stored(k, slots[&k.id])),
                ))
            })
            .collect();
        Self {
            by_hash,
            slots,
            next_slot,
        }
    }
}

impl KeyIndex {
    fn key(&self, stored: &StoredKey) -> ApiKey {
        ApiKey::from_stored(stored, self.slots.get(&stored.id).copied().unwrap_or(0))
    }
}

/// The node's API keys.
#[derive(Debug)]
pub struct ApiKeys(Registry<StoredKey, KeyIndex>);

fn sha256(value: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, value.as_bytes()).as_ref());
    out
}

/// `len` random characters from `alphabet`.
pub(crate) fn random_text(len: usize, alphabet: &[u8]) -> Result<String, KeyError> {
    let rng = SystemRandom::new();
    // 256 is not a multiple of 62, so a plain modulo would favour some characters; reject
    // the bytes above the largest multiple instead.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut batch = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut batch)
            .map_err(|_| KeyError::Invalid("the system random source failed".into()))?;
        for &byte in &batch {
            if out.len() == len {
                break;
            }
            if usize::from(byte) < limit {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a key value a user brings.
pub fn check_value(value: &str) -> Result<(), KeyError> {
    if value.len() < MIN_IMPORTED_KEY_LEN || value.len() > MAX_KEY_LEN {
        return Err(KeyError::Invalid(format!(
            "a key value must be {MIN_IMPORTED_KEY_LEN} to {MAX_KEY_LEN} characters, not {}",
            value.len()
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::Invalid(
            "a key value must be printable ASCII without spaces".into(),
        ));
    }
    Ok(())
}

impl ApiKeys {
    /// Loads the keys in `store`.
    pub async fn open(store: Arc<dyn StateStore>) -> Result<Self, StateError> {
        Ok(Self(Registry::open(store).await?))
    }

    /// The key with this value, enabled or not. The request path: one SHA-256 and a map read.
    pub fn lookup(&self, value: &str) -> Option<Arc<ApiKey>> {
        self.0.load().view.by_hash.get(&sha256(value)).cloned()
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<ApiKey> {
        let now = self.0.load();
        now.records.get(id).map(|k| now.view.key(k))
    }

    /// Every key, by creation time then id.
    pub fn list(&self) -> Vec<ApiKey> {
        let now = self.0.load();
        let mut keys: Vec<ApiKey> = now.records.values().map(|k| now.view.key(k)).collect();
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        keys
    }

    /// Creates keys; returns each with its value (the only time a value is shown). All or
    /// none: a value that exists already or repeats within `new` refuses the whole batch.
    pub async fn create(&self, new: Vec<NewKey>) -> Result<Vec<(ApiKey, String)>, KeyError> {
        let mut values = Vec::with_capacity(new.len());
        let stored = self
            .0
            .put(|now| {
                let mut stored = Vec::with_capacity(new.len());
                let mut seen = std::collections::HashSet::new();
                let mut new_ids = std::collections::HashSet::new();
                for key in new {
                    if key.name.trim().is_empty() {
                        return Err(KeyError::Invalid("a key needs a name".into()));
                    }
                    let value = match key.value {
                        Some(v) => {
                            check_value(&v)?;
                            v
                        }
                        None => random_text(GENERATED_KEY_LEN, ALPHANUMERIC)?,
                    };
                    let hash = sha256(&value);
                    if now.view.by_hash.contains_key(&hash) || !seen.insert(hash) {
                        return Err(KeyError::Duplicate);
                    }
                    let id = loop {
                        let id = random_text(10, b"abcdefghijklmnopqrstuvwxyz0123456789")?;
                        if !now.records.contains_key(&id) && new_ids.insert(id.clone()) {
                            break id;
                        }
                    };
                    stored.push(StoredKey {
                        id,
                        name: key.name.trim().to_owned(),
                        description: key.description,
                        plan: key.plan,
                        enabled: key.enabled,
                        created: now_secs(),
                        hash: hex(&hash),
                    });
                    values.push(value);
                }
                Ok(stored)
            })
            .await?;
        let now = self.0.load();
        Ok(stored.iter().map(|k| now.view.key(k)).zip(values).collect())
    }

    /// Changes a key; `None` when there is no key with this id.
    pub async fn update(&self, id: &str, patch: KeyPatch) -> Result<Option<ApiKey>, KeyError> {
        let written = self
            .0
            .put(|now| {
                let Some(mut key) = now.records.get(id).cloned() else {
                    return Ok(Vec::new());
                };
                if let Some(name) = patch.name {
                    if name.trim().is_empty() {
                        return Err(KeyError::Invalid("a key needs a name".into()));
                    }
                    key.name = name.trim().to_owned();
                }
                if let Some(description) = patch.description {
                    key.description = description;
                }
                if let Some(plan) = patch.plan {
                    key.plan = plan;
                }
                if let Some(enabled) = patch.enabled {
                    key.enabled = enabled;
                }
                Ok(vec![key])
            })
            .await?;
        Ok(written.first().map(|k| self.0.load().view.key(k)))
    }

    /// Deletes a key; false when there is none with this id.
    pub async fn delete(&self, id: &str) -> Result<bool, KeyError> {
        Ok(self.0.delete(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EmbeddedStore;

    async fn open(dir: &std::path::Path) -> ApiKeys {
        ApiKeys::open(Arc::new(EmbeddedStore::open(dir).unwrap()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn lifecycle_and_persistence() {
        let dir = std::env::temp_dir().join(format!("edgeway-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (id, value) = {
            let keys = open(&dir).await;
            let created = keys
                .create(vec![NewKey {
                    name: "alice".into(),
                    plan: Some("basic".into()),
                    enabled: true,
                    ..NewKey::default()
                }])
                .await
                .unwrap();
            let (key, value) = created.into_iter().next().unwrap();
            assert_eq!(value.len(), GENERATED_KEY_LEN);
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(keys.lookup(&value).unwrap().id, key.id);
            assert!(keys.lookup("not-a-key").is_none());
            let disabled = KeyPatch {
                enabled: Some(false),
                ..KeyPatch::default()
            };
            assert!(
                !keys
                    .update(&key.id, disabled)
                    .await
                    .unwrap()
                    .unwrap()
                    .enabled
            );
            (key.id, value)
        };
        let keys = open(&dir).await;
        let found = keys.lookup(&value).unwrap();
        assert_eq!((found.id.as_str(), found.enabled), (id.as_str(), false));
        assert!(matches!(
            keys.create(vec![NewKey {
                name: "copy".into(),
                value: Some(value.clone()),
                ..NewKey::default()
            }])
            .await,
            Err(KeyError::Duplicate)
        ));
        assert!(keys.delete(&id).await.unwrap());
        assert!(keys.lookup(&value).is_none());
        // One process holds the database at a time: a second open while this one lives fails.
        assert!(EmbeddedStore::open(&dir).is_err());
        drop(keys);
        assert!(open(&dir).await.list().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn brought_values_are_checked() {
        assert!(check_value("short").is_err());
        assert!(check_value(&"x".repeat(129)).is_err());
        assert!(check_value("has a space in it, twenty+").is_err());
        assert!(check_value("apikey1234abcdefghij0123456789").is_ok());
    }
}

/// Where a route's API key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The `x-api-key` header.
    Header,
    /// The `usage-key` the route's authorizer returned.
    Authorizer,
}
