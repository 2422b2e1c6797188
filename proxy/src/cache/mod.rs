//! The stage cache (pipeline phases 8 and 12): responses kept in memory per API stage, so the
//! edge answers repeated requests without asking the origin.
//!
//! - [`StageCache`] holds one stage's entries in a moka cache weighed by bytes, and counts
//!   hits, misses, stores, evictions and coalesced requests for the admin API.
//! - [`CacheKey`]: method, route and the values of the parameters the route names; anything
//!   else about the request is ignored, as in API Gateway. The stage is implied: each stage
//!   has its own `StageCache`.
//! - Concurrent misses for one key are coalesced: the first becomes the leader and goes to
//!   the origin with a [`Fill`]; the others wait until the leader's response is stored (or
//!   turned out not storable) and then read the entry.
//! - Freshness is decided here, on tokio's clock ([`CachedResponse::age`]), not by moka: moka's
//!   expiry only reclaims memory. That keeps TTL logic testable with a paused clock.

mod entry;
mod fill;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use moka::notification::RemovalCause;
use tokio::sync::watch;
use tokio::time::Instant;

pub use entry::{CachedResponse, Storable, X_CACHE, asks_refresh, storable};
pub use fill::{CacheFill, Fill};
pub use settings::{InvalidationPolicy, UnauthorizedStrategy};

use crate::sync::lock;
use crate::validation::params::RequestParam;

type Hasher = foldhash::fast::RandomState;

/// What separates one cache entry from another within a stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub method: Method,
    /// The route as written, `GET /pets/{id}`.
    pub route: Arc<str>,
    /// Identifies the route's integration and cache settings, so a reload that changes them
    /// does not serve what the old settings stored.
    pub revision: u64,
    /// The values of the route's key parameters, in the route's order; `None` when absent.
    pub params: Box<[Option<Box<str>>]>,
}

impl CacheKey {
    /// Bytes the key takes, for the entry's weight.
    fn weight(&self) -> usize {
        self.route.len()
            + self
                .params
                .iter()
                .map(|p| p.as_ref().map_or(1, |v| v.len() + 1))
                .sum::<usize>()
    }
}

/// Counters of one stage cache. Monotonic; read by the admin API.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: AtomicU64,
    /// Requests that went to the origin (each is a potential store).
    pub misses: AtomicU64,
    /// Responses stored.
    pub stores: AtomicU64,
    /// Entries removed to make room.
    pub evictions: AtomicU64,
    /// Requests that waited for another request's trip to the origin.
    pub coalesced: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Lookup {
    /// A fresh entry, and how old it is.
    Hit(Arc<CachedResponse>, Duration),
    /// Go to the origin; store what comes back through this fill.
    Miss(Fill),
}

/// One stage's cache.
#[derive(Debug)]
pub struct StageCache {
    pub api: Box<str>,
    pub stage: Box<str>,
    pub capacity_bytes: u64,
    entries: moka::sync::Cache<CacheKey, Arc<CachedResponse>, Hasher>,
    /// Keys with a request on its way to the origin; the receiver wakes when it is done.
    in_flight: Mutex<HashMap<CacheKey, watch::Receiver<()>, Hasher>>,
    pub stats: Arc<CacheStats>,
}

/// Lets moka reclaim an entry's memory once its TTL has passed.
struct ExpireAfterTtl;

