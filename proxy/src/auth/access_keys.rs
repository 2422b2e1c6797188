//! Access keys for SigV4 authorizers (the stand-in for IAM users' access keys): the registry
//! the pipeline looks secrets up in and the admin API manages.
//!
//! An access key is an id (`AKIA` and 16 upper-case letters and digits, like AWS's) and a
//! 40-character secret. SigV4 needs the secret itself to recompute a signature, so unlike API
//! keys the secret is stored as it is: the state folder (`state.path`) must be readable by the
//! gateway only. The secret is shown once, when the key is created.
//!
//! [`AccessKeys`] is a [`Registry`] whose view holds the enabled keys' secrets, so the request
//! path's [`SecretLookup`] is a map read with no lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::auth::keys::random_text;
use crate::auth::registry::{Registry, View};
use crate::auth::sigv4::{Secret, SecretLookup};
use crate::state::{StateError, StateStore, StoredAccessKey};

/// Every access key id starts with this, as AWS's long-term keys do.
pub const ACCESS_KEY_ID_PREFIX: &str = "AKIA";
/// Length of an access key id.
pub const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of a generated secret.
pub const SECRET_LEN: usize = 40;

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// AWS's secret alphabet: letters, digits, `+` and `/`.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// An access key as the admin API shows it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessKey {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

impl AccessKey {
    fn from_stored(stored: &StoredAccessKey) -> Self {
        Self {
            id: stored.id.clone(),
            name: stored.name.clone(),
            enabled: stored.enabled,
            created: stored.created,
        }
    }
}

/// Changes to an access key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccessKeyPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

/// Why an access key change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The request path's view: the secret of each enabled key.
#[derive(Debug, Default)]
pub struct Secrets(HashMap<String, Secret, foldhash::fast::RandomState>);

impl View<StoredAccessKey> for Secrets {
    fn build(records: &HashMap<String, StoredAccessKey>, _: &Self) -> Self {
        Self(
            records
                .values()
                .filter(|k| k.enabled)
                .map(|k| (k.id.clone(), Secret::new(k.secret.as_str())))
                .collect(),
        )
    }
}

/// The node's access keys.
#[derive(Debug)]
pub struct AccessKeys(Registry<StoredAccessKey, Secrets>);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random(len: usize, alphabet: &[u8]) -> Result<String, AccessKeyError> {
    random_text(len, alphabet).map_err(|e| AccessKeyError::Invalid(e.to_string()))
}

fn check_name(name: &str) -> Result<String, AccessKeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccessKeyError::Invalid("an access key needs a name".into()));
    }
    Ok(name.to_owned())
}

impl AccessKeys {
    /// Loads the access keys in `store`.
    pub async fn open(store: Arc<dyn StateStore>) -> Result<Self, StateError> {
        Ok(Self(Registry::open(store).await?))
    }

    /// The access key with this id, enabled or not.
    pub fn get(&self, id: &str) -> Option<AccessKey> {
        self.0.load().records.get(id).map(AccessKey::from_stored)
    }

    /// Every access key, by creation time then id.
    pub fn list(&self) -> Vec<AccessKey> {
        let mut keys: Vec<AccessKey> = self
            .0
            .load()
            .records
            .values()
            .map(AccessKey::from_stored)
            .collect();
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        keys
    }

    /// Creates an enabled (or disabled) key named `name`; returns it with its secret, the only
    /// time the secret is shown.
    pub async fn create(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<(AccessKey, String), AccessKeyError> {
        let name = check_name(name)?;
        let written = self
            .0
            .put(|now| {
                let id = loop {
                    let id = format!(
                        "{ACCESS_KEY_ID_PREFIX}{}",
                        random(ACCESS_KEY_ID_LEN - ACCESS_KEY_ID_PREFIX.len(), ID_ALPHABET)?
                    );
                    if !now.records.contains_key(&id) {
                        break id;
                    }
                };
                Ok::<_, AccessKeyError>(vec![StoredAccessKey {
                    id,
                    secret: random(SECRET_LEN, SECRET_ALPHABET)?,
                    name,
                    enabled,
                    created: now_secs(),
                }])
            })
            .await?;
        let stored = &written[0];
        Ok((AccessKey::from_stored(stored), stored.secret.clone()))
    }

    /// Changes a key; `None` when there is no key with this id.
    pub async fn update(
        &self,
        id: &str,
        patch: AccessKeyPatch,
    ) -> Result<Option<AccessKey>, AccessKeyError> {
        let written = self
            .0
            .put(|now| {
                let Some(mut stored) = now.records.get(id).cloned() else {
                    return Ok::<_, AccessKeyError>(Vec::new());
                };
                if let Some(name) = patch.name {
                    stored.name = check_name(&name)?;
                }
                if let Some(enabled) = patch.enabled {
                    stored.enabled = enabled;
                }
                Ok(vec![stored])
            })
            .await?;
        Ok(written.first().map(AccessKey::from_stored))
    }

    /// Deletes a key; false when there is none with this id.
    pub async fn delete(&self, id: &str) -> Result<bool, AccessKeyError> {
        Ok(self.0.delete(id).await?)
    }
}

/// The request path: one map read, no lock. Disabled keys have no secret.
impl SecretLookup for AccessKeys {
    fn secret(&self, access_key_id: &str) -> Option<Secret> {
        self.0.load().view.0.get(access_key_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EmbeddedStore;

    async fn open(dir: &std::path::Path) -> AccessKeys {
        AccessKeys::open(Arc::new(EmbeddedStore::open(dir).unwrap()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn lifecycle_and_persistence() {
        let dir = std::env::temp_dir().join(format!("edgeway-akeys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (id, secret) = {
            let keys = open(&dir).await;
            let (key, secret) = keys.create(" ci deploy ", true).await.unwrap();
            assert_eq!(key.name, "ci deploy");
            assert_eq!(key.id.len(), ACCESS_KEY_ID_LEN);
            assert!(key.id.starts_with("AKIA"));
            assert!(
                key.id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            );
            assert_eq!(secret.len(), SECRET_LEN);
            assert_eq!(keys.secret(&key.id).unwrap().expose(), secret);
            assert!(keys.secret("AKIANOTAKEY000000000").is_none());
            assert!(keys.create("  ", true).await.is_err());
            let off = AccessKeyPatch {
                enabled: Some(false),
                ..AccessKeyPatch::default()
            };
            assert!(!keys.update(&key.id, off).await.unwrap().unwrap().enabled);
            assert!(
                keys.secret(&key.id).is_none(),
                "a disabled key has no secret"
            );
            (key.id, secret)
        };
        let keys = open(&dir).await;
        assert_eq!(keys.list().len(), 1);
        let on = AccessKeyPatch {
            enabled: Some(true),
            name: Some("renamed".into()),
        };
        let key = keys.update(&id, on).await.unwrap().unwrap();
        assert_eq!((key.name.as_str(), key.enabled), ("renamed", true));
        assert_eq!(keys.secret(&id).unwrap().expose(), secret);
        assert!(keys.delete(&id).await.unwrap());
        assert!(!keys.delete(&id).await.unwrap());
        assert!(keys.secret(&id).is_none());
        assert!(
            keys.update(&id, AccessKeyPatch::default())
                .await
                .unwrap()
                .is_none()
        );
        drop(keys);
        assert!(open(&dir).await.list().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
