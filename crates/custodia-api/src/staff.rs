//! The staff API, on its own TLS listener (see `custodia_proto::staff`).

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use std::time::Duration;

use custodia_core::{
    CaseId, DataTier, Password, ReasonCode, RequestId, StaffChangeId, StaffChangeStatus, StaffId,
    StaffRole, Timestamp, Username,
};
use custodia_governance::{
    CaseView, Governance, GovernanceError, NewRequest, RequestView, StaffChangeView,
    StaffPrincipal, StaffView,
};
use custodia_proto::staff as wire;

use crate::extract::{Body, bearer};
use crate::{ApiError, PeerAddr, convert};

/// Largest staff request body.
const MAX_STAFF_REQUEST_BYTES: usize = 16 * 1024;
/// Largest legal request intake: the served documents (20 MiB together) in base64, and
/// the rest.
const MAX_INTAKE_BYTES: usize = custodia_governance::MAX_DOCUMENT_BYTES / 3 * 4 + 64 * 1024;

/// The staff router.
pub fn staff_router(governance: Governance) -> Router {
    let router = Router::new()
        .route("/v1/staff/sessions", post(sign_in))
        .route("/v1/staff/sessions/current", delete(sign_out))
        .route("/v1/staff/me", get(me))
        .route("/v1/staff/me/password", post(change_password))
        .route("/v1/staff/me/totp", post(reenrol_totp))
        .route("/v1/staff/enrolments", post(enrol))
        .route("/v1/staff/accounts", get(list).post(create))
        .route("/v1/staff/accounts/{id}", patch(update))
        .route("/v1/staff/changes", get(changes))
        .route("/v1/staff/changes/{id}", get(change))
        .route("/v1/staff/changes/{id}/decisions", post(decide_change))
        .route("/v1/staff/cases", get(cases))
        .route("/v1/staff/cases/{id}", get(case))
        .route("/v1/staff/cases/{id}/requests", get(case_requests))
        .route(
            "/v1/staff/cases/{id}/nondisclosure",
            post(extend_nondisclosure),
        )
        .route(
            "/v1/staff/cases/{id}/nondisclosure/lift",
            post(lift_nondisclosure),
        )
        .route("/v1/staff/requests", post(request_access))
        .route("/v1/staff/requests/{id}", get(request))
        .route("/v1/staff/requests/{id}/decisions", post(decide))
        .route("/v1/staff/requests/{id}/revoke", post(revoke))
        .route("/v1/staff/requests/{id}/complete", post(complete))
        .route("/v1/staff/requests/{id}/messages", get(read))
        .route("/v1/staff/requests/{id}/files/{file}", get(read_evidence))
        .route("/v1/staff/audit/records/{index}", get(audit_record))
        .route("/v1/staff/transparency-report", get(transparency_report))
        .route("/v1/staff/legal-requests/{id}", get(legal_request))
        .route(
            "/v1/staff/legal-requests/{id}/documents/{n}",
            get(served_document),
        )
        .route("/v1/staff/legal-requests/{id}/package", post(build_package))
        .route(
            "/v1/staff/legal-requests/{id}/review",
            post(review_legal_request),
        )
        .route(
            "/v1/staff/legal-requests/{id}/holds",
            get(holds).post(place_holds),
        )
        .route("/v1/staff/legal-requests/{id}/produce", post(produce))
        .route("/v1/staff/holds/{id}/extend", post(extend_hold))
        .route("/v1/staff/holds/{id}/release", post(release_hold))
        .fallback(|| async {
            ApiError::not_found("no such staff endpoint; see custodia_proto::staff")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this endpoint does not accept that method")
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            MAX_STAFF_REQUEST_BYTES,
        ));
    // The intake carries the served documents: its own, larger limit.
    let intake = Router::new().route(
        "/v1/staff/legal-requests",
        get(legal_requests).post(receive_legal_request),
    );
    let intake = crate::edge::declared_limit(intake, MAX_INTAKE_BYTES as u64)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_INTAKE_BYTES));
    crate::edge::declared_limit(router, MAX_STAFF_REQUEST_BYTES as u64)
        .merge(intake)
        .with_state(governance)
}

