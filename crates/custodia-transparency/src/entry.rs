//! Audit events and their canonical encoding.
//!
//! An [`AuditEvent`] is encoded twice: as the public **entry** (the log leaf, served to
//! anyone), in which every subject appears only as a tag that nobody without that
//! subject's key can recognise, and as the full **record** kept beside it, in which
//! subjects are named. Neither ever holds message content.
//!
//! Encoding, version 2 (all integers big-endian; `str` = u16 length then UTF-8 bytes):
//!
//! ```text
//! u8   form          0x02 entry, 0x82 record
//! [16] salt          entry only: this entry's salt (see below)
//! str  kind          e.g. "access.read"
//! i64  time          milliseconds since the Unix epoch
//! u8   has_actor     0 or 1, then: str staff id, str role
//! u8   has_reason    0 or 1, then: str reason code
//! u8   has_case      0 or 1, then: str case reference
//! u16  subjects      then each: u8 kind (1 user, 2 conversation; record: 3 a member
//!                    whose notice is withheld), and
//!                    entry: 32-byte tag | record: 16-byte id
//! u16  scope fields  then each: str name, str value
//! ```
//!
//! **Tags.** Each subject has a *subject key*, `HMAC-SHA-256(deployment key, label ||
//! kind || id)`; in an entry it appears as `HMAC-SHA-256(subject key, salt)`, where the salt
//! is `HMAC-SHA-256(deployment key, "custodia/salt/v2" || record)[..16]`: different for
//! every event, unpredictable without the deployment key, and fixed by the event (one event
//! has one entry). A member's client holds that member's subject key ([`TagKey`]) and
//! recognises the entries about them; to anyone else two tags of one member are unrelated
//! random strings. A member whose notice is withheld (a non-disclosure order, an emergency
//! before its review) appears under a key nobody is given, so the entry shows a user tag
//! that neither they nor anyone else can recognise; when the notice is released, a
//! `notice.released` entry names that entry with the member's ordinary tag.
//!
//! The encoding is canonical: one event has exactly one encoding, and decoding refuses
//! trailing bytes, unknown forms and kinds, and invalid UTF-8.

use std::fmt;

use custodia_core::{ConversationId, Timestamp, UserId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const FORM_ENTRY: u8 = 0x02;
const FORM_RECORD: u8 = 0x82;
const TAG_USER: u8 = 1;
const TAG_CONVERSATION: u8 = 2;
const TAG_WITHHELD: u8 = 3;
/// The length of an entry's salt.
pub const SALT_BYTES: usize = 16;

/// What happened. The log's vocabulary; new kinds are added, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// Staff read content or metadata within a grant.
    AccessRead,
    /// A staff read was refused.
    AccessDenied,
    /// An access request was made.
    RequestCreated,
    /// An access request was approved or denied.
    Decision,
    /// A grant was revoked.
    GrantRevoked,
    /// A staff account or role changed.
    StaffChanged,
    /// A staff member signed in.
    StaffSignIn,
    /// A key-encryption key was rotated.
    KeyRotated,
    /// A preservation hold was placed.
    HoldPlaced,
    /// A case was opened.
    CaseOpened,
    /// An earlier entry's action did not happen: its entry was stored, but the log could
    /// not confirm it (no witnessed checkpoint), so the action was refused. Scope: the
    /// abandoned `entry` index and `why`.
    ActionAbandoned,
    /// A legal officer recorded a non-disclosure order's extension (scope: the case's new
    /// end and the SHA-256 of the order's document).
    OrderExtended,
    /// The withheld access notices of an earlier `access.read` were released to their
    /// members. Subjects: those members (findable by them); scope: the read's `entry` index.
    NoticeReleased,
    /// A legal officer entered a legal request as served (scope: process, country,
    /// accounts named, data categories, non-disclosure order, verified agency domain; the
    /// accounts are withheld subjects).
    LegalReceived,
    /// A legal request was reviewed (scope: outcome, rejection reason, categories accepted).
    LegalReviewed,
    /// A preservation hold was extended (once; scope: the hold, its new end).
    HoldExtended,
    /// A legal officer released a preservation hold (scope: the hold).
    HoldReleased,
    /// A preservation hold's time ran out (scope: the hold).
    HoldExpired,
    /// A legal officer recorded that a case's non-disclosure order was lifted (scope: the
    /// SHA-256 of the lifting document); its deferred notices are released.
    OrderLifted,
    /// A legal officer built a disclosure package for a legal request, after its reads
    /// (scope: the grants read, and `records`: the SHA-256 of each record file).
    DisclosureBuilt,
    /// A disclosure package was handed over, encrypted (scope: the SHA-256 of the
    /// encrypted package and the recipient's age key).
    DisclosureDelivered,
    /// The daily retention run destroyed the keys of the epochs past retention (scope: the
    /// cut-off, how many epochs, messages and attachments, and the epochs' labels; no
    /// conversation and no content).
    RetentionApplied,
    /// A member closed their account (scope: how many of their messages were deleted for
    /// everyone, how many bodies a hold keeps until it ends, and attachments destroyed; no
    /// subject: the account is gone).
    AccountClosed,
    /// A member exported their own data (`GET /v1/me/export`); the subject is them, so
    /// their own scan of the log finds it.
    SelfExport,
}

