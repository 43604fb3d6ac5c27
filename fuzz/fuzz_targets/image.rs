//! Uploads as a member sends them: sniffing the content type and decoding an image for
//! its PDQ hash (within the decode limits) never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custodia_service::sniff_content_type(data);
    let _ = custodia_service::pdq_of_image(data);
});
