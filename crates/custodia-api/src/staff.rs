//! The staff API, on its own TLS listener (see `custodia_proto::staff`).

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use custodia_core::{Password, StaffId, StaffRole, Username};
use custodia_governance::{Governance, StaffPrincipal, StaffView};
use custodia_proto::staff as wire;
use custodia_service::ServiceError;

use crate::routes::Body;
use crate::{ApiError, PeerAddr};

/// The staff router.
pub fn staff_router(governance: Governance) -> Router {
    Router::new()
        .route("/v1/staff/sessions", post(sign_in))
        .route("/v1/staff/sessions/current", delete(sign_out))
        .route("/v1/staff/me", get(me))
        .route("/v1/staff/accounts", get(list).post(create))
        .route("/v1/staff/accounts/{id}", patch(update))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such staff endpoint; see custodia_proto::staff",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not accept that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
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
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        Ok(Self(gov.authenticate(token.trim()).await?))
    }
}

fn member(v: &StaffView) -> wire::StaffMember {
    wire::StaffMember {
        id: *v.id.as_uuid(),
        username: v.username.to_string(),
        role: v.role.as_str().into(),
        active: v.active,
    }
}

async fn sign_in(
    State(gov): State<Governance>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Body(req): Body<wire::StaffSignIn>,
) -> Result<(StatusCode, Json<wire::StaffSession>), ApiError> {
    // A malformed password cannot be right; answer as for a wrong one.
    let password = Password::parse(req.password).map_err(|_| ServiceError::BadStaffCredentials)?;
    let s = gov
        .sign_in(&req.username, password, &req.code, peer.ip())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::StaffSession {
            token: s.token.to_string(),
            expires_at_ms: s.expires_at.as_millis(),
            staff: wire::StaffMember {
                id: *s.staff.staff_id.as_uuid(),
                username: s.staff.username.to_string(),
                role: s.staff.role.as_str().into(),
                active: true,
            },
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
    Json(wire::StaffMember {
        id: *who.staff_id.as_uuid(),
        username: who.username.to_string(),
        role: who.role.as_str().into(),
        active: true,
    })
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
) -> Result<(StatusCode, Json<wire::CreatedStaff>), ApiError> {
    let username = Username::parse(&req.username)?;
    let role = StaffRole::parse(&req.role)?;
    let new = gov.create_staff(&who, username, role).await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::CreatedStaff {
            staff: member(&new.staff),
            password: new.password.to_string(),
            totp_uri: new.totp_uri.to_string(),
        }),
    ))
}

async fn update(
    State(gov): State<Governance>,
    Staff(who): Staff,
    Path(id): Path<String>,
    Body(req): Body<wire::UpdateStaff>,
) -> Result<Json<wire::StaffMember>, ApiError> {
    let id: StaffId = id.parse()?;
    let role = StaffRole::parse(&req.role)?;
    Ok(Json(member(
        &gov.update_staff(&who, id, role, req.active).await?,
    )))
}
