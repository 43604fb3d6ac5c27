//! A transparency-log witness (c2sp.org/tlog-witness): it cosigns a log's checkpoint only
//! when the checkpoint is signed by the log and provably consistent with the last one it
//! cosigned for that log, so a log cannot show different histories to different people
//! (or roll back) without a witness noticing.
//!
//! Layout: this file — [`Witness`] (the `add-checkpoint` decision and its state) and
//! [`WitnessError`] (each refusal of the protocol, mapped to its status by the HTTP layer).
//!
//! State: one file per log in the state directory, named by the SHA-256 of the log's
//! origin, holding the last cosigned checkpoint note as the log signed it. A new state is
//! written to a temporary file, synced, renamed over the old one and the directory synced,
//! all before the cosignature is returned; the check of the old size and that write happen
//! under one lock, so two requests can never roll the state back.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use custodia_core::Clock;
use custodia_tlog::{
    AddCheckpoint, Checkpoint, Hash, KeyKind, NoteError, NoteSignature, NoteSigner, NoteVerifier,
    SignedNote, verify_consistency,
};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Why a checkpoint was not cosigned; each variant is one answer of the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The request body is malformed, or its old size is larger than the checkpoint's.
    #[error("{0}")]
    Malformed(String),
    /// The checkpoint's origin is not a log this witness is configured for.
    #[error("this witness does not witness the log {0:?}")]
    UnknownLog(String),
    /// No signature by the log's key verifies.
    #[error("the checkpoint is not signed by the log's key")]
    NotSigned,
    /// The old size is not the size this witness last cosigned (its size is given), or
    /// the checkpoint has that size with another root hash.
    #[error("the witness last cosigned size {0}")]
    Conflict(u64),
    /// The consistency proof does not prove the checkpoint extends the cosigned one.
    #[error("the consistency proof does not verify: {0}")]
    BadProof(String),
    /// The witness could not persist its state; nothing was cosigned.
    #[error("witness state: {0}")]
    Storage(#[from] std::io::Error),
}

/// The last cosigned checkpoint of one log.
#[derive(Clone)]
struct Latest {
    size: u64,
    root: Hash,
}

/// A witness: its cosigner key, the logs it witnesses, and their last cosigned state.
pub struct Witness {
    signer: NoteSigner,
    logs: Vec<NoteVerifier>,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    // Tokio Mutex: held across the state file write (on a blocking thread) so checking the
    // old size and persisting the new one are one atomic step.
    latest: Mutex<HashMap<String, Latest>>,
}

impl Witness {
    /// Opens a witness with a cosigner key, the verifier keys of the logs it witnesses (a
    /// log's origin is its key's name), and its state directory (created if missing).
    /// Fails if a stored state does not verify under its log's key.
    pub fn open(
        signer: NoteSigner,
        logs: Vec<NoteVerifier>,
        dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WitnessError> {
        if signer.kind() != KeyKind::CosignatureV1 {
            return Err(WitnessError::Malformed(
                "the witness key must be a cosigner key (custodia log keygen --witness)".into(),
            ));
        }
        if let Some(k) = logs.iter().find(|k| k.kind() != KeyKind::Ed25519) {
            return Err(WitnessError::Malformed(format!(
                "{} is not a log's note signing key",
                k.name()
            )));
        }
        fs::create_dir_all(dir)?;
        let mut latest = HashMap::new();
        for log in &logs {
            let path = dir.join(state_name(log.name()));
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let (cp, _) = open_checkpoint(&bytes, log).map_err(|e| {
                WitnessError::Malformed(format!(
                    "the stored state {} for log {:?} is damaged: {e}",
                    path.display(),
                    log.name()
                ))
            })?;
            latest.insert(
                cp.origin,
                Latest {
                    size: cp.size,
                    root: cp.root,
                },
            );
        }
        Ok(Self {
            signer,
            logs,
            dir: dir.to_owned(),
            clock,
            latest: Mutex::new(latest),
        })
    }

    /// The witness's verifier key (type 0x04), for logs and clients to configure.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Handles an `add-checkpoint` request body: on success the new state is persisted
    /// and the cosignature line is returned.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<NoteSignature, WitnessError> {
        let req = AddCheckpoint::parse(body).map_err(malformed)?;
        let note = SignedNote::parse(req.checkpoint.as_bytes()).map_err(malformed)?;
        let cp = Checkpoint::parse(&note.text).map_err(malformed)?;
        let log = self
            .logs
            .iter()
            .find(|k| k.name() == cp.origin)
            .ok_or_else(|| WitnessError::UnknownLog(cp.origin.clone()))?;
        note.verify(std::slice::from_ref(log))
            .map_err(|_| WitnessError::NotSigned)?;
        if req.old > cp.size {
            return Err(WitnessError::Malformed(format!(
                "the old size {} is larger than the checkpoint size {}",
                req.old, cp.size
            )));
        }

        let mut latest = self.latest.lock().await;
        let known = latest.get(&cp.origin).cloned();
        let known_size = known.as_ref().map_or(0, |l| l.size);
        if req.old != known_size {
            return Err(WitnessError::Conflict(known_size));
        }
        match &known {
            Some(l) if l.size == cp.size && l.root != cp.root => {
                tracing::warn!(origin = %cp.origin, size = cp.size, "a second root for a cosigned size: the log forked");
                return Err(WitnessError::Conflict(l.size));
            }
            Some(l) if l.size == cp.size => {}
            Some(l) => verify_consistency(l.size, cp.size, &l.root, &cp.root, &req.proof)
                .map_err(|e| {
                    tracing::warn!(origin = %cp.origin, old = l.size, new = cp.size, "inconsistent checkpoint refused");
                    WitnessError::BadProof(e.to_string())
                })?,
            None if !req.proof.is_empty() => {
                return Err(WitnessError::BadProof(
                    "the proof from size 0 must be empty".into(),
                ));
            }
            None => {}
        }

        let path = self.dir.join(state_name(&cp.origin));
        let text = req.checkpoint.clone();
        tokio::task::spawn_blocking(move || persist(&path, text.as_bytes()))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        latest.insert(
            cp.origin.clone(),
            Latest {
                size: cp.size,
                root: cp.root,
            },
        );
        drop(latest);

        let now = u64::try_from(self.clock.now().as_millis() / 1000).unwrap_or(0);
        self.signer
            .cosign(&note.text, now)
            .map_err(|e| WitnessError::Malformed(e.to_string()))
    }
}

fn malformed(e: NoteError) -> WitnessError {
    WitnessError::Malformed(e.to_string())
}

/// Parses a signed checkpoint and verifies it under `log`.
fn open_checkpoint(bytes: &[u8], log: &NoteVerifier) -> Result<(Checkpoint, SignedNote), String> {
    let note = SignedNote::parse(bytes).map_err(|e| e.to_string())?;
    note.verify(std::slice::from_ref(log))
        .map_err(|e| e.to_string())?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| e.to_string())?;
    if cp.origin != log.name() {
        return Err(format!("it is a checkpoint of {:?}", cp.origin));
    }
    Ok((cp, note))
}

/// The state file name of a log: hex SHA-256 of its origin (origins contain '/').
fn state_name(origin: &str) -> String {
    Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces `path` with `bytes` atomically and durably.
fn persist(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
