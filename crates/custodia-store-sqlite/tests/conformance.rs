//! The storage conformance suite, on SQLite: each check on a fresh database file.

use std::sync::Arc;

use custodia_store::{NoObserver, Storage};
use custodia_store_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    custodia_store_conformance::run_all(|| async {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = SqliteStore::open(&dir.path().join(format!("db{n}")), Arc::new(NoObserver))
            .await
            .unwrap();
        Storage::from_backend(store)
    })
    .await;
}
