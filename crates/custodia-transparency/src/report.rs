//! The transparency report, computed from the log's public entries alone: whoever reads
//! the tiles of a checkpoint gets the same figures the server does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use custodia_core::Day;
use custodia_proto::report::{
    AccessRequests, Counted, Disclosures, LegalRequests, LegalRow, REPORT_FORMAT, StaffReads,
    TransparencyReport,
};

use crate::{EntryView, EventKind};

/// The days a report covers (UTC, both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: Day,
    to: Day,
}

/// Why a period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodError {
    /// A date is not YYYY-MM-DD.
    #[error("{0:?} is not a date: use YYYY-MM-DD")]
    BadDate(String),
    /// The period ends before it starts.
    #[error("the period ends ({to}) before it starts ({from})")]
    Backwards {
        /// The first day.
        from: String,
        /// The last day.
        to: String,
    },
}

impl Period {
    /// The days from `from` to `to` (YYYY-MM-DD, UTC), both included.
    pub fn parse(from: &str, to: &str) -> Result<Self, PeriodError> {
        let day = |s: &str| Day::parse(s, "day").map_err(|_| PeriodError::BadDate(s.to_owned()));
        let (from, to) = (day(from)?, day(to)?);
        if to < from {
            return Err(PeriodError::Backwards {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        Ok(Self { from, to })
    }

    /// Whether `ms` (Unix ms) falls on one of the period's days.
    fn contains(&self, ms: i64) -> bool {
        (self.from.start().as_millis()..=self.to.end().as_millis()).contains(&ms)
    }
}

/// One legal case, as its opening entry shows it.
struct LegalCase {
    process: String,
    country: String,
    accounts: u64,
    nondisclosure: bool,
}

/// A report being computed over the log's entries, in order.
pub struct ReportBuilder {
    period: Period,
    entries_in_period: u64,
    /// Legal cases opened in the period, by case id.
    legal: BTreeMap<String, LegalCase>,
    /// Emergency-disclosure requests made in the period.
    emergencies: BTreeSet<String>,
    /// Cases and requests under which staff read messages (at any time up to the
    /// checkpoint: a disclosure may come after the period of its request).
    read_cases: BTreeSet<String>,
    /// Legal cases opened to produce an intake's legal request: case → request.
    produced: BTreeMap<String, String>,
    read_requests: BTreeSet<String>,
    denied: BTreeSet<String>,
    staff_reads: StaffReads,
    member_reports: Counted,
    text_rule_signals: Counted,
    hash_list_matches: u64,
    access_requests: AccessRequests,
    preservation_holds: u64,
    grants_revoked: u64,
    notices_released: u64,
}

impl ReportBuilder {
    /// A report over `period`.
    pub fn new(period: Period) -> Self {
        Self {
            period,
            entries_in_period: 0,
            legal: BTreeMap::new(),
            emergencies: BTreeSet::new(),
            read_cases: BTreeSet::new(),
            produced: BTreeMap::new(),
            read_requests: BTreeSet::new(),
            denied: BTreeSet::new(),
            staff_reads: StaffReads::default(),
            member_reports: Counted::default(),
            text_rule_signals: Counted::default(),
            hash_list_matches: 0,
            access_requests: AccessRequests::default(),
            preservation_holds: 0,
            grants_revoked: 0,
            notices_released: 0,
        }
    }

    /// Counts the next entry of the log. An entry that does not decode counts for nothing
    /// (a verified log holds none).
    pub fn visit(&mut self, entry: &[u8]) {
        let Ok(EntryView { event: e, .. }) = EntryView::parse(entry) else {
            return;
        };
        let scope = |name: &str| {
            e.scope
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if e.kind == EventKind::AccessRead {
            if let Some(case) = &e.case {
                self.read_cases.insert(case.clone());
            }
            if let Some(request) = scope("request") {
                self.read_requests.insert(request.to_owned());
            }
        }
        // A case opened to produce a legal request is that request's, not another one.
        let produced_for = (e.kind == EventKind::CaseOpened && scope("kind") == Some("legal"))
            .then(|| scope("legal_request"))
            .flatten();
        if let (Some(request), Some(case)) = (produced_for, &e.case) {
            self.produced.insert(case.clone(), request.to_owned());
        }
        if !self.period.contains(e.time.as_millis()) {
            return;
        }
        self.entries_in_period += 1;
        let count = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match e.kind {
            // A read of members' messages names its reason; an auditor's read of a log
            // record has none and reads no messages.
            EventKind::AccessRead => {
                if let Some(reason) = &e.reason {
                    let r = &mut self.staff_reads;
                    r.reads += 1;
                    r.messages +=
                        scope("messages").map_or(0, |m| m.split_whitespace().count()) as u64;
                    r.accounts += count(scope("accounts"));
                    if scope("notice") == Some("deferred") {
                        r.notices_deferred += 1;
                    }
                    *r.by_reason.entry(reason.clone()).or_default() += 1;
                }
            }
            // A legal request entered at intake (or, before intake existed, a legal case
            // opened directly): what it names, counted once.
            EventKind::LegalReceived => self.legal_request(&e.case, scope),
            EventKind::CaseOpened => match scope("kind") {
                Some("legal") if produced_for.is_none() => self.legal_request(&e.case, scope),
                Some("report") => bump(&mut self.member_reports, scope("category")),
                Some("signal") => bump(&mut self.text_rule_signals, scope("category")),
                Some("hash_match") => self.hash_list_matches += 1,
                _ => {}
            },
            EventKind::RequestCreated => {
                let reason = e.reason.clone().unwrap_or_else(|| "unknown".into());
                self.access_requests.total += 1;
                if reason == "emergency_disclosure"
                    && let Some(request) = scope("request")
                {
                    self.emergencies.insert(request.to_owned());
                }
                *self.access_requests.by_reason.entry(reason).or_default() += 1;
            }
            EventKind::Decision => {
                if scope("decision") == Some("deny")
                    && let Some(request) = scope("request")
                {
                    self.denied.insert(request.to_owned());
                }
            }
            EventKind::GrantRevoked if scope("status") == Some("revoked") => {
                self.grants_revoked += 1;
            }
            EventKind::HoldPlaced => self.preservation_holds += 1,
            EventKind::NoticeReleased => self.notices_released += 1,
            _ => {}
        }
    }

    /// Counts the legal request `case` whose entry's scope is `scope`.
    fn legal_request<'a>(
        &mut self,
        case: &Option<String>,
        scope: impl Fn(&str) -> Option<&'a str>,
    ) {
        let count = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if let Some(case) = case {
            self.legal.insert(
                case.clone(),
                LegalCase {
                    process: scope("process").unwrap_or("unknown").to_owned(),
                    country: scope("country").unwrap_or("unknown").to_owned(),
                    accounts: count(scope("accounts")),
                    nondisclosure: scope("nondisclosure") == Some("yes"),
                },
            );
        }
    }

    /// The report, pinned to the checkpoint of `origin` at `size` with `root` (the entries
    /// visited must be exactly that checkpoint's).
    pub fn finish(self, origin: &str, size: u64, root: &[u8; 32]) -> TransparencyReport {
        let mut legal = LegalRequests::default();
        for (case, c) in &self.legal {
            let disclosed = self.read_cases.contains(case)
                || self
                    .produced
                    .iter()
                    .any(|(c, r)| r == case && self.read_cases.contains(c));
            for row in [
                &mut legal.all,
                legal.by_process.entry(c.process.clone()).or_default(),
                legal.by_country.entry(c.country.clone()).or_default(),
            ] {
                row.requests += 1;
                row.accounts_specified += c.accounts;
                row.with_disclosure += u64::from(disclosed);
                row.with_nondisclosure_order += u64::from(c.nondisclosure);
            }
        }
        legal.disclosure_rate = rate(legal.all.with_disclosure, legal.all.requests);
        legal.nondisclosure_share = rate(legal.all.with_nondisclosure_order, legal.all.requests);
        let mut access_requests = self.access_requests;
        access_requests.denied = self.denied.len() as u64;
        TransparencyReport {
            format: REPORT_FORMAT.into(),
            log: origin.into(),
            checkpoint_size: size,
            checkpoint_root: root.iter().map(|b| format!("{b:02x}")).collect(),
            from: self.period.from.to_string(),
            to: self.period.to.to_string(),
            entries_in_period: self.entries_in_period,
            legal_requests: legal,
            emergency_disclosures: Disclosures {
                requests: self.emergencies.len() as u64,
                with_disclosure: self
                    .emergencies
                    .iter()
                    .filter(|r| self.read_requests.contains(*r))
                    .count() as u64,
            },
            preservation_holds: self.preservation_holds,
            staff_reads: self.staff_reads,
            member_reports: self.member_reports,
            text_rule_signals: self.text_rule_signals,
            hash_list_matches: self.hash_list_matches,
            access_requests,
            grants_revoked: self.grants_revoked,
            notices_released: self.notices_released,
        }
    }
}

fn bump(c: &mut Counted, category: Option<&str>) {
    c.total += 1;
    *c.by_category
        .entry(category.unwrap_or("unknown").to_owned())
        .or_default() += 1;
}

/// `part / whole`, to four decimals; 0 when `whole` is 0.
fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// The report as one self-contained HTML page (inline style and SVG bar charts, no
/// scripts, nothing fetched), naming the checkpoint it was computed at. Every text from
/// the log is escaped.
pub fn report_html(r: &TransparencyReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Transparency report {from} to {to}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}td,th{{border-bottom:1px solid #ddd;padding:.25rem .75rem;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}code{{word-break:break-all}}svg text{{font-size:12px}}</style>\
         </head><body>\n<h1>Transparency report</h1>\n\
         <p>{from} to {to} (UTC), computed from the public entries of the audit log \
         <code>{log}</code> at its checkpoint of {size} entries, root <code>{root}</code>. \
         Anyone with the log can recompute every figure: <code>custodia log report --from {from} --to {to}</code>.</p>\n",
        from = esc(&r.from),
        to = esc(&r.to),
        log = esc(&r.log),
        size = r.checkpoint_size,
        root = esc(&r.checkpoint_root),
    );
    let l = &r.legal_requests;
    let _ = write!(
        h,
        "<h2>Legal requests</h2>\n<table><tr><th></th><th>requests</th><th>accounts specified</th>\
         <th>some data disclosed</th><th>with a non-disclosure order</th></tr>\n{}",
        legal_row("all", &l.all)
    );
    for (p, row) in &l.by_process {
        h.push_str(&legal_row(p, row));
    }
    let _ = write!(
        h,
        "</table>\n<p>Disclosure rate {:.2}%; share under non-disclosure orders {:.2}%.</p>\n",
        l.disclosure_rate * 100.0,
        l.nondisclosure_share * 100.0
    );
    h.push_str("<h3>By country</h3>\n<table><tr><th>country</th><th>requests</th><th>accounts specified</th><th>some data disclosed</th><th>with a non-disclosure order</th></tr>\n");
    for (c, row) in &l.by_country {
        h.push_str(&legal_row(c, row));
    }
    h.push_str("</table>\n");
    h.push_str(&chart(
        "Legal requests by country",
        l.by_country.iter().map(|(k, v)| (k.as_str(), v.requests)),
    ));
    let e = &r.emergency_disclosures;
    let _ = write!(
        h,
        "<h2>Emergency and preservation</h2>\n<table>\
         <tr><td>emergency disclosure requests</td><td class=\"n\">{}</td></tr>\
         <tr><td>of which some data was disclosed</td><td class=\"n\">{}</td></tr>\
         <tr><td>preservation holds placed</td><td class=\"n\">{}</td></tr></table>\n",
        e.requests, e.with_disclosure, r.preservation_holds
    );
    let s = &r.staff_reads;
    let _ = write!(
        h,
        "<h2>Staff reads of members' messages</h2>\n<table>\
         <tr><td>reads</td><td class=\"n\">{}</td></tr>\
         <tr><td>messages read</td><td class=\"n\">{}</td></tr>\
         <tr><td>members told</td><td class=\"n\">{}</td></tr>\
         <tr><td>reads whose notice was deferred</td><td class=\"n\">{}</td></tr>\
         <tr><td>deferred notices released</td><td class=\"n\">{}</td></tr></table>\n",
        s.reads, s.messages, s.accounts, s.notices_deferred, r.notices_released
    );
    h.push_str(&chart(
        "Reads by reason",
        s.by_reason.iter().map(|(k, v)| (k.as_str(), *v)),
    ));
    let _ = write!(
        h,
        "<h2>Reports and signals</h2>\n<table>\
         <tr><td>member reports</td><td class=\"n\">{}</td></tr>\
         <tr><td>text-rule signals</td><td class=\"n\">{}</td></tr>\
         <tr><td>uploads matching a hash list</td><td class=\"n\">{}</td></tr></table>\n",
        r.member_reports.total, r.text_rule_signals.total, r.hash_list_matches
    );
    h.push_str(&chart(
        "Member reports by category",
        r.member_reports
            .by_category
            .iter()
            .map(|(k, v)| (k.as_str(), *v)),
    ));
    h.push_str(&chart(
        "Text-rule signals by category",
        r.text_rule_signals
            .by_category
            .iter()
            .map(|(k, v)| (k.as_str(), *v)),
    ));
    let a = &r.access_requests;
    let _ = write!(
        h,
        "<h2>Access requests</h2>\n<table>\
         <tr><td>requests made</td><td class=\"n\">{}</td></tr>\
         <tr><td>denied</td><td class=\"n\">{}</td></tr>\
         <tr><td>grants revoked</td><td class=\"n\">{}</td></tr></table>\n",
        a.total, a.denied, r.grants_revoked
    );
    h.push_str(&chart(
        "Access requests by reason",
        a.by_reason.iter().map(|(k, v)| (k.as_str(), *v)),
    ));
    h.push_str("</body></html>\n");
    h
}

fn legal_row(name: &str, r: &LegalRow) -> String {
    format!(
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
        esc(name),
        r.requests,
        r.accounts_specified,
        r.with_disclosure,
        r.with_nondisclosure_order
    )
}

/// A horizontal bar chart as inline SVG (nothing when there are no bars).
fn chart<'a>(title: &str, bars: impl Iterator<Item = (&'a str, u64)>) -> String {
    let bars: Vec<(&str, u64)> = bars.collect();
    if bars.is_empty() {
        return String::new();
    }
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(1).max(1);
    let height = 22 * bars.len() + 8;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"{height}\" role=\"img\">",
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 22 * i + 4;
        let w = (400 * v).div_ceil(max);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"190\" y=\"{y}\" width=\"{w}\" height=\"16\" fill=\"#3b6ea8\"/>\
             <text x=\"{}\" y=\"{}\">{v}</text>",
            y + 13,
            esc(label),
            196 + w,
            y + 13
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// Escapes text for HTML content and attribute values: markup characters, and anything
/// but printable ASCII as a numeric reference (so the page is ASCII and text from the log
/// cannot reach a terminal raw).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            ' '..='~' => out.push(c),
            c => {
                let _ = write!(out, "&#x{:x};", u32::from(c));
            }
        }
    }
    out
}