/// The signed-in staff member, from `Authorization: Bearer <staff token>`.
pub(crate) struct Staff(pub(crate) StaffPrincipal);

impl FromRequestParts<Governance> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gov: &Governance,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(gov.authenticate(bearer(parts)).await?))
    }
}

fn member(v: &StaffView) -> wire::StaffMember {
    wire::StaffMember {
        id: *v.id.as_uuid(),
        username: v.username.to_string(),
        role: v.role.as_str().into(),
        active: v.active,
        enrolled: v.enrolled,
    }
}

fn change_wire(c: &StaffChangeView) -> wire::StaffChange {
    let r = &c.record;
    wire::StaffChange {
        id: *r.id.as_uuid(),
        kind: r.kind.as_str().into(),
        staff_id: *r.staff_id.as_uuid(),
        username: r.username.to_string(),
        role: r.role.as_str().into(),
        active: r.active,
        proposed_by: *r.proposed_by.as_uuid(),
        proposed_at_ms: r.proposed_at.as_millis(),
        status: c.status.as_str().into(),
        decided_by: r.decided_by.map(|d| *d.as_uuid()),
    }
}

/// `202 Accepted` while a change waits for its second person, `200` once applied.
fn change_status(c: &StaffChangeView) -> StatusCode {
    if c.status == StaffChangeStatus::Pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

async fn sign_in(
    State(gov): State<Governance>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Body(req): Body<wire::StaffSignIn>,
) -> Result<(StatusCode, Json<wire::StaffSession>), ApiError> {
    // A malformed password cannot be right; answer as for a wrong one.
    let password =
        Password::parse(req.password).map_err(|_| GovernanceError::BadStaffCredentials)?;
    let s = gov
        .sign_in(&req.username, password, &req.code, peer.ip())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::StaffSession {
            token: s.token.to_string(),
            expires_at_ms: s.expires_at.as_millis(),
            staff: signed_in(&s.staff),
        }),
    ))
}

async fn sign_out(
    State(gov): State<Governance>,
    Staff(who): Staff,
) -> Result<StatusCode, ApiError> {
    gov.sign_out(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(Staff(who): Staff) -> Json<wire::StaffMember> {
    Json(signed_in(&who))
}

/// A signed-in member (active and enrolled, or they could not have signed in).
fn signed_in(who: &StaffPrincipal) -> wire::StaffMember {
    wire::StaffMember {
        id: *who.staff_id.as_uuid(),
        username: who.username.to_string(),
        role: who.role.as_str().into(),
        active: true,
        enrolled: true,
    }
}

async fn list(
    State(gov): State<Governance>,
    Staff(who): Staff,
) -> Result<Json<Vec<wire::StaffMember>>, ApiError> {
    Ok(Json(
        gov.list_staff(&who).await?.iter().map(member).collect(),
    ))
}

async fn create(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Body(req): Body<wire::CreateStaff>,
) -> Result<(StatusCode, Json<wire::StaffChange>), ApiError> {
    let username = Username::parse(&req.username)?;
    let role = StaffRole::parse(&req.role)?;
    let change = gov.propose_staff(&who, username, role).await?;
    Ok((change_status(&change), Json(change_wire(&change))))
}

async fn update(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
    Body(req): Body<wire::UpdateStaff>,
) -> Result<(StatusCode, Json<wire::StaffChange>), ApiError> {
    let id: StaffId = id.parse()?;
    let role = StaffRole::parse(&req.role)?;
    let change = gov.change_staff(&who, id, role, req.active).await?;
    Ok((change_status(&change), Json(change_wire(&change))))
}

async fn changes(
    State(gov): State<Governance>,
    Staff(who): Staff,
) -> Result<Json<Vec<wire::StaffChange>>, ApiError> {
    Ok(Json(
        gov.staff_changes(&who)
            .await?
            .iter()
            .map(change_wire)
            .collect(),
    ))
}

async fn change(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<Json<wire::StaffChange>, ApiError> {
    let id: StaffChangeId = id.parse()?;
    Ok(Json(change_wire(&gov.staff_change(&who, id).await?)))
}

async fn decide_change(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
    Body(req): Body<wire::DecideStaffChange>,
) -> Result<Json<wire::StaffChangeDecided>, ApiError> {
    let id: StaffChangeId = id.parse()?;
    let (change, new) = gov.decide_staff_change(&who, id, req.approve).await?;
    Ok(Json(wire::StaffChangeDecided {
        change: change_wire(&change),
        enrolment_expires_at_ms: new.as_ref().map(|n| n.expires_at.as_millis()),
        enrolment_code: new.map(|n| n.enrolment_code.to_string()),
    }))
}

async fn enrol(
    State(gov): State<Governance>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Body(req): Body<wire::Enrol>,
) -> Result<(StatusCode, Json<wire::Enrolled>), ApiError> {
    let password = Password::parse(req.password)?;
    let enrolled = gov
        .enrol(&req.username, &req.code, password, peer.ip())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::Enrolled {
            staff: member(&enrolled.staff),
            totp_uri: enrolled.totp_uri.to_string(),
        }),
    ))
}

