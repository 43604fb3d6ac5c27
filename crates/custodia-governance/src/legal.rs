//! Legal requests: the intake of what an agency served, and its legal review against the
//! tier rules. Legal officers only; every step is in the audit log before it is stored.
//!
//! The tier rules are data ([`SUFFICIENT`]): which kinds of process can compel which data.
//!
//! | data | sufficient process |
//! |---|---|
//! | subscriber | subpoena, court order, search warrant, MLAT / letter rogatory, emergency request |
//! | metadata | court order, search warrant, MLAT / letter rogatory, emergency request |
//! | content | search warrant, MLAT / letter rogatory, emergency request |
//!
//! A preservation request compels nothing to be disclosed (it preserves); "other" process
//! compels nothing by itself. An emergency request is a voluntary disclosure in imminent
//! danger, on its own short, reviewed path.

use std::net::IpAddr;

use custodia_audit::{AuditEvent, EventKind, Subject};
use custodia_core::{
    Country, DataCategory, LegalOutcome, LegalProcessType, LegalRequestId, RejectionReason,
    StaffRole, Timestamp, UserId, Username,
};
use custodia_service::{ServiceError, ServiceResult};
use custodia_store::{
    Agency, LegalRequestRecord, LegalReview, LegalTarget, NondisclosureOrder, Officer,
    ServedDocument, StoreError,
};
use sha2::Digest;

use crate::{Governance, StaffPrincipal};

/// Which process is sufficient for which data category.
pub const SUFFICIENT: &[(DataCategory, &[LegalProcessType])] = {
    use LegalProcessType::*;
    &[
        (
            DataCategory::Subscriber,
            &[
                Subpoena,
                CourtOrder,
                SearchWarrant,
                MutualLegalAssistance,
                EmergencyRequest,
            ],
        ),
        (
            DataCategory::Metadata,
            &[
                CourtOrder,
                SearchWarrant,
                MutualLegalAssistance,
                EmergencyRequest,
            ],
        ),
        (
            DataCategory::Content,
            &[SearchWarrant, MutualLegalAssistance, EmergencyRequest],
        ),
    ]
};

/// Whether `process` can compel `category`.
pub fn sufficient(process: LegalProcessType, category: DataCategory) -> bool {
    SUFFICIENT
        .iter()
        .any(|(c, processes)| *c == category && processes.contains(&process))
}

/// The most accounts one request may name.
pub const MAX_TARGETS: usize = 100;

/// A legal request as a legal officer enters it from what was served.
#[derive(Debug, Clone)]
pub struct NewLegalRequest {
    /// The agency.
    pub agency_name: String,
    /// Its country.
    pub agency_country: Country,
    /// Its state or region.
    pub agency_subdivision: Option<String>,
    /// The officer's name.
    pub officer_name: String,
    /// Badge number or official id.
    pub officer_badge: String,
    /// Official e-mail.
    pub officer_email: String,
    /// The kind of process.
    pub process: LegalProcessType,
    /// The issuing court.
    pub court: Option<String>,
    /// The accounts named: usernames or account ids (optionally `username:` or
    /// `account:` first).
    pub targets: Vec<String>,
    /// The data asked for.
    pub categories: Vec<DataCategory>,
    /// The period covered.
    pub period: (Timestamp, Timestamp),
    /// A non-disclosure order that comes with it.
    pub nondisclosure: Option<NondisclosureOrder>,
    /// For an emergency request: the facts of the imminent risk of death or serious
    /// physical injury.
    pub emergency_basis: Option<String>,
    /// The documents served (the warrant, its schedule, …) as uploaded.
    pub documents: Vec<NewDocument>,
    /// For the legal process that follows an emergency request: that request's
    /// reference (`LR-YYYY-NNNNNN`) or id.
    pub follows_up: Option<String>,
}

/// A served document as uploaded.
#[derive(Clone)]
pub struct NewDocument {
    /// Its file name.
    pub name: String,
    /// Its media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for NewDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDocument")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Most documents one legal request carries.
pub const MAX_DOCUMENTS: usize = 10;
/// Most bytes of served documents one legal request carries, all together.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;

/// How a legal officer answers a legal request.
#[derive(Debug, Clone)]
pub struct LegalDecision {
    /// Full, partial or rejected.
    pub outcome: LegalOutcome,
    /// Why, when rejected.
    pub reason: Option<RejectionReason>,
    /// How a partial acceptance narrows it.
    pub narrowing: Option<String>,
    /// The categories accepted, when partial (full accepts all asked for).
    pub accepted: Vec<DataCategory>,
}

/// A legal request as legal officers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalRequestView {
    /// The stored record.
    pub record: LegalRequestRecord,
    /// Its external reference, e.g. `LR-2026-000123`.
    pub reference: String,
    /// For an emergency request: the references of the legal process received since that
    /// follows it up (empty: none yet — shown as missing).
    pub followed_up_by: Vec<String>,
    /// The reference of the emergency request this one follows up, if it does.
    pub follows_up: Option<String>,
}

