//! Cases: opened by a member's report (the reported messages and up to K before them) or
//! by a legal officer for a legal request. A case holds no content; reading needs a grant.

use custodia_audit::{AuditEvent, EventKind, Subject};
use custodia_core::{
    CaseId, CaseKind, ConversationId, MAX_BODY_BYTES, ReportCategory, StaffRole, Timestamp, UserId,
};
use custodia_keys::FrankingKey;
use custodia_service::{Principal, ServiceError, ServiceResult, context_of};
use custodia_store::{CaseRecord, EvidenceRecord};

use crate::{Governance, StaffPrincipal};

/// Most messages one report may name.
pub const MAX_REPORTED: usize = 50;
/// Longest reporter comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Roles that see cases (never the admin, who manages staff only).
pub(crate) const CASE_READERS: &[StaffRole] = &[
    StaffRole::Moderator,
    StaffRole::SeniorModerator,
    StaffRole::LegalOfficer,
    StaffRole::Auditor,
];

/// A case as staff see it: no message content, only what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseView {
    /// Id.
    pub id: CaseId,
    /// Report or legal.
    pub kind: CaseKind,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who reported (report cases).
    pub reporter: Option<UserId>,
    /// The report's category.
    pub category: Option<ReportCategory>,
    /// The reporter's comment, addressed to staff.
    pub comment: Option<String>,
    /// The reported messages.
    pub reported: Vec<u64>,
    /// The reported messages as the reporter disclosed them, each marked verified or not
    /// (text only in the view of one case, whose viewing is logged).
    pub evidence: Vec<EvidenceView>,
    /// First and last sequence number covered.
    pub scope: (u64, u64),
    /// The legal process's reference.
    pub reference: Option<String>,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// A legal case's non-disclosure order: until when members may not be told.
    pub nondisclosure_until: Option<Timestamp>,
    /// How urgently it is handled.
    pub priority: custodia_core::CasePriority,
    /// The files it preserved (opened only under an evidence grant).
    pub files: Vec<custodia_core::AttachmentId>,
}

/// A reported message as the reporter disclosed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceView {
    /// Sequence number.
    pub seq: u64,
    /// Who sent it (from the stored message, not from the reporter).
    pub sender: UserId,
    /// Their username, when the case is shown whole.
    pub sender_username: Option<String>,
    /// When (from the stored message).
    pub sent_at: Timestamp,
    /// The text the reporter gave.
    pub text: Option<String>,
    /// True only if the text is exactly what `sender` sent at `sent_at` (franking).
    pub verified: bool,
}

/// One reported message: its sequence number and, to have it shown verified, the text and
/// franking key the reporter received with it.
#[derive(Debug, Clone)]
pub struct ReportedMessage {
    /// Sequence number.
    pub seq: u64,
    /// The text as received.
    pub text: Option<String>,
    /// The franking key received with it.
    pub franking_key: Option<FrankingKey>,
}

/// A member's report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The reported messages.
    pub messages: Vec<ReportedMessage>,
    /// What it is about.
    pub category: ReportCategory,
    /// An optional comment to the trust & safety team.
    pub comment: Option<String>,
}

