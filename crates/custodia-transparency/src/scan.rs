//! A member's scan of the log for the entries about them, and its comparison with the
//! access notices the server lists.
//!
//! The member's client holds their [`TagKey`]; it reads every entry of a witnessed
//! checkpoint (the caller fetches and verifies them) and keeps those that name the member:
//! directly (a read told at once, a report they filed), or through a `notice.released`
//! entry naming an earlier read whose notice was deferred. Every read found must have a
//! notice in the list; the scan says which do not.

use std::collections::{BTreeMap, BTreeSet};

use crate::{EntryView, EventKind, TagKey};

/// An entry that names the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its index in the log.
    pub index: u64,
    /// What it records.
    pub kind: EventKind,
    /// When (Unix ms).
    pub time_ms: i64,
    /// Its reason code, if any.
    pub reason: Option<String>,
    /// Its case, if any.
    pub case: Option<String>,
}

/// A scan in progress over the log's entries, in order.
#[derive(Debug)]
pub struct HistoryScan {
    key: TagKey,
    found: Vec<Found>,
    /// Reads named by `notice.released` entries about the member: read index → release
    /// entry index.
    released: BTreeMap<u64, u64>,
    entries: u64,
}

/// What a scan found, compared with the server's notice list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCheck {
    /// How many entries were scanned.
    pub entries: u64,
    /// Every entry naming the member, in log order.
    pub found: Vec<Found>,
    /// The log indices of reads of the member's messages (told at once, or released).
    pub reads: BTreeSet<u64>,
    /// Reads in the log with no notice in the list: what the server kept from the member.
    pub missing: Vec<u64>,
    /// Notices whose log entry the scan cannot tie to the member (a deferred read whose
    /// release the log does not record yet, or a notice naming an unrelated entry).
    pub unconfirmed: Vec<u64>,
}

impl HistoryScan {
    /// A scan for the member whose key is `key`.
    pub fn new(key: TagKey) -> Self {
        Self {
            key,
            found: Vec::new(),
            released: BTreeMap::new(),
            entries: 0,
        }
    }

    /// Looks at entry `index` (the next in the log). Entries that do not decode are not
    /// about anyone (the caller's verification refuses a log holding one).
    pub fn visit(&mut self, index: u64, entry: &[u8]) {
        self.entries += 1;
        let Ok(view) = EntryView::parse(entry) else {
            return;
        };
        if !self.key.recognises_user(&view) {
            return;
        }
        let e = view.event;
        if e.kind == EventKind::NoticeReleased
            && let Some(read) = e
                .scope
                .iter()
                .find(|(k, _)| k == "entry")
                .and_then(|(_, v)| v.parse::<u64>().ok())
        {
            self.released.entry(read).or_insert(index);
        }
        self.found.push(Found {
            index,
            kind: e.kind,
            time_ms: e.time.as_millis(),
            reason: e.reason,
            case: e.case,
        });
    }

    /// Compares what the scan found with the log indices of the notices the server
    /// lists.
    pub fn check(self, notices: impl IntoIterator<Item = u64>) -> HistoryCheck {
        let listed: BTreeSet<u64> = notices.into_iter().collect();
        let mut reads: BTreeSet<u64> = self
            .found
            .iter()
            .filter(|f| f.kind == EventKind::AccessRead)
            .map(|f| f.index)
            .collect();
        // A release names a read before it: a later index would be a forged release.
        reads.extend(
            self.released
                .iter()
                .filter(|(read, release)| read < release)
                .map(|(read, _)| *read),
        );
        HistoryCheck {
            entries: self.entries,
            missing: reads.difference(&listed).copied().collect(),
            unconfirmed: listed.difference(&reads).copied().collect(),
            reads,
            found: self.found,
        }
    }
}
