//! The read-only auditor listener: the transparency log in the C2SP tlog-tiles layout.
//!
//! - `GET /checkpoint` — the latest signed checkpoint (`text/plain; charset=utf-8`, not cached).
//! - `GET /tile/<L>/<N>[.p/<W>]` — Merkle tree tiles (`application/octet-stream`, immutable).
//! - `GET /tile/entries/<N>[.p/<W>]` — entry bundles of uint16-length-prefixed entries.
//!
//! Tiles are served up to the size of the last signed checkpoint, never beyond.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use custodia_audit::AuditLog;

use crate::ApiError;

/// What the auditor routes read.
#[derive(Clone)]
pub struct AuditState {
    /// The log service (signs a fresh checkpoint when the log grew; serves tiles).
    pub log: Arc<AuditLog>,
}

/// The auditor router.
pub fn audit_router(state: AuditState) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .fallback(|| async { ApiError::not_found("no such resource; see c2sp.org/tlog-tiles") })
        .with_state(state)
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

async fn checkpoint(State(s): State<AuditState>) -> Result<Response, ApiError> {
    let note = match s.log.checkpoint().await {
        Ok(note) => note,
        // A newer checkpoint could not be signed or cosigned: serve the last one kept.
        Err(e) => {
            tracing::warn!(error = %e, "serving the last kept checkpoint");
            s.log
                .last_checkpoint()
                .await
                .map_err(internal)?
                .map(|(_, note)| note)
                .ok_or_else(|| internal(e))?
        }
    };
    let mut res = note.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

async fn tile(State(s): State<AuditState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let body = s
        .log
        .tile(&path)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found("no such tile in the signed log"))?;
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(res)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}