impl Governance {
    /// A member reports messages of a conversation they belong to; a case opens covering
    /// those messages and up to K before them. Rate limited per member.
    pub async fn report(&self, who: &Principal, report: Report) -> ServiceResult<CaseId> {
        let inner = &self.inner;
        inner
            .reports_by_user
            .check(&who.user_id)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        let conv = report.conversation_id;
        if inner
            .store
            .conversations
            .member(conv, who.user_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::NotFound("conversation"));
        }
        let mut messages = report.messages;
        messages.sort_by_key(|m| m.seq);
        messages.dedup_by_key(|m| m.seq);
        if messages.is_empty() || messages.len() > MAX_REPORTED {
            return Err(ServiceError::Rejected(
                "report between 1 and 50 messages, by their sequence numbers",
            ));
        }
        let id = CaseId::at(inner.clock.now());
        let mut evidence = Vec::with_capacity(messages.len());
        for m in &messages {
            let stored = inner
                .store
                .messages
                .message(conv, m.seq)
                .await?
                .ok_or(ServiceError::NotFound("reported message"))?;
            let verified = match (&m.text, &m.franking_key, &stored.franking) {
                (Some(text), Some(key), Some(franking)) => {
                    inner
                        .keys
                        .verify_franking(&context_of(&stored), franking, text.as_bytes(), key)
                }
                _ => false,
            };
            if m.text.as_ref().is_some_and(|t| t.len() > MAX_BODY_BYTES) {
                return Err(ServiceError::Rejected(
                    "a reported message's text is at most 16 KiB",
                ));
            }
            evidence.push(EvidenceRecord {
                seq: m.seq,
                sender: stored.sender_id,
                sent_at: stored.sent_at,
                claimed: m
                    .text
                    .as_ref()
                    .map(|t| inner.keys.seal_case_text(id, &evidence_label(m.seq), t))
                    .transpose()?,
                verified,
            });
        }
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        let comment = match report.comment.as_deref().map(str::trim) {
            Some(c) if c.chars().count() > MAX_COMMENT_CHARS => {
                return Err(ServiceError::Rejected(
                    "a report comment is at most 2000 characters",
                ));
            }
            Some("") | None => None,
            Some(c) => Some(c.to_owned()),
        };
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        let scope = (
            first.saturating_sub(inner.config.report_context).max(1),
            last,
        );
        let case = CaseRecord {
            id,
            kind: CaseKind::Report,
            conversation_id: conv,
            reporter: Some(who.user_id),
            category: Some(report.category),
            comment: comment
                .map(|c| inner.keys.seal_case_text(id, "comment", &c))
                .transpose()?,
            priority: custodia_core::CasePriority::Normal,
            files: Vec::new(),
            reported: seqs.clone(),
            evidence,
            scope,
            reference: None,
            opened_by: None,
            nondisclosure_until: None,
            opened_at: inner.clock.now(),
        };
        let reported: Vec<String> = seqs.iter().map(u64::to_string).collect();
        let verified: Vec<String> = case
            .evidence
            .iter()
            .filter(|e| e.verified)
            .map(|e| e.seq.to_string())
            .collect();
        self.open_case(
            case,
            None,
            vec![Subject::User(who.user_id), Subject::Conversation(conv)],
            vec![
                ("kind".into(), "report".into()),
                ("category".into(), report.category.as_str().into()),
                ("reported".into(), reported.join(" ")),
                ("verified".into(), verified.join(" ")),
                ("covers".into(), format!("{}-{}", scope.0, scope.1)),
            ],
        )
        .await?;
        tracing::info!(case = %id, category = report.category.as_str(), "report case opened");
        Ok(id)
    }

    /// Opens a case for a message that matched the text rules: it covers the message and
    /// up to K before it, holds no text, and says which rules matched.
    pub async fn open_signal_case(
        &self,
        message: &custodia_service::MessageView,
        signal: &custodia_service::Signal,
    ) -> ServiceResult<CaseId> {
        let inner = &self.inner;
        // One case per flagged message, whoever opens it and however often: its id is
        // derived from the message, so a retried signal finds the case it already opened.
        let id = signal_case_id(message.conversation_id, message.seq);
        if inner.store.cases.case(id).await?.is_some() {
            return Ok(id);
        }
        let seq = message.seq;
        let case = CaseRecord {
            id,
            kind: CaseKind::Signal,
            conversation_id: message.conversation_id,
            reporter: None,
            category: Some(signal.category),
            comment: None,
            reported: vec![seq],
            evidence: Vec::new(),
            scope: (seq.saturating_sub(inner.config.report_context).max(1), seq),
            reference: Some(format!("text rules: {}", signal.rules.join(", "))),
            opened_by: None,
            nondisclosure_until: None,
            opened_at: inner.clock.now(),
            priority: signal.priority,
            files: Vec::new(),
        };
        self.open_case(
            case,
            None,
            // Withheld: a sender flagged by a signal is not tipped off by their own scan.
            vec![
                Subject::Withheld(message.sender_id),
                Subject::Conversation(message.conversation_id),
            ],
            vec![
                ("kind".into(), "signal".into()),
                ("category".into(), signal.category.as_str().into()),
                ("rules".into(), signal.rules.join(" ")),
                ("score".into(), signal.score.to_string()),
                ("message".into(), seq.to_string()),
            ],
        )
        .await?;
        tracing::info!(case = %id, category = signal.category.as_str(), "signal case opened");
        Ok(id)
    }

    /// Every case, as a queue: high priority first, then the oldest (case readers).
    /// Without the reported texts.
    pub async fn cases(&self, by: &StaffPrincipal) -> ServiceResult<Vec<CaseView>> {
        by.require(CASE_READERS, "this role does not handle cases")?;
        let mut all = self.inner.store.cases.cases().await?;
        // The queue: high priority first, then the longest waiting.
        all.sort_by_key(|c| (c.priority, c.opened_at, c.id));
        Ok(all.into_iter().map(|c| self.view_case(c, false)).collect())
    }

    /// One case (case readers), with the reported messages as their reporter disclosed
    /// them; showing those texts is logged first.
    pub async fn case(&self, by: &StaffPrincipal, id: CaseId) -> ServiceResult<CaseView> {
        by.require(CASE_READERS, "this role does not handle cases")?;
        let case = self.case_record(id).await?;
        let disclosed: Vec<String> = case
            .evidence
            .iter()
            .filter(|e| e.claimed.is_some())
            .map(|e| e.seq.to_string())
            .collect();
        if !disclosed.is_empty() {
            self.append(AuditEvent {
                kind: EventKind::AccessRead,
                time: self.inner.clock.now(),
                actor: Some(by.actor()),
                reason: Some("report_review".into()),
                case: Some(id.to_string()),
                subjects: vec![Subject::Conversation(case.conversation_id)],
                scope: vec![
                    (
                        "what".into(),
                        "reported messages as disclosed by the reporter".into(),
                    ),
                    ("messages".into(), disclosed.join(" ")),
                ],
            })
            .await?;
        }
        let mut view = self.view_case(case, true);
        let names = self
            .usernames(view.evidence.iter().map(|e| e.sender))
            .await?;
        for e in &mut view.evidence {
            e.sender_username = names
                .iter()
                .find(|(id, _)| *id == e.sender)
                .map(|(_, n)| n.clone());
        }
        Ok(view)
    }

    /// The usernames of `users` (each once; an account that no longer exists is left out).
    pub(crate) async fn usernames(
        &self,
        users: impl Iterator<Item = UserId>,
    ) -> ServiceResult<Vec<(UserId, String)>> {
        let mut ids: Vec<UserId> = users.collect();
        ids.sort();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = self.inner.store.accounts.user_by_id(id).await? {
                out.push((id, u.username.to_string()));
            }
        }
        Ok(out)
    }

    /// Logs a case's opening (`case.opened`, with `actor`, `subjects` and `scope`), then
    /// stores the case: a case nobody can find in the log never exists.
    pub(crate) async fn open_case(
        &self,
        case: CaseRecord,
        actor: Option<custodia_audit::Actor>,
        subjects: Vec<Subject>,
        scope: Vec<(String, String)>,
    ) -> ServiceResult<CaseId> {
        let id = case.id;
        self.append(AuditEvent {
            kind: EventKind::CaseOpened,
            time: case.opened_at,
            actor,
            reason: None,
            case: Some(id.to_string()),
            subjects,
            scope,
        })
        .await?;
        self.inner.store.cases.create_case(case).await?;
        Ok(id)
    }

    /// Records that a legal case's non-disclosure order was extended to `until` (a legal
    /// officer, with the SHA-256 of the new order's document): logged first, then the case
    /// and its deferred notices move together. The end only moves later.
    pub async fn extend_nondisclosure(
        &self,
        by: &StaffPrincipal,
        id: CaseId,
        until: Timestamp,
        document_sha256: &str,
    ) -> ServiceResult<CaseView> {
        let (case, document) = self.order_change(by, id, document_sha256).await?;
        match case.nondisclosure_until {
            None => {
                return Err(ServiceError::Rejected(
                    "this case has no non-disclosure order to extend",
                ));
            }
            Some(end) if until <= end => {
                return Err(ServiceError::Rejected(
                    "an extension must end later than the order it extends",
                ));
            }
            Some(_) => {}
        }
        self.append(AuditEvent {
            kind: EventKind::OrderExtended,
            time: self.inner.clock.now(),
            actor: Some(by.actor()),
            reason: None,
            case: Some(id.to_string()),
            subjects: vec![Subject::Conversation(case.conversation_id)],
            scope: vec![
                ("until_ms".into(), until.as_millis().to_string()),
                ("document_sha256".into(), document),
            ],
        })
        .await?;
        self.inner
            .store
            .cases
            .extend_nondisclosure(id, until)
            .await?;
        self.case(by, id).await
    }

    /// A legal officer records that a case's non-disclosure order was lifted (logged, with
    /// the SHA-256 of the lifting document): the notices it held back are released now.
    pub async fn lift_nondisclosure(
        &self,
        by: &StaffPrincipal,
        id: CaseId,
        document_sha256: &str,
    ) -> ServiceResult<CaseView> {
        let (case, document) = self.order_change(by, id, document_sha256).await?;
        let now = self.inner.clock.now();
        if case.nondisclosure_until.is_none_or(|end| end <= now) {
            return Err(ServiceError::Rejected(
                "this case has no non-disclosure order in force to lift",
            ));
        }
        self.append(AuditEvent {
            kind: EventKind::OrderLifted,
            time: now,
            actor: Some(by.actor()),
            reason: None,
            case: Some(id.to_string()),
            subjects: vec![Subject::Conversation(case.conversation_id)],
            scope: vec![("document_sha256".into(), document)],
        })
        .await?;
        self.inner.store.cases.extend_nondisclosure(id, now).await?;
        self.release_notices().await?;
        self.case(by, id).await
    }

    /// Checks who changes an order and the document's hash; the case and the hash.
    async fn order_change(
        &self,
        by: &StaffPrincipal,
        id: CaseId,
        document_sha256: &str,
    ) -> ServiceResult<(CaseRecord, String)> {
        by.require(
            &[StaffRole::LegalOfficer],
            "only legal officers record non-disclosure orders",
        )?;
        let document = document_sha256.trim().to_ascii_lowercase();
        if document.len() != 64 || !document.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::Rejected(
                "give the SHA-256 of the order's document as 64 hex digits",
            ));
        }
        Ok((self.case_record(id).await?, document))
    }

    pub(crate) async fn case_record(&self, id: CaseId) -> ServiceResult<CaseRecord> {
        self.inner
            .store
            .cases
            .case(id)
            .await?
            .ok_or(ServiceError::NotFound("case"))
    }

    fn view_case(&self, c: CaseRecord, with_texts: bool) -> CaseView {
        let open = |label: &str, sealed: &custodia_store::SealedBody| {
            self.inner
                .keys
                .open_case_text(c.id, label, sealed)
                .unwrap_or_else(|e| {
                    tracing::warn!(case = %c.id, error = %e, "a reporter's text cannot be opened");
                    "(unreadable)".into()
                })
        };
        let comment = c.comment.as_ref().map(|s| open("comment", s));
        let evidence = c
            .evidence
            .iter()
            .map(|e| EvidenceView {
                seq: e.seq,
                sender: e.sender,
                sender_username: None,
                sent_at: e.sent_at,
                text: e
                    .claimed
                    .as_ref()
                    .filter(|_| with_texts)
                    .map(|s| open(&evidence_label(e.seq), s)),
                verified: e.verified,
            })
            .collect();
        CaseView {
            id: c.id,
            kind: c.kind,
            conversation_id: c.conversation_id,
            reporter: c.reporter,
            category: c.category,
            comment,
            reported: c.reported,
            evidence,
            scope: c.scope,
            reference: c.reference,
            opened_at: c.opened_at,
            nondisclosure_until: c.nondisclosure_until,
            priority: c.priority,
            files: c.files,
        }
    }
}

