//! The records stores keep. None of them holds plaintext.

use std::fmt;

use custodia_core::{
    AccessNoticeId, AttachmentId, BirthDate, CaseId, CaseKind, ClientMsgId, ConversationId,
    ConversationKind, Country, DataCategory, DataTier, Epoch, HoldEnd, HoldId, LegalOutcome,
    LegalProcessType, LegalRequestId, MemberRole, MessageId, ReasonCode, RejectionReason,
    ReportCategory, RequestId, RequestStatus, SessionId, StaffChangeId, StaffChangeKind,
    StaffChangeStatus, StaffId, StaffRole, Timestamp, UserId, Username,
};

/// A message body after sealing: opaque bytes only the key service can open.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBody(pub Vec<u8>);

impl fmt::Debug for SealedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedBody(<{} bytes>)", self.0.len())
    }
}

/// A staff member's TOTP secret, sealed by a key-encryption key of the given version and
/// bound to the staff id. Only the key service can open it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTotp {
    /// Which KEK version sealed it.
    pub kek_version: u32,
    /// The sealed secret.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for SealedTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedTotp")
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

/// A data key wrapped by a key-encryption key of the given version.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek {
    /// Which KEK version wrapped it.
    pub kek_version: u32,
    /// The wrapped key bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedDek")
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a session token; the token itself is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A user account, as created and as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Name.
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Date of birth.
    pub birth_date: BirthDate,
    /// When the account was created.
    pub created_at: Timestamp,
    /// When its member closed it (`DELETE /v1/me`), if they did.
    pub closed_at: Option<Timestamp>,
}

/// What closing an account did (in one commit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountClosure {
    /// The messages it sent that became deleted for everyone, by conversation and number.
    pub deleted: Vec<(ConversationId, u64)>,
    /// Of its deleted messages, those whose sealed bodies a preservation hold keeps until
    /// it ends (destroyed then, as any deleted message's).
    pub kept: u64,
    /// Attachments it uploaded that were destroyed (a held or case-preserved one stays).
    pub attachments: u64,
    /// The conversations it was a member of (it is not any more).
    pub conversations: Vec<ConversationId>,
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Id (shown to the user to revoke it).
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// Hash of the bearer token.
    pub token_hash: TokenHash,
    /// A label the client gave, e.g. "laptop".
    pub device: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A conversation to create, with its first members.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// New id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title.
    pub title: Option<String>,
    /// Creator.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// First members with their roles.
    pub members: Vec<(UserId, MemberRole)>,
}

/// A stored conversation.
#[derive(Debug, Clone)]
pub struct ConversationRecord {
    /// Id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title.
    pub title: Option<String>,
    /// Creator.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// Sequence number of the newest message (0 when none).
    pub last_seq: u64,
}

/// A member of a conversation.
#[derive(Debug, Clone)]
pub struct MemberRecord {
    /// Who.
    pub user_id: UserId,
    /// Their name.
    pub username: Username,
    /// Their role.
    pub role: MemberRole,
    /// The highest sequence number they have read.
    pub read_seq: u64,
    /// When they joined.
    pub joined_at: Timestamp,
}

/// Outcome of adding a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMember {
    /// Added.
    Added,
    /// Was a member already.
    AlreadyMember,
    /// The conversation has reached the member limit.
    Full,
}

/// One line of "my conversations".
#[derive(Debug, Clone)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: ConversationRecord,
    /// The caller's read position.
    pub read_seq: u64,
    /// The newest message, if any.
    pub last_message: Option<StoredMessage>,
    /// Member count.
    pub member_count: u32,
}

/// A message to append; the store assigns its sequence number.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Server-assigned id (bound into the seal).
    pub id: MessageId,
    /// Where.
    pub conversation_id: ConversationId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The sender's idempotency key.
    pub client_id: ClientMsgId,
    /// Server time of acceptance.
    pub sent_at: Timestamp,
    /// Key epoch of the seal.
    pub epoch: Epoch,
    /// Sealed body.
    pub sealed: SealedBody,
    /// Its franking.
    pub franking: Franking,
    /// A text-rule signal it raised: stored in the same commit as the message (the
    /// outbox), so no signal is lost to a crash or a failed case opening.
    pub signal: Option<FlaggedSignal>,
}

