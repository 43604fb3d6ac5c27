//! The aggregates' interfaces. Every method is one durable step: when it returns `Ok`,
//! the change is committed; when it returns `Err`, nothing changed.

use std::sync::Arc;

use async_trait::async_trait;
use custodia_core::{
    AccessNoticeId, AttachmentId, CaseId, ConversationId, Epoch, HoldEnd, HoldId, LegalRequestId,
    MemberRole, RateLimit, RequestId, RequestStatus, SessionId, StaffChangeId, StaffChangeStatus,
    StaffId, Timestamp, UserId, Username, WhoCanMessage,
};

use crate::{
    AccessNoticeRecord, AccessRequestRecord, AddMember, Appended, AttachmentRecord, CaseRecord,
    ConnectionRecord, ConversationRecord, ConversationSummary, DecisionRecord, HashKind, HashRange,
    HoldRecord, KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage,
    LegalRequestRecord, LegalReview, LogAppend, MemberRecord, NewConversation, NewMessage,
    NoticeRelease, PendingSignal, SealedBody, SealedTotp, SeqRange, SessionRecord,
    StaffChangeRecord, StaffEffect, StaffRecord, StaffSessionRecord, StoreResult, StoredMessage,
    TileHash, TokenHash, UserRecord, WrappedDek,
};

/// User accounts.
///
/// Holds password hashes (argon2id PHC strings), never passwords.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates a user; `Conflict` if the username is taken.
    async fn create_user(&self, user: UserRecord) -> StoreResult<()>;
    /// Looks a user up by normalised name.
    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<UserRecord>>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Closes an account in one commit (see [`crate::rows::CLOSE_ACCOUNT`] and what
    /// follows it): signed out everywhere, every message it sent deleted for everyone
    /// (bodies destroyed unless a hold covers them), its attachments, memberships,
    /// connections, blocks, settings and notices gone. `None` if there is no open account.
    async fn close_account(
        &self,
        id: UserId,
        at: Timestamp,
    ) -> StoreResult<Option<crate::AccountClosure>>;
    /// Frees the names of accounts closed before `before` (each becomes `closed.` and
    /// the start of its id, a name registration refuses); returns how many.
    async fn release_closed_names(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Signed-in sessions.
///
/// Security duty: sessions are bearer credentials. Only the SHA-256 of a token is stored
/// and looked up; a deleted session must stop working at once.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()>;
    /// The session whose token hashes to `hash`, if it exists (expired or not).
    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>>;
    /// All sessions of a user, newest first.
    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes one of the user's sessions; `false` if there was none.
    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool>;
}

/// Staff accounts and their sessions.
///
/// Security duty: staff accounts gate every governed access. A TOTP step once used is
/// never accepted again for that account (`use_totp_step` compares and sets in one step),
/// session tokens and enrolment codes are stored only as hashes, an enrolment code works
/// once, and a staff change is decided once and applied in the same commit as its decision.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Stores a new staff account; `Conflict` if the username is taken.
    async fn create_staff(&self, staff: StaffRecord) -> StoreResult<()>;
    /// A staff account by sign-in name.
    async fn staff_by_name(&self, name: &Username) -> StoreResult<Option<StaffRecord>>;
    /// A staff account by id.
    async fn staff_by_id(&self, id: StaffId) -> StoreResult<Option<StaffRecord>>;
    /// Every staff account, oldest first.
    async fn all_staff(&self) -> StoreResult<Vec<StaffRecord>>;
    /// Sets a member's password hash and TOTP secret. With `enrolment`, only if the
    /// account's pending enrolment code hashes to it (the enrolment then ends, so a code
    /// works once); without, only if the account is already enrolled. `false` otherwise.
    async fn set_staff_credentials(
        &self,
        id: StaffId,
        enrolment: Option<TokenHash>,
        password_hash: String,
        totp: SealedTotp,
    ) -> StoreResult<bool>;
    /// Stores a proposed staff change (pending).
    async fn create_staff_change(&self, change: StaffChangeRecord) -> StoreResult<()>;
    /// A proposed staff change by id.
    async fn staff_change(&self, id: StaffChangeId) -> StoreResult<Option<StaffChangeRecord>>;
    /// Every proposed staff change, newest first.
    async fn staff_changes(&self) -> StoreResult<Vec<StaffChangeRecord>>;
    /// Decides a pending change (`status` approved or denied, by whom, when) and, in the
    /// same commit, applies `effect`. `false` (and nothing changes) if the change is no
    /// longer pending; `Conflict` (and nothing changes) if `effect` creates an account
    /// whose username is taken or updates one that does not exist.
    async fn decide_staff_change(
        &self,
        id: StaffChangeId,
        status: StaffChangeStatus,
        decided_by: Option<StaffId>,
        at: Timestamp,
        effect: Option<StaffEffect>,
    ) -> StoreResult<bool>;
    /// Records that TOTP `step` was used to sign in; `false` (and nothing changes) if this
    /// step or a later one was already used.
    async fn use_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool>;
    /// Gives TOTP `step` back, when the sign-in it was used for could not be completed
    /// (the audit log or the session could not be written), so the same code works for the
    /// retry: `false` if a later step was used meanwhile (then nothing changes).
    async fn unuse_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool>;
    /// Stores a new staff session.
    async fn create_staff_session(&self, session: StaffSessionRecord) -> StoreResult<()>;
    /// The staff session whose token hashes to `hash` (expired or not).
    async fn staff_session_by_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StaffSessionRecord>>;
    /// Ends a staff session; `false` if there was none.
    async fn delete_staff_session(&self, id: SessionId) -> StoreResult<bool>;
}

