//! The public side of the audit log, shared by the server, auditors and members' clients:
//!
//! - `entry` — [`AuditEvent`] and its canonical encodings: the public entry (subjects as
//!   tags only their own key recognises) and the full record kept beside it.
//!
//! No I/O: callers fetch and verify the log's tiles, and hand the entries here.

mod entry;

pub use entry::{
    Actor, AuditEvent, EntryError, EntryView, Event, EventKind, Pseudonym, PseudonymKey,
    SALT_BYTES, Subject, TagKey,
};
