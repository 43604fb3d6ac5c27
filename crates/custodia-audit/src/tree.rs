//! The Merkle tree over the stored log, computed once above the storage seam for every
//! backend: which tile-level hashes an append completes, roots, inclusion and consistency
//! proofs, and the tiles served to auditors. A store only keeps leaves and the hashes it
//! is given, and answers the hashes a computation needs in one query.
//!
//! Appends from one node are combined: whoever finds the log free appends everything
//! queued in one store commit, so concurrent appenders share commits as they did when
//! the store batched them. Appends from several nodes land only at the end each saw
//! (the store's compare-and-append), and retry from the new end on a conflict.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use custodia_store::{HashRange, LogAppend, LogStore, StoreError, StoreResult, TileHash};
use custodia_tlog::{Hash, SubtreeSource, TILE_WIDTH, Tile, subtree_from_tile_levels, tile_root};
use tokio::sync::oneshot;

/// How often an append starts again after another node appended first.
const APPEND_ATTEMPTS: usize = 32;

/// The log's tree over a [`LogStore`].
#[derive(Clone)]
pub struct LogTree {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn LogStore>,
    queue: Mutex<Vec<Pending>>,
    appending: Arc<tokio::sync::Mutex<()>>,
}

struct Pending {
    entries: Vec<LogAppend>,
    done: oneshot::Sender<StoreResult<u64>>,
}

impl LogTree {
    /// The tree of the log kept in `store`.
    pub fn new(store: Arc<dyn LogStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                queue: Mutex::new(Vec::new()),
                appending: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// The store the tree reads and appends to.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.inner.store
    }