/// Cases and access requests.
///
/// Security duty: decisions are final. A decision is recorded at most once per approver
/// and request, and a request leaves a state only from the state the caller saw
/// (compare-and-set), so two approvers racing cannot both decide it.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Stores a new case.
    async fn create_case(&self, case: CaseRecord) -> StoreResult<()>;
    /// A case by id.
    async fn case(&self, id: CaseId) -> StoreResult<Option<CaseRecord>>;
    /// Every case, newest first.
    async fn cases(&self) -> StoreResult<Vec<CaseRecord>>;
    /// Stores a new access request (pending, without decisions).
    async fn create_request(&self, request: AccessRequestRecord) -> StoreResult<()>;
    /// A request with its approvers and decisions.
    async fn request(&self, id: RequestId) -> StoreResult<Option<AccessRequestRecord>>;
    /// The requests of a case, oldest first.
    async fn requests_of_case(&self, case: CaseId) -> StoreResult<Vec<AccessRequestRecord>>;
    /// Records `decision` and, in the same commit, moves the request from `from` to `to`
    /// with the grant window `granted` (if any). `Conflict` if this approver already
    /// decided; `Ok(false)` (nothing recorded) if the request is no longer in `from`.
    async fn decide(
        &self,
        id: RequestId,
        decision: DecisionRecord,
        from: RequestStatus,
        to: RequestStatus,
        granted: Option<(Timestamp, Timestamp)>,
    ) -> StoreResult<bool>;
    /// Moves a request from `from` to `to`; `false` if it was not in `from`.
    async fn set_request_status(
        &self,
        id: RequestId,
        from: RequestStatus,
        to: RequestStatus,
    ) -> StoreResult<bool>;
    /// Stores access notices in one commit; a notice for a member and log entry already
    /// stored is kept as it was (so a retried read notifies once).
    async fn add_access_notices(&self, notices: Vec<AccessNoticeRecord>) -> StoreResult<()>;
    /// A member's access notices they may see (not deferred, or released), newest first.
    async fn access_notices_of(&self, user: UserId) -> StoreResult<Vec<AccessNoticeRecord>>;
    /// Releases, in one step, the deferred notices `which` names (marking them released
    /// at `now`) and returns them: each is released once, whichever node asks, however
    /// often.
    async fn release_access_notices(
        &self,
        which: NoticeRelease,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessNoticeRecord>>;
    /// Stores a new legal request with its served documents (sealed, in the order of
    /// `request.documents`) in one commit, giving it the next number; returns that number.
    /// `Conflict` if another node took the same number at once (try again).
    async fn add_legal_request(
        &self,
        request: LegalRequestRecord,
        documents: Vec<SealedBody>,
    ) -> StoreResult<u64>;
    /// Served document `position` (from 0) of a legal request, sealed.
    async fn legal_document(
        &self,
        id: LegalRequestId,
        position: u32,
    ) -> StoreResult<Option<SealedBody>>;
    /// A legal request.
    async fn legal_request(&self, id: LegalRequestId) -> StoreResult<Option<LegalRequestRecord>>;
    /// Every legal request, newest first.
    async fn legal_requests(&self) -> StoreResult<Vec<LegalRequestRecord>>;
    /// Records a legal request's review; `false` if there is no such request or it was
    /// already reviewed (a review is final).
    async fn review_legal_request(
        &self,
        id: LegalRequestId,
        review: LegalReview,
    ) -> StoreResult<bool>;
    /// Stores a preservation hold (with its conversations) in one commit.
    async fn add_hold(&self, hold: HoldRecord) -> StoreResult<()>;
    /// A hold.
    async fn hold(&self, id: HoldId) -> StoreResult<Option<HoldRecord>>;
    /// The holds placed for a legal request, oldest first.
    async fn holds_of(&self, request: LegalRequestId) -> StoreResult<Vec<HoldRecord>>;
    /// Extends a hold to `until`; `false` if there is no such hold, it ended, or it was
    /// extended before (once only).
    async fn extend_hold(&self, id: HoldId, until: Timestamp) -> StoreResult<bool>;
    /// Ends a hold at `at` (`how`); `false` if there is no such hold or it ended already.
    async fn end_hold(&self, id: HoldId, at: Timestamp, how: HoldEnd) -> StoreResult<bool>;
    /// Ends, in one step, every hold whose time ran out by `now` and returns them: each
    /// ends once, whichever node asks.
    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>>;
    /// Released notices whose release is not yet in the audit log, by read (log index).
    async fn unlogged_releases(&self) -> StoreResult<Vec<AccessNoticeRecord>>;
    /// Records that the releases of notices `ids` are in the audit log.
    async fn mark_releases_logged(&self, ids: Vec<AccessNoticeId>) -> StoreResult<()>;
    /// Sets a case's non-disclosure order to end at `until`, and the deferral of its
    /// notices not yet released with it, in one commit; `false` if there is no such case.
    async fn extend_nondisclosure(&self, case: CaseId, until: Timestamp) -> StoreResult<bool>;
}

