//! The one error type of the storage seam.

/// What went wrong in a store. Backends map their own errors into these variants inside
/// the backend; the text never contains stored values (bodies, keys, token hashes).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. the username is taken).
    #[error("conflicts with an existing record")]
    Conflict,
    /// The database cannot be reached or is shutting down; the operation did not happen.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported. The operation did not happen.
    #[error("storage failure: {0}")]
    Backend(String),
    /// Stored data does not decode (corruption or a bug).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;
