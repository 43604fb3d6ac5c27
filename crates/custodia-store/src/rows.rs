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

/// The columns of `legal_requests`, in the order of [`LegalRow`] and [`ADD_LEGAL_REQUEST`].
pub const LEGAL_COLUMNS: &str = "id, number, agency_name, agency_country, agency_subdivision, \
     officer_name, officer_badge, officer_email, officer_domain_verified, process, court, \
     targets, categories, period_from, period_to, nd_authority, nd_until, emergency_basis, \
     received_by, received_at, outcome, rejection, narrowing, accepted, reviewed_by, reviewed_at, \
     received_log_index, review_log_index, documents, follows_up";

/// Stores a legal request with the next number, in both dialects: `$1` the id, `$2` …
/// `$19` the columns of [`LEGAL_COLUMNS`] from `agency_name` to `received_at`, in that
/// order, then `$20` received_log_index, `$21` documents, `$22` follows_up; returns the
/// number.
pub const ADD_LEGAL_REQUEST: &str = "INSERT INTO legal_requests (id, number, agency_name, \
     agency_country, agency_subdivision, officer_name, officer_badge, officer_email, \
     officer_domain_verified, process, court, targets, categories, period_from, period_to, \
     nd_authority, nd_until, emergency_basis, received_by, received_at, received_log_index, \
     documents, follows_up) \
     SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $15, $16, $17, $18, $19, $20, $21, $22 FROM legal_requests RETURNING number";

/// Stores one sealed served document, in both dialects: request id, position, sealed.
pub const ADD_LEGAL_DOCUMENT: &str =
    "INSERT INTO legal_documents (legal_request_id, position, sealed) VALUES ($1, $2, $3)";

/// A sealed served document, in both dialects: request id, position.
pub const LEGAL_DOCUMENT: &str =
    "SELECT sealed FROM legal_documents WHERE legal_request_id = $1 AND position = $2";

/// Records a review, in both dialects: outcome, rejection, narrowing, accepted,
/// reviewed_by, reviewed_at, review_log_index, then `$8` the id (SQLite numbers `$n`
/// parameters in the order they appear, so they appear in order).
pub const REVIEW_LEGAL_REQUEST: &str = "UPDATE legal_requests SET outcome = $1, \
     rejection = $2, narrowing = $3, accepted = $4, reviewed_by = $5, reviewed_at = $6, \
     review_log_index = $7 WHERE id = $8 AND outcome IS NULL";

/// A `legal_requests` row as both backends read it (ids as UUIDs, times as ms).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct LegalRow {
    pub id: uuid::Uuid,
    pub number: i64,
    pub agency_name: String,
    pub agency_country: String,
    pub agency_subdivision: Option<String>,
    pub officer_name: String,
    pub officer_badge: String,
    pub officer_email: String,
    pub officer_domain_verified: bool,
    pub process: String,
    pub court: Option<String>,
    pub targets: String,
    pub categories: String,
    pub period_from: i64,
    pub period_to: i64,
    pub nd_authority: Option<String>,
    pub nd_until: Option<i64>,
    pub emergency_basis: Option<String>,
    pub received_by: uuid::Uuid,
    pub received_at: i64,
    pub outcome: Option<String>,
    pub rejection: Option<String>,
    pub narrowing: Option<String>,
    pub accepted: Option<String>,
    pub reviewed_by: Option<uuid::Uuid>,
    pub reviewed_at: Option<i64>,
    pub received_log_index: Option<i64>,
    pub review_log_index: Option<i64>,
    pub documents: String,
    pub follows_up: Option<uuid::Uuid>,
}

