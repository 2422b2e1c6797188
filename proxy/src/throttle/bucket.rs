//! A token bucket: up to `burst` requests at once, refilled at `rate` per second. Time is
//! tokio's (`tokio::time::Instant`), so tests drive it with the paused clock.

use std::time::Duration;

use tokio::time::Instant;

use super::Throttle;

/// One bucket's state. Tokens are kept as a float so that fractional rates (0.5 per second)
/// refill exactly.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

/// A request the bucket refused, and how long until a token is there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    pub retry_after: Duration,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(limits: &Throttle, now: Instant) -> Self {
        Self {
            tokens: limits.burst as f64,
            updated: now,
        }
    }

    /// Takes one token if there is one. A refusal takes nothing and says when to retry.
    pub fn take(&mut self, limits: &Throttle, now: Instant) -> Result<(), Refused> {
        let burst = limits.burst as f64;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.rate).min(burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let never = Duration::from_secs(3600);
        let retry_after = if limits.rate > 0.0 && burst >= 1.0 {
            // A rate so small that the wait overflows a Duration is as good as never.
            Duration::try_from_secs_f64((1.0 - self.tokens) / limits.rate).unwrap_or(never)
        } else {
            // A zero rate or burst never refills: say "in an hour", as good as never.
            never
        };
        Err(Refused { retry_after })
    }

    /// Returns a token taken for a request that a later limit refused.
    pub fn give_back(&mut self, limits: &Throttle) {
        self.tokens = (self.tokens + 1.0).min(limits.burst as f64);
    }

    /// Whole tokens left (for `RateLimit` headers).
    pub fn remaining(&self) -> u64 {
        self.tokens.max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_the_steady_rate() {
        let limits = Throttle {
            rate: 10.0,
            burst: 20,
        };
        let mut bucket = TokenBucket::full(&limits, Instant::now());
        let taken = (0..50)
            .filter(|_| bucket.take(&limits, Instant::now()).is_ok())
            .count();
        assert_eq!(taken, 20, "the burst, and not one more");
        let refused = bucket.take(&limits, Instant::now()).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));

        // At 10 per second, one second brings exactly 10 more.
        tokio::time::advance(Duration::from_secs(1)).await;
        let taken = (0..50)
            .filter(|_| bucket.take(&limits, Instant::now()).is_ok())
            .count();
        assert_eq!(taken, 10);

        // Steady traffic at the rate is never refused: one every 100 ms for 10 s.
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(100)).await;
            assert!(bucket.take(&limits, Instant::now()).is_ok());
        }
        // A long pause refills to the burst, not beyond.
        tokio::time::advance(Duration::from_secs(3600)).await;
        let taken = (0..50)
            .filter(|_| bucket.take(&limits, Instant::now()).is_ok())
            .count();
        assert_eq!(taken, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_and_zero_rates() {
        let half = Throttle {
            rate: 0.5,
            burst: 1,
        };
        let mut bucket = TokenBucket::full(&half, Instant::now());
        assert!(bucket.take(&half, Instant::now()).is_ok());
        assert_eq!(
            bucket.take(&half, Instant::now()).unwrap_err().retry_after,
            Duration::from_secs(2)
        );
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(bucket.take(&half, Instant::now()).is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(bucket.take(&half, Instant::now()).is_ok());

        let closed = Throttle {
            rate: 0.0,
            burst: 0,
        };
        let mut bucket = TokenBucket::full(&closed, Instant::now());
        assert!(bucket.take(&closed, Instant::now()).is_err());

        // A rate too small for a Duration to hold the wait refuses without panicking.
        let tiny = Throttle {
            rate: 1e-30,
            burst: 1,
        };
        let mut bucket = TokenBucket::full(&tiny, Instant::now());
        assert!(bucket.take(&tiny, Instant::now()).is_ok());
        assert_eq!(
            bucket.take(&tiny, Instant::now()).unwrap_err().retry_after,
            Duration::from_secs(3600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_given_back_is_there_again_up_to_the_burst() {
        let limits = Throttle {
            rate: 1.0,
            burst: 2,
        };
        let mut bucket = TokenBucket::full(&limits, Instant::now());
        bucket.give_back(&limits);
        assert_eq!(bucket.remaining(), 2, "never above the burst");
        assert!(bucket.take(&limits, Instant::now()).is_ok());
        assert!(bucket.take(&limits, Instant::now()).is_ok());
        assert!(bucket.take(&limits, Instant::now()).is_err());
        bucket.give_back(&limits);
        assert!(bucket.take(&limits, Instant::now()).is_ok());
    }
}
