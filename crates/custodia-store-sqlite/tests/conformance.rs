//! The storage conformance suite, on SQLite: one test per check, each on a fresh database.

use std::sync::Arc;

use custodia_store::{NoObserver, Storage};
use custodia_store_conformance::{Fresh, conformance_tests};
use custodia_store_sqlite::SqliteStore;

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
        .await
        .unwrap();
    Fresh::new(Storage::from_backend(store), dir)
}

conformance_tests!(fresh);
