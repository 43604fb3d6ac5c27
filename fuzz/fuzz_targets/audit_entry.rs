//! Audit entries and records as an auditor, a member's scan or a report reads them from a
//! log: decoding never panics, a decoded record re-encodes to the same bytes (the encoding
//! is canonical), and neither the scan nor the report panics on any entry.
#![no_main]

use custodia_audit::{AuditEvent, EntryView};
use custodia_transparency::{HistoryScan, Period, ReportBuilder, TagKey, report_html};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = EntryView::parse(data);
    if let Ok(event) = AuditEvent::from_record(data) {
        assert_eq!(event.record().expect("a decoded event encodes"), data);
    }
    let mut scan = HistoryScan::new(TagKey::from_bytes([7; 32]));
    scan.visit(0, data);
    let _ = scan.check([0]);
    if let Ok(period) = Period::parse("1970-01-01", "2100-12-31") {
        let mut report = ReportBuilder::new(period);
        report.visit(data);
        let _ = report_html(&report.finish("fuzz/log", 1, &[0; 32]));
    }
});
