//! A transparency-log witness (c2sp.org/tlog-witness): it cosigns a log's checkpoint only
//! when the checkpoint is signed by the log and provably consistent with the last one it
//! cosigned for that log, so a log cannot show different histories to different people
//! (or roll back) without a witness noticing.
//!
//! Layout: this file — [`Witness`] (the `add-checkpoint` decision, its state, and the
//! monitoring checkpoint) and [`WitnessError`] (each refusal of the protocol, mapped to
//! its status by the HTTP layer, `custodia_api::witness`).
//!
//! State: one file per log in the state directory, named by the SHA-256 of the log's
//! origin, holding the last cosigned checkpoint with the log's signature and this
//! witness's cosignature. A new state is written to a temporary file, synced, renamed over
//! the old one and the directory synced, all before the cosignature is returned; the check
//! of the old size and that write happen under one lock, so two requests can never roll
//! the state back.
//!
//! # How each rule of tlog-witness is met
//!
//! Tested rule by rule, over raw HTTP, in `custodia/tests/witness_spec.rs`.
//!
//! - *The request MUST be an HTTP POST*: only `POST /add-checkpoint` is routed; other
//!   methods get 405.
//! - *Witnesses SHOULD support HTTP keep-alive*: the listener keeps connections alive.
//! - *The request body MUST be a sequence of an old size line, zero or more consistency
//!   proof lines (at most 63), an empty line, a checkpoint; each line MUST terminate in a
//!   newline; no leading zeroes*: `custodia_tlog::AddCheckpoint::parse` refuses anything
//!   else with 400.
//! - *MUST verify the checkpoint signature against the public key(s) it trusts for the
//!   origin, and MUST ignore signatures from unknown keys*: `SignedNote::verify` with the
//!   log's key; other signature lines are ignored (and not kept).
//! - *Unknown origin: MUST respond 404*: [`WitnessError::UnknownLog`].
//! - *403 if no signature from a trusted key is present, or one whose key name and ID
//!   match fails to verify*: [`WitnessError::NotSigned`].
//! - *The old size MUST be equal to or lower than the checkpoint size, else 400*:
//!   [`WitnessError::Malformed`].
//! - *The old size MUST match the latest cosigned size (zero if none), else 409 with that
//!   size, a newline, `Content-Type: text/x.tlog.size`*: [`WitnessError::Conflict`].
//! - *A checkpoint of size zero MUST have the empty tree's root hash, else 422*;
//!   *from old size zero the proof MUST be empty, else 422*; *a consistency proof that
//!   does not verify: 422*; *same size as the cosigned one with another root hash: 422*:
//!   all [`WitnessError::BadProof`].
//! - *MAY log a request that fails a consistency check*: a warning is logged.
//! - *If all checks pass, MUST update its record and respond 200 with one or more note
//!   signature lines (`—` … newline), cosignatures from the witness key(s)*: one
//!   `cosignature/v1` line. *The cosignature MUST NOT omit the timestamp (not zero)*: the
//!   timestamp is the witness clock's seconds, at least 1. *Witnesses SHOULD use
//!   ML-DSA-44 cosignatures*: not met — this witness signs Ed25519 `cosignature/v1`, the
//!   format the logs it serves verify; an ML-DSA key would be added beside it.
//! - *MUST persist the new checkpoint before responding, atomically with the old-size
//!   check*: the lock and the synced rename above.
//! - *A witness SHOULD serve a recent checkpoint for each log it cosigned* at
//!   `GET <monitoring prefix>/<origin hash>/checkpoint` (SHA-256 of the origin, lowercase
//!   hex), *including its cosignature(s) and the log's signature(s) it verified*, *404 if
//!   it never cosigned one*: [`Witness::checkpoint_of`], updated with every cosignature
//!   (never delayed). The monitoring prefix is the submission prefix.
//! - *sign-subtree* is OPTIONAL and not offered (its cosignature format needs subtree
//!   support, which `cosignature/v1` has not): a request gets 404.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use custodia_core::Clock;
use custodia_tlog::{
    AddCheckpoint, Checkpoint, EMPTY_ROOT, Hash, KeyKind, NoteError, NoteSignature, NoteSigner,
    NoteVerifier, SignedNote, verify_consistency,
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
    /// The old size is not the size this witness last cosigned (its size is given).
    #[error("the witness last cosigned size {0}")]
    Conflict(u64),
    /// The checkpoint cannot extend what this witness cosigned: the consistency proof
    /// does not verify, a proof is given from size zero, a checkpoint of size zero has
    /// another root than the empty tree's, or a cosigned size comes with another root.
    #[error("the checkpoint is not consistent: {0}")]
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
    /// The checkpoint with the log's signature and this witness's cosignature.
    note: String,
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
            let (cp, note) = open_checkpoint(&bytes, log).map_err(|e| {
                WitnessError::Malformed(format!(
                    "the stored state {} for log {:?} is damaged: {e}",
                    path.display(),
                    log.name()
                ))
            })?;
            // A state kept before cosignatures were kept with it gets one now: this
            // witness verified that checkpoint when it stored it.
            let own = signer.verifier();
            let mut note = note;
            if !note.signatures.iter().any(|s| own.matches(s)) {
                let now = u64::try_from(clock.now().as_millis() / 1000)
                    .unwrap_or(0)
                    .max(1);
                note.signatures
                    .push(signer.cosign(&note.text, now).map_err(malformed)?);
            }
            latest.insert(
                cp.origin,
                Latest {
                    size: cp.size,
                    root: cp.root,
                    note: note.to_string(),
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
        if cp.size == 0 && cp.root != EMPTY_ROOT {
            return Err(WitnessError::BadProof(
                "a checkpoint of size 0 must have the empty tree's root hash".into(),
            ));
        }
        if req.old == 0 && !req.proof.is_empty() {
            return Err(WitnessError::BadProof(
                "the proof from size 0 must be empty".into(),
            ));
        }
        match &known {
            Some(l) if l.size == cp.size && l.root != cp.root => {
                tracing::warn!(origin = %cp.origin, size = cp.size, "a second root for a cosigned size: the log forked");
                return Err(WitnessError::BadProof(format!(
                    "size {} was cosigned with another root hash",
                    l.size
                )));
            }
            Some(l) if l.size == cp.size || l.size == 0 => {}
            Some(l) => verify_consistency(l.size, cp.size, &l.root, &cp.root, &req.proof)
                .map_err(|e| {
                    tracing::warn!(origin = %cp.origin, old = l.size, new = cp.size, "inconsistent checkpoint refused");
                    WitnessError::BadProof(e.to_string())
                })?,
            None => {}
        }

        // The cosignature is never timestamped zero (the epoch itself is before any log).
        let now = u64::try_from(self.clock.now().as_millis() / 1000)
            .unwrap_or(0)
            .max(1);
        let cosignature = self
            .signer
            .cosign(&note.text, now)
            .map_err(|e| WitnessError::Malformed(e.to_string()))?;
        // Kept as served to monitors: the log's own signatures that verified, and ours.
        let mut kept = SignedNote {
            text: note.text.clone(),
            signatures: note
                .signatures
                .iter()
                .filter(|s| log.matches(s))
                .cloned()
                .collect(),
        };
        kept.signatures.push(cosignature.clone());
        let kept = kept.to_string();
        let path = self.dir.join(state_name(&cp.origin));
        let bytes = kept.clone();
        tokio::task::spawn_blocking(move || persist(&path, bytes.as_bytes()))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        latest.insert(
            cp.origin.clone(),
            Latest {
                size: cp.size,
                root: cp.root,
                note: kept,
            },
        );
        drop(latest);
        Ok(cosignature)
    }

    /// The latest checkpoint cosigned for the log whose origin hashes (SHA-256, lowercase
    /// hex) to `origin_hash`, with the log's signature and this witness's cosignature, as
    /// `GET <monitoring prefix>/<origin hash>/checkpoint` serves it; `None` if this witness
    /// never cosigned one for it.
    pub async fn checkpoint_of(&self, origin_hash: &str) -> Option<String> {
        let latest = self.latest.lock().await;
        latest
            .iter()
            .find(|(origin, _)| state_name(origin) == origin_hash)
            .map(|(_, l)| l.note.clone())
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
