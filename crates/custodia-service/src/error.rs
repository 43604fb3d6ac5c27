//! The service's outcomes other than success.

use std::time::Duration;

use custodia_core::ValidationError;
use custodia_keys::KeyError;
use custodia_store::StoreError;

/// Why a request did not succeed. The HTTP layer alone maps these to status codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Input did not validate; the message says what to fix.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The request is well-formed but not allowed in this state; says why.
    #[error("{0}")]
    Rejected(&'static str),
    /// No such thing, or the caller may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may see the thing but not do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Conflicts with existing state.
    #[error("{0}")]
    Conflict(&'static str),
    /// Missing, unknown, expired or revoked credentials.
    #[error("not signed in, or the session has expired")]
    Unauthenticated,
    /// Wrong username or password (deliberately not saying which).
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many attempts.
    #[error("too many requests")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// A dependency is unavailable; nothing was changed or acknowledged.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or corruption; logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for ServiceError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            // The HSM holding the KEKs is down or refuses: an outage (503, retry
            // elsewhere), as a lost database is, not a bug.
            KeyError::Token(why) => Self::Unavailable(format!("the KEK token: {why}")),
            KeyError::Keyring(why) => Self::Unavailable(format!("the keyring: {why}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_outage_is_unavailable_and_a_broken_seal_is_internal() {
        assert!(matches!(
            ServiceError::from(KeyError::Token("session closed".into())),
            ServiceError::Unavailable(why) if why.contains("KEK token")
        ));
        assert!(matches!(
            ServiceError::from(KeyError::Unreadable),
            ServiceError::Internal(_)
        ));
    }
}
