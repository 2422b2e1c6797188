//! Throttling and quotas (pipeline phase 6): token buckets at every level API Gateway has
//! (node-wide account, stage, route, and per API key in its usage plan) and quota counters per
//! key and UTC calendar window.
//!
//! - [`TokenBucket`]: one bucket's arithmetic, on tokio's clock.
//! - [`Limiter`]: the node's buckets, quota counts and usage, and the check of one request.
//! - [`Buckets`]: buckets by id in a sharded map (a key's per-route buckets).
//! - [`Counters`]: quota counts behind a trait whose only write is an atomic add that returns
//!   the new total, so a Redis backend (`INCRBY` with the window's end as expiry) can replace
//!   [`LocalCounters`] for a cluster of edge nodes without read-modify-write races.
//! - [`quota`]: the calendar windows.

mod bucket;
mod limiter;
pub mod quota;
mod settings;
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
pub use settings::{DEFAULT_ACCOUNT_THROTTLE, Quota, QuotaPeriod, Throttle};

use crate::sync::lock;

const SHARDS: usize = 64;

type Hasher = foldhash::fast::RandomState;

/// Token buckets by id, created full on first use, in `SHARDS` locked maps split by id hash,
/// so concurrent requests for different ids rarely wait on each other.
#[derive(Debug)]
pub struct Buckets<K> {
    hasher: Hasher,
    shards: Box<[Mutex<HashMap<K, TokenBucket, Hasher>>]>,
}

impl<K: Hash + Eq + Clone> Default for Buckets<K> {
    fn default() -> Self {
        Self {
            hasher: Hasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// The locked map that holds `id`.
    fn shard(&self, id: &K) -> std::sync::MutexGuard<'_, HashMap<K, TokenBucket, Hasher>> {
        lock(&self.shards[(self.hasher.hash_one(id) as usize) % SHARDS])
    }

    /// Takes a token from `id`'s bucket under `limits`; returns the whole tokens left.
    pub fn take_counted(&self, id: &K, limits: &Throttle, now: Instant) -> Result<u64, Refused> {
        let mut map = self.shard(id);
        let bucket = match map.get_mut(id) {
            Some(bucket) => bucket,
            None => map
                .entry(id.clone())
                .or_insert_with(|| TokenBucket::full(limits, now)),
        };
        bucket.take(limits, now)?;
        Ok(bucket.remaining())
    }

    /// Returns a token to `id`'s bucket (see [`TokenBucket::give_back`]).
    pub fn give_back(&self, id: &K, limits: &Throttle) {
        if let Some(bucket) = self.shard(id).get_mut(id) {
            bucket.give_back(limits);
        }
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// True when no bucket has been used.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who a quota count belongs to: a usage plan and a key id. A backend shared by several nodes
/// names its counter by them.
#[derive(Debug, Clone, Default)]
pub struct CounterKey {
    pub plan: Box<str>,
    pub key_id: Box<str>,
}

/// Quota counts. The limiter holds one [`Counters::Cell`] per key, in the key's own entry, and
/// counts through it: for the local backend the cell is the count itself (so a check touches
/// one place in memory), for a backend shared by a cluster it names the shared counter and
/// `add` is the backend's atomic increment (Redis `INCRBY` with the window's end as expiry).
/// Nothing here reads a count, changes it and writes it back.
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// What a key's entry holds to reach its count.
    type Cell: Send + std::fmt::Debug;
    /// The cell for `key`'s count.
    fn cell(&self, key: &CounterKey) -> Self::Cell;
    /// Adds `n` to the count in `window`; returns the count including this add.
    fn add(&self, cell: &mut Self::Cell, window: &Window, n: u64) -> u64;
    /// The count in `window`.
    fn get(&self, cell: &Self::Cell, window: &Window) -> u64;
}

/// Counters in this node's memory.
#[derive(Debug, Default)]
pub struct LocalCounters;

/// A local count: the count of its current window (a count from an earlier window is replaced
/// when a later one begins).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalCount {
    window: Window,
    count: u64,
}

impl Counters for LocalCounters {
    type Cell = LocalCount;

    fn cell(&self, _key: &CounterKey) -> LocalCount {
        LocalCount::default()
    }

    fn add(&self, cell: &mut LocalCount, window: &Window, n: u64) -> u64 {
        if cell.window == *window {
            cell.count = cell.count.saturating_add(n);
            return cell.count;
        }
        if cell.window.start > window.start {
            // A later window is already counting; an add for an older one is late.
            return n;
        }
        *cell = LocalCount {
            window: *window,
            count: n,
        };
        n
    }

    fn get(&self, cell: &LocalCount, window: &Window) -> u64 {
        if cell.window == *window {
            cell.count
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::throttle::QuotaPeriod;

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
                .filter(|_| buckets.take_counted(&a, &limits, now).is_ok())
                .count(),
            3
        );
        assert_eq!(
            (0..5)
                .filter(|_| buckets.take_counted(&b, &limits, now).is_ok())
                .count(),
            3
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(buckets.take_counted(&a, &limits, Instant::now()).is_ok());
        assert!(buckets.take_counted(&a, &limits, Instant::now()).is_err());
        assert_eq!(buckets.len(), 2);
    }

    #[test]
    fn counters_add_per_window() {
        let counters = LocalCounters;
        let mut cell = counters.cell(&CounterKey {
            plan: "basic".into(),
            key_id: "k1".into(),
        });
        let day1 = Window::containing(QuotaPeriod::Day, 86_400 * 20_000 + 5);
        let day2 = Window::containing(QuotaPeriod::Day, 86_400 * 20_001 + 5);
        assert_eq!(counters.get(&cell, &day1), 0);
        assert_eq!(counters.add(&mut cell, &day1, 1), 1);
        assert_eq!(counters.add(&mut cell, &day1, 2), 3);
        assert_eq!(counters.get(&cell, &day1), 3);
        // The next window replaces the count; a late add for the old one changes nothing.
        assert_eq!(counters.add(&mut cell, &day2, 1), 1);
        assert_eq!(counters.get(&cell, &day1), 0);
        assert_eq!(counters.add(&mut cell, &day1, 5), 5);
        assert_eq!(counters.get(&cell, &day2), 1);
    }
}
