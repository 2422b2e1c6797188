//! Throttling and quotas (pipeline phase 6): token buckets at every level API Gateway has
//! (node-wide account, stage, route, and per API key in its usage plan) and quota counters per
//! key and UTC calendar window.
//!
//! - [`TokenBucket`]: one bucket's arithmetic, on tokio's clock.
//! - [`Limiter`]: the node's buckets, quota counts and usage, and the check of one request.
//! - [`Buckets`]: buckets by id in a sharded map (a key's per-route buckets).
//! - [`Counters`]: quota counts behind an async, fallible trait whose only write is an atomic
//!   add that returns the new total, so a Redis backend (`INCRBY` with the window's end as
//!   expiry) can replace [`LocalCounters`] for a cluster of edge nodes without
//!   read-modify-write races.
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
    Caller, Limiter, PlanLimits, RateLimitHeaders, Refusal, Scope, SharedBucket, take_shared,
    wall_secs,
};
pub use quota::Window;
pub use settings::{DEFAULT_ACCOUNT_THROTTLE, Quota, QuotaPeriod, Throttle};

use crate::sync::lock;

const SHARDS: usize = 64;

type Hasher = foldhash::fast::RandomState;

/// A map in `SHARDS` locked parts split by key hash, so concurrent requests for different keys
/// rarely wait on each other.
#[derive(Debug)]
struct Sharded<K, V> {
    hasher: Hasher,
    shards: Box<[Mutex<HashMap<K, V, Hasher>>]>,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Self {
            hasher: Hasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }
}

impl<K: Hash, V> Sharded<K, V> {
    /// The locked part that holds `key`.
    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, V, Hasher>> {
        lock(&self.shards[(self.hasher.hash_one(key) as usize) % SHARDS])
    }

    /// Entries held.
    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Token buckets by id, created full on first use.
#[derive(Debug)]
pub struct Buckets<K> {
    buckets: Sharded<K, TokenBucket>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Self {
            buckets: Sharded::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn shard(&self, id: &K) -> std::sync::MutexGuard<'_, HashMap<K, TokenBucket, Hasher>> {
        self.buckets.shard(id)
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
        self.buckets.len()
    }

    /// True when no bucket has been used.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who a quota count belongs to: a usage plan and a key id. A backend shared by several nodes
/// names its counter by them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub plan: Box<str>,
    pub key_id: Box<str>,
}

/// A counters backend failed; the count did not change there. The limiter counts the request
/// in this node's memory instead and logs it, so a lost backend never fails a request.
#[derive(Debug, thiserror::Error)]
#[error("counters: {0}")]
pub struct CounterError(pub String);

/// Quota counts, chosen by `counters.backend` in config. The only write is an atomic add that
/// returns the new total, so a backend shared by a cluster of edge nodes (Redis `INCRBY` with
/// the window's end as expiry) needs no read-modify-write. Every call is async and fallible, as
/// a networked backend's are; [`LocalCounters`] answers at once and never fails.
pub trait Counters: Send + Sync + std::fmt::Debug + 'static {
    /// Adds `n` to `key`'s count in `window`; the count including this add.
    fn add(
        &self,
        key: &CounterKey,
        window: &Window,
        n: u64,
    ) -> impl Future<Output = Result<u64, CounterError>> + Send;
    /// `key`'s count in `window` (0 for a window with no count).
    fn get(
        &self,
        key: &CounterKey,
        window: &Window,
    ) -> impl Future<Output = Result<u64, CounterError>> + Send;
    /// True for a backend whose counts end with the process: the limiter then seeds a key's
    /// count from its stored usage the first time this process sees the key. A shared backend
    /// outlives any one node and already holds the cluster's count.
    fn forgets_on_restart(&self) -> bool;
}

/// Counters in this node's memory: each key's count of its current window (a count from an
/// earlier window is replaced when a later one begins).
#[derive(Debug, Default)]
pub struct LocalCounters {
    counts: Sharded<CounterKey, LocalCount>,
}

