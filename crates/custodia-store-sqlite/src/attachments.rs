//! Attachments, hash lists and member flags on SQLite.

use async_trait::async_trait;
use custodia_core::{AttachmentId, ConversationId, Epoch, Timestamp, UserId};
use custodia_store::{AttachmentRecord, AttachmentStore, HashKind, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row, params};

use crate::{SqliteStore, map_err};

const COLUMNS: &str = "conversation_id, id, uploader, epoch, size, content_type, sealed_key, \
     key_commitment, blob, created_at, preserved";

fn corrupt(col: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("undecodable value in column {col}"))
}

fn attachment(row: &Row<'_>) -> rusqlite::Result<AttachmentRecord> {
    let commitment: Vec<u8> = row.get("key_commitment")?;
    Ok(AttachmentRecord {
        id: AttachmentId::from_uuid(row.get("id")?),
        conversation_id: ConversationId::from_uuid(row.get("conversation_id")?),
        uploader: UserId::from_uuid(row.get("uploader")?),
        epoch: Epoch::from_label(row.get("epoch")?),
        size: u64::try_from(row.get::<_, i64>("size")?).map_err(|_| corrupt("size"))?,
        content_type: row.get("content_type")?,
        sealed_key: row.get("sealed_key")?,
        key_commitment: commitment
            .try_into()
            .map_err(|_| corrupt("key_commitment"))?,
        blob: row.get("blob")?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
        preserved: row.get("preserved")?,
    })
}

#[async_trait]
impl AttachmentStore for SqliteStore {
    async fn put_attachment(&self, a: AttachmentRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO attachments ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        a.conversation_id.as_uuid(),
                        a.id.as_uuid(),
                        a.uploader.as_uuid(),
                        a.epoch.as_str(),
                        i64::try_from(a.size).unwrap_or(i64::MAX),
                        a.content_type,
                        a.sealed_key,
                        &a.key_commitment[..],
                        a.blob,
                        a.created_at.as_millis(),
                        a.preserved
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1"))?
                .query_row([id.as_uuid()], attachment)
                .optional()
        })
        .await
    }

    async fn import_hashes(
        &self,
        list: String,
        kind: HashKind,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                let mut st = c
                    .prepare_cached(
                        "INSERT INTO hash_list (kind, hash, list) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (kind, hash) DO NOTHING",
                    )
                    .map_err(map_err)?;
                let mut added = 0u64;
                for h in &hashes {
                    added += st
                        .execute(params![kind.as_str(), h, list])
                        .map_err(map_err)? as u64;
                }
                Ok(added)
            })
            .await
    }

    async fn hash_match(&self, hashes: Vec<(HashKind, Vec<u8>)>) -> StoreResult<Option<String>> {
        self.read_with(move |c| {
            let mut st = c
                .prepare_cached("SELECT list FROM hash_list WHERE kind = ?1 AND hash = ?2")
                .map_err(map_err)?;
            for (kind, h) in &hashes {
                if let Some(list) = st
                    .query_row(params![kind.as_str(), h], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(map_err)?
                {
                    return Ok(Some(list));
                }
            }
            Ok::<_, StoreError>(None)
        })
        .await
    }

    async fn import_pdq(&self, list: String, hashes: Vec<[u8; 32]>) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                let mut st = c
                    .prepare_cached(
                        "INSERT INTO pdq_list (hash, list) VALUES (?1, ?2) \
                         ON CONFLICT (hash) DO NOTHING",
                    )
                    .map_err(map_err)?;
                let mut added = 0u64;
                for h in &hashes {
                    added += st.execute(params![&h[..], list]).map_err(map_err)? as u64;
                }
                Ok(added)
            })
            .await
    }

    async fn pdq_after(&self, after: i64) -> StoreResult<Vec<(i64, [u8; 32], String)>> {
        self.read(move |c| {
            c.prepare_cached("SELECT id, hash, list FROM pdq_list WHERE id > ?1 ORDER BY id")?
                .query_map([after], |r| {
                    let h: Vec<u8> = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        h.try_into().map_err(|_| corrupt("hash"))?,
                        r.get(2)?,
                    ))
                })?
                .collect()
        })
        .await
    }

    async fn flag_user(&self, user: UserId, reason: String, at: Timestamp) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO user_flags (user_id, reason, at) VALUES (?1, ?2, ?3)",
                    params![user.as_uuid(), reason, at.as_millis()],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn is_flagged(&self, user: UserId) -> StoreResult<bool> {
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM user_flags WHERE user_id = ?1 LIMIT 1")?
                .query_row([user.as_uuid()], |_| Ok(()))
                .optional()
                .map(|f| f.is_some())
        })
        .await
    }
}