async fn change_password(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Body(req): Body<wire::ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let current =
        Password::parse(req.current_password).map_err(|_| GovernanceError::BadStaffCredentials)?;
    let new = Password::parse(req.new_password)?;
    gov.change_password(&who, current, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reenrol_totp(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Body(req): Body<wire::ReenrolTotp>,
) -> Result<Json<wire::Enrolled>, ApiError> {
    let password =
        Password::parse(req.password).map_err(|_| GovernanceError::BadStaffCredentials)?;
    let uri = gov.reenrol_totp(&who, password).await?;
    Ok(Json(wire::Enrolled {
        staff: signed_in(&who),
        totp_uri: uri.to_string(),
    }))
}

fn case_wire(c: &CaseView) -> wire::Case {
    wire::Case {
        id: *c.id.as_uuid(),
        kind: c.kind.as_str().into(),
        conversation_id: *c.conversation_id.as_uuid(),
        reporter: c.reporter.map(|u| *u.as_uuid()),
        category: c.category.map(|k| k.as_str().into()),
        comment: c.comment.clone(),
        reported: c.reported.clone(),
        evidence: c
            .evidence
            .iter()
            .map(|e| wire::Evidence {
                seq: e.seq,
                sender_id: *e.sender.as_uuid(),
                sender_username: e.sender_username.clone(),
                sent_at_ms: e.sent_at.as_millis(),
                body: e.text.clone(),
                verified: e.verified,
            })
            .collect(),
        from_seq: c.scope.0,
        to_seq: c.scope.1,
        reference: c.reference.clone(),
        opened_at_ms: c.opened_at.as_millis(),
        nondisclosure_until_ms: c.nondisclosure_until.map(|t| t.as_millis()),
        priority: c.priority.as_str().into(),
        files: c.files.iter().map(|f| *f.as_uuid()).collect(),
    }
}

fn request_wire(v: &RequestView) -> wire::AccessRequest {
    let r = &v.record;
    wire::AccessRequest {
        id: *r.id.as_uuid(),
        case_id: *r.case_id.as_uuid(),
        requester: *r.requester.as_uuid(),
        reason: r.reason.as_str().into(),
        conversation_id: *r.conversation_id.as_uuid(),
        from_seq: r.seqs.0,
        to_seq: r.seqs.1,
        tier: r.tier.as_str().into(),
        status: v.status.as_str().into(),
        broad: r.broad,
        required: r.required,
        approvers: r.approvers.iter().map(|a| *a.as_uuid()).collect(),
        decisions: r
            .decisions
            .iter()
            .map(|d| wire::Decision {
                staff_id: *d.staff_id.as_uuid(),
                role: d.role.as_str().into(),
                approve: d.approve,
                justification: d.justification.clone(),
                at_ms: d.at.as_millis(),
                log_index: d.log_index,
            })
            .collect(),
        pending_until_ms: r.pending_until.as_millis(),
        granted_from_ms: r.granted.map(|g| g.0.as_millis()),
        granted_until_ms: r.granted.map(|g| g.1.as_millis()),
        second_review_overdue: v.second_review_overdue,
        digest: v.digest.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn id<T: std::str::FromStr<Err = custodia_core::ValidationError>>(
    raw: &str,
) -> Result<T, ApiError> {
    raw.parse().map_err(ApiError::from)
}

async fn cases(
    State(gov): State<Governance>,
    Staff(who): Staff,
) -> Result<Json<Vec<wire::Case>>, ApiError> {
    Ok(Json(gov.cases(&who).await?.iter().map(case_wire).collect()))
}

async fn case(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::Case>, ApiError> {
    let id: CaseId = id(&raw)?;
    Ok(Json(case_wire(&gov.case(&who, id).await?)))
}

async fn case_requests(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<Vec<wire::AccessRequest>>, ApiError> {
    let id: CaseId = id(&raw)?;
    let all = gov.requests_of_case(&who, id).await?;
    Ok(Json(all.iter().map(request_wire).collect()))
}

async fn extend_nondisclosure(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
    Body(req): Body<wire::ExtendNondisclosure>,
) -> Result<Json<wire::Case>, ApiError> {
    let id: CaseId = id.parse()?;
    let case = gov
        .extend_nondisclosure(
            &who,
            id,
            Timestamp::from_millis(req.until_ms),
            &req.document_sha256,
        )
        .await?;
    Ok(Json(case_wire(&case)))
}

async fn lift_nondisclosure(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
    Body(req): Body<wire::LiftNondisclosure>,
) -> Result<Json<wire::Case>, ApiError> {
    let id: CaseId = id.parse()?;
    let case = gov
        .lift_nondisclosure(&who, id, &req.document_sha256)
        .await?;
    Ok(Json(case_wire(&case)))
}

async fn request_access(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Body(req): Body<wire::CreateAccessRequest>,
) -> Result<(StatusCode, Json<wire::AccessRequest>), ApiError> {
    let new = NewRequest {
        case_id: CaseId::from_uuid(req.case_id),
        reason: ReasonCode::parse(&req.reason)?,
        seqs: (req.from_seq, req.to_seq),
        tier: DataTier::parse(&req.tier)?,
        duration: Duration::from_secs(req.duration_secs),
        justification: req.justification,
    };
    let view = gov.request_access(&who, new).await?;
    Ok((StatusCode::CREATED, Json(request_wire(&view))))
}

async fn request(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::AccessRequest>, ApiError> {
    let id: RequestId = id(&raw)?;
    Ok(Json(request_wire(&gov.request(&who, id).await?)))
}

async fn decide(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
    Body(req): Body<wire::DecideRequest>,
) -> Result<Json<wire::AccessRequest>, ApiError> {
    let id: RequestId = id(&raw)?;
    let view = gov.decide(&who, id, req.approve, req.justification).await?;
    Ok(Json(request_wire(&view)))
}

async fn revoke(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::AccessRequest>, ApiError> {
    let id: RequestId = id(&raw)?;
    Ok(Json(request_wire(&gov.close_grant(&who, id, true).await?)))
}

async fn complete(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::AccessRequest>, ApiError> {
    let id: RequestId = id(&raw)?;
    Ok(Json(request_wire(&gov.close_grant(&who, id, false).await?)))
}

async fn read(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::GrantRead>, ApiError> {
    use base64::Engine;
    let id: RequestId = id(&raw)?;
    let read = gov.read_grant(&who, id).await?;
    let r = &read.receipt;
    Ok(Json(wire::GrantRead {
        messages: read.messages.iter().map(convert::message).collect(),
        receipt: wire::Receipt {
            index: r.index,
            leaf_hash: r.leaf_hash.iter().map(|b| format!("{b:02x}")).collect(),
            proof: r
                .proof
                .iter()
                .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
                .collect(),
            checkpoint: r.checkpoint.clone(),
        },
        usernames: read
            .usernames
            .iter()
            .map(|(id, name)| (*id.as_uuid(), name.clone()))
            .collect(),
    }))
}

async fn read_evidence(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path((raw, file)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id: RequestId = id(&raw)?;
    let file = file
        .parse()
        .map_err(|_| ApiError::not_found("no such preserved file"))?;
    let (content_type, bytes) = gov.read_evidence(&who, id, file).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, content_type)],
        bytes.to_vec(),
    )
        .into_response())
}

fn legal_request_id(raw: &str) -> Result<custodia_core::LegalRequestId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such legal request"))
}

fn legal_wire(v: &custodia_governance::LegalRequestView) -> wire::LegalRequest {
    use custodia_core::Day;
    let r = &v.record;
    let names = |c: &[custodia_core::DataCategory]| c.iter().map(|c| c.as_str().into()).collect();
    wire::LegalRequest {
        id: *r.id.as_uuid(),
        reference: v.reference.clone(),
        agency: wire::AgencyInfo {
            name: r.agency.name.clone(),
            country: r.agency.country.as_str().into(),
            subdivision: r.agency.subdivision.clone(),
        },
        officer: wire::OfficerInfo {
            name: r.officer.name.clone(),
            badge: r.officer.badge.clone(),
            email: r.officer.email.clone(),
        },
        officer_domain_verified: r.officer.domain_verified,
        process: r.process.as_str().into(),
        court: r.court.clone(),
        targets: r
            .targets
            .iter()
            .map(|t| wire::LegalTargetInfo {
                given: t.given.clone(),
                account: t.account.map(|a| *a.as_uuid()),
            })
            .collect(),
        categories: names(&r.categories),
        from: Day::of(r.period.0).to_string(),
        to: Day::of(r.period.1).to_string(),
        nondisclosure: r.nondisclosure.as_ref().map(|n| wire::NondisclosureInfo {
            authority: n.authority.clone(),
            until: n.until.map(|t| Day::of(t).to_string()),
        }),
        emergency_basis: r.emergency_basis.clone(),
        received_by: *r.received_by.as_uuid(),
        received_at_ms: r.received_at.as_millis(),
        review: r.review.as_ref().map(|x| wire::LegalReviewInfo {
            outcome: x.outcome.as_str().into(),
            reason: x.reason.map(|r| r.as_str().into()),
            narrowing: x.narrowing.clone(),
            accepted: names(&x.accepted),
            by: *x.by.as_uuid(),
            at_ms: x.at.as_millis(),
        }),
        documents: r
            .documents
            .iter()
            .map(|d| wire::DocumentInfo {
                name: d.name.clone(),
                media_type: d.media_type.clone(),
                sha256: d.sha256.iter().map(|b| format!("{b:02x}")).collect(),
                size: d.size,
            })
            .collect(),
        follows_up: v.follows_up.clone(),
        followed_up_by: v.followed_up_by.clone(),
        follow_up_missing: r.process == custodia_core::LegalProcessType::EmergencyRequest
            && v.followed_up_by.is_empty(),
    }
}

fn categories(raw: &[String]) -> Result<Vec<custodia_core::DataCategory>, ApiError> {
    raw.iter()
        .map(|c| custodia_core::DataCategory::parse(c.trim()).map_err(ApiError::from))
        .collect()
}

async fn receive_legal_request(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Body(req): Body<wire::NewLegalRequest>,
) -> Result<(StatusCode, Json<wire::LegalRequest>), ApiError> {
    use custodia_core::{Country, Day, LegalProcessType};
    let from = Day::parse(&req.from, "from")?;
    let to = Day::parse(&req.to, "to")?;
    let nondisclosure = match req.nondisclosure {
        None => None,
        Some(n) => Some(custodia_store::NondisclosureOrder {
            authority: n.authority,
            until: n
                .until
                .as_deref()
                .map(|d| Day::parse(d, "nondisclosure.until").map(|d| d.end()))
                .transpose()?,
        }),
    };
    let new = custodia_governance::NewLegalRequest {
        agency_name: req.agency.name,
        agency_country: Country::parse(&req.agency.country)?,
        agency_subdivision: req.agency.subdivision,
        officer_name: req.officer.name,
        officer_badge: req.officer.badge,
        officer_email: req.officer.email,
        process: LegalProcessType::parse(req.process.trim())?,
        court: req.court,
        targets: req.targets,
        categories: categories(&req.categories)?,
        period: (from.start(), to.end()),
        nondisclosure,
        emergency_basis: req.emergency_basis,
        documents: req
            .documents
            .into_iter()
            .enumerate()
            .map(|(n, d)| {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(d.content_base64.trim())
                    .map_err(|_| {
                        ApiError::unprocessable(format!(
                            "documents[{n}].content_base64 is not base64 (standard alphabet, padded)"
                        ))
                    })?;
                Ok(custodia_governance::NewDocument {
                    name: d.name,
                    media_type: d.media_type,
                    bytes,
                })
            })
            .collect::<Result<_, ApiError>>()?,
        follows_up: req.follows_up,
    };
    let view = gov.receive_legal_request(&who, new).await?;
    Ok((StatusCode::CREATED, Json(legal_wire(&view))))
}

async fn served_document(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path((raw, n)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let position: u32 = n
        .parse()
        .map_err(|_| ApiError::not_found("no such served document"))?;
    let (described, bytes) = gov
        .served_document(&who, legal_request_id(&raw)?, position)
        .await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        described
            .name
            .chars()
            .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            })
            .collect::<String>()
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, described.media_type),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes.to_vec(),
    )
        .into_response())
}

async fn build_package(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
    Body(req): Body<wire::BuildPackage>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let package = gov
        .build_package(&who, legal_request_id(&raw)?, &req.recipient)
        .await?;
    Ok((
        StatusCode::CREATED,
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.tar.age\"", package.reference),
            ),
        ],
        package.bytes,
    )
        .into_response())
}

