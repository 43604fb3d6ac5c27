//! Credentials shared by user accounts and staff: argon2id password hashes (computed off
//! the async threads) and opaque bearer tokens stored only as SHA-256 hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custodia_core::Password;
use custodia_store::TokenHash;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{ServiceError, ServiceResult};

/// The argon2id PHC string of `password`, computed on a blocking thread.
pub async fn hash_password(password: Password) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))?
    .map_err(|e| ServiceError::Internal(format!("hashing: {e}")))
}

/// Whether `password` matches the PHC string `phc` (`None`: an account that does not
/// exist, checked against a decoy so it costs the same time).
pub async fn verify_password(phc: Option<String>, password: Password) -> ServiceResult<bool> {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| decoy_hash().to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.expose(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("verify task: {e}")))?;
    Ok(ok && known)
}

/// A PHC hash of a password nobody has.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"custodia-decoy-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A fresh bearer token `<prefix><43 base64url chars>` (256 random bits) and its hash.
pub fn new_token(prefix: &str) -> (Zeroizing<String>, TokenHash) {
    let mut raw = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut raw[..]);
    let token = Zeroizing::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&raw[..])));
    let hash = hash_token(&token);
    (token, hash)
}

/// A random password for a new account, shown once: 24 base64url characters (144 bits).
pub fn new_password() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 18]);
    OsRng.fill_bytes(&mut raw[..]);
    Zeroizing::new(URL_SAFE_NO_PAD.encode(&raw[..]))
}

/// The stored form of a bearer token.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}