#[derive(Debug, Clone, Copy, Default)]
struct LocalCount {
    window: Window,
    count: u64,
}

impl LocalCounters {
    /// [`Counters::add`], at once.
    pub fn add_now(&self, key: &CounterKey, window: &Window, n: u64) -> u64 {
        let mut shard = self.counts.shard(key);
        let cell = match shard.get_mut(key) {
            Some(cell) => cell,
            None => shard.entry(key.clone()).or_default(),
        };
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

    /// [`Counters::get`], at once.
    pub fn get_now(&self, key: &CounterKey, window: &Window) -> u64 {
        self.counts
            .shard(key)
            .get(key)
            .filter(|cell| cell.window == *window)
            .map_or(0, |cell| cell.count)
    }
}

impl Counters for LocalCounters {
    fn add(
        &self,
        key: &CounterKey,
        window: &Window,
        n: u64,
    ) -> impl Future<Output = Result<u64, CounterError>> + Send {
        std::future::ready(Ok(self.add_now(key, window, n)))
    }

    fn get(
        &self,
        key: &CounterKey,
        window: &Window,
    ) -> impl Future<Output = Result<u64, CounterError>> + Send {
        std::future::ready(Ok(self.get_now(key, window)))
    }

    fn forgets_on_restart(&self) -> bool {
        true
    }
}

/// The behaviour every [`Counters`] backend must show, run by each backend's own test.
#[cfg(test)]
pub(crate) async fn counters_suite(counters: &impl Counters) {
    let key = |plan: &str, key_id: &str| CounterKey {
        plan: plan.into(),
        key_id: key_id.into(),
    };
    let (k1, k2, other_plan) = (key("basic", "k1"), key("basic", "k2"), key("gold", "k1"));
    let day1 = Window::containing(QuotaPeriod::Day, 86_400 * 20_000 + 5);
    let day2 = Window::containing(QuotaPeriod::Day, 86_400 * 20_001 + 5);
    assert_eq!(counters.get(&k1, &day1).await.unwrap(), 0);
    assert_eq!(counters.add(&k1, &day1, 1).await.unwrap(), 1);
    assert_eq!(counters.add(&k1, &day1, 2).await.unwrap(), 3);
    assert_eq!(counters.get(&k1, &day1).await.unwrap(), 3);
    // Counts are per key and per plan.
    assert_eq!(counters.add(&k2, &day1, 5).await.unwrap(), 5);
    assert_eq!(counters.get(&other_plan, &day1).await.unwrap(), 0);
    assert_eq!(counters.get(&k1, &day1).await.unwrap(), 3);
    // The next window counts from zero.
    assert_eq!(counters.get(&k1, &day2).await.unwrap(), 0);
    assert_eq!(counters.add(&k1, &day2, 1).await.unwrap(), 1);
    assert_eq!(counters.get(&k1, &day2).await.unwrap(), 1);
    // Concurrent adds are each counted once.
    let adds = (0..100).map(|_| counters.add(&k2, &day2, 1));
    let mut totals: Vec<u64> = futures_util::future::join_all(adds)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    totals.sort_unstable();
    assert_eq!(totals, (1..=100).collect::<Vec<_>>());
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

    #[tokio::test]
    async fn the_counters_suite_holds_for_local_counters() {
        counters_suite(&LocalCounters::default()).await;
    }

    #[test]
    fn a_late_add_for_an_earlier_window_changes_nothing() {
        let counters = LocalCounters::default();
        let key = CounterKey {
            plan: "basic".into(),
            key_id: "k1".into(),
        };
        let day1 = Window::containing(QuotaPeriod::Day, 86_400 * 20_000 + 5);
        let day2 = Window::containing(QuotaPeriod::Day, 86_400 * 20_001 + 5);
        assert_eq!(counters.add_now(&key, &day2, 1), 1);
        assert_eq!(counters.add_now(&key, &day1, 5), 5);
        assert_eq!(counters.get_now(&key, &day1), 0);
        assert_eq!(counters.get_now(&key, &day2), 1);
    }
}