impl EventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EventKind; 24] = [
        Self::AccessRead,
        Self::AccessDenied,
        Self::RequestCreated,
        Self::Decision,
        Self::GrantRevoked,
        Self::StaffChanged,
        Self::StaffSignIn,
        Self::KeyRotated,
        Self::HoldPlaced,
        Self::CaseOpened,
        Self::ActionAbandoned,
        Self::OrderExtended,
        Self::NoticeReleased,
        Self::LegalReceived,
        Self::LegalReviewed,
        Self::HoldExtended,
        Self::HoldReleased,
        Self::HoldExpired,
        Self::OrderLifted,
        Self::DisclosureBuilt,
        Self::DisclosureDelivered,
        Self::RetentionApplied,
        Self::AccountClosed,
        Self::SelfExport,
    ];

    /// The kind's name in the log, e.g. `access.read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessRead => "access.read",
            Self::AccessDenied => "access.denied",
            Self::RequestCreated => "request.created",
            Self::Decision => "decision",
            Self::GrantRevoked => "grant.revoked",
            Self::StaffChanged => "staff.changed",
            Self::StaffSignIn => "staff.signin",
            Self::KeyRotated => "key.rotated",
            Self::HoldPlaced => "hold.placed",
            Self::CaseOpened => "case.opened",
            Self::ActionAbandoned => "action.abandoned",
            Self::OrderExtended => "order.extended",
            Self::NoticeReleased => "notice.released",
            Self::LegalReceived => "legal.received",
            Self::LegalReviewed => "legal.reviewed",
            Self::HoldExtended => "hold.extended",
            Self::HoldReleased => "hold.released",
            Self::HoldExpired => "hold.expired",
            Self::OrderLifted => "order.lifted",
            Self::DisclosureBuilt => "disclosure.built",
            Self::DisclosureDelivered => "disclosure.delivered",
            Self::RetentionApplied => "retention.applied",
            Self::AccountClosed => "account.closed",
            Self::SelfExport => "export.self",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who caused the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The staff member's id (staff are accountable by name; they are not pseudonymized).
    pub staff_id: String,
    /// The role they acted in.
    pub role: String,
}

/// Whom or what the event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// A user account.
    User(UserId),
    /// A conversation.
    Conversation(ConversationId),
    /// A member whose access notice is withheld for now: in the entry, a user tag under a
    /// key nobody is given (see the module docs).
    Withheld(UserId),
}

impl Subject {
    fn tag(&self) -> u8 {
        match self {
            Self::User(_) => TAG_USER,
            Self::Conversation(_) => TAG_CONVERSATION,
            Self::Withheld(_) => TAG_WITHHELD,
        }
    }

    /// How the subject shows in an entry: a withheld member is a user like any other.
    fn public_tag(&self) -> u8 {
        match self {
            Self::Conversation(_) => TAG_CONVERSATION,
            Self::User(_) | Self::Withheld(_) => TAG_USER,
        }
    }

    fn id(&self) -> &[u8; 16] {
        match self {
            Self::User(u) | Self::Withheld(u) => u.as_bytes(),
            Self::Conversation(c) => c.as_bytes(),
        }
    }
}

/// One thing that happened, as the log records it: with subjects named ([`AuditEvent`]) or
/// as an entry shows it, with tags ([`EntryView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<S> {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub time: Timestamp,
    /// Who did it (none for the system itself).
    pub actor: Option<Actor>,
    /// The reason code it was done under.
    pub reason: Option<String>,
    /// The case it belongs to.
    pub case: Option<String>,
    /// Whom or what it concerns.
    pub subjects: Vec<S>,
    /// Its scope: named values such as `tier`, `epochs`, `messages`.
    pub scope: Vec<(String, String)>,
}

