//! The embedded SQLite backend of the storage seam.
//!
//! One file in WAL mode with `synchronous = FULL` (every commit is synced before it is
//! acknowledged) and `secure_delete` (deleted bodies are overwritten, not left in free
//! pages). Reads use a pool of read-only connections; every write goes through one
//! writer task that batches concurrent writes into one commit (see `writer`).
//!
//! Layout:
//! - `writer` — the group-commit writer.
//! - `rows` — decoding rows into records.
//! - this file — opening the database and the store traits.

mod rows;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use custodia_core::{ConversationId, Epoch, MemberRole, SessionId, Timestamp, UserId, Username};
use custodia_store::{
    AccountStore, AddMember, Appended, CommitObserver, ConversationRecord, ConversationStore,
    ConversationSummary, DekStore, Health, MemberRecord, MessageStore, NewConversation, NewMessage,
    NewUser, SeqRange, SessionRecord, SessionStore, StoreError, StoreResult, StoredMessage,
    TokenHash, UserRecord, WrappedDek,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};

use crate::rows::{conversation, member, message, session, user};
use crate::writer::Writer;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    read: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, migrates it, and starts the writer.
    pub async fn open(path: &Path, observer: Arc<dyn CommitObserver>) -> StoreResult<Arc<Self>> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .pragma("secure_delete", "ON");
        let mut write = base
            .clone()
            .create_if_missing(true)
            .connect()
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations")
            .run(&mut write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the database: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Arc::new(Self {
            read,
            writer: Writer::spawn(write, observer),
        }))
    }
}

/// Maps a sqlx error into the seam's error, inside the backend.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

