//! Merkle hashing and proofs: published RFC 6962 test vectors, and property tests
//! against a naive recomputation.

use custodia_tlog::{
    EMPTY_ROOT, Hash, ProofError, SubtreeSource, consistency_proof, inclusion_proof, leaf_hash,
    node_hash, root_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// Leaf hashes in memory; subtree hashes computed from them.
struct Leaves(Vec<Hash>);

impl SubtreeSource for Leaves {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = index as usize * width;
        Ok(naive_root(&self.0[start..start + width]))
    }
}

/// MTH straight from RFC 6962 §2.1, on slices: independent of the code under test.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn h(hex: &str) -> Hash {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

// The Certificate Transparency reference set (also in transparency-dev/merkle
// proof/verify_test.go): eight leaves, the root of every prefix, and proofs.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/// (leaf index, tree size, proof)
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];
/// (old size, new size, proof)
const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn reference() -> Leaves {
    Leaves(
        LEAVES
            .iter()
            .map(|l| {
                let bytes: Vec<u8> = (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                    .collect();
                leaf_hash(&bytes)
            })
            .collect(),
    )
}

#[test]
fn published_roots() {
    let tree = reference();
    assert_eq!(
        root_hash(&tree, 0).unwrap(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    for (n, root) in ROOTS.iter().enumerate() {
        assert_eq!(
            root_hash(&tree, n as u64 + 1).unwrap(),
            h(root),
            "size {}",
            n + 1
        );
    }
}

#[test]
fn published_inclusion_proofs_are_generated_and_verify() {
    let tree = reference();
    for (index, size, proof) in INCLUSION {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap().unwrap(),
            expected,
            "leaf {index} of {size}"
        );
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(index, size, &tree.0[index as usize], &expected, &root).unwrap();
    }
}

#[test]
fn published_consistency_proofs_are_generated_and_verify() {
    let tree = reference();
    for (old, new, proof) in CONSISTENCY {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            consistency_proof(&tree, old, new).unwrap().unwrap(),
            expected,
            "{old} -> {new}"
        );
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        verify_consistency(old, new, &r1, &r2, &expected).unwrap();
        assert!(
            verify_consistency(old, new, &r2, &r1, &expected).is_err(),
            "swapped roots"
        );
    }
}

#[test]
fn trivial_and_impossible_cases() {
    let (a, b) = (h(ROOTS[0]), h(ROOTS[1]));
    assert_eq!(verify_consistency(0, 0, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &a, &b, &[]),
        Ok(()),
        "the empty tree precedes everything"
    );
    assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(3, 3, &a, &b, &[]),
        Err(ProofError::Mismatch)
    );
    assert_eq!(
        verify_consistency(3, 3, &a, &a, &[a]),
        Err(ProofError::WrongLength)
    );
    assert!(
        verify_consistency(4, 3, &a, &b, &[]).is_err(),
        "time travel"
    );
    assert_eq!(
        verify_consistency(1, 2, &a, &b, &[]),
        Err(ProofError::WrongLength)
    );
    assert!(verify_inclusion(0, 0, &a, &[], &a).is_err());
    assert!(verify_inclusion(2, 1, &a, &[], &a).is_err());
    assert_eq!(
        verify_inclusion(0, 1, &a, &[], &a),
        Ok(()),
        "a one-leaf tree's root is its leaf"
    );
    assert!(inclusion_proof(&reference(), 8, 8).unwrap().is_err());
    assert!(consistency_proof(&reference(), 5, 4).unwrap().is_err());
}

fn leaves(n: usize) -> Leaves {
    Leaves(
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_inclusion_proof_verifies_and_wrong_ones_do_not(n in 1usize..3000, pick in any::<u64>(), flip in any::<usize>()) {
        let tree = leaves(n);
        let index = pick % n as u64;
        let root = naive_root(&tree.0);
        prop_assert_eq!(root_hash(&tree, n as u64).unwrap(), root);
        let proof = inclusion_proof(&tree, index, n as u64).unwrap().unwrap();
        let leaf = tree.0[index as usize];
        prop_assert_eq!(verify_inclusion(index, n as u64, &leaf, &proof, &root), Ok(()));

        // Wrong index, size, leaf, root, or any flipped proof bit: refused.
        if n > 1 {
            let other = (index + 1) % n as u64;
            prop_assert!(verify_inclusion(other, n as u64, &leaf, &proof, &root).is_err());
            prop_assert!(verify_inclusion(index, n as u64, &tree.0[other as usize], &proof, &root).is_err());
        }
        // A tree of twice (or half) the size has a different depth. (Size ± 1 can share a
        // proof's shape; the size is bound to the root by the signed checkpoint.)
        prop_assert!(verify_inclusion(index, 2 * n as u64, &leaf, &proof, &root).is_err());
        if index < n as u64 / 2 {
            prop_assert!(verify_inclusion(index, n as u64 / 2, &leaf, &proof, &root).is_err());
        }
        let mut other_root = root;
        other_root[0] ^= 1;
        prop_assert!(verify_inclusion(index, n as u64, &leaf, &proof, &other_root).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = flip % bad.len();
            bad[i][flip % 32] ^= 1 << (flip % 8);
            prop_assert!(verify_inclusion(index, n as u64, &leaf, &bad, &root).is_err());
            prop_assert!(verify_inclusion(index, n as u64, &leaf, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(index, n as u64, &leaf, &longer, &root).is_err());
    }

    #[test]
    fn every_consistency_proof_verifies_and_wrong_ones_do_not(n in 1usize..3000, pick in any::<u64>(), flip in any::<usize>()) {
        let tree = leaves(n);
        let m = 1 + pick % n as u64;
        let (old_root, new_root) = (naive_root(&tree.0[..m as usize]), naive_root(&tree.0));
        let proof = consistency_proof(&tree, m, n as u64).unwrap().unwrap();
        prop_assert_eq!(verify_consistency(m, n as u64, &old_root, &new_root, &proof), Ok(()));

        if m < n as u64 {
            // A different old tree (a fork) of the same size is refused.
            let mut forked = tree.0[..m as usize].to_vec();
            forked[flip % m as usize][0] ^= 1;
            prop_assert!(verify_consistency(m, n as u64, &naive_root(&forked), &new_root, &proof).is_err());
            prop_assert!(verify_consistency(m, n as u64, &new_root, &old_root, &proof).is_err());
            let mut bad = proof.clone();
            let i = flip % bad.len();
            bad[i][flip % 32] ^= 1;
            prop_assert!(verify_consistency(m, n as u64, &old_root, &new_root, &bad).is_err());
            prop_assert!(verify_consistency(m, n as u64, &old_root, &new_root, &proof[..proof.len() - 1]).is_err());
            if m > 1 {
                prop_assert!(verify_consistency(m - 1, n as u64, &old_root, &new_root, &proof).is_err());
            }
        }
    }
}

/// `MemoryTree` answers like the naive computation, and refuses subtrees beyond its leaves.
#[test]
fn a_memory_tree_agrees_with_the_naive_root() {
    let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let tree = custodia_tlog::MemoryTree(leaves.clone());
    for size in [1u64, 2, 255, 256, 257, 300] {
        assert_eq!(
            root_hash(&tree, size).unwrap(),
            naive_root(&leaves[..size as usize])
        );
    }
    assert!(tree.subtree(9, 0).is_err(), "512 leaves are not held");
}