/// An event with its subjects named: what is appended, and the full record.
pub type AuditEvent = Event<Subject>;

/// A decoded public entry: its salt, and the event with tags in place of subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// The entry's salt, under which its subjects' tags were made.
    pub salt: [u8; SALT_BYTES],
    /// The event, subjects as tags.
    pub event: Event<Pseudonym>,
}

/// The deployment's key from which every subject's key, and every entry's salt, derive.
/// Secret: with it, anyone could test whether a given user appears in the log.
pub struct PseudonymKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey").finish_non_exhaustive()
    }
}

impl PseudonymKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key of `subject`, under which its tags in entries are made:
    /// HMAC-SHA-256(key, "custodia/subject/v2" || kind || id).
    pub fn subject_key(&self, subject: &Subject) -> TagKey {
        TagKey(Zeroizing::new(hmac(
            &self.0[..],
            &[b"custodia/subject/v2", &[subject.tag()], subject.id()],
        )))
    }

    /// A member's key: what their client needs to recognise the entries about them.
    pub fn member_key(&self, user: UserId) -> TagKey {
        self.subject_key(&Subject::User(user))
    }

    /// The salt of the entry whose record is `record`.
    fn salt(&self, record: &[u8]) -> [u8; SALT_BYTES] {
        let mac = hmac(&self.0[..], &[b"custodia/salt/v2", record]);
        let mut salt = [0; SALT_BYTES];
        salt.copy_from_slice(&mac[..SALT_BYTES]);
        salt
    }
}

/// One subject's key: its tag in an entry is HMAC-SHA-256(key, the entry's salt). A member
/// receives their own, and nobody else's.
pub struct TagKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagKey").finish_non_exhaustive()
    }
}

impl TagKey {
    /// A key from its 32 bytes (as a member's client receives it).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key's bytes, to hand to its member.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The subject's tag in an entry with `salt`.
    pub fn tag(&self, salt: &[u8; SALT_BYTES]) -> [u8; 32] {
        hmac(&self.0[..], &[salt])
    }

    /// Whether `entry` names this key's user among its subjects.
    pub fn recognises_user(&self, entry: &EntryView) -> bool {
        let mine = Pseudonym::User(self.tag(&entry.salt));
        entry.event.subjects.contains(&mine)
    }

    /// Whether `entry` names this key's conversation among its subjects.
    pub fn recognises_conversation(&self, entry: &EntryView) -> bool {
        let mine = Pseudonym::Conversation(self.tag(&entry.salt));
        entry.event.subjects.contains(&mine)
    }
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Why an encoding could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A field is longer than its length prefix allows.
    #[error("the {0} is too long to encode")]
    TooLong(&'static str),
    /// The bytes are not a version-1 encoding.
    #[error("malformed audit entry: {0}")]
    Malformed(&'static str),
}

/// A subject as an entry shows it: its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pseudonym {
    /// A user's tag.
    User([u8; 32]),
    /// A conversation's tag.
    Conversation([u8; 32]),
}

impl AuditEvent {
    /// The public entry: subjects as tags under their keys derived from `key`.
    pub fn entry(&self, key: &PseudonymKey) -> Result<Vec<u8>, EntryError> {
        let salt = key.salt(&self.record()?);
        self.encode(FORM_ENTRY, Some(&salt), |s, out| {
            out.push(s.public_tag());
            out.extend_from_slice(&key.subject_key(s).tag(&salt));
        })
    }

    /// The full record: subjects named.
    pub fn record(&self) -> Result<Vec<u8>, EntryError> {
        self.encode(FORM_RECORD, None, |s, out| {
            out.push(s.tag());
            out.extend_from_slice(s.id());
        })
    }

    fn encode(
        &self,
        form: u8,
        salt: Option<&[u8; SALT_BYTES]>,
        subject: impl Fn(&Subject, &mut Vec<u8>),
    ) -> Result<Vec<u8>, EntryError> {
        let mut out = vec![form];
        if let Some(salt) = salt {
            out.extend_from_slice(salt);
        }
        put_str(&mut out, self.kind.as_str(), "kind")?;
        out.extend_from_slice(&self.time.as_millis().to_be_bytes());
        match &self.actor {
            Some(a) => {
                out.push(1);
                put_str(&mut out, &a.staff_id, "staff id")?;
                put_str(&mut out, &a.role, "role")?;
            }
            None => out.push(0),
        }
        put_opt(&mut out, self.reason.as_deref(), "reason")?;
        put_opt(&mut out, self.case.as_deref(), "case")?;
        put_count(&mut out, self.subjects.len(), "subject list")?;
        for s in &self.subjects {
            subject(s, &mut out);
        }
        put_count(&mut out, self.scope.len(), "scope")?;
        for (k, v) in &self.scope {
            put_str(&mut out, k, "scope name")?;
            put_str(&mut out, v, "scope value")?;
        }
        Ok(out)
    }

