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
use super::{Quota, Throttle};
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

/// A key as the limiter knows it: its plan-wide bucket, its quota count and the usage not yet
/// stored. Aligned to 128 bytes, so an entry is one pair of cache lines (which x86 fetches
/// together) and a check for one of many keys waits for memory once.
#[derive(Debug, Default)]
#[repr(align(128))]
struct KeyEntry<Cell> {
    /// The plan it was made under ([`PlanLimits::slot`]); 0 for a slot not in use.
    plan: u64,
    key_id: Box<str>,
    /// `None` until made for a plan with a quota.
    count: Option<Cell>,
    bucket: Option<TokenBucket>,
    /// Requests per UTC day not yet added to the store.
    pending: Pending,
}

/// Requests per UTC day not yet stored: today's count inline (a check touches no other
/// memory), earlier days' only in the second around midnight before a flush takes them.
#[derive(Debug, Default)]
struct Pending {
    day: u32,
    today: u64,
    earlier: Vec<(u32, u64)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.today == 0 && self.earlier.is_empty()
    }

    /// Counts one request on `day`.
    fn count(&mut self, day: u32) {
        if self.today > 0 && self.day != day {
            self.earlier.push((self.day, self.today));
            self.today = 0;
        }
        self.day = day;
        self.today += 1;
    }

    /// Every day's count, oldest first; leaves nothing.
    fn take(&mut self) -> Vec<(u32, u64)> {
        let mut days = std::mem::take(&mut self.earlier);
        if self.today > 0 {
            days.push((self.day, self.today));
            self.today = 0;
        }
        days
    }

    /// Puts back counts taken from here that could not be stored, before any counted since.
    fn put_back(&mut self, older: Vec<(u32, u64)>) {
        let newer = self.take();
        self.earlier = older;
        self.earlier.extend(newer);
    }
}

/// The caller of a request that needs an API key.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// [`crate::auth::keys::ApiKey::slot`].
    pub slot: u64,
    pub key_id: &'a str,
    /// When the key was made, seconds since the epoch (for the quota's first-window offset).
    pub created: u64,
}

/// Throttle and quota state for the node; shared by every config generation.
#[derive(Debug)]
pub struct Limiter<C: Counters = LocalCounters> {
    store: Arc<dyn StateStore>,
    counters: C,
    shared: Mutex<HashMap<String, Arc<SharedBucket>>>,
    slots: Mutex<HashMap<String, u64>>,
    /// By [`Caller::slot`].
    keys: SlotTable<KeyEntry<C::Cell>>,
    /// By (caller slot, route slot).
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
            super::QuotaPeriod::Day => 86_400,
            super::QuotaPeriod::Week => 7 * 86_400,
            super::QuotaPeriod::Month => 30 * 86_400,
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
        Self::with_counters(store, LocalCounters)
    }
}

