//! Cases and access requests on PostgreSQL.

use async_trait::async_trait;
use custodia_core::{
    AccessNoticeId, CaseId, CaseKind, CasePriority, ConversationId, DataTier, HoldEnd, HoldId,
    LegalRequestId, ReasonCode, ReportCategory, RequestId, RequestStatus, StaffId, StaffRole,
    Timestamp, UserId,
};
use custodia_store::rows::{
    ADD_LEGAL_DOCUMENT, ADD_LEGAL_REQUEST, EXPIRE_HOLDS, HOLD_COLUMNS, HoldRow, LEGAL_COLUMNS,
    LEGAL_DOCUMENT, LegalRow, NOTICE_COLUMNS, RELEASE_NOTICES, REVIEW_LEGAL_REQUEST,
    UNLOGGED_RELEASES, categories_text, proof_bytes, proof_of, signed,
};
use custodia_store::{
    AccessNoticeRecord, AccessRequestRecord, CaseRecord, CaseStore, DecisionRecord, EvidenceRecord,
    HoldRecord, LegalRequestRecord, LegalReview, NoticeRelease, SealedBody, StoreError,
    StoreResult,
};
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::rows::{corrupt, get, i, millis, named, opt_millis, unsigned, uuid};
use crate::writer::Lock;
use crate::{PgStore, all, map_err};

const CASE_COLUMNS: &str = "id, kind, conversation_id, reporter, category, comment, reported, \
     scope_from, scope_to, reference, opened_by, opened_at, nondisclosure_until, priority, files";
const REQUEST_COLUMNS: &str = "id, case_id, requester, requester_role, reason, conversation_id, \
     seq_from, seq_to, tier, duration_ms, justification, created_at, pending_until, broad, \
     required, status, granted_from, granted_until";

fn case(row: &PgRow) -> StoreResult<CaseRecord> {
    let reported: String = get(row, "reported")?;
    let category: Option<String> = get(row, "category")?;
    Ok(CaseRecord {
        id: CaseId::from_uuid(uuid(row, "id")?),
        kind: named(row, "kind", CaseKind::parse)?,
        conversation_id: ConversationId::from_uuid(uuid(row, "conversation_id")?),
        reporter: get::<Option<Uuid>>(row, "reporter")?.map(UserId::from_uuid),
        category: category
            .map(|c| ReportCategory::parse(&c).map_err(|_| corrupt("category")))
            .transpose()?,
        comment: get::<Option<Vec<u8>>>(row, "comment")?.map(SealedBody),
        reported: reported
            .split_whitespace()
            .map(|s| s.parse().map_err(|_| corrupt("reported")))
            .collect::<StoreResult<_>>()?,
        evidence: Vec::new(),
        scope: (unsigned(row, "scope_from")?, unsigned(row, "scope_to")?),
        reference: get(row, "reference")?,
        opened_by: get::<Option<Uuid>>(row, "opened_by")?.map(StaffId::from_uuid),
        opened_at: millis(row, "opened_at")?,
        nondisclosure_until: opt_millis(row, "nondisclosure_until")?,
        priority: named(row, "priority", CasePriority::parse)?,
        files: custodia_store::rows::ids_of(&get::<String>(row, "files")?)
            .map_err(|_| corrupt("files"))?,
    })
}

fn request(row: &PgRow) -> StoreResult<AccessRequestRecord> {
    let granted = match (
        get::<Option<i64>>(row, "granted_from")?,
        get::<Option<i64>>(row, "granted_until")?,
    ) {
        (Some(a), Some(b)) => Some((Timestamp::from_millis(a), Timestamp::from_millis(b))),
        _ => None,
    };
    Ok(AccessRequestRecord {
        id: RequestId::from_uuid(uuid(row, "id")?),
        case_id: CaseId::from_uuid(uuid(row, "case_id")?),
        requester: StaffId::from_uuid(uuid(row, "requester")?),
        requester_role: named(row, "requester_role", StaffRole::parse)?,
        reason: named(row, "reason", ReasonCode::parse)?,
        conversation_id: ConversationId::from_uuid(uuid(row, "conversation_id")?),
        seqs: (unsigned(row, "seq_from")?, unsigned(row, "seq_to")?),
        tier: named(row, "tier", DataTier::parse)?,
        duration_ms: get(row, "duration_ms")?,
        justification: get(row, "justification")?,
        created_at: millis(row, "created_at")?,
        pending_until: millis(row, "pending_until")?,
        broad: get(row, "broad")?,
        required: u8::try_from(get::<i16>(row, "required")?).map_err(|_| corrupt("required"))?,
        approvers: Vec::new(),
        status: named(row, "status", RequestStatus::parse)?,
        decisions: Vec::new(),
        granted,
    })
}