/// Served documents as stored: one per line, `SHA256-HEX SIZE MEDIA-TYPE NAME`.
pub fn documents_text(d: &[crate::ServedDocument]) -> String {
    d.iter()
        .map(|d| {
            let hex: String = d.sha256.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex} {} {} {}", d.size, d.media_type, d.name)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn documents_of(text: &str) -> StoreResult<Vec<crate::ServedDocument>> {
    let corrupt = || StoreError::Corrupt("legal request documents".into());
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let mut field = || parts.next().ok_or_else(corrupt);
            let (hex, size, media_type, name) = (field()?, field()?, field()?, field()?);
            let mut sha256 = [0u8; 32];
            if hex.len() != 64 {
                return Err(corrupt());
            }
            for (i, b) in sha256.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| corrupt())?;
            }
            Ok(crate::ServedDocument {
                name: name.to_owned(),
                media_type: media_type.to_owned(),
                sha256,
                size: size.parse().map_err(|_| corrupt())?,
            })
        })
        .collect()
}

/// Categories as stored: their names, space-separated.
pub fn categories_text(c: &[custodia_core::DataCategory]) -> String {
    c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" ")
}

fn categories_of(text: &str) -> StoreResult<Vec<custodia_core::DataCategory>> {
    text.split_whitespace()
        .map(|c| {
            custodia_core::DataCategory::parse(c)
                .map_err(|_| StoreError::Corrupt(format!("data category {c:?}")))
        })
        .collect()
}

/// Targets as stored: one per line, `ACCOUNT-UUID-or-dash GIVEN`.
pub fn targets_text(t: &[crate::LegalTarget]) -> String {
    t.iter()
        .map(|t| {
            let account = t
                .account
                .map_or_else(|| "-".to_owned(), |a| a.as_uuid().to_string());
            format!("{account} {}", t.given)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn targets_of(text: &str) -> StoreResult<Vec<crate::LegalTarget>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (account, given) = line
                .split_once(' ')
                .ok_or_else(|| StoreError::Corrupt("a legal target line".into()))?;
            let account = match account {
                "-" => None,
                a => Some(custodia_core::UserId::from_uuid(a.parse().map_err(
                    |_| StoreError::Corrupt("a legal target's account".into()),
                )?)),
            };
            Ok(crate::LegalTarget {
                given: given.to_owned(),
                account,
            })
        })
        .collect()
}

impl LegalRow {
    /// The row of a new request (number 0, not reviewed).
    pub fn of(r: &crate::LegalRequestRecord) -> Self {
        Self {
            id: *r.id.as_uuid(),
            number: 0,
            agency_name: r.agency.name.clone(),
            agency_country: r.agency.country.as_str().to_owned(),
            agency_subdivision: r.agency.subdivision.clone(),
            officer_name: r.officer.name.clone(),
            officer_badge: r.officer.badge.clone(),
            officer_email: r.officer.email.clone(),
            officer_domain_verified: r.officer.domain_verified,
            process: r.process.as_str().to_owned(),
            court: r.court.clone(),
            targets: targets_text(&r.targets),
            categories: categories_text(&r.categories),
            period_from: r.period.0.as_millis(),
            period_to: r.period.1.as_millis(),
            nd_authority: r.nondisclosure.as_ref().map(|n| n.authority.clone()),
            nd_until: r
                .nondisclosure
                .as_ref()
                .and_then(|n| n.until)
                .map(|t| t.as_millis()),
            emergency_basis: r.emergency_basis.clone(),
            received_by: *r.received_by.as_uuid(),
            received_at: r.received_at.as_millis(),
            outcome: None,
            rejection: None,
            narrowing: None,
            accepted: None,
            reviewed_by: None,
            reviewed_at: None,
            received_log_index: r.received_log_index.map(signed),
            review_log_index: None,
            documents: documents_text(&r.documents),
            follows_up: r.follows_up.map(|f| *f.as_uuid()),
        }
    }

