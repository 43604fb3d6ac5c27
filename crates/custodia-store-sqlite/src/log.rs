//! The transparency log on SQLite: leaves with their hashes, completed tile-level hashes,
//! records, and the last signed checkpoint, kept as `custodia-audit`'s `LogTree` computes
//! them. Appends are serialized by the one writer.

use custodia_store::rows::{checkpoint, hashes_by_range, signed, unsigned};
use custodia_store::{HashRange, LogAppend, StoreError, StoreResult, TileHash};
use custodia_tlog::Hash;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::map_err;

/// The number of entries.
pub(crate) fn size(c: &Connection) -> StoreResult<u64> {
    let next: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    unsigned(next, "log index")
}

/// The hashes of each range, in one query (a compound SELECT, one arm per range).
pub(crate) fn hashes(c: &Connection, ranges: &[HashRange]) -> StoreResult<Vec<Vec<Hash>>> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::new();
    let mut values: Vec<i64> = Vec::new();
    for (k, r) in ranges.iter().enumerate() {
        if k > 0 {
            sql.push_str(" UNION ALL ");
        }
        let end = signed(r.start.saturating_add(r.count));
        if r.level == 0 {
            sql.push_str("SELECT ? AS r, idx, hash FROM log_leaves WHERE idx >= ? AND idx < ?");
            values.extend([k as i64, signed(r.start), end]);
        } else {
            sql.push_str(
                "SELECT ? AS r, idx, hash FROM log_hashes WHERE level = ? AND idx >= ? AND idx < ?",
            );
            values.extend([k as i64, i64::from(r.level), signed(r.start), end]);
        }
    }
    sql.push_str(" ORDER BY r, idx");
    let mut stmt = c.prepare(&sql).map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(2)?))
        })
        .map_err(map_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_err)?;
    hashes_by_range(ranges.len(), rows)
}

/// Appends entries, their records and the tile-level hashes they complete at `at`.
pub(crate) fn append(
    c: &Connection,
    at: u64,
    entries: Vec<LogAppend>,
    completed: Vec<TileHash>,
) -> StoreResult<()> {
    if size(c)? != at {
        return Err(StoreError::Conflict);
    }
    let mut leaf = c
        .prepare_cached("INSERT INTO log_leaves (idx, entry, hash) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    let mut record = c
        .prepare_cached("INSERT INTO log_records (idx, record) VALUES (?1, ?2)")
        .map_err(map_err)?;
    for (k, e) in entries.iter().enumerate() {
        let idx = signed(at + k as u64);
        leaf.execute(params![idx, e.entry, &e.leaf[..]])
            .map_err(map_err)?;
        record.execute(params![idx, e.record]).map_err(map_err)?;
    }
    let mut tile = c
        .prepare_cached("INSERT INTO log_hashes (level, idx, hash) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    for t in completed {
        tile.execute(params![i64::from(t.level), signed(t.index), &t.hash[..]])
            .map_err(map_err)?;
    }
    Ok(())
}

/// Entries `[start, start + count)`.
pub(crate) fn entries(c: &Connection, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
    let mut stmt = c
        .prepare_cached("SELECT entry FROM log_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
        .map_err(map_err)?;
    let rows = stmt
        .query_map(
            params![signed(start), signed(start.saturating_add(count))],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    rows.map(|r| r.map_err(map_err)).collect()
}

/// The record kept beside entry `index`.
pub(crate) fn record(c: &Connection, index: u64) -> StoreResult<Option<Vec<u8>>> {
    c.query_row(
        "SELECT record FROM log_records WHERE idx = ?1",
        [signed(index)],
        |r| r.get(0),
    )
    .optional()
    .map_err(map_err)
}

/// The last signed checkpoint.
pub(crate) fn last_checkpoint(c: &Connection) -> StoreResult<Option<(u64, String)>> {
    let row = c
        .query_row(
            "SELECT size, note FROM log_checkpoint WHERE id = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(map_err)?;
    checkpoint(row)
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
        params![signed(size), note],
    )
    .map_err(map_err)?;
    Ok(())
}