async fn legal_requests(
    State(gov): State<Governance>,
    Staff(who): Staff,
) -> Result<Json<Vec<wire::LegalRequest>>, ApiError> {
    let all = gov.legal_requests(&who).await?;
    Ok(Json(all.iter().map(legal_wire).collect()))
}

async fn legal_request(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::LegalRequest>, ApiError> {
    let view = gov.legal_request(&who, legal_request_id(&raw)?).await?;
    Ok(Json(legal_wire(&view)))
}

async fn review_legal_request(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
    Body(req): Body<wire::ReviewLegalRequest>,
) -> Result<Json<wire::LegalRequest>, ApiError> {
    let decision = custodia_governance::LegalDecision {
        outcome: custodia_core::LegalOutcome::parse(req.outcome.trim())?,
        reason: req
            .reason
            .as_deref()
            .map(|r| custodia_core::RejectionReason::parse(r.trim()))
            .transpose()?,
        narrowing: req.narrowing,
        accepted: categories(&req.accepted)?,
    };
    let view = gov
        .review_legal_request(&who, legal_request_id(&raw)?, decision)
        .await?;
    Ok(Json(legal_wire(&view)))
}

async fn produce(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<Vec<wire::AccessRequest>>), ApiError> {
    let made = gov.produce(&who, legal_request_id(&raw)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(made.iter().map(request_wire).collect()),
    ))
}

