//! The transparency log on PostgreSQL: leaves with their hashes, completed tile-level
//! hashes, records, and the last signed checkpoint, kept as `custodia-audit`'s `LogTree`
//! computes them. Appends and checkpoint moves from every node serialize on one
//! transaction-scoped advisory lock, under which an append lands only at the end its
//! caller saw.

use async_trait::async_trait;
use custodia_store::rows::{checkpoint, hashes_by_range, signed, unsigned};
use custodia_store::{HashRange, LogAppend, LogStore, StoreError, StoreResult, TileHash};
use custodia_tlog::Hash;
use sqlx::PgConnection;

use crate::writer::Lock;
use crate::{PgStore, map_err};

/// The advisory lock key every log write takes ("custodia log" in ASCII, truncated).
const LOG_LOCK: i64 = 0x0063_7573_746c_6f67;

async fn lock(c: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOG_LOCK)
        .execute(c)
        .await
        .map(drop)
        .map_err(map_err)
}

async fn size(c: &mut PgConnection) -> StoreResult<u64> {
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")
        .fetch_one(c)
        .await
        .map_err(map_err)?;
    unsigned(next, "log index")
}

/// Appends entries, their records and the tile-level hashes they complete at `at`.
async fn append(
    c: &mut PgConnection,
    at: u64,
    entries: Vec<LogAppend>,
    completed: Vec<TileHash>,
) -> StoreResult<()> {
    lock(c).await?;
    if size(c).await? != at {
        return Err(StoreError::Conflict);
    }
    let idx: Vec<i64> = (0..entries.len() as u64).map(|k| signed(at + k)).collect();
    let mut entry = Vec::with_capacity(entries.len());
    let mut record = Vec::with_capacity(entries.len());
    let mut leaf = Vec::with_capacity(entries.len());
    for e in entries {
        entry.push(e.entry);
        record.push(e.record);
        leaf.push(e.leaf.to_vec());
    }
    sqlx::query(
        "INSERT INTO log_leaves (idx, entry, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])",
    )
    .bind(&idx)
    .bind(&entry)
    .bind(&leaf)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO log_records (idx, record) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
    )
    .bind(&idx)
    .bind(&record)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    if !completed.is_empty() {
        let level: Vec<i32> = completed.iter().map(|t| i32::from(t.level)).collect();
        let index: Vec<i64> = completed.iter().map(|t| signed(t.index)).collect();
        let hash: Vec<Vec<u8>> = completed.iter().map(|t| t.hash.to_vec()).collect();
        sqlx::query(
            "INSERT INTO log_hashes (level, idx, hash) \
             SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::bytea[])",
        )
        .bind(&level)
        .bind(&index)
        .bind(&hash)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

async fn last_checkpoint(c: &mut PgConnection) -> StoreResult<Option<(u64, String)>> {
    let row = sqlx::query_as("SELECT size, note FROM log_checkpoint WHERE id = 1")
        .fetch_optional(c)
        .await
        .map_err(map_err)?;
    checkpoint(row)
}

#[async_trait]
impl LogStore for PgStore {
    async fn append_entries(
        &self,
        at: u64,
        entries: Vec<LogAppend>,
        completed: Vec<TileHash>,
    ) -> StoreResult<()> {
        self.writer
            .write(Lock::Log, move |c| {
                Box::pin(append(c, at, entries, completed))
            })
            .await
    }

    async fn log_record(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT record FROM log_records WHERE idx = $1")
            .bind(signed(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn log_size(&self) -> StoreResult<u64> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        size(&mut c).await
    }

    async fn log_entries(&self, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
        sqlx::query_scalar("SELECT entry FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(signed(start))
            .bind(signed(start.saturating_add(count)))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn log_hashes(&self, ranges: Vec<HashRange>) -> StoreResult<Vec<Vec<Hash>>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let level: Vec<i32> = ranges.iter().map(|r| i32::from(r.level)).collect();
        let start: Vec<i64> = ranges.iter().map(|r| signed(r.start)).collect();
        let end: Vec<i64> = ranges
            .iter()
            .map(|r| signed(r.start.saturating_add(r.count)))
            .collect();
        // One query for every range: each joins the leaves (level 0) or the stored tile
        // levels; ordinals from UNNEST count from 1.
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT r.ord - 1, h.hash \
             FROM UNNEST($1::int[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS r(level, lo, hi, ord) \
             CROSS JOIN LATERAL ( \
                 SELECT idx, hash FROM log_leaves \
                  WHERE r.level = 0 AND idx >= r.lo AND idx < r.hi \
                 UNION ALL \
                 SELECT idx, hash FROM log_hashes \
                  WHERE r.level > 0 AND level = r.level AND idx >= r.lo AND idx < r.hi \
             ) h \
             ORDER BY r.ord, h.idx",
        )
        .bind(&level)
        .bind(&start)
        .bind(&end)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        hashes_by_range(ranges.len(), rows)
    }

    async fn last_checkpoint(&self) -> StoreResult<Option<(u64, String)>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        last_checkpoint(&mut c).await
    }

    async fn save_checkpoint(
        &self,
        previous: Option<u64>,
        size: u64,
        note: String,
    ) -> StoreResult<()> {
        self.writer
            .write(Lock::Log, move |c| {
                Box::pin(async move {
                    // Under the log's lock, so the compare and the set are one step for
                    // every node.
                    lock(c).await?;
                    if last_checkpoint(c).await?.map(|(s, _)| s) != previous {
                        return Err(StoreError::Conflict);
                    }
                    sqlx::query(
                        "INSERT INTO log_checkpoint (id, size, note) VALUES (1, $1, $2) \
                         ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note",
                    )
                    .bind(signed(size))
                    .bind(&note)
                    .execute(&mut *c)
                    .await
                    .map(drop)
                    .map_err(map_err)
                })
            })
            .await
    }
}