/// Fills in a case's evidence.
async fn with_evidence(c: &mut PgConnection, mut k: CaseRecord) -> StoreResult<CaseRecord> {
    let found = sqlx::query(
        "SELECT seq, sender, sent_at, claimed, verified FROM case_evidence \
         WHERE case_id = $1 ORDER BY seq",
    )
    .bind(k.id.as_uuid())
    .fetch_all(c)
    .await
    .map_err(map_err)?;
    k.evidence = all(found, |row| {
        Ok(EvidenceRecord {
            seq: unsigned(row, "seq")?,
            sender: UserId::from_uuid(uuid(row, "sender")?),
            sent_at: millis(row, "sent_at")?,
            claimed: get::<Option<Vec<u8>>>(row, "claimed")?.map(SealedBody),
            verified: get(row, "verified")?,
        })
    })?;
    Ok(k)
}

/// Fills in a request's frozen approvers and its decisions.
async fn complete(
    c: &mut PgConnection,
    mut r: AccessRequestRecord,
) -> StoreResult<AccessRequestRecord> {
    let approvers: Vec<Uuid> = sqlx::query_scalar(
        "SELECT staff_id FROM request_approvers WHERE request_id = $1 ORDER BY staff_id",
    )
    .bind(r.id.as_uuid())
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    r.approvers = approvers.into_iter().map(StaffId::from_uuid).collect();
    let found = sqlx::query(
        "SELECT staff_id, role, approve, justification, at, log_index \
         FROM request_decisions WHERE request_id = $1 ORDER BY at, log_index",
    )
    .bind(r.id.as_uuid())
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    r.decisions = all(found, |row| {
        Ok(DecisionRecord {
            staff_id: StaffId::from_uuid(uuid(row, "staff_id")?),
            role: named(row, "role", StaffRole::parse)?,
            approve: get(row, "approve")?,
            justification: get(row, "justification")?,
            at: millis(row, "at")?,
            log_index: unsigned(row, "log_index")?,
        })
    })?;
    Ok(r)
}

async fn move_status(
    c: &mut PgConnection,
    id: RequestId,
    from: RequestStatus,
    to: RequestStatus,
    granted: Option<(Timestamp, Timestamp)>,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE access_requests SET status = $3, \
         granted_from = COALESCE($4, granted_from), granted_until = COALESCE($5, granted_until) \
         WHERE id = $1 AND status = $2",
    )
    .bind(id.as_uuid())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(granted.map(|g| g.0.as_millis()))
    .bind(granted.map(|g| g.1.as_millis()))
    .execute(c)
    .await
    .map_err(map_err)?
    .rows_affected();
    Ok(n == 1)
}

