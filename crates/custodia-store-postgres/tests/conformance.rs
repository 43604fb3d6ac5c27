//! The storage conformance suite, on PostgreSQL: each check on a fresh database.

use std::sync::{Arc, Mutex};

use custodia_store::{NoObserver, Storage};
use custodia_store_postgres::scratch::ScratchDatabase;
use custodia_store_postgres::{PgOptions, PgStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let databases = Mutex::new(Vec::new());
    custodia_store_conformance::run_all(|| async {
        let db = ScratchDatabase::create().await.unwrap();
        let options = PgOptions {
            url: db.url().to_owned(),
            max_connections: 4,
        };
        let store = PgStore::connect(&options, Arc::new(NoObserver))
            .await
            .unwrap();
        databases.lock().unwrap().push(db);
        Storage::from_backend(store)
    })
    .await;
}
