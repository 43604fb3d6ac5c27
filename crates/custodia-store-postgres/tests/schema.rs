//! The two backends' migration folders build the same schema: the same tables with the
//! same columns, so a change made to one and forgotten in the other fails here.

use std::collections::BTreeSet;
use std::sync::Arc;

use custodia_store::NoObserver;
use custodia_store_postgres::scratch::ScratchDatabase;
use custodia_store_postgres::{PgOptions, PgStore};
use custodia_store_sqlite::SqliteStore;

/// Bookkeeping of each dialect's migrator, not part of the schema.
const MIGRATOR_TABLES: &[&str] = &["_sqlx_migrations"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migration_folders_give_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(
        SqliteStore::open(&path, Arc::new(NoObserver))
            .await
            .unwrap(),
    );
    let sqlite: BTreeSet<(String, String)> = {
        let c = rusqlite::Connection::open(&path).unwrap();
        let tables: Vec<String> = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = BTreeSet::new();
        for t in tables {
            let columns: Vec<String> = c
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            out.extend(columns.into_iter().map(|col| (t.clone(), col)));
        }
        out
    };

    let db = ScratchDatabase::create().await.unwrap();
    let options = PgOptions {
        url: db.url().to_owned(),
        max_connections: 8,
    };
    drop(
        PgStore::connect(&options, Arc::new(NoObserver))
            .await
            .unwrap(),
    );
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let postgres: BTreeSet<(String, String)> = rows
        .into_iter()
        .filter(|(t, _)| !MIGRATOR_TABLES.contains(&t.as_str()))
        .collect();

    let seq = ("messages".to_owned(), "seq".to_owned());
    assert!(sqlite.contains(&seq) && postgres.contains(&seq));
    assert!(sqlite.len() > 50, "{sqlite:?}");
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the schemas differ.\nonly in SQLite: {only_sqlite:?}\nonly in PostgreSQL: {only_postgres:?}"
    );
}