    /// The record this row holds.
    pub fn into_record(self) -> StoreResult<crate::LegalRequestRecord> {
        use custodia_core::{Country, LegalOutcome, LegalProcessType, RejectionReason, Timestamp};
        let corrupt = |what: &str| StoreError::Corrupt(format!("legal request {what}"));
        let review = match (self.outcome, self.reviewed_by, self.reviewed_at) {
            (Some(outcome), Some(by), Some(at)) => Some(crate::LegalReview {
                outcome: LegalOutcome::parse(&outcome).map_err(|_| corrupt("outcome"))?,
                reason: self
                    .rejection
                    .map(|r| RejectionReason::parse(&r).map_err(|_| corrupt("rejection")))
                    .transpose()?,
                narrowing: self.narrowing,
                accepted: categories_of(self.accepted.as_deref().unwrap_or(""))?,
                by: custodia_core::StaffId::from_uuid(by),
                at: Timestamp::from_millis(at),
                log_index: self
                    .review_log_index
                    .map(|i| unsigned(i, "review log index"))
                    .transpose()?,
            }),
            _ => None,
        };
        Ok(crate::LegalRequestRecord {
            id: custodia_core::LegalRequestId::from_uuid(self.id),
            number: unsigned(self.number, "legal request number")?,
            agency: crate::Agency {
                name: self.agency_name,
                country: Country::parse(&self.agency_country).map_err(|_| corrupt("country"))?,
                subdivision: self.agency_subdivision,
            },
            officer: crate::Officer {
                name: self.officer_name,
                badge: self.officer_badge,
                email: self.officer_email,
                domain_verified: self.officer_domain_verified,
            },
            process: LegalProcessType::parse(&self.process).map_err(|_| corrupt("process"))?,
            court: self.court,
            targets: targets_of(&self.targets)?,
            categories: categories_of(&self.categories)?,
            period: (
                Timestamp::from_millis(self.period_from),
                Timestamp::from_millis(self.period_to),
            ),
            nondisclosure: self
                .nd_authority
                .map(|authority| crate::NondisclosureOrder {
                    authority,
                    until: self.nd_until.map(Timestamp::from_millis),
                }),
            emergency_basis: self.emergency_basis,
            received_by: custodia_core::StaffId::from_uuid(self.received_by),
            received_at: Timestamp::from_millis(self.received_at),
            review,
            received_log_index: self
                .received_log_index
                .map(|i| unsigned(i, "intake log index"))
                .transpose()?,
            documents: documents_of(&self.documents)?,
            follows_up: self
                .follows_up
                .map(custodia_core::LegalRequestId::from_uuid),
        })
    }
}

/// The columns of `legal_holds`.
pub const HOLD_COLUMNS: &str = "id, legal_request_id, account, period_from, period_to, \
     placed_by, placed_at, expires_at, extended, ended_at, ended_how";

/// A `legal_holds` row as both backends read it (its conversations apart).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct HoldRow {
    pub id: uuid::Uuid,
    pub legal_request_id: uuid::Uuid,
    pub account: uuid::Uuid,
    pub period_from: i64,
    pub period_to: i64,
    pub placed_by: uuid::Uuid,
    pub placed_at: i64,
    pub expires_at: i64,
    pub extended: bool,
    pub ended_at: Option<i64>,
    pub ended_how: Option<String>,
}

impl HoldRow {
    /// The record, with `conversations`.
    pub fn into_record(self, conversations: Vec<uuid::Uuid>) -> StoreResult<crate::HoldRecord> {
        use custodia_core::Timestamp;
        let ended = match (self.ended_at, self.ended_how) {
            (Some(at), Some(how)) => Some((
                Timestamp::from_millis(at),
                custodia_core::HoldEnd::parse(&how)
                    .map_err(|_| StoreError::Corrupt("hold end".into()))?,
            )),
            _ => None,
        };
        Ok(crate::HoldRecord {
            id: custodia_core::HoldId::from_uuid(self.id),
            legal_request: custodia_core::LegalRequestId::from_uuid(self.legal_request_id),
            account: custodia_core::UserId::from_uuid(self.account),
            conversations: conversations
                .into_iter()
                .map(custodia_core::ConversationId::from_uuid)
                .collect(),
            period: (
                Timestamp::from_millis(self.period_from),
                Timestamp::from_millis(self.period_to),
            ),
            placed_by: custodia_core::StaffId::from_uuid(self.placed_by),
            placed_at: Timestamp::from_millis(self.placed_at),
            expires_at: Timestamp::from_millis(self.expires_at),
            extended: self.extended,
            ended,
        })
    }
}

