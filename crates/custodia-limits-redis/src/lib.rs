//! Send limits every node shares: one token bucket per key in Redis, taken by an atomic
//! Lua script, so a sender spreading sends over N nodes gets one budget, not N.
//!
//! The bucket is the same as a node's own (`custodia_core::RateLimit::take`): `burst`
//! tokens refilled continuously over `per`, time from the calling node's injected clock
//! (a bucket's time only moves forward, so nodes' small clock differences cannot refill
//! it twice). A bucket idle for `per` is full again, so Redis forgets it then (PEXPIRE).
//!
//! **Degradation.** Every call is bounded by a short timeout; when Redis does not answer,
//! the caller falls back to its own node's bucket (per-node limits) and `/readyz` says
//! so. The connection is re-made at most once a second while Redis is down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use custodia_core::{RateLimit, Timestamp};
use redis::aio::MultiplexedConnection;

/// Takes one token, atomically: KEYS[1] the bucket; ARGV burst, per (ms), now (ms).
/// Returns {1, 0} taken, or {0, wait_ms}.
const TAKE: &str = r"
local burst = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * burst / per)
  ts = now
end
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.max(1, math.ceil((1 - tokens) * per / burst))
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], per)
return {taken, wait}
";

/// How long one call to Redis may take before the node limits on its own.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// The least time between two attempts to connect while Redis is down.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// Shared buckets in one Redis, under a key prefix (one per deployment).
pub struct RedisBuckets {
    client: redis::Client,
    prefix: String,
    script: redis::Script,
    // std Mutex: held to clone or replace the connection handle, never across an await.
    conn: Mutex<(Option<MultiplexedConnection>, Option<Instant>)>,
}

impl std::fmt::Debug for RedisBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuckets")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBuckets {
    /// Buckets in the Redis at `url` (`redis://host:port/db`), keys under `prefix`. Does
    /// not connect yet: a Redis that is down at start only degrades the limits.
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis_url: {e}"))?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            script: redis::Script::new(TAKE),
            conn: Mutex::new((None, None)),
        })
    }

    /// A connection, made now if there is none (at most once a second while Redis is
    /// down).
    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        {
            let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = &guard.0 {
                return Ok(c.clone());
            }
            if guard.1.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
                return Err("redis is down (retrying within a second)".into());
            }
            guard.1 = Some(Instant::now());
        }
        let made =
            tokio::time::timeout(CALL_TIMEOUT, self.client.get_multiplexed_async_connection())
                .await
                .map_err(|_| "connecting to redis timed out".to_owned())?
                .map_err(|e| format!("connecting to redis: {e}"))?;
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 = Some(made.clone());
        Ok(made)
    }

    /// Forgets the connection after a failure (the next call reconnects).
    fn drop_connection(&self) {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 = None;
        guard.1 = Some(Instant::now());
    }
}

#[async_trait::async_trait]
impl custodia_service::SharedBuckets for RedisBuckets {
    async fn take(
        &self,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<Result<(), Duration>, String> {
        let mut conn = self.connection().await?;
        let per = limit.per.as_millis().max(1) as i64;
        let mut call = self.script.key(format!("{}{key}", self.prefix));
        call.arg(limit.burst.max(1)).arg(per).arg(now.as_millis());
        let answer: Result<(i64, i64), String> =
            match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(format!("redis: {e}")),
                Err(_) => Err("redis did not answer in time".into()),
            };
        match answer {
            Ok((1, _)) => Ok(Ok(())),
            Ok((_, wait)) => Ok(Err(Duration::from_millis(wait.max(1) as u64))),
            Err(e) => {
                self.drop_connection();
                Err(e)
            }
        }
    }

    async fn healthy(&self) -> bool {
        let Ok(mut conn) = self.connection().await else {
            return false;
        };
        let pong = tokio::time::timeout(
            CALL_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let ok = matches!(pong, Ok(Ok(_)));
        if !ok {
            self.drop_connection();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use custodia_service::SharedBuckets;

    use super::*;

    /// The Redis tests use unless `CUSTODIA_TEST_REDIS` names another.
    fn url() -> String {
        std::env::var("CUSTODIA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn fresh() -> RedisBuckets {
        RedisBuckets::new(&url(), &format!("custodia-test:{}:", std::process::id()))
            .unwrap()
            .with_prefix_suffix()
    }

    impl RedisBuckets {
        /// A prefix nobody else uses (runs never see each other's buckets).
        fn with_prefix_suffix(mut self) -> Self {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            self.prefix = format!(
                "{}{nanos}:{}:",
                self.prefix,
                N.fetch_add(1, Ordering::Relaxed)
            );
            self
        }
    }

    const LIMIT: RateLimit = RateLimit {
        burst: 3,
        per: Duration::from_secs(3),
    };

    #[tokio::test]
    async fn a_bucket_empties_refills_with_the_callers_clock_and_keeps_keys_apart() {
        let b = fresh();
        assert!(
            b.healthy().await,
            "cannot reach Redis at {}: start it (redis-server --daemonize yes) or set CUSTODIA_TEST_REDIS",
            url()
        );
        let t0 = Timestamp::from_millis(1_000_000);
        for _ in 0..3 {
            assert_eq!(b.take("alice", LIMIT, t0).await.unwrap(), Ok(()));
        }
        let wait = b.take("alice", LIMIT, t0).await.unwrap().unwrap_err();
        assert_eq!(wait, Duration::from_millis(1000), "one token a second");
        assert_eq!(
            b.take("bob", LIMIT, t0).await.unwrap(),
            Ok(()),
            "keys apart"
        );
        // 999 ms later still none; at 1000 ms one.
        let later = |ms: i64| Timestamp::from_millis(1_000_000 + ms);
        assert!(b.take("alice", LIMIT, later(999)).await.unwrap().is_err());
        assert_eq!(b.take("alice", LIMIT, later(1000)).await.unwrap(), Ok(()));
        // A node whose clock lags does not refill the bucket again.
        assert!(b.take("alice", LIMIT, later(500)).await.unwrap().is_err());
        // The same answers as a node's own bucket, step by step.
        let mut local = None;
        for ms in [2000, 2001, 2500, 4000, 4000, 4000, 4000, 9000] {
            let (bucket, want) = LIMIT.take(local, later(ms));
            local = Some(bucket);
            let got = b.take("carol", LIMIT, later(ms)).await.unwrap();
            assert_eq!(got.is_ok(), want.is_ok(), "at {ms} ms");
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        let b = RedisBuckets::new("redis://127.0.0.1:1", "x:").unwrap();
        let t0 = Timestamp::from_millis(0);
        assert!(b.take("k", LIMIT, t0).await.is_err());
        assert!(!b.healthy().await);
    }
}
