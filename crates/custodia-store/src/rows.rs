//! Decoding shared by the SQL backends: the values both keep in the same shape, turned
//! into the seam's types once. A value that does not decode is `Corrupt`.

use crate::{StoreError, StoreResult};

/// A count or index as stored (a signed 64-bit integer).
pub fn unsigned(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

/// A count or index as a backend stores it (saturating: no index comes near `i64::MAX`).
pub fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A 32-byte hash column.
pub fn hash(bytes: Vec<u8>) -> StoreResult<custodia_tlog::Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".into()))
}

/// The answers of [`crate::LogStore::log_hashes`] from its one query's rows: `(range
/// ordinal, hash)` in order of ordinal, then index, for `ranges` ranges.
pub fn hashes_by_range(
    ranges: usize,
    rows: impl IntoIterator<Item = (i64, Vec<u8>)>,
) -> StoreResult<Vec<Vec<custodia_tlog::Hash>>> {
    let mut out = vec![Vec::new(); ranges];
    for (ordinal, bytes) in rows {
        let slot = usize::try_from(ordinal)
            .ok()
            .and_then(|k| out.get_mut(k))
            .ok_or_else(|| StoreError::Corrupt("a hash row names no range asked for".into()))?;
        slot.push(hash(bytes)?);
    }
    Ok(out)
}

/// An inclusion proof as both backends store it: the 32-byte hashes, concatenated.
pub fn proof_bytes(proof: &[[u8; 32]]) -> Vec<u8> {
    proof.concat()
}

/// An inclusion proof from its stored bytes.
pub fn proof_of(bytes: &[u8]) -> StoreResult<Vec<[u8; 32]>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(
            "a stored proof is not whole hashes".into(),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|h| h.try_into().unwrap_or([0; 32]))
        .collect())
}

/// The columns of `access_notices`, in the order both backends read and write them.
pub const NOTICE_COLUMNS: &str = "id, user_id, conversation_id, read_at, role, reason, case_id, \
     messages, first_sent_at, last_sent_at, log_index, checkpoint, proof, deferred_until, \
     released_at, deferred_review";

/// Releases deferred access notices, in both dialects: `$1` the release time (ms), `$2`
/// the emergency request whose review was decided, or NULL for those whose order ended.
pub const RELEASE_NOTICES: &str = "UPDATE access_notices SET released_at = $1 \
     WHERE released_at IS NULL AND CASE WHEN $2 IS NULL \
     THEN deferred_until IS NOT NULL AND deferred_until <= $1 \
     ELSE deferred_review = $2 END";

/// The rows of released notices whose release the audit log does not record yet, by read
/// (after `SELECT {NOTICE_COLUMNS} `).
pub const UNLOGGED_RELEASES: &str = "FROM access_notices \
     WHERE released_at IS NOT NULL AND NOT release_logged ORDER BY log_index, user_id";

/// The last checkpoint's row.
pub fn checkpoint(row: Option<(i64, String)>) -> StoreResult<Option<(u64, String)>> {
    row.map(|(size, note)| Ok((unsigned(size, "checkpoint size")?, note)))
        .transpose()
}