    /// Decodes a full record.
    pub fn from_record(bytes: &[u8]) -> Result<Self, EntryError> {
        let mut r = Reader(bytes);
        r.form(FORM_RECORD)?;
        decode(r, |tag, r| {
            let id = uuid::Uuid::from_bytes(r.array::<16>()?);
            match tag {
                TAG_USER => Ok(Subject::User(UserId::from_uuid(id))),
                TAG_CONVERSATION => Ok(Subject::Conversation(ConversationId::from_uuid(id))),
                TAG_WITHHELD => Ok(Subject::Withheld(UserId::from_uuid(id))),
                _ => Err(EntryError::Malformed("unknown subject tag")),
            }
        })
    }
}

impl EntryView {
    /// Decodes a public entry.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        let mut r = Reader(bytes);
        r.form(FORM_ENTRY)?;
        let salt = r.array()?;
        let event = decode(r, |tag, r| {
            let p = r.array::<32>()?;
            match tag {
                TAG_USER => Ok(Pseudonym::User(p)),
                TAG_CONVERSATION => Ok(Pseudonym::Conversation(p)),
                _ => Err(EntryError::Malformed("unknown subject tag")),
            }
        })?;
        Ok(Self { salt, event })
    }
}

/// Decodes the rest of an encoding after its form (and salt), reading each subject after
/// its tag with `subject`.
fn decode<S>(
    mut r: Reader<'_>,
    subject: impl Fn(u8, &mut Reader<'_>) -> Result<S, EntryError>,
) -> Result<Event<S>, EntryError> {
    let kind = EventKind::parse(&r.string()?).ok_or(EntryError::Malformed("unknown event kind"))?;
    let time = Timestamp::from_millis(i64::from_be_bytes(r.array()?));
    let actor = if r.flag()? {
        Some(Actor {
            staff_id: r.string()?,
            role: r.string()?,
        })
    } else {
        None
    };
    let reason = r.opt()?;
    let case = r.opt()?;
    let subjects = r.list(|r| {
        let tag = r.u8()?;
        subject(tag, r)
    })?;
    let scope = r.list(|r| Ok((r.string()?, r.string()?)))?;
    r.end()?;
    Ok(Event {
        kind,
        time,
        actor,
        reason,
        case,
        subjects,
        scope,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), EntryError> {
    let len = u16::try_from(s.len()).map_err(|_| EntryError::TooLong(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>, what: &'static str) -> Result<(), EntryError> {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s, what)
        }
        None => {
            out.push(0);
            Ok(())
        }
    }
}

fn put_count(out: &mut Vec<u8>, n: usize, what: &'static str) -> Result<(), EntryError> {
    let n = u16::try_from(n).map_err(|_| EntryError::TooLong(what))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// Reads a version-1 encoding from the front.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], EntryError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(EntryError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        self.take(N)?
            .try_into()
            .map_err(|_| EntryError::Malformed("truncated"))
    }

    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.array::<1>()?[0])
    }

    fn form(&mut self, form: u8) -> Result<(), EntryError> {
        if self.u8()? == form {
            Ok(())
        } else {
            Err(EntryError::Malformed("unknown form or version"))
        }
    }

    fn u16(&mut self) -> Result<u16, EntryError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, EntryError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| EntryError::Malformed("a string is not UTF-8"))
    }

    fn flag(&mut self) -> Result<bool, EntryError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(EntryError::Malformed("a presence flag is not 0 or 1")),
        }
    }

    fn opt(&mut self) -> Result<Option<String>, EntryError> {
        if self.flag()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, EntryError>,
    ) -> Result<Vec<T>, EntryError> {
        let n = self.u16()?;
        (0..n).map(|_| item(self)).collect()
    }

    fn end(&self) -> Result<(), EntryError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(EntryError::Malformed("trailing bytes"))
        }
    }
}
