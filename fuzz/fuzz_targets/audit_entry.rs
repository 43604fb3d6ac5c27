//! Audit entries and records as an auditor reads them from a log: decoding never panics,
//! and a decoded record re-encodes to the same bytes (the encoding is canonical).
#![no_main]

use custodia_audit::{AuditEvent, EntryView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = EntryView::parse(data);
    if let Ok(event) = AuditEvent::from_record(data) {
        assert_eq!(event.record().expect("a decoded event encodes"), data);
    }
});
