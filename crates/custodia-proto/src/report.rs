//! The transparency report: what the audit log's public entries say about a period,
//! computed by anyone from the tiles (`custodia log report`) and served to staff
//! (`GET /v1/staff/transparency-report`); for one checkpoint and period both are the same
//! bytes ([`TransparencyReport::to_json`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The report's format name.
pub const REPORT_FORMAT: &str = "custodia-transparency-report/v1";

/// A transparency report over a period, pinned to the checkpoint it was computed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransparencyReport {
    /// [`REPORT_FORMAT`].
    pub format: String,
    /// The log's origin (its checkpoint's first line).
    pub log: String,
    /// How many entries the checkpoint covers; the report reads all of them.
    pub checkpoint_size: u64,
    /// The checkpoint's root hash, hex.
    pub checkpoint_root: String,
    /// The first day of the period (UTC, YYYY-MM-DD).
    pub from: String,
    /// The last day of the period, included.
    pub to: String,
    /// How many entries fall in the period.
    pub entries_in_period: u64,
    /// Legal requests received (legal cases opened).
    pub legal_requests: LegalRequests,
    /// Emergency disclosures: access requests with reason `emergency_disclosure`.
    pub emergency_disclosures: Disclosures,
    /// Preservation holds placed.
    pub preservation_holds: u64,
    /// Staff reads of messages, by reason code.
    pub staff_reads: StaffReads,
    /// Cases opened by members' reports, by category.
    pub member_reports: Counted,
    /// Cases opened by text rules, by category.
    pub text_rule_signals: Counted,
    /// Uploads blocked because they matched a hash list.
    pub hash_list_matches: u64,
    /// Access requests made, by reason code, and how many were denied.
    pub access_requests: AccessRequests,
    /// Grants revoked before their end.
    pub grants_revoked: u64,
    /// Reads whose deferred notices were released to the members.
    pub notices_released: u64,
}

/// Legal requests, in all and by process type and by country.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegalRequests {
    /// The totals.
    #[serde(flatten)]
    pub all: LegalRow,
    /// Share of requests for which some data was disclosed (0 to 1, four decimals).
    pub disclosure_rate: f64,
    /// Share of requests that came with a non-disclosure order.
    pub nondisclosure_share: f64,
    /// By process type (`subpoena`, `court_order`, …).
    pub by_process: BTreeMap<String, LegalRow>,
    /// By country (ISO 3166-1 alpha-2).
    pub by_country: BTreeMap<String, LegalRow>,
}

/// Counts of legal requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalRow {
    /// Requests received.
    pub requests: u64,
    /// Accounts they specified.
    pub accounts_specified: u64,
    /// Requests for which some data was disclosed (a staff read under the case).
    pub with_disclosure: u64,
    /// Requests that came with a non-disclosure order.
    pub with_nondisclosure_order: u64,
}

/// Requests of one kind, and how many led to a disclosure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosures {
    /// Requests made.
    pub requests: u64,
    /// Requests under which staff read data.
    pub with_disclosure: u64,
}

/// Staff reads of members' messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffReads {
    /// Reads.
    pub reads: u64,
    /// Messages read, summed over reads.
    pub messages: u64,
    /// Members told (or to be told) of a read, summed over reads.
    pub accounts: u64,
    /// Reads whose notices were deferred (a non-disclosure order, an emergency review).
    pub notices_deferred: u64,
    /// Reads by reason code.
    pub by_reason: BTreeMap<String, u64>,
}

/// A count, in all and by category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// In all.
    pub total: u64,
    /// By category.
    pub by_category: BTreeMap<String, u64>,
}

/// Access requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequests {
    /// Requests made.
    pub total: u64,
    /// By reason code.
    pub by_reason: BTreeMap<String, u64>,
    /// Requests denied by an approver.
    pub denied: u64,
}

impl TransparencyReport {
    /// The report as JSON (pretty, fields in a fixed order, maps sorted, a final newline,
    /// printable ASCII only: every other character of a string as a `\u` escape, so text
    /// from the log cannot reach a terminal raw): the same report is the same bytes
    /// wherever it is computed.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        let pretty = serde_json::to_string_pretty(self).unwrap_or_default();
        let mut out = String::with_capacity(pretty.len() + 1);
        for c in pretty.chars() {
            // Outside strings the JSON is ASCII; serde escapes controls but DEL and
            // non-ASCII (bidi overrides, invisible characters) stay raw.
            if c.is_ascii() && c != '\u{7f}' {
                out.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out.push('\n');
        out
    }
}
