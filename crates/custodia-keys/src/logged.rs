//! Staff unwraps only against the audit log's own receipt.
//!
//! **Log before release, enforced here.** A [`LoggedAccess`] — the only way to ask for a
//! staff unwrap — has no public constructor: [`KeyService::verify_logged_read`] makes it
//! from the receipt the audit log returned for the read, after checking that
//! - the receipt's checkpoint is signed by the log's key (and cosigned by the witness
//!   quorum, when witnesses are configured),
//! - the entry is in that checkpoint's tree (the inclusion proof verifies, and the entry's
//!   bytes hash to the receipt's leaf), and
//! - the entry records exactly this read: an `access.read` under this grant, about this
//!   conversation (its tag), naming the messages (sequence numbers) or the preserved
//!   files (attachment ids) read.
//!
//! The key service then opens only messages of that conversation whose sequence numbers
//! the entry names, and only the files it names. A receipt for another read, a forged or altered entry, a checkpoint
//! that does not cover the entry, or one signed by another key is refused.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use custodia_audit::{EntryView, EventKind, PseudonymKey, Receipt, Subject};
use custodia_core::{AttachmentId, ConversationId, RequestId};
use custodia_tlog::{Checkpoint, NoteVerifier, SignedNote, leaf_hash, verify_inclusion};

use crate::{KeyError, KeyService};

/// What the key service trusts about the audit log: its signing key, its witnesses and
/// their quorum, and the key that turns subjects into the entries' pseudonyms.
pub struct LogAuthority {
    log: NoteVerifier,
    witnesses: Vec<NoteVerifier>,
    quorum: usize,
    pseudonyms: PseudonymKey,
}

impl LogAuthority {
    /// The log signed by `log`, cosigned by `quorum` of `witnesses` (0: none needed).
    pub fn new(
        log: NoteVerifier,
        witnesses: Vec<NoteVerifier>,
        quorum: usize,
        pseudonyms: PseudonymKey,
    ) -> Self {
        Self {
            quorum: quorum.min(witnesses.len()),
            log,
            witnesses,
            pseudonyms,
        }
    }
}

impl fmt::Debug for LogAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogAuthority")
            .field("log", &self.log.name())
            .field("witnesses", &self.witnesses.len())
            .field("quorum", &self.quorum)
            .finish_non_exhaustive()
    }
}

/// A staff read the audit log has durably recorded, checked by the key service against
/// the log's receipt. Made only by [`KeyService::verify_logged_read`].
#[derive(Clone, PartialEq, Eq)]
pub struct LoggedAccess {
    grant: RequestId,
    log_index: u64,
    conversation: ConversationId,
    seqs: Arc<BTreeSet<u64>>,
    files: Arc<BTreeSet<AttachmentId>>,
}

impl LoggedAccess {
    /// The grant.
    pub fn grant(&self) -> RequestId {
        self.grant
    }

    /// The audit log entry.
    pub fn log_index(&self) -> u64 {
        self.log_index
    }

    /// Whether the logged read covers message `seq` of `conversation`.
    pub fn covers(&self, conversation: ConversationId, seq: u64) -> bool {
        self.conversation == conversation && self.seqs.contains(&seq)
    }

    /// Whether the logged read covers file `attachment` of `conversation`.
    pub fn covers_file(&self, conversation: ConversationId, attachment: AttachmentId) -> bool {
        self.conversation == conversation && self.files.contains(&attachment)
    }
}

impl fmt::Debug for LoggedAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedAccess")
            .field("grant", &self.grant)
            .field("log_index", &self.log_index)
            .field("messages", &self.seqs.len())
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl KeyService {
    /// Checks the audit log's `receipt` for a staff read of `conversation` under `grant`
    /// and returns the access it allows (see the module docs for what is checked).
    pub fn verify_logged_read(
        &self,
        receipt: &Receipt,
        grant: RequestId,
        conversation: ConversationId,
    ) -> Result<LoggedAccess, KeyError> {
        let auth = self.log_authority.as_ref().ok_or(KeyError::NotLogged(
            "no audit log is configured for staff unwraps",
        ))?;
        let note = SignedNote::parse(receipt.checkpoint.as_bytes())
            .map_err(|_| KeyError::NotLogged("the receipt's checkpoint is malformed"))?;
        note.verify(std::slice::from_ref(&auth.log))
            .map_err(|_| KeyError::NotLogged("the checkpoint is not signed by the log's key"))?;
        if note.verified_by(&auth.witnesses).len() < auth.quorum {
            return Err(KeyError::NotLogged(
                "too few witnesses cosigned the checkpoint",
            ));
        }
        let checkpoint = Checkpoint::parse(&note.text)
            .map_err(|_| KeyError::NotLogged("the receipt's checkpoint is malformed"))?;
        let leaf = leaf_hash(&receipt.entry);
        if leaf != receipt.leaf_hash {
            return Err(KeyError::NotLogged(
                "the entry does not hash to the receipt's leaf",
            ));
        }
        verify_inclusion(
            receipt.index,
            checkpoint.size,
            &leaf,
            &receipt.proof,
            &checkpoint.root,
        )
        .map_err(|_| KeyError::NotLogged("the entry is not in the checkpoint's tree"))?;
        let view = EntryView::parse(&receipt.entry)
            .map_err(|_| KeyError::NotLogged("the entry does not decode"))?;
        let entry = &view.event;
        let scope = |name: &str| {
            entry
                .scope
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if entry.kind != EventKind::AccessRead || scope("request") != Some(&grant.to_string()) {
            return Err(KeyError::NotLogged(
                "the entry does not record a read under this grant",
            ));
        }
        let key = auth
            .pseudonyms
            .subject_key(&Subject::Conversation(conversation));
        if !key.recognises_conversation(&view) {
            return Err(KeyError::NotLogged(
                "the entry does not name this conversation",
            ));
        }
        let seqs = scope("messages")
            .unwrap_or("")
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<BTreeSet<u64>, _>>()
            .map_err(|_| KeyError::NotLogged("the entry's message list is malformed"))?;
        let files = scope("attachments")
            .unwrap_or("")
            .split_whitespace()
            .map(str::parse::<AttachmentId>)
            .collect::<Result<BTreeSet<AttachmentId>, _>>()
            .map_err(|_| KeyError::NotLogged("the entry's file list is malformed"))?;
        Ok(LoggedAccess {
            grant,
            log_index: receipt.index,
            conversation,
            seqs: Arc::new(seqs),
            files: Arc::new(files),
        })
    }
}
