//! The wire format of the staff API (its own TLS listener, `staff_listen`).
//!
//! - `POST /v1/staff/sessions` — [`StaffSignIn`] → [`StaffSession`] (the token only here).
//! - `DELETE /v1/staff/sessions/current` — sign out.
//! - `GET /v1/staff/me` — [`StaffMember`].
//! - `GET /v1/staff/accounts` — `[StaffMember]` (admins, auditors).
//! - `POST /v1/staff/accounts` — [`CreateStaff`] → `202` [`StaffChange`] (admins propose;
//!   the account exists once a second person approves).
//! - `PATCH /v1/staff/accounts/{id}` — [`UpdateStaff`] → [`StaffChange`] (admins propose;
//!   `202` pending, or `200` for a deactivation, applied at once).
//! - `GET /v1/staff/changes` — `[StaffChange]`, `GET /v1/staff/changes/{id}` (admins,
//!   auditors); `POST /v1/staff/changes/{id}/decisions` ([`DecideStaffChange`]) →
//!   [`StaffChangeDecided`] (a second admin, or the auditor while there is one admin; for
//!   a new account the answer carries its enrolment code, for the approver to deliver).
//! - `POST /v1/staff/enrolments` — [`Enrol`] → [`Enrolled`] (no session: the new member
//!   sets their password and receives their TOTP secret).
//! - `POST /v1/staff/me/password` — [`ChangePassword`]; `POST /v1/staff/me/totp` —
//!   [`ReenrolTotp`] → [`Enrolled`] (a new TOTP secret; the old one stops working).
//! - `GET /v1/staff/cases`, `GET /v1/staff/cases/{id}` ([`Case`]),
//!   `GET /v1/staff/cases/{id}/requests` (legal cases are opened by producing a legal
//!   request: [`NewLegalRequest`]).
//! - `POST /v1/staff/requests` ([`CreateAccessRequest`]) → [`AccessRequest`];
//!   `GET /v1/staff/requests/{id}`; `POST …/decisions` ([`DecideRequest`]);
//!   `POST …/revoke`; `POST …/complete`; `GET …/messages` → [`GrantRead`] (logged first).
//!
//! - `GET /v1/staff/audit/records/{index}` → [`AuditRecord`] (auditors; logged).
//!
//! Every call but sign-in and enrolment carries `Authorization: Bearer <staff token>`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Sign-in with password and the current TOTP code.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffSignIn {
    /// Staff username.
    pub username: String,
    /// Password.
    pub password: String,
    /// The 6-digit code of the authenticator app.
    pub code: String,
}

impl std::fmt::Debug for StaffSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSignIn")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// Id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// `moderator`, `senior_moderator`, `legal_officer`, `auditor` or `admin`.
    pub role: String,
    /// Whether it may sign in.
    pub active: bool,
    /// Whether its member has enrolled.
    #[serde(default = "enrolled_default")]
    pub enrolled: bool,
}

fn enrolled_default() -> bool {
    true
}

/// A new staff session; the token is shown only here.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffSession {
    /// Bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Who signed in.
    pub staff: StaffMember,
}

impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A staff account to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateStaff {
    /// Username.
    pub username: String,
    /// Role.
    pub role: String,
}

/// A proposed change to the staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffChange {
    /// Id (what the second person decides).
    pub id: Uuid,
    /// `create` or `update`.
    pub kind: String,
    /// The account (for `create`, the id it will have).
    pub staff_id: Uuid,
    /// Its username.
    pub username: String,
    /// The role it will hold.
    pub role: String,
    /// Whether it will be active.
    pub active: bool,
    /// Who proposed it.
    pub proposed_by: Uuid,
    /// When.
    pub proposed_at_ms: i64,
    /// `pending`, `approved`, `denied` or `expired`.
    pub status: String,
    /// Who decided it (none for a deactivation, applied at once).
    pub decided_by: Option<Uuid>,
}

/// A second person's decision on a staff change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecideStaffChange {
    /// Approve or deny.
    pub approve: bool,
}

/// The decided change, and for an approved new account its one-time enrolment code.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffChangeDecided {
    /// The change.
    pub change: StaffChange,
    /// For a new account: the code its member enrols with (deliver it out of band).
    pub enrolment_code: Option<String>,
    /// When the code stops working.
    pub enrolment_expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for StaffChangeDecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffChangeDecided")
            .field("change", &self.change)
            .finish_non_exhaustive()
    }
}

/// A new member enrols: their username, the code they were handed, their own password.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enrol {
    /// Username.
    pub username: String,
    /// The one-time enrolment code.
    pub code: String,
    /// The password they choose.
    pub password: String,
}