/// What the text rules found in a message (names, category, score; never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedSignal {
    /// The matching rules' names.
    pub rules: Vec<String>,
    /// The category of the highest-scoring rule.
    pub category: ReportCategory,
    /// The summed score.
    pub score: u32,
}

impl FlaggedSignal {
    /// The stored form of the rule names (shared by the backends).
    pub fn rules_text(&self) -> String {
        self.rules.join("\u{1f}")
    }

    /// The rule names from [`FlaggedSignal::rules_text`].
    pub fn rules_from_text(text: &str) -> Vec<String> {
        if text.is_empty() {
            Vec::new()
        } else {
            text.split('\u{1f}').map(str::to_owned).collect()
        }
    }
}

/// A signal waiting in the outbox for its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignal {
    /// The conversation of the flagged message.
    pub conversation_id: ConversationId,
    /// The flagged message.
    pub seq: u64,
    /// What was found.
    pub signal: FlaggedSignal,
}

/// A message's franking: a commitment to its plaintext and the server's tag over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Franking {
    /// HMAC-SHA-256 of the plaintext under the message's franking key.
    pub commitment: [u8; 32],
    /// The server's tag binding the commitment to sender, conversation, time and id.
    pub tag: Vec<u8>,
}

/// A stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Id.
    pub id: MessageId,
    /// Where.
    pub conversation_id: ConversationId,
    /// Position in the conversation, from 1, without gaps.
    pub seq: u64,
    /// Sender.
    pub sender_id: UserId,
    /// The sender's idempotency key.
    pub client_id: ClientMsgId,
    /// Server time of acceptance.
    pub sent_at: Timestamp,
    /// Key epoch of the seal.
    pub epoch: Epoch,
    /// Sealed body; `None` once deleted for everyone.
    pub sealed: Option<SealedBody>,
    /// When it was deleted for everyone.
    pub deleted_at: Option<Timestamp>,
    /// Its franking (`None` for messages stored before franking existed).
    pub franking: Option<Franking>,
}

/// Outcome of an append.
#[derive(Debug, Clone)]
pub enum Appended {
    /// Stored now, durably.
    New(StoredMessage),
    /// The same sender had already sent this client id here; the earlier message.
    Duplicate(StoredMessage),
}

impl Appended {
    /// The message, new or earlier.
    pub fn message(&self) -> &StoredMessage {
        match self {
            Self::New(m) | Self::Duplicate(m) => m,
        }
    }
}

/// Which messages of a conversation to page through; results are always in ascending
/// sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRange {
    /// The oldest messages with `seq > n`.
    After(u64),
    /// The newest messages with `seq < n`.
    Before(u64),
}

/// One transparency log append: the public entry (the leaf) and the full record kept
/// beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppend {
    /// The entry, as hashed into the tree and served to auditors.
    pub entry: Vec<u8>,
    /// The full record (subjects named, not pseudonymized), for authorized auditors only.
    pub record: Vec<u8>,
    /// The entry's RFC 6962 leaf hash.
    pub leaf: custodia_tlog::Hash,
}

impl LogAppend {
    /// An append of `entry` with its `record`, and the entry's leaf hash.
    pub fn new(entry: Vec<u8>, record: Vec<u8>) -> Self {
        Self {
            leaf: custodia_tlog::leaf_hash(&entry),
            entry,
            record,
        }
    }
}

/// A notice to a member that staff read messages of theirs: who (by role, never by
/// name), why, how many, and where in the audit log. The member's own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessNoticeRecord {
    /// Id.
    pub id: AccessNoticeId,
    /// The member told.
    pub user_id: UserId,
    /// Where the messages are.
    pub conversation_id: ConversationId,
    /// When staff read them.
    pub read_at: Timestamp,
    /// The reader's role.
    pub role: StaffRole,
    /// The reason code of the grant.
    pub reason: ReasonCode,
    /// The case the grant belongs to.
    pub case_id: CaseId,
    /// How many messages were read.
    pub messages: u32,
    /// When the first and the last of them were sent.
    pub span: (Timestamp, Timestamp),
    /// The read's entry in the audit log.
    pub log_index: u64,
    /// The signed checkpoint the entry is proved against (with cosignatures).
    pub checkpoint: String,
    /// The entry's inclusion proof in that checkpoint's tree (32-byte hashes, in order).
    pub proof: Vec<[u8; 32]>,
    /// Deferred under a non-disclosure order until this time: the member does not see the
    /// notice before it is released. `None`: told at once.
    pub deferred_until: Option<Timestamp>,
    /// Deferred until the second review of this emergency request: released when it is
    /// decided. `None`: not deferred for a review.
    pub deferred_review: Option<RequestId>,
    /// When a deferred notice was released to the member.
    pub released_at: Option<Timestamp>,
}

