//! Shared rate-limit buckets on SQLite (one node; kept alike with PostgreSQL).

use async_trait::async_trait;
use custodia_core::{RateLimit, Timestamp, TokenBucket};
use custodia_store::{LimitStore, StoreResult};
use rusqlite::{OptionalExtension, params};

use crate::{SqliteStore, map_err};

#[async_trait]
impl LimitStore for SqliteStore {
    async fn take_token(
        &self,
        key: String,
        limit: RateLimit,
        now: Timestamp,
    ) -> StoreResult<Result<(), std::time::Duration>> {
        // On the single writer thread: the read and the write are one step.
        self.writer
            .write(move |c| {
                let bucket = c
                    .prepare_cached("SELECT tokens, at FROM rate_buckets WHERE key = ?1")
                    .and_then(|mut s| {
                        s.query_row([&key], |r| {
                            Ok(TokenBucket {
                                tokens: r.get(0)?,
                                at: Timestamp::from_millis(r.get(1)?),
                            })
                        })
                        .optional()
                    })
                    .map_err(map_err)?;
                let (bucket, taken) = limit.take(bucket, now);
                c.prepare_cached(
                    "INSERT INTO rate_buckets (key, tokens, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                )
                .and_then(|mut s| s.execute(params![key, bucket.tokens, bucket.at.as_millis()]))
                .map_err(map_err)?;
                Ok(taken)
            })
            .await
    }

    async fn forget_buckets(&self, before: Timestamp) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                c.execute(
                    "DELETE FROM rate_buckets WHERE at < ?1",
                    [before.as_millis()],
                )
                .map(|n| n as u64)
                .map_err(map_err)
            })
            .await
    }
}