impl std::fmt::Debug for Enrol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrol")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An enrolled member's new TOTP secret, shown only here.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enrolled {
    /// The account.
    pub staff: StaffMember,
    /// `otpauth://` URI of the TOTP secret, for an authenticator app.
    pub totp_uri: String,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A signed-in member changes their password.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new one.
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

/// A signed-in member replaces their TOTP secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct ReenrolTotp {
    /// The current password.
    pub password: String,
}

impl std::fmt::Debug for ReenrolTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReenrolTotp").finish_non_exhaustive()
    }
}

/// A change to a staff account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStaff {
    /// The new role.
    pub role: String,
    /// Whether it may sign in.
    pub active: bool,
}

/// `POST /v1/conversations/{id}/reports` (client API): a member reports messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRequest {
    /// The reported messages.
    pub messages: Vec<ReportedMessage>,
    /// `child_safety`, `grooming`, `harassment`, `spam`, `self_harm` or `other`.
    pub category: String,
    /// An optional comment to the trust & safety team.
    #[serde(default)]
    pub comment: Option<String>,
}

/// One reported message: to have it shown to staff as verified, include the text and the
/// franking key received with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportedMessage {
    /// Sequence number.
    pub seq: u64,
    /// The text as received.
    #[serde(default)]
    pub body: Option<String>,
    /// The base64 franking key received with it.
    #[serde(default)]
    pub franking_key: Option<String>,
}

/// A reported message as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// Sequence number.
    pub seq: u64,
    /// Sender (from the stored message).
    pub sender_id: Uuid,
    /// The sender's username (shown with the case).
    #[serde(default)]
    pub sender_username: Option<String>,
    /// Sent (from the stored message).
    pub sent_at_ms: i64,
    /// The text the reporter gave (only when viewing one case).
    pub body: Option<String>,
    /// True only if the text is exactly what the sender sent.
    pub verified: bool,
}

/// The case a report opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportResponse {
    /// The case id.
    pub case_id: Uuid,
}

/// `POST /v1/staff/cases/{id}/nondisclosure/lift`: a legal officer records that the
/// case's non-disclosure order was lifted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiftNondisclosure {
    /// SHA-256 of the lifting document, 64 hex digits.
    pub document_sha256: String,
}

/// `POST /v1/staff/cases/{id}/nondisclosure`: a legal officer records that the case's
/// non-disclosure order was extended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtendNondisclosure {
    /// When the extended order ends (Unix ms); later than the current end.
    pub until_ms: i64,
    /// SHA-256 of the extending order's document, 64 hex digits.
    pub document_sha256: String,
}

/// A case. No message content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    /// Id.
    pub id: Uuid,
    /// `report` or `legal`.
    pub kind: String,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The reporting member.
    pub reporter: Option<Uuid>,
    /// The report's category.
    pub category: Option<String>,
    /// The reporter's comment.
    pub comment: Option<String>,
    /// The reported messages.
    pub reported: Vec<u64>,
    /// The reported messages as disclosed by the reporter, verified or not.
    pub evidence: Vec<Evidence>,
    /// First sequence number covered.
    pub from_seq: u64,
    /// Last sequence number covered.
    pub to_seq: u64,
    /// Legal reference.
    pub reference: Option<String>,
    /// Opened.
    pub opened_at_ms: i64,
    /// When the legal case's non-disclosure order ends (Unix ms), if it has one.
    #[serde(default)]
    pub nondisclosure_until_ms: Option<i64>,
    /// `high` (hash-list matches, child-safety text rules) or `normal`; `GET
    /// /v1/staff/cases` lists high first, then the longest waiting.
    #[serde(default)]
    pub priority: String,
    /// The files the case preserved (a hash-list match): opened only under an `evidence`
    /// grant, from `GET /v1/staff/requests/{id}/files/{file}`.
    #[serde(default)]
    pub files: Vec<Uuid>,
}

/// `POST /v1/staff/requests`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccessRequest {
    /// The case.
    pub case_id: Uuid,
    /// `report_review`, `legal_process`, `emergency_disclosure`, `security_incident`,
    /// `user_self_access` or `support_with_consent`.
    pub reason: String,
    /// First sequence number.
    pub from_seq: u64,
    /// Last sequence number.
    pub to_seq: u64,
    /// `metadata` or `content`.
    pub tier: String,
    /// Grant length once approved, in seconds.
    pub duration_secs: u64,
    /// Why.
    pub justification: String,
}

