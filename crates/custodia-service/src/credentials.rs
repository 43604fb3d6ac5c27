//! Credentials shared by user accounts and staff: argon2id password hashes (computed off
//! the async threads) and opaque bearer tokens stored only as SHA-256 hashes.
//!
//! Every hash runs on one small pool of dedicated threads, each with one argon2 working
//! memory (~19 MiB) allocated once and reused for every hash. Allocating it per hash let a
//! sign-up flood leave hundreds of MiB behind (the allocator keeps freed memory in
//! per-thread arenas and does not return it); now the hashing memory is fixed at one
//! working memory per pool thread, and a flood waits in a bounded queue.

use std::cell::RefCell;

use argon2::password_hash::{
    Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt,
    SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custodia_core::Password;
use custodia_store::TokenHash;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{ServiceError, ServiceResult};

/// Hashes waiting for a pool thread; further callers wait (asynchronously) to queue.
const HASH_QUEUE: usize = 64;

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue (started on first use).
fn hashing_queue() -> &'static tokio::sync::mpsc::Sender<HashJob> {
    static QUEUE: std::sync::OnceLock<tokio::sync::mpsc::Sender<HashJob>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::channel::<HashJob>(HASH_QUEUE);
        // std Mutex: held by the one idle thread waiting for the next job, never in async
        // code.
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("custodia-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(mut rx) => rx.blocking_recv(),
                            Err(_) => None,
                        };
                        match job {
                            Some(job) => job(),
                            None => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        tx
    })
}

/// Runs `f` on a hashing thread.
async fn on_hashing_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ServiceResult<T> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    hashing_queue()
        .send(Box::new(move || {
            let _ = reply.send(f());
        }))
        .await
        .map_err(|_| ServiceError::Internal("password hashing threads stopped".into()))?;
    answer
        .await
        .map_err(|_| ServiceError::Internal("password hashing thread failed".into()))
}

thread_local! {
    /// This hashing thread's argon2 working memory, reused by every hash it computes.
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 (the library's algorithm, parameters and PHC strings) computed in the hashing
/// thread's reused working memory instead of a fresh allocation per hash.
struct PooledArgon2;

impl PasswordHasher for PooledArgon2 {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        self.hash_password_customized(password, None, None, Params::default(), salt)
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        alg_id: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let algorithm = alg_id
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let blocks = params.block_count();
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(output_len, |out| {
            let mut fill = |memory: &mut [Block]| {
                argon.hash_password_into_with_memory(password, salt_bytes, out, memory)
            };
            if blocks > Params::default().block_count() {
                // Not our parameters (an old or foreign hash): its own, temporary memory.
                return Ok(fill(&mut vec![Block::default(); blocks])?);
            }
            WORKING_MEMORY.with(|m| {
                let mut memory = m.borrow_mut();
                if memory.len() < blocks {
                    memory.resize(blocks, Block::default());
                }
                Ok(fill(&mut memory[..blocks])?)
            })
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// The argon2id PHC string of `password`, computed on a hashing thread.
pub async fn hash_password(password: Password) -> ServiceResult<String> {
    on_hashing_thread(move || {
        let salt = SaltString::generate(&mut OsRng);
        PooledArgon2
            .hash_password(password.expose(), &salt)
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| ServiceError::Internal(format!("hashing: {e}")))
}

/// Whether `password` matches the PHC string `phc` (`None`: an account that does not
/// exist, checked against a decoy so it costs the same time).
pub async fn verify_password(phc: Option<String>, password: Password) -> ServiceResult<bool> {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| decoy_hash().to_owned());
    let ok = on_hashing_thread(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|h| PooledArgon2.verify_password(password.expose(), &h).is_ok())
    })
    .await?;
    Ok(ok && known)
}

/// A PHC hash of a password nobody has.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        PooledArgon2
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pooled_hashes_are_argon2id_phc_strings_the_library_verifies_and_vice_versa() {
        let ours = hash_password(Password::parse("correct horse battery".into()).unwrap())
            .await
            .unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"another one", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let check = |phc: &str, pw: &str| {
            verify_password(Some(phc.to_owned()), Password::parse(pw.into()).unwrap())
        };
        assert!(check(&theirs, "another one").await.unwrap());
        assert!(!check(&theirs, "another two").await.unwrap());
        assert!(check(&ours, "correct horse battery").await.unwrap());
        assert!(!check(&ours, "correct horse battery!").await.unwrap());
    }
}