/// Whether an active preservation hold covers the `messages` row in scope (SQL, both
/// dialects): a hold not ended, on its conversation, over a period holding its time.
macro_rules! held {
    () => {
        "EXISTS (SELECT 1 FROM legal_hold_conversations hc \
         JOIN legal_holds h ON h.id = hc.hold_id \
         WHERE hc.conversation_id = messages.conversation_id AND h.ended_at IS NULL \
         AND messages.sent_at BETWEEN h.period_from AND h.period_to)"
    };
}

/// Deletes a message for everyone, in both dialects: `$1` the time, `$2` the
/// conversation, `$3` the sequence number; the body stays while a hold covers it.
pub const TOMBSTONE: &str = concat!(
    "UPDATE messages SET sealed = CASE WHEN ",
    held!(),
    " THEN sealed ELSE NULL END, deleted_at = COALESCE(deleted_at, $1) \
     WHERE conversation_id = $2 AND seq = $3"
);

/// Closing an account, both dialects, in one transaction and in this order: `$1` the
/// time, `$2` the account; only an open account closes. Its password stops working (no
/// hash verifies against an empty one), its name stays taken until
/// [`crate::AccountStore::release_closed_names`].
pub const CLOSE_ACCOUNT: &str =
    "UPDATE users SET closed_at = $1, password_hash = '' WHERE id = $2 AND closed_at IS NULL";
/// The messages `$1` sent that are not deleted yet.
pub const SENT_LIVE: &str = "SELECT conversation_id, seq FROM messages \
     WHERE sender_id = $1 AND deleted_at IS NULL ORDER BY conversation_id, seq";
/// Deletes every message `$2` sent for everyone at `$1`: bodies destroyed, except what a
/// hold covers (destroyed when it ends, as [`TOMBSTONE`] does).
pub const TOMBSTONE_SENT: &str = concat!(
    "UPDATE messages SET sealed = CASE WHEN ",
    held!(),
    " THEN sealed ELSE NULL END, deleted_at = COALESCE(deleted_at, $1) WHERE sender_id = $2"
);
/// How many of `$1`'s messages keep a sealed body (under a hold) once all are deleted.
pub const KEPT_SENT: &str =
    "SELECT COUNT(*) FROM messages WHERE sender_id = $1 AND sealed IS NOT NULL";
/// The conversations `$1` is a member of.
pub const MEMBERSHIPS: &str = "SELECT conversation_id FROM members WHERE user_id = $1";
/// Destroys the attachments `$1` uploaded, except those a case preserved or a hold covers.
pub const ERASE_ATTACHMENTS: &str = "DELETE FROM attachments WHERE uploader = $1 \
     AND NOT preserved AND NOT EXISTS (SELECT 1 FROM legal_hold_conversations hc \
     JOIN legal_holds h ON h.id = hc.hold_id \
     WHERE hc.conversation_id = attachments.conversation_id AND h.ended_at IS NULL \
     AND attachments.created_at BETWEEN h.period_from AND h.period_to)";
/// The rest of an account's own data, each statement with `$1` the account: sessions,
/// memberships (and read positions), connections, blocks both ways, settings, and its
/// access notices. (Reports it made stay with their cases: staff's records, sealed.)
pub const ERASE_ACCOUNT_DATA: [&str; 6] = [
    "DELETE FROM sessions WHERE user_id = $1",
    "DELETE FROM members WHERE user_id = $1",
    "DELETE FROM connections WHERE low = $1 OR high = $1",
    "DELETE FROM blocks WHERE blocker = $1 OR blocked = $1",
    "DELETE FROM message_settings WHERE user_id = $1",
    "DELETE FROM access_notices WHERE user_id = $1",
];