/// Members' safety settings: who may message them, connections, blocks.
#[async_trait]
pub trait SafetyStore: Send + Sync {
    /// Records a member's "who can message me" choice.
    async fn set_who_can_message(&self, user: UserId, setting: WhoCanMessage) -> StoreResult<()>;
    /// A member's choice, if they made one.
    async fn who_can_message(&self, user: UserId) -> StoreResult<Option<WhoCanMessage>>;
    /// `from` asks `to` to connect; if `to` had asked `from`, they are connected now.
    /// Returns the pair's record after the call.
    async fn request_connection(
        &self,
        from: UserId,
        to: UserId,
        at: Timestamp,
    ) -> StoreResult<ConnectionRecord>;
    /// Ends a connection or withdraws/refuses a request; `false` if there was none.
    async fn remove_connection(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    /// The pair's record, if any.
    async fn connection(&self, a: UserId, b: UserId) -> StoreResult<Option<ConnectionRecord>>;
    /// A member's connections and requests.
    async fn connections_of(&self, user: UserId) -> StoreResult<Vec<ConnectionRecord>>;
    /// `blocker` blocks `blocked` (ending any connection between them).
    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()>;
    /// Lifts a block; `false` if there was none.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool>;
    /// Whether `blocker` blocked `blocked`.
    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool>;
    /// Whether either of the two blocked the other (one read, for every direct send).
    async fn blocked_either_way(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    /// Everyone `blocker` blocked.
    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>>;
    /// Everyone in a block with `user`, either way.
    async fn blocked_with(&self, user: UserId) -> StoreResult<Vec<UserId>>;
}

/// Attachments (sealed), and the hash lists uploads are matched against.
///
/// Security duty: blobs and file keys are stored only sealed; hash list lookups are
/// indexed (never a scan of the list).
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// Stores an attachment.
    async fn put_attachment(&self, attachment: AttachmentRecord) -> StoreResult<()>;
    /// An attachment by id.
    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentRecord>>;
    /// Adds hashes to a named list (duplicates are ignored); returns how many were new.
    async fn import_hashes(
        &self,
        list: String,
        kind: HashKind,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<u64>;
    /// The list holding any of these hashes, if one does.
    async fn hash_match(&self, hashes: Vec<(HashKind, Vec<u8>)>) -> StoreResult<Option<String>>;
    /// Adds PDQ hashes to a named list (duplicates ignored); returns how many were new.
    async fn import_pdq(&self, list: String, hashes: Vec<[u8; 32]>) -> StoreResult<u64>;
    /// PDQ entries stored after position `after` (0 for all), in order, with their
    /// positions: an index loads what it has not seen yet.
    async fn pdq_after(&self, after: i64) -> StoreResult<Vec<(i64, [u8; 32], String)>>;
    /// Flags a member (e.g. a hash list match), with a reason.
    async fn flag_user(&self, user: UserId, reason: String, at: Timestamp) -> StoreResult<()>;
    /// Whether a member is flagged.
    async fn is_flagged(&self, user: UserId) -> StoreResult<bool>;
}

/// Conversations and their members.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates a conversation with its first members. For a direct conversation, records
    /// the pair so [`Self::direct_between`] finds it; `Conflict` if the pair has one.
    async fn create_conversation(&self, conversation: NewConversation) -> StoreResult<()>;
    /// The direct conversation between two users, if any.
    async fn direct_between(&self, a: UserId, b: UserId) -> StoreResult<Option<ConversationId>>;
    /// A conversation by id.
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<ConversationRecord>>;
    /// One member's record, `None` if not a member.
    async fn member(&self, id: ConversationId, user: UserId) -> StoreResult<Option<MemberRecord>>;
    /// All members.
    async fn members(&self, id: ConversationId) -> StoreResult<Vec<MemberRecord>>;
    /// The members' ids, each with whether it is in a block with `sender` (either way):
    /// one read for every send's membership check, blocking rules and fan-out.
    async fn recipients(
        &self,
        id: ConversationId,
        sender: UserId,
    ) -> StoreResult<Vec<(UserId, bool)>>;
    /// Adds a member unless the conversation already has `max_members`.
    async fn add_member(
        &self,
        id: ConversationId,
        user: UserId,
        role: MemberRole,
        at: Timestamp,
        max_members: u32,
    ) -> StoreResult<AddMember>;
    /// Removes a member; `false` if they were not one.
    async fn remove_member(&self, id: ConversationId, user: UserId) -> StoreResult<bool>;
    /// The user's conversations with read position and newest message, most recent first.
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>>;
    /// Moves the user's read position forward to `seq` (clamped to the newest message;
    /// never backwards). Returns the position after the call.
    async fn mark_read(&self, id: ConversationId, user: UserId, seq: u64) -> StoreResult<u64>;
}

/// Messages.
///
/// Security duty: bodies are sealed; a tombstone must destroy the sealed body, not hide it.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends a message, assigning the next sequence number of its conversation, and
    /// returns only once the message is durable (committed and synced). The sender's
    /// read position moves to the new message. If the sender already appended this
    /// `client_id` to this conversation, returns that message instead (`Duplicate`).
    async fn append(&self, message: NewMessage) -> StoreResult<Appended>;
    /// A page of messages, ascending by sequence number.
    async fn messages(
        &self,
        id: ConversationId,
        range: SeqRange,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// One message by sequence number.
    async fn message(&self, id: ConversationId, seq: u64) -> StoreResult<Option<StoredMessage>>;
    /// Deletes a message for everyone: a tombstone is kept and its sealed body destroyed
    /// — unless a preservation hold covers it, in which case the body stays until no hold
    /// does ([`Self::purge_deleted`]). `false` if there is no such message.
    async fn tombstone(&self, id: ConversationId, seq: u64, at: Timestamp) -> StoreResult<bool>;
    /// Destroys the bodies of deleted messages that no hold covers any more (at most
    /// `limit`); returns how many.
    async fn purge_deleted(&self, limit: u32) -> StoreResult<u64>;
    /// Makes what was destroyed unrecoverable from the backend's own files as well: for
    /// SQLite, a checkpoint that truncates the write-ahead log, whose older page images
    /// can still hold a destroyed body (deleted rows themselves are overwritten:
    /// `secure_delete`). `false` if readers kept it from finishing (the next pass tries
    /// again). PostgreSQL's dead row versions are the operator's `VACUUM`'s.
    async fn scrub(&self) -> StoreResult<bool>;
    /// Retention by crypto-shredding, in one commit: for at most `limit` epochs that ended
    /// before the cut-off (`month` and `day`: each scheme's first epoch still kept) and
    /// none of whose messages a hold covers, destroys the epoch's data key and deletes its
    /// messages and attachments. Returns what it destroyed.
    async fn shred_epochs(
        &self,
        month: String,
        day: String,
        limit: u32,
    ) -> StoreResult<Vec<crate::ShreddedEpoch>>;
    /// The first and last sequence numbers of a conversation's messages sent in `period`
    /// (both ends included); `None` if it has none then.
    async fn seq_span(
        &self,
        id: ConversationId,
        period: (Timestamp, Timestamp),
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Signals stored with their messages whose cases are not opened yet, oldest first.
    async fn pending_signals(&self, limit: u32) -> StoreResult<Vec<PendingSignal>>;
    /// Removes a signal from the outbox once its case exists; `false` if it was not there.
    async fn signal_handled(&self, id: ConversationId, seq: u64) -> StoreResult<bool>;
}

/// Wrapped data keys, one per (conversation, epoch).
///
/// Security duty: holds only wrapped keys; losing a row makes its epoch unreadable, so
/// rows are never overwritten.
#[async_trait]
pub trait DekStore: Send + Sync {
    /// The wrapped key of an epoch, if one was stored.
    async fn wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
    ) -> StoreResult<Option<WrappedDek>>;
    /// Stores `dek` unless a key for this epoch exists; returns the key that is stored
    /// (the earlier one if two writers raced).
    async fn put_wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
        dek: WrappedDek,
    ) -> StoreResult<WrappedDek>;