const MESSAGE_COLUMNS: &str =
    "conversation_id, seq, id, sender_id, client_id, sent_at, epoch, sealed, deleted_at";

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO users (id, username, password_hash, birth_date, created_at) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(u.id.as_uuid())
                    .bind(u.username.as_str())
                    .bind(&u.password_hash)
                    .bind(u.birth_date.to_string())
                    .bind(u.created_at.as_millis())
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT id, username, password_hash, birth_date, created_at FROM users WHERE username = ?")
            .bind(name.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, birth_date, created_at FROM users WHERE id = ?",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user).transpose()
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO sessions (token_hash, id, user_id, device, created_at, expires_at) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&s.token_hash.0[..])
                    .bind(s.id.as_uuid())
                    .bind(s.user_id.as_uuid())
                    .bind(&s.device)
                    .bind(s.created_at.as_millis())
                    .bind(s.expires_at.as_millis())
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT token_hash, id, user_id, device, created_at, expires_at FROM sessions WHERE token_hash = ?",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session).transpose()
    }

    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT token_hash, id, user_id, device, created_at, expires_at FROM sessions \
             WHERE user_id = ? ORDER BY created_at DESC",
        )
        .bind(user.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(session).collect()
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id = ?")
                        .bind(user.as_uuid())
                        .bind(id.as_uuid())
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, conv: NewConversation) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity) \
                         VALUES (?, ?, ?, ?, ?, 0, ?)",
                    )
                    .bind(conv.id.as_uuid())
                    .bind(conv.kind.as_str())
                    .bind(conv.title.as_deref())
                    .bind(conv.created_by.as_uuid())
                    .bind(conv.created_at.as_millis())
                    .bind(conv.created_at.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if conv.kind == custodia_core::ConversationKind::Direct {
                        let mut pair: Vec<UserId> = conv.members.iter().map(|(u, _)| *u).collect();
                        pair.sort();
                        if let [low, high] = pair[..] {
                            sqlx::query("INSERT INTO direct_pairs (user_low, user_high, conversation_id) VALUES (?, ?, ?)")
                                .bind(low.as_uuid())
                                .bind(high.as_uuid())
                                .bind(conv.id.as_uuid())
                                .execute(&mut *c)
                                .await
                                .map_err(map_err)?;
                        }
                    }
                    for (user, role) in &conv.members {
                        sqlx::query(
                            "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) VALUES (?, ?, ?, 0, ?)",
                        )
                        .bind(conv.id.as_uuid())
                        .bind(user.as_uuid())
                        .bind(role.as_str())
                        .bind(conv.created_at.as_millis())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn direct_between(&self, a: UserId, b: UserId) -> StoreResult<Option<ConversationId>> {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let row = sqlx::query(
            "SELECT conversation_id FROM direct_pairs WHERE user_low = ? AND user_high = ?",
        )
        .bind(low.as_uuid())
        .bind(high.as_uuid())
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            r.try_get("conversation_id")
                .map(ConversationId::from_uuid)
                .map_err(map_err)
        })
        .transpose()
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query("SELECT id, kind, title, created_by, created_at, last_seq FROM conversations WHERE id = ?")
            .bind(id.as_uuid())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(conversation).transpose()
    }

    async fn member(&self, id: ConversationId, user: UserId) -> StoreResult<Option<MemberRecord>> {
        let row = sqlx::query(
            "SELECT m.user_id, u.username, m.role, m.read_seq, m.joined_at FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id = ?",
        )
        .bind(id.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(member).transpose()
    }

    async fn members(&self, id: ConversationId) -> StoreResult<Vec<MemberRecord>> {
        let rows = sqlx::query(
            "SELECT m.user_id, u.username, m.role, m.read_seq, m.joined_at FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? ORDER BY m.joined_at, u.username",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(member).collect()
    }

    async fn add_member(
        &self,
        id: ConversationId,
        user: UserId,
        role: MemberRole,
        at: Timestamp,
        max_members: u32,
    ) -> StoreResult<AddMember> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let existing = sqlx::query("SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?")
                        .bind(id.as_uuid())
                        .bind(user.as_uuid())
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if existing.is_some() {
                        return Ok(AddMember::AlreadyMember);
                    }
                    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE conversation_id = ?")
                        .bind(id.as_uuid())
                        .fetch_one(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if count >= i64::from(max_members) {
                        return Ok(AddMember::Full);
                    }
                    sqlx::query(
                        "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) VALUES (?, ?, ?, 0, ?)",
                    )
                    .bind(id.as_uuid())
                    .bind(user.as_uuid())
                    .bind(role.as_str())
                    .bind(at.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    Ok(AddMember::Added)
                })
            })
            .await
    }

    async fn remove_member(&self, id: ConversationId, user: UserId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "DELETE FROM members WHERE conversation_id = ? AND user_id = ?",
                    )
                    .bind(id.as_uuid())
                    .bind(user.as_uuid())
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }

    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        let rows = sqlx::query(
            "SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, m.read_seq, \
               (SELECT COUNT(*) FROM members mm WHERE mm.conversation_id = c.id) AS member_count, \
               lm.seq AS lm_seq, lm.id AS lm_id, lm.sender_id AS lm_sender_id, lm.client_id AS lm_client_id, \
               lm.sent_at AS lm_sent_at, lm.epoch AS lm_epoch, lm.sealed AS lm_sealed, lm.deleted_at AS lm_deleted_at \
             FROM members m JOIN conversations c ON c.id = m.conversation_id \
             LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
             WHERE m.user_id = ? ORDER BY c.last_activity DESC, c.id",
        )
        .bind(user.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::summary).collect()
    }

    async fn mark_read(&self, id: ConversationId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let pos: Option<i64> = sqlx::query_scalar(
                        "UPDATE members SET read_seq = MAX(read_seq, MIN(?, \
                           (SELECT last_seq FROM conversations WHERE id = ?))) \
                         WHERE conversation_id = ? AND user_id = ? RETURNING read_seq",
                    )
                    .bind(seq_param(seq))
                    .bind(id.as_uuid())
                    .bind(id.as_uuid())
                    .bind(user.as_uuid())
                    .fetch_optional(c)
                    .await
                    .map_err(map_err)?;
                    Ok(pos.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
                })
            })
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, m: NewMessage) -> StoreResult<Appended> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let existing = sqlx::query(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages \
                         WHERE conversation_id = ? AND sender_id = ? AND client_id = ?"
                    ))
                    .bind(m.conversation_id.as_uuid())
                    .bind(m.sender_id.as_uuid())
                    .bind(m.client_id.as_str())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if let Some(row) = existing {
                        return Ok(Appended::Duplicate(message(&row)?));
                    }
                    let seq: i64 = sqlx::query_scalar(
                        "UPDATE conversations SET last_seq = last_seq + 1, last_activity = ? WHERE id = ? \
                         RETURNING last_seq",
                    )
                    .bind(m.sent_at.as_millis())
                    .bind(m.conversation_id.as_uuid())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?
                    .ok_or_else(|| StoreError::Backend("append to a conversation that does not exist".into()))?;
                    sqlx::query(
                        "INSERT INTO messages (conversation_id, seq, id, sender_id, client_id, sent_at, epoch, sealed) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(m.conversation_id.as_uuid())
                    .bind(seq)
                    .bind(m.id.as_uuid())
                    .bind(m.sender_id.as_uuid())
                    .bind(m.client_id.as_str())
                    .bind(m.sent_at.as_millis())
                    .bind(m.epoch.as_str())
                    .bind(&m.sealed.0[..])
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    sqlx::query("UPDATE members SET read_seq = MAX(read_seq, ?) WHERE conversation_id = ? AND user_id = ?")
                        .bind(seq)
                        .bind(m.conversation_id.as_uuid())
                        .bind(m.sender_id.as_uuid())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("negative sequence".into()))?;
                    Ok(Appended::New(StoredMessage {
                        id: m.id,
                        conversation_id: m.conversation_id,
                        seq,
                        sender_id: m.sender_id,
                        client_id: m.client_id,
                        sent_at: m.sent_at,
                        epoch: m.epoch,
                        sealed: Some(m.sealed),
                        deleted_at: None,
                    }))
                })
            })
            .await
    }

    async fn messages(
        &self,
        id: ConversationId,
        range: SeqRange,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        let (sql, bound) = match range {
            SeqRange::After(n) => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
                ),
                n,
            ),
            SeqRange::Before(n) => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
                ),
                n,
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(id.as_uuid())
            .bind(seq_param(bound))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        let mut out: Vec<StoredMessage> = rows.iter().map(message).collect::<StoreResult<_>>()?;
        if matches!(range, SeqRange::Before(_)) {
            out.reverse();
        }
        Ok(out)
    }

    async fn message(&self, id: ConversationId, seq: u64) -> StoreResult<Option<StoredMessage>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq = ?"
        ))
        .bind(id.as_uuid())
        .bind(seq_param(seq))
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(message).transpose()
    }

    async fn tombstone(&self, id: ConversationId, seq: u64, at: Timestamp) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE messages SET sealed = NULL, deleted_at = COALESCE(deleted_at, ?) \
                         WHERE conversation_id = ? AND seq = ?",
                    )
                    .bind(at.as_millis())
                    .bind(id.as_uuid())
                    .bind(seq_param(seq))
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }
}

