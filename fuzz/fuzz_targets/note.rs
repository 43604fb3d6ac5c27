//! Signed notes and checkpoints from untrusted bytes (a served checkpoint, a witness
//! request, a state file): parsing and verifying never panic, and what parses re-encodes.
#![no_main]

use custodia_tlog::{Checkpoint, NoteVerifier, SignedNote};
use libfuzzer_sys::fuzz_target;

// golang.org/x/mod/sumdb/note's published example key.
const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = SignedNote::parse(data) {
        let known = [NoteVerifier::parse(VKEY).expect("the published key parses")];
        let _ = note.verify(&known);
        let _ = note.verified_by(&known);
        // A parsed note prints back to the same bytes.
        assert_eq!(note.to_string().as_bytes(), data);
        if let Ok(cp) = Checkpoint::parse(&note.text) {
            assert_eq!(cp.to_string(), note.text);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = NoteVerifier::parse(text);
        let _ = custodia_tlog::NoteSigner::from_text(text);
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_string(), text);
        }
    }
});