/// Which deferred access notices to release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeRelease {
    /// Those whose non-disclosure order has ended by the release's time.
    Due,
    /// Those held for this emergency request's second review (it was decided).
    Review(RequestId),
}

/// A hash of tile level `level` ≥ 1 at `index`: the root of the 256 hashes of the level
/// below starting at `index * 256`, stored once they are all there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileHash {
    /// The tile level (1 and up; level 0 is the leaf hashes).
    pub level: u8,
    /// The hash's index at its level.
    pub index: u64,
    /// The hash.
    pub hash: custodia_tlog::Hash,
}

/// Hashes `[start, start + count)` of one tile level (0: leaf hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashRange {
    /// The tile level.
    pub level: u8,
    /// The first hash's index at its level.
    pub start: u64,
    /// How many.
    pub count: u64,
}

/// A staff member's account.
#[derive(Debug, Clone)]
pub struct StaffRecord {
    /// Id.
    pub id: StaffId,
    /// Sign-in name.
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The second factor's secret, sealed.
    pub totp: SealedTotp,
    /// The one role held.
    pub role: StaffRole,
    /// Whether the account may sign in.
    pub active: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its current role took effect (new staff decide nothing for a while).
    pub role_since: Timestamp,
    /// Everyone who proposed or approved its creation or a change of its role: none of
    /// them may approve its access requests.
    pub sponsors: Vec<StaffId>,
    /// Set until its member has enrolled (chosen a password, received a TOTP secret);
    /// meanwhile `password_hash` and `totp` are empty and it cannot sign in.
    pub enrolment: Option<StaffEnrolment>,
}

/// The stored form of a sponsor list, shared by the backends: ids separated by spaces.
pub fn sponsors_to_text(sponsors: &[StaffId]) -> String {
    sponsors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses [`sponsors_to_text`]; `None` if any id is malformed.
pub fn sponsors_from_text(text: &str) -> Option<Vec<StaffId>> {
    text.split_whitespace().map(|s| s.parse().ok()).collect()
}

/// A pending self-enrolment: the hash of a one-time code handed to the new member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEnrolment {
    /// SHA-256 of the enrolment code.
    pub code_hash: TokenHash,
    /// When the code stops working.
    pub expires_at: Timestamp,
}

/// A proposed change to the staff, which takes effect only once a second person
/// approves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffChangeRecord {
    /// Id.
    pub id: StaffChangeId,
    /// A new account or a change to one.
    pub kind: StaffChangeKind,
    /// The account (for `Create`, the id it will have).
    pub staff_id: StaffId,
    /// Its sign-in name.
    pub username: Username,
    /// The role it will hold.
    pub role: StaffRole,
    /// Whether it will be active.
    pub active: bool,
    /// Who proposed it.
    pub proposed_by: StaffId,
    /// When.
    pub proposed_at: Timestamp,
    /// Where it stands (as stored; expiry is applied by the reader).
    pub status: StaffChangeStatus,
    /// Who decided it (none for a deactivation, applied at once).
    pub decided_by: Option<StaffId>,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

/// What an approved staff change does, applied in the same commit as the decision.
#[derive(Debug, Clone)]
pub enum StaffEffect {
    /// Creates this (not yet enrolled) account.
    Create(StaffRecord),
    /// Sets an account's role, activity, sponsors and role start (deactivation ends its
    /// sessions).
    Update {
        /// The account.
        id: StaffId,
        /// Its role from now on.
        role: StaffRole,
        /// Whether it may sign in.
        active: bool,
        /// Its sponsors from now on.
        sponsors: Vec<StaffId>,
        /// When its role took effect.
        role_since: Timestamp,
    },
}