#[async_trait]
impl DekStore for SqliteStore {
    async fn wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
    ) -> StoreResult<Option<WrappedDek>> {
        let row = sqlx::query(
            "SELECT kek_version, wrapped FROM deks WHERE conversation_id = ? AND epoch = ?",
        )
        .bind(id.as_uuid())
        .bind(epoch.as_str())
        .fetch_optional(&self.read)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::wrapped_dek).transpose()
    }

    async fn put_wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
        dek: WrappedDek,
    ) -> StoreResult<WrappedDek> {
        let epoch = epoch.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO deks (conversation_id, epoch, kek_version, wrapped) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (conversation_id, epoch) DO NOTHING",
                    )
                    .bind(id.as_uuid())
                    .bind(epoch.as_str())
                    .bind(i64::from(dek.kek_version))
                    .bind(&dek.bytes[..])
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let row = sqlx::query("SELECT kek_version, wrapped FROM deks WHERE conversation_id = ? AND epoch = ?")
                        .bind(id.as_uuid())
                        .bind(epoch.as_str())
                        .fetch_one(&mut *c)
                        .await
                        .map_err(map_err)?;
                    rows::wrapped_dek(&row)
                })
            })
            .await
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(map_err)?;
        // A no-op write proves the writer task is alive and the disk accepts commits.
        self.writer.write(|_| Box::pin(async { Ok(()) })).await
    }
}
