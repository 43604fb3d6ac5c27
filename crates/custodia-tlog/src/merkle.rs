//! RFC 6962 / RFC 9162 Merkle trees.
//!
//! Hashing: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right); a tree of
//! n > 1 leaves splits at the largest power of two smaller than n. Proofs are generated
//! by the recursive definitions of RFC 9162 §2.1.3.1 and §2.1.4.1 and verified by the
//! algorithms of §2.1.3.2 and §2.1.4.2, which never recompute the tree.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a leaf holding `entry`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Where proof generation gets hashes of complete subtrees: the subtree at `level` and
/// `index` covers leaves `[index * 2^level, (index + 1) * 2^level)`. Level 0 is the leaf
/// hashes. A store answers from its stored tiles; tests answer from memory.
pub trait SubtreeSource {
    /// Why a hash could not be read.
    type Error;
    /// The hash of one complete subtree.
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// Leaf hashes held in memory: a [`SubtreeSource`] for small logs (a witness's tests, a
/// client's scratch tree) that hashes each subtree from its leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree(pub Vec<Hash>);

impl SubtreeSource for MemoryTree {
    type Error = ProofError;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let width = 1usize.checked_shl(u32::from(level)).unwrap_or(usize::MAX);
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(width));
        let leaves = start
            .and_then(|s| self.0.get(s..s.checked_add(width)?))
            .ok_or(ProofError::OutOfRange(
                "the subtree is beyond the leaves held",
            ))?;
        let mut layer = leaves.to_vec();
        while layer.len() > 1 {
            layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        Ok(layer[0])
    }
}

/// Why a proof was refused, or could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The index or sizes do not describe a proof that can exist.
    #[error("no such proof: {0}")]
    OutOfRange(&'static str),
    /// The proof has the wrong number of hashes for its index and sizes.
    #[error("the proof has the wrong length")]
    WrongLength,
    /// The proof does not lead to the expected root(s).
    #[error("the proof does not match the root hash")]
    Mismatch,
}

/// The largest power of two strictly smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start..end]) where `start` is a multiple of the largest power of two not larger
/// than `end - start` — true of every range the RFC's recursions visit.
fn range_hash<S: SubtreeSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let len = end - start;
    if len.is_power_of_two() {
        let level = len.trailing_zeros() as u8;
        return src.subtree(level, start >> level);
    }
    let k = split(len);
    Ok(node_hash(
        &range_hash(src, start, start + k)?,
        &range_hash(src, start + k, end)?,
    ))
}

/// The root hash of the first `size` leaves.
pub fn root_hash<S: SubtreeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        Ok(EMPTY_ROOT)
    } else {
        range_hash(src, 0, size)
    }
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1),
/// from the leaf upwards. `Ok(Err(_))` when no such proof exists.
pub fn inclusion_proof<S: SubtreeSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, ProofError>, S::Error> {
    if index >= size {
        return Ok(Err(ProofError::OutOfRange(
            "the index is not below the tree size",
        )));
    }
    let mut proof = Vec::new();
    path(src, index, 0, size, &mut proof)?;
    Ok(Ok(proof))
}

/// PATH(m, D[start..end]): pushes the proof bottom-up (deepest sibling first).
fn path<S: SubtreeSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves
/// (RFC 9162 §2.1.4.1). Empty when `old` is 0 or equal to `new`.
pub fn consistency_proof<S: SubtreeSource>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Result<Vec<Hash>, ProofError>, S::Error> {
    if old > new {
        return Ok(Err(ProofError::OutOfRange(
            "the old size is larger than the new size",
        )));
    }
    let mut proof = Vec::new();
    if old > 0 && old < new {
        subproof(src, old, 0, new, true, &mut proof)?;
    }
    Ok(Ok(proof))
}

/// SUBPROOF(m, D[start..end], b).
fn subproof<S: SubtreeSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, start + k, whole, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange(
            "the index is not below the tree size",
        ));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of
/// `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OutOfRange(
            "the old size is larger than the new size",
        ));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old == 0 {
        // The empty tree is a prefix of every tree; there is nothing to prove.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
        path.push(first);
    } else {
        path.push(first);
    }
    path.extend(rest);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*path[0], *path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}
