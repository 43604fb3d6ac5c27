//! The storage conformance suite, on PostgreSQL: one test per check, each on a fresh
//! database (dropped when the check ends).

use std::sync::Arc;

use custodia_store::{NoObserver, Storage};
use custodia_store_conformance::{Fresh, conformance_tests};
use custodia_store_postgres::scratch::ScratchDatabase;
use custodia_store_postgres::{PgOptions, PgStore};

async fn fresh() -> Fresh {
    let db = ScratchDatabase::create().await.unwrap();
    let options = PgOptions {
        url: db.url().to_owned(),
        max_connections: 4,
    };
    let store = PgStore::connect(&options, Arc::new(NoObserver))
        .await
        .unwrap();
    Fresh::new(Storage::from_backend(store), db)
}

conformance_tests!(fresh);