impl moka::Expiry<CacheKey, Arc<CachedResponse>> for ExpireAfterTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedResponse>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedResponse>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl StageCache {
    /// An empty cache for `api`/`stage` holding at most `capacity_bytes` (keys, headers and
    /// bodies counted).
    pub fn new(api: &str, stage: &str, capacity_bytes: u64) -> Arc<Self> {
        let stats = Arc::new(CacheStats::default());
        let counted = stats.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &CacheKey, value: &Arc<CachedResponse>| {
                u32::try_from(key.weight() + value.weight()).unwrap_or(u32::MAX)
            })
            .expire_after(ExpireAfterTtl)
            .eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    bump(&counted.evictions);
                }
            })
            .build_with_hasher(Hasher::default());
        Arc::new(Self {
            api: api.into(),
            stage: stage.into(),
            capacity_bytes,
            entries,
            in_flight: Mutex::new(HashMap::default()),
            stats,
        })
    }

    /// The entry for `key` if it is still fresh, with its age.
    fn fresh(&self, key: &CacheKey) -> Option<(Arc<CachedResponse>, Duration)> {
        let entry = self.entries.get(key)?;
        let age = entry.age(Instant::now())?;
        Some((entry, age))
    }

    /// Looks `key` up. On a miss with nobody else fetching it, the caller leads: its fill
    /// stores the response and wakes the waiters. On a miss while another request is
    /// fetching it, waits up to `wait` for that request, then reads the entry; if there is
    /// still none, the caller goes to the origin itself.
    pub async fn lookup(self: &Arc<Self>, key: CacheKey, wait: Duration) -> Lookup {
        if let Some((entry, age)) = self.fresh(&key) {
            bump(&self.stats.hits);
            return Lookup::Hit(entry, age);
        }
        let mut leader_done = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some(done) => done.clone(),
                None => {
                    // The leader may have stored the entry between the read above and the lock.
                    if let Some((entry, age)) = self.fresh(&key) {
                        bump(&self.stats.hits);
                        return Lookup::Hit(entry, age);
                    }
                    let (done, waiters) = watch::channel(());
                    in_flight.insert(key.clone(), waiters);
                    bump(&self.stats.misses);
                    return Lookup::Miss(Fill::leader(self.clone(), key, done));
                }
            }
        };
        bump(&self.stats.coalesced);
        // The leader never sends; `changed` returns when it drops its sender.
        let _ = tokio::time::timeout(wait, leader_done.changed()).await;
        if let Some((entry, age)) = self.fresh(&key) {
            bump(&self.stats.hits);
            return Lookup::Hit(entry, age);
        }
        bump(&self.stats.misses);
        Lookup::Miss(Fill::unled(self.clone(), key))
    }

    /// A fill that fetches `key` afresh and replaces its entry (an authorized
    /// `Cache-Control: max-age=0`).
    pub fn refresh(self: &Arc<Self>, key: CacheKey) -> Fill {
        bump(&self.stats.misses);
        Fill::unled(self.clone(), key)
    }

    fn store(&self, key: CacheKey, entry: CachedResponse) {
        self.entries.insert(key, Arc::new(entry));
        bump(&self.stats.stores);
    }

    /// Called by a leader's fill when it is done, stored or not.
    fn release(&self, key: &CacheKey) {
        lock(&self.in_flight).remove(key);
    }

    /// Drops every entry; returns how many there were.
    pub fn flush(&self) -> u64 {
        self.entries.run_pending_tasks();
        let dropped = self.entries.entry_count();
        self.entries.invalidate_all();
        self.entries.run_pending_tasks();
        dropped
    }

    /// Drops the entries of `route` whose key parameters have all the given values
    /// (`("path.id", "7")`, ...); returns how many.
    pub fn drop_matching(&self, route: &str, filters: &[(String, String)]) -> u64 {
        let mut dropped = 0;
        for (key, entry) in &self.entries {
            if &*key.route != route {
                continue;
            }
            let matches = filters.iter().all(|(label, value)| {
                entry
                    .key_params
                    .iter()
                    .position(|p| p.label() == *label)
                    .and_then(|i| key.params.get(i))
                    .is_some_and(|v| v.as_deref() == Some(value.as_str()))
            });
            if matches {
                self.entries.invalidate(&*key);
                dropped += 1;
            }
        }
        self.entries.run_pending_tasks();
        dropped
    }

    /// Entry count and bytes held (after pending maintenance).
    pub fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }

    /// Builds the key of a request. `params` are the route's key parameters.
    pub fn key(
        method: &Method,
        route: &Arc<str>,
        revision: u64,
        params: &[RequestParam],
        parts: &http::request::Parts,
        path_values: &[&str],
    ) -> CacheKey {
        CacheKey {
            method: method.clone(),
            route: route.clone(),
            revision,
            params: params
                .iter()
                .map(|p| p.value(parts, path_values).map(|v| v.into_owned().into()))
                .collect(),
        }
    }
}

/// The stage caches of a config generation, by (api, stage).
#[derive(Debug, Default)]
pub struct StageCaches(HashMap<(String, String), Arc<StageCache>>);

impl StageCaches {
    /// The cache of `api`/`stage`: `previous`'s if it had one of the same capacity (entries
    /// survive a reload), else a new one.
    pub fn get_or_create(
        &mut self,
        api: &str,
        stage: &str,
        capacity_bytes: u64,
        previous: Option<&StageCaches>,
    ) -> Arc<StageCache> {
        let id = (api.to_owned(), stage.to_owned());
        if let Some(cache) = self.0.get(&id) {
            return cache.clone();
        }
        let cache = previous
            .and_then(|p| p.0.get(&id))
            .filter(|c| c.capacity_bytes == capacity_bytes)
            .cloned()
            .unwrap_or_else(|| StageCache::new(api, stage, capacity_bytes));
        self.0.insert(id, cache.clone());
        cache
    }

    /// The cache of `api`/`stage`, if that stage has one.
    pub fn get(&self, api: &str, stage: &str) -> Option<&Arc<StageCache>> {
        self.0.get(&(api.to_owned(), stage.to_owned()))
    }

    /// Every stage cache, ordered by api and stage.
    pub fn all(&self) -> Vec<&Arc<StageCache>> {
        let mut all: Vec<_> = self.0.values().collect();
        all.sort_by(|a, b| (&a.api, &a.stage).cmp(&(&b.api, &b.stage)));
        all
    }
}

#[cfg(test)]
mod tests;
