//! Cases and access requests on SQLite.

use async_trait::async_trait;
use custodia_core::{
    AccessNoticeId, CaseId, CaseKind, CasePriority, ConversationId, DataTier, HoldEnd, HoldId,
    LegalRequestId, ReasonCode, ReportCategory, RequestId, RequestStatus, StaffId, StaffRole,
    Timestamp, UserId,
};
use custodia_store::rows::{
    ADD_LEGAL_DOCUMENT, ADD_LEGAL_REQUEST, EXPIRE_HOLDS, HOLD_COLUMNS, HoldRow, LEGAL_COLUMNS,
    LEGAL_DOCUMENT, LegalRow, NOTICE_COLUMNS, RELEASE_NOTICES, REVIEW_LEGAL_REQUEST,
    UNLOGGED_RELEASES, categories_text, proof_bytes, proof_of, signed, unsigned,
};
use custodia_store::{
    AccessNoticeRecord, AccessRequestRecord, CaseRecord, CaseStore, DecisionRecord, EvidenceRecord,
    HoldRecord, LegalRequestRecord, LegalReview, NoticeRelease, SealedBody, StoreError,
    StoreResult,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, map_err};

const CASE_COLUMNS: &str = "id, kind, conversation_id, reporter, category, comment, reported, \
     scope_from, scope_to, reference, opened_by, opened_at, nondisclosure_until, priority, files";
const REQUEST_COLUMNS: &str = "id, case_id, requester, requester_role, reason, conversation_id, \
     seq_from, seq_to, tier, duration_ms, justification, created_at, pending_until, broad, \
     required, status, granted_from, granted_until";

fn corrupt(col: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("undecodable value in column {col}"))
}

fn named<T>(
    row: &Row<'_>,
    col: &str,
    parse: impl Fn(&str) -> Result<T, custodia_core::ValidationError>,
) -> rusqlite::Result<T> {
    let s: String = row.get(col)?;
    parse(&s).map_err(|_| corrupt(col))
}

