//! Rate limits kept in the store, so they hold across every node of a deployment: a
//! client that spreads its sign-in attempts over N nodes gets the same budget as on one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use custodia_core::{Clock, RateLimit, Timestamp};
use custodia_store::LimitStore;

use crate::{ServiceError, ServiceResult};

/// How long a bucket must be idle before it is forgotten; every limit kept in the store
/// refills well within it, so a forgotten bucket was full anyway.
const FORGET_IDLE: Duration = Duration::from_secs(24 * 3600);
/// Every this many checks, idle buckets are forgotten (the table stays bounded by the
/// keys used within a day).
const FORGET_EVERY: u64 = 1024;

/// One named limit (`name` keeps its buckets apart from other limits').
pub struct SharedLimit {
    name: &'static str,
    limit: RateLimit,
    store: Arc<dyn LimitStore>,
    clock: Arc<dyn Clock>,
    checks: AtomicU64,
}

impl SharedLimit {
    /// `limit` per key, in `store`'s buckets.
    pub fn new(
        name: &'static str,
        limit: RateLimit,
        store: Arc<dyn LimitStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            name,
            limit,
            store,
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one attempt for `key`; `RateLimited` (with how long to wait) if none is left.
    pub async fn check(&self, key: &str) -> ServiceResult<()> {
        let now = self.clock.now();
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            let idle = i64::try_from(FORGET_IDLE.as_millis()).unwrap_or(i64::MAX);
            let before = Timestamp::from_millis(now.as_millis().saturating_sub(idle));
            if let Err(e) = self.store.forget_buckets(before).await {
                tracing::warn!(error = %e, "could not forget idle rate-limit buckets");
            }
        }
        match self
            .store
            .take_token(format!("{}:{key}", self.name), self.limit, now)
            .await?
        {
            Ok(()) => Ok(()),
            Err(retry_after) => Err(ServiceError::RateLimited { retry_after }),
        }
    }
}
