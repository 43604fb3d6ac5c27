//! The extractors every handler shares: a signed-in member, JSON bodies and query
//! parameters whose rejections become problem+json (the status chosen in `problem`).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Query};
use axum::http::header;
use axum::http::request::Parts;
use custodia_service::Principal;

use crate::{ApiError, AppState};

/// Largest JSON request accepted (a 16 KiB body fully escaped, with room to spare).
pub(crate) const MAX_REQUEST_BYTES: usize = 128 * 1024;

/// A JSON body whose rejections are problem+json.
#[derive(FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub(crate) T);

/// Query parameters whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub(crate) struct Params<T>(pub(crate) T);

/// The signed-in caller, from `Authorization: Bearer <token>`.
pub(crate) struct Authed(pub(crate) Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(state.service.authenticate(bearer(parts)).await?))
    }
}

/// The token of `Authorization: Bearer <token>`, or "" (which no session has).
pub(crate) fn bearer(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
}
