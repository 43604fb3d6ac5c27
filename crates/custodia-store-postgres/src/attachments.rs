//! Attachments, hash lists and member flags on PostgreSQL.

use async_trait::async_trait;
use custodia_core::{AttachmentId, ConversationId, Epoch, Timestamp, UserId};
use custodia_store::{AttachmentRecord, AttachmentStore, HashKind, StoreResult};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;

use crate::rows::{get, hash32, millis, unsigned, uuid};
use crate::writer::Lock;
use crate::{PgStore, all, map_err};

const COLUMNS: &str = "conversation_id, id, uploader, epoch, size, content_type, sealed_key, \
     key_commitment, blob, created_at, preserved";

/// The advisory lock PDQ imports take, so positions become visible in order.
const PDQ_LOCK: i64 = 0x0063_7573_7470_6471;

fn attachment(row: &PgRow) -> StoreResult<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: AttachmentId::from_uuid(uuid(row, "id")?),
        conversation_id: ConversationId::from_uuid(uuid(row, "conversation_id")?),
        uploader: UserId::from_uuid(uuid(row, "uploader")?),
        epoch: Epoch::from_label(get(row, "epoch")?),
        size: unsigned(row, "size")?,
        content_type: get(row, "content_type")?,
        sealed_key: get(row, "sealed_key")?,
        key_commitment: hash32(row, "key_commitment")?,
        blob: get(row, "blob")?,
        created_at: millis(row, "created_at")?,
        preserved: get(row, "preserved")?,
    })
}

#[async_trait]
impl AttachmentStore for PgStore {
    async fn put_attachment(&self, a: AttachmentRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            AssertSqlSafe(format!(
                "INSERT INTO attachments ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )),
            move |q| {
                q.bind(*a.conversation_id.as_uuid())
                    .bind(*a.id.as_uuid())
                    .bind(*a.uploader.as_uuid())
                    .bind(a.epoch.as_str().to_owned())
                    .bind(i64::try_from(a.size).unwrap_or(i64::MAX))
                    .bind(a.content_type)
                    .bind(a.sealed_key)
                    .bind(a.key_commitment.to_vec())
                    .bind(a.blob)
                    .bind(a.created_at.as_millis())
                    .bind(a.preserved)
            },
        )
        .await
        .map(drop)
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM attachments WHERE id = $1"
            )))
            .bind(id.as_uuid()),
            attachment,
        )
        .await
    }

    async fn import_hashes(
        &self,
        list: String,
        kind: HashKind,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<u64> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO hash_list (kind, hash, list) \
                         SELECT $1, h, $3 FROM UNNEST($2::bytea[]) AS t(h) \
                         ON CONFLICT (kind, hash) DO NOTHING",
                    )
                    .bind(kind.as_str())
                    .bind(&hashes)
                    .bind(&list)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
                })
            })
            .await
    }

    async fn hash_match(&self, hashes: Vec<(HashKind, Vec<u8>)>) -> StoreResult<Option<String>> {
        let (kinds, values): (Vec<&str>, Vec<Vec<u8>>) =
            hashes.into_iter().map(|(k, h)| (k.as_str(), h)).unzip();
        sqlx::query_scalar(
            "SELECT l.list FROM UNNEST($1::text[], $2::bytea[]) WITH ORDINALITY AS q(kind, hash, n) \
             JOIN hash_list l ON l.kind = q.kind AND l.hash = q.hash ORDER BY q.n LIMIT 1",
        )
        .bind(&kinds)
        .bind(&values)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn import_pdq(&self, list: String, hashes: Vec<[u8; 32]>) -> StoreResult<u64> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(PDQ_LOCK)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
                    sqlx::query(
                        "INSERT INTO pdq_list (hash, list) \
                         SELECT h, $2 FROM UNNEST($1::bytea[]) WITH ORDINALITY AS t(h, n) ORDER BY n \
                         ON CONFLICT (hash) DO NOTHING",
                    )
                    .bind(&hashes)
                    .bind(&list)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
                })
            })
            .await
    }

    async fn pdq_after(&self, after: i64) -> StoreResult<Vec<(i64, [u8; 32], String)>> {
        let found = sqlx::query("SELECT id, hash, list FROM pdq_list WHERE id > $1 ORDER BY id")
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        all(found, |r| {
            Ok((get(r, "id")?, hash32(r, "hash")?, get(r, "list")?))
        })
    }

    async fn flag_user(&self, user: UserId, reason: String, at: Timestamp) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            "INSERT INTO user_flags (user_id, reason, at) VALUES ($1, $2, $3)",
            move |q| q.bind(*user.as_uuid()).bind(reason).bind(at.as_millis()),
        )
        .await
        .map(drop)
    }

    async fn is_flagged(&self, user: UserId) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_flags WHERE user_id = $1)")
            .bind(user.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}
