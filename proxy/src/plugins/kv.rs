//! The node-local key-value store behind the `kv` import.
//!
//! One store for the node, weighed in bytes, with a namespace per plugin (a plugin sees only
//! its own keys) and an optional TTL per entry. When full, moka evicts the entries least
//! likely to be used again, so plugins must treat it as a cache.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::sync::Cache;

/// Default size of the store: 64 MiB of keys and values.
pub const DEFAULT_KV_CAPACITY: u64 = 64 * 1024 * 1024;

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Option<Duration>,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _at: Instant) -> Option<Duration> {
        entry.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        entry.ttl
    }
}

/// Keys and values plugins keep between calls.
pub struct KvStore {
    entries: Cache<String, Entry>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

fn scoped(plugin: &str, key: &str) -> String {
    let mut scoped = String::with_capacity(plugin.len() + 1 + key.len());
    scoped.push_str(plugin);
    scoped.push('\0');
    scoped.push_str(key);
    scoped
}

impl KvStore {
    /// A store holding at most `capacity` bytes of keys and values.
    pub fn new(capacity: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(capacity)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len()).unwrap_or(u32::MAX)
            })
            .expire_after(EntryTtl)
            .build();
        Self { entries }
    }

    /// The value `plugin` stored under `key`, unless it expired or was evicted.
    pub fn get(&self, plugin: &str, key: &str) -> Option<Bytes> {
        self.entries.get(&scoped(plugin, key)).map(|e| e.value)
    }

    /// Stores `value` under `key` for `plugin`, for `ttl` when given.
    pub fn set(&self, plugin: &str, key: String, value: Bytes, ttl: Option<Duration>) {
        self.entries
            .insert(scoped(plugin, &key), Entry { value, ttl });
    }

    /// Removes `plugin`'s `key`.
    pub fn delete(&self, plugin: &str, key: &str) {
        self.entries.invalidate(&scoped(plugin, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_see_only_their_own_keys() {
        let kv = KvStore::new(1024 * 1024);
        kv.set("a", "k".into(), Bytes::from_static(b"1"), None);
        kv.set("b", "k".into(), Bytes::from_static(b"2"), None);
        assert_eq!(kv.get("a", "k").as_deref(), Some(&b"1"[..]));
        assert_eq!(kv.get("b", "k").as_deref(), Some(&b"2"[..]));
        kv.delete("a", "k");
        assert_eq!(kv.get("a", "k"), None);
        assert_eq!(kv.get("b", "k").as_deref(), Some(&b"2"[..]));
    }
}
