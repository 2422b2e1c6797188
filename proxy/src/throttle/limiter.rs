//! The node's throttle state and the check of phase 6.
//!
//! A request passes, most specific first: its API key's bucket for the route (a plan's
//! `routes` override) or else its key's plan-wide bucket, then the route's, the stage's and the
//! node-wide (account) bucket, then the key's quota. Most specific first, so a client over its
//! own limit is refused before it takes tokens from buckets every client shares.
//!
//! Buckets outlive config reloads: shared buckets are found again by name when a generation is
//! built (and kept when their limits are unchanged), per-key state is held by key id. Each
//! admitted request with a key is counted in that key's per-day usage, held in memory and added
//! to the [`StateStore`] by [`Limiter::flush`] (the node calls it every second, on shutdown and
//! before `GET /admin/usage` answers). A key's quota count is seeded from the stored usage of
//! the current window the first time the key is seen by this process, so a restart does not
//! give a key its quota again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use tokio::time::Instant;

use super::quota::{self, Window};
use super::slots::SlotTable;
use super::{Buckets, CounterKey, Counters, LocalCounters, Refused, TokenBucket};
use crate::config::{Quota, Throttle};
use crate::state::{StateError, StateStore, UsageIncrement};
use crate::sync::lock;

/// Which limit a bucket or count enforces; named in the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The node-wide limit.
    Account,
    Stage,
    Route,
    /// A key's plan-wide bucket.
    Key,
    /// A key's bucket for one route (a plan's `routes` override).
    KeyRoute,
    /// A key's quota.
    Quota,
}

impl Scope {
    /// The policy name in `RateLimit` and `RateLimit-Policy`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Stage => "stage",
            Self::Route => "route",
            Self::Key => "key",
            Self::KeyRoute => "key-route",
            Self::Quota => "quota",
        }
    }
}

/// A bucket every caller of a scope shares (account, stage or route).
#[derive(Debug)]
pub struct SharedBucket {
    pub scope: Scope,
    pub limits: Throttle,
    bucket: Mutex<TokenBucket>,
}

/// A refused request: why, for how long, and the headers that say so.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `Quota` for `Limit Exceeded`; any other scope is `Too Many Requests`.
    pub scope: Scope,
    pub retry_after: Duration,
    /// `RateLimit-Policy` for the refusing limit.
    pub policy: HeaderValue,
    /// `RateLimit`: nothing remains until `retry_after`.
    pub state: HeaderValue,
}

/// `RateLimit-Policy` and `RateLimit` for an admitted request with a key. The policy is made
/// when the config loads; `RateLimit` is rendered by [`RateLimitHeaders::state`] when the
/// response is written.
#[derive(Debug, Clone)]
pub struct RateLimitHeaders {
    pub policy: HeaderValue,
    /// The key's bucket: its scope and limits, and the whole tokens left.
    key: Option<(Scope, Throttle, u64)>,
    /// The quota: requests left, and seconds until the window ends.
    quota: Option<(u64, u64)>,
}

impl RateLimitHeaders {
    /// `RateLimit`: what is left of the key's bucket (and the seconds until it is full again)
    /// and of its quota (and the seconds until the window ends).
    pub fn state(&self) -> HeaderValue {
        let mut state = String::with_capacity(48);
        if let Some((scope, limits, remaining)) = &self.key {
            let refill = if limits.rate > 0.0 {
                ((limits.burst.saturating_sub(*remaining)) as f64 / limits.rate).ceil() as u64
            } else {
                0
            };
            let _ = write!(state, "\"{}\";r={remaining};t={refill}", scope.name());
        }
        if let Some((remaining, reset)) = self.quota {
            if !state.is_empty() {
                state.push_str(", ");
            }
            let _ = write!(state, "\"quota\";r={remaining};t={reset}");
        }
        header(&state)
    }
}

/// What a usage plan asks of one route's requests: resolved when a generation is built.
#[derive(Debug)]
pub struct PlanLimits {
    pub name: Box<str>,
    /// The plan's number from [`Limiter::slot`] (`plan:NAME`): per-key state made under another
    /// plan is not reused.
    pub slot: u64,
    /// Per key, across the plan's stages.
    pub throttle: Option<Throttle>,
    /// Per key, for this route only: (the route's slot, its limits).
    pub route: Option<(u64, Throttle)>,
    pub quota: Option<Quota>,
    /// `RateLimit-Policy` for admitted requests; `None` when the plan sets no limit.
    pub policy: Option<HeaderValue>,
}