fn seq(row: &Row<'_>, col: &str) -> rusqlite::Result<u64> {
    u64::try_from(row.get::<_, i64>(col)?).map_err(|_| corrupt(col))
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn case(row: &Row<'_>) -> rusqlite::Result<CaseRecord> {
    let reported: String = row.get("reported")?;
    let category: Option<String> = row.get("category")?;
    Ok(CaseRecord {
        id: CaseId::from_uuid(row.get("id")?),
        kind: named(row, "kind", CaseKind::parse)?,
        conversation_id: ConversationId::from_uuid(row.get("conversation_id")?),
        reporter: row
            .get::<_, Option<Uuid>>("reporter")?
            .map(UserId::from_uuid),
        category: category
            .map(|c| ReportCategory::parse(&c).map_err(|_| corrupt("category")))
            .transpose()?,
        comment: row.get::<_, Option<Vec<u8>>>("comment")?.map(SealedBody),
        reported: reported
            .split_whitespace()
            .map(|s| s.parse().map_err(|_| corrupt("reported")))
            .collect::<rusqlite::Result<_>>()?,
        evidence: Vec::new(),
        scope: (seq(row, "scope_from")?, seq(row, "scope_to")?),
        reference: row.get("reference")?,
        opened_by: row
            .get::<_, Option<Uuid>>("opened_by")?
            .map(StaffId::from_uuid),
        opened_at: Timestamp::from_millis(row.get("opened_at")?),
        nondisclosure_until: row
            .get::<_, Option<i64>>("nondisclosure_until")?
            .map(Timestamp::from_millis),
        priority: named(row, "priority", CasePriority::parse)?,
        files: custodia_store::rows::ids_of(&row.get::<_, String>("files")?)
            .map_err(|_| corrupt("files"))?,
    })
}

fn request(row: &Row<'_>) -> rusqlite::Result<AccessRequestRecord> {
    let granted = match (
        row.get::<_, Option<i64>>("granted_from")?,
        row.get::<_, Option<i64>>("granted_until")?,
    ) {
        (Some(a), Some(b)) => Some((Timestamp::from_millis(a), Timestamp::from_millis(b))),
        _ => None,
    };
    Ok(AccessRequestRecord {
        id: RequestId::from_uuid(row.get("id")?),
        case_id: CaseId::from_uuid(row.get("case_id")?),
        requester: StaffId::from_uuid(row.get("requester")?),
        requester_role: named(row, "requester_role", StaffRole::parse)?,
        reason: named(row, "reason", ReasonCode::parse)?,
        conversation_id: ConversationId::from_uuid(row.get("conversation_id")?),
        seqs: (seq(row, "seq_from")?, seq(row, "seq_to")?),
        tier: named(row, "tier", DataTier::parse)?,
        duration_ms: row.get("duration_ms")?,
        justification: row.get("justification")?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
        pending_until: Timestamp::from_millis(row.get("pending_until")?),
        broad: row.get("broad")?,
        required: row.get("required")?,
        approvers: Vec::new(),
        status: named(row, "status", RequestStatus::parse)?,
        decisions: Vec::new(),
        granted,
    })
}

/// Fills in a case's evidence.
fn with_evidence(c: &Connection, mut k: CaseRecord) -> rusqlite::Result<CaseRecord> {
    k.evidence = c
        .prepare_cached(
            "SELECT seq, sender, sent_at, claimed, verified FROM case_evidence \
             WHERE case_id = ?1 ORDER BY seq",
        )?
        .query_map([k.id.as_uuid()], |row| {
            Ok(EvidenceRecord {
                seq: seq(row, "seq")?,
                sender: UserId::from_uuid(row.get("sender")?),
                sent_at: Timestamp::from_millis(row.get("sent_at")?),
                claimed: row.get::<_, Option<Vec<u8>>>("claimed")?.map(SealedBody),
                verified: row.get("verified")?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(k)
}

/// Fills in a request's frozen approvers and its decisions.
fn complete(c: &Connection, mut r: AccessRequestRecord) -> rusqlite::Result<AccessRequestRecord> {
    r.approvers = c
        .prepare_cached(
            "SELECT staff_id FROM request_approvers WHERE request_id = ?1 ORDER BY staff_id",
        )?
        .query_map([r.id.as_uuid()], |row| {
            Ok(StaffId::from_uuid(row.get("staff_id")?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    r.decisions = c
        .prepare_cached(
            "SELECT staff_id, role, approve, justification, at, log_index \
             FROM request_decisions WHERE request_id = ?1 ORDER BY at, log_index",
        )?
        .query_map([r.id.as_uuid()], |row| {
            Ok(DecisionRecord {
                staff_id: StaffId::from_uuid(row.get("staff_id")?),
                role: named(row, "role", StaffRole::parse)?,
                approve: row.get("approve")?,
                justification: row.get("justification")?,
                at: Timestamp::from_millis(row.get("at")?),
                log_index: seq(row, "log_index")?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(r)
}

fn move_status(
    c: &Connection,
    id: RequestId,
    from: RequestStatus,
    to: RequestStatus,
    granted: Option<(Timestamp, Timestamp)>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE access_requests SET status = ?3, \
             granted_from = COALESCE(?4, granted_from), granted_until = COALESCE(?5, granted_until) \
             WHERE id = ?1 AND status = ?2",
            params![
                id.as_uuid(),
                from.as_str(),
                to.as_str(),
                granted.map(|g| g.0.as_millis()),
                granted.map(|g| g.1.as_millis())
            ],
        )
        .map_err(map_err)?;
    Ok(n == 1)
}

#[async_trait]
impl CaseStore for SqliteStore {
    async fn create_case(&self, k: CaseRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let reported: Vec<String> = k.reported.iter().map(u64::to_string).collect();
                let mut evidence = c
                    .prepare_cached(
                        "INSERT INTO case_evidence (case_id, seq, sender, sent_at, claimed, verified) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(map_err)?;
                for e in &k.evidence {
                    evidence
                        .execute(params![
                            k.id.as_uuid(),
                            i(e.seq),
                            e.sender.as_uuid(),
                            e.sent_at.as_millis(),
                            e.claimed.as_ref().map(|b| &b.0[..]),
                            e.verified
                        ])
                        .map_err(map_err)?;
                }
                c.prepare_cached(&format!(
                    "INSERT INTO cases ({CASE_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        k.id.as_uuid(),
                        k.kind.as_str(),
                        k.conversation_id.as_uuid(),
                        k.reporter.map(|u| *u.as_uuid()),
                        k.category.map(|c| c.as_str()),
                        k.comment.map(|b| b.0),
                        reported.join(" "),
                        i(k.scope.0),
                        i(k.scope.1),
                        k.reference,
                        k.opened_by.map(|s| *s.as_uuid()),
                        k.opened_at.as_millis(),
                        k.nondisclosure_until.map(|t| t.as_millis()),
                        k.priority.as_str(),
                        custodia_store::rows::ids_text(&k.files)
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn case(&self, id: CaseId) -> StoreResult<Option<CaseRecord>> {
        self.read(move |c| {
            let found = c
                .prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"))?
                .query_row([id.as_uuid()], case)
                .optional()?;
            found.map(|k| with_evidence(c, k)).transpose()
        })
        .await
    }

    async fn cases(&self) -> StoreResult<Vec<CaseRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CASE_COLUMNS} FROM cases ORDER BY opened_at DESC, id DESC"
            ))?
            .query_map([], case)?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|k| with_evidence(c, k))
            .collect()
        })
        .await
    }

    async fn create_request(&self, r: AccessRequestRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO access_requests ({REQUEST_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, NULL, NULL)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        r.id.as_uuid(),
                        r.case_id.as_uuid(),
                        r.requester.as_uuid(),
                        r.requester_role.as_str(),
                        r.reason.as_str(),
                        r.conversation_id.as_uuid(),
                        i(r.seqs.0),
                        i(r.seqs.1),
                        r.tier.as_str(),
                        r.duration_ms,
                        r.justification,
                        r.created_at.as_millis(),
                        r.pending_until.as_millis(),
                        r.broad,
                        r.required,
                        RequestStatus::Pending.as_str()
                    ])
                })
                .map_err(map_err)?;
                let mut approver = c
                    .prepare_cached(
                        "INSERT INTO request_approvers (request_id, staff_id) VALUES (?1, ?2)",
                    )
                    .map_err(map_err)?;
                for a in &r.approvers {
                    approver
                        .execute(params![r.id.as_uuid(), a.as_uuid()])
                        .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn request(&self, id: RequestId) -> StoreResult<Option<AccessRequestRecord>> {
        self.read(move |c| {
            let found = c
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = ?1"
                ))?
                .query_row([id.as_uuid()], request)
                .optional()?;
            found.map(|r| complete(c, r)).transpose()
        })
        .await
    }

    async fn requests_of_case(&self, case_id: CaseId) -> StoreResult<Vec<AccessRequestRecord>> {
        self.read(move |c| {
            let found: Vec<AccessRequestRecord> = c
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE case_id = ?1 \
                     ORDER BY created_at, id"
                ))?
                .query_map([case_id.as_uuid()], request)?
                .collect::<rusqlite::Result<_>>()?;
            found.into_iter().map(|r| complete(c, r)).collect()
        })
        .await
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
            .write(move |c| {
                let status: Option<String> = c
                    .query_row(
                        "SELECT status FROM access_requests WHERE id = ?1",
                        [id.as_uuid()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                if status.as_deref() != Some(from.as_str()) {
                    return Ok(false);
                }
                c.execute(
                    "INSERT INTO request_decisions \
                     (request_id, staff_id, role, approve, justification, at, log_index) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id.as_uuid(),
                        d.staff_id.as_uuid(),
                        d.role.as_str(),
                        d.approve,
                        d.justification,
                        d.at.as_millis(),
                        i(d.log_index)
                    ],
                )
                .map_err(map_err)?;
                if from != to && !move_status(c, id, from, to, granted)? {
                    return Err(StoreError::Conflict);
                }
                Ok(true)
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
            .write(move |c| move_status(c, id, from, to, None))
            .await
    }

    async fn add_access_notices(&self, notices: Vec<AccessNoticeRecord>) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let mut insert = c
                    .prepare_cached(&format!(
                        "INSERT INTO access_notices ({NOTICE_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
                         ON CONFLICT (user_id, log_index) DO NOTHING"
                    ))
                    .map_err(map_err)?;
                for n in &notices {
                    insert
                        .execute(params![
                            n.id.as_uuid(),
                            n.user_id.as_uuid(),
                            n.conversation_id.as_uuid(),
                            n.read_at.as_millis(),
                            n.role.as_str(),
                            n.reason.as_str(),
                            n.case_id.as_uuid(),
                            n.messages,
                            n.span.0.as_millis(),
                            n.span.1.as_millis(),
                            signed(n.log_index),
                            n.checkpoint,
                            proof_bytes(&n.proof),
                            n.deferred_until.map(|t| t.as_millis()),
                            n.released_at.map(|t| t.as_millis()),
                            n.deferred_review.map(|r| *r.as_uuid()),
                        ])
                        .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn access_notices_of(&self, user: UserId) -> StoreResult<Vec<AccessNoticeRecord>> {
        let rows = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {NOTICE_COLUMNS} FROM access_notices WHERE user_id = ?1 \
                     AND ((deferred_until IS NULL AND deferred_review IS NULL) \
                          OR released_at IS NOT NULL) \
                     ORDER BY read_at DESC, log_index DESC"
                ))?
                .query_map([user.as_uuid()], notice)?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        with_proofs(rows)
    }

    async fn add_legal_request(
        &self,
        request: LegalRequestRecord,
        documents: Vec<SealedBody>,
    ) -> StoreResult<u64> {
        let r = LegalRow::of(&request);
        let number = self
            .writer
            .write(move |c| {
                let number = c
                    .query_row(
                        ADD_LEGAL_REQUEST,
                        params![
                            r.id,
                            r.agency_name,
                            r.agency_country,
                            r.agency_subdivision,
                            r.officer_name,
                            r.officer_badge,
                            r.officer_email,
                            r.officer_domain_verified,
                            r.process,
                            r.court,
                            r.targets,
                            r.categories,
                            r.period_from,
                            r.period_to,
                            r.nd_authority,
                            r.nd_until,
                            r.emergency_basis,
                            r.received_by,
                            r.received_at,
                            r.received_log_index,
                            r.documents,
                            r.follows_up
                        ],
                        |row| row.get::<_, i64>(0),
                    )
                    .map_err(map_err)?;
                for (position, sealed) in documents.iter().enumerate() {
                    c.execute(ADD_LEGAL_DOCUMENT, params![r.id, position as i64, sealed.0])
                        .map_err(map_err)?;
                }
                Ok(number)
            })
            .await?;
        unsigned(number, "legal request number")
    }

    async fn legal_request(&self, id: LegalRequestId) -> StoreResult<Option<LegalRequestRecord>> {
        let row = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {LEGAL_COLUMNS} FROM legal_requests WHERE id = ?1"
                ))?
                .query_row([id.as_uuid()], legal_row)
                .optional()
            })
            .await?;
        row.map(LegalRow::into_record).transpose()
    }

    async fn legal_document(
        &self,
        id: LegalRequestId,
        position: u32,
    ) -> StoreResult<Option<SealedBody>> {
        self.read(move |c| {
            c.prepare_cached(LEGAL_DOCUMENT)?
                .query_row(params![id.as_uuid(), position], |r| r.get(0))
                .optional()
        })
        .await
        .map(|sealed| sealed.map(SealedBody))
    }

    async fn legal_requests(&self) -> StoreResult<Vec<LegalRequestRecord>> {
        let rows = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {LEGAL_COLUMNS} FROM legal_requests ORDER BY number DESC"
                ))?
                .query_map([], legal_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter().map(LegalRow::into_record).collect()
    }

    async fn review_legal_request(
        &self,
        id: LegalRequestId,
        review: LegalReview,
    ) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    REVIEW_LEGAL_REQUEST,
                    params![
                        review.outcome.as_str(),
                        review.reason.map(|r| r.as_str()),
                        review.narrowing,
                        categories_text(&review.accepted),
                        review.by.as_uuid(),
                        review.at.as_millis(),
                        review.log_index.map(signed),
                        id.as_uuid()
                    ],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn add_hold(&self, hold: HoldRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.execute(
                    &format!(
                        "INSERT INTO legal_holds ({HOLD_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        hold.id.as_uuid(),
                        hold.legal_request.as_uuid(),
                        hold.account.as_uuid(),
                        hold.period.0.as_millis(),
                        hold.period.1.as_millis(),
                        hold.placed_by.as_uuid(),
                        hold.placed_at.as_millis(),
                        hold.expires_at.as_millis(),
                        hold.extended,
                        hold.ended.map(|(t, _)| t.as_millis()),
                        hold.ended.map(|(_, h)| h.as_str()),
                    ],
                )
                .map_err(map_err)?;
                for conv in &hold.conversations {
                    c.execute(
                        "INSERT INTO legal_hold_conversations (hold_id, conversation_id) \
                         VALUES (?1, ?2)",
                        params![hold.id.as_uuid(), conv.as_uuid()],
                    )
                    .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn hold(&self, id: HoldId) -> StoreResult<Option<HoldRecord>> {
        let mut found = self
            .read(move |c| holds_where(c, "id = ?1", [id.as_uuid()]))
            .await??;
        Ok(found.pop())
    }

    async fn holds_of(&self, request: LegalRequestId) -> StoreResult<Vec<HoldRecord>> {
        self.read(move |c| holds_where(c, "legal_request_id = ?1", [request.as_uuid()]))
            .await?
    }

    async fn extend_hold(&self, id: HoldId, until: Timestamp) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE legal_holds SET expires_at = ?2, extended = 1 \
                     WHERE id = ?1 AND NOT extended AND ended_at IS NULL",
                    params![id.as_uuid(), until.as_millis()],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn end_hold(&self, id: HoldId, at: Timestamp, how: HoldEnd) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE legal_holds SET ended_at = ?2, ended_how = ?3 \
                     WHERE id = ?1 AND ended_at IS NULL",
                    params![id.as_uuid(), at.as_millis(), how.as_str()],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>> {
        let ids: Vec<Uuid> = self
            .writer
            .write(move |c| {
                c.prepare_cached(EXPIRE_HOLDS)
                    .and_then(|mut st| {
                        st.query_map([now.as_millis()], |r| r.get(0))?
                            .collect::<rusqlite::Result<Vec<Uuid>>>()
                    })
                    .map_err(map_err)
            })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.hold(HoldId::from_uuid(id)).await?);
        }
        Ok(out)
    }

    async fn unlogged_releases(&self) -> StoreResult<Vec<AccessNoticeRecord>> {
        let rows = self
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {NOTICE_COLUMNS} {UNLOGGED_RELEASES}"))?
                    .query_map([], notice)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        with_proofs(rows)
    }

    async fn mark_releases_logged(&self, ids: Vec<AccessNoticeId>) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let mut st = c
                    .prepare_cached("UPDATE access_notices SET release_logged = 1 WHERE id = ?1")
                    .map_err(map_err)?;
                for id in &ids {
                    st.execute([id.as_uuid()]).map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn extend_nondisclosure(&self, case: CaseId, until: Timestamp) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                let changed = c
                    .execute(
                        "UPDATE cases SET nondisclosure_until = ?2 WHERE id = ?1",
                        params![case.as_uuid(), until.as_millis()],
                    )
                    .map_err(map_err)?;
                c.execute(
                    "UPDATE access_notices SET deferred_until = ?2 \
                     WHERE case_id = ?1 AND deferred_until IS NOT NULL AND released_at IS NULL",
                    params![case.as_uuid(), until.as_millis()],
                )
                .map_err(map_err)?;
                Ok(changed == 1)
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
            .write(move |c| {
                c.prepare_cached(&format!("{RELEASE_NOTICES} RETURNING {NOTICE_COLUMNS}"))
                    .and_then(|mut st| {
                        st.query_map(params![now.as_millis(), review], notice)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(map_err)
            })
            .await?;
        with_proofs(rows)
    }
}

/// The holds matching `filter` (a condition on `legal_holds` with its parameters),
/// oldest first, with their conversations.
fn holds_where<P: rusqlite::Params>(
    c: &Connection,
    filter: &str,
    params: P,
) -> rusqlite::Result<StoreResult<Vec<HoldRecord>>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE {filter} ORDER BY placed_at, id"
        ))?
        .query_map(params, |r| {
            Ok(HoldRow {
                id: r.get("id")?,
                legal_request_id: r.get("legal_request_id")?,
                account: r.get("account")?,
                period_from: r.get("period_from")?,
                period_to: r.get("period_to")?,
                placed_by: r.get("placed_by")?,
                placed_at: r.get("placed_at")?,
                expires_at: r.get("expires_at")?,
                extended: r.get("extended")?,
                ended_at: r.get("ended_at")?,
                ended_how: r.get("ended_how")?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let conversations = c
            .prepare_cached(
                "SELECT conversation_id FROM legal_hold_conversations WHERE hold_id = ?1 \
                 ORDER BY conversation_id",
            )?
            .query_map([row.id], |r| r.get::<_, Uuid>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(row.into_record(conversations));
    }
    Ok(out.into_iter().collect())
}

/// A legal request row.
fn legal_row(r: &Row<'_>) -> rusqlite::Result<LegalRow> {
    Ok(LegalRow {
        id: r.get("id")?,
        number: r.get("number")?,
        agency_name: r.get("agency_name")?,
        agency_country: r.get("agency_country")?,
        agency_subdivision: r.get("agency_subdivision")?,
        officer_name: r.get("officer_name")?,
        officer_badge: r.get("officer_badge")?,
        officer_email: r.get("officer_email")?,
        officer_domain_verified: r.get("officer_domain_verified")?,
        process: r.get("process")?,
        court: r.get("court")?,
        targets: r.get("targets")?,
        categories: r.get("categories")?,
        period_from: r.get("period_from")?,
        period_to: r.get("period_to")?,
        nd_authority: r.get("nd_authority")?,
        nd_until: r.get("nd_until")?,
        emergency_basis: r.get("emergency_basis")?,
        received_by: r.get("received_by")?,
        received_at: r.get("received_at")?,
        outcome: r.get("outcome")?,
        rejection: r.get("rejection")?,
        narrowing: r.get("narrowing")?,
        accepted: r.get("accepted")?,
        reviewed_by: r.get("reviewed_by")?,
        reviewed_at: r.get("reviewed_at")?,
        received_log_index: r.get("received_log_index")?,
        review_log_index: r.get("review_log_index")?,
        documents: r.get("documents")?,
        follows_up: r.get("follows_up")?,
    })
}

/// An access notice row (its proof still as bytes).
fn notice(row: &Row<'_>) -> rusqlite::Result<(AccessNoticeRecord, Vec<u8>)> {
    let time = |col: &str| {
        row.get::<_, Option<i64>>(col)
            .map(|t| t.map(Timestamp::from_millis))
    };
    Ok((
        AccessNoticeRecord {
            id: AccessNoticeId::from_uuid(row.get("id")?),
            user_id: UserId::from_uuid(row.get("user_id")?),
            conversation_id: ConversationId::from_uuid(row.get("conversation_id")?),
            read_at: Timestamp::from_millis(row.get("read_at")?),
            role: named(row, "role", StaffRole::parse)?,
            reason: named(row, "reason", ReasonCode::parse)?,
            case_id: CaseId::from_uuid(row.get("case_id")?),
            messages: row.get("messages")?,
            span: (
                Timestamp::from_millis(row.get("first_sent_at")?),
                Timestamp::from_millis(row.get("last_sent_at")?),
            ),
            log_index: u64::try_from(row.get::<_, i64>("log_index")?)
                .map_err(|_| corrupt("log_index"))?,
            checkpoint: row.get("checkpoint")?,
            proof: Vec::new(),
            deferred_until: time("deferred_until")?,
            released_at: time("released_at")?,
            deferred_review: row
                .get::<_, Option<Uuid>>("deferred_review")?
                .map(RequestId::from_uuid),
        },
        row.get::<_, Vec<u8>>("proof")?,
    ))
}

/// Notices with their proofs decoded.
fn with_proofs(rows: Vec<(AccessNoticeRecord, Vec<u8>)>) -> StoreResult<Vec<AccessNoticeRecord>> {
    rows.into_iter()
        .map(|(mut n, proof)| {
            n.proof = proof_of(&proof)?;
            Ok(n)
        })
        .collect()
}
