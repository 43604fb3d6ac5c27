//! Access requests, their decisions, the grants they become, and audited reads.
//!
//! A read is allowed only within an approved grant, by its requester, inside its window,
//! over its conversation and sequence range. The read — who, role, case, reason, exactly
//! which messages — is appended to the audit log first; only with its receipt in hand
//! does the key service unwrap anything. A refused read is logged too.

use std::time::Duration;

use custodia_audit::{AuditEvent, EventKind, Receipt, Subject};
use custodia_core::{
    CaseId, CaseKind, ConversationId, DataTier, ReasonCode, RequestId, RequestStatus, StaffId,
    StaffRole, Timestamp,
};
use custodia_keys::Purpose;
use custodia_service::{
    MessageView, ServiceError, ServiceResult, metadata_of, open_for_disclosure, open_message,
};
use custodia_store::{AccessRequestRecord, DecisionRecord, SeqRange, StaffRecord, StoreError};
use sha2::{Digest, Sha256};

use crate::policy::{BROAD_SPAN, SECOND_REVIEW_WITHIN};
use crate::{Governance, Policy, StaffPrincipal};

/// Most messages one grant covers (one read returns them all).
pub const MAX_GRANT_MESSAGES: u64 = 500;
/// What a staff member asks for.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The case it serves.
    pub case_id: CaseId,
    /// Why (a closed set).
    pub reason: ReasonCode,
    /// First and last sequence number (of the case's conversation).
    pub seqs: (u64, u64),
    /// Metadata or content.
    pub tier: DataTier,
    /// How long the grant lasts once approved.
    pub duration: Duration,
    /// Why this access is needed.
    pub justification: String,
}

/// A request as staff see it, with its state derived from the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// The stored request.
    pub record: AccessRequestRecord,
    /// Its state now (expiry applied).
    pub status: RequestStatus,
    /// An emergency grant whose second review is past due.
    pub second_review_overdue: bool,
    /// SHA-256 of the request's canonical bytes: what every decision's log entry names.
    pub digest: [u8; 32],
}

/// What an audited read returns.
#[derive(Debug)]
pub struct GrantRead {
    /// The messages of the grant, opened (content tier) or metadata only.
    pub messages: Vec<MessageView>,
    /// The audit log receipt of this read.
    pub receipt: Receipt,
    /// Each message's franking as stored (commitment and server tag), in order.
    pub franking: Vec<Option<custodia_store::Franking>>,
    /// The senders' usernames (part of what the grant shows).
    pub usernames: Vec<(custodia_core::UserId, String)>,
}

/// Roles that make or decide requests at all.
const ACCESS_ROLES: &[StaffRole] = &[
    StaffRole::Moderator,
    StaffRole::SeniorModerator,
    StaffRole::LegalOfficer,
];

