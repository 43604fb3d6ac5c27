//! The witness listener (c2sp.org/tlog-witness), one prefix for submission and monitoring:
//!
//! - `POST /add-checkpoint`: 200 with the cosignature line; 400 for a malformed request
//!   or an old size above the checkpoint's; 403 when the log's signature does not verify;
//!   404 for a log this witness does not witness; 409 with the cosigned size
//!   (`text/x.tlog.size`) when the old size is not the one it cosigned; 422 when the
//!   checkpoint cannot extend the cosigned one (see `custodia_witness`). Any other method
//!   on it: 405.
//! - `GET /<origin hash>/checkpoint` (SHA-256 of the origin, lowercase hex): the latest
//!   checkpoint cosigned for that log, with the log's signature and the cosignature; 404
//!   if this witness never cosigned one for it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use custodia_witness::{Witness, WitnessError};

use crate::ApiError;

/// Largest `add-checkpoint` body: a size line, at most 63 proof lines and a checkpoint
/// note, with room to spare. Larger is refused before it is read.
const MAX_REQUEST_BYTES: usize = 128 * 1024;

/// The witness router.
pub fn witness_router(witness: Arc<Witness>) -> Router {
    let router = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(latest_checkpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES));
    crate::edge::declared_limit(router, MAX_REQUEST_BYTES as u64)
        .fallback(|| async {
            ApiError::not_found(
                "no such resource; a witness serves POST /add-checkpoint (c2sp.org/tlog-witness)",
            )
        })
        .with_state(witness)
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    match w.add_checkpoint(&body).await {
        Ok(sig) => text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            format!("{sig}\n"),
        ),
        // The spec's own answer to a stale old size: the witness's size as text, with
        // the status ApiError gives a conflict.
        Err(WitnessError::Conflict(size)) => text(
            ApiError::from(WitnessError::Conflict(size)).status(),
            "text/x.tlog.size",
            format!("{size}\n"),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn latest_checkpoint(
    State(w): State<Arc<Witness>>,
    Path(origin_hash): Path<String>,
) -> Result<Response, ApiError> {
    let note = w.checkpoint_of(&origin_hash).await.ok_or_else(|| {
        ApiError::not_found(
            "this witness has cosigned no checkpoint of a log with that origin hash",
        )
    })?;
    Ok(text(StatusCode::OK, "text/plain; charset=utf-8", note))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
