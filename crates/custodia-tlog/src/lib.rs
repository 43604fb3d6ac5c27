//! The transparency log's pure core: RFC 6962 / RFC 9162 Merkle hashing and proofs, and
//! the C2SP signed-note and checkpoint formats. No I/O: storage, serving and witnessing
//! build on these.
//!
//! Layout:
//! - `merkle` — leaf and node hashes, tree heads, inclusion and consistency proofs
//!   (generation over a [`SubtreeSource`], and verification).

mod merkle;

pub use merkle::{
    EMPTY_ROOT, Hash, ProofError, SubtreeSource, consistency_proof, inclusion_proof, leaf_hash,
    node_hash, root_hash, verify_consistency, verify_inclusion,
};
