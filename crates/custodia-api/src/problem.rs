//! [`ApiError`]: service outcomes and request rejections as RFC 9457 problem+json.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custodia_core::ValidationError;
use custodia_proto::Problem;
use custodia_service::ServiceError;
use uuid::Uuid;

/// Repeated failures (a full disk answers every send the same way) are logged once per
/// interval with a count, not once per request.
static THROTTLE: std::sync::LazyLock<custodia_store::LogThrottle> =
    std::sync::LazyLock::new(|| custodia_store::LogThrottle::new(LOG_INTERVAL));

/// How often one repeated failure is logged.
const LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// An error answer. The only place status codes are chosen.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
    instance: Option<String>,
}

/// The outcomes the HTTP layer names itself (not from a service), each with its status:
/// handlers say what happened, and only this file says which status that is.
macro_rules! outcomes {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {
        impl ApiError {
            $(
                $(#[$doc])*
                pub fn $name(detail: impl Into<String>) -> Self {
                    Self::new(StatusCode::$status, detail)
                }
            )*
        }
    };
}

outcomes! {
    /// 400: the request cannot be read as sent.
    bad_request => BAD_REQUEST;
    /// 401: no or a wrong credential.
    unauthorized => UNAUTHORIZED;
    /// 403: understood, and not allowed.
    forbidden => FORBIDDEN;
    /// 404: no such resource (or, for conversations, not one of the caller's).
    not_found => NOT_FOUND;
    /// 405: the resource exists; the method does not.
    method_not_allowed => METHOD_NOT_ALLOWED;
    /// 409: conflicts with the state of the resource.
    conflict => CONFLICT;
    /// 413: the body is over the limit.
    too_large => PAYLOAD_TOO_LARGE;
    /// 415: not a body of a type this endpoint reads.
    unsupported_media => UNSUPPORTED_MEDIA_TYPE;
    /// 422: well-formed, but its values cannot be used.
    unprocessable => UNPROCESSABLE_ENTITY;
    /// 503: cannot serve now; retry later.
    unavailable => SERVICE_UNAVAILABLE;
    /// 500, said plainly: the server's own data is damaged (an auditor must be told
    /// what, not handed a request id).
    damaged => INTERNAL_SERVER_ERROR;
}

impl ApiError {
    /// An error with a status and a detail that says what to fix.
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
            instance: None,
        }
    }

    /// The problem body of this error.
    pub fn problem(&self) -> Problem {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Problem {
            kind: format!("https://custodia.dev/problems/{slug}"),
            title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: self.instance.clone(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A 500 whose cause is logged here (the same cause at most once per interval, with
    /// how many were left out); the client sees only a request id.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        let id = Uuid::new_v4();
        let cause = cause.to_string();
        if let Some(left_out) = THROTTLE.admit(&cause, std::time::Instant::now()) {
            tracing::error!(request = %id, %cause, left_out, "internal error");
        }
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: "internal error".into(),
            retry_after: None,
            instance: Some(format!("urn:uuid:{id}")),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(v) => v.into(),
            ServiceError::Rejected(why) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, why),
            ServiceError::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            ServiceError::Forbidden(why) => Self::new(StatusCode::FORBIDDEN, why),
            ServiceError::Conflict(why) => Self::new(StatusCode::CONFLICT, why),
            ServiceError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "missing, unknown or expired session token: sign in and send Authorization: Bearer <token>",
            ),
            ServiceError::BadCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "wrong username or password")
            }
            ServiceError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many attempts; retry in {secs} s"),
                );
                e.retry_after = Some(secs);
                e
            }
            ServiceError::Unavailable(why) => {
                if let Some(left_out) = THROTTLE.admit(&why, std::time::Instant::now()) {
                    tracing::warn!(cause = %why, left_out, "dependency unavailable");
                }
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unavailable; nothing was stored, retry",
                )
            }
            ServiceError::Internal(cause) => Self::internal(&cause),
            _ => Self::internal(&"unmapped service error"),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(v: ValidationError) -> Self {
        let status = match v {
            ValidationError::TooLong { field: "body", .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, v.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection;
        let status = match &r {
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => r.status(),
        };
        let detail = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with Content-Type: application/json".into()
            }
            JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                format!(
                    "request body too large: at most {} bytes",
                    crate::extract::MAX_REQUEST_BYTES
                )
            }
            _ => format!("request body is not the expected JSON: {}", r.body_text()),
        };
        Self::new(status, detail)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("bad query parameters: {}", r.body_text()),
        )
    }
}

impl From<custodia_witness::WitnessError> for ApiError {
    fn from(e: custodia_witness::WitnessError) -> Self {
        use custodia_witness::WitnessError as W;
        let status = match &e {
            W::Malformed(_) => StatusCode::BAD_REQUEST,
            W::NotSigned => StatusCode::FORBIDDEN,
            W::UnknownLog(_) => StatusCode::NOT_FOUND,
            W::BadProof(_) => StatusCode::UNPROCESSABLE_ENTITY,
            W::Conflict(_) => StatusCode::CONFLICT,
            _ => return Self::internal(&e),
        };
        Self::new(status, e.to_string())
    }
}

impl From<custodia_governance::GovernanceError> for ApiError {
    fn from(e: custodia_governance::GovernanceError) -> Self {
        match e {
            custodia_governance::GovernanceError::BadStaffCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "wrong username, password or one-time code (each code works once)",
            ),
            custodia_governance::GovernanceError::Service(e) => e.into(),
            // A variant added later answers as an internal error until mapped here.
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}
