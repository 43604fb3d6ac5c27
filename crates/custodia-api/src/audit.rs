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
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use custodia_audit::AuditLog;
use custodia_store::StoreError;

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

async fn tile(
    State(s): State<AuditState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let body = match s.log.tile(&path).await {
        Ok(Some(body)) => body,
        Ok(None) => return Err(ApiError::not_found("no such tile in the signed log")),
        Err(custodia_audit::AuditError::Store(StoreError::Corrupt(what))) => {
            return Err(ApiError::damaged(what));
        }
        Err(e) => return Err(internal(e)),
    };
    // Entry bundles compress well (c2sp.org/tlog-tiles: "SHOULD be compressed at the
    // HTTP layer"); hash tiles do not, so they go as they are.
    let gzip = path.starts_with("entries/") && accepts_gzip(&headers);
    let body = if gzip {
        gzipped(&body).map_err(internal)?
    } else {
        body
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if path.starts_with("entries/") {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(res)
}

/// Whether an `Accept-Encoding` header admits gzip (listed, or `*`, with a q-value that is
/// not zero; RFC 9110 §12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(q > 0.0),
                "*" => any = Some(q > 0.0),
                _ => {}
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

fn gzipped(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    out.write_all(body)?;
    out.finish()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}
