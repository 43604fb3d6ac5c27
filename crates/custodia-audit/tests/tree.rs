//! The log's tree over a real store, watched at the seam: a proof or root reads the stored
//! hashes it needs in one query, and concurrent appenders each get their own index.
//! (That they share commits is a throughput figure: `custodia-bench log`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use custodia_audit::LogTree;
use custodia_store::{HashRange, LogAppend, LogStore, NoObserver, StoreResult, TileHash};
use custodia_store_sqlite::SqliteStore;
use custodia_tlog::{Hash, verify_consistency, verify_inclusion};

/// A store that counts the queries it is asked.
struct Counting {
    inner: Arc<SqliteStore>,
    hash_queries: AtomicUsize,
}

#[async_trait]
impl LogStore for Counting {
    async fn append_entries(
        &self,
        at: u64,
        entries: Vec<LogAppend>,
        completed: Vec<TileHash>,
    ) -> StoreResult<()> {
        self.inner.append_entries(at, entries, completed).await
    }
    async fn log_record(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.inner.log_record(index).await
    }
    async fn log_size(&self) -> StoreResult<u64> {
        self.inner.log_size().await
    }
    async fn log_entries(&self, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
        self.inner.log_entries(start, count).await
    }
    async fn log_hashes(&self, ranges: Vec<HashRange>) -> StoreResult<Vec<Vec<Hash>>> {
        self.hash_queries.fetch_add(1, Ordering::SeqCst);
        self.inner.log_hashes(ranges).await
    }
    async fn last_checkpoint(&self) -> StoreResult<Option<(u64, String)>> {
        self.inner.last_checkpoint().await
    }
    async fn save_checkpoint(
        &self,
        previous: Option<u64>,
        size: u64,
        note: String,
    ) -> StoreResult<()> {
        self.inner.save_checkpoint(previous, size, note).await
    }
}

fn entries(from: u64, n: u64) -> Vec<LogAppend> {
    (from..from + n)
        .map(|i| LogAppend::new(format!("entry {i}").into_bytes(), Vec::new()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_read_their_hashes_in_one_query_and_appenders_get_their_own_indices() {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("log.db"), Arc::new(NoObserver))
        .await
        .unwrap();
    let store = Arc::new(Counting {
        inner,
        hash_queries: AtomicUsize::new(0),
    });
    let tree = LogTree::new(store.clone());
    tree.append(entries(0, 70_000)).await.unwrap();
    let size = 70_001;
    tree.append(entries(70_000, 1)).await.unwrap();

    let queries = || store.hash_queries.swap(0, Ordering::SeqCst);
    queries();
    let root = tree.root(size).await.unwrap();
    assert_eq!(queries(), 1, "a root is one query");
    let old_root = tree.root(65_537).await.unwrap();
    queries();
    for index in [0, 255, 65_536, size - 1] {
        let proof = tree.inclusion_proof(index, size).await.unwrap();
        assert_eq!(queries(), 1, "an inclusion proof is one query");
        let leaf = custodia_tlog::leaf_hash(format!("entry {index}").as_bytes());
        verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
    }
    let proof = tree.consistency_proof(65_537, size).await.unwrap();
    assert_eq!(queries(), 1, "a consistency proof is one query");
    verify_consistency(65_537, size, &old_root, &root, &proof).unwrap();

    // Appenders arriving together, each answered with its own index.
    let tasks: Vec<_> = (0..64)
        .map(|k| {
            let tree = tree.clone();
            tokio::spawn(async move { tree.append(entries(1_000_000 + k, 1)).await.unwrap() })
        })
        .collect();
    let mut firsts = Vec::new();
    for t in tasks {
        firsts.push(t.await.unwrap());
    }
    firsts.sort_unstable();
    assert_eq!(firsts, (size..size + 64).collect::<Vec<_>>());
    assert_eq!(store.inner.log_size().await.unwrap(), size + 64);
}

/// An entry stored without a kept checkpoint (an append cut off by a crash) is abandoned
/// at start, once; a covered entry never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_crash_left_uncovered_are_abandoned_once() {
    use custodia_audit::{AuditEvent, AuditLog, EventKind, PseudonymKey};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("log.db"), Arc::new(NoObserver))
        .await
        .unwrap();
    let log = AuditLog::new(
        store.clone(),
        custodia_tlog::NoteSigner::generate("example.org/audit").unwrap(),
        "example.org/audit",
        PseudonymKey::from_bytes([1; 32]),
    );
    let event = |case: &str| AuditEvent {
        kind: EventKind::CaseOpened,
        time: custodia_core::Timestamp::from_millis(1_795_435_200_000),
        actor: None,
        reason: None,
        case: Some(case.into()),
        subjects: Vec::new(),
        scope: Vec::new(),
    };
    log.append(&event("kept")).await.unwrap();
    // The crash: stored, no checkpoint kept.
    let psk = PseudonymKey::from_bytes([1; 32]);
    let cut = event("cut off");
    log.tree()
        .append(vec![LogAppend::new(
            cut.entry(&psk).unwrap(),
            cut.record().unwrap(),
        )])
        .await
        .unwrap();
    assert_eq!(log.abandon_unconfirmed().await.unwrap(), 1);
    let abandonment = log.record(2).await.unwrap().unwrap();
    assert_eq!(abandonment.kind, EventKind::ActionAbandoned);
    assert!(abandonment.scope.contains(&("entry".into(), "1".into())));
    assert_eq!(log.abandon_unconfirmed().await.unwrap(), 0, "once");
    log.checkpoint().await.unwrap();
    assert_eq!(log.abandon_unconfirmed().await.unwrap(), 0);
}
