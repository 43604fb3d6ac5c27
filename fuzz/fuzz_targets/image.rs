//! Uploads as a member sends them: what the server computes of an upload (sniffing, the
//! hashes, and for images decoding within the limits for the PDQ hash) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custodia_service::upload_hashes(data);
});