#[async_trait]
impl CaseStore for PgStore {
    async fn create_case(&self, k: CaseRecord) -> StoreResult<()> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    for e in &k.evidence {
                        sqlx::query(
                            "INSERT INTO case_evidence (case_id, seq, sender, sent_at, claimed, verified) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(k.id.as_uuid())
                        .bind(i(e.seq))
                        .bind(e.sender.as_uuid())
                        .bind(e.sent_at.as_millis())
                        .bind(e.claimed.as_ref().map(|b| &b.0[..]))
                        .bind(e.verified)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    let reported: Vec<String> = k.reported.iter().map(u64::to_string).collect();
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO cases ({CASE_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                    )))
                    .bind(k.id.as_uuid())
                    .bind(k.kind.as_str())
                    .bind(k.conversation_id.as_uuid())
                    .bind(k.reporter.map(|u| *u.as_uuid()))
                    .bind(k.category.map(|c| c.as_str()))
                    .bind(k.comment.as_ref().map(|b| &b.0[..]))
                    .bind(reported.join(" "))
                    .bind(i(k.scope.0))
                    .bind(i(k.scope.1))
                    .bind(&k.reference)
                    .bind(k.opened_by.map(|s| *s.as_uuid()))
                    .bind(k.opened_at.as_millis())
                    .bind(k.nondisclosure_until.map(|t| t.as_millis()))
                    .bind(k.priority.as_str())
                    .bind(custodia_store::rows::ids_text(&k.files))
                    .execute(&mut *c)
                    .await
                    .map(drop)
                    .map_err(map_err)
                })
            })
            .await
    }

    async fn case(&self, id: CaseId) -> StoreResult<Option<CaseRecord>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        let found = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"
        )))
        .bind(id.as_uuid())
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
        match found {
            Some(row) => Ok(Some(with_evidence(&mut c, case(&row)?).await?)),
            None => Ok(None),
        }
    }

    async fn cases(&self) -> StoreResult<Vec<CaseRecord>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        let found = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases ORDER BY opened_at DESC, id DESC"
        )))
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(found.len());
        for k in all(found, case)? {
            out.push(with_evidence(&mut c, k).await?);
        }
        Ok(out)
    }

    async fn create_request(&self, r: AccessRequestRecord) -> StoreResult<()> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO access_requests ({REQUEST_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, NULL, NULL)"
                    )))
                    .bind(r.id.as_uuid())
                    .bind(r.case_id.as_uuid())
                    .bind(r.requester.as_uuid())
                    .bind(r.requester_role.as_str())
                    .bind(r.reason.as_str())
                    .bind(r.conversation_id.as_uuid())
                    .bind(i(r.seqs.0))
                    .bind(i(r.seqs.1))
                    .bind(r.tier.as_str())
                    .bind(r.duration_ms)
                    .bind(&r.justification)
                    .bind(r.created_at.as_millis())
                    .bind(r.pending_until.as_millis())
                    .bind(r.broad)
                    .bind(i16::from(r.required))
                    .bind(RequestStatus::Pending.as_str())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let approvers: Vec<Uuid> = r.approvers.iter().map(|a| *a.as_uuid()).collect();
                    sqlx::query(
                        "INSERT INTO request_approvers (request_id, staff_id) \
                         SELECT $1, s FROM UNNEST($2::uuid[]) AS t(s)",
                    )
                    .bind(r.id.as_uuid())
                    .bind(&approvers)
                    .execute(&mut *c)
                    .await
                    .map(drop)
                    .map_err(map_err)
                })
            })
            .await
    }

    async fn request(&self, id: RequestId) -> StoreResult<Option<AccessRequestRecord>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        let found = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = $1"
        )))
        .bind(id.as_uuid())
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
        match found {
            Some(row) => Ok(Some(complete(&mut c, request(&row)?).await?)),
            None => Ok(None),
        }
    }

    async fn requests_of_case(&self, case_id: CaseId) -> StoreResult<Vec<AccessRequestRecord>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        let found = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE case_id = $1 ORDER BY created_at, id"
        )))
        .bind(case_id.as_uuid())
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(found.len());
        for r in all(found, request)? {
            out.push(complete(&mut c, r).await?);
        }
        Ok(out)
    }

    async fn decide(
        &self,
        id: RequestId,
        d: DecisionRecord,
        from: RequestStatus,
        to: RequestStatus,
        granted: Option<(Timestamp, Timestamp)>,
    ) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    // The request's row lock makes the state check and the decision one
                    // step for every node.
                    let status: Option<String> = sqlx::query_scalar(
                        "SELECT status FROM access_requests WHERE id = $1 FOR UPDATE",
                    )
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if status.as_deref() != Some(from.as_str()) {
                        return Ok(false);
                    }
                    sqlx::query(
                        "INSERT INTO request_decisions \
                         (request_id, staff_id, role, approve, justification, at, log_index) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(id.as_uuid())
                    .bind(d.staff_id.as_uuid())
                    .bind(d.role.as_str())
                    .bind(d.approve)
                    .bind(&d.justification)
                    .bind(d.at.as_millis())
                    .bind(i(d.log_index))
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if from != to && !move_status(c, id, from, to, granted).await? {
                        return Err(StoreError::Conflict);
                    }
                    Ok(true)
                })
            })
            .await
    }

    async fn set_request_status(
        &self,
        id: RequestId,
        from: RequestStatus,
        to: RequestStatus,
    ) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(move_status(c, id, from, to, None))
            })
            .await
    }

    async fn add_access_notices(&self, notices: Vec<AccessNoticeRecord>) -> StoreResult<()> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    for n in &notices {
                        sqlx::query(AssertSqlSafe(format!(
                            "INSERT INTO access_notices ({NOTICE_COLUMNS}) VALUES \
                             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                             ON CONFLICT (user_id, log_index) DO NOTHING"
                        )))
                        .bind(n.id.as_uuid())
                        .bind(n.user_id.as_uuid())
                        .bind(n.conversation_id.as_uuid())
                        .bind(n.read_at.as_millis())
                        .bind(n.role.as_str())
                        .bind(n.reason.as_str())
                        .bind(n.case_id.as_uuid())
                        .bind(i64::from(n.messages))
                        .bind(n.span.0.as_millis())
                        .bind(n.span.1.as_millis())
                        .bind(signed(n.log_index))
                        .bind(&n.checkpoint)
                        .bind(proof_bytes(&n.proof))
                        .bind(n.deferred_until.map(|t| t.as_millis()))
                        .bind(n.released_at.map(|t| t.as_millis()))
                        .bind(n.deferred_review.map(|r| *r.as_uuid()))
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn access_notices_of(&self, user: UserId) -> StoreResult<Vec<AccessNoticeRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM access_notices WHERE user_id = $1 \
             AND ((deferred_until IS NULL AND deferred_review IS NULL) \
                  OR released_at IS NOT NULL) \
             ORDER BY read_at DESC, log_index DESC"
        )))
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        all(rows, notice)
    }

    async fn add_legal_request(
        &self,
        request: LegalRequestRecord,
        documents: Vec<SealedBody>,
    ) -> StoreResult<u64> {
        let r = LegalRow::of(&request);
        let number: i64 = self
            .writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let id = r.id;
                    let number: i64 = sqlx::query_scalar(ADD_LEGAL_REQUEST)
                        .bind(r.id)
                        .bind(r.agency_name)
                        .bind(r.agency_country)
                        .bind(r.agency_subdivision)
                        .bind(r.officer_name)
                        .bind(r.officer_badge)
                        .bind(r.officer_email)
                        .bind(r.officer_domain_verified)
                        .bind(r.process)
                        .bind(r.court)
                        .bind(r.targets)
                        .bind(r.categories)
                        .bind(r.period_from)
                        .bind(r.period_to)
                        .bind(r.nd_authority)
                        .bind(r.nd_until)
                        .bind(r.emergency_basis)
                        .bind(r.received_by)
                        .bind(r.received_at)
                        .bind(r.received_log_index)
                        .bind(r.documents)
                        .bind(r.follows_up)
                        .fetch_one(&mut *c)
                        .await
                        .map_err(map_err)?;
                    for (position, sealed) in documents.iter().enumerate() {
                        sqlx::query(ADD_LEGAL_DOCUMENT)
                            .bind(id)
                            .bind(position as i32)
                            .bind(&sealed.0)
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                    }
                    Ok(number)
                })
            })
            .await?;
        u64::try_from(number).map_err(|_| corrupt("number"))
    }

    async fn legal_request(&self, id: LegalRequestId) -> StoreResult<Option<LegalRequestRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LEGAL_COLUMNS} FROM legal_requests WHERE id = $1"
        )))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(legal).transpose()
    }

    async fn legal_document(
        &self,
        id: LegalRequestId,
        position: u32,
    ) -> StoreResult<Option<SealedBody>> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(LEGAL_DOCUMENT)
            .bind(id.as_uuid())
            .bind(i32::try_from(position).map_err(|_| corrupt("document position"))?)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(sealed.map(SealedBody))
    }

    async fn legal_requests(&self) -> StoreResult<Vec<LegalRequestRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LEGAL_COLUMNS} FROM legal_requests ORDER BY number DESC"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        all(rows, legal)
    }

    async fn review_legal_request(
        &self,
        id: LegalRequestId,
        review: LegalReview,
    ) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let n = sqlx::query(REVIEW_LEGAL_REQUEST)
                        .bind(review.outcome.as_str())
                        .bind(review.reason.map(|r| r.as_str()))
                        .bind(review.narrowing)
                        .bind(categories_text(&review.accepted))
                        .bind(review.by.as_uuid())
                        .bind(review.at.as_millis())
                        .bind(review.log_index.map(signed))
                        .bind(id.as_uuid())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                    Ok(n == 1)
                })
            })
            .await
    }

    async fn add_hold(&self, hold: HoldRecord) -> StoreResult<()> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO legal_holds ({HOLD_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    )))
                    .bind(hold.id.as_uuid())
                    .bind(hold.legal_request.as_uuid())
                    .bind(hold.account.as_uuid())
                    .bind(hold.period.0.as_millis())
                    .bind(hold.period.1.as_millis())
                    .bind(hold.placed_by.as_uuid())
                    .bind(hold.placed_at.as_millis())
                    .bind(hold.expires_at.as_millis())
                    .bind(hold.extended)
                    .bind(hold.ended.map(|(t, _)| t.as_millis()))
                    .bind(hold.ended.map(|(_, h)| h.as_str()))
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    for conv in &hold.conversations {
                        sqlx::query(
                            "INSERT INTO legal_hold_conversations (hold_id, conversation_id) \
                             VALUES ($1, $2)",
                        )
                        .bind(hold.id.as_uuid())
                        .bind(conv.as_uuid())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn hold(&self, id: HoldId) -> StoreResult<Option<HoldRecord>> {
        Ok(self.holds_where("id = $1", *id.as_uuid()).await?.pop())
    }

    async fn holds_of(&self, request: LegalRequestId) -> StoreResult<Vec<HoldRecord>> {
        self.holds_where("legal_request_id = $1", *request.as_uuid())
            .await
    }

    async fn extend_hold(&self, id: HoldId, until: Timestamp) -> StoreResult<bool> {
        self.statement(
            Lock::Own,
            "UPDATE legal_holds SET expires_at = $2, extended = true \
             WHERE id = $1 AND NOT extended AND ended_at IS NULL",
            move |q| q.bind(*id.as_uuid()).bind(until.as_millis()),
        )
        .await
        .map(|n| n == 1)
    }

    async fn end_hold(&self, id: HoldId, at: Timestamp, how: HoldEnd) -> StoreResult<bool> {
        self.statement(
            Lock::Own,
            "UPDATE legal_holds SET ended_at = $2, ended_how = $3 \
             WHERE id = $1 AND ended_at IS NULL",
            move |q| {
                q.bind(*id.as_uuid())
                    .bind(at.as_millis())
                    .bind(how.as_str())
            },
        )
        .await
        .map(|n| n == 1)
    }

    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>> {
        let ids: Vec<Uuid> = self
            .writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query_scalar(EXPIRE_HOLDS)
                        .bind(now.as_millis())
                        .fetch_all(&mut *c)
                        .await
                        .map_err(map_err)
                })
            })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.hold(HoldId::from_uuid(id)).await?);
        }
        Ok(out)
    }

    async fn unlogged_releases(&self) -> StoreResult<Vec<AccessNoticeRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} {UNLOGGED_RELEASES}"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        all(rows, notice)
    }

    async fn mark_releases_logged(&self, ids: Vec<AccessNoticeId>) -> StoreResult<()> {
        let ids: Vec<Uuid> = ids.iter().map(|i| *i.as_uuid()).collect();
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE access_notices SET release_logged = true WHERE id = ANY($1)",
                    )
                    .bind(ids)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn extend_nondisclosure(&self, case: CaseId, until: Timestamp) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let changed =
                        sqlx::query("UPDATE cases SET nondisclosure_until = $2 WHERE id = $1")
                            .bind(case.as_uuid())
                            .bind(until.as_millis())
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?
                            .rows_affected();
                    sqlx::query(
                        "UPDATE access_notices SET deferred_until = $2 \
                         WHERE case_id = $1 AND deferred_until IS NOT NULL AND released_at IS NULL",
                    )
                    .bind(case.as_uuid())
                    .bind(until.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    Ok(changed == 1)
                })
            })
            .await
    }

    async fn release_access_notices(
        &self,
        which: NoticeRelease,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessNoticeRecord>> {
        let review = match which {
            NoticeRelease::Due => None,
            NoticeRelease::Review(r) => Some(*r.as_uuid()),
        };
        let rows = self
            .writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(format!(
                        "{RELEASE_NOTICES} RETURNING {NOTICE_COLUMNS}"
                    )))
                    .bind(now.as_millis())
                    .bind(review)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(map_err)
                })
            })
            .await?;
        all(rows, notice)
    }
}

