//! The transparency log on SQLite: leaves with their hashes, completed tile-level hashes,
//! and the last signed checkpoint. Proofs are computed on a read connection from the
//! stored tile levels (at most 128 hashes read per subtree).

use custodia_store::{LogAppend, StoreError, StoreResult};
use custodia_tlog::{
    Hash, SubtreeSource, TILE_WIDTH, leaf_hash, subtree_from_tile_levels, tile_root,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::map_err;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The number of entries.
pub(crate) fn size(c: &Connection) -> StoreResult<u64> {
    let next: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    u64::try_from(next).map_err(|_| StoreError::Corrupt("negative log index".into()))
}

/// Hashes `[start, start + count)` of a tile level, as stored.
pub(crate) fn hashes(
    c: &Connection,
    tile_level: u8,
    start: u64,
    count: u64,
) -> StoreResult<Vec<Hash>> {
    let end = i(start.saturating_add(count));
    let raw: Vec<Vec<u8>> = if tile_level == 0 {
        let mut stmt = c
            .prepare_cached("SELECT hash FROM log_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![i(start), end], |r| r.get(0))
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
    } else {
        let mut stmt = c
            .prepare_cached("SELECT hash FROM log_hashes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx")
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![i64::from(tile_level), i(start), end], |r| r.get(0))
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
    };
    raw.into_iter()
        .map(|h| {
            h.try_into()
                .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".into()))
        })
        .collect()
}

/// Appends entries, their records, and the tile-level hashes they complete; returns the
/// first index.
pub(crate) fn append(c: &Connection, entries: Vec<LogAppend>) -> StoreResult<u64> {
    let start = size(c)?;
    let mut insert = c
        .prepare_cached("INSERT INTO log_leaves (idx, entry, hash) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    let mut keep = c
        .prepare_cached("INSERT INTO log_records (idx, record) VALUES (?1, ?2)")
        .map_err(map_err)?;
    for (k, e) in entries.iter().enumerate() {
        let idx = i(start + k as u64);
        insert
            .execute(params![idx, e.entry, &leaf_hash(&e.entry)[..]])
            .map_err(map_err)?;
        keep.execute(params![idx, e.record]).map_err(map_err)?;
    }
    // Each group of 256 hashes completed at one tile level adds one hash to the next.
    let (mut before, mut after) = (start, start + entries.len() as u64);
    let mut level = 0u8;
    let mut put = c
        .prepare_cached("INSERT INTO log_hashes (level, idx, hash) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    while after / TILE_WIDTH > before / TILE_WIDTH {
        for group in before / TILE_WIDTH..after / TILE_WIDTH {
            let below = hashes(c, level, group * TILE_WIDTH, TILE_WIDTH)?;
            if below.len() as u64 != TILE_WIDTH {
                return Err(StoreError::Corrupt(format!(
                    "tile level {level} is missing hashes"
                )));
            }
            put.execute(params![
                i64::from(level) + 1,
                i(group),
                &tile_root(&below)[..]
            ])
            .map_err(map_err)?;
        }
        (before, after) = (before / TILE_WIDTH, after / TILE_WIDTH);
        level += 1;
    }
    Ok(start)
}

/// Entries `[start, start + count)`.
pub(crate) fn entries(c: &Connection, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
    let mut stmt = c
        .prepare_cached("SELECT entry FROM log_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![i(start), i(start.saturating_add(count))], |r| {
            r.get(0)
        })
        .map_err(map_err)?;
    rows.map(|r| r.map_err(map_err)).collect()
}

/// The record kept beside entry `index`.
pub(crate) fn record(c: &Connection, index: u64) -> StoreResult<Option<Vec<u8>>> {
    c.query_row(
        "SELECT record FROM log_records WHERE idx = ?1",
        [i(index)],
        |r| r.get(0),
    )
    .optional()
    .map_err(map_err)
}

/// Subtree hashes from the stored tile levels of one connection.
pub(crate) struct Source<'c>(pub(crate) &'c Connection);

impl SubtreeSource for Source<'_> {
    type Error = StoreError;
    fn subtree(&self, level: u8, index: u64) -> StoreResult<Hash> {
        subtree_from_tile_levels(level, index, |tl, start, count| {
            let found = hashes(self.0, tl, start, count)?;
            if found.len() as u64 != count {
                return Err(StoreError::Corrupt(format!(
                    "tile level {tl} is missing hashes at {start}"
                )));
            }
            Ok(found)
        })
    }
}

/// Refuses sizes beyond the log.
pub(crate) fn within(c: &Connection, size: u64) -> StoreResult<()> {
    if size > self::size(c)? {
        return Err(StoreError::Backend(format!(
            "the log has fewer than {size} entries"
        )));
    }
    Ok(())
}

/// The last signed checkpoint.
pub(crate) fn last_checkpoint(c: &Connection) -> StoreResult<Option<(u64, String)>> {
    c.query_row(
        "SELECT size, note FROM log_checkpoint WHERE id = 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )
    .optional()
    .map_err(map_err)?
    .map(|(s, n)| {
        Ok((
            u64::try_from(s).map_err(|_| StoreError::Corrupt("negative size".into()))?,
            n,
        ))
    })
    .transpose()
}

/// Moves the checkpoint forward if it is still at `previous`.
pub(crate) fn save_checkpoint(
    c: &Connection,
    previous: Option<u64>,
    size: u64,
    note: &str,
) -> StoreResult<()> {
    if last_checkpoint(c)?.map(|(s, _)| s) != previous {
        return Err(StoreError::Conflict);
    }
    c.execute(
        "INSERT INTO log_checkpoint (id, size, note) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note",
        params![i(size), note],
    )
    .map_err(map_err)?;
    Ok(())
}
