//! Shared rate-limit buckets on PostgreSQL: one row per key, read and written under its
//! row lock, so attempts on several nodes never spend one token twice.

use async_trait::async_trait;
use custodia_core::{RateLimit, Timestamp, TokenBucket};
use custodia_store::{LimitStore, StoreResult};

use crate::writer::Lock;
use crate::{PgStore, map_err};

#[async_trait]
impl LimitStore for PgStore {
    async fn take_token(
        &self,
        key: String,
        limit: RateLimit,
        now: Timestamp,
    ) -> StoreResult<Result<(), std::time::Duration>> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    // The row first (a full bucket if it is new; a concurrent first use
                    // on another node waits here), then its lock, then the take.
                    sqlx::query(
                        "INSERT INTO rate_buckets (key, tokens, at) VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(&key)
                    .bind(f64::from(limit.burst.max(1)))
                    .bind(now.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let (tokens, at): (f64, i64) = sqlx::query_as(
                        "SELECT tokens, at FROM rate_buckets WHERE key = $1 FOR UPDATE",
                    )
                    .bind(&key)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let current = TokenBucket {
                        tokens,
                        at: Timestamp::from_millis(at),
                    };
                    let (bucket, taken) = limit.take(Some(current), now);
                    sqlx::query("UPDATE rate_buckets SET tokens = $2, at = $3 WHERE key = $1")
                        .bind(&key)
                        .bind(bucket.tokens)
                        .bind(bucket.at.as_millis())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    Ok(taken)
                })
            })
            .await
    }

    async fn forget_buckets(&self, before: Timestamp) -> StoreResult<u64> {
        self.statement(
            Lock::Own,
            "DELETE FROM rate_buckets WHERE at < $1",
            move |q| q.bind(before.as_millis()),
        )
        .await
    }
}
