//! The PostgreSQL backend of the storage seam, for deployments of several stateless
//! `custodia serve` nodes on one database.
//!
//! Reads run on a connection pool; every write of a node goes through its group-commit
//! writer (see `writer`). Across nodes, correctness rests on the database: an append takes
//! its conversation's row lock to number the message (`UPDATE … RETURNING last_seq`), a
//! repeated client id is caught by a unique constraint, log appends take one advisory lock,
//! and the compare-and-set steps (decisions, TOTP steps, checkpoints) are single statements
//! or run under the row lock they compare.
//!
//! Layout:
//! - `writer` — the group-commit writer.
//! - `rows` — decoding rows into records.
//! - `log`, `staff`, `cases`, `safety`, `attachments` — those stores.
//! - this file — connecting and migrating, and the user-facing stores.

mod attachments;
mod cases;
mod keks;
mod limits;
mod log;
mod rows;
mod safety;
pub mod scratch;
mod staff;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use custodia_core::{
    ConversationId, ConversationKind, Epoch, MemberRole, ReportCategory, SessionId, Timestamp,
    UserId, Username, redact_url,
};
use custodia_store::{
    AccountStore, AddMember, Appended, CommitObserver, ConversationRecord, ConversationStore,
    ConversationSummary, DekStore, FlaggedSignal, Health, MemberRecord, MessageStore,
    NewConversation, NewMessage, PendingSignal, SeqRange, SessionRecord, SessionStore, StoreError,
    StoreResult, StoredMessage, TokenHash, UserRecord, WrappedDek,
};
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::rows::i;
use crate::writer::{Lock, Writer};

/// How long a request waits for a free connection before it fails (the database is
/// down or overloaded: answer with an error rather than hang).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node connects to PostgreSQL.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// Connections in this node's pool (reads, plus one per writer lane while it commits).
    pub max_connections: u32,
}

/// Writer lanes per node: one for writes that lock no conversation, the rest shared out
/// by conversation id.
const WRITER_LANES: usize = 4;

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PgOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PgStore {
    pool: PgPool,
    writer: Writer,
}

impl PgStore {
    /// Connects, applies any migrations not yet applied (one node at a time: sqlx takes an
    /// advisory lock), and starts this node's writer.
    pub async fn connect(
        options: &PgOptions,
        observer: Arc<dyn CommitObserver>,
    ) -> StoreResult<Arc<Self>> {
        let connect: PgConnectOptions = options.url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "the PostgreSQL URL {} is not valid: {e}",
                redact_url(&options.url)
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(WRITER_LANES as u32 + 2))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before every use (a round trip per query); a broken connection
            // fails its query, which answers an error, and the pool replaces it.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    redact_url(&options.url)
                ))
            })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the database: {e}")))?;
        let writer = Writer::spawn(pool.clone(), observer, WRITER_LANES);
        Ok(Arc::new(Self { pool, writer }))
    }

    /// Closes the pool (in-flight reads finish first).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a sqlx error into the seam's error, inside the backend.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        // 40P01 deadlock, 40001 serialization failure, 57P01 admin shutdown,
        // 53xxx insufficient resources, 08xxx connection exceptions: try again later.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c == "40P01"
                    || c == "40001"
                    || c.starts_with("57")
                    || c.starts_with("53")
                    || c.starts_with("08")
            }) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// A query with its arguments bound.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl PgStore {
    /// The row `query` finds on the pool, decoded with `decode`, if there is one.
    pub(crate) async fn find<T>(
        &self,
        query: PgQuery<'_>,
        decode: impl Fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Every row `query` finds on the pool, decoded with `decode`.
    pub(crate) async fn list<T>(
        &self,
        query: PgQuery<'_>,
        decode: impl Fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        all(query.fetch_all(&self.pool).await.map_err(map_err)?, decode)
    }
}

impl PgStore {
    /// Runs one statement through the writer and returns how many rows it changed.
    /// `bind` binds owned values to it.
    pub(crate) async fn statement(
        &self,
        lock: Lock,
        sql: impl sqlx::SqlSafeStr + Send + 'static,
        bind: impl for<'q> FnOnce(PgQuery<'q>) -> PgQuery<'q> + Send + 'static,
    ) -> StoreResult<u64> {
        self.writer
            .write(lock, move |c| {
                Box::pin(async move {
                    bind(sqlx::query(sql))
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                        .map_err(map_err)
                })
            })
            .await
    }
}