/// Destroys the bodies of at most `$1` deleted messages no hold covers, both dialects.
pub const PURGE_DELETED: &str = concat!(
    "UPDATE messages SET sealed = NULL WHERE (conversation_id, seq) IN \
     (SELECT conversation_id, seq FROM messages \
     WHERE deleted_at IS NOT NULL AND sealed IS NOT NULL AND NOT ",
    held!(),
    " LIMIT $1)"
);

/// Epochs past retention whose keys may go (both dialects): `$1` the month scheme's and
/// `$2` the day scheme's first epoch still kept (labels of one scheme sort by time), `$3`
/// how many; an epoch any of whose messages a hold covers is kept.
pub const EXPIRED_EPOCHS: &str = concat!(
    "SELECT conversation_id, epoch FROM deks \
     WHERE ((substr(epoch, 1, 1) = 'm' AND epoch < $1) \
     OR (substr(epoch, 1, 1) = 'd' AND epoch < $2)) \
     AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.conversation_id = deks.conversation_id \
     AND messages.epoch = deks.epoch AND ",
    held!(),
    ") ORDER BY epoch, conversation_id LIMIT $3"
);

/// Deletes one epoch's messages (`$1` conversation, `$2` epoch), both dialects.
pub const SHRED_MESSAGES: &str = "DELETE FROM messages WHERE conversation_id = $1 AND epoch = $2";
/// Deletes one epoch's attachments, both dialects.
pub const SHRED_ATTACHMENTS: &str =
    "DELETE FROM attachments WHERE conversation_id = $1 AND epoch = $2";
/// Destroys one epoch's data key, both dialects: what it sealed is unreadable for good.
pub const SHRED_DEK: &str = "DELETE FROM deks WHERE conversation_id = $1 AND epoch = $2";

/// Ends the holds whose time ran out by `$1` (both dialects), returning their ids.
pub const EXPIRE_HOLDS: &str = "UPDATE legal_holds SET ended_at = $1, ended_how = 'expired' \
     WHERE ended_at IS NULL AND expires_at <= $1 RETURNING id";

/// The first and last sequence numbers of conversation `$1`'s messages sent from `$2` to
/// `$3` (ms, included), both dialects; NULLs when there are none.
pub const SEQ_SPAN: &str = "SELECT MIN(seq), MAX(seq) FROM messages \
     WHERE conversation_id = $1 AND sent_at BETWEEN $2 AND $3";

/// A [`SEQ_SPAN`] answer.
pub fn seq_span(row: (Option<i64>, Option<i64>)) -> StoreResult<Option<(u64, u64)>> {
    match row {
        (Some(first), Some(last)) => Ok(Some((
            unsigned(first, "sequence number")?,
            unsigned(last, "sequence number")?,
        ))),
        _ => Ok(None),
    }
}

/// Attachment ids as stored in one column: space-separated UUIDs.
pub fn ids_text(ids: &[custodia_core::AttachmentId]) -> String {
    ids.iter()
        .map(|i| i.as_uuid().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What [`ids_text`] stored.
pub fn ids_of(text: &str) -> StoreResult<Vec<custodia_core::AttachmentId>> {
    text.split_whitespace()
        .map(|s| {
            s.parse::<uuid::Uuid>()
                .map(custodia_core::AttachmentId::from_uuid)
                .map_err(|_| StoreError::Corrupt(format!("attachment id {s:?}")))
        })
        .collect()
}

/// Where a kind of KEK-sealed thing is kept: its table, its key columns, the column of
/// its KEK version (none: the version is the first four bytes of the value, big-endian),
/// and the column of its sealed bytes (NULL, or empty, where a row has none: a staff
/// account not enrolled yet has no TOTP secret).
#[derive(Debug, Clone, Copy)]
pub struct KekColumns {
    /// The table.
    pub table: &'static str,
    /// The key columns, in order.
    pub keys: &'static [&'static str],
    /// The KEK version column, if the version is not a prefix of the value.
    pub version: Option<&'static str>,
    /// The sealed bytes.
    pub bytes: &'static str,
}

/// Where `kind` is kept; both backends keep every kind in the same shape.
pub fn kek_columns(kind: crate::KekSealedKind) -> KekColumns {
    use crate::KekSealedKind as K;
    let (table, keys, version, bytes): (_, &'static [&'static str], _, _) = match kind {
        K::Dek => (
            "deks",
            &["conversation_id", "epoch"],
            Some("kek_version"),
            "wrapped",
        ),
        K::Totp => ("staff", &["id"], Some("totp_kek_version"), "totp_sealed"),
        K::CaseComment => ("cases", &["id"], None, "comment"),
        K::Evidence => ("case_evidence", &["case_id", "seq"], None, "claimed"),
        K::Document => (
            "legal_documents",
            &["legal_request_id", "position"],
            None,
            "sealed",
        ),
    };
    KekColumns {
        table,
        keys,
        version,
        bytes,
    }
}