    /// Appends `entries` in order, in one durable commit (possibly shared with concurrent
    /// appends), with the tile-level hashes they complete; returns the index of the first.
    pub async fn append(&self, entries: Vec<LogAppend>) -> StoreResult<u64> {
        let (done, answer) = oneshot::channel();
        self.queue().push(Pending { entries, done });
        let turn = self.inner.appending.clone().lock_owned().await;
        let batch = std::mem::take(&mut *self.queue());
        if batch.is_empty() {
            // An earlier appender took ours with its batch.
            drop(turn);
        } else {
            // In its own task, so a caller that gives up cannot strand the others.
            let inner = self.inner.clone();
            tokio::spawn(async move {
                inner.append_batch(batch).await;
                drop(turn);
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("the log append was abandoned".into())))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // A panic while holding the queue's lock leaves a list, still whole.
        self.inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The root hash of the first `size` entries.
    pub async fn root(&self, size: u64) -> StoreResult<Hash> {
        self.over_tiles(|s| custodia_tlog::root_hash(s, size)).await
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> StoreResult<Vec<Hash>> {
        self.over_tiles(|s| proof(custodia_tlog::inclusion_proof(s, index, size)?))
            .await
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> StoreResult<Vec<Hash>> {
        self.over_tiles(|s| proof(custodia_tlog::consistency_proof(s, old, new)?))
            .await
    }

    /// The bytes of `tile` (c2sp.org/tlog-tiles): hashes of a tile level, or an entry
    /// bundle of uint16-length-prefixed entries. The caller checks it lies inside a signed
    /// tree. A tile the store cannot fill whole is `Corrupt`, naming what is missing: a
    /// short tile is never served (it would be cached as immutable).
    pub async fn tile(&self, tile: &Tile) -> StoreResult<Vec<u8>> {
        let width = u64::from(tile.width);
        let missing = |what: &str| {
            StoreError::Corrupt(format!(
                "tile {} is incomplete: {what} are missing from the log's store",
                tile.path()
            ))
        };
        match tile.level {
            Some(level) => {
                let range = HashRange {
                    level,
                    start: tile.start(),
                    count: width,
                };
                let hashes = self.store().log_hashes(vec![range]).await?;
                let hashes = hashes.into_iter().next().unwrap_or_default();
                if hashes.len() as u64 != width {
                    return Err(missing("hashes"));
                }
                Ok(hashes.concat())
            }
            None => {
                let entries = self.store().log_entries(tile.start(), width).await?;
                if entries.len() as u64 != width {
                    return Err(missing("entries"));
                }
                let mut out = Vec::new();
                for e in entries {
                    // Appends are limited to u16::MAX bytes, so every entry fits its prefix.
                    let len = u16::try_from(e.len()).map_err(|_| {
                        StoreError::Corrupt("an entry is longer than a bundle allows".into())
                    })?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&e);
                }
                Ok(out)
            }
        }
    }

    /// Runs a proof computation twice: once to learn which stored hashes it needs, then,
    /// after fetching them all in one query, for its answer. A proof's shape depends only
    /// on its sizes and indices, never on hash values, so both runs ask for the same.
    async fn over_tiles<T>(&self, f: impl Fn(&Source) -> StoreResult<T>) -> StoreResult<T> {
        let plan = Source::Planning(Default::default());
        f(&plan)?;
        let Source::Planning(wanted) = plan else {
            unreachable!("the plan was made planning")
        };
        let ranges: Vec<HashRange> = wanted.into_inner().into_iter().collect();
        let found = self.store().log_hashes(ranges.clone()).await?;
        f(&Source::Answering(ranges.into_iter().zip(found).collect()))
    }
}

impl Inner {
    /// Appends a batch of queued appends in one commit and answers each.
    async fn append_batch(&self, batch: Vec<Pending>) {
        let mut all = Vec::new();
        let mut answers = Vec::new();
        for p in batch {
            answers.push((p.entries.len() as u64, p.done));
            all.extend(p.entries);
        }
        let result = self.append_at_end(all).await;
        let mut next = result.as_ref().map_or(0, |first| *first);
        for (count, done) in answers {
            // An appender that stopped waiting is not told.
            let _ = done.send(result.clone().map(|_| next));
            next += count;
        }
    }

    async fn append_at_end(&self, entries: Vec<LogAppend>) -> StoreResult<u64> {
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf).collect();
        let mut attempt = 0;
        loop {
            let at = self.store.log_size().await?;
            let edges = edges(at, leaves.len() as u64);
            let stored = self.store.log_hashes(edges.clone()).await?;
            let completed = completed(&leaves, &edges, &stored)?;
            match self
                .store
                .append_entries(at, entries.clone(), completed)
                .await
            {
                Err(StoreError::Conflict) if attempt < APPEND_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(at),
            }
        }
    }
}

/// The hashes already stored that appending `n` leaves at index `at` needs to complete
/// tile-level hashes: at each tile level where a group of 256 fills up, the start of that
/// group up to where the level ends now.
pub(crate) fn edges(at: u64, n: u64) -> Vec<HashRange> {
    let mut out = Vec::new();
    let (mut before, mut after) = (at, at + n);
    let mut level = 0u8;
    while after / TILE_WIDTH > before / TILE_WIDTH {
        let start = before / TILE_WIDTH * TILE_WIDTH;
        out.push(HashRange {
            level,
            start,
            count: before - start,
        });
        (before, after) = (before / TILE_WIDTH, after / TILE_WIDTH);
        level += 1;
    }
    out
}

/// The tile-level hashes that appending `leaves` completes, given the hashes of `edges`
/// (from [`edges`]) as stored.
pub(crate) fn completed(
    leaves: &[Hash],
    edges: &[HashRange],
    stored: &[Vec<Hash>],
) -> StoreResult<Vec<TileHash>> {
    let mut out = Vec::new();
    let mut new = leaves.to_vec();
    for (range, have) in edges.iter().zip(stored) {
        if have.len() as u64 != range.count {
            return Err(StoreError::Corrupt(format!(
                "tile level {} is missing hashes before {}",
                range.level,
                range.start + range.count
            )));
        }
        let layer: Vec<Hash> = have.iter().chain(&new).copied().collect();
        let first = range.start / TILE_WIDTH;
        new = layer
            .chunks_exact(TILE_WIDTH as usize)
            .map(tile_root)
            .collect();
        out.extend(new.iter().enumerate().map(|(k, hash)| TileHash {
            level: range.level + 1,
            index: first + k as u64,
            hash: *hash,
        }));
    }
    Ok(out)
}

/// Maps a refused proof request to the seam's error.
fn proof<T>(r: Result<T, custodia_tlog::ProofError>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Backend(e.to_string()))
}

/// Subtree hashes for a proof computation: first recording what it needs, then answering
/// from what one query fetched.
enum Source {
    Planning(std::cell::RefCell<BTreeSet<HashRange>>),
    Answering(HashMap<HashRange, Vec<Hash>>),
}

impl SubtreeSource for Source {
    type Error = StoreError;
    fn subtree(&self, level: u8, index: u64) -> StoreResult<Hash> {
        subtree_from_tile_levels(level, index, |level, start, count| {
            let range = HashRange {
                level,
                start,
                count,
            };
            match self {
                Source::Planning(wanted) => {
                    wanted.borrow_mut().insert(range);
                    Ok(vec![[0; 32]; count as usize])
                }
                Source::Answering(found) => found
                    .get(&range)
                    .filter(|h| h.len() as u64 == count)
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Backend(format!(
                            "the log holds no hashes at tile level {level} from {start}: \
                             it is shorter than asked"
                        ))
                    }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_tlog::{leaf_hash, node_hash};
    use proptest::prelude::*;

    /// Every hash of every tile level above the leaves, computed the slow way.
    fn naive_levels(leaves: &[Hash]) -> Vec<Vec<Hash>> {
        let mut levels = vec![leaves.to_vec()];
        loop {
            let below = levels.last().unwrap();
            let next: Vec<Hash> = below
                .chunks_exact(TILE_WIDTH as usize)
                .map(|c| {
                    let mut layer = c.to_vec();
                    while layer.len() > 1 {
                        layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
                    }
                    layer[0]
                })
                .collect();
            if next.is_empty() {
                return levels;
            }
            levels.push(next);
        }
    }

    proptest! {
        /// Appending in any batches completes exactly the tile-level hashes a whole
        /// computation has, each once.
        #[test]
        fn completion_matches_the_whole_tree(batches in proptest::collection::vec(1u64..700, 1..12)) {
            let total: u64 = batches.iter().sum();
            let leaves: Vec<Hash> = (0..total).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut levels: Vec<Vec<Hash>> = vec![Vec::new()];
            let mut at = 0u64;
            for n in batches {
                let new = &leaves[at as usize..(at + n) as usize];
                let edges = edges(at, n);
                let stored: Vec<Vec<Hash>> = edges
                    .iter()
                    .map(|r| levels[r.level as usize][r.start as usize..(r.start + r.count) as usize].to_vec())
                    .collect();
                levels[0].extend_from_slice(new);
                for t in completed(new, &edges, &stored).unwrap() {
                    let level = t.level as usize;
                    if levels.len() <= level {
                        levels.push(Vec::new());
                    }
                    prop_assert_eq!(levels[level].len() as u64, t.index, "in order, each once");
                    levels[level].push(t.hash);
                }
                at += n;
            }
            prop_assert_eq!(levels, naive_levels(&leaves));
        }
    }

    #[test]
    fn a_missing_stored_hash_is_corrupt() {
        let leaves = vec![[1; 32]; 10];
        let edges = edges(250, 10);
        assert_eq!(edges.len(), 1);
        assert!(matches!(
            completed(&leaves, &edges, &[vec![[0; 32]; 249]]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
