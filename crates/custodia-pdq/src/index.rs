//! Matching a hash against a large list without scanning it: multi-index hashing.
//!
//! The 256 bits are cut into 16 chunks of 16 bits, each with its own table from chunk
//! value to the entries holding it. Two hashes at most 31 bits apart differ in at most
//! one bit in at least one chunk (16 chunks with 2 or more differing bits would make 32),
//! so probing every chunk's value and its 16 one-bit neighbours finds every match within
//! 31 bits, and checks only the few entries sharing a chunk.

use std::collections::HashMap;

use crate::PdqHash;

/// The largest distance the index guarantees to find.
pub const MAX_INDEXED_DISTANCE: u32 = 31;

/// A searchable list of PDQ hashes, each with a value (e.g. the list it came from).
#[derive(Default)]
pub struct PdqIndex<T> {
    entries: Vec<(PdqHash, T)>,
    tables: Vec<HashMap<u16, Vec<u32>>>,
}

impl<T> PdqIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            tables: (0..16).map(|_| HashMap::new()).collect(),
        }
    }

    /// How many hashes it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a hash.
    pub fn insert(&mut self, hash: PdqHash, value: T) {
        let at = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        for (c, table) in self.tables.iter_mut().enumerate() {
            table.entry(hash.0[c]).or_default().push(at);
        }
        self.entries.push((hash, value));
    }

    /// The closest entry within `max_distance` (at most [`MAX_INDEXED_DISTANCE`]) of
    /// `query`, with its distance.
    pub fn nearest(&self, query: &PdqHash, max_distance: u32) -> Option<(&T, u32)> {
        let max = max_distance.min(MAX_INDEXED_DISTANCE);
        let mut best: Option<(usize, u32)> = None;
        for (c, table) in self.tables.iter().enumerate() {
            let v = query.0[c];
            let probes = std::iter::once(v).chain((0..16).map(|b| v ^ (1 << b)));
            for probe in probes {
                for &i in table.get(&probe).map(Vec::as_slice).unwrap_or_default() {
                    let d = self.entries[i as usize].0.distance(query);
                    if d <= max && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((i as usize, d));
                    }
                }
            }
        }
        best.map(|(i, d)| (&self.entries[i].1, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random hash.
    fn hash(seed: u64) -> PdqHash {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut words = [0u16; 16];
        for w in &mut words {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = x as u16;
        }
        PdqHash(words)
    }

    fn flip(h: &PdqHash, bits: &[usize]) -> PdqHash {
        let mut w = h.0;
        for &b in bits {
            w[b / 16] ^= 1 << (b % 16);
        }
        PdqHash(w)
    }

    #[test]
    fn finds_every_hash_within_31_bits_and_none_beyond() {
        let mut index = PdqIndex::new();
        for i in 0..5000u64 {
            index.insert(hash(i), i);
        }
        let target = hash(1234);
        // 31 flips spread over every chunk (the hardest case: 1-2 bits per chunk).
        let spread: Vec<usize> = (0..31).map(|i| (i % 16) * 16 + i / 16).collect();
        let near = flip(&target, &spread);
        assert_eq!(near.distance(&target), 31);
        assert_eq!(index.nearest(&near, 31), Some((&1234, 31)));
        let far = flip(&target, &(0..40).map(|i| i * 6).collect::<Vec<_>>());
        assert!(far.distance(&target) > 31);
        assert_eq!(index.nearest(&far, 31).map(|(v, _)| *v), None);
        assert_eq!(index.nearest(&target, 0), Some((&1234, 0)));
    }
}