/// A signed-in staff session.
#[derive(Debug, Clone)]
pub struct StaffSessionRecord {
    /// Id.
    pub id: SessionId,
    /// Whose.
    pub staff_id: StaffId,
    /// Hash of the bearer token.
    pub token_hash: TokenHash,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A case: what staff may ask access for. Holds no message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// Id.
    pub id: CaseId,
    /// Report or legal.
    pub kind: CaseKind,
    /// The conversation concerned.
    pub conversation_id: ConversationId,
    /// The reporting member (report cases).
    pub reporter: Option<UserId>,
    /// The report's category (report cases).
    pub category: Option<ReportCategory>,
    /// The reporter's comment, sealed by the key service (report cases).
    pub comment: Option<SealedBody>,
    /// The reported messages (report cases), ascending.
    pub reported: Vec<u64>,
    /// What the reporter handed over for each reported message, and whether it checked
    /// out against the message's franking.
    pub evidence: Vec<EvidenceRecord>,
    /// The first and last sequence number the case covers: for a report, the reported
    /// messages and up to K before them; for a legal case, what the request names.
    pub scope: (u64, u64),
    /// The legal process's reference (legal cases).
    pub reference: Option<String>,
    /// The staff member who opened it (legal cases).
    pub opened_by: Option<StaffId>,
    /// A legal case's non-disclosure order: until when the affected members may not be
    /// told (their access notices wait until then). `None`: no order.
    pub nondisclosure_until: Option<Timestamp>,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// How urgently it is handled (the queue lists high first, then the oldest).
    pub priority: custodia_core::CasePriority,
    /// The files it preserved (a hash-list match): only a grant for its evidence opens
    /// them.
    pub files: Vec<AttachmentId>,
}

/// A reported message as its reporter disclosed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// Its sequence number.
    pub seq: u64,
    /// Its sender (from the stored message).
    pub sender: UserId,
    /// When it was sent (from the stored message).
    pub sent_at: Timestamp,
    /// The text the reporter gave, sealed by the key service; `None` if they gave none.
    pub claimed: Option<SealedBody>,
    /// Whether the text and franking key matched the stored commitment and server tag.
    pub verified: bool,
}

/// One approver's decision on an access request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    /// Who decided.
    pub staff_id: StaffId,
    /// In which role.
    pub role: StaffRole,
    /// Approve or deny.
    pub approve: bool,
    /// Why.
    pub justification: String,
    /// When.
    pub at: Timestamp,
    /// The audit log entry recording it (its leaf commits to the request's digest).
    pub log_index: u64,
}

/// An access request, and the grant it becomes once approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequestRecord {
    /// Id (also the grant's).
    pub id: RequestId,
    /// The case it serves.
    pub case_id: CaseId,
    /// Who asked (and who may read once approved).
    pub requester: StaffId,
    /// The requester's role when asking.
    pub requester_role: StaffRole,
    /// Why.
    pub reason: ReasonCode,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// First and last sequence number covered.
    pub seqs: (u64, u64),
    /// Metadata or content.
    pub tier: DataTier,
    /// How long the grant lasts once approved, in milliseconds.
    pub duration_ms: i64,
    /// The requester's justification.
    pub justification: String,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When it expires if not decided.
    pub pending_until: Timestamp,
    /// Flagged as broad (needs one more approval).
    pub broad: bool,
    /// Approvals needed.
    pub required: u8,
    /// Who may approve: frozen when the request was made (a set, read back in id order).
    pub approvers: Vec<StaffId>,
    /// Stored state (expiry is derived from the clock by the service).
    pub status: RequestStatus,
    /// The decisions, in order.
    pub decisions: Vec<DecisionRecord>,
    /// The grant's window, once approved.
    pub granted: Option<(Timestamp, Timestamp)>,
}

/// A connection between two members (mutual once accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// Who asked.
    pub requested_by: UserId,
    /// Who was asked.
    pub other: UserId,
    /// Whether the other accepted (by asking back).
    pub accepted: bool,
    /// When it last changed.
    pub at: Timestamp,
}

/// An attachment as stored: sealed under its own key, itself sealed under the
/// conversation's epoch key, with a commitment to that key.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    /// Id.
    pub id: AttachmentId,
    /// The conversation it was uploaded to.
    pub conversation_id: ConversationId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The key epoch of its key's seal.
    pub epoch: Epoch,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The content type sniffed from its bytes.
    pub content_type: String,
    /// The file key, sealed under the epoch DEK.
    pub sealed_key: Vec<u8>,
    /// SHA-256 commitment to the file key (makes the encryption key-committing).
    pub key_commitment: [u8; 32],
    /// The sealed file.
    pub blob: Vec<u8>,
    /// When it was uploaded.
    pub created_at: Timestamp,
    /// Kept as evidence (it matched a hash list): never delivered, never expired.
    pub preserved: bool,
}

