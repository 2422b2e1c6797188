//! The throttle's settings, as config builds them: token buckets and quotas.

/// Default node-wide throttle: 10,000 requests per second with a burst of 5,000, API Gateway's
/// default account limit.
pub const DEFAULT_ACCOUNT_THROTTLE: Throttle = Throttle {
    rate: 10_000.0,
    burst: 5_000,
};

/// A token bucket: `burst` requests at once, refilled at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u64,
}

/// A quota window, in UTC calendar terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    /// Monday 00:00 UTC to the next.
    Week,
    Month,
}

/// `limit` requests per `period`; `offset` requests are taken off the first period's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
    pub offset: u64,
}
