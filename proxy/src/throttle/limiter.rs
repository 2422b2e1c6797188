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
    pub const ALL: [Self; 6] = [
        Self::Account,
        Self::Stage,
        Self::Route,
        Self::Key,
        Self::KeyRoute,
        Self::Quota,
    ];

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

/// A key as the limiter knows it: its plan-wide bucket, the name of its quota count and the
/// usage not yet stored. Aligned to 128 bytes, so an entry is one pair of cache lines (which
/// x86 fetches together) and a check for one of many keys waits for memory once.
#[derive(Debug, Default)]
#[repr(align(128))]
struct KeyEntry {
    /// The plan it was made under ([`PlanLimits::slot`]); 0 for a slot not in use.
    plan: u64,
    key_id: Box<str>,
    /// `None` until made for a plan with a quota.
    counter: Option<Arc<CounterKey>>,
    /// Set while the count is being seeded from stored usage; every request of the key waits
    /// for it before counting.
    seeding: Option<Arc<tokio::sync::OnceCell<()>>>,
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
    /// The API key's `slot` (`auth::keys::ApiKey`).
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
    /// Counts while `counters` fails, so that quotas still hold on this node.
    fallback: LocalCounters,
    /// When `counters` last failed, seconds since the epoch (0: never): logged once a minute.
    counters_failed: AtomicU64,
    shared: Mutex<HashMap<String, Arc<SharedBucket>>>,
    slots: Mutex<HashMap<String, u64>>,
    /// By [`Caller::slot`].
    keys: SlotTable<KeyEntry>,
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
        Self::with_counters(store, LocalCounters::default())
    }
}

