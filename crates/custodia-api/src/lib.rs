//! The HTTP and WebSocket layer: the only crate that knows JSON and status codes.
//!
//! Layout:
//! - `problem` — [`ApiError`], the one place service outcomes become status codes and
//!   RFC 9457 problem+json bodies.
//! - `routes` — the HTTPS endpoints.
//! - `extract` — the shared extractors (signed-in member, JSON bodies, query parameters).
//! - `ws` — the WebSocket session (reader and writer joined by `select!`).
//! - `audit` — the read-only auditor listener (C2SP tlog-tiles).
//! - `witness` — the witness listener (C2SP tlog-witness).
//! - `staff` — the staff API on its own listener.
//! - `convert` — domain values to wire types.
//! - `tls` — the TLS 1.3-only listeners, their limits and the HTTP/1.1 connection loop.
//! - `edge` — headers every response carries, and refusing oversized bodies up front.
//! - `metrics` — Prometheus metrics.

mod audit;
mod convert;
mod edge;
mod export;
mod extract;
mod metrics;
mod problem;
mod routes;
mod staff;
mod tls;
mod witness;
mod ws;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use custodia_service::Service;
use tokio_util::sync::CancellationToken;

pub use audit::{AuditState, audit_router};
pub use metrics::Metrics;
pub use problem::ApiError;
pub use staff::staff_router;
pub use tls::{EdgeLimits, PeerAddr, ServerCert, TlsListener, serve_router, tls13_server_config};
pub use witness::witness_router;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Service,
    /// Governed access (reports open cases).
    pub governance: custodia_governance::Governance,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's bearer token for `/metrics` (metrics tell who is active when).
    pub metrics_token: Arc<zeroize::Zeroizing<String>>,
    /// Cancelled when the server shuts down; live sessions close.
    pub shutdown: CancellationToken,
    /// The live WebSocket sessions, so shutdown waits for their goodbyes (within the
    /// listener's `shutdown_grace`).
    pub sessions: tokio_util::task::TaskTracker,
}

/// The client API router.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves the auditor router on `listener` until `shutdown` is cancelled.
pub async fn serve_audit(
    listener: TlsListener,
    state: AuditState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, edge::harden(audit_router(state)), shutdown, None).await
}

/// Serves the staff API on `listener` until `shutdown` is cancelled.
pub async fn serve_staff(
    listener: TlsListener,
    governance: custodia_governance::Governance,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(
        listener,
        edge::harden(staff_router(governance)),
        shutdown,
        None,
    )
    .await
}

/// Serves a witness on `listener` until `shutdown` is cancelled.
pub async fn serve_witness(
    listener: TlsListener,
    witness: Arc<custodia_witness::Witness>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(
        listener,
        edge::harden(witness_router(witness)),
        shutdown,
        None,
    )
    .await
}

/// Serves the client API on `listener` until `state.shutdown` is cancelled, then lets
/// in-flight requests finish and every live session say goodbye (close 1001, after its
/// sends in flight are acknowledged or refused), within the listener's shutdown grace.
pub async fn serve(listener: TlsListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let sessions = state.sessions.clone();
    serve_router(
        listener,
        edge::harden(router(state)),
        shutdown,
        Some(sessions),
    )
    .await
}