/// The label a reported message's disclosed text is sealed under.
use custodia_keys::evidence_label;

impl Governance {
    /// An upload matched a hash list: flags the uploader and opens a child-safety case
    /// over the attachment (kept sealed as evidence), logged first.
    pub async fn open_hash_match_case(
        &self,
        matched: &custodia_service::HashMatch,
    ) -> ServiceResult<CaseId> {
        let inner = &self.inner;
        let a = &matched.attachment;
        let now = inner.clock.now();
        let id = CaseId::at(now);
        let last = inner
            .store
            .conversations
            .conversation(a.conversation_id)
            .await?
            .map_or(0, |c| c.last_seq);
        let case = CaseRecord {
            id,
            kind: CaseKind::Signal,
            conversation_id: a.conversation_id,
            reporter: None,
            category: Some(ReportCategory::ChildSafety),
            priority: matched.priority,
            files: vec![a.id],
            comment: None,
            reported: Vec::new(),
            evidence: Vec::new(),
            scope: (
                last.saturating_sub(inner.config.report_context).max(1),
                last.max(1),
            ),
            reference: Some(format!(
                "upload matched hash list {:?}; attachment {} preserved as evidence",
                matched.list, a.id
            )),
            opened_by: None,
            nondisclosure_until: None,
            opened_at: now,
        };
        self.open_case(
            case,
            None,
            // Withheld: an uploader flagged by a hash list is not tipped off by their scan.
            vec![
                Subject::Withheld(a.uploader),
                Subject::Conversation(a.conversation_id),
            ],
            vec![
                ("kind".into(), "hash_match".into()),
                ("priority".into(), "high".into()),
                ("list".into(), matched.list.clone()),
                ("attachment".into(), a.id.to_string()),
                ("preserved".into(), "true".into()),
                ("uploader_flagged".into(), "true".into()),
            ],
        )
        .await?;
        inner
            .store
            .attachments
            .flag_user(
                a.uploader,
                format!("hash list match: {}", matched.list),
                now,
            )
            .await?;
        Ok(id)
    }
}

#[async_trait::async_trait]
impl custodia_service::Signals for Governance {
    async fn file_matched(&self, matched: custodia_service::HashMatch) {
        if let Err(e) = self.open_hash_match_case(&matched).await {
            tracing::error!(error = %e, attachment = %matched.attachment.id, "a hash list match could not open its case");
        }
    }

    async fn flagged(
        &self,
        message: custodia_service::MessageView,
        signal: custodia_service::Signal,
    ) -> ServiceResult<()> {
        self.open_signal_case(&message, &signal).await.map(drop)
    }
}

/// The id of the signal case of message `seq` of `conversation`: a UUID (version 8,
/// RFC 9562) made from a SHA-256 of the two, so every node derives the same one.
fn signal_case_id(conversation: custodia_core::ConversationId, seq: u64) -> CaseId {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"custodia/signal-case/v1\0");
    h.update(conversation.as_bytes());
    h.update(seq.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    CaseId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}
