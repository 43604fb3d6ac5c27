//! The audit log service: appends entries to the transparency log and signs checkpoints.
//!
//! Every append returns a [`Receipt`] (index, leaf hash, inclusion proof, and the signed
//! checkpoint it is proved against). A checkpoint is signed only after the new tree is
//! proven consistent with the last checkpoint the log signed; if that proof fails (the
//! stored log was altered), signing stops and appends fail, closed.
//!
//! With witnesses configured, each new checkpoint is submitted to every witness
//! (c2sp.org/tlog-witness) and kept only with at least the quorum of cosignatures; short of
//! the quorum, no checkpoint is kept and appends fail, closed, so nothing is released on a
//! checkpoint that independent witnesses have not seen.
//!
//! Layout:
//! - entries: [`AuditEvent`] and its encodings live in `custodia-transparency` (re-exported
//!   here), shared with auditors and members' clients.
//! - `tree` — [`LogTree`]: tile completion, roots, proofs and tiles over the stored log,
//!   computed here once for every storage backend.
//! - this file — [`AuditLog`], [`Receipt`], [`AuditError`], and the [`Cosigner`] seam
//!   through which witnesses are asked.

mod tree;

pub use custodia_transparency::{
    Actor, AuditEvent, EntryError, EntryView, Event, EventKind, Pseudonym, PseudonymKey, Subject,
    TagKey,
};
pub use tree::LogTree;

use std::sync::Arc;

use async_trait::async_trait;
use custodia_store::{LogAppend, LogStore, StoreError};
use custodia_tlog::{
    Checkpoint, Hash, NoteSignature, NoteSigner, SignedNote, Tile, verify_consistency,
};
use tokio::sync::Mutex;

/// The largest entry (entry bundles length-prefix entries with 16 bits).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// Why an append or a checkpoint failed. Nothing is acknowledged on error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The event cannot be encoded within [`MAX_ENTRY_BYTES`].
    #[error("an audit entry must be at most {MAX_ENTRY_BYTES} bytes: {0}")]
    BadEntry(#[from] EntryError),
    /// The stored log is not consistent with the last signed checkpoint.
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    /// Fewer witnesses than the quorum cosigned the new checkpoint.
    #[error("witness quorum not reached: {0}")]
    Witnesses(String),
    /// The log's storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CosignError {
    /// The witness last cosigned this size, not the old size the log sent.
    #[error("the witness last cosigned size {0}")]
    Conflict(u64),
    /// Any other failure: unreachable, refused, or an answer that does not verify.
    #[error("{0}")]
    Failed(String),
}

/// A witness the log asks to cosign its checkpoints.
#[async_trait]
pub trait Cosigner: Send + Sync {
    /// The witness's name, for messages.
    fn name(&self) -> &str;
    /// Submits `checkpoint` (a signed note) with the consistency proof from `old`, and
    /// returns the witness's cosignature, verified under the witness's key.
    async fn add_checkpoint(
        &self,
        old: u64,
        proof: Vec<Hash>,
        checkpoint: &str,
    ) -> Result<NoteSignature, CosignError>;
}

/// Proof that an entry is in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Position in the log.
    pub index: u64,
    /// RFC 6962 leaf hash of the entry.
    pub leaf_hash: Hash,
    /// Inclusion proof of the entry in the checkpoint's tree.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (a C2SP signed note) the proof is against.
    pub checkpoint: String,
    /// The entry's bytes, as hashed into the tree (public; names subjects by pseudonym).
    pub entry: Vec<u8>,
}

/// The audit log of one deployment.
pub struct AuditLog {
    tree: LogTree,
    signer: NoteSigner,
    pseudonyms: PseudonymKey,
    origin: String,
    witnesses: Vec<Arc<dyn Cosigner>>,
    quorum: usize,
    // Tokio Mutex: held across the store calls of one checkpoint signing, so signings
    // happen one at a time and appenders waiting on it share the next checkpoint.
    signing: Mutex<()>,
}

impl AuditLog {
    /// A log named `origin`, signing with `signer`, pseudonymizing subjects with
    /// `pseudonyms`.
    pub fn new(
        store: Arc<dyn LogStore>,
        signer: NoteSigner,
        origin: impl Into<String>,
        pseudonyms: PseudonymKey,
    ) -> Self {
        Self {
            tree: LogTree::new(store),
            signer,
            pseudonyms,
            origin: origin.into(),
            witnesses: Vec::new(),
            quorum: 0,
            signing: Mutex::new(()),
        }
    }

    /// The same log, keeping checkpoints only when at least `quorum` of `witnesses`
    /// cosigned them (`quorum` is capped at the number of witnesses).
    pub fn with_witnesses(mut self, witnesses: Vec<Arc<dyn Cosigner>>, quorum: usize) -> Self {
        self.quorum = quorum.min(witnesses.len());
        self.witnesses = witnesses;
        self
    }

