//! A keyed token-bucket rate limiter driven by the injected clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Clock, Timestamp};

/// `burst` tokens, refilled at one token per `per / burst`.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// How many actions may happen at once.
    pub burst: u32,
    /// The time in which a full bucket refills.
    pub per: Duration,
}

/// One key's bucket: the tokens left when it was last used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    /// Tokens left (fractions refill over time).
    pub tokens: f64,
    /// When it was last used.
    pub at: Timestamp,
}

impl RateLimit {
    /// Takes one token at `now` from `bucket` (`None`: never used, so full). Returns the
    /// bucket's new state, and `Err(wait)` with how long until a token is available when
    /// none is (the bucket is then only refilled, not spent).
    pub fn take(
        &self,
        bucket: Option<TokenBucket>,
        now: Timestamp,
    ) -> (TokenBucket, Result<(), Duration>) {
        let burst = f64::from(self.burst.max(1));
        let rate_per_ms = burst / (self.per.as_millis().max(1) as f64);
        let tokens = match bucket {
            Some(b) => (b.tokens + now.since(b.at).as_millis() as f64 * rate_per_ms).min(burst),
            None => burst,
        };
        if tokens >= 1.0 {
            (
                TokenBucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
                Ok(()),
            )
        } else {
            let wait_ms = ((1.0 - tokens) / rate_per_ms).ceil() as u64;
            (
                TokenBucket { tokens, at: now },
                Err(Duration::from_millis(wait_ms.max(1))),
            )
        }
    }
}

/// Token buckets per key, in this process. Idle, full buckets are dropped so memory stays
/// bounded by the number of keys active within one refill period.
pub struct KeyedRateLimiter<K> {
    limit: RateLimit,
    clock: Arc<dyn Clock>,
    // std Mutex: held for a few arithmetic operations, never across an await.
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// A limiter applying `limit` to each key.
    pub fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        Self {
            limit,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`. `Err(wait)` says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            let full_after = self.limit.per;
            buckets.retain(|_, b| now.since(b.at) < full_after);
        }
        let (bucket, taken) = self.limit.take(buckets.get(key).copied(), now);
        buckets.insert(key.clone(), bucket);
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn burst_then_refill() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let rl = KeyedRateLimiter::new(
            RateLimit {
                burst: 3,
                per: Duration::from_secs(3),
            },
            clock.clone(),
        );
        for _ in 0..3 {
            rl.check(&"a").unwrap();
        }
        let wait = rl.check(&"a").unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        rl.check(&"b").unwrap();
        clock.advance(Duration::from_secs(1));
        rl.check(&"a").unwrap();
        assert!(rl.check(&"a").is_err());
    }
}
