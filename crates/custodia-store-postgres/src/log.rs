//! The transparency log on PostgreSQL: leaves with their hashes, completed tile-level
//! hashes, records, and the last signed checkpoint. Appends from every node serialize on
//! one transaction-scoped advisory lock (indices are `MAX(idx) + 1` under it). Proofs are
//! computed from the stored tile levels on a blocking thread, one query per subtree.

use async_trait::async_trait;
use custodia_store::{LogAppend, LogStore, StoreError, StoreResult};
use custodia_tlog::{
    Hash, SubtreeSource, TILE_WIDTH, leaf_hash, subtree_from_tile_levels, tile_root,
};
use sqlx::{PgConnection, PgPool};

use crate::rows::i;
use crate::writer::Lock;
use crate::{PgStore, map_err};

/// The advisory lock key every log append takes ("custodia log" in ASCII, truncated).
const LOG_LOCK: i64 = 0x0063_7573_746c_6f67;

async fn size(c: &mut PgConnection) -> StoreResult<u64> {
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")
        .fetch_one(c)
        .await
        .map_err(map_err)?;
    u64::try_from(next).map_err(|_| StoreError::Corrupt("negative log index".into()))
}

/// Hashes `[start, start + count)` of a tile level, as stored.
async fn hashes(
    c: &mut PgConnection,
    tile_level: u8,
    start: u64,
    count: u64,
) -> StoreResult<Vec<Hash>> {
    let end = i(start.saturating_add(count));
    let raw: Vec<Vec<u8>> = if tile_level == 0 {
        sqlx::query_scalar("SELECT hash FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(i(start))
            .bind(end)
            .fetch_all(c)
            .await
    } else {
        sqlx::query_scalar(
            "SELECT hash FROM log_hashes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        )
        .bind(i32::from(tile_level))
        .bind(i(start))
        .bind(end)
        .fetch_all(c)
        .await
    }
    .map_err(map_err)?;
    raw.into_iter()
        .map(|h| {
            h.try_into()
                .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".into()))
        })
        .collect()
}

/// Appends entries, their records, and the tile-level hashes they complete; returns the
/// first index.
async fn append(c: &mut PgConnection, entries: Vec<LogAppend>) -> StoreResult<u64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOG_LOCK)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    let start = size(c).await?;
    let n = entries.len() as u64;
    let idx: Vec<i64> = (0..n).map(|k| i(start + k)).collect();
    let leaf_hashes: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| leaf_hash(&e.entry).to_vec())
        .collect();
    let (entry, record): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        entries.into_iter().map(|e| (e.entry, e.record)).unzip();
    sqlx::query(
        "INSERT INTO log_leaves (idx, entry, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])",
    )
    .bind(&idx)
    .bind(&entry)
    .bind(&leaf_hashes)
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
    // Each group of 256 hashes completed at one tile level adds one hash to the next.
    let (mut before, mut after) = (start, start + n);
    let mut level = 0u8;
    while after / TILE_WIDTH > before / TILE_WIDTH {
        for group in before / TILE_WIDTH..after / TILE_WIDTH {
            let below = hashes(c, level, group * TILE_WIDTH, TILE_WIDTH).await?;
            if below.len() as u64 != TILE_WIDTH {
                return Err(StoreError::Corrupt(format!(
                    "tile level {level} is missing hashes"
                )));
            }
            sqlx::query("INSERT INTO log_hashes (level, idx, hash) VALUES ($1, $2, $3)")
                .bind(i32::from(level) + 1)
                .bind(i(group))
                .bind(&tile_root(&below)[..])
                .execute(&mut *c)
                .await
                .map_err(map_err)?;
        }
        (before, after) = (before / TILE_WIDTH, after / TILE_WIDTH);
        level += 1;
    }
    Ok(start)
}

async fn last_checkpoint(c: &mut PgConnection) -> StoreResult<Option<(u64, String)>> {
    let found: Option<(i64, String)> =
        sqlx::query_as("SELECT size, note FROM log_checkpoint WHERE id = 1")
            .fetch_optional(c)
            .await
            .map_err(map_err)?;
    found
        .map(|(s, n)| {
            Ok((
                u64::try_from(s).map_err(|_| StoreError::Corrupt("negative size".into()))?,
                n,
            ))
        })
        .transpose()
}

/// Subtree hashes from the stored tile levels, read from a blocking thread.
struct Source {
    pool: PgPool,
    runtime: tokio::runtime::Handle,
}

impl SubtreeSource for Source {
    type Error = StoreError;
    fn subtree(&self, level: u8, index: u64) -> StoreResult<Hash> {
        subtree_from_tile_levels(level, index, |tl, start, count| {
            let found = self.runtime.block_on(async {
                let mut c = self.pool.acquire().await.map_err(map_err)?;
                hashes(&mut c, tl, start, count).await
            })?;
            if found.len() as u64 != count {
                return Err(StoreError::Corrupt(format!(
                    "tile level {tl} is missing hashes at {start}"
                )));
            }
            Ok(found)
        })
    }
}

impl PgStore {
    /// Runs a proof computation over the stored tile levels of a log of at least `size`
    /// entries, on a blocking thread.
    async fn over_tiles<T, F>(&self, size: u64, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Source) -> StoreResult<T> + Send + 'static,
    {
        if size > self.log_size().await? {
            return Err(StoreError::Backend(format!(
                "the log has fewer than {size} entries"
            )));
        }
        let source = Source {
            pool: self.pool.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        tokio::task::spawn_blocking(move || f(&source))
            .await
            .map_err(|e| StoreError::Backend(format!("proof task: {e}")))?
    }
}

/// Maps a refused proof request to the seam's error.
fn proof<T>(r: Result<T, custodia_tlog::ProofError>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl LogStore for PgStore {
    async fn append_entries(&self, entries: Vec<LogAppend>) -> StoreResult<u64> {
        self.writer
            .write(Lock::Log, move |c| Box::pin(append(c, entries)))
            .await
    }

    async fn log_record(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT record FROM log_records WHERE idx = $1")
            .bind(i(index))
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
            .bind(i(start))
            .bind(i(start.saturating_add(count)))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn tile_hashes(&self, tile_level: u8, start: u64, count: u64) -> StoreResult<Vec<Hash>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        hashes(&mut c, tile_level, start, count).await
    }

    async fn log_root(&self, size: u64) -> StoreResult<Hash> {
        self.over_tiles(size, move |s| custodia_tlog::root_hash(s, size))
            .await
    }

    async fn log_inclusion_proof(&self, index: u64, size: u64) -> StoreResult<Vec<Hash>> {
        self.over_tiles(size, move |s| {
            proof(custodia_tlog::inclusion_proof(s, index, size)?)
        })
        .await
    }

    async fn log_consistency_proof(&self, old: u64, new: u64) -> StoreResult<Vec<Hash>> {
        self.over_tiles(new, move |s| {
            proof(custodia_tlog::consistency_proof(s, old, new)?)
        })
        .await
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
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(LOG_LOCK)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if last_checkpoint(c).await?.map(|(s, _)| s) != previous {
                        return Err(StoreError::Conflict);
                    }
                    sqlx::query(
                        "INSERT INTO log_checkpoint (id, size, note) VALUES (1, $1, $2) \
                         ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note",
                    )
                    .bind(i(size))
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
