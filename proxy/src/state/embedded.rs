//! The embedded backend: one redb file, `<data dir>/state.redb`. Every write is a committed
//! transaction with redb's default durability (fsync before `commit` returns), so a write the
//! store acknowledged survives `kill -9` and power loss.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StateError, StateStore, StoredAccessKey, StoredKey, UsageIncrement};

/// Key id → the key as JSON.
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Access key id → the access key (with its secret) as JSON.
const ACCESS_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("access_keys");
/// (key id, day) → requests that day.
const USAGE: TableDefinition<(&str, u32), u64> = TableDefinition::new("usage_by_day");

/// State in a redb file.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

fn err(context: &str) -> impl Fn(&dyn std::fmt::Display) -> StateError + '_ {
    move |e| StateError(format!("{context}: {e}"))
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, creating the folder if needed.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("state.redb");
        let db = Database::create(&path)
            .map_err(|e| StateError(format!("opening {}: {e}", path.display())))?;
        // Create the tables, so that reads never find them missing.
        let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
        txn.open_table(KEYS).map_err(|e| err("api_keys")(&e))?;
        txn.open_table(ACCESS_KEYS)
            .map_err(|e| err("access_keys")(&e))?;
        txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
        txn.commit().map_err(|e| err("commit")(&e))?;
        Ok(Self { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StateStore for EmbeddedStore {
    fn put_keys(&self, keys: &[StoredKey]) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| err("begin")(&e))?;
        {
            let mut table = txn.open_table(KEYS).map_err(|e| err("api_keys")(&e))?;
            for key in keys {
                let json = serde_json::to_vec(key).map_err(|e| err("encoding a key")(&e))?;
                table
                    .insert(key.id.as_str(), json.as_slice())
                    .map_err(|e| err("writing a key")(&e))?;
            }
        }
        txn.commit().map_err(|e| err("commit")(&e))
    }

    fn delete_key(&self, id: &str) -> Result<bool, StateError> {
        let txn = self.db.begin_write().map_err(|e| err("begin")(&e))?;
        let removed = {
            let mut table = txn.open_table(KEYS).map_err(|e| err("api_keys")(&e))?;
            table
                .remove(id)
                .map_err(|e| err("removing a key")(&e))?
                .is_some()
        };
        txn.commit().map_err(|e| err("commit")(&e))?;
        Ok(removed)
    }

    fn keys(&self) -> Result<Vec<StoredKey>, StateError> {
        let txn = self.db.begin_read().map_err(|e| err("begin")(&e))?;
        let table = txn.open_table(KEYS).map_err(|e| err("api_keys")(&e))?;
        let mut keys = Vec::new();
        for entry in table.iter().map_err(|e| err("reading keys")(&e))? {
            let (id, json) = entry.map_err(|e| err("reading a key")(&e))?;
            let key: StoredKey = serde_json::from_slice(json.value())
                .map_err(|e| StateError(format!("key {} is not readable: {e}", id.value())))?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn put_access_keys(&self, keys: &[StoredAccessKey]) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| err("begin")(&e))?;
        {
            let mut table = txn
                .open_table(ACCESS_KEYS)
                .map_err(|e| err("access_keys")(&e))?;
            for key in keys {
                let json =
                    serde_json::to_vec(key).map_err(|e| err("encoding an access key")(&e))?;
                table
                    .insert(key.id.as_str(), json.as_slice())
                    .map_err(|e| err("writing an access key")(&e))?;
            }
        }
        txn.commit().map_err(|e| err("commit")(&e))
    }

    fn delete_access_key(&self, id: &str) -> Result<bool, StateError> {
        let txn = self.db.begin_write().map_err(|e| err("begin")(&e))?;
        let removed = {
            let mut table = txn
                .open_table(ACCESS_KEYS)
                .map_err(|e| err("access_keys")(&e))?;
            table
                .remove(id)
                .map_err(|e| err("removing an access key")(&e))?
                .is_some()
        };
        txn.commit().map_err(|e| err("commit")(&e))?;
        Ok(removed)
    }

    fn access_keys(&self) -> Result<Vec<StoredAccessKey>, StateError> {
        let txn = self.db.begin_read().map_err(|e| err("begin")(&e))?;
        let table = txn
            .open_table(ACCESS_KEYS)
            .map_err(|e| err("access_keys")(&e))?;
        let mut keys = Vec::new();
        for entry in table.iter().map_err(|e| err("reading access keys")(&e))? {
            let (id, json) = entry.map_err(|e| err("reading an access key")(&e))?;
            let key: StoredAccessKey = serde_json::from_slice(json.value()).map_err(|e| {
                StateError(format!("access key {} is not readable: {e}", id.value()))
            })?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn add_usage(&self, increments: &[UsageIncrement]) -> Result<(), StateError> {
        if increments.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| err("begin")(&e))?;
        {
            let mut table = txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
            for inc in increments {
                let key = (inc.key_id.as_str(), inc.day);
                let current = table
                    .get(key)
                    .map_err(|e| err("reading usage")(&e))?
                    .map_or(0, |v| v.value());
                table
                    .insert(key, current.saturating_add(inc.requests))
                    .map_err(|e| err("writing usage")(&e))?;
            }
        }
        txn.commit().map_err(|e| err("commit")(&e))
    }

    fn usage(
        &self,
        key_id: &str,
        days: RangeInclusive<u32>,
    ) -> Result<Vec<(u32, u64)>, StateError> {
        let txn = self.db.begin_read().map_err(|e| err("begin")(&e))?;
        let table = txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
        let range = table
            .range((key_id, *days.start())..=(key_id, *days.end()))
            .map_err(|e| err("reading usage")(&e))?;
        let mut out = Vec::new();
        for entry in range {
            let (key, count) = entry.map_err(|e| err("reading usage")(&e))?;
            out.push((key.value().1, count.value()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, hash: &str) -> StoredKey {
        StoredKey {
            id: id.into(),
            name: format!("name-{id}"),
            description: String::new(),
            plan: Some("basic".into()),
            enabled: true,
            created: 1_700_000_000,
            hash: hash.into(),
        }
    }

    #[test]
    fn keys_and_usage_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("edgeway-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = EmbeddedStore::open(&dir).unwrap();
            store.put_keys(&[key("a", "h1"), key("b", "h2")]).unwrap();
            let mut changed = key("a", "h1");
            changed.enabled = false;
            store.put_keys(&[changed]).unwrap();
            assert!(store.delete_key("b").unwrap());
            assert!(!store.delete_key("b").unwrap());
            let inc = |day, requests| UsageIncrement {
                key_id: "a".into(),
                day,
                requests,
            };
            store.add_usage(&[inc(100, 3), inc(101, 1)]).unwrap();
            store.add_usage(&[inc(100, 2)]).unwrap();
            let other = UsageIncrement {
                key_id: "ab".into(),
                day: 100,
                requests: 9,
            };
            store.add_usage(&[other]).unwrap();
        }
        let store = EmbeddedStore::open(&dir).unwrap();
        let keys = store.keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].enabled);
        assert_eq!(store.usage("a", 0..=200).unwrap(), [(100, 5), (101, 1)]);
        assert_eq!(store.usage("a", 101..=101).unwrap(), [(101, 1)]);
        assert_eq!(store.usage("ab", 0..=200).unwrap(), [(100, 9)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