impl KekColumns {
    /// The KEK version of a row, as SQL: an integer column, or the value's 4-byte prefix.
    fn version_expr(&self) -> String {
        match self.version {
            Some(v) => v.to_owned(),
            None => format!("substr({}, 1, 4)", self.bytes),
        }
    }

    /// `(version, count)` per version of this kind.
    pub fn usage_sql(&self) -> String {
        format!(
            "SELECT {v} AS v, count(*) AS n FROM {t} WHERE length({b}) > 0 GROUP BY {v}",
            v = self.version_expr(),
            t = self.table,
            b = self.bytes,
        )
    }

    /// The rows not under version `$1` (an integer, or its 4 big-endian bytes), keys
    /// after the `after` values `$2…` when `after`, in key order, at most `limit`:
    /// columns `k0`, `k1`, …, `b` (the bytes) and, with a version column, `v`.
    pub fn not_under_sql(&self, after: bool, limit: u32) -> String {
        let keys = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let version = self
            .version
            .map(|v| format!(", {v} AS v"))
            .unwrap_or_default();
        let after = if after {
            let params = (0..self.keys.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" AND ({}) > ({params})", self.keys.join(", "))
        } else {
            String::new()
        };
        format!(
            "SELECT {keys}, {b} AS b{version} FROM {t} WHERE length({b}) > 0 AND {ve} <> $1{after} \
             ORDER BY {order} LIMIT {limit}",
            b = self.bytes,
            t = self.table,
            ve = self.version_expr(),
            order = self.keys.join(", "),
        )
    }

    /// Sets the bytes to `$1` (and the version column to `$2`) where the keys are the
    /// following parameters and the bytes are still `$last`.
    pub fn replace_sql(&self) -> String {
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        let set_version = self
            .version
            .map(|v| format!(", {v} = ${}", next()))
            .unwrap_or_default();
        let keys = self
            .keys
            .iter()
            .map(|k| format!("{k} = ${}", next()))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "UPDATE {t} SET {b} = $1{set_version} WHERE {keys} AND {b} = ${old}",
            t = self.table,
            b = self.bytes,
            old = next(),
        )
    }
}

/// A KEK version as the value prefixes store it.
pub fn kek_prefix(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// The KEK version of a prefixed sealed value.
pub fn kek_version_of(bytes: &[u8]) -> StoreResult<u32> {
    bytes
        .first_chunk::<4>()
        .map(|p| u32::from_be_bytes(*p))
        .ok_or_else(|| StoreError::Corrupt("a KEK-sealed value has no version".into()))
}

/// Inserts a KEK step unless that step of that version is there (`$1` kind, `$2`
/// version, `$3` time, `$4` detail).
pub const ADD_KEK_STEP: &str = "INSERT INTO kek_steps (kind, version, at, detail) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (kind, version) DO NOTHING";
/// Every KEK step, oldest first.
pub const KEK_STEPS: &str =
    "SELECT kind, version, at, detail, log_index FROM kek_steps ORDER BY at, version, kind";
/// Records the log entry `$1` of step `$2` of version `$3`.
pub const KEK_STEP_LOGGED: &str =
    "UPDATE kek_steps SET log_index = $1 WHERE kind = $2 AND version = $3 AND log_index IS NULL";

/// The second key column of a KEK item, where its kind has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekKey {
    /// A text key (an epoch label).
    Text(String),
    /// An integer key (a sequence number, a position).
    Int(i64),
}