/// One decision on a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    /// Who decided.
    pub staff_id: Uuid,
    /// In which role.
    pub role: String,
    /// Approve or deny.
    pub approve: bool,
    /// Why.
    pub justification: String,
    /// When.
    pub at_ms: i64,
    /// The audit log entry recording it.
    pub log_index: u64,
}

/// An access request and its grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Id.
    pub id: Uuid,
    /// Case.
    pub case_id: Uuid,
    /// Requester.
    pub requester: Uuid,
    /// Reason code.
    pub reason: String,
    /// Conversation.
    pub conversation_id: Uuid,
    /// First sequence number.
    pub from_seq: u64,
    /// Last sequence number.
    pub to_seq: u64,
    /// Tier.
    pub tier: String,
    /// `pending`, `approved`, `active`, `denied`, `expired`, `completed` or `revoked`.
    pub status: String,
    /// Flagged as broad.
    pub broad: bool,
    /// Approvals needed.
    pub required: u8,
    /// Who may approve (frozen when asked).
    pub approvers: Vec<Uuid>,
    /// Decisions so far.
    pub decisions: Vec<Decision>,
    /// Undecided requests expire then.
    pub pending_until_ms: i64,
    /// The grant's window.
    pub granted_from_ms: Option<i64>,
    /// The grant's end.
    pub granted_until_ms: Option<i64>,
    /// An emergency grant whose second review is past due.
    pub second_review_overdue: bool,
    /// Hex SHA-256 of the request's canonical bytes (named by every decision's log entry).
    pub digest: String,
}

/// `POST /v1/staff/requests/{id}/decisions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecideRequest {
    /// Approve or deny.
    pub approve: bool,
    /// Why.
    pub justification: String,
}

/// An audit log receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// Index of the entry.
    pub index: u64,
    /// Hex leaf hash.
    pub leaf_hash: String,
    /// Base64 hashes of the inclusion proof.
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) the proof is against.
    pub checkpoint: String,
}

/// `GET /v1/staff/requests/{id}/messages`: an audited read within a grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantRead {
    /// The messages (bodies only for a content grant).
    pub messages: Vec<crate::Message>,
    /// The receipt of this read's log entry.
    pub receipt: Receipt,
    /// The senders' usernames, by account id.
    #[serde(default)]
    pub usernames: std::collections::BTreeMap<Uuid, String>,
}

/// A subject named in a full audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSubject {
    /// `user` or `conversation`.
    pub kind: String,
    /// Its id.
    pub id: Uuid,
}

/// The full record beside an audit log entry (subjects named, not pseudonymized).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The entry's index.
    pub index: u64,
    /// What happened, e.g. `access.read`.
    pub kind: String,
    /// When.
    pub time_ms: i64,
    /// The acting staff member.
    pub actor_staff_id: Option<String>,
    /// Their role.
    pub actor_role: Option<String>,
    /// Reason code.
    pub reason: Option<String>,
    /// Case.
    pub case: Option<String>,
    /// Whom or what it concerns.
    pub subjects: Vec<AuditSubject>,
    /// Its scope, as name/value pairs.
    pub scope: Vec<(String, String)>,
}

/// `POST /v1/staff/legal-requests`: a legal officer enters a legal request as served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewLegalRequest {
    /// The agency that served it.
    pub agency: AgencyInfo,
    /// The officer who served it.
    pub officer: OfficerInfo,
    /// `subpoena`, `court_order`, `search_warrant`, `mutual_legal_assistance` (MLAT or
    /// letter rogatory), `preservation_request`, `emergency_request` or `other`.
    pub process: String,
    /// The issuing court, if any.
    #[serde(default)]
    pub court: Option<String>,
    /// The accounts named, each by username or account id (`username:NAME` and
    /// `account:UUID` are accepted too); a display name or an IP address alone is refused.
    pub targets: Vec<String>,
    /// The data asked for: `subscriber`, `metadata`, `content`.
    pub categories: Vec<String>,
    /// The first day the request covers (YYYY-MM-DD, UTC).
    pub from: String,
    /// The last day it covers, included.
    pub to: String,
    /// A non-disclosure order that comes with it.
    #[serde(default)]
    pub nondisclosure: Option<NondisclosureInfo>,
    /// For an emergency request: the facts of the imminent risk of death or serious
    /// physical injury.
    #[serde(default)]
    pub emergency_basis: Option<String>,
    /// The documents served (at most 10, 20 MiB together); stored sealed, their SHA-256
    /// recorded and logged.
    #[serde(default)]
    pub documents: Vec<DocumentUpload>,
    /// For the legal process that follows an emergency request: that request's reference
    /// (`LR-YYYY-NNNNNN`).
    #[serde(default)]
    pub follows_up: Option<String>,
}