fn hold_wire(h: &custodia_store::HoldRecord) -> wire::Hold {
    use custodia_core::Day;
    wire::Hold {
        id: *h.id.as_uuid(),
        legal_request_id: *h.legal_request.as_uuid(),
        account: *h.account.as_uuid(),
        conversations: h.conversations.iter().map(|c| *c.as_uuid()).collect(),
        from: Day::of(h.period.0).to_string(),
        to: Day::of(h.period.1).to_string(),
        placed_at_ms: h.placed_at.as_millis(),
        expires_at_ms: h.expires_at.as_millis(),
        extended: h.extended,
        ended: h.ended.map(|(_, how)| how.as_str().into()),
        ended_at_ms: h.ended.map(|(at, _)| at.as_millis()),
    }
}

fn hold_id(raw: &str) -> Result<custodia_core::HoldId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("no such hold"))
}

async fn place_holds(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<Vec<wire::Hold>>), ApiError> {
    let placed = gov.place_holds(&who, legal_request_id(&raw)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(placed.iter().map(hold_wire).collect()),
    ))
}

async fn holds(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<Vec<wire::Hold>>, ApiError> {
    let all = gov.holds(&who, legal_request_id(&raw)?).await?;
    Ok(Json(all.iter().map(hold_wire).collect()))
}

async fn extend_hold(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::Hold>, ApiError> {
    Ok(Json(hold_wire(
        &gov.extend_hold(&who, hold_id(&raw)?).await?,
    )))
}

async fn release_hold(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::Hold>, ApiError> {
    Ok(Json(hold_wire(
        &gov.release_hold(&who, hold_id(&raw)?).await?,
    )))
}

/// `GET /v1/staff/transparency-report?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=html]`.
#[derive(serde::Deserialize)]
struct ReportQuery {
    from: String,
    to: String,
    #[serde(default)]
    format: Option<String>,
}

/// The transparency report at the last kept checkpoint: JSON, or the HTML page; the same
/// bytes `custodia log report` computes from the public tiles of that checkpoint.
async fn transparency_report(
    State(gov): State<Governance>,
    Staff(who): Staff,
    crate::extract::Params(q): crate::extract::Params<ReportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let period = custodia_transparency::Period::parse(&q.from, &q.to)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => return Err(ApiError::unprocessable("format is json or html")),
    };
    let report = gov.transparency_report(&who, period).await?;
    Ok(if html {
        (
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            custodia_transparency::report_html(&report),
        )
            .into_response()
    } else {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            report.to_json(),
        )
            .into_response()
    })
}

async fn audit_record(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(raw): Path<String>,
) -> Result<Json<wire::AuditRecord>, ApiError> {
    let index: u64 = raw
        .parse()
        .map_err(|_| ApiError::unprocessable("the entry index is a non-negative integer"))?;
    let r = gov.audit_record(&who, index).await?;
    Ok(Json(wire::AuditRecord {
        index,
        kind: r.kind.as_str().into(),
        time_ms: r.time.as_millis(),
        actor_staff_id: r.actor.as_ref().map(|a| a.staff_id.clone()),
        actor_role: r.actor.as_ref().map(|a| a.role.clone()),
        reason: r.reason,
        case: r.case,
        subjects: r
            .subjects
            .iter()
            .filter_map(|s| match s {
                custodia_audit::Subject::User(u) => Some(wire::AuditSubject {
                    kind: "user".into(),
                    id: *u.as_uuid(),
                }),
                custodia_audit::Subject::Conversation(c) => Some(wire::AuditSubject {
                    kind: "conversation".into(),
                    id: *c.as_uuid(),
                }),
                custodia_audit::Subject::Withheld(u) => Some(wire::AuditSubject {
                    kind: "withheld_user".into(),
                    id: *u.as_uuid(),
                }),
                _ => None,
            })
            .collect(),
        scope: r.scope,
    }))
}