impl PlanLimits {
    pub fn new(
        name: &str,
        slot: u64,
        throttle: Option<Throttle>,
        route: Option<(u64, Throttle)>,
        quota: Option<Quota>,
    ) -> Self {
        let mut items = Vec::new();
        if let Some((_, t)) = &route {
            items.push(bucket_policy(Scope::KeyRoute, t));
        } else if let Some(t) = &throttle {
            items.push(bucket_policy(Scope::Key, t));
        }
        if let Some(q) = &quota {
            items.push(quota_policy(q, None));
        }
        Self {
            name: name.into(),
            slot,
            throttle,
            route,
            quota,
            policy: (!items.is_empty())
                .then(|| HeaderValue::from_str(&items.join(", ")).ok())
                .flatten(),
        }
    }
}

/// A key as the limiter knows it: its plan-wide bucket and the usage not yet stored.
#[derive(Debug, Default)]
struct KeyEntry {
    /// The plan it was made under ([`PlanLimits::slot`]).
    plan: u64,
    counter: CounterKey,
    bucket: Option<TokenBucket>,
    /// Requests per UTC day not yet added to the store.
    pending: Vec<(u32, u64)>,
}

/// The caller of a request that needs an API key.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// [`crate::keys::ApiKey::slot`].
    pub slot: u64,
    pub key_id: &'a str,
    /// When the key was made, seconds since the epoch (for the quota's first-window offset).
    pub created: u64,
}

/// Throttle and quota state for the node; shared by every config generation.
#[derive(Debug)]
pub struct Limiter {
    store: Arc<dyn StateStore>,
    counters: Arc<dyn Counters>,
    shared: Mutex<HashMap<String, Arc<SharedBucket>>>,
    slots: Mutex<HashMap<String, u64>>,
    /// By [`Caller::slot`].
    keys: SlotTable<KeyEntry>,
    /// By (entry's counter slot, route slot).
    key_routes: Buckets<(u64, u64)>,
    /// Caller slots with pending usage, each once.
    dirty: Mutex<Vec<u64>>,
    next_slot: AtomicU64,
}

/// Seconds since the Unix epoch.
pub fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `"stage";q=BURST;w=SECONDS-TO-REFILL`.
fn bucket_policy(scope: Scope, t: &Throttle) -> String {
    let window = if t.rate > 0.0 {
        (t.burst as f64 / t.rate).ceil().max(1.0) as u64
    } else {
        3600
    };
    format!("\"{}\";q={};w={window}", scope.name(), t.burst)
}

/// `"quota";q=LIMIT;w=WINDOW-SECONDS` (a nominal window of the period when none is given).
fn quota_policy(q: &Quota, window: Option<&Window>) -> String {
    let seconds = window.map_or_else(
        || match q.period {
            crate::config::QuotaPeriod::Day => 86_400,
            crate::config::QuotaPeriod::Week => 7 * 86_400,
            crate::config::QuotaPeriod::Month => 30 * 86_400,
        },
        |w| w.end - w.start,
    );
    format!("\"quota\";q={};w={seconds}", q.limit)
}

fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Limiter {
    /// A limiter whose usage goes to `store`, with quota counts in this node's memory.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self::with_counters(store, Arc::new(LocalCounters::default()))
    }

    /// A limiter with another counters backend.
    pub fn with_counters(store: Arc<dyn StateStore>, counters: Arc<dyn Counters>) -> Self {
        Self {
            store,
            counters,
            shared: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            keys: SlotTable::default(),
            key_routes: Buckets::default(),
            dirty: Mutex::new(Vec::new()),
            next_slot: AtomicU64::new(1),
        }
    }

    /// The shared bucket `name` (`account`, `stage:API/STAGE`, `route:API/STAGE/ROUTE`) with
    /// `limits`: the one an earlier generation used when its limits are the same, so a reload
    /// does not refill it; otherwise a new, full one.
    pub fn shared_bucket(&self, scope: Scope, name: &str, limits: Throttle) -> Arc<SharedBucket> {
        let mut shared = lock(&self.shared);
        if let Some(bucket) = shared.get(name).filter(|b| b.limits == limits) {
            return bucket.clone();
        }
        let bucket = Arc::new(SharedBucket {
            scope,
            limits,
            bucket: Mutex::new(TokenBucket::full(&limits, Instant::now())),
        });
        shared.insert(name.to_owned(), bucket.clone());
        bucket
    }

    /// Forgets shared buckets no generation but the ones holding them uses.
    pub fn forget_unused_buckets(&self) {
        lock(&self.shared).retain(|_, b| Arc::strong_count(b) > 1);
    }

    /// A number for `name` (`route:API/STAGE/ROUTE`, `plan:NAME`), the same for the life of
    /// the process, so that state made by one generation is found by the next.
    pub fn slot(&self, name: &str) -> u64 {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(name) {
            return *slot;
        }
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        slots.insert(name.to_owned(), slot);
        slot
    }

    /// Admits one request or says why not. `levels` are the route's shared buckets, most
    /// specific first; `key` is the caller and its plan, when the route needs a key. `wall` is
    /// seconds since the epoch (for quota windows and usage days).
    ///
    /// A request with a key is checked under its entry's shard lock, from the key's bucket to
    /// its quota and usage count, so that concurrent requests of one key are admitted one at a
    /// time; other locks are only ever taken inside that one, never around it.
    pub fn check(
        &self,
        levels: &[Arc<SharedBucket>],
        key: Option<(Caller<'_>, &PlanLimits)>,
        now: Instant,
        wall: u64,
    ) -> Result<Option<RateLimitHeaders>, Refusal> {
        let Some((caller, plan)) = key else {
            take_shared(levels, now)?;
            return Ok(None);
        };
        let exhausted = || Refusal {
            scope: Scope::Key,
            retry_after: Duration::from_secs(3600),
            policy: header("\"key\";q=0;w=3600"),
            state: header("\"key\";r=0;t=3600"),
        };
        let mut entry = self.keys.get(caller.slot).ok_or_else(exhausted)?;
        if entry.plan != plan.slot {
            drop(entry);
            let mut made = self.new_entry(caller, plan, wall);
            entry = self.keys.get(caller.slot).ok_or_else(exhausted)?;
            // Another request may have made it meanwhile: keep the first. An entry of the key's
            // previous plan hands over its usage not yet stored.
            if entry.plan != plan.slot {
                made.pending = std::mem::take(&mut entry.pending);
                *entry = made;
            }
        }
        // A route override replaces the plan-wide bucket for that route, as API Gateway's
        // per-method throttling in a usage plan does.
        let key_state = if let Some((route_slot, limits)) = &plan.route {
            let remaining = self
                .key_routes
                .take_counted(&(entry.counter.slot, *route_slot), limits, now)
                .map_err(|r| refusal(Scope::KeyRoute, limits, r))?;
            Some((Scope::KeyRoute, limits, remaining))
        } else if let Some(limits) = &plan.throttle {
            let bucket = entry
                .bucket
                .get_or_insert_with(|| TokenBucket::full(limits, now));
            bucket
                .take(limits, now)
                .map_err(|r| refusal(Scope::Key, limits, r))?;
            Some((Scope::Key, limits, bucket.remaining()))
        } else {
            None
        };
        take_shared(levels, now)?;
        let mut quota_state = None;
        if let Some(q) = &plan.quota {
            let window = Window::containing(q.period, wall);
            let used = self.counters.add(&entry.counter, &window, 1);
            let allowance = quota::allowance(q, &window, caller.created);
            let reset = Duration::from_secs(window.end.saturating_sub(wall));
            if used > allowance {
                return Err(Refusal {
                    scope: Scope::Quota,
                    retry_after: reset,
                    policy: header(&quota_policy(q, Some(&window))),
                    state: header(&format!("\"quota\";r=0;t={}", reset.as_secs())),
                });
            }
            quota_state = Some((allowance - used, reset));
        }
        // Count the request in today's usage.
        let day = u32::try_from(wall / 86_400).unwrap_or(u32::MAX);
        let first = entry.pending.is_empty();
        match entry.pending.last_mut() {
            Some((d, n)) if *d == day => *n += 1,
            _ => entry.pending.push((day, 1)),
        }
        drop(entry);
        if first {
            lock(&self.dirty).push(caller.slot);
        }
        let Some(policy) = &plan.policy else {
            return Ok(None);
        };
        Ok(Some(RateLimitHeaders {
            policy: policy.clone(),
            key: key_state.map(|(scope, limits, left)| (scope, *limits, left)),
            quota: quota_state.map(|(left, reset): (u64, Duration)| (left, reset.as_secs())),
        }))
    }

    /// A new entry for `caller` under `plan`, its quota count seeded from the stored usage of
    /// the current window.
    fn new_entry(&self, caller: Caller<'_>, plan: &PlanLimits, wall: u64) -> KeyEntry {
        let entry = KeyEntry {
            plan: plan.slot,
            counter: CounterKey {
                slot: self.next_slot.fetch_add(1, Ordering::Relaxed),
                plan: plan.name.clone(),
                key_id: caller.key_id.into(),
            },
            bucket: None,
            pending: Vec::new(),
        };
        if let Some(q) = &plan.quota {
            let window = Window::containing(q.period, wall);
            let (first, last) = window.days();
            match self.store.usage(caller.key_id, first..=last) {
                Ok(days) => {
                    let stored: u64 = days.iter().map(|(_, n)| n).sum();
                    if stored > 0 {
                        self.counters.add(&entry.counter, &window, stored);
                    }
                }
                Err(e) => tracing::warn!(
                    key = caller.key_id,
                    error = %e,
                    "cannot read stored usage to seed the quota count"
                ),
            }
        }
        entry
    }

    /// Adds the usage counted since the last flush to the store. On failure the counts are
    /// put back for the next flush.
    pub fn flush(&self) -> Result<(), StateError> {
        let dirty = std::mem::take(&mut *lock(&self.dirty));
        let mut taken = Vec::new();
        for slot in dirty {
            if let Some(mut entry) = self.keys.get(slot) {
                let pending = std::mem::take(&mut entry.pending);
                taken.push((slot, entry.counter.key_id.clone(), pending));
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        let increments: Vec<UsageIncrement> = taken
            .iter()
            .flat_map(|(_, key_id, pending)| {
                pending.iter().map(|&(day, requests)| UsageIncrement {
                    key_id: key_id.to_string(),
                    day,
                    requests,
                })
            })
            .collect();
        let Err(e) = self.store.add_usage(&increments) else {
            return Ok(());
        };
        for (slot, _, pending) in taken {
            let Some(mut entry) = self.keys.get(slot) else {
                continue;
            };
            let was_empty = entry.pending.is_empty();
            let newer = std::mem::replace(&mut entry.pending, pending);
            entry.pending.extend(newer);
            drop(entry);
            if was_empty {
                lock(&self.dirty).push(slot);
            }
        }
        Err(e)
    }

    /// `key_id`'s stored per-day counts in `days` (flush first for an up-to-date answer).
    pub fn usage(
        &self,
        key_id: &str,
        days: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<(u32, u64)>, StateError> {
        self.store.usage(key_id, days)
    }

    /// Forgets quota windows that have ended.
    pub fn expire(&self, wall: u64) {
        self.counters.expire(wall);
    }
}

/// Takes a token from each shared bucket, most specific first; the first that refuses ends it.
fn take_shared(levels: &[Arc<SharedBucket>], now: Instant) -> Result<(), Refusal> {
    for level in levels {
        lock(&level.bucket)
            .take(&level.limits, now)
            .map_err(|r| refusal(level.scope, &level.limits, r))?;
    }
    Ok(())
}

fn refusal(scope: Scope, limits: &Throttle, refused: Refused) -> Refusal {
    let retry = secs_ceil(refused.retry_after).max(1);
    Refusal {
        scope,
        retry_after: Duration::from_secs(retry),
        policy: header(&bucket_policy(scope, limits)),
        state: header(&format!("\"{}\";r=0;t={retry}", scope.name())),
    }
}
