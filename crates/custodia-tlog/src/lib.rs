//! The transparency log's pure core: RFC 6962 / RFC 9162 Merkle hashing and proofs, and
//! the C2SP signed-note and checkpoint formats. No I/O: storage, serving and witnessing
//! build on these.
//!
//! Layout:
//! - `merkle` — leaf and node hashes, tree heads, inclusion and consistency proofs
//!   (generation over a [`SubtreeSource`], and verification).
//! - `note` — C2SP signed notes with Ed25519 keys, and the key text formats.
//! - `checkpoint` — C2SP checkpoint note text.
//! - `tile` — C2SP tile coordinates and paths; subtree hashes from tile levels.
//! - `witness` — the body of a C2SP tlog-witness `add-checkpoint` request.

mod checkpoint;
mod merkle;
mod note;
mod tile;
mod witness;

pub use checkpoint::Checkpoint;
pub use merkle::{
    EMPTY_ROOT, Hash, MemoryTree, ProofError, SubtreeSource, consistency_proof, inclusion_proof,
    leaf_hash, node_hash, root_hash, verify_consistency, verify_inclusion,
};
pub use note::{
    KeyKind, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSignature, NoteSigner, NoteVerifier,
    SignedNote,
};
pub use tile::{TILE_HEIGHT, TILE_WIDTH, Tile, subtree_from_tile_levels, tile_root};
pub use witness::{AddCheckpoint, MAX_PROOF_LINES};
