//! The public side of the audit log, shared by the server, auditors and members' clients:
//!
//! - `entry` — [`AuditEvent`] and its canonical encodings: the public entry (subjects as
//!   tags only their own key recognises) and the full record kept beside it.
//! - `report` — [`ReportBuilder`]: the transparency report over a [`Period`], from the
//!   entries alone, and [`report_html`], its self-contained page.
//! - `scan` — [`HistoryScan`]: a member's scan for the entries about them, compared with
//!   the access notices the server lists.
//!
//! No I/O: callers fetch and verify the log's tiles, and hand the entries here.

mod entry;
mod report;
mod scan;

pub use entry::{
    Actor, AuditEvent, EntryError, EntryView, Event, EventKind, Pseudonym, PseudonymKey,
    SALT_BYTES, Subject, TagKey,
};
pub use report::{Period, PeriodError, ReportBuilder, report_html};
pub use scan::{Found, HistoryCheck, HistoryScan};
