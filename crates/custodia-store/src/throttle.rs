//! [`LogThrottle`]: the same failure, repeated thousands of times a second (a full disk,
//! a lost database), is logged once per interval with how many were left out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many distinct keys are remembered before the oldest memories are dropped.
const MAX_KEYS: usize = 256;

/// Decides, per key (a failure and its message), whether an occurrence is logged.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    // std Mutex: held for one map update, never across an await.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl LogThrottle {
    /// Logs each key at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log an occurrence of `key` at `now`: `Some(n)` with the number of
    /// occurrences left out since the last one logged, or `None` to stay quiet.
    pub fn admit(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((last, skipped)) = seen.get_mut(key) {
            if now.duration_since(*last) < self.interval {
                *skipped += 1;
                return None;
            }
            let left_out = *skipped;
            *last = now;
            *skipped = 0;
            return Some(left_out);
        }
        if seen.len() >= MAX_KEYS {
            let interval = self.interval;
            seen.retain(|_, (last, _)| now.duration_since(*last) < interval);
            if seen.len() >= MAX_KEYS {
                seen.clear();
            }
        }
        seen.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_logged_once_per_interval_with_a_count() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(t.admit("commit failed: disk full", at(0)), Some(0));
        let logged = (1..178_000u64)
            .filter(|k| t.admit("commit failed: disk full", at(k / 7)).is_some())
            .count();
        // 25 s of 7,000 failures a second: the first, then one per 10 s.
        assert_eq!(logged, 2);
        // Logged at k = 70,000 and 140,000; the 37,999 after the second were left out.
        assert_eq!(
            t.admit("commit failed: disk full", at(30_000)),
            Some(37_999)
        );
        assert_eq!(t.admit("another failure", at(30_000)), Some(0), "per key");
    }
}