impl fmt::Debug for AttachmentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentRecord")
            .field("id", &self.id)
            .field("conversation_id", &self.conversation_id)
            .field("size", &self.size)
            .field("preserved", &self.preserved)
            .finish_non_exhaustive()
    }
}

/// Which hash a hash list entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashKind {
    /// SHA-256 of the file.
    Sha256,
    /// MD5 of the file.
    Md5,
}

impl HashKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Md5 => "md5",
        }
    }
}

/// One epoch destroyed by retention: its key, its messages and its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShreddedEpoch {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The epoch.
    pub epoch: Epoch,
    /// Messages deleted.
    pub messages: u64,
    /// Attachments deleted.
    pub attachments: u64,
}

/// A legal request as received from an agency (the intake), and its review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalRequestRecord {
    /// Id.
    pub id: LegalRequestId,
    /// Its number, given by the store when it is stored (the `LR-YYYY-NNNNNN` reference);
    /// 0 before.
    pub number: u64,
    /// The agency that served it.
    pub agency: Agency,
    /// The officer who served it.
    pub officer: Officer,
    /// The kind of process.
    pub process: LegalProcessType,
    /// The issuing court, if any.
    pub court: Option<String>,
    /// The accounts it names, by unique identifier.
    pub targets: Vec<LegalTarget>,
    /// The data it asks for.
    pub categories: Vec<DataCategory>,
    /// The period it covers.
    pub period: (Timestamp, Timestamp),
    /// A non-disclosure order that comes with it.
    pub nondisclosure: Option<NondisclosureOrder>,
    /// For an emergency request: the facts of the imminent risk.
    pub emergency_basis: Option<String>,
    /// The legal officer who entered it.
    pub received_by: StaffId,
    /// When.
    pub received_at: Timestamp,
    /// How it was answered, once reviewed.
    pub review: Option<LegalReview>,
    /// The audit log entry of its intake (`legal.received`); `None` for requests stored
    /// before entries were kept with them.
    pub received_log_index: Option<u64>,
    /// The documents served with it (stored sealed apart; see
    /// `CaseStore::legal_document`).
    pub documents: Vec<ServedDocument>,
    /// For the legal process that follows an emergency request: that request.
    pub follows_up: Option<LegalRequestId>,
}

/// A document served with a legal request: what it is and its SHA-256 (the document
/// itself is stored sealed, apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedDocument {
    /// Its file name as served.
    pub name: String,
    /// Its media type, e.g. `application/pdf`.
    pub media_type: String,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Its size in bytes.
    pub size: u64,
}

/// The agency that served a legal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Its name.
    pub name: String,
    /// Its country.
    pub country: Country,
    /// Its state, province or region, if any.
    pub subdivision: Option<String>,
}

/// The officer who served a legal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    /// Name.
    pub name: String,
    /// Badge number or other official id.
    pub badge: String,
    /// Official e-mail address.
    pub email: String,
    /// Whether the e-mail's domain is on the deployment's list of verified agency
    /// domains.
    pub domain_verified: bool,
}

/// An account a legal request names: as the agency gave it (a username or an account
/// id), and the account it resolved to at intake, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalTarget {
    /// As given: `username:NAME` or `account:UUID`.
    pub given: String,
    /// The account it names, if one exists.
    pub account: Option<UserId>,
}

/// A non-disclosure order: who issued it and until when (none: until lifted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NondisclosureOrder {
    /// The issuing authority.
    pub authority: String,
    /// When it ends, if it says.
    pub until: Option<Timestamp>,
}

/// How a legal request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalReview {
    /// Full, partial or rejected.
    pub outcome: LegalOutcome,
    /// Why it was rejected.
    pub reason: Option<RejectionReason>,
    /// How a partial acceptance narrowed it.
    pub narrowing: Option<String>,
    /// The data categories accepted (none when rejected).
    pub accepted: Vec<DataCategory>,
    /// Who reviewed it.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
    /// The audit log entry of the review (`legal.reviewed`); `None` for reviews stored
    /// before entries were kept with them.
    pub log_index: Option<u64>,
}