/// Decodes every row with `f`.
pub(crate) fn all<T>(
    rows: Vec<sqlx::postgres::PgRow>,
    f: impl Fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

const MESSAGE_COLUMNS: &str = "conversation_id, seq, id, sender_id, client_id, sent_at, epoch, sealed, deleted_at, \
     commitment, franking_tag";
const USER_COLUMNS: &str = "id, username, password_hash, birth_date, created_at, closed_at";
const SESSION_COLUMNS: &str = "token_hash, id, user_id, device, created_at, expires_at";
const MEMBER_QUERY: &str = "SELECT m.user_id, u.username, m.role, m.read_seq, m.joined_at FROM members m \
                            JOIN users u ON u.id = m.user_id WHERE m.conversation_id = $1";

#[async_trait]
impl AccountStore for PgStore {
    async fn create_user(&self, u: UserRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            "INSERT INTO users (id, username, password_hash, birth_date, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            move |q| {
                q.bind(*u.id.as_uuid())
                    .bind(u.username.as_str().to_owned())
                    .bind(u.password_hash)
                    .bind(u.birth_date.to_string())
                    .bind(u.created_at.as_millis())
            },
        )
        .await
        .map(drop)
    }

    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<UserRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
            )))
            .bind(name.as_str()),
            rows::user,
        )
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
            )))
            .bind(id.as_uuid()),
            rows::user,
        )
        .await
    }

    async fn close_account(
        &self,
        id: UserId,
        at: Timestamp,
    ) -> StoreResult<Option<custodia_store::AccountClosure>> {
        use custodia_store::rows::{
            CLOSE_ACCOUNT, ERASE_ACCOUNT_DATA, ERASE_ATTACHMENTS, KEPT_SENT, MEMBERSHIPS,
            SENT_LIVE, TOMBSTONE_SENT,
        };
        let user = *id.as_uuid();
        let at = at.as_millis();
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let closed = sqlx::query(CLOSE_ACCOUNT)
                        .bind(at)
                        .bind(user)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if closed.rows_affected() == 0 {
                        return Ok(None);
                    }
                    let deleted: Vec<(uuid::Uuid, i64)> = sqlx::query_as(SENT_LIVE)
                        .bind(user)
                        .fetch_all(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let conversations: Vec<(uuid::Uuid,)> = sqlx::query_as(MEMBERSHIPS)
                        .bind(user)
                        .fetch_all(&mut *c)
                        .await
                        .map_err(map_err)?;
                    sqlx::query(TOMBSTONE_SENT)
                        .bind(at)
                        .bind(user)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let (kept,): (i64,) = sqlx::query_as(KEPT_SENT)
                        .bind(user)
                        .fetch_one(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let attachments = sqlx::query(ERASE_ATTACHMENTS)
                        .bind(user)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                    for sql in ERASE_ACCOUNT_DATA {
                        sqlx::query(sql)
                            .bind(user)
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                    }
                    Ok(Some(custodia_store::AccountClosure {
                        deleted: deleted
                            .into_iter()
                            .map(|(conv, seq)| {
                                (ConversationId::from_uuid(conv), seq.unsigned_abs())
                            })
                            .collect(),
                        kept: kept.unsigned_abs(),
                        attachments,
                        conversations: conversations
                            .into_iter()
                            .map(|(conv,)| ConversationId::from_uuid(conv))
                            .collect(),
                    }))
                })
            })
            .await
    }

    async fn release_closed_names(&self, before: Timestamp) -> StoreResult<u64> {
        self.statement(
            Lock::Own,
            "UPDATE users SET username = 'closed.' || substr(replace(id::text, '-', ''), 1, 25) \
             WHERE closed_at IS NOT NULL AND closed_at < $1 AND username NOT LIKE 'closed.%'",
            move |q| q.bind(before.as_millis()),
        )
        .await
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            AssertSqlSafe(format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
            )),
            move |q| {
                q.bind(s.token_hash.0.to_vec())
                    .bind(*s.id.as_uuid())
                    .bind(*s.user_id.as_uuid())
                    .bind(s.device)
                    .bind(s.created_at.as_millis())
                    .bind(s.expires_at.as_millis())
            },
        )
        .await
        .map(drop)
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
            )))
            .bind(&hash.0[..]),
            rows::session,
        )
        .await
    }

    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        self.list(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY created_at DESC"
            )))
            .bind(user.as_uuid()),
            rows::session,
        )
        .await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        self.statement(
            Lock::Own,
            "DELETE FROM sessions WHERE user_id = $1 AND id = $2",
            move |q| q.bind(*user.as_uuid()).bind(*id.as_uuid()),
        )
        .await
        .map(|n| n > 0)
    }
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn create_conversation(&self, conv: NewConversation) -> StoreResult<()> {
        let lock = Lock::Conversation(*conv.id.as_uuid());
        self.writer
            .write(lock, move |c| {
                Box::pin(async move {
                    let at = conv.created_at.as_millis();
                    sqlx::query(
                        "INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity) \
                         VALUES ($1, $2, $3, $4, $5, 0, $5)",
                    )
                    .bind(conv.id.as_uuid())
                    .bind(conv.kind.as_str())
                    .bind(&conv.title)
                    .bind(conv.created_by.as_uuid())
                    .bind(at)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if conv.kind == ConversationKind::Direct {
                        let mut pair: Vec<UserId> = conv.members.iter().map(|(u, _)| *u).collect();
                        pair.sort();
                        if let [low, high] = pair[..] {
                            sqlx::query(
                                "INSERT INTO direct_pairs (user_low, user_high, conversation_id) VALUES ($1, $2, $3)",
                            )
                            .bind(low.as_uuid())
                            .bind(high.as_uuid())
                            .bind(conv.id.as_uuid())
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                        }
                    }
                    let (users, roles): (Vec<uuid::Uuid>, Vec<&str>) = conv
                        .members
                        .iter()
                        .map(|(u, r)| (*u.as_uuid(), r.as_str()))
                        .unzip();
                    sqlx::query(
                        "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) \
                         SELECT $1, u, r, 0, $4 FROM UNNEST($2::uuid[], $3::text[]) AS t(u, r)",
                    )
                    .bind(conv.id.as_uuid())
                    .bind(&users)
                    .bind(&roles)
                    .bind(at)
                    .execute(&mut *c)
                    .await
                    .map(drop)
                    .map_err(map_err)
                })
            })
            .await
    }

    async fn direct_between(&self, a: UserId, b: UserId) -> StoreResult<Option<ConversationId>> {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let found: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT conversation_id FROM direct_pairs WHERE user_low = $1 AND user_high = $2",
        )
        .bind(low.as_uuid())
        .bind(high.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(found.map(ConversationId::from_uuid))
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<ConversationRecord>> {
        self.find(
        sqlx::query(
            "SELECT id, kind, title, created_by, created_at, last_seq FROM conversations WHERE id = $1",
        )
        .bind(id.as_uuid()),
        rows::conversation,
    )
    .await
    }

    async fn member(&self, id: ConversationId, user: UserId) -> StoreResult<Option<MemberRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!("{MEMBER_QUERY} AND m.user_id = $2")))
                .bind(id.as_uuid())
                .bind(user.as_uuid()),
            rows::member,
        )
        .await
    }

    async fn members(&self, id: ConversationId) -> StoreResult<Vec<MemberRecord>> {
        self.list(
            sqlx::query(AssertSqlSafe(format!(
                "{MEMBER_QUERY} ORDER BY m.joined_at, u.username"
            )))
            .bind(id.as_uuid()),
            rows::member,
        )
        .await
    }

    async fn recipients(
        &self,
        id: ConversationId,
        sender: UserId,
    ) -> StoreResult<Vec<(UserId, bool)>> {
        let found: Vec<(uuid::Uuid, bool)> = sqlx::query_as(
            "SELECT m.user_id, EXISTS (SELECT 1 FROM blocks b \
               WHERE (b.blocker = $2 AND b.blocked = m.user_id) \
                  OR (b.blocker = m.user_id AND b.blocked = $2)) \
             FROM members m WHERE m.conversation_id = $1",
        )
        .bind(id.as_uuid())
        .bind(sender.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(found
            .into_iter()
            .map(|(u, b)| (UserId::from_uuid(u), b))
            .collect())
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
            .write(Lock::Conversation(*id.as_uuid()), move |c| {
                Box::pin(async move {
                    // The conversation's row lock orders concurrent additions from every
                    // node, so the count below cannot be overtaken.
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE",
                    )
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if exists.is_none() {
                        return Err(StoreError::Backend("no such conversation".into()));
                    }
                    let (member, count): (bool, i64) = sqlx::query_as(
                        "SELECT COALESCE(BOOL_OR(user_id = $2), false), COUNT(*) FROM members \
                         WHERE conversation_id = $1",
                    )
                    .bind(id.as_uuid())
                    .bind(user.as_uuid())
                    .fetch_one(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if member {
                        return Ok(AddMember::AlreadyMember);
                    }
                    if count >= i64::from(max_members) {
                        return Ok(AddMember::Full);
                    }
                    sqlx::query(
                        "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) \
                         VALUES ($1, $2, $3, 0, $4)",
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
        self.statement(
            Lock::Conversation(*id.as_uuid()),
            "DELETE FROM members WHERE conversation_id = $1 AND user_id = $2",
            move |q| q.bind(*id.as_uuid()).bind(*user.as_uuid()),
        )
        .await
        .map(|n| n > 0)
    }

    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        self.list(
        sqlx::query(
            "SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, m.read_seq, \
               (SELECT COUNT(*) FROM members mm WHERE mm.conversation_id = c.id) AS member_count, \
               lm.seq AS lm_seq, lm.id AS lm_id, lm.sender_id AS lm_sender_id, lm.client_id AS lm_client_id, \
               lm.sent_at AS lm_sent_at, lm.epoch AS lm_epoch, lm.sealed AS lm_sealed, \
               lm.deleted_at AS lm_deleted_at, lm.commitment AS lm_commitment, \
               lm.franking_tag AS lm_franking_tag \
             FROM members m JOIN conversations c ON c.id = m.conversation_id \
             LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
             WHERE m.user_id = $1 ORDER BY c.last_activity DESC, c.id",
        )
        .bind(user.as_uuid()),
        rows::summary,
        )
        .await
    }

    async fn mark_read(&self, id: ConversationId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.writer
            .write(Lock::Conversation(*id.as_uuid()), move |c| {
                Box::pin(async move {
                    let pos: Option<i64> = sqlx::query_scalar(
                        "UPDATE members SET read_seq = GREATEST(read_seq, LEAST($1, \
                           (SELECT last_seq FROM conversations WHERE id = $2))) \
                         WHERE conversation_id = $2 AND user_id = $3 RETURNING read_seq",
                    )
                    .bind(i(seq))
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

/// The earlier message with this sender and client id, if any.
async fn earlier(c: &mut sqlx::PgConnection, m: &NewMessage) -> StoreResult<Option<StoredMessage>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE conversation_id = $1 AND sender_id = $2 AND client_id = $3"
    )))
    .bind(m.conversation_id.as_uuid())
    .bind(m.sender_id.as_uuid())
    .bind(m.client_id.as_str())
    .fetch_optional(c)
    .await
    .map_err(map_err)?
    .as_ref()
    .map(rows::message)
    .transpose()
}

#[async_trait]
impl MessageStore for PgStore {
    async fn append(&self, m: NewMessage) -> StoreResult<Appended> {
        self.writer
            .write(Lock::Conversation(*m.conversation_id.as_uuid()), move |c| {
                Box::pin(async move {
                    // One statement: lock the conversation's row (every append to it, from
                    // any node, holds that lock until commit; after waiting for it, the row
                    // read is the newest version), number the message, store it unless
                    // this sender already sent this client id (the unique index sees every
                    // committed row), and move the sender's read position.
                    let seq: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "WITH c AS ( \
                           SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE), \
                         ins AS ( \
                           INSERT INTO messages ({MESSAGE_COLUMNS}) \
                           SELECT $1, c.last_seq + 1, $2, $3, $4, $6, $5, $7, NULL, $8, $9 FROM c \
                           ON CONFLICT (conversation_id, sender_id, client_id) DO NOTHING \
                           RETURNING seq), \
                         bump AS ( \
                           UPDATE conversations SET last_seq = ins.seq, last_activity = $6 \
                           FROM ins WHERE id = $1), \
                         rd AS ( \
                           UPDATE members SET read_seq = GREATEST(read_seq, ins.seq) \
                           FROM ins WHERE conversation_id = $1 AND user_id = $3) \
                         SELECT seq FROM ins"
                    )))
                    .bind(m.conversation_id.as_uuid())
                    .bind(m.id.as_uuid())
                    .bind(m.sender_id.as_uuid())
                    .bind(m.client_id.as_str())
                    .bind(m.epoch.as_str())
                    .bind(m.sent_at.as_millis())
                    .bind(&m.sealed.0[..])
                    .bind(&m.franking.commitment[..])
                    .bind(&m.franking.tag[..])
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let Some(seq) = seq else {
                        // Nothing inserted: a repeated client id, or no such conversation.
                        return match earlier(c, &m).await? {
                            Some(first) => Ok(Appended::Duplicate(first)),
                            None => Err(StoreError::Backend(
                                "append to a conversation that does not exist".into(),
                            )),
                        };
                    };
                    if let Some(signal) = &m.signal {
                        // In the same transaction as the message: both or neither.
                        sqlx::query(
                            "INSERT INTO signal_outbox \
                             (conversation_id, seq, rules, category, score, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(m.conversation_id.as_uuid())
                        .bind(seq)
                        .bind(signal.rules_text())
                        .bind(signal.category.as_str())
                        .bind(i64::from(signal.score))
                        .bind(m.sent_at.as_millis())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    let seq = u64::try_from(seq)
                        .map_err(|_| StoreError::Corrupt("negative sequence".into()))?;
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
                        franking: Some(m.franking),
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
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 \
                     ORDER BY seq ASC LIMIT $3"
                ),
                n,
            ),
            SeqRange::Before(n) => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq < $2 \
                     ORDER BY seq DESC LIMIT $3"
                ),
                n,
            ),
        };
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .bind(i(bound))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut out = all(found, rows::message)?;
        if matches!(range, SeqRange::Before(_)) {
            out.reverse();
        }
        Ok(out)
    }

    async fn message(&self, id: ConversationId, seq: u64) -> StoreResult<Option<StoredMessage>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq = $2"
            )))
            .bind(id.as_uuid())
            .bind(i(seq)),
            rows::message,
        )
        .await
    }

    async fn tombstone(&self, id: ConversationId, seq: u64, at: Timestamp) -> StoreResult<bool> {
        self.statement(
            Lock::Conversation(*id.as_uuid()),
            custodia_store::rows::TOMBSTONE,
            move |q| q.bind(at.as_millis()).bind(*id.as_uuid()).bind(i(seq)),
        )
        .await
        .map(|n| n > 0)
    }

    async fn seq_span(
        &self,
        id: ConversationId,
        period: (Timestamp, Timestamp),
    ) -> StoreResult<Option<(u64, u64)>> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(custodia_store::rows::SEQ_SPAN)
            .bind(*id.as_uuid())
            .bind(period.0.as_millis())
            .bind(period.1.as_millis())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        custodia_store::rows::seq_span(row)
    }

    async fn purge_deleted(&self, limit: u32) -> StoreResult<u64> {
        self.statement(Lock::Own, custodia_store::rows::PURGE_DELETED, move |q| {
            q.bind(i64::from(limit))
        })
        .await
    }

    async fn scrub(&self) -> StoreResult<bool> {
        // Dead row versions go with PostgreSQL's own (auto)vacuum; nothing of ours to do.
        Ok(true)
    }

    async fn shred_epochs(
        &self,
        month: String,
        day: String,
        limit: u32,
    ) -> StoreResult<Vec<custodia_store::ShreddedEpoch>> {
        use custodia_store::rows::{EXPIRED_EPOCHS, SHRED_ATTACHMENTS, SHRED_DEK, SHRED_MESSAGES};
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let due: Vec<(uuid::Uuid, String)> = sqlx::query_as(EXPIRED_EPOCHS)
                        .bind(month)
                        .bind(day)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let mut shredded = Vec::with_capacity(due.len());
                    for (conversation, epoch) in due {
                        let mut counts = [0u64; 2];
                        for (n, sql) in [SHRED_MESSAGES, SHRED_ATTACHMENTS, SHRED_DEK]
                            .into_iter()
                            .enumerate()
                        {
                            let done = sqlx::query(sql)
                                .bind(conversation)
                                .bind(&epoch)
                                .execute(&mut *c)
                                .await
                                .map_err(map_err)?
                                .rows_affected();
                            if let Some(count) = counts.get_mut(n) {
                                *count = done;
                            }
                        }
                        shredded.push(custodia_store::ShreddedEpoch {
                            conversation_id: ConversationId::from_uuid(conversation),
                            epoch: custodia_core::Epoch::from_label(epoch),
                            messages: counts[0],
                            attachments: counts[1],
                        });
                    }
                    Ok(shredded)
                })
            })
            .await
    }

    async fn pending_signals(&self, limit: u32) -> StoreResult<Vec<PendingSignal>> {
        self.list(
            sqlx::query(
                "SELECT conversation_id, seq, rules, category, score FROM signal_outbox \
                 ORDER BY created_at, conversation_id, seq LIMIT $1",
            )
            .bind(i64::from(limit)),
            |row| {
                Ok(PendingSignal {
                    conversation_id: ConversationId::from_uuid(rows::uuid(row, "conversation_id")?),
                    seq: rows::unsigned(row, "seq")?,
                    signal: FlaggedSignal {
                        rules: FlaggedSignal::rules_from_text(&rows::get::<String>(row, "rules")?),
                        category: rows::named(row, "category", ReportCategory::parse)?,
                        score: u32::try_from(rows::get::<i64>(row, "score")?)
                            .map_err(|_| rows::corrupt("score"))?,
                    },
                })
            },
        )
        .await
    }

    async fn signal_handled(&self, id: ConversationId, seq: u64) -> StoreResult<bool> {
        self.statement(
            Lock::Conversation(*id.as_uuid()),
            "DELETE FROM signal_outbox WHERE conversation_id = $1 AND seq = $2",
            move |q| q.bind(*id.as_uuid()).bind(i(seq)),
        )
        .await
        .map(|n| n == 1)
    }
}

