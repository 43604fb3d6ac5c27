//! NATS notices as another node (or anyone on the subject) sends them: decoding never
//! panics, and a decoded notice re-encodes to the same bytes (the codec is canonical).
#![no_main]

use custodia_fanout_nats::Notice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(notice) = Notice::decode(data) {
        assert_eq!(
            notice.encode(),
            data,
            "a decoded notice re-encodes to its bytes"
        );
    }
});
