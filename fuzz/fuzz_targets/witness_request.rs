//! `add-checkpoint` request bodies from anyone on the network: parsing never panics, and
//! what parses re-encodes to the same bytes.
#![no_main]

use custodia_tlog::AddCheckpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AddCheckpoint::parse(data) {
        assert_eq!(req.to_bytes(), data);
    }
});