#[async_trait]
impl DekStore for PgStore {
    async fn wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
    ) -> StoreResult<Option<WrappedDek>> {
        self.find(
            sqlx::query(
                "SELECT kek_version, wrapped FROM deks WHERE conversation_id = $1 AND epoch = $2",
            )
            .bind(id.as_uuid())
            .bind(epoch.as_str()),
            rows::wrapped_dek,
        )
        .await
    }

    async fn put_wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
        dek: WrappedDek,
    ) -> StoreResult<WrappedDek> {
        let epoch = epoch.clone();
        self.writer
            .write(Lock::Conversation(*id.as_uuid()), move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO deks (conversation_id, epoch, kek_version, wrapped) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, epoch) DO NOTHING",
                    )
                    .bind(id.as_uuid())
                    .bind(epoch.as_str())
                    .bind(i64::from(dek.kek_version))
                    .bind(&dek.bytes)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let row = sqlx::query(
                        "SELECT kek_version, wrapped FROM deks WHERE conversation_id = $1 AND epoch = $2",
                    )
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

    async fn kek_usage(&self) -> StoreResult<Vec<custodia_store::KekUsage>> {
        self.pg_kek_usage().await
    }

    async fn kek_sealed_not_under(
        &self,
        kind: custodia_store::KekSealedKind,
        current: u32,
        after: Option<custodia_store::KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<custodia_store::KekSealed>> {
        self.pg_kek_sealed_not_under(kind, current, after, limit)
            .await
    }

    async fn replace_kek_sealed(
        &self,
        old: custodia_store::KekSealed,
        new: WrappedDek,
    ) -> StoreResult<bool> {
        self.pg_replace_kek_sealed(old, new).await
    }

    async fn add_kek_step(&self, step: custodia_store::KekStep) -> StoreResult<bool> {
        self.pg_add_kek_step(step).await
    }

    async fn kek_steps(&self) -> StoreResult<Vec<custodia_store::KekStep>> {
        self.pg_kek_steps().await
    }

    async fn kek_step_logged(
        &self,
        kind: custodia_store::KekStepKind,
        version: u32,
        index: u64,
    ) -> StoreResult<()> {
        self.pg_kek_step_logged(kind, version, index).await
    }
}

#[async_trait]
impl Health for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        // A real commit (one row changed) proves the writer is alive and the database
        // takes commits: a full disk or a read-only server fails it.
        self.writer
            .write(Lock::Own, |c| {
                Box::pin(async move {
                    sqlx::query("UPDATE health_probe SET probes = probes + 1 WHERE id = 1")
                        .execute(c)
                        .await
                        .map(drop)
                        .map_err(map_err)
                })
            })
            .await
    }
}