/// A served document, uploaded with the intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentUpload {
    /// File name.
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

/// A served document as stored: described, and fetched apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentInfo {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// `POST /v1/staff/legal-requests/{id}/package`: build, sign and encrypt the disclosure
/// package of an accepted, approved production (the answer is the age-encrypted package,
/// `application/octet-stream`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildPackage {
    /// The agency's age X25519 public key (`age1…`) the package is encrypted to.
    pub recipient: String,
}

/// The agency of a legal request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyInfo {
    /// Name.
    pub name: String,
    /// Country (ISO 3166-1 alpha-2).
    pub country: String,
    /// State, province or region.
    #[serde(default)]
    pub subdivision: Option<String>,
}

/// The officer of a legal request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerInfo {
    /// Name.
    pub name: String,
    /// Badge number or official id.
    pub badge: String,
    /// Official e-mail address.
    pub email: String,
}

/// A non-disclosure order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NondisclosureInfo {
    /// Who issued it.
    pub authority: String,
    /// Its last day (YYYY-MM-DD, UTC; it holds through that day); none: until lifted.
    #[serde(default)]
    pub until: Option<String>,
}

/// A legal request as legal officers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalRequest {
    /// Id.
    pub id: Uuid,
    /// Its reference to quote back, e.g. `LR-2026-000123`.
    pub reference: String,
    /// The agency.
    pub agency: AgencyInfo,
    /// The officer.
    pub officer: OfficerInfo,
    /// Whether the officer's e-mail domain is one the deployment verified.
    pub officer_domain_verified: bool,
    /// The kind of process.
    pub process: String,
    /// The issuing court.
    pub court: Option<String>,
    /// The accounts named: as given, and the account each resolved to (none: no such
    /// account).
    pub targets: Vec<LegalTargetInfo>,
    /// The data asked for.
    pub categories: Vec<String>,
    /// The first day covered.
    pub from: String,
    /// The last day covered.
    pub to: String,
    /// The non-disclosure order.
    pub nondisclosure: Option<NondisclosureInfo>,
    /// The emergency basis.
    pub emergency_basis: Option<String>,
    /// Who entered it.
    pub received_by: Uuid,
    /// When (Unix ms).
    pub received_at_ms: i64,
    /// How it was answered, once reviewed.
    pub review: Option<LegalReviewInfo>,
    /// The documents served with it.
    #[serde(default)]
    pub documents: Vec<DocumentInfo>,
    /// The emergency request this legal process follows up.
    #[serde(default)]
    pub follows_up: Option<String>,
    /// For an emergency request: the legal process received since that follows it up.
    #[serde(default)]
    pub followed_up_by: Vec<String>,
    /// An emergency request with no follow-up legal process yet.
    #[serde(default)]
    pub follow_up_missing: bool,
}

/// A legal request's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalTargetInfo {
    /// As given: `username:NAME` or `account:UUID`.
    pub given: String,
    /// The account it names, if one exists.
    pub account: Option<Uuid>,
}

/// A legal request's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalReviewInfo {
    /// `full`, `partial` or `rejected`.
    pub outcome: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// How a partial acceptance narrowed it.
    pub narrowing: Option<String>,
    /// The data categories accepted.
    pub accepted: Vec<String>,
    /// Who reviewed it.
    pub by: Uuid,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// `POST /v1/staff/legal-requests/{id}/review`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewLegalRequest {
    /// `full`, `partial` or `rejected`.
    pub outcome: String,
    /// For a rejection: `invalid_process`, `incomplete`, `overbroad`, `wrong_entity`,
    /// `no_such_account` or `insufficient_for_tier`.
    #[serde(default)]
    pub reason: Option<String>,
    /// For a partial acceptance: how it narrows the request.
    #[serde(default)]
    pub narrowing: Option<String>,
    /// For a partial acceptance: the categories accepted.
    #[serde(default)]
    pub accepted: Vec<String>,
}

/// A preservation hold: an account's conversations over a period, kept from destruction
/// (it grants no access).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Id.
    pub id: Uuid,
    /// The legal request it was placed for.
    pub legal_request_id: Uuid,
    /// The account held.
    pub account: Uuid,
    /// Its conversations when the hold was placed.
    pub conversations: Vec<Uuid>,
    /// The first day of messages held.
    pub from: String,
    /// The last day.
    pub to: String,
    /// When it was placed (Unix ms).
    pub placed_at_ms: i64,
    /// When it ends unless released sooner.
    pub expires_at_ms: i64,
    /// Whether it was extended (once only).
    pub extended: bool,
    /// How it ended: `released` or `expired`; none while it holds.
    pub ended: Option<String>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}
