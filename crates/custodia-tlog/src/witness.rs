//! The body of a C2SP `tlog-witness` `add-checkpoint` request (c2sp.org/tlog-witness): an
//! old size line, up to 63 consistency proof lines, an empty line, then a signed
//! checkpoint note.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Hash, MAX_NOTE_BYTES, NoteError};

/// The most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// Parses a request body. Each error names what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES + (MAX_PROOF_LINES + 2) * 64 {
            return Err(NoteError::Malformed("the request is too large"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        let (old_line, mut rest) = s
            .split_once('\n')
            .ok_or(NoteError::Malformed("no old size line"))?;
        let old = old_line
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or(NoteError::Malformed(
                "the first line must be 'old <size>' in decimal without leading zeros",
            ))?;
        let mut proof = Vec::new();
        loop {
            let (line, tail) = rest
                .split_once('\n')
                .ok_or(NoteError::Malformed("no empty line before the checkpoint"))?;
            rest = tail;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(NoteError::Malformed("more than 63 consistency proof lines"));
            }
            let hash: Hash = B64
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or(NoteError::Malformed(
                    "a consistency proof line must be base64 of 32 bytes",
                ))?;
            proof.push(hash);
        }
        if rest.is_empty() {
            return Err(NoteError::Malformed("no checkpoint after the empty line"));
        }
        Ok(Self {
            old,
            proof,
            checkpoint: rest.to_owned(),
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out.into_bytes()
    }
}

/// An ASCII decimal without leading zeros ("0" alone is zero).
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if ok { s.parse().ok() } else { None }
}