/// The key column values of `item`, in [`KekColumns::keys`] order.
pub fn kek_item_keys(item: &crate::KekItem) -> (uuid::Uuid, Option<KekKey>) {
    use crate::KekItem as I;
    match item {
        I::Dek {
            conversation,
            epoch,
        } => (
            *conversation.as_uuid(),
            Some(KekKey::Text(epoch.as_str().to_owned())),
        ),
        I::Totp { staff } => (*staff.as_uuid(), None),
        I::CaseComment { case } => (*case.as_uuid(), None),
        I::Evidence { case, seq } => (*case.as_uuid(), Some(KekKey::Int(signed(*seq)))),
        I::Document { request, position } => {
            (*request.as_uuid(), Some(KekKey::Int(i64::from(*position))))
        }
    }
}

/// A KEK item of `kind` from its key columns (`text`/`int`: the second column, read as
/// the kind's type) and its stored `bytes` and version column.
pub fn kek_sealed(
    kind: crate::KekSealedKind,
    first: uuid::Uuid,
    text: Option<String>,
    int: Option<i64>,
    bytes: Vec<u8>,
    version: Option<i64>,
) -> StoreResult<crate::KekSealed> {
    use crate::KekItem as I;
    use crate::KekSealedKind as K;
    use custodia_core::{CaseId, ConversationId, Epoch, LegalRequestId, StaffId};
    let missing = || StoreError::Corrupt("a KEK-sealed row lacks a key".into());
    let item = match kind {
        K::Dek => I::Dek {
            conversation: ConversationId::from_uuid(first),
            epoch: Epoch::from_label(text.ok_or_else(missing)?),
        },
        K::Totp => I::Totp {
            staff: StaffId::from_uuid(first),
        },
        K::CaseComment => I::CaseComment {
            case: CaseId::from_uuid(first),
        },
        K::Evidence => I::Evidence {
            case: CaseId::from_uuid(first),
            seq: unsigned(int.ok_or_else(missing)?, "seq")?,
        },
        K::Document => I::Document {
            request: LegalRequestId::from_uuid(first),
            position: u32::try_from(int.ok_or_else(missing)?)
                .map_err(|_| StoreError::Corrupt("a document position".into()))?,
        },
    };
    let kek_version = match version {
        Some(v) => u32::try_from(v).map_err(|_| StoreError::Corrupt("kek_version".into()))?,
        None => kek_version_of(&bytes)?,
    };
    Ok(crate::KekSealed {
        item,
        sealed: crate::WrappedDek { kek_version, bytes },
    })
}

/// Whether the second key column of `kind` is text (else an integer, or none).
pub fn kek_second_key_is_text(kind: crate::KekSealedKind) -> bool {
    kind == crate::KekSealedKind::Dek
}

/// A KEK version read back from a usage row: an integer column or a 4-byte prefix.
pub fn kek_usage_version(int: Option<i64>, prefix: Option<Vec<u8>>) -> StoreResult<u32> {
    match (int, prefix) {
        (Some(v), _) => u32::try_from(v).map_err(|_| StoreError::Corrupt("kek_version".into())),
        (None, Some(p)) => kek_version_of(&p),
        (None, None) => Err(StoreError::Corrupt("a KEK version".into())),
    }
}

/// A KEK step from its stored columns.
pub fn kek_step(
    kind: String,
    version: i64,
    at: i64,
    detail: String,
    log_index: Option<i64>,
) -> StoreResult<crate::KekStep> {
    Ok(crate::KekStep {
        kind: crate::KekStepKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown KEK step {kind:?}")))?,
        version: u32::try_from(version).map_err(|_| StoreError::Corrupt("a KEK version".into()))?,
        at: custodia_core::Timestamp::from_millis(at),
        detail,
        log_index: log_index.map(|i| unsigned(i, "log index")).transpose()?,
    })
}