impl PgStore {
    /// The holds matching `filter` on `legal_holds` (one uuid parameter), oldest first,
    /// with their conversations.
    async fn holds_where(&self, filter: &str, value: Uuid) -> StoreResult<Vec<HoldRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE {filter} ORDER BY placed_at, id"
        )))
        .bind(value)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let hold = HoldRow {
                id: uuid(row, "id")?,
                legal_request_id: uuid(row, "legal_request_id")?,
                account: uuid(row, "account")?,
                period_from: get(row, "period_from")?,
                period_to: get(row, "period_to")?,
                placed_by: uuid(row, "placed_by")?,
                placed_at: get(row, "placed_at")?,
                expires_at: get(row, "expires_at")?,
                extended: get(row, "extended")?,
                ended_at: get(row, "ended_at")?,
                ended_how: get(row, "ended_how")?,
            };
            let conversations: Vec<Uuid> = sqlx::query_scalar(
                "SELECT conversation_id FROM legal_hold_conversations WHERE hold_id = $1 \
                 ORDER BY conversation_id",
            )
            .bind(hold.id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            out.push(hold.into_record(conversations)?);
        }
        Ok(out)
    }
}

/// A legal request row.
fn legal(row: &PgRow) -> StoreResult<LegalRequestRecord> {
    LegalRow {
        id: uuid(row, "id")?,
        number: get(row, "number")?,
        agency_name: get(row, "agency_name")?,
        agency_country: get(row, "agency_country")?,
        agency_subdivision: get(row, "agency_subdivision")?,
        officer_name: get(row, "officer_name")?,
        officer_badge: get(row, "officer_badge")?,
        officer_email: get(row, "officer_email")?,
        officer_domain_verified: get(row, "officer_domain_verified")?,
        process: get(row, "process")?,
        court: get(row, "court")?,
        targets: get(row, "targets")?,
        categories: get(row, "categories")?,
        period_from: get(row, "period_from")?,
        period_to: get(row, "period_to")?,
        nd_authority: get(row, "nd_authority")?,
        nd_until: get(row, "nd_until")?,
        emergency_basis: get(row, "emergency_basis")?,
        received_by: uuid(row, "received_by")?,
        received_at: get(row, "received_at")?,
        outcome: get(row, "outcome")?,
        rejection: get(row, "rejection")?,
        narrowing: get(row, "narrowing")?,
        accepted: get(row, "accepted")?,
        reviewed_by: get(row, "reviewed_by")?,
        reviewed_at: get(row, "reviewed_at")?,
        received_log_index: get(row, "received_log_index")?,
        review_log_index: get(row, "review_log_index")?,
        documents: get(row, "documents")?,
        follows_up: get(row, "follows_up")?,
    }
    .into_record()
}

/// An access notice row.
fn notice(row: &PgRow) -> StoreResult<AccessNoticeRecord> {
    Ok(AccessNoticeRecord {
        id: AccessNoticeId::from_uuid(uuid(row, "id")?),
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        conversation_id: ConversationId::from_uuid(uuid(row, "conversation_id")?),
        read_at: millis(row, "read_at")?,
        role: named(row, "role", StaffRole::parse)?,
        reason: named(row, "reason", ReasonCode::parse)?,
        case_id: CaseId::from_uuid(uuid(row, "case_id")?),
        messages: u32::try_from(get::<i64>(row, "messages")?).map_err(|_| corrupt("messages"))?,
        span: (millis(row, "first_sent_at")?, millis(row, "last_sent_at")?),
        log_index: unsigned(row, "log_index")?,
        checkpoint: get(row, "checkpoint")?,
        proof: proof_of(&get::<Vec<u8>>(row, "proof")?)?,
        deferred_until: opt_millis(row, "deferred_until")?,
        released_at: opt_millis(row, "released_at")?,
        deferred_review: get::<Option<Uuid>>(row, "deferred_review")?.map(RequestId::from_uuid),
    })
}
