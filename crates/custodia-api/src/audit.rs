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
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use custodia_audit::AuditLog;
use custodia_store::LogStore;
use custodia_tlog::{Checkpoint, SignedNote, Tile};

use crate::ApiError;

/// What the auditor routes read.
#[derive(Clone)]
pub struct AuditState {
    /// The log service (signs a fresh checkpoint when the log grew).
    pub log: Arc<AuditLog>,
    /// The log's storage.
    pub store: Arc<dyn LogStore>,
}

/// The auditor router.
pub fn audit_router(state: AuditState) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such resource; see c2sp.org/tlog-tiles",
            )
        })
        .with_state(state)
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

async fn checkpoint(State(s): State<AuditState>) -> Result<Response, ApiError> {
    let note = match s.log.checkpoint().await {
        Ok(note) => note,
        // A newer checkpoint could not be signed or cosigned: serve the last one kept.
        Err(e) => {
            tracing::warn!(error = %e, "serving the last kept checkpoint");
            s.store
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
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such tile in the signed log");
    let tile = Tile::parse_path(&path).ok_or_else(not_found)?;
    let signed = match s.store.last_checkpoint().await.map_err(internal)? {
        Some((_, note)) => signed_size(&note)?,
        None => 0,
    };
    if !tile.available_in(signed) {
        return Err(not_found());
    }
    let width = u64::from(tile.width);
    let body = match tile.level {
        Some(level) => {
            let hashes = s
                .store
                .tile_hashes(level, tile.start(), width)
                .await
                .map_err(internal)?;
            hashes.concat()
        }
        None => {
            let entries = s
                .store
                .log_entries(tile.start(), width)
                .await
                .map_err(internal)?;
            let mut out = Vec::new();
            for e in entries {
                // Appends are limited to u16::MAX bytes, so every entry fits its prefix.
                let len = u16::try_from(e.len())
                    .map_err(|_| internal("entry longer than a bundle allows"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&e);
            }
            out
        }
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(res)
}

fn signed_size(note: &str) -> Result<u64, ApiError> {
    let note = SignedNote::parse(note.as_bytes()).map_err(internal)?;
    Ok(Checkpoint::parse(&note.text).map_err(internal)?.size)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}
