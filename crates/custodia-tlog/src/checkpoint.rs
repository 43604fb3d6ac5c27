//! C2SP checkpoints (c2sp.org/tlog-checkpoint): the note text of a signed tree head.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Hash, NoteError};

/// A tree head: origin, size and root hash (and any extension lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `example.org/custodia/audit`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash at `size`.
    pub root: Hash,
    /// Opaque extension lines (not recommended; kept as given).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses checkpoint note text.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text.strip_suffix('\n').ok_or(NoteError::Malformed(
            "checkpoint text must end with a newline",
        ))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::Malformed("the origin line is empty"))?;
        let size = lines
            .next()
            .ok_or(NoteError::Malformed("no tree size line"))?;
        let size = crate::witness::parse_decimal(size).ok_or(NoteError::Malformed(
            "the tree size must be decimal without leading zeros, below 2^64",
        ))?;
        let root = lines
            .next()
            .ok_or(NoteError::Malformed("no root hash line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed(
                "the root hash must be base64 of 32 bytes",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Malformed("extension lines must not be empty"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

impl fmt::Display for Checkpoint {
    /// The note text: origin, size, base64 root, extensions, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )?;
        for e in &self.extensions {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}