impl<C: Counters> Limiter<C>
where
    C::Cell: Default,
{
    /// A limiter with another counters backend.
    pub fn with_counters(store: Arc<dyn StateStore>, counters: C) -> Self {
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
        // The quota first, without counting: a key over its quota takes no tokens.
        let quota = plan.quota.as_ref().map(|q| {
            let window = Window::containing(q.period, wall);
            let allowance = quota::allowance(q, &window, caller.created);
            (q, window, allowance)
        });
        if let Some((q, window, allowance)) = &quota {
            let cell = entry.count.get_or_insert_with(|| {
                // Not reached: a plan's slot names its quota, so an entry made for a plan with
                // a quota has a count.
                self.counters.cell(&CounterKey {
                    plan: plan.name.clone(),
                    key_id: caller.key_id.into(),
                })
            });
            if self.counters.get(cell, window) >= *allowance {
                return Err(quota_refusal(q, window, wall));
            }
        }
        // A route override replaces the plan-wide bucket for that route, as API Gateway's
        // per-method throttling in a usage plan does.
        let key_state = if let Some((route_slot, limits)) = &plan.route {
            let remaining = self
                .key_routes
                .take_counted(&(caller.slot, *route_slot), limits, now)
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
        // A refusal further on gives the key's token back: a refused request takes nothing.
        let give_back = |entry: &mut KeyEntry<C::Cell>| match &plan.route {
            Some((route_slot, limits)) => {
                self.key_routes
                    .give_back(&(caller.slot, *route_slot), limits);
            }
            None => {
                if let (Some(bucket), Some(limits)) = (entry.bucket.as_mut(), &plan.throttle) {
                    bucket.give_back(limits);
                }
            }
        };
        if let Err(refused) = take_shared(levels, now) {
            give_back(&mut entry);
            return Err(refused);
        }
        let mut quota_state = None;
        if let (Some((q, window, allowance)), Some(cell)) = (&quota, entry.count.as_mut()) {
            // The count is what decides: another node sharing the count may have used the last
            // request since the check above.
            let used = self.counters.add(cell, window, 1);
            if used > *allowance {
                give_back(&mut entry);
                give_back_shared(levels);
                return Err(quota_refusal(q, window, wall));
            }
            let reset = Duration::from_secs(window.end.saturating_sub(wall));
            quota_state = Some((allowance - used, reset));
        }
        // Count the request in today's usage.
        let day = u32::try_from(wall / 86_400).unwrap_or(u32::MAX);
        let first = entry.pending.is_empty();
        entry.pending.count(day);
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
    fn new_entry(&self, caller: Caller<'_>, plan: &PlanLimits, wall: u64) -> KeyEntry<C::Cell> {
        let mut entry = KeyEntry {
            plan: plan.slot,
            key_id: caller.key_id.into(),
            count: None,
            bucket: None,
            pending: Pending::default(),
        };
        if let Some(q) = &plan.quota {
            let cell = entry.count.insert(self.counters.cell(&CounterKey {
                plan: plan.name.clone(),
                key_id: caller.key_id.into(),
            }));
            let window = Window::containing(q.period, wall);
            let (first, last) = window.days();
            match self.store.usage(caller.key_id, first..=last) {
                Ok(days) => {
                    let stored: u64 = days.iter().map(|(_, n)| n).sum();
                    // A shared backend already holds the cluster's count.
                    if stored > 0 && self.counters.get(cell, &window) == 0 {
                        self.counters.add(cell, &window, stored);
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
                let pending = entry.pending.take();
                taken.push((slot, entry.key_id.clone(), pending));
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
            entry.pending.put_back(pending);
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
}

/// Takes a token from each shared bucket, most specific first. The first that refuses ends it,
/// and the tokens taken before it are given back.
fn take_shared(levels: &[Arc<SharedBucket>], now: Instant) -> Result<(), Refusal> {
    for (i, level) in levels.iter().enumerate() {
        let taken = lock(&level.bucket).take(&level.limits, now);
        if let Err(refused) = taken {
            give_back_shared(&levels[..i]);
            return Err(refusal(level.scope, &level.limits, refused));
        }
    }
    Ok(())
}

/// Gives a token back to each of `levels`.
fn give_back_shared(levels: &[Arc<SharedBucket>]) {
    for level in levels {
        lock(&level.bucket).give_back(&level.limits);
    }
}

/// 429 `Limit Exceeded` until the quota window ends.
fn quota_refusal(q: &Quota, window: &Window, wall: u64) -> Refusal {
    let reset = Duration::from_secs(window.end.saturating_sub(wall));
    Refusal {
        scope: Scope::Quota,
        retry_after: reset,
        policy: header(&quota_policy(q, Some(window))),
        state: header(&format!("\"quota\";r=0;t={}", reset.as_secs())),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EmbeddedStore;
    use crate::throttle::QuotaPeriod;

    fn limiter() -> (Limiter, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "edgeway-limiter-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
        (Limiter::new(store), dir)
    }

    fn limits(burst: u64) -> Throttle {
        Throttle { rate: 1.0, burst }
    }

    const CALLER: Caller<'static> = Caller {
        slot: 3,
        key_id: "k1",
        created: 0,
    };
    /// 2026-11-21 12:00 UTC.
    const NOON: u64 = 1_795_262_400;

    #[tokio::test(start_paused = true)]
    async fn a_refusal_takes_no_token_anywhere() {
        let (limiter, dir) = limiter();
        let route = limiter.shared_bucket(Scope::Route, "route:a/p/GET /x", limits(5));
        let stage = limiter.shared_bucket(Scope::Stage, "stage:a/p", limits(2));
        let levels = [route.clone(), stage];
        let plan = PlanLimits::new("basic", 1, Some(limits(10)), None, None);
        let now = Instant::now();
        let check = || limiter.check(&levels, Some((CALLER, &plan)), now, NOON);
        assert!(check().is_ok());
        assert!(check().is_ok());
        // The stage is out: the route's and the key's tokens come back each time.
        for _ in 0..5 {
            assert_eq!(check().unwrap_err().scope, Scope::Stage);
        }
        assert_eq!(lock(&route.bucket).remaining(), 3);
        let admitted = {
            tokio::time::advance(Duration::from_secs(1)).await;
            limiter
                .check(&levels, Some((CALLER, &plan)), Instant::now(), NOON)
                .unwrap()
                .unwrap()
        };
        assert_eq!(admitted.key, Some((Scope::Key, limits(10), 8)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(start_paused = true)]
    async fn over_quota_takes_no_token_and_counts_no_usage() {
        let (limiter, dir) = limiter();
        let account = limiter.shared_bucket(Scope::Account, "account", limits(100));
        let levels = [account.clone()];
        let quota = Quota {
            limit: 3,
            period: QuotaPeriod::Day,
            offset: 0,
        };
        let plan = PlanLimits::new("basic", 1, Some(limits(50)), None, Some(quota));
        let now = Instant::now();
        let check = || limiter.check(&levels, Some((CALLER, &plan)), now, NOON);
        for left in [2, 1, 0] {
            let admitted = check().unwrap().unwrap();
            assert_eq!(admitted.quota, Some((left, 43_200)));
        }
        for _ in 0..10 {
            let refused = check().unwrap_err();
            assert_eq!(refused.scope, Scope::Quota);
            assert_eq!(refused.retry_after, Duration::from_secs(43_200));
        }
        assert_eq!(lock(&account.bucket).remaining(), 97);
        limiter.flush().unwrap();
        let day = u32::try_from(NOON / 86_400).unwrap();
        assert_eq!(limiter.usage("k1", day..=day).unwrap(), vec![(day, 3)]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn pending_usage_keeps_days_apart_and_order() {
        let mut pending = Pending::default();
        assert!(pending.is_empty());
        pending.count(10);
        pending.count(10);
        pending.count(11);
        let taken = pending.take();
        assert_eq!(taken, vec![(10, 2), (11, 1)]);
        assert!(pending.is_empty());
        pending.count(11);
        pending.put_back(taken);
        assert_eq!(pending.take(), vec![(10, 2), (11, 1), (11, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_counts_from_the_stored_usage() {
        let (limiter, dir) = limiter();
        let quota = Quota {
            limit: 5,
            period: QuotaPeriod::Month,
            offset: 0,
        };
        let plan = PlanLimits::new("basic", 1, None, None, Some(quota));
        let now = Instant::now();
        for _ in 0..3 {
            limiter
                .check(&[], Some((CALLER, &plan)), now, NOON)
                .unwrap();
        }
        limiter.flush().unwrap();
        drop(limiter);
        let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
        let limiter = Limiter::new(store);
        // Later the same month: two left.
        let later = NOON + 3 * 86_400;
        let check = || limiter.check(&[], Some((CALLER, &plan)), now, later);
        assert!(check().is_ok());
        assert!(check().is_ok());
        assert_eq!(check().unwrap_err().scope, Scope::Quota);
        drop(limiter);
        let _ = std::fs::remove_dir_all(dir);
    }
}
