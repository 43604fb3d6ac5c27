//! What every response carries, and refusing a body before it is sent.
//!
//! - Every response: `Strict-Transport-Security` (the listeners speak only TLS),
//!   `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` unless the handler
//!   chose a cache policy (immutable log tiles do) — so sign-in answers, histories and
//!   every other authenticated answer are never kept by a cache.
//! - [`declared_limit`]: a request whose `Content-Length` is over the limit is answered
//!   413 at once, before the body is read — hence before `100 Continue` is sent.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// Two years, as HSTS preload lists ask.
const HSTS: &str = "max-age=63072000";

/// `router` with the headers every response carries.
pub(crate) fn harden(router: Router) -> Router {
    router.layer(from_fn(headers))
}

async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A layer that answers 413 to a request declaring a body longer than `limit` bytes.
pub(crate) fn declared_limit<S>(router: Router<S>, limit: u64) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(from_fn_with_state(limit, refuse_declared_over))
}

/// The declared body length, if any and well-formed.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The 413 answer for a body over `limit` bytes.
pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(format!(
        "the request body is too large: at most {limit} bytes"
    ))
}

async fn refuse_declared_over(State(limit): State<u64>, req: Request, next: Next) -> Response {
    match declared_length(req.headers()) {
        Some(n) if n > limit => too_large(limit).into_response(),
        _ => next.run(req).await,
    }
}