/// The canonical bytes of a request, which decisions commit to.
fn canonical(r: &AccessRequestRecord) -> Vec<u8> {
    let mut out = b"custodia/request/v1\0".to_vec();
    for field in [
        r.id.to_string(),
        r.case_id.to_string(),
        r.requester.to_string(),
        r.requester_role.as_str().into(),
        r.reason.as_str().into(),
        r.conversation_id.to_string(),
        r.seqs.0.to_string(),
        r.seqs.1.to_string(),
        r.tier.as_str().into(),
        r.duration_ms.to_string(),
        r.created_at.as_millis().to_string(),
        r.required.to_string(),
        r.justification.clone(),
    ] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Governance {
    /// Asks for access within a case. Checks the role against the reason's policy and the
    /// scope against the case, flags broad scopes, freezes the eligible approvers, logs
    /// the request, and stores it pending.
    pub async fn request_access(
        &self,
        by: &StaffPrincipal,
        req: NewRequest,
    ) -> ServiceResult<RequestView> {
        let inner = &self.inner;
        let policy = Policy::of(req.reason);
        by.require(
            policy.requesters,
            "this role may not ask for access for this reason",
        )?;
        let case = self.case_record(req.case_id).await?;
        match (case.kind, req.reason) {
            (
                CaseKind::Report | CaseKind::Signal,
                ReasonCode::LegalProcess | ReasonCode::EmergencyDisclosure,
            ) => {
                return Err(ServiceError::Rejected(
                    "legal reasons need a legal case, not a report or a signal",
                ));
            }
            (CaseKind::Legal, ReasonCode::ReportReview) => {
                return Err(ServiceError::Rejected(
                    "a legal case is not a report review",
                ));
            }
            _ => {}
        }
        match (req.tier, req.reason) {
            (DataTier::Evidence, ReasonCode::MandatoryReporting) if case.files.is_empty() => {
                return Err(ServiceError::Rejected(
                    "this case preserved no files (evidence is the files a hash-list match kept)",
                ));
            }
            (DataTier::Evidence, ReasonCode::MandatoryReporting) => {}
            (DataTier::Evidence, _) => {
                return Err(ServiceError::Rejected(
                    "a case's preserved files are opened for mandatory reporting only (reason mandatory_reporting)",
                ));
            }
            (_, ReasonCode::MandatoryReporting) => {
                return Err(ServiceError::Rejected(
                    "mandatory reporting covers a case's preserved files only: ask for tier evidence",
                ));
            }
            _ => {}
        }
        let (from, to) = req.seqs;
        if from == 0 || from > to {
            return Err(ServiceError::Rejected(
                "the sequence range must start at 1 or later and not end before it starts",
            ));
        }
        if from < case.scope.0 || to > case.scope.1 {
            return Err(ServiceError::Rejected(
                "the range reaches beyond the case: ask within the messages the case covers (its from_seq to to_seq; a report covers the reported messages and those just before them)",
            ));
        }
        if to - from + 1 > MAX_GRANT_MESSAGES {
            return Err(ServiceError::Rejected(
                "a grant covers at most 500 messages",
            ));
        }
        if req.duration.is_zero() || req.duration > Policy::of(req.reason).max_grant {
            return Err(ServiceError::Rejected(
                if req.reason == ReasonCode::EmergencyDisclosure {
                    "an emergency grant lasts between 1 second and 4 hours: ask for the least time the emergency needs"
                } else {
                    "a grant lasts between 1 second and 30 days"
                },
            ));
        }
        let justification = req.justification.trim().to_owned();
        if justification.is_empty() || justification.chars().count() > 2000 {
            return Err(ServiceError::Rejected(
                "give a justification of 1 to 2000 characters",
            ));
        }
        let conv = case.conversation_id;
        let broad = self.spans_more_than(conv, (from, to), BROAD_SPAN).await?;
        let required = policy.required + u8::from(broad);
        let now = inner.clock.now();
        let staff = inner.store.staff.all_staff().await?;
        let sponsors = staff
            .iter()
            .find(|s| s.id == by.staff_id)
            .map(|s| s.sponsors.clone())
            .unwrap_or_default();
        let approvers: Vec<StaffId> = staff
            .into_iter()
            .filter(|s| {
                s.active
                    && s.id != by.staff_id
                    && policy.approvers.contains(&s.role)
                    && !sponsors.contains(&s.id)
                    && self.settled_in_role(s, now)
            })
            .map(|s| s.id)
            .collect();
        if approvers.len() < usize::from(required) {
            return Err(ServiceError::Rejected(
                "there are not enough eligible approvers for this request",
            ));
        }
        let record = AccessRequestRecord {
            id: RequestId::at(now),
            case_id: case.id,
            requester: by.staff_id,
            requester_role: by.role,
            reason: req.reason,
            conversation_id: conv,
            seqs: (from, to),
            tier: req.tier,
            duration_ms: i64::try_from(req.duration.as_millis()).unwrap_or(i64::MAX),
            justification,
            created_at: now,
            pending_until: now.plus(policy.pending_for),
            broad,
            required,
            approvers,
            status: RequestStatus::Pending,
            decisions: Vec::new(),
            granted: None,
        };
        let view = self.view(record);
        self.append(self.event(
            EventKind::RequestCreated,
            by,
            &view.record,
            vec![Subject::Conversation(conv)],
            vec![
                ("request".into(), view.record.id.to_string()),
                ("digest".into(), hex(&view.digest)),
                ("messages".into(), format!("{from}-{to}")),
                ("tier".into(), req.tier.as_str().into()),
                ("duration_s".into(), req.duration.as_secs().to_string()),
                ("broad".into(), broad.to_string()),
                ("required".into(), required.to_string()),
            ],
        ))
        .await?;
        inner
            .store
            .cases
            .create_request(view.record.clone())
            .await?;
        Ok(view)
    }

    /// A request (the requester, its frozen approvers, and case readers).
    pub async fn request(&self, by: &StaffPrincipal, id: RequestId) -> ServiceResult<RequestView> {
        by.require(
            crate::cases::CASE_READERS,
            "this role does not handle cases",
        )?;
        Ok(self.view(self.request_record(id).await?))
    }

    /// The requests of a case (case readers).
    pub async fn requests_of_case(
        &self,
        by: &StaffPrincipal,
        case: CaseId,
    ) -> ServiceResult<Vec<RequestView>> {
        by.require(
            crate::cases::CASE_READERS,
            "this role does not handle cases",
        )?;
        let all = self.inner.store.cases.requests_of_case(case).await?;
        Ok(all.into_iter().map(|r| self.view(r)).collect())
    }

    /// An approver decides a pending request (or gives an emergency grant its second
    /// review). Only the approvers frozen at request time, never the requester, once each;
    /// decisions are final. Logged before it is recorded.
    pub async fn decide(
        &self,
        by: &StaffPrincipal,
        id: RequestId,
        approve: bool,
        justification: String,
    ) -> ServiceResult<RequestView> {
        by.require(ACCESS_ROLES, "this role does not decide access requests")?;
        let view = self.view(self.request_record(id).await?);
        let r = &view.record;
        if r.requester == by.staff_id {
            return Err(ServiceError::Forbidden(
                "nobody approves or denies their own request",
            ));
        }
        if !r.approvers.contains(&by.staff_id) {
            return Err(ServiceError::Forbidden(
                "not among the approvers eligible when this request was made",
            ));
        }
        if r.decisions.iter().any(|d| d.staff_id == by.staff_id) {
            return Err(ServiceError::Conflict("you already decided this request"));
        }
        // Checked again now, not only when the approvers were frozen: a role or a
        // sponsorship may have changed since.
        let staff = &self.inner.store.staff;
        let me = staff
            .staff_by_id(by.staff_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if !self.settled_in_role(&me, self.inner.clock.now()) {
            return Err(ServiceError::Forbidden(
                "staff new in their role decide no access requests yet",
            ));
        }
        let requester = staff.staff_by_id(r.requester).await?;
        if requester.is_some_and(|q| q.sponsors.contains(&by.staff_id)) {
            return Err(ServiceError::Forbidden(
                "nobody decides a request of someone whose account or role they proposed or approved",
            ));
        }
        let policy = Policy::of(r.reason);
        // An emergency grant is reviewed whether or not its (short) window has ended.
        let second_review = policy.second_review
            && r.granted.is_some()
            && matches!(r.status, RequestStatus::Approved | RequestStatus::Active);
        if view.status != RequestStatus::Pending && !second_review {
            return Err(ServiceError::Rejected(
                "decisions are final: this request is no longer pending",
            ));
        }
        let justification = justification.trim().to_owned();
        if justification.is_empty() || justification.chars().count() > 2000 {
            return Err(ServiceError::Rejected(
                "give a justification of 1 to 2000 characters",
            ));
        }
        let now = self.inner.clock.now();
        let mut approved_by: Vec<StaffRole> = r
            .decisions
            .iter()
            .filter(|d| d.approve)
            .map(|d| d.role)
            .collect();
        let (from, to, granted) = if second_review {
            let to = if approve {
                r.status
            } else {
                RequestStatus::Revoked
            };
            (r.status, to, None)
        } else if !approve {
            (RequestStatus::Pending, RequestStatus::Denied, None)
        } else {
            approved_by.push(by.role);
            if policy.satisfied(r.required, &approved_by) {
                let until = now.plus(Duration::from_millis(
                    u64::try_from(r.duration_ms).unwrap_or(0),
                ));
                (
                    RequestStatus::Pending,
                    RequestStatus::Approved,
                    Some((now, until)),
                )
            } else {
                (RequestStatus::Pending, RequestStatus::Pending, None)
            }
        };
        let receipt = self
            .append(self.event(
                EventKind::Decision,
                by,
                r,
                vec![Subject::Conversation(r.conversation_id)],
                vec![
                    ("request".into(), r.id.to_string()),
                    ("digest".into(), hex(&view.digest)),
                    (
                        "decision".into(),
                        if approve { "approve" } else { "deny" }.into(),
                    ),
                    (
                        "kind".into(),
                        if second_review {
                            "second_review"
                        } else {
                            "decision"
                        }
                        .into(),
                    ),
                    ("status".into(), to.as_str().into()),
                ],
            ))
            .await?;
        let decision = DecisionRecord {
            staff_id: by.staff_id,
            role: by.role,
            approve,
            justification,
            at: now,
            log_index: receipt.index,
        };
        match self
            .inner
            .store
            .cases
            .decide(r.id, decision, from, to, granted)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(ServiceError::Conflict(
                    "the request changed meanwhile; reload it",
                ));
            }
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict("you already decided this request"));
            }
            Err(e) => return Err(e.into()),
        }
        if second_review {
            // The emergency review is complete: the members are told of its reads now.
            let released = self
                .inner
                .store
                .cases
                .release_access_notices(custodia_store::NoticeRelease::Review(r.id), now)
                .await?;
            self.publish_notices(released).await;
            if let Err(e) = self.log_releases(now).await {
                // The decision stands; the next periodic pass logs the release.
                tracing::warn!(error = %e, "released access notices are not in the audit log yet");
            }
        }
        Ok(self.view(self.request_record(id).await?))
    }

    /// Ends a grant early: its requester (done: Completed) or an approver of it (Revoked).
    pub async fn close_grant(
        &self,
        by: &StaffPrincipal,
        id: RequestId,
        revoke: bool,
    ) -> ServiceResult<RequestView> {
        by.require(ACCESS_ROLES, "this role does not handle access requests")?;
        let view = self.view(self.request_record(id).await?);
        let r = &view.record;
        let allowed = if revoke {
            r.requester == by.staff_id || r.approvers.contains(&by.staff_id)
        } else {
            r.requester == by.staff_id
        };
        if !allowed {
            return Err(ServiceError::Forbidden(if revoke {
                "only the requester or an approver of this request revokes it"
            } else {
                "only the requester completes a grant"
            }));
        }
        let to = if revoke {
            RequestStatus::Revoked
        } else {
            RequestStatus::Completed
        };
        let from = view.status;
        let open = matches!(from, RequestStatus::Approved | RequestStatus::Active)
            || (revoke && from == RequestStatus::Pending);
        if !open {
            return Err(ServiceError::Rejected("this request is already closed"));
        }
        self.append(self.event(
            EventKind::GrantRevoked,
            by,
            r,
            vec![Subject::Conversation(r.conversation_id)],
            vec![
                ("request".into(), r.id.to_string()),
                ("status".into(), to.as_str().into()),
            ],
        ))
        .await?;
        if !self
            .inner
            .store
            .cases
            .set_request_status(r.id, from, to)
            .await?
        {
            return Err(ServiceError::Conflict(
                "the request changed meanwhile; reload it",
            ));
        }
        Ok(self.view(self.request_record(id).await?))
    }

    /// Reads the messages of a grant: only its requester, only while it is approved and
    /// in its window. The read is logged (exactly which messages) before any key is
    /// unwrapped; a refused read is logged as a denial.
    pub async fn read_grant(&self, by: &StaffPrincipal, id: RequestId) -> ServiceResult<GrantRead> {
        self.audited_read(by, id, false).await
    }

    /// [`Self::read_grant`]; for a disclosure package, keeping each message's franking key.
    pub(crate) async fn audited_read(
        &self,
        by: &StaffPrincipal,
        id: RequestId,
        for_disclosure: bool,
    ) -> ServiceResult<GrantRead> {
        let record = self.request_record(id).await?;
        let view = self.view(record);
        let r = &view.record;
        if r.tier == DataTier::Evidence {
            return Err(ServiceError::Rejected(
                "this grant covers the case's preserved files: fetch each from /v1/staff/requests/{id}/files/{attachment}",
            ));
        }
        self.refuse_unless_open(by, &view).await?;
        self.read_open_grant(by, view, for_disclosure).await
    }

    /// Refuses (and logs the refusal) unless `by` may read under `view` now: its
    /// requester, in a role that still reads, while approved and in its window.
    async fn refuse_unless_open(
        &self,
        by: &StaffPrincipal,
        view: &RequestView,
    ) -> ServiceResult<()> {
        let r = &view.record;
        let refusal = if by.staff_id != r.requester {
            Some("only the requester reads within a grant")
        } else if !Policy::of(r.reason).requesters.contains(&by.role) {
            // The requester's role changed since (e.g. to admin): it no longer reads.
            Some("your current role may not read under this grant")
        } else if !matches!(view.status, RequestStatus::Approved | RequestStatus::Active) {
            Some(match view.status {
                RequestStatus::Pending => "the request is not approved yet",
                RequestStatus::Expired => "the grant has expired",
                RequestStatus::Revoked => "the grant was revoked",
                RequestStatus::Completed => "the grant was completed",
                _ => "the request was denied",
            })
        } else {
            None
        };
        if let Some(why) = refusal {
            let denied = self
                .append(self.event(
                    EventKind::AccessDenied,
                    by,
                    r,
                    vec![Subject::Conversation(r.conversation_id)],
                    vec![
                        ("request".into(), r.id.to_string()),
                        ("why".into(), why.into()),
                    ],
                ))
                .await;
            if let Err(e) = denied {
                tracing::warn!(error = %e, "a refused staff read could not be logged");
            }
            return Err(ServiceError::Forbidden(why));
        }
        Ok(())
    }

    /// Reads preserved file `attachment` of the case of evidence grant `id`: only its
    /// requester, while the grant is open (a refusal is logged). The read — naming the
    /// file — is logged before anything is unwrapped, and the key service opens only the
    /// file the entry names. The uploader appears in the entry withheld: a hash-list match
    /// is a child-safety referral, and nobody is told of it. Returns the file's content
    /// type and its bytes as uploaded.
    pub async fn read_evidence(
        &self,
        by: &StaffPrincipal,
        id: RequestId,
        attachment: custodia_core::AttachmentId,
    ) -> ServiceResult<(String, zeroize::Zeroizing<Vec<u8>>)> {
        let view = self.view(self.request_record(id).await?);
        let r = &view.record;
        if r.tier != DataTier::Evidence {
            return Err(ServiceError::Rejected(
                "this grant covers messages, not preserved files",
            ));
        }
        self.refuse_unless_open(by, &view).await?;
        let inner = &self.inner;
        let case = self.case_record(r.case_id).await?;
        let a = match inner.store.attachments.attachment(attachment).await? {
            Some(a) if case.files.contains(&attachment) => a,
            _ => return Err(ServiceError::NotFound("preserved file")),
        };
        let receipt = self
            .append(self.event(
                EventKind::AccessRead,
                by,
                r,
                vec![
                    Subject::Conversation(r.conversation_id),
                    Subject::Withheld(a.uploader),
                ],
                vec![
                    ("request".into(), r.id.to_string()),
                    ("tier".into(), r.tier.as_str().into()),
                    ("attachments".into(), attachment.to_string()),
                    ("bytes".into(), a.size.to_string()),
                ],
            ))
            .await?;
        self.mark_active(&view).await;
        let access = inner
            .keys
            .verify_logged_read(&receipt, r.id, r.conversation_id)?;
        let bytes =
            custodia_service::open_attachment(&inner.keys, Purpose::StaffAccess(access), &a)
                .await?;
        tracing::info!(grant = %r.id, staff = %by.staff_id, log_index = receipt.index, "audited read of a preserved file");
        Ok((a.content_type, bytes))
    }

    /// A grant's first read makes it active (best effort: a concurrent read may have
    /// moved it already).
    async fn mark_active(&self, view: &RequestView) {
        if view.status == RequestStatus::Approved {
            let _ = self
                .inner
                .store
                .cases
                .set_request_status(
                    view.record.id,
                    RequestStatus::Approved,
                    RequestStatus::Active,
                )
                .await;
        }
    }

    /// The read of an open grant's messages (see [`Self::read_grant`]).
    async fn read_open_grant(
        &self,
        by: &StaffPrincipal,
        view: RequestView,
        for_disclosure: bool,
    ) -> ServiceResult<GrantRead> {
        let inner = &self.inner;
        let r = &view.record;
        let (from, to) = r.seqs;
        let limit = u32::try_from(to - from + 1).unwrap_or(u32::MAX);
        let stored = inner
            .store
            .messages
            .messages(r.conversation_id, SeqRange::After(from - 1), limit)
            .await?;
        let stored: Vec<_> = stored.into_iter().filter(|m| m.seq <= to).collect();
        // The entry names the conversation and every member told of the read (by a tag
        // only they recognise; withheld while their notice is deferred).
        let told = self.told_of(r, &stored).await?;
        let mut subjects = vec![Subject::Conversation(r.conversation_id)];
        subjects.extend(told.members.iter().map(|m| {
            if told.deferred() {
                Subject::Withheld(*m)
            } else {
                Subject::User(*m)
            }
        }));
        let seqs: Vec<String> = stored.iter().map(|m| m.seq.to_string()).collect();
        let receipt = self
            .append(self.event(
                EventKind::AccessRead,
                by,
                r,
                subjects,
                vec![
                    ("request".into(), r.id.to_string()),
                    ("tier".into(), r.tier.as_str().into()),
                    ("messages".into(), seqs.join(" ")),
                    ("accounts".into(), told.members.len().to_string()),
                    (
                        "notice".into(),
                        if told.deferred() { "deferred" } else { "now" }.into(),
                    ),
                ],
            ))
            .await?;
        self.mark_active(&view).await;
        // The key service checks the receipt itself: only a read the log shows is opened.
        let access = inner
            .keys
            .verify_logged_read(&receipt, r.id, r.conversation_id)?;
        // Every member whose messages were read is told, before anything is released.
        self.notify_read(by, r, &receipt, &stored, told).await?;
        let mut messages = Vec::with_capacity(stored.len());
        let franking = stored.iter().map(|m| m.franking.clone()).collect();
        for m in stored {
            let purpose = Purpose::StaffAccess(access.clone());
            messages.push(match r.tier {
                DataTier::Content if for_disclosure => {
                    open_for_disclosure(&inner.keys, purpose, m).await
                }
                DataTier::Content => open_message(&inner.keys, purpose, m).await,
                _ => metadata_of(&m),
            });
        }
        tracing::info!(grant = %r.id, staff = %by.staff_id, log_index = receipt.index, count = messages.len(), "audited staff read");
        let usernames = self.usernames(messages.iter().map(|m| m.sender_id)).await?;
        Ok(GrantRead {
            messages,
            receipt,
            franking,
            usernames,
        })
    }

    /// Who is told of a read of `read` under `r`: every member whose messages these are
    /// (who sent them, or was in the conversation when they were sent; a member who joined
    /// later never had them), and whether their notices wait.
    async fn told_of(
        &self,
        r: &AccessRequestRecord,
        read: &[custodia_store::StoredMessage],
    ) -> ServiceResult<Told> {
        let mut members: Vec<custodia_core::UserId> = read.iter().map(|m| m.sender_id).collect();
        if let Some(last) = read.last() {
            for m in self
                .inner
                .store
                .conversations
                .members(r.conversation_id)
                .await?
            {
                if m.joined_at <= last.sent_at {
                    members.push(m.user_id);
                }
            }
        }
        members.sort();
        members.dedup();
        let now = self.inner.clock.now();
        // Under a non-disclosure order the notices wait, recorded now, until it ends.
        let deferred_until = self
            .inner
            .store
            .cases
            .case(r.case_id)
            .await?
            .and_then(|c| c.nondisclosure_until)
            .filter(|until| *until > now);
        // An emergency read before its second review: told once the review is done.
        let deferred_review = (deferred_until.is_none()
            && Policy::of(r.reason).second_review
            && r.decisions.len() < 2)
            .then_some(r.id);
        Ok(Told {
            members,
            deferred_until,
            deferred_review,
        })
    }

    /// Stores an access notice for each member `told` names (one per member and read)
    /// and, unless they are deferred, sends them live.
    async fn notify_read(
        &self,
        by: &StaffPrincipal,
        r: &AccessRequestRecord,
        receipt: &Receipt,
        read: &[custodia_store::StoredMessage],
        told: Told,
    ) -> ServiceResult<()> {
        let (Some(first), Some(last)) = (read.first(), read.last()) else {
            return Ok(());
        };
        let Told {
            members,
            deferred_until,
            deferred_review,
        } = told;
        let now = self.inner.clock.now();
        let notices: Vec<custodia_store::AccessNoticeRecord> = members
            .into_iter()
            .map(|user_id| custodia_store::AccessNoticeRecord {
                id: custodia_core::AccessNoticeId::at(now),
                user_id,
                conversation_id: r.conversation_id,
                read_at: now,
                role: by.role,
                reason: r.reason,
                case_id: r.case_id,
                messages: u32::try_from(read.len()).unwrap_or(u32::MAX),
                span: (first.sent_at, last.sent_at),
                log_index: receipt.index,
                checkpoint: receipt.checkpoint.clone(),
                proof: receipt.proof.clone(),
                deferred_until,
                deferred_review,
                released_at: None,
            })
            .collect();
        self.inner
            .store
            .cases
            .add_access_notices(notices.clone())
            .await?;
        if deferred_until.is_some() || deferred_review.is_some() {
            tracing::info!(case = %r.case_id, "access notices deferred (non-disclosure order or emergency review)");
            return Ok(());
        }
        self.publish_notices(notices).await;
        Ok(())
    }

    /// Releases the access notices whose deferral has ended by now and sends them to their
    /// members live; returns how many it released. Run periodically (and at start) by
    /// every node: the store releases each notice once.
    pub async fn release_notices(&self) -> ServiceResult<usize> {
        let now = self.inner.clock.now();
        let released = self
            .inner
            .store
            .cases
            .release_access_notices(custodia_store::NoticeRelease::Due, now)
            .await?;
        let n = released.len();
        self.publish_notices(released).await;
        self.log_releases(now).await?;
        Ok(n)
    }

    /// Appends, for each read whose released notices the log does not record yet, a
    /// `notice.released` entry naming the read's entry and its members by their ordinary
    /// tags (from then on their scans find the read), then marks those releases logged.
    /// A release the log missed (a crash between the release and its entry, a log outage)
    /// is logged at the next pass; two nodes passing at once may both log one (the
    /// entries say the same).
    async fn log_releases(&self, now: Timestamp) -> ServiceResult<()> {
        let pending = self.inner.store.cases.unlogged_releases().await?;
        let mut by_read: std::collections::BTreeMap<u64, Vec<custodia_store::AccessNoticeRecord>> =
            std::collections::BTreeMap::new();
        for n in pending {
            by_read.entry(n.log_index).or_default().push(n);
        }
        for (index, notices) in by_read {
            let until = notices
                .first()
                .and_then(|n| n.deferred_until)
                .map_or_else(|| "review".to_owned(), |t| t.as_millis().to_string());
            self.append(AuditEvent {
                kind: EventKind::NoticeReleased,
                time: now,
                actor: None,
                reason: None,
                case: notices.first().map(|n| n.case_id.to_string()),
                subjects: notices.iter().map(|n| Subject::User(n.user_id)).collect(),
                scope: vec![
                    ("entry".into(), index.to_string()),
                    ("deferred_until".into(), until),
                ],
            })
            .await?;
            self.inner
                .store
                .cases
                .mark_releases_logged(notices.iter().map(|n| n.id).collect())
                .await?;
        }
        Ok(())
    }

    /// Sends notices to their members live, if a fan-out is set.
    async fn publish_notices(&self, notices: Vec<custodia_store::AccessNoticeRecord>) {
        if let Some(fanout) = self.inner.notices.get() {
            for n in notices {
                let to = vec![n.user_id];
                fanout
                    .publish(
                        to,
                        std::sync::Arc::new(custodia_service::Event::AccessNotice(n)),
                    )
                    .await;
            }
        }
    }

    /// Whether `s` has held its role long enough to decide access requests.
    fn settled_in_role(&self, s: &StaffRecord, now: Timestamp) -> bool {
        now >= s.role_since.plus(self.inner.config.new_role_decides_after)
    }

    /// An audit event about request `r`, caused by `by`.
    fn event(
        &self,
        kind: EventKind,
        by: &StaffPrincipal,
        r: &AccessRequestRecord,
        subjects: Vec<Subject>,
        scope: Vec<(String, String)>,
    ) -> AuditEvent {
        AuditEvent {
            kind,
            time: self.inner.clock.now(),
            actor: Some(by.actor()),
            reason: Some(r.reason.as_str().into()),
            case: Some(r.case_id.to_string()),
            subjects,
            scope,
        }
    }

    async fn request_record(&self, id: RequestId) -> ServiceResult<AccessRequestRecord> {
        self.inner
            .store
            .cases
            .request(id)
            .await?
            .ok_or(ServiceError::NotFound("access request"))
    }

    /// Whether the messages `seqs` of `conv` were sent more than `span` apart.
    async fn spans_more_than(
        &self,
        conv: ConversationId,
        seqs: (u64, u64),
        span: Duration,
    ) -> ServiceResult<bool> {
        let messages = &self.inner.store.messages;
        let first = messages.message(conv, seqs.0).await?;
        let last = messages.message(conv, seqs.1).await?;
        Ok(match (first, last) {
            (Some(a), Some(b)) => b.sent_at.since(a.sent_at) > span,
            // Not all sent yet: judge by how long ago the first was.
            (Some(a), None) => self.inner.clock.now().since(a.sent_at) > span,
            _ => false,
        })
    }

    /// The request's state now: pending past its deadline and grants past their window
    /// are expired; an emergency grant without its second review after 24 h is overdue.
    pub(crate) fn view(&self, record: AccessRequestRecord) -> RequestView {
        let now: Timestamp = self.inner.clock.now();
        let status = match (record.status, record.granted) {
            (RequestStatus::Pending, _) if now >= record.pending_until => RequestStatus::Expired,
            (RequestStatus::Approved | RequestStatus::Active, Some((_, until))) if now >= until => {
                RequestStatus::Expired
            }
            (s, _) => s,
        };
        let policy = Policy::of(record.reason);
        let approvals = record.decisions.iter().filter(|d| d.approve).count();
        // Overdue also after the grant's window ended: the review judges the access made.
        let second_review_overdue = policy.second_review
            && matches!(
                record.status,
                RequestStatus::Approved | RequestStatus::Active
            )
            && approvals < 2
            && record
                .granted
                .is_some_and(|(from, _)| now.since(from) > SECOND_REVIEW_WITHIN);
        let digest = Sha256::digest(canonical(&record)).into();
        RequestView {
            record,
            status,
            second_review_overdue,
            digest,
        }
    }
}

/// Who is told of a read, and whether their notices wait.
struct Told {
    members: Vec<custodia_core::UserId>,
    /// Until a non-disclosure order ends.
    deferred_until: Option<Timestamp>,
    /// Until this emergency request's second review.
    deferred_review: Option<RequestId>,
}

impl Told {
    fn deferred(&self) -> bool {
        self.deferred_until.is_some() || self.deferred_review.is_some()
    }
}