impl<C: Counters> Limiter<C> {
    /// A limiter with another counters backend.
    pub fn with_counters(store: Arc<dyn StateStore>, counters: C) -> Self {
        Self {
            store,
            counters,
            fallback: LocalCounters::default(),
            counters_failed: AtomicU64::new(0),
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
    /// A request with a key takes its tokens under its entry's shard lock, from the key's bucket
    /// to the shared ones (other locks are only ever taken inside that one, never around it);
    /// then its quota count decides, outside any lock, as a shared backend's answer arrives.
    /// A request refused anywhere takes no token and is not counted in usage.
    pub async fn check(
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
        let day = u32::try_from(wall / 86_400).unwrap_or(u32::MAX);
        let (key_state, counter, seeding) = {
            let mut entry = self.keys.get(caller.slot).ok_or_else(exhausted)?;
            if entry.plan != plan.slot {
                // The key's first request under this plan; the entry of its previous plan
                // hands over its usage not yet stored.
                let mut made = self.new_entry(caller, plan);
                made.pending = std::mem::take(&mut entry.pending);
                *entry = made;
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
            if let Err(refused) = take_shared(levels, now) {
                self.give_back_key(&mut entry, caller, plan);
                return Err(refused);
            }
            let counter = plan.quota.as_ref().and(entry.counter.clone());
            let seeding = entry.seeding.clone();
            if counter.is_none() {
                // No quota to wait for: counted in usage now, under the same lock.
                self.count_usage(entry, caller.slot, day);
            }
            (key_state, counter, seeding)
        };
        let mut quota_state = None;
        if let (Some(q), Some(counter)) = (&plan.quota, counter) {
            let window = Window::containing(q.period, wall);
            if let Some(seeding) = seeding {
                seeding.get_or_init(|| self.seed(&counter, &window)).await;
                if let Some(mut entry) = self.keys.get(caller.slot)
                    && entry
                        .seeding
                        .as_ref()
                        .is_some_and(|s| Arc::ptr_eq(s, &seeding))
                {
                    entry.seeding = None;
                }
            }
            // The count decides: another node sharing it may have used the last request.
            let allowance = quota::allowance(q, &window, caller.created);
            let used = self.count(&counter, &window).await;
            let Some(mut entry) = self.keys.get(caller.slot) else {
                return Err(exhausted());
            };
            if used > allowance {
                self.give_back_key(&mut entry, caller, plan);
                drop(entry);
                give_back_shared(levels);
                return Err(quota_refusal(q, &window, wall));
            }
            self.count_usage(entry, caller.slot, day);
            let reset = window.end.saturating_sub(wall);
            quota_state = Some((allowance - used, reset));
        }
        let Some(policy) = &plan.policy else {
            return Ok(None);
        };
        Ok(Some(RateLimitHeaders {
            policy: policy.clone(),
            key: key_state.map(|(scope, limits, left)| (scope, *limits, left)),
            quota: quota_state,
        }))
    }

    /// Returns the token a request of `caller` took from its key's bucket.
    fn give_back_key(&self, entry: &mut KeyEntry, caller: Caller<'_>, plan: &PlanLimits) {
        match &plan.route {
            Some((route_slot, limits)) => {
                self.key_routes
                    .give_back(&(caller.slot, *route_slot), limits);
            }
            None => {
                if let (Some(bucket), Some(limits)) = (entry.bucket.as_mut(), &plan.throttle) {
                    bucket.give_back(limits);
                }
            }
        }
    }

    /// Counts an admitted request in its key's usage of `day`.
    fn count_usage(
        &self,
        mut entry: impl std::ops::DerefMut<Target = KeyEntry>,
        slot: u64,
        day: u32,
    ) {
        let first = entry.pending.is_empty();
        entry.pending.count(day);
        drop(entry);
        if first {
            lock(&self.dirty).push(slot);
        }
    }

    /// Adds one request to `counter`; in this node's memory while the backend fails.
    async fn count(&self, counter: &CounterKey, window: &Window) -> u64 {
        match self.counters.add(counter, window, 1).await {
            Ok(used) => used,
            Err(e) => {
                let now = wall_secs();
                let last = self.counters_failed.swap(now, Ordering::Relaxed);
                if now.saturating_sub(last) >= 60 {
                    tracing::warn!(
                        error = %e,
                        "quota counts are kept on this node until the counters backend answers"
                    );
                }
                self.fallback.add_now(counter, window, 1)
            }
        }
    }

    /// Seeds a backend that starts empty with the key's stored usage of `window`, unless it
    /// counted this key in this window already (the key came back to an earlier plan).
    async fn seed(&self, counter: &CounterKey, window: &Window) {
        if !self.counters.forgets_on_restart() {
            return;
        }
        let (first, last) = window.days();
        let stored = match self.store.usage(&counter.key_id, first..=last).await {
            Ok(days) => days.iter().map(|(_, n)| n).sum::<u64>(),
            Err(e) => {
                tracing::warn!(
                    key = &*counter.key_id,
                    error = %e,
                    "cannot read stored usage to seed the quota count"
                );
                return;
            }
        };
        if stored > 0 && matches!(self.counters.get(counter, window).await, Ok(0)) {
            let _ = self.counters.add(counter, window, stored).await;
        }
    }

    /// A new entry for `caller` under `plan`; its quota count is seeded by the first request
    /// that needs it.
    fn new_entry(&self, caller: Caller<'_>, plan: &PlanLimits) -> KeyEntry {
        let counter = plan.quota.as_ref().map(|_| {
            Arc::new(CounterKey {
                plan: plan.name.clone(),
                key_id: caller.key_id.into(),
            })
        });
        KeyEntry {
            plan: plan.slot,
            key_id: caller.key_id.into(),
            seeding: counter
                .as_ref()
                .map(|_| Arc::new(tokio::sync::OnceCell::new())),
            counter,
            bucket: None,
            pending: Pending::default(),
        }
    }

    /// Adds the usage counted since the last flush to the store. On failure the counts are
    /// put back for the next flush.
    pub async fn flush(&self) -> Result<(), StateError> {
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
        let Err(e) = self.store.add_usage(increments).await else {
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
    pub async fn usage(
        &self,
        key_id: &str,
        days: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<(u32, u64)>, StateError> {
        self.store.usage(key_id, days).await
    }
}

/// Takes a token from each shared bucket, most specific first. The first that refuses ends it,
/// and the tokens taken before it are given back.
pub fn take_shared(levels: &[Arc<SharedBucket>], now: Instant) -> Result<(), Refusal> {
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
        assert!(check().await.is_ok());
        assert!(check().await.is_ok());
        // The stage is out: the route's and the key's tokens come back each time.
        for _ in 0..5 {
            assert_eq!(check().await.unwrap_err().scope, Scope::Stage);
        }
        assert_eq!(lock(&route.bucket).remaining(), 3);
        let admitted = {
            tokio::time::advance(Duration::from_secs(1)).await;
            limiter
                .check(&levels, Some((CALLER, &plan)), Instant::now(), NOON)
                .await
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
            let admitted = check().await.unwrap().unwrap();
            assert_eq!(admitted.quota, Some((left, 43_200)));
        }
        for _ in 0..10 {
            let refused = check().await.unwrap_err();
            assert_eq!(refused.scope, Scope::Quota);
            assert_eq!(refused.retry_after, Duration::from_secs(43_200));
        }
        assert_eq!(lock(&account.bucket).remaining(), 97);
        limiter.flush().await.unwrap();
        let day = u32::try_from(NOON / 86_400).unwrap();
        assert_eq!(
            limiter.usage("k1", day..=day).await.unwrap(),
            vec![(day, 3)]
        );
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
                .await
                .unwrap();
        }
        limiter.flush().await.unwrap();
        drop(limiter);
        let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
        let limiter = Limiter::new(store);
        // Later the same month: two left.
        let later = NOON + 3 * 86_400;
        let check = || limiter.check(&[], Some((CALLER, &plan)), now, later);
        assert!(check().await.is_ok());
        assert!(check().await.is_ok());
        assert_eq!(check().await.unwrap_err().scope, Scope::Quota);
        drop(limiter);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A counters backend that is down.
    #[derive(Debug)]
    struct Unreachable;

    impl Counters for Unreachable {
        fn add(
            &self,
            _: &CounterKey,
            _: &Window,
            _: u64,
        ) -> impl Future<Output = Result<u64, crate::throttle::CounterError>> + Send {
            std::future::ready(Err(crate::throttle::CounterError(
                "connection refused".into(),
            )))
        }

        fn get(
            &self,
            _: &CounterKey,
            _: &Window,
        ) -> impl Future<Output = Result<u64, crate::throttle::CounterError>> + Send {
            std::future::ready(Err(crate::throttle::CounterError(
                "connection refused".into(),
            )))
        }

        fn forgets_on_restart(&self) -> bool {
            false
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_counters_backend_falls_back_to_local_counts() {
        let (limiter, dir) = limiter();
        let limiter = Limiter::with_counters(limiter.store.clone(), Unreachable);
        let quota = Quota {
            limit: 2,
            period: QuotaPeriod::Day,
            offset: 0,
        };
        let plan = PlanLimits::new("basic", 1, None, None, Some(quota));
        let now = Instant::now();
        let check = || limiter.check(&[], Some((CALLER, &plan)), now, NOON);
        // Admitted, not failed, while the backend is down; and the quota still holds here.
        assert_eq!(check().await.unwrap().unwrap().quota, Some((1, 43_200)));
        assert_eq!(check().await.unwrap().unwrap().quota, Some((0, 43_200)));
        assert_eq!(check().await.unwrap_err().scope, Scope::Quota);
        limiter.flush().await.unwrap();
        let day = u32::try_from(NOON / 86_400).unwrap();
        assert_eq!(
            limiter.usage("k1", day..=day).await.unwrap(),
            vec![(day, 2)]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_requests_seed_the_count_once() {
        let (limiter, dir) = limiter();
        let day = u32::try_from(NOON / 86_400).unwrap();
        limiter
            .store
            .add_usage(vec![UsageIncrement {
                key_id: "k1".into(),
                day,
                requests: 5,
            }])
            .await
            .unwrap();
        let quota = Quota {
            limit: 10,
            period: QuotaPeriod::Day,
            offset: 0,
        };
        let plan = PlanLimits::new("basic", 1, None, None, Some(quota));
        let now = Instant::now();
        let checks = (0..8).map(|_| limiter.check(&[], Some((CALLER, &plan)), now, NOON));
        let outcomes = futures_util::future::join_all(checks).await;
        // 5 stored + 8 now: 5 admitted, 3 over the quota of 10.
        let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(admitted, 5, "{outcomes:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
