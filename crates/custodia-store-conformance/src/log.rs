//! The transparency log's storage: appends across tile boundaries, roots and proofs
//! against an independent computation, the checkpoint's compare-and-set.

use custodia_store::{LogAppend, Storage, StoreError};
use custodia_tlog::{Hash, leaf_hash, node_hash, verify_consistency, verify_inclusion};

/// Entries with a record beside each: the record names what the entry holds.
fn with_records(entries: Vec<Vec<u8>>) -> Vec<LogAppend> {
    entries
        .into_iter()
        .map(|entry| LogAppend {
            record: [b"record of ".as_slice(), &entry].concat(),
            entry,
        })
        .collect()
}

fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => custodia_tlog::EMPTY_ROOT,
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

/// Appends in uneven and concurrent batches across the 256 and 65,536 boundaries; roots,
/// tiles and proofs agree with an independent computation.
#[doc(hidden)]
pub async fn appends_roots_and_proofs_across_tile_boundaries(s: &Storage) {
    let store = s.log.clone();
    let entry = |i: u64| format!("entry {i}").into_bytes();

    // Uneven batches, some concurrent, crossing the 256 and 65,536 boundaries.
    let mut next = 0u64;
    for batch in [1u64, 255, 1, 300, 4_000, 61_000, 1, 4_442] {
        let entries: Vec<Vec<u8>> = (next..next + batch).map(entry).collect();
        assert_eq!(
            store.append_entries(with_records(entries)).await.unwrap(),
            next
        );
        next += batch;
    }
    let concurrent: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                s.append_entries(with_records(vec![b"x".to_vec(), b"y".to_vec()]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut firsts = Vec::new();
    for c in concurrent {
        firsts.push(c.await.unwrap());
    }
    firsts.sort_unstable();
    assert_eq!(
        firsts,
        (0..8).map(|k| next + 2 * k).collect::<Vec<_>>(),
        "no index reused or skipped"
    );
    let size = next + 16;
    assert_eq!(store.log_size().await.unwrap(), size);
    assert_eq!(
        store.log_record(4_000).await.unwrap().as_deref(),
        Some(&b"record of entry 4000"[..]),
        "each record is kept beside its own entry"
    );
    assert_eq!(store.log_record(size).await.unwrap(), None);

    let mut leaves: Vec<Hash> = (0..next).map(|i| leaf_hash(&entry(i))).collect();
    for _ in 0..8 {
        leaves.push(leaf_hash(b"x"));
        leaves.push(leaf_hash(b"y"));
    }
    for s in [1, 256, 257, 65_536, 65_537, size] {
        assert_eq!(
            store.log_root(s).await.unwrap(),
            naive_root(&leaves[..s as usize]),
            "root at {s}"
        );
    }
    assert_eq!(
        store.tile_hashes(1, 0, 300).await.unwrap().len(),
        70_000 / 256
    );
    assert_eq!(store.tile_hashes(2, 0, 9).await.unwrap().len(), 1);

    let root = naive_root(&leaves);
    for index in [0, 255, 256, 65_535, 65_536, size - 1] {
        let p = store.log_inclusion_proof(index, size).await.unwrap();
        verify_inclusion(index, size, &leaves[index as usize], &p, &root).unwrap();
    }
    for old in [1, 256, 1_000, 65_536, size - 1] {
        let p = store.log_consistency_proof(old, size).await.unwrap();
        verify_consistency(old, size, &naive_root(&leaves[..old as usize]), &root, &p).unwrap();
    }
    assert!(
        store.log_root(size + 1).await.is_err(),
        "no root beyond the log"
    );
    assert_eq!(
        store.log_entries(size - 2, 10).await.unwrap(),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
}

/// The checkpoint moves only from the one the caller saw (compare-and-set).
#[doc(hidden)]
pub async fn the_checkpoint_only_moves_from_the_one_expected(s: &Storage) {
    let store = &s.log;
    assert_eq!(store.last_checkpoint().await.unwrap(), None);
    store
        .save_checkpoint(None, 3, "three".into())
        .await
        .unwrap();
    assert!(matches!(
        store.save_checkpoint(None, 4, "stale".into()).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.save_checkpoint(Some(2), 4, "stale".into()).await,
        Err(StoreError::Conflict)
    ));
    store
        .save_checkpoint(Some(3), 5, "five".into())
        .await
        .unwrap();
    assert_eq!(
        store.last_checkpoint().await.unwrap(),
        Some((5, "five".into()))
    );
}
