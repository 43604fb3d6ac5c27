//! The transparency log's storage, through the one tree computation above it
//! (`custodia_audit::LogTree`): appends across tile boundaries from several appenders,
//! roots, tiles and proofs against an independent computation, the store's
//! compare-and-append and its one-query hash ranges, the checkpoint's compare-and-set.

use custodia_audit::LogTree;
use custodia_store::{HashRange, LogAppend, Storage, StoreError};
use custodia_tlog::{Hash, Tile, leaf_hash, node_hash, verify_consistency, verify_inclusion};

/// Entries with a record beside each: the record names what the entry holds.
fn with_records(entries: Vec<Vec<u8>>) -> Vec<LogAppend> {
    entries
        .into_iter()
        .map(|entry| LogAppend::new(entry.clone(), [b"record of ".as_slice(), &entry].concat()))
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

/// Appends in uneven and concurrent batches across the 256 and 65,536 boundaries, from two
/// trees over the same store (two nodes); roots, tiles and proofs agree with an independent
/// computation.
#[doc(hidden)]
pub async fn appends_roots_and_proofs_across_tile_boundaries(s: &Storage) {
    let store = LogTree::new(s.log.clone());
    let other_node = LogTree::new(s.log.clone());
    let entry = |i: u64| format!("entry {i}").into_bytes();

    // Uneven batches, some concurrent, crossing the 256 and 65,536 boundaries.
    let mut next = 0u64;
    for batch in [1u64, 255, 1, 300, 4_000, 61_000, 1, 4_442] {
        let entries: Vec<Vec<u8>> = (next..next + batch).map(entry).collect();
        assert_eq!(store.append(with_records(entries)).await.unwrap(), next);
        next += batch;
    }
    let concurrent: Vec<_> = (0..8)
        .map(|k| {
            let s = if k % 2 == 0 { &store } else { &other_node }.clone();
            tokio::spawn(async move {
                s.append(with_records(vec![b"x".to_vec(), b"y".to_vec()]))
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
    let raw = s.log.clone();
    assert_eq!(raw.log_size().await.unwrap(), size);
    assert_eq!(
        raw.log_record(4_000).await.unwrap().as_deref(),
        Some(&b"record of entry 4000"[..]),
        "each record is kept beside its own entry"
    );
    assert_eq!(raw.log_record(size).await.unwrap(), None);

    let mut leaves: Vec<Hash> = (0..next).map(|i| leaf_hash(&entry(i))).collect();
    for _ in 0..8 {
        leaves.push(leaf_hash(b"x"));
        leaves.push(leaf_hash(b"y"));
    }
    for s in [1, 256, 257, 65_536, 65_537, size] {
        assert_eq!(
            store.root(s).await.unwrap(),
            naive_root(&leaves[..s as usize]),
            "root at {s}"
        );
    }
    let range = |level, start, count| HashRange {
        level,
        start,
        count,
    };
    // Several ranges in one call, each answered with what exists, in order.
    let answers = raw
        .log_hashes(vec![
            range(1, 0, 300),
            range(2, 0, 9),
            range(0, 255, 2),
            range(0, size - 1, 5),
        ])
        .await
        .unwrap();
    assert_eq!(answers[0].len() as u64, size / 256);
    assert_eq!(answers[1].len(), 1);
    assert_eq!(answers[2], leaves[255..257].to_vec());
    assert_eq!(answers[3], vec![leaves[size as usize - 1]]);
    let tile = |path: &str| Tile::parse_path(path).unwrap();
    assert_eq!(
        store.tile(&tile("0/001")).await.unwrap(),
        leaves[256..512].concat()
    );
    assert_eq!(store.tile(&tile("1/000.p/3")).await.unwrap().len(), 3 * 32);
    assert!(
        matches!(
            store.tile(&tile("2/001")).await,
            Err(StoreError::Corrupt(_))
        ),
        "a tile the store cannot fill whole is an error, never a short tile"
    );

    let root = naive_root(&leaves);
    for index in [0, 255, 256, 65_535, 65_536, size - 1] {
        let p = store.inclusion_proof(index, size).await.unwrap();
        verify_inclusion(index, size, &leaves[index as usize], &p, &root).unwrap();
    }
    for old in [1, 256, 1_000, 65_536, size - 1] {
        let p = store.consistency_proof(old, size).await.unwrap();
        verify_consistency(old, size, &naive_root(&leaves[..old as usize]), &root, &p).unwrap();
    }
    assert!(
        store.root(size + 1).await.is_err(),
        "no root beyond the log"
    );
    assert!(store.inclusion_proof(0, size + 1).await.is_err());
    assert_eq!(
        raw.log_entries(size - 2, 10).await.unwrap(),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
}

/// An append lands only at the end its caller saw: at any other index it is refused and
/// nothing of it is kept.
#[doc(hidden)]
pub async fn an_append_lands_only_at_the_end_its_caller_saw(s: &Storage) {
    let log = &s.log;
    let first = with_records(vec![b"a".to_vec(), b"b".to_vec()]);
    log.append_entries(0, first, Vec::new()).await.unwrap();
    for at in [0, 1, 3] {
        assert!(
            matches!(
                log.append_entries(at, with_records(vec![b"c".to_vec()]), Vec::new())
                    .await,
                Err(StoreError::Conflict)
            ),
            "an append at {at} when the log has 2 entries"
        );
    }
    assert_eq!(log.log_size().await.unwrap(), 2);
    assert_eq!(log.log_record(2).await.unwrap(), None);
    log.append_entries(2, with_records(vec![b"c".to_vec()]), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        log.log_entries(0, 5).await.unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        log.log_hashes(vec![HashRange {
            level: 0,
            start: 0,
            count: 3
        }])
        .await
        .unwrap(),
        vec![vec![leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]]
    );
    assert_eq!(
        log.log_hashes(Vec::new()).await.unwrap(),
        Vec::<Vec<Hash>>::new()
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