const LEGAL: &[StaffRole] = &[StaffRole::LegalOfficer];

fn text(value: &str, max: usize, what: &'static str) -> ServiceResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ServiceError::Rejected(what));
    }
    Ok(v.to_owned())
}

fn optional(
    value: Option<String>,
    max: usize,
    what: &'static str,
) -> ServiceResult<Option<String>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(v, max, what).map(Some),
    }
}

/// The e-mail's domain, lower-cased, if the address has the shape local@domain.tld.
fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.rsplit_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    ok.then(|| domain.to_ascii_lowercase())
}

/// How a target names an account.
enum TargetId {
    Username(Username),
    Account(UserId),
}

/// Reads one target: a username or an account id; refuses what only describes a person.
fn target(raw: &str) -> ServiceResult<TargetId> {
    let raw = raw.trim();
    let (kind, value) = match raw.split_once(':') {
        Some(("username", v)) => (Some("username"), v.trim()),
        Some(("account", v)) => (Some("account"), v.trim()),
        _ => (None, raw),
    };
    if value.parse::<IpAddr>().is_ok() {
        return Err(ServiceError::Rejected(
            "an IP address alone does not identify an account: name each account by its username or account id",
        ));
    }
    if kind != Some("username")
        && let Ok(id) = value.parse::<uuid::Uuid>()
    {
        return Ok(TargetId::Account(UserId::from_uuid(id)));
    }
    if kind == Some("account") {
        return Err(ServiceError::Rejected(
            "an account id is a UUID such as 0192f0c5-1b2c-7d3e-8f40-123456789abc",
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(ServiceError::Rejected(
            "a display name does not identify an account: name each account by its username or account id",
        ));
    }
    Username::parse(value).map(TargetId::Username).map_err(|_| {
        ServiceError::Rejected(
            "a target is a username (3-32 of a-z 0-9 _ . -) or an account id; a display name or an IP address alone is not enough",
        )
    })
}

impl Governance {
    /// A legal officer enters a legal request as served. Logged (`legal.received`, with
    /// what a transparency report counts and the targets withheld) before it is stored.
    pub async fn receive_legal_request(
        &self,
        by: &StaffPrincipal,
        new: NewLegalRequest,
    ) -> ServiceResult<LegalRequestView> {
        by.require(LEGAL, "only legal officers receive legal requests")?;
        let inner = &self.inner;
        let now = inner.clock.now();
        let agency = Agency {
            name: text(
                &new.agency_name,
                200,
                "give the agency's name (1-200 characters)",
            )?,
            country: new.agency_country,
            subdivision: optional(
                new.agency_subdivision,
                100,
                "the agency's state or region has at most 100 characters",
            )?,
        };
        let email = text(
            &new.officer_email,
            254,
            "give the officer's official e-mail address",
        )?;
        let domain = email_domain(&email).ok_or(ServiceError::Rejected(
            "the officer's e-mail address must look like name@agency.example",
        ))?;
        let domain_verified = inner.config.verified_agency_domains.iter().any(|d| {
            let d = d.trim().trim_start_matches('.').to_ascii_lowercase();
            !d.is_empty() && (domain == d || domain.ends_with(&format!(".{d}")))
        });
        let officer = Officer {
            name: text(
                &new.officer_name,
                200,
                "give the officer's name (1-200 characters)",
            )?,
            badge: text(
                &new.officer_badge,
                100,
                "give the officer's badge number or official id (1-100 characters)",
            )?,
            email,
            domain_verified,
        };
        let court = optional(
            new.court,
            200,
            "the court's name has at most 200 characters",
        )?;
        if new.targets.is_empty() || new.targets.len() > MAX_TARGETS {
            return Err(ServiceError::Rejected(
                "name 1 to 100 accounts, each by its username or account id",
            ));
        }
        let mut targets = Vec::with_capacity(new.targets.len());
        for raw in &new.targets {
            let (given, account) = match target(raw)? {
                TargetId::Username(name) => {
                    let found = inner.store.accounts.user_by_name(&name).await?;
                    (format!("username:{name}"), found.map(|u| u.id))
                }
                TargetId::Account(id) => {
                    let found = inner.store.accounts.user_by_id(id).await?;
                    (format!("account:{}", id.as_uuid()), found.map(|u| u.id))
                }
            };
            if !targets.iter().any(|t: &LegalTarget| t.given == given) {
                targets.push(LegalTarget { given, account });
            }
        }
        let mut categories = new.categories;
        categories.sort();
        categories.dedup();
        if categories.is_empty() {
            return Err(ServiceError::Rejected(
                "name the data asked for: subscriber, metadata and/or content",
            ));
        }
        if new.period.1 < new.period.0 {
            return Err(ServiceError::Rejected("the period ends before it starts"));
        }
        let nondisclosure = match new.nondisclosure {
            None => None,
            Some(o) => {
                if o.until.is_some_and(|t| t <= now) {
                    return Err(ServiceError::Rejected(
                        "a non-disclosure order must end in the future (or give no end)",
                    ));
                }
                Some(NondisclosureOrder {
                    authority: text(
                        &o.authority,
                        200,
                        "name the authority that issued the non-disclosure order",
                    )?,
                    until: o.until,
                })
            }
        };
        let emergency = new.process == LegalProcessType::EmergencyRequest;
        let emergency_basis = optional(
            new.emergency_basis,
            2000,
            "the emergency basis has at most 2000 characters",
        )?;
        match (emergency, &emergency_basis) {
            (true, None) => {
                return Err(ServiceError::Rejected(
                    "an emergency request states its basis: the facts of the imminent risk of death or serious physical injury",
                ));
            }
            (false, Some(_)) => {
                return Err(ServiceError::Rejected(
                    "only an emergency request carries an emergency basis",
                ));
            }
            _ => {}
        }
        let follows_up = match optional(
            new.follows_up,
            64,
            "follows_up is the emergency request's reference, e.g. LR-2026-000123",
        )? {
            None => None,
            Some(given) => {
                let all = inner.store.cases.legal_requests().await?;
                let found = all
                    .iter()
                    .find(|r| reference_of(r) == given || r.id.to_string() == given)
                    .ok_or(ServiceError::Rejected(
                        "follows_up names no legal request: give the emergency request's reference, e.g. LR-2026-000123",
                    ))?;
                if found.process != LegalProcessType::EmergencyRequest || emergency {
                    return Err(ServiceError::Rejected(
                        "follows_up links the legal process that follows an emergency request to that emergency request",
                    ));
                }
                Some(found.id)
            }
        };
        let id = LegalRequestId::at(now);
        let (documents, sealed) = self.served_documents(id, new.documents)?;
        let mut record = LegalRequestRecord {
            id,
            number: 0,
            agency,
            officer,
            process: new.process,
            court,
            targets,
            categories,
            period: new.period,
            nondisclosure,
            emergency_basis,
            received_by: by.staff_id,
            received_at: now,
            review: None,
            received_log_index: None,
            documents,
            follows_up,
        };
        let mut scope = vec![
            ("process".into(), record.process.as_str().into()),
            ("country".into(), record.agency.country.as_str().into()),
            ("accounts".into(), record.targets.len().to_string()),
            (
                "categories".into(),
                custodia_store::rows::categories_text(&record.categories),
            ),
            (
                "nondisclosure".into(),
                if record.nondisclosure.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
            (
                "verified_domain".into(),
                if record.officer.domain_verified {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
        ];
        if !record.documents.is_empty() {
            // What was served, by hash: the log then vouches for the documents.
            scope.push((
                "documents_sha256".into(),
                record
                    .documents
                    .iter()
                    .map(|d| hex(&d.sha256))
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
        if let Some(f) = record.follows_up {
            scope.push(("follows_up".into(), f.to_string()));
        }
        let receipt = self
            .append(AuditEvent {
                kind: EventKind::LegalReceived,
                time: now,
                actor: Some(by.actor()),
                reason: None,
                case: Some(record.id.to_string()),
                // Named, but never findable by those named: no tip-off.
                subjects: record
                    .targets
                    .iter()
                    .filter_map(|t| t.account)
                    .map(Subject::Withheld)
                    .collect(),
                scope,
            })
            .await?;
        record.received_log_index = Some(receipt.index);
        let number = match inner
            .store
            .cases
            .add_legal_request(record.clone(), sealed.clone())
            .await
        {
            // Another node took the number at once: the next one is free.
            Err(StoreError::Conflict) => {
                inner
                    .store
                    .cases
                    .add_legal_request(record.clone(), sealed)
                    .await?
            }
            other => other?,
        };
        tracing::info!(legal_request = %record.id, number, "legal request received");
        self.legal_request(by, record.id).await
    }

    /// Checks the served documents and seals each (bound to the request and its hash).
    fn served_documents(
        &self,
        id: LegalRequestId,
        documents: Vec<NewDocument>,
    ) -> ServiceResult<(Vec<ServedDocument>, Vec<custodia_store::SealedBody>)> {
        if documents.len() > MAX_DOCUMENTS {
            return Err(ServiceError::Rejected(
                "at most 10 served documents per legal request",
            ));
        }
        if documents.iter().map(|d| d.bytes.len()).sum::<usize>() > MAX_DOCUMENT_BYTES {
            return Err(ServiceError::Rejected(
                "the served documents are at most 20 MiB together",
            ));
        }
        let mut described = Vec::with_capacity(documents.len());
        let mut sealed = Vec::with_capacity(documents.len());
        for d in documents {
            let name = text(
                &d.name,
                200,
                "each served document has a file name (1-200 characters)",
            )?;
            let media_type = d.media_type.trim().to_ascii_lowercase();
            if !media_type_ok(&media_type) {
                return Err(ServiceError::Rejected(
                    "each served document has a media type such as application/pdf",
                ));
            }
            if d.bytes.is_empty() {
                return Err(ServiceError::Rejected("a served document is empty"));
            }
            let sha256: [u8; 32] = sha2::Sha256::digest(&d.bytes).into();
            sealed.push(
                self.inner
                    .keys
                    .seal_served_document(id, &sha256, &d.bytes)?,
            );
            described.push(ServedDocument {
                name,
                media_type,
                sha256,
                size: d.bytes.len() as u64,
            });
        }
        Ok((described, sealed))
    }

    /// Served document `position` of a legal request, opened (legal officers). Not member
    /// data: what the agency served.
    pub async fn served_document(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
        position: u32,
    ) -> ServiceResult<(ServedDocument, zeroize::Zeroizing<Vec<u8>>)> {
        let view = self.legal_request(by, id).await?;
        let described = view
            .record
            .documents
            .get(position as usize)
            .cloned()
            .ok_or(ServiceError::NotFound("served document"))?;
        let sealed = self
            .inner
            .store
            .cases
            .legal_document(id, position)
            .await?
            .ok_or(ServiceError::NotFound("served document"))?;
        let bytes = self
            .inner
            .keys
            .open_served_document(id, &described.sha256, &sealed)?;
        Ok((described, bytes))
    }

    /// Every legal request, newest first (legal officers).
    pub async fn legal_requests(
        &self,
        by: &StaffPrincipal,
    ) -> ServiceResult<Vec<LegalRequestView>> {
        by.require(LEGAL, "only legal officers see legal requests")?;
        let all = self.inner.store.cases.legal_requests().await?;
        Ok(all.iter().map(|r| legal_view(r, &all)).collect())
    }

    /// One legal request (legal officers).
    pub async fn legal_request(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
    ) -> ServiceResult<LegalRequestView> {
        by.require(LEGAL, "only legal officers see legal requests")?;
        let all = self.inner.store.cases.legal_requests().await?;
        all.iter()
            .find(|r| r.id == id)
            .map(|r| legal_view(r, &all))
            .ok_or(ServiceError::NotFound("legal request"))
    }

    /// A legal officer's review: accept in full, in part (narrowed, written down), or
    /// reject with a reason. Only categories the process can compel are accepted (the
    /// tier rules). Logged (`legal.reviewed`) before it is stored; final.
    pub async fn review_legal_request(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
        decision: LegalDecision,
    ) -> ServiceResult<LegalRequestView> {
        let view = self.legal_request(by, id).await?;
        let r = &view.record;
        if r.review.is_some() {
            return Err(ServiceError::Conflict(
                "this legal request was already reviewed; a review is final",
            ));
        }
        let mut accepted = match decision.outcome {
            LegalOutcome::Full => r.categories.clone(),
            LegalOutcome::Partial => decision.accepted.clone(),
            _ => Vec::new(),
        };
        accepted.sort();
        accepted.dedup();
        let narrowing = optional(
            decision.narrowing,
            2000,
            "the narrowing has at most 2000 characters",
        )?;
        let reason = match decision.outcome {
            LegalOutcome::Rejected => Some(decision.reason.ok_or(ServiceError::Rejected(
                "a rejection gives its reason: invalid_process, incomplete, overbroad, wrong_entity, no_such_account or insufficient_for_tier",
            ))?),
            _ if decision.reason.is_some() => {
                return Err(ServiceError::Rejected(
                    "only a rejection gives a rejection reason",
                ));
            }
            _ => None,
        };
        if decision.outcome == LegalOutcome::Partial {
            if narrowing.is_none() {
                return Err(ServiceError::Rejected(
                    "a partial acceptance writes down how it narrows the request",
                ));
            }
            if accepted.is_empty() || accepted.iter().any(|c| !r.categories.contains(c)) {
                return Err(ServiceError::Rejected(
                    "a partial acceptance accepts some of the data categories the request asks for",
                ));
            }
        }
        if let Some(c) = accepted.iter().find(|c| !sufficient(r.process, **c)) {
            return Err(ServiceError::Rejected(match c {
                DataCategory::Content => {
                    "this process cannot compel content (that needs a search warrant or MLAT / letter rogatory): accept less, or reject as insufficient_for_tier"
                }
                DataCategory::Metadata => {
                    "this process cannot compel metadata (that needs a court order or more): accept less, or reject as insufficient_for_tier"
                }
                _ => {
                    "this process cannot compel subscriber data (that needs a subpoena or more): reject as insufficient_for_tier"
                }
            }));
        }
        if decision.outcome == LegalOutcome::Full && accepted.is_empty() {
            return Err(ServiceError::Rejected(
                "nothing to accept: this process compels none of the data asked for",
            ));
        }
        let now = self.inner.clock.now();
        let mut review = LegalReview {
            outcome: decision.outcome,
            reason,
            narrowing,
            accepted,
            by: by.staff_id,
            at: now,
            log_index: None,
        };
        let mut scope = vec![("outcome".into(), review.outcome.as_str().into())];
        if let Some(reason) = review.reason {
            scope.push(("reason".into(), reason.as_str().into()));
        }
        scope.push((
            "accepted".into(),
            custodia_store::rows::categories_text(&review.accepted),
        ));
        let receipt = self
            .append(AuditEvent {
                kind: EventKind::LegalReviewed,
                time: now,
                actor: Some(by.actor()),
                reason: None,
                case: Some(id.to_string()),
                subjects: Vec::new(),
                scope,
            })
            .await?;
        review.log_index = Some(receipt.index);
        if !self
            .inner
            .store
            .cases
            .review_legal_request(id, review)
            .await?
        {
            return Err(ServiceError::Conflict(
                "this legal request was reviewed meanwhile; a review is final",
            ));
        }
        self.legal_request(by, id).await
    }
}

/// The review of a request that may be produced: accepted in full or in part.
pub(crate) fn accepted_review(r: &LegalRequestRecord) -> ServiceResult<&LegalReview> {
    match &r.review {
        Some(v) if v.outcome != LegalOutcome::Rejected => Ok(v),
        Some(_) => Err(ServiceError::Rejected(
            "a rejected legal request produces nothing",
        )),
        None => Err(ServiceError::Rejected(
            "review the legal request first: only an accepted request is produced",
        )),
    }
}

/// A request's external reference, `LR-YYYY-NNNNNN` (the year it was received).
fn reference_of(record: &LegalRequestRecord) -> String {
    let year = time::OffsetDateTime::from_unix_timestamp(record.received_at.as_millis() / 1000)
        .map_or(0, |t| t.year());
    format!("LR-{year}-{:06}", record.number)
}

/// `record` as legal officers see it, with its follow-ups found among `all`.
fn legal_view(record: &LegalRequestRecord, all: &[LegalRequestRecord]) -> LegalRequestView {
    LegalRequestView {
        reference: reference_of(record),
        followed_up_by: all
            .iter()
            .filter(|r| r.follows_up == Some(record.id))
            .map(reference_of)
            .collect(),
        follows_up: record
            .follows_up
            .and_then(|f| all.iter().find(|r| r.id == f))
            .map(reference_of),
        record: record.clone(),
    }
}

/// A media type of the shape `type/subtype` (RFC 6838 characters; no parameters).
fn media_type_ok(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    matches!(t.split_once('/'), Some((a, b)) if token(a) && token(b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a preservation hold lasts, and how much one extension adds.
pub const HOLD_PERIOD: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

impl Governance {
    /// A legal officer places preservation holds for a legal request — a preservation
    /// request (unless rejected) or any accepted request: one per named account, on all
    /// its conversations, over the request's period, for 90 days. A hold grants no access;
    /// while it holds nothing it covers is destroyed. Each is logged (`hold.placed`) before
    /// it is stored.
    pub async fn place_holds(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
    ) -> ServiceResult<Vec<custodia_store::HoldRecord>> {
        let view = self.legal_request(by, id).await?;
        let r = &view.record;
        let accepted = r
            .review
            .as_ref()
            .map(|v| v.outcome != LegalOutcome::Rejected);
        let allowed = match accepted {
            Some(accepted) => accepted,
            None => r.process == LegalProcessType::PreservationRequest,
        };
        if !allowed {
            return Err(ServiceError::Rejected(
                "holds are placed for a preservation request or an accepted legal request",
            ));
        }
        let store = &self.inner.store.cases;
        if store.holds_of(id).await?.iter().any(|h| h.ended.is_none()) {
            return Err(ServiceError::Conflict(
                "this request's holds are in place; extend or release them",
            ));
        }
        let now = self.inner.clock.now();
        let mut placed = Vec::new();
        for account in r.targets.iter().filter_map(|t| t.account) {
            let conversations = self
                .inner
                .store
                .conversations
                .conversations_of(account)
                .await?
                .into_iter()
                .map(|c| c.conversation.id)
                .collect::<Vec<_>>();
            let hold = custodia_store::HoldRecord {
                id: custodia_core::HoldId::at(now),
                legal_request: id,
                account,
                conversations,
                period: r.period,
                placed_by: by.staff_id,
                placed_at: now,
                expires_at: now.plus(HOLD_PERIOD),
                extended: false,
                ended: None,
            };
            self.append(AuditEvent {
                kind: EventKind::HoldPlaced,
                time: now,
                actor: Some(by.actor()),
                reason: None,
                case: Some(id.to_string()),
                subjects: vec![Subject::Withheld(account)],
                scope: vec![
                    ("hold".into(), hold.id.to_string()),
                    ("conversations".into(), hold.conversations.len().to_string()),
                    ("until_ms".into(), hold.expires_at.as_millis().to_string()),
                ],
            })
            .await?;
            store.add_hold(hold.clone()).await?;
            placed.push(hold);
        }
        if placed.is_empty() {
            return Err(ServiceError::Rejected(
                "none of the request's targets is an account: there is nothing to hold",
            ));
        }
        Ok(placed)
    }

    /// The holds of a legal request (legal officers).
    pub async fn holds(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
    ) -> ServiceResult<Vec<custodia_store::HoldRecord>> {
        self.legal_request(by, id).await?;
        Ok(self.inner.store.cases.holds_of(id).await?)
    }

    /// Extends a hold once, by 90 days from its current end (logged first).
    pub async fn extend_hold(
        &self,
        by: &StaffPrincipal,
        id: custodia_core::HoldId,
    ) -> ServiceResult<custodia_store::HoldRecord> {
        let hold = self.holding(by, id).await?;
        if hold.extended {
            return Err(ServiceError::Rejected(
                "a hold is extended once only; it is released when this extension ends",
            ));
        }
        let until = hold.expires_at.plus(HOLD_PERIOD);
        self.hold_event(by, &hold, EventKind::HoldExtended, Some(until))
            .await?;
        if !self.inner.store.cases.extend_hold(id, until).await? {
            return Err(ServiceError::Conflict(
                "the hold changed meanwhile; reload it",
            ));
        }
        self.hold_record(by, id).await
    }

    /// Releases a hold (logged first); what it kept from deletion is destroyed now.
    pub async fn release_hold(
        &self,
        by: &StaffPrincipal,
        id: custodia_core::HoldId,
    ) -> ServiceResult<custodia_store::HoldRecord> {
        let hold = self.holding(by, id).await?;
        self.hold_event(by, &hold, EventKind::HoldReleased, None)
            .await?;
        let now = self.inner.clock.now();
        if !self
            .inner
            .store
            .cases
            .end_hold(id, now, custodia_core::HoldEnd::Released)
            .await?
        {
            return Err(ServiceError::Conflict(
                "the hold changed meanwhile; reload it",
            ));
        }
        self.purge_deleted().await;
        self.hold_record(by, id).await
    }

    /// Ends the holds whose time ran out (every node, periodically; each ends once) and
    /// logs each (`hold.expired`); then destroys what they no longer keep. Returns how
    /// many ended.
    pub async fn expire_holds(&self) -> ServiceResult<usize> {
        let now = self.inner.clock.now();
        let expired = self.inner.store.cases.expire_holds(now).await?;
        for hold in &expired {
            let event = AuditEvent {
                kind: EventKind::HoldExpired,
                time: now,
                actor: None,
                reason: None,
                case: Some(hold.legal_request.to_string()),
                subjects: vec![Subject::Withheld(hold.account)],
                scope: vec![("hold".into(), hold.id.to_string())],
            };
            if let Err(e) = self.append(event).await {
                tracing::error!(hold = %hold.id, error = %e, "an expired hold could not be logged");
            }
        }
        if !expired.is_empty() {
            self.purge_deleted().await;
        }
        Ok(expired.len())
    }

    /// Destroys what deleted messages no hold keeps any more.
    pub(crate) async fn purge_deleted(&self) {
        let mut destroyed = 0;
        loop {
            match self.inner.store.messages.purge_deleted(1000).await {
                Ok(1000) => destroyed += 1000,
                Ok(n) => {
                    destroyed += n;
                    if destroyed > 0 {
                        tracing::info!(
                            bodies = destroyed,
                            "deleted messages destroyed after their hold"
                        );
                        self.scrub().await;
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "destroying deleted messages failed; retried at the next pass");
                    return;
                }
            }
        }
    }

    /// A hold still in force.
    async fn holding(
        &self,
        by: &StaffPrincipal,
        id: custodia_core::HoldId,
    ) -> ServiceResult<custodia_store::HoldRecord> {
        let hold = self.hold_record(by, id).await?;
        if hold.ended.is_some() {
            return Err(ServiceError::Rejected("this hold has ended"));
        }
        Ok(hold)
    }

    async fn hold_record(
        &self,
        by: &StaffPrincipal,
        id: custodia_core::HoldId,
    ) -> ServiceResult<custodia_store::HoldRecord> {
        by.require(LEGAL, "only legal officers handle preservation holds")?;
        self.inner
            .store
            .cases
            .hold(id)
            .await?
            .ok_or(ServiceError::NotFound("hold"))
    }

    async fn hold_event(
        &self,
        by: &StaffPrincipal,
        hold: &custodia_store::HoldRecord,
        kind: EventKind,
        until: Option<Timestamp>,
    ) -> ServiceResult<()> {
        let mut scope = vec![("hold".into(), hold.id.to_string())];
        if let Some(until) = until {
            scope.push(("until_ms".into(), until.as_millis().to_string()));
        }
        self.append(AuditEvent {
            kind,
            time: self.inner.clock.now(),
            actor: Some(by.actor()),
            reason: None,
            case: Some(hold.legal_request.to_string()),
            subjects: vec![Subject::Withheld(hold.account)],
            scope,
        })
        .await
        .map(|_| ())
    }
}

/// A non-disclosure order that gives no end holds until it is lifted: its notices wait
/// until this far-off day (9999-12-31), which a legal officer moves when it is lifted.
pub const UNTIL_LIFTED: Timestamp = Timestamp::from_millis(253_402_300_799_999);

/// How long a produced grant lasts (an emergency's is shorter: its policy caps it).
const PRODUCTION_GRANT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl Governance {
    /// Production: from an accepted legal request that accepts message data, opens a
    /// legal case for each named account's conversation holding messages in the request's
    /// period, and asks for access to exactly those messages (in grants of at most
    /// [`crate::MAX_GRANT_MESSAGES`]) at the accepted tier — the intake's fields, not
    /// retyped. The requests then need the approvals their policy demands, as any other:
    /// there is no side door. Returns the access requests made.
    pub async fn produce(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
    ) -> ServiceResult<Vec<crate::RequestView>> {
        let view = self.legal_request(by, id).await?;
        let r = &view.record;
        let accepted = &accepted_review(r)?.accepted;
        let tier = if accepted.contains(&DataCategory::Content) {
            custodia_core::DataTier::Content
        } else if accepted.contains(&DataCategory::Metadata) {
            custodia_core::DataTier::Metadata
        } else {
            return Err(ServiceError::Rejected(
                "the acceptance covers no message data (content or metadata) to produce",
            ));
        };
        let inner = &self.inner;
        // Cases an earlier production opened (it may have stopped halfway: those without
        // requests get them now; those with requests are done).
        let earlier: Vec<custodia_store::CaseRecord> = inner
            .store
            .cases
            .cases()
            .await?
            .into_iter()
            .filter(|c| c.reference.as_deref() == Some(view.reference.as_str()))
            .collect();
        let reason = if r.process == LegalProcessType::EmergencyRequest {
            custodia_core::ReasonCode::EmergencyDisclosure
        } else {
            custodia_core::ReasonCode::LegalProcess
        };
        let duration = PRODUCTION_GRANT.min(crate::Policy::of(reason).max_grant);
        let nondisclosure_until = r
            .nondisclosure
            .as_ref()
            .map(|o| o.until.unwrap_or(UNTIL_LIFTED));
        let mut conversations = Vec::new();
        for account in r.targets.iter().filter_map(|t| t.account) {
            for c in inner.store.conversations.conversations_of(account).await? {
                if !conversations.contains(&c.conversation.id) {
                    conversations.push(c.conversation.id);
                }
            }
        }
        let mut requests = Vec::new();
        for conversation in conversations {
            let Some((first, last)) = inner
                .store
                .messages
                .seq_span(conversation, r.period)
                .await?
            else {
                continue;
            };
            let case_id = match earlier.iter().find(|c| c.conversation_id == conversation) {
                Some(c) if !inner.store.cases.requests_of_case(c.id).await?.is_empty() => {
                    continue;
                }
                Some(c) => c.id,
                None => {
                    self.open_production_case(
                        by,
                        id,
                        &view.reference,
                        conversation,
                        (first, last),
                        nondisclosure_until,
                    )
                    .await?
                }
            };
            let mut from = first;
            while from <= last {
                let to = last.min(from + crate::MAX_GRANT_MESSAGES - 1);
                requests.push(
                    self.request_access(
                        by,
                        crate::NewRequest {
                            case_id,
                            reason,
                            seqs: (from, to),
                            tier,
                            duration,
                            justification: format!(
                                "{}: {} acceptance of a {} from {} ({})",
                                view.reference,
                                r.review.as_ref().map_or("", |v| v.outcome.as_str()),
                                r.process,
                                r.agency.name,
                                r.agency.country
                            ),
                        },
                    )
                    .await?,
                );
                from = to + 1;
            }
        }
        if requests.is_empty() {
            return Err(if earlier.is_empty() {
                ServiceError::Rejected(
                    "the named accounts have no messages in the request's period: nothing to produce",
                )
            } else {
                ServiceError::Conflict("this legal request was produced already; see its cases")
            });
        }
        Ok(requests)
    }

    /// Opens the legal case through which request `id` is produced for one conversation
    /// (logged first, naming the request).
    async fn open_production_case(
        &self,
        by: &StaffPrincipal,
        id: LegalRequestId,
        reference: &str,
        conversation: custodia_core::ConversationId,
        (first, last): (u64, u64),
        nondisclosure_until: Option<Timestamp>,
    ) -> ServiceResult<custodia_core::CaseId> {
        let now = self.inner.clock.now();
        let case = custodia_store::CaseRecord {
            id: custodia_core::CaseId::at(now),
            kind: custodia_core::CaseKind::Legal,
            conversation_id: conversation,
            reporter: None,
            category: None,
            comment: None,
            reported: Vec::new(),
            evidence: Vec::new(),
            scope: (first, last),
            reference: Some(reference.to_owned()),
            opened_by: Some(by.staff_id),
            nondisclosure_until,
            opened_at: now,
            priority: custodia_core::CasePriority::Normal,
            files: Vec::new(),
        };
        self.open_case(
            case,
            Some(by.actor()),
            vec![Subject::Conversation(conversation)],
            vec![
                ("kind".into(), "legal".into()),
                ("legal_request".into(), id.to_string()),
                ("covers".into(), format!("{first}-{last}")),
            ],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tier table, rule by rule: every process against every category.
    #[test]
    fn each_process_compels_exactly_the_data_its_tier_allows() {
        use DataCategory::{Content, Metadata, Subscriber};
        use LegalProcessType::*;
        let expected: &[(LegalProcessType, &[DataCategory])] = &[
            (Subpoena, &[Subscriber]),
            (CourtOrder, &[Subscriber, Metadata]),
            (SearchWarrant, &[Subscriber, Metadata, Content]),
            (MutualLegalAssistance, &[Subscriber, Metadata, Content]),
            (EmergencyRequest, &[Subscriber, Metadata, Content]),
            (PreservationRequest, &[]),
            (Other, &[]),
        ];
        assert_eq!(expected.len(), LegalProcessType::ALL.len(), "every process");
        for (process, allowed) in expected {
            for category in DataCategory::ALL {
                assert_eq!(
                    sufficient(*process, *category),
                    allowed.contains(category),
                    "{process} for {category}"
                );
            }
        }
    }

    #[test]
    fn targets_are_usernames_or_account_ids_never_names_or_addresses() {
        for ok in [
            "alice",
            "username:alice",
            "Alice",
            "account:0192f0c5-1b2c-7d3e-8f40-123456789abc",
            "0192f0c5-1b2c-7d3e-8f40-123456789abc",
        ] {
            assert!(target(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("Alice Smith", "display name"),
            ("203.0.113.7", "IP address"),
            ("2001:db8::1", "IP address"),
            ("account:alice", "UUID"),
            ("al", "username"),
            ("", "username"),
        ] {
            match target(bad) {
                Err(ServiceError::Rejected(why)) => assert!(why.contains(says), "{bad}: {why}"),
                _ => panic!("{bad} accepted"),
            }
        }
    }

    #[test]
    fn an_officer_address_has_a_domain() {
        assert_eq!(
            email_domain("d.smith@Met.Police.UK").as_deref(),
            Some("met.police.uk")
        );
        for bad in ["nobody", "@police.uk", "a@localhost", "a@.uk", "a@x y.uk"] {
            assert!(email_domain(bad).is_none(), "{bad}");
        }
    }
}