/// A preservation hold: an account's conversations over a period, frozen (nothing in them
/// is destroyed while it holds). It grants no access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    /// Id.
    pub id: HoldId,
    /// The legal request it was placed for.
    pub legal_request: LegalRequestId,
    /// The account held.
    pub account: UserId,
    /// Its conversations when the hold was placed.
    pub conversations: Vec<ConversationId>,
    /// The messages held: those sent in this period.
    pub period: (Timestamp, Timestamp),
    /// Who placed it.
    pub placed_by: StaffId,
    /// When.
    pub placed_at: Timestamp,
    /// When it ends unless released sooner.
    pub expires_at: Timestamp,
    /// Whether it was extended (once only).
    pub extended: bool,
    /// When and how it ended.
    pub ended: Option<(Timestamp, HoldEnd)>,
}

/// Where one thing sealed directly under a key-encryption key is kept: what KEK rotation
/// rewraps, and what retiring a KEK version must find none of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekItem {
    /// A conversation epoch's data key (`deks`).
    Dek {
        /// The conversation.
        conversation: ConversationId,
        /// The epoch.
        epoch: Epoch,
    },
    /// A staff member's TOTP secret.
    Totp {
        /// The staff member.
        staff: StaffId,
    },
    /// A reporter's comment on a case.
    CaseComment {
        /// The case.
        case: CaseId,
    },
    /// A reported message's text as the reporter gave it.
    Evidence {
        /// The case.
        case: CaseId,
        /// The message's sequence number.
        seq: u64,
    },
    /// A document served with a legal request.
    Document {
        /// The request.
        request: LegalRequestId,
        /// Its position among the request's documents.
        position: u32,
    },
}

impl KekItem {
    /// Its kind.
    pub fn kind(&self) -> KekSealedKind {
        match self {
            Self::Dek { .. } => KekSealedKind::Dek,
            Self::Totp { .. } => KekSealedKind::Totp,
            Self::CaseComment { .. } => KekSealedKind::CaseComment,
            Self::Evidence { .. } => KekSealedKind::Evidence,
            Self::Document { .. } => KekSealedKind::Document,
        }
    }
}

/// The kinds of things sealed directly under a KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KekSealedKind {
    /// Conversation data keys: nearly all of them.
    Dek,
    /// Staff TOTP secrets.
    Totp,
    /// Reporters' comments.
    CaseComment,
    /// Reported messages' texts.
    Evidence,
    /// Documents served with legal requests.
    Document,
}

impl KekSealedKind {
    /// Every kind, data keys first.
    pub const ALL: [Self; 5] = [
        Self::Dek,
        Self::Totp,
        Self::CaseComment,
        Self::Evidence,
        Self::Document,
    ];

    /// Its name in progress reports and log entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dek => "data keys",
            Self::Totp => "staff TOTP secrets",
            Self::CaseComment => "case comments",
            Self::Evidence => "reported texts",
            Self::Document => "served documents",
        }
    }
}

/// One thing sealed directly under a KEK, as stored. For the kinds stored with their
/// version in front of the bytes (case texts, documents), `sealed.bytes` is the whole
/// stored value, version included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekSealed {
    /// Where it is kept.
    pub item: KekItem,
    /// The KEK version and the sealed bytes.
    pub sealed: WrappedDek,
}

/// How many things of one kind are sealed under one KEK version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekUsage {
    /// The kind.
    pub kind: KekSealedKind,
    /// The KEK version.
    pub version: u32,
    /// How many.
    pub count: u64,
}

/// A step of a KEK's life, recorded by the operator's tool or by the rotation, and
/// logged by a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KekStepKind {
    /// The operator made the version current (`custodia admin keys rotate`).
    Rotated,
    /// Nothing sealed under an older version remains: every item was rewrapped.
    Rewrapped,
    /// The operator destroyed the version (`custodia admin keys retire`).
    Retired,
}

impl KekStepKind {
    /// Its stored and logged name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Rewrapped => "rewrapped",
            Self::Retired => "retired",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Rotated, Self::Rewrapped, Self::Retired]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One recorded step of a KEK version's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekStep {
    /// What happened.
    pub kind: KekStepKind,
    /// To which version.
    pub version: u32,
    /// When.
    pub at: Timestamp,
    /// Counts, as `name=value` words (no key material, no content).
    pub detail: String,
    /// The audit entry that records it, once a server logged it.
    pub log_index: Option<u64>,
}
