//! The proof verifiers on arbitrary indexes, sizes, hashes and proofs: never a panic, and
//! never an accepted proof of a size or index that cannot exist.
#![no_main]

use custodia_tlog::{Hash, verify_consistency, verify_inclusion};
use libfuzzer_sys::fuzz_target;

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("chunks of 32"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 + 64 {
        return;
    }
    let (head, rest) = data.split_at(16);
    let a = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
    let (roots, proof) = rest.split_at(64);
    let (x, y): (Hash, Hash) = (
        roots[..32].try_into().expect("32 bytes"),
        roots[32..].try_into().expect("32 bytes"),
    );
    let proof = hashes(proof);
    if verify_inclusion(a, b, &x, &proof, &y).is_ok() {
        assert!(a < b);
    }
    if verify_consistency(a, b, &x, &y, &proof).is_ok() {
        assert!(a <= b);
    }
});
