//! Per-version call statistics: counts and a latency histogram, all atomics, so recording a
//! call takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::telemetry::metrics::{CALL_BOUNDS, LatencyHistogram};

/// Buckets: four per power of two of nanoseconds, which keeps percentiles within 25%.
const BUCKETS: usize = 64 * 4;

/// Calls, failures and call times of one plugin version.
#[derive(Debug)]
pub struct CallStats {
    calls: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    out_of_memory: AtomicU64,
    instantiations: AtomicU64,
    nanos: Box<[AtomicU64]>,
    /// The same call times in `GET /metrics`'s buckets.
    pub call_time: LatencyHistogram,
}

impl Default for CallStats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            out_of_memory: AtomicU64::new(0),
            instantiations: AtomicU64::new(0),
            nanos: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            call_time: LatencyHistogram::new(&CALL_BOUNDS),
        }
    }
}

fn bucket(nanos: u64) -> usize {
    if nanos < 4 {
        return usize::try_from(nanos).unwrap_or(0);
    }
    let exp = 63 - nanos.leading_zeros() as usize;
    let sub = usize::try_from((nanos >> (exp - 2)) & 3).unwrap_or(0);
    ((exp - 1) * 4 + sub).min(BUCKETS - 1)
}

/// The largest value that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < 4 {
        return index as u64;
    }
    let exp = index / 4 + 1;
    let sub = (index % 4) as u64;
    ((5 + sub) << (exp - 2)) - 1
}

/// How a call ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Timeout,
    OutOfMemory,
}

/// A snapshot for `GET /admin/plugins`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub out_of_memory: u64,
    pub instantiations: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl CallStats {
    /// Records one call.
    pub fn record(&self, elapsed: Duration, outcome: Outcome) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if outcome != Outcome::Ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            Outcome::Timeout => self.timeouts.fetch_add(1, Ordering::Relaxed),
            Outcome::OutOfMemory => self.out_of_memory.fetch_add(1, Ordering::Relaxed),
            Outcome::Ok | Outcome::Failed => 0,
        };
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.call_time.observe(elapsed);
    }

    /// Records that a new instance was made.
    pub fn instantiated(&self) {
        self.instantiations.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The counters and the 50th and 99th percentile call times.
    pub fn snapshot(&self) -> StatsSnapshot {
        let counts: Vec<u64> = self
            .nanos
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let percentile = |p: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return upper_bound(index) as f64 / 1000.0;
                }
            }
            upper_bound(BUCKETS - 1) as f64 / 1000.0
        };
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            out_of_memory: self.out_of_memory.load(Ordering::Relaxed),
            instantiations: self.instantiations.load(Ordering::Relaxed),
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        for nanos in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            10,
            15,
            16,
            1000,
            2500,
            1_000_000,
            60_000_000_000,
        ] {
            let index = bucket(nanos);
            assert!(upper_bound(index) >= nanos, "{nanos} in bucket {index}");
            if index > 0 {
                assert!(upper_bound(index - 1) < nanos, "{nanos} in bucket {index}");
            }
        }
    }

    #[test]
    fn percentiles_come_from_recorded_calls() {
        let stats = CallStats::default();
        for _ in 0..98 {
            stats.record(Duration::from_micros(2), Outcome::Ok);
        }
        stats.record(Duration::from_millis(50), Outcome::Timeout);
        stats.record(Duration::from_millis(50), Outcome::Failed);
        let snap = stats.snapshot();
        assert_eq!((snap.calls, snap.failures, snap.timeouts), (100, 2, 1));
        assert!((2.0..2.6).contains(&snap.p50_us), "{}", snap.p50_us);
        assert!(
            (50_000.0..63_000.0).contains(&snap.p99_us),
            "{}",
            snap.p99_us
        );
    }
}