    /// The verifier key of the log, for auditors.
    pub fn verifier(&self) -> custodia_tlog::NoteVerifier {
        self.signer.verifier()
    }

    /// Appends an event durably (its entry, and its record beside it) and returns the
    /// receipt against a checkpoint that includes it.
    ///
    /// An `Err` means the caller must not perform the action. If the entry was stored but
    /// no checkpoint could be kept for it (no witness quorum, an inconsistent log), it
    /// still becomes part of the log, so an `action.abandoned` entry naming it is appended
    /// right after: the log then tells the same story as the world (the action did not
    /// happen).
    pub async fn append(&self, event: &AuditEvent) -> Result<Receipt, AuditError> {
        let entry = event.entry(&self.pseudonyms)?;
        let record = event.record()?;
        if entry.len().max(record.len()) > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLong("event").into());
        }
        let append = LogAppend::new(entry, record);
        let leaf = append.leaf;
        let entry = append.entry.clone();
        let index = self.tree.append(vec![append]).await?;
        match self.receipt(index, leaf, entry).await {
            Ok(receipt) => Ok(receipt),
            Err(e) => {
                self.abandon(index, event.time, reason_of(&e)).await;
                Err(e)
            }
        }
    }

    /// The receipt of the stored entry `index`: a checkpoint covering it (signed, and
    /// cosigned by the quorum) and its inclusion proof.
    async fn receipt(&self, index: u64, leaf: Hash, entry: Vec<u8>) -> Result<Receipt, AuditError> {
        let (size, checkpoint) = self.checkpoint_covering(index + 1).await?;
        let proof = self.tree.inclusion_proof(index, size).await?;
        Ok(Receipt {
            index,
            leaf_hash: leaf,
            proof,
            checkpoint,
            entry,
        })
    }

    /// Abandons every stored entry no kept checkpoint covers and no `action.abandoned`
    /// entry names yet: on a single node at start, such entries are from appends that
    /// never returned (the node stopped between storing the entry and keeping a
    /// checkpoint), so their actions never happened. Returns how many it abandoned. Not
    /// for a log shared by several nodes: another node's append may be in flight.
    pub async fn abandon_unconfirmed(&self) -> Result<u64, AuditError> {
        let store = self.tree.store();
        let covered = store.last_checkpoint().await?.map_or(0, |(size, _)| size);
        let size = store.log_size().await?;
        let mut uncovered = Vec::new();
        let mut named = std::collections::HashSet::new();
        for index in covered..size {
            let Some(event) = self.record(index).await? else {
                continue;
            };
            if event.kind == EventKind::ActionAbandoned {
                named.extend(
                    event
                        .scope
                        .iter()
                        .filter(|(k, _)| k == "entry")
                        .filter_map(|(_, v)| v.parse::<u64>().ok()),
                );
            } else {
                uncovered.push((index, event.time));
            }
        }
        let mut abandoned = 0;
        for (index, time) in uncovered {
            if !named.contains(&index) {
                self.abandon(index, time, "interrupted").await;
                abandoned += 1;
            }
        }
        Ok(abandoned)
    }

    /// Stores an `action.abandoned` entry for entry `index`, whose action was refused
    /// for `reason`. Stored only: its checkpoint comes with the next one kept.
    async fn abandon(&self, index: u64, at: custodia_core::Timestamp, reason: &'static str) {
        let event = AuditEvent {
            kind: EventKind::ActionAbandoned,
            time: at,
            actor: None,
            reason: None,
            case: None,
            subjects: Vec::new(),
            scope: vec![
                ("entry".into(), index.to_string()),
                ("why".into(), reason.into()),
            ],
        };
        let stored = match (event.entry(&self.pseudonyms), event.record()) {
            (Ok(entry), Ok(record)) => self
                .tree
                .append(vec![LogAppend::new(entry, record)])
                .await
                .map_err(AuditError::from),
            (Err(e), _) | (_, Err(e)) => Err(e.into()),
        };
        match stored {
            Ok(at) => tracing::warn!(
                entry = index,
                abandoned_by = at,
                reason,
                "a logged action was refused; the log says so"
            ),
            Err(e) => {
                tracing::error!(entry = index, error = %e, "a logged action was refused and the log could not say so")
            }
        }
    }

    /// The receipt of stored entry `index` against `checkpoint`, a checkpoint this log
    /// kept (so that several entries prove against one checkpoint, as a disclosure package
    /// shows them).
    pub async fn receipt_against(
        &self,
        index: u64,
        checkpoint: &str,
    ) -> Result<Receipt, AuditError> {
        let size = signed_size(checkpoint)?;
        if index >= size {
            return Err(AuditError::Inconsistent(format!(
                "entry {index} is not covered by a checkpoint of {size} entries"
            )));
        }
        let entry = self
            .tree
            .store()
            .log_entries(index, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("the log has no entry {index}")))?;
        let proof = self.tree.inclusion_proof(index, size).await?;
        Ok(Receipt {
            index,
            leaf_hash: custodia_tlog::leaf_hash(&entry),
            proof,
            checkpoint: checkpoint.to_owned(),
            entry,
        })
    }

    /// The full record of entry `index`, for an authorized auditor.
    pub async fn record(&self, index: u64) -> Result<Option<AuditEvent>, AuditError> {
        match self.tree.store().log_record(index).await? {
            Some(bytes) => Ok(Some(AuditEvent::from_record(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The key under which `subject`'s tags in this log's entries are made (a member's is
    /// handed to them, so their client recognises the entries about them).
    pub fn subject_key(&self, subject: &Subject) -> TagKey {
        self.pseudonyms.subject_key(subject)
    }

    /// The latest signed checkpoint, signing one for the current size if the log grew.
    pub async fn checkpoint(&self) -> Result<String, AuditError> {
        let size = self.tree.store().log_size().await?;
        Ok(self.checkpoint_covering(size).await?.1)
    }

    /// The transparency report over `period`, computed from the public entries of the
    /// last kept checkpoint exactly as anyone reading its tiles computes it (`None`
    /// before the first checkpoint).
    pub async fn report(
        &self,
        period: custodia_transparency::Period,
    ) -> Result<Option<custodia_proto::report::TransparencyReport>, AuditError> {
        const CHUNK: u64 = 4096;
        let Some((size, note)) = self.last_checkpoint().await? else {
            return Ok(None);
        };
        let checkpoint = kept_checkpoint(&note)?;
        let mut report = custodia_transparency::ReportBuilder::new(period);
        let mut at = 0;
        while at < size {
            let entries = self
                .tree
                .store()
                .log_entries(at, CHUNK.min(size - at))
                .await?;
            if entries.is_empty() {
                return Err(StoreError::Corrupt(format!("the log has no entry {at}")).into());
            }
            at += entries.len() as u64;
            entries.iter().for_each(|e| report.visit(e));
        }
        Ok(Some(report.finish(
            &checkpoint.origin,
            checkpoint.size,
            &checkpoint.root,
        )))
    }

    /// The last checkpoint kept (signed, and cosigned by the quorum), without signing.
    pub async fn last_checkpoint(&self) -> Result<Option<(u64, String)>, AuditError> {
        Ok(self.tree.store().last_checkpoint().await?)
    }

    /// A tile of the log at `path` (c2sp.org/tlog-tiles), if it lies inside the last kept
    /// checkpoint's tree; `None` when there is no such tile there.
    pub async fn tile(&self, path: &str) -> Result<Option<Vec<u8>>, AuditError> {
        let Some(tile) = Tile::parse_path(path) else {
            return Ok(None);
        };
        let signed = match self.last_checkpoint().await? {
            Some((_, note)) => signed_size(&note)?,
            None => 0,
        };
        if !tile.available_in(signed) {
            return Ok(None);
        }
        Ok(Some(self.tree.tile(&tile).await?))
    }

    /// The log's tree (roots, proofs, tiles).
    pub fn tree(&self) -> &LogTree {
        &self.tree
    }

    /// A signed checkpoint of at least `size` entries. Several nodes may share the log's
    /// store: if another signed first (the store refuses the stale compare-and-set), the
    /// signing starts again from the checkpoint it kept.
    async fn checkpoint_covering(&self, size: u64) -> Result<(u64, String), AuditError> {
        let _one_signer = self.signing.lock().await;
        let mut attempts = 0;
        loop {
            match self.sign_covering(size).await {
                Err(AuditError::Store(StoreError::Conflict)) if attempts < 8 => attempts += 1,
                other => return other,
            }
        }
    }

    /// One attempt of [`Self::checkpoint_covering`], under the signing lock.
    async fn sign_covering(&self, size: u64) -> Result<(u64, String), AuditError> {
        let last = self.tree.store().last_checkpoint().await?;
        if let Some((signed, note)) = &last
            && *signed >= size
        {
            return Ok((*signed, note.clone()));
        }
        let new = self.tree.store().log_size().await?;
        let root = self.tree.root(new).await?;
        if let Some((old, note)) = &last {
            self.check_consistent(*old, note, new, &root).await?;
        }
        let text = Checkpoint {
            origin: self.origin.clone(),
            size: new,
            root,
            extensions: Vec::new(),
        }
        .to_string();
        let signature = self
            .signer
            .sign(&text)
            .map_err(|e| AuditError::Inconsistent(format!("cannot sign checkpoint text: {e}")))?;
        let mut note = SignedNote {
            text,
            signatures: vec![signature],
        };
        let old = last.as_ref().map_or(0, |(s, _)| *s);
        let cosignatures = self.cosign(&note.to_string(), old, new).await?;
        note.signatures.extend(cosignatures);
        let note = note.to_string();
        self.tree
            .store()
            .save_checkpoint(last.as_ref().map(|(s, _)| *s), new, note.clone())
            .await?;
        tracing::debug!(size = new, "signed checkpoint");
        Ok((new, note))
    }

    /// Asks every witness to cosign `note` (of size `new`; the last kept checkpoint had
    /// `old`) and returns the cosignatures, or fails if fewer than the quorum cosigned.
    async fn cosign(
        &self,
        note: &str,
        old: u64,
        new: u64,
    ) -> Result<Vec<NoteSignature>, AuditError> {
        if self.witnesses.is_empty() {
            return Ok(Vec::new());
        }
        let asks = self
            .witnesses
            .iter()
            .map(|w| self.ask(w.as_ref(), note, old, new));
        let answers = futures_util::future::join_all(asks).await;
        let mut cosignatures = Vec::new();
        let mut failures = Vec::new();
        for (w, answer) in self.witnesses.iter().zip(answers) {
            match answer {
                Ok(sig) => cosignatures.push(sig),
                Err(e) => {
                    tracing::warn!(witness = w.name(), size = new, error = %e, "witness did not cosign");
                    failures.push(format!("{}: {e}", w.name()));
                }
            }
        }
        if cosignatures.len() < self.quorum {
            return Err(AuditError::Witnesses(format!(
                "{} of {} witnesses cosigned size {new}, the quorum is {} ({})",
                cosignatures.len(),
                self.witnesses.len(),
                self.quorum,
                failures.join("; ")
            )));
        }
        Ok(cosignatures)
    }

    /// One witness: from the size this log last kept, or, if the witness answers that it
    /// cosigned another size (a checkpoint this log signed but did not keep), from that.
    async fn ask(
        &self,
        witness: &dyn Cosigner,
        note: &str,
        old: u64,
        new: u64,
    ) -> Result<NoteSignature, CosignError> {
        let proof = |from| async move {
            self.tree
                .consistency_proof(from, new)
                .await
                .map_err(|e| CosignError::Failed(format!("consistency proof: {e}")))
        };
        match witness.add_checkpoint(old, proof(old).await?, note).await {
            Err(CosignError::Conflict(theirs)) if theirs != old && theirs <= new => {
                witness
                    .add_checkpoint(theirs, proof(theirs).await?, note)
                    .await
            }
            answer => answer,
        }
    }

    /// Proves the tree of `new` entries with `root` extends the last signed checkpoint.
    async fn check_consistent(
        &self,
        old: u64,
        note: &str,
        new: u64,
        root: &Hash,
    ) -> Result<(), AuditError> {
        let parsed = SignedNote::parse(note.as_bytes())
            .and_then(|n| Checkpoint::parse(&n.text))
            .map_err(|e| {
                AuditError::Inconsistent(format!("the last checkpoint does not parse: {e}"))
            })?;
        if new < old {
            return Err(AuditError::Inconsistent(format!(
                "the log shrank from {old} to {new} entries"
            )));
        }
        let proof = self.tree.consistency_proof(old, new).await?;
        verify_consistency(old, new, &parsed.root, root, &proof).map_err(|e| {
            tracing::error!(
                old,
                new,
                "stored log is inconsistent with the last signed checkpoint"
            );
            AuditError::Inconsistent(format!(
                "size {new} is not consistent with the signed size {old}: {e}"
            ))
        })
    }
}

/// The size a kept checkpoint states.
fn signed_size(note: &str) -> Result<u64, AuditError> {
    kept_checkpoint(note).map(|c| c.size)
}

fn kept_checkpoint(note: &str) -> Result<Checkpoint, AuditError> {
    SignedNote::parse(note.as_bytes())
        .and_then(|n| Checkpoint::parse(&n.text))
        .map_err(|e| AuditError::Inconsistent(format!("the kept checkpoint does not parse: {e}")))
}

/// Why an entry's action was refused, as its `action.abandoned` entry says it (public:
/// a category, never a witness's address or a store's message).
fn reason_of(e: &AuditError) -> &'static str {
    match e {
        AuditError::Witnesses(_) => "witness-quorum",
        AuditError::Inconsistent(_) => "log-inconsistent",
        _ => "log-unavailable",
    }
}
