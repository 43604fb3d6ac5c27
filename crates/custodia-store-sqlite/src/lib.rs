//! The embedded SQLite backend of the storage seam.
//!
//! One file in WAL mode with `synchronous = FULL` (every commit is synced before it is
//! acknowledged) and `secure_delete` (deleted bodies are overwritten, not left in free
//! pages). Reads run on blocking threads over a small pool of read-only connections;
//! every write goes through one writer thread that batches concurrent writes into one
//! commit (see `writer`).
//!
//! Layout:
//! - `writer` — the group-commit writer thread.
//! - `rows` — decoding rows into records.
//! - this file — opening and migrating the database, and the store traits.

mod attachments;
mod cases;
mod keks;
mod limits;
mod log;
mod rows;
mod safety;
mod staff;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use custodia_core::{
    ConversationId, ConversationKind, Epoch, MemberRole, ReportCategory, SessionId, Timestamp,
    UserId, Username,
};
use custodia_store::{
    AccountStore, AddMember, Appended, CommitObserver, ConversationRecord, ConversationStore,
    ConversationSummary, DekStore, FlaggedSignal, HashRange, Health, LogAppend, LogStore,
    MemberRecord, MessageStore, NewConversation, NewMessage, PendingSignal, SeqRange,
    SessionRecord, SessionStore, StoreError, StoreResult, StoredMessage, TileHash, TokenHash,
    UserRecord, WrappedDek,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::Semaphore;

use crate::writer::Writer;

/// The schema, one step per entry; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_log.sql"),
    include_str!("../migrations/0003_log_records.sql"),
    include_str!("../migrations/0004_staff.sql"),
    include_str!("../migrations/0005_cases.sql"),
    include_str!("../migrations/0006_franking.sql"),
    include_str!("../migrations/0007_case_evidence.sql"),
    include_str!("../migrations/0008_safety.sql"),
    include_str!("../migrations/0009_attachments.sql"),
    include_str!("../migrations/0010_pdq.sql"),
    include_str!("../migrations/0011_rate_buckets.sql"),
    include_str!("../migrations/0012_staff_changes.sql"),
    include_str!("../migrations/0013_signal_outbox.sql"),
    include_str!("../migrations/0014_health_probe.sql"),
    include_str!("../migrations/0015_access_notices.sql"),
    include_str!("../migrations/0016_nondisclosure.sql"),
    include_str!("../migrations/0017_deferred_notices.sql"),
    include_str!("../migrations/0018_review_deferred_notices.sql"),
    include_str!("../migrations/0019_release_logged.sql"),
    include_str!("../migrations/0020_legal_requests.sql"),
    include_str!("../migrations/0021_legal_holds.sql"),
    include_str!("../migrations/0022_legal_documents.sql"),
    include_str!("../migrations/0023_case_priority.sql"),
    include_str!("../migrations/0024_account_closure.sql"),
    include_str!("../migrations/0025_kek_steps.sql"),
];
/// Read connections (and blocking threads reading) at once.
const READERS: usize = 4;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    // std Mutex: held only to take or return a connection, never across an await.
    idle: Mutex<Vec<Connection>>,
    readers: Semaphore,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, migrates it, and starts the writer.
    pub async fn open(path: &Path, observer: Arc<dyn CommitObserver>) -> StoreResult<Arc<Self>> {
        let owned = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_writer(&owned))
            .await
            .map_err(|e| StoreError::Backend(format!("opening the database: {e}")))??;
        let writer = Writer::spawn(conn, observer)
            .map_err(|e| StoreError::Backend(format!("writer thread: {e}")))?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            readers: Semaphore::new(READERS),
            writer,
        }))
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.read_with(move |c| f(c).map_err(map_err)).await
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    async fn read_with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .readers
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("store closed".into()))?;
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match conn {
                Some(c) => c,
                None => match open_reader(&path) {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = f(&conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task: {e}")))?;
        if let Some(c) = conn {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        }
        result
    }
}

/// Writes a consistent copy of the database at `db` to `out` (which must not exist) while
/// servers go on using it: SQLite's `VACUUM INTO` reads one snapshot (a read transaction,
/// which in WAL mode blocks no writer) and writes it compacted, without the free pages
/// that could hold destroyed data. Blocking.
pub fn snapshot(db: &Path, out: &Path) -> StoreResult<()> {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(map_err)?;
    c.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(map_err)?;
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Backend("the snapshot's path is not UTF-8".into()))?;
    c.execute("VACUUM INTO ?1", [target]).map_err(map_err)?;
    Ok(())
}

fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(map_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(map_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(map_err)?;
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(map_err)?;
    migrate(&conn)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(map_err)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    let done: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(map_err)?;
    let done =
        usize::try_from(done).map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {done}, newer than this server knows ({}); upgrade custodia",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let step = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        conn.execute_batch(&step)
            .map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
    }
    Ok(())
}

/// Maps a rusqlite error into the seam's error, inside the backend.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::Conflict
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull => StoreError::Unavailable(e.to_string()),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::InvalidColumnName(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

const MESSAGE_COLUMNS: &str = "conversation_id, seq, id, sender_id, client_id, sent_at, epoch, sealed, deleted_at, \
     commitment, franking_tag";
const USER_COLUMNS: &str = "id, username, password_hash, birth_date, created_at, closed_at";
const SESSION_COLUMNS: &str = "token_hash, id, user_id, device, created_at, expires_at";
const MEMBER_QUERY: &str = "SELECT m.user_id, u.username, m.role, m.read_seq, m.joined_at FROM members m \
                            JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ?1";

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, u: UserRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO users (id, username, password_hash, birth_date, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        u.id.as_uuid(),
                        u.username.as_str(),
                        u.password_hash,
                        u.birth_date.to_string(),
                        u.created_at.as_millis()
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<UserRecord>> {
        let name = name.as_str().to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
            ))?
            .query_row([name], rows::user)
            .optional()
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id.as_uuid()], rows::user)
                .optional()
        })
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
        self.writer
            .write(move |c| {
                let user = *id.as_uuid();
                let at = at.as_millis();
                if c.execute(CLOSE_ACCOUNT, params![at, user])
                    .map_err(map_err)?
                    == 0
                {
                    return Ok(None);
                }
                let listed = (|| {
                    let deleted = c
                        .prepare_cached(SENT_LIVE)?
                        .query_map([user], |r| {
                            Ok((ConversationId::from_uuid(r.get(0)?), r.get::<_, i64>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let conversations = c
                        .prepare_cached(MEMBERSHIPS)?
                        .query_map([user], |r| Ok(ConversationId::from_uuid(r.get(0)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok((deleted, conversations))
                })()
                .map_err(map_err)?;
                c.execute(TOMBSTONE_SENT, params![at, user])
                    .map_err(map_err)?;
                let kept: i64 = c
                    .query_row(KEPT_SENT, [user], |r| r.get(0))
                    .map_err(map_err)?;
                let attachments = c.execute(ERASE_ATTACHMENTS, [user]).map_err(map_err)?;
                for sql in ERASE_ACCOUNT_DATA {
                    c.execute(sql, [user]).map_err(map_err)?;
                }
                Ok(Some(custodia_store::AccountClosure {
                    deleted: listed
                        .0
                        .into_iter()
                        .map(|(conv, seq)| (conv, seq.unsigned_abs()))
                        .collect(),
                    kept: kept.unsigned_abs(),
                    attachments: attachments as u64,
                    conversations: listed.1,
                }))
            })
            .await
    }

    async fn release_closed_names(&self, before: Timestamp) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE users SET username = 'closed.' || substr(lower(hex(id)), 1, 25) \
                     WHERE closed_at IS NOT NULL AND closed_at < ?1 \
                     AND username NOT LIKE 'closed.%'",
                    [before.as_millis()],
                )
                .map(|n| n as u64)
                .map_err(map_err)
            })
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        &s.token_hash.0[..],
                        s.id.as_uuid(),
                        s.user_id.as_uuid(),
                        s.device,
                        s.created_at.as_millis(),
                        s.expires_at.as_millis()
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let hash = hash.0;
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"
            ))?
            .query_row([&hash[..]], rows::session)
            .optional()
        })
        .await
    }

    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY created_at DESC"
            ))?
            .query_map([user.as_uuid()], rows::session)?
            .collect()
        })
        .await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    "DELETE FROM sessions WHERE user_id = ?1 AND id = ?2",
                    params![user.as_uuid(), id.as_uuid()],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, conv: NewConversation) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let at = conv.created_at.as_millis();
                c.execute(
                    "INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5)",
                    params![conv.id.as_uuid(), conv.kind.as_str(), conv.title, conv.created_by.as_uuid(), at],
                )
                .map_err(map_err)?;
                if conv.kind == ConversationKind::Direct {
                    let mut pair: Vec<UserId> = conv.members.iter().map(|(u, _)| *u).collect();
                    pair.sort();
                    if let [low, high] = pair[..] {
                        c.execute(
                            "INSERT INTO direct_pairs (user_low, user_high, conversation_id) VALUES (?1, ?2, ?3)",
                            params![low.as_uuid(), high.as_uuid(), conv.id.as_uuid()],
                        )
                        .map_err(map_err)?;
                    }
                }
                let mut add = c
                    .prepare_cached(
                        "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) VALUES (?1, ?2, ?3, 0, ?4)",
                    )
                    .map_err(map_err)?;
                for (user, role) in &conv.members {
                    add.execute(params![conv.id.as_uuid(), user.as_uuid(), role.as_str(), at]).map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn direct_between(&self, a: UserId, b: UserId) -> StoreResult<Option<ConversationId>> {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        self.read(move |c| {
            c.prepare_cached(
                "SELECT conversation_id FROM direct_pairs WHERE user_low = ?1 AND user_high = ?2",
            )?
            .query_row(params![low.as_uuid(), high.as_uuid()], |r| {
                r.get(0).map(ConversationId::from_uuid)
            })
            .optional()
        })
        .await
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<ConversationRecord>> {
        self.read(move |c| {
            c.prepare_cached("SELECT id, kind, title, created_by, created_at, last_seq FROM conversations WHERE id = ?1")?
                .query_row([id.as_uuid()], rows::conversation)
                .optional()
        })
        .await
    }

    async fn member(&self, id: ConversationId, user: UserId) -> StoreResult<Option<MemberRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("{MEMBER_QUERY} AND m.user_id = ?2"))?
                .query_row(params![id.as_uuid(), user.as_uuid()], rows::member)
                .optional()
        })
        .await
    }

    async fn members(&self, id: ConversationId) -> StoreResult<Vec<MemberRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("{MEMBER_QUERY} ORDER BY m.joined_at, u.username"))?
                .query_map([id.as_uuid()], rows::member)?
                .collect()
        })
        .await
    }

    async fn recipients(
        &self,
        id: ConversationId,
        sender: UserId,
    ) -> StoreResult<Vec<(UserId, bool)>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT m.user_id, EXISTS (SELECT 1 FROM blocks b \
                   WHERE (b.blocker = ?2 AND b.blocked = m.user_id) \
                      OR (b.blocker = m.user_id AND b.blocked = ?2)) \
                 FROM members m WHERE m.conversation_id = ?1",
            )?
            .query_map(params![id.as_uuid(), sender.as_uuid()], |r| {
                Ok((UserId::from_uuid(r.get(0)?), r.get(1)?))
            })?
            .collect()
        })
        .await
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
                let existing = c
                    .query_row(
                        "SELECT 1 FROM members WHERE conversation_id = ?1 AND user_id = ?2",
                        params![id.as_uuid(), user.as_uuid()],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(map_err)?;
                if existing.is_some() {
                    return Ok(AddMember::AlreadyMember);
                }
                let count: i64 = c
                    .query_row("SELECT COUNT(*) FROM members WHERE conversation_id = ?1", [id.as_uuid()], |r| r.get(0))
                    .map_err(map_err)?;
                if count >= i64::from(max_members) {
                    return Ok(AddMember::Full);
                }
                c.execute(
                    "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at) VALUES (?1, ?2, ?3, 0, ?4)",
                    params![id.as_uuid(), user.as_uuid(), role.as_str(), at.as_millis()],
                )
                .map_err(map_err)?;
                Ok(AddMember::Added)
            })
            .await
    }

    async fn remove_member(&self, id: ConversationId, user: UserId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    "DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2",
                    params![id.as_uuid(), user.as_uuid()],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, m.read_seq, \
                   (SELECT COUNT(*) FROM members mm WHERE mm.conversation_id = c.id) AS member_count, \
                   lm.seq AS lm_seq, lm.id AS lm_id, lm.sender_id AS lm_sender_id, lm.client_id AS lm_client_id, \
                   lm.sent_at AS lm_sent_at, lm.epoch AS lm_epoch, lm.sealed AS lm_sealed, \
                   lm.deleted_at AS lm_deleted_at, lm.commitment AS lm_commitment, \
                   lm.franking_tag AS lm_franking_tag \
                 FROM members m JOIN conversations c ON c.id = m.conversation_id \
                 LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
                 WHERE m.user_id = ?1 ORDER BY c.last_activity DESC, c.id",
            )?
            .query_map([user.as_uuid()], rows::summary)?
            .collect()
        })
        .await
    }

    async fn mark_read(&self, id: ConversationId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                let pos: Option<i64> = c
                    .query_row(
                        "UPDATE members SET read_seq = MAX(read_seq, MIN(?1, \
                           (SELECT last_seq FROM conversations WHERE id = ?2))) \
                         WHERE conversation_id = ?2 AND user_id = ?3 RETURNING read_seq",
                        params![seq_param(seq), id.as_uuid(), user.as_uuid()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                Ok(pos.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
            })
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, m: NewMessage) -> StoreResult<Appended> {
        self.writer
            .write(move |c| {
                let existing = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages \
                         WHERE conversation_id = ?1 AND sender_id = ?2 AND client_id = ?3"
                    ))
                    .and_then(|mut s| {
                        s.query_row(
                            params![m.conversation_id.as_uuid(), m.sender_id.as_uuid(), m.client_id.as_str()],
                            rows::message,
                        )
                        .optional()
                    })
                    .map_err(map_err)?;
                if let Some(earlier) = existing {
                    return Ok(Appended::Duplicate(earlier));
                }
                let seq: i64 = c
                    .prepare_cached(
                        "UPDATE conversations SET last_seq = last_seq + 1, last_activity = ?1 WHERE id = ?2 \
                         RETURNING last_seq",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![m.sent_at.as_millis(), m.conversation_id.as_uuid()], |r| r.get(0))
                            .optional()
                    })
                    .map_err(map_err)?
                    .ok_or_else(|| StoreError::Backend("append to a conversation that does not exist".into()))?;
                c.prepare_cached(&format!(
                    "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        m.conversation_id.as_uuid(),
                        seq,
                        m.id.as_uuid(),
                        m.sender_id.as_uuid(),
                        m.client_id.as_str(),
                        m.sent_at.as_millis(),
                        m.epoch.as_str(),
                        &m.sealed.0[..],
                        &m.franking.commitment[..],
                        &m.franking.tag[..]
                    ])
                })
                .map_err(map_err)?;
                c.prepare_cached(
                    "UPDATE members SET read_seq = MAX(read_seq, ?1) WHERE conversation_id = ?2 AND user_id = ?3",
                )
                .and_then(|mut s| s.execute(params![seq, m.conversation_id.as_uuid(), m.sender_id.as_uuid()]))
                .map_err(map_err)?;
                if let Some(signal) = &m.signal {
                    c.prepare_cached(
                        "INSERT INTO signal_outbox (conversation_id, seq, rules, category, score, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            m.conversation_id.as_uuid(),
                            seq,
                            signal.rules_text(),
                            signal.category.as_str(),
                            signal.score,
                            m.sent_at.as_millis()
                        ])
                    })
                    .map_err(map_err)?;
                }
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
                    franking: Some(m.franking),
                }))
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
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq > ?2 \
                     ORDER BY seq ASC LIMIT ?3"
                ),
                n,
            ),
            SeqRange::Before(n) => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq < ?2 \
                     ORDER BY seq DESC LIMIT ?3"
                ),
                n,
            ),
        };
        let mut out: Vec<StoredMessage> = self
            .read(move |c| {
                c.prepare_cached(&sql)?
                    .query_map(
                        params![id.as_uuid(), seq_param(bound), i64::from(limit)],
                        rows::message,
                    )?
                    .collect()
            })
            .await?;
        if matches!(range, SeqRange::Before(_)) {
            out.reverse();
        }
        Ok(out)
    }

    async fn message(&self, id: ConversationId, seq: u64) -> StoreResult<Option<StoredMessage>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq = ?2"
            ))?
            .query_row(params![id.as_uuid(), seq_param(seq)], rows::message)
            .optional()
        })
        .await
    }

    async fn tombstone(&self, id: ConversationId, seq: u64, at: Timestamp) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    custodia_store::rows::TOMBSTONE,
                    params![at.as_millis(), id.as_uuid(), seq_param(seq)],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn seq_span(
        &self,
        id: ConversationId,
        period: (Timestamp, Timestamp),
    ) -> StoreResult<Option<(u64, u64)>> {
        let row = self
            .read(move |c| {
                c.prepare_cached(custodia_store::rows::SEQ_SPAN)?.query_row(
                    params![id.as_uuid(), period.0.as_millis(), period.1.as_millis()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        custodia_store::rows::seq_span(row)
    }

    async fn purge_deleted(&self, limit: u32) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                c.execute(custodia_store::rows::PURGE_DELETED, [limit])
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }

    async fn scrub(&self) -> StoreResult<bool> {
        // Its own connection: a checkpoint runs outside any transaction, so not on the
        // writer's; it waits a while for readers, then says whether it got through.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let c = Connection::open(&path).map_err(map_err)?;
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(map_err)?;
            let busy: i64 = c
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(map_err)?;
            Ok(busy == 0)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("scrubbing: {e}")))?
    }

    async fn shred_epochs(
        &self,
        month: String,
        day: String,
        limit: u32,
    ) -> StoreResult<Vec<custodia_store::ShreddedEpoch>> {
        use custodia_store::rows::{EXPIRED_EPOCHS, SHRED_ATTACHMENTS, SHRED_DEK, SHRED_MESSAGES};
        self.writer
            .write(move |c| {
                let due = (|| {
                    c.prepare_cached(EXPIRED_EPOCHS)?
                        .query_map(params![month, day, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<(uuid::Uuid, String)>>>()
                })()
                .map_err(map_err)?;
                let mut shredded = Vec::with_capacity(due.len());
                for (conversation, epoch) in due {
                    let messages = c
                        .execute(SHRED_MESSAGES, params![conversation, epoch])
                        .map_err(map_err)?;
                    let attachments = c
                        .execute(SHRED_ATTACHMENTS, params![conversation, epoch])
                        .map_err(map_err)?;
                    c.execute(SHRED_DEK, params![conversation, epoch])
                        .map_err(map_err)?;
                    shredded.push(custodia_store::ShreddedEpoch {
                        conversation_id: ConversationId::from_uuid(conversation),
                        epoch: custodia_core::Epoch::from_label(epoch),
                        messages: messages as u64,
                        attachments: attachments as u64,
                    });
                }
                Ok(shredded)
            })
            .await
    }

    async fn pending_signals(&self, limit: u32) -> StoreResult<Vec<PendingSignal>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT conversation_id, seq, rules, category, score FROM signal_outbox \
                 ORDER BY created_at, conversation_id, seq LIMIT ?1",
            )?
            .query_map([limit], |r| {
                let category: String = r.get(3)?;
                Ok(PendingSignal {
                    conversation_id: ConversationId::from_uuid(r.get(0)?),
                    seq: u64::try_from(r.get::<_, i64>(1)?).map_err(|_| {
                        rusqlite::Error::InvalidColumnName("negative sequence".into())
                    })?,
                    signal: FlaggedSignal {
                        rules: FlaggedSignal::rules_from_text(&r.get::<_, String>(2)?),
                        category: ReportCategory::parse(&category).map_err(|_| {
                            rusqlite::Error::InvalidColumnName("undecodable category".into())
                        })?,
                        score: r.get(4)?,
                    },
                })
            })?
            .collect()
        })
        .await
    }

    async fn signal_handled(&self, id: ConversationId, seq: u64) -> StoreResult<bool> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.writer
            .write(move |c| {
                c.execute(
                    "DELETE FROM signal_outbox WHERE conversation_id = ?1 AND seq = ?2",
                    params![id.as_uuid(), seq],
                )
                .map(|n| n == 1)
                .map_err(map_err)
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
        let epoch = epoch.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT kek_version, wrapped FROM deks WHERE conversation_id = ?1 AND epoch = ?2",
            )?
            .query_row(params![id.as_uuid(), epoch.as_str()], rows::wrapped_dek)
            .optional()
        })
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
            .write(move |c| {
                c.execute(
                    "INSERT INTO deks (conversation_id, epoch, kek_version, wrapped) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (conversation_id, epoch) DO NOTHING",
                    params![id.as_uuid(), epoch.as_str(), i64::from(dek.kek_version), dek.bytes],
                )
                .map_err(map_err)?;
                c.query_row(
                    "SELECT kek_version, wrapped FROM deks WHERE conversation_id = ?1 AND epoch = ?2",
                    params![id.as_uuid(), epoch.as_str()],
                    rows::wrapped_dek,
                )
                .map_err(map_err)
            })
            .await
    }

    async fn kek_usage(&self) -> StoreResult<Vec<custodia_store::KekUsage>> {
        self.sqlite_kek_usage().await
    }

    async fn kek_sealed_not_under(
        &self,
        kind: custodia_store::KekSealedKind,
        current: u32,
        after: Option<custodia_store::KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<custodia_store::KekSealed>> {
        self.sqlite_kek_sealed_not_under(kind, current, after, limit)
            .await
    }

    async fn replace_kek_sealed(
        &self,
        old: custodia_store::KekSealed,
        new: WrappedDek,
    ) -> StoreResult<bool> {
        self.sqlite_replace_kek_sealed(old, new).await
    }

    async fn add_kek_step(&self, step: custodia_store::KekStep) -> StoreResult<bool> {
        self.sqlite_add_kek_step(step).await
    }

    async fn kek_steps(&self) -> StoreResult<Vec<custodia_store::KekStep>> {
        self.sqlite_kek_steps().await
    }

    async fn kek_step_logged(
        &self,
        kind: custodia_store::KekStepKind,
        version: u32,
        index: u64,
    ) -> StoreResult<()> {
        self.sqlite_kek_step_logged(kind, version, index).await
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await?;
        // A real commit (one row changed, written to the WAL and synced) proves the
        // writer thread is alive and the disk takes commits: a full disk fails it.
        self.writer
            .write(|c| {
                c.execute(
                    "UPDATE health_probe SET probes = probes + 1 WHERE id = 1",
                    [],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_entries(
        &self,
        at: u64,
        entries: Vec<LogAppend>,
        completed: Vec<TileHash>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |c| log::append(c, at, entries, completed))
            .await
    }

    async fn log_record(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.read_with(move |c| log::record(c, index)).await
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.read_with(log::size).await
    }

    async fn log_entries(&self, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
        self.read_with(move |c| log::entries(c, start, count)).await
    }

    async fn log_hashes(
        &self,
        ranges: Vec<HashRange>,
    ) -> StoreResult<Vec<Vec<custodia_tlog::Hash>>> {
        self.read_with(move |c| log::hashes(c, &ranges)).await
    }

    async fn last_checkpoint(&self) -> StoreResult<Option<(u64, String)>> {
        self.read_with(log::last_checkpoint).await
    }

    async fn save_checkpoint(
        &self,
        previous: Option<u64>,
        size: u64,
        note: String,
    ) -> StoreResult<()> {
        self.writer
            .write(move |c| log::save_checkpoint(c, previous, size, &note))
            .await
    }
}
