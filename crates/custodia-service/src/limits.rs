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

/// Token buckets every node shares (Redis, in a scale-out deployment): the seam the send
/// limits take their tokens through.
#[async_trait::async_trait]
pub trait SharedBuckets: Send + Sync {
    /// Takes one token for `key` under `limit` at `now`: `Ok(Ok(()))` taken,
    /// `Ok(Err(wait))` none left, `Err(why)` the shared store did not answer (the caller
    /// falls back to its own node's bucket).
    async fn take(
        &self,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<Result<(), Duration>, String>;
    /// Whether the shared store answers now.
    async fn healthy(&self) -> bool;
}

/// One send limit: shared by every node through [`SharedBuckets`] when there are any,
/// else (and whenever they do not answer) this node's own buckets — graceful degradation
/// to a per-node limit, which [`SendLimit::degraded`] reports.
pub struct SendLimit {
    name: &'static str,
    limit: RateLimit,
    local: custodia_core::KeyedRateLimiter<String>,
    clock: Arc<dyn Clock>,
}

impl SendLimit {
    /// `limit` per key, named `name` in the shared store.
    pub fn new(name: &'static str, limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        Self {
            name,
            limit,
            local: custodia_core::KeyedRateLimiter::new(limit, clock.clone()),
            clock,
        }
    }

    /// Takes one send for `key`, from `shared` if given and answering, else locally.
    /// `degraded` records whether the shared buckets failed.
    pub async fn check(
        &self,
        key: &str,
        shared: Option<&dyn SharedBuckets>,
        degraded: &std::sync::atomic::AtomicBool,
    ) -> ServiceResult<()> {
        let taken = match shared {
            Some(s) => match s
                .take(
                    &format!("{}:{key}", self.name),
                    self.limit,
                    self.clock.now(),
                )
                .await
            {
                Ok(r) => {
                    degraded.store(false, Ordering::Relaxed);
                    r
                }
                Err(why) => {
                    if !degraded.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%why, "shared send limits unreachable: each node limits on its own until they answer");
                    }
                    self.local.check(&key.to_owned())
                }
            },
            None => self.local.check(&key.to_owned()),
        };
        taken.map_err(|retry_after| ServiceError::RateLimited { retry_after })
    }
}
