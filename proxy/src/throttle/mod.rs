//! Throttling and quotas (pipeline phase 6): token buckets at every level API Gateway has
//! (node-wide account, stage, route, and per API key in its usage plan) and quota counters per
//! key and UTC calendar window.
//!
//! - [`TokenBucket`]: one bucket's arithmetic, on tokio's clock.
//! - [`Buckets`]: many buckets by id in a sharded map, so that 100,000 keys cost one hash and
//!   one short, rarely contended lock per check.
//! - [`Counters`]: quota counts behind a trait whose only write is an atomic add that returns
//!   the new total, so a Redis backend (`INCRBY` with the window's end as expiry) can replace
//!   [`LocalCounters`] for a cluster of edge nodes without read-modify-write races.
//! - [`quota`]: the calendar windows.

mod bucket;
mod limiter;
pub mod quota;
mod slots;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use tokio::time::Instant;

pub use bucket::{Refused, TokenBucket};
pub use limiter::{
    Caller, Limiter, PlanLimits, RateLimitHeaders, Refusal, Scope, SharedBucket, wall_secs,
};
pub use quota::Window;

use crate::config::Throttle;
use crate::sync::lock;

const SHARDS: usize = 64;

type Hasher = foldhash::fast::RandomState;

/// A map split into `SHARDS` locked parts by key hash, so concurrent requests for different
/// keys rarely wait on each other. Buckets and counters both live in one.
#[derive(Debug)]
struct Sharded<K, V> {
    hasher: Hasher,
    shards: Box<[Mutex<HashMap<K, V, Hasher>>]>,
}

impl<K: Hash + Eq, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Self {
            hasher: Hasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// The locked part that holds `key`.
    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, V, Hasher>> {
        lock(&self.shards[(self.hasher.hash_one(key) as usize) % SHARDS])
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Token buckets by id, created full on first use.
#[derive(Debug)]
pub struct Buckets<K>(Sharded<K, TokenBucket>);

impl<K: Hash + Eq + Clone> Default for Buckets<K> {
    fn default() -> Self {
        Self(Sharded::default())
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Takes a token from `id`'s bucket under `limits`.
    pub fn take(&self, id: &K, limits: &Throttle, now: Instant) -> Result<(), Refused> {
        self.take_counted(id, limits, now).map(|_| ())
    }

    /// Takes a token from `id`'s bucket under `limits`; returns the whole tokens left.
    pub fn take_counted(&self, id: &K, limits: &Throttle, now: Instant) -> Result<u64, Refused> {
        let mut map = self.0.shard(id);
        let bucket = match map.get_mut(id) {
            Some(bucket) => bucket,
            None => map
                .entry(id.clone())
                .or_insert_with(|| TokenBucket::full(limits, now)),
        };
        bucket.take(limits, now)?;
        Ok(bucket.remaining())
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no bucket has been used.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who a quota count belongs to: a usage plan and a key id. `slot` names the pair within this
/// process (see [`crate::keys::ApiKey::slot`]); the local backend keys its map by it alone, so a
/// count compares numbers rather than strings. A backend shared by several nodes names the
/// count by `plan` and `key_id` instead (slots differ from node to node).
#[derive(Debug, Clone, Default)]
pub struct CounterKey {
    pub slot: u64,
    pub plan: Box<str>,
    pub key_id: Box<str>,
}

/// Quota counts. Implementations apply `add` atomically and return the total after it.
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// Adds `n` to `key`'s count in `window`; returns the count including this add.
    fn add(&self, key: &CounterKey, window: &Window, n: u64) -> u64;
    /// `key`'s count in `window`.
    fn get(&self, key: &CounterKey, window: &Window) -> u64;
    /// Forgets windows that ended before `now` (seconds since the epoch).
    fn expire(&self, now: u64);
}

/// Counters in this node's memory: per key, the count of its current window (a count from an
/// earlier window is replaced when a later one begins).
#[derive(Debug, Default)]
pub struct LocalCounters(slots::SlotTable<(Window, u64)>);

impl Counters for LocalCounters {
    fn add(&self, key: &CounterKey, window: &Window, n: u64) -> u64 {
        let Some(mut held) = self.0.get(key.slot) else {
            // Past the table's end (see `SlotTable`): nothing can be held, so every add is
            // over any quota.
            return u64::MAX;
        };
        let (held_window, count) = &mut *held;
        if *held_window == *window {
            *count = count.saturating_add(n);
            return *count;
        }
        if held_window.start > window.start {
            // A later window is already counting; an add for an older one is late.
            return n;
        }
        *held_window = *window;
        *count = n;
        n
    }

    fn get(&self, key: &CounterKey, window: &Window) -> u64 {
        self.0
            .get(key.slot)
            .filter(|held| held.0 == *window)
            .map_or(0, |held| held.1)
    }

    /// Nothing to do: a count is replaced when its key's next window begins, and a count of
    /// an ended window reads as 0. The table's memory is fixed by the slots used.
    fn expire(&self, _now: u64) {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::QuotaPeriod;

    #[tokio::test(start_paused = true)]
    async fn buckets_are_kept_per_id() {
        let buckets: Buckets<String> = Buckets::default();
        let limits = Throttle {
            rate: 1.0,
            burst: 3,
        };
        let now = Instant::now();
        let a = "a".to_owned();
        let b = "b".to_owned();
        assert_eq!(
            (0..5)
                .filter(|_| buckets.take(&a, &limits, now).is_ok())
                .count(),
            3
        );
        assert_eq!(
            (0..5)
                .filter(|_| buckets.take(&b, &limits, now).is_ok())
                .count(),
            3
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(buckets.take(&a, &limits, Instant::now()).is_ok());
        assert!(buckets.take(&a, &limits, Instant::now()).is_err());
        assert_eq!(buckets.len(), 2);
    }

    #[test]
    fn counters_add_per_window() {
        let counters = LocalCounters::default();
        let key = CounterKey {
            slot: 7,
            plan: "basic".into(),
            key_id: "k1".into(),
        };
        let day1 = Window::containing(QuotaPeriod::Day, 86_400 * 20_000 + 5);
        let day2 = Window::containing(QuotaPeriod::Day, 86_400 * 20_001 + 5);
        assert_eq!(counters.add(&key, &day1, 1), 1);
        assert_eq!(counters.add(&key, &day1, 2), 3);
        assert_eq!(counters.get(&key, &day1), 3);
        // The next window replaces the count; a late add for the old one changes nothing.
        assert_eq!(counters.add(&key, &day2, 1), 1);
        assert_eq!(counters.get(&key, &day1), 0);
        assert_eq!(counters.add(&key, &day1, 5), 5);
        assert_eq!(counters.get(&key, &day2), 1);
        // Keys count apart.
        let other = CounterKey {
            slot: 8,
            ..key.clone()
        };
        assert_eq!(counters.add(&other, &day2, 4), 4);
        assert_eq!(counters.get(&key, &day2), 1);
    }
}