    /// How many things of each kind are sealed under each KEK version.
    async fn kek_usage(&self) -> StoreResult<Vec<KekUsage>>;

    /// Up to `limit` things of `kind` sealed under a KEK version other than `current`,
    /// in the order of their keys, after `after` (the last one of the previous batch).
    async fn kek_sealed_not_under(
        &self,
        kind: KekSealedKind,
        current: u32,
        after: Option<KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<KekSealed>>;

    /// Replaces `old` with `new` if it is still stored exactly as `old` (a
    /// compare-and-swap: a concurrent change wins); whether it did.
    async fn replace_kek_sealed(&self, old: KekSealed, new: WrappedDek) -> StoreResult<bool>;

    /// Records a step of a KEK version's life unless that step of that version is
    /// recorded already; whether it did.
    async fn add_kek_step(&self, step: KekStep) -> StoreResult<bool>;

    /// Every recorded step, oldest first.
    async fn kek_steps(&self) -> StoreResult<Vec<KekStep>>;

    /// Records that the audit entry `index` logs step `kind` of `version`.
    async fn kek_step_logged(&self, kind: KekStepKind, version: u32, index: u64)
    -> StoreResult<()>;
}

/// Rate-limit buckets kept in the store, shared by every node of a deployment, for the
/// limits that must hold however many nodes a client spreads its attempts over (sign-in
/// attempts per account and per address).
///
/// Security duty: each take is one atomic read-modify-write, so concurrent attempts on
/// several nodes cannot spend the same token twice.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Takes one token from bucket `key` under `limit` at `now` (see
    /// [`RateLimit::take`]); `Err(wait)` if none is left.
    async fn take_token(
        &self,
        key: String,
        limit: RateLimit,
        now: Timestamp,
    ) -> StoreResult<Result<(), std::time::Duration>>;
    /// Forgets buckets last used before `before` (full again by then); returns how many.
    async fn forget_buckets(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Liveness of the backend.
#[async_trait]
pub trait Health: Send + Sync {
    /// Succeeds if the backend can serve reads and commit writes (it commits a change to
    /// one row: a full disk fails it).
    async fn ping(&self) -> StoreResult<()>;
}

/// Every store of one backend, as trait objects.
#[derive(Clone)]
pub struct Storage {
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Conversations.
    pub conversations: Arc<dyn ConversationStore>,
    /// Messages.
    pub messages: Arc<dyn MessageStore>,
    /// Wrapped data keys.
    pub deks: Arc<dyn DekStore>,
    /// Health.
    pub health: Arc<dyn Health>,
    /// The transparency log.
    pub log: Arc<dyn LogStore>,
    /// Staff accounts and sessions.
    pub staff: Arc<dyn StaffStore>,
    /// Cases and access requests.
    pub cases: Arc<dyn CaseStore>,
    /// Safety settings, connections, blocks.
    pub safety: Arc<dyn SafetyStore>,
    /// Attachments and hash lists.
    pub attachments: Arc<dyn AttachmentStore>,
    /// Shared rate-limit buckets.
    pub limits: Arc<dyn LimitStore>,
}

impl Storage {
    /// One backend that implements every store.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: AccountStore
            + SessionStore
            + ConversationStore
            + MessageStore
            + LogStore
            + StaffStore
            + CaseStore
            + SafetyStore
            + AttachmentStore
            + DekStore
            + LimitStore
            + Health
            + 'static,
    {
        Self {
            accounts: backend.clone(),
            sessions: backend.clone(),
            conversations: backend.clone(),
            messages: backend.clone(),
            deks: backend.clone(),
            health: backend.clone(),
            staff: backend.clone(),
            cases: backend.clone(),
            safety: backend.clone(),
            attachments: backend.clone(),
            limits: backend.clone(),
            log: backend,
        }
    }
}

/// Told about every durable commit a backend makes, for metrics.
pub trait CommitObserver: Send + Sync {
    /// `operations` writes shared one commit, which took `elapsed` including the sync to disk.
    fn committed(&self, operations: usize, elapsed: std::time::Duration);
}

/// A [`CommitObserver`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl CommitObserver for NoObserver {
    fn committed(&self, _: usize, _: std::time::Duration) {}
}

/// The transparency log's entries, leaf hashes and completed tile-level hashes, and beside
/// each entry its full record.
///
/// A store keeps what it is given and computes nothing: which tile-level hashes an append
/// completes, roots and proofs are computed once, above this seam, by `custodia-audit`'s
/// `LogTree`. Security duty: append-only. An index once written is never reused or lost;
/// entries, records and hashes are never updated or deleted; an append lands only at the
/// end the caller saw. Entries are public (served to auditors); a record names the subjects
/// an entry only pseudonymizes and must be served to nobody but an authorized auditor.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends `entries` (with their records and leaf hashes) at index `at`, and the
    /// tile-level hashes they complete, in one durable commit. `Conflict` unless the log
    /// has exactly `at` entries, so appenders on several nodes cannot interleave.
    async fn append_entries(
        &self,
        at: u64,
        entries: Vec<LogAppend>,
        completed: Vec<TileHash>,
    ) -> StoreResult<()>;
    /// The full record kept beside entry `index`.
    async fn log_record(&self, index: u64) -> StoreResult<Option<Vec<u8>>>;
    /// The number of entries.
    async fn log_size(&self) -> StoreResult<u64>;
    /// Entries `[start, start + count)` (fewer if the log is shorter).
    async fn log_entries(&self, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>>;
    /// The stored hashes of each range, in one query (tile level 0: leaf hashes); each
    /// answer holds the hashes of its range that exist, in order (fewer if absent).
    async fn log_hashes(
        &self,
        ranges: Vec<HashRange>,
    ) -> StoreResult<Vec<Vec<custodia_tlog::Hash>>>;
    /// The last checkpoint the log signed: its size and signed note.
    async fn last_checkpoint(&self) -> StoreResult<Option<(u64, String)>>;
    /// Records a newly signed checkpoint; `Conflict` unless the last one recorded still has
    /// size `previous` (`None`: none yet), so two signers cannot both advance it.
    async fn save_checkpoint(
        &self,
        previous: Option<u64>,
        size: u64,
        note: String,
    ) -> StoreResult<()>;
}
