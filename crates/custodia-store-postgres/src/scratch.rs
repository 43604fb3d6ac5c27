//! Throwaway databases for tests and benchmarks: each [`ScratchDatabase`] is a new,
//! uniquely named database on a PostgreSQL server, dropped (with its connections) when
//! the value is dropped, so runs never collide and leave nothing behind.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use custodia_core::redact_url;

/// The server tests use unless `CUSTODIA_TEST_POSTGRES` names another (a URL of a
/// database on it that the user may connect to, with the right to create databases).
pub const DEFAULT_SERVER: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A database created for one test.
pub struct ScratchDatabase {
    server: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates a fresh database on the server named by `CUSTODIA_TEST_POSTGRES` (default
    /// [`DEFAULT_SERVER`]). The error says how to start the server when it is down.
    pub async fn create() -> Result<Self, String> {
        let server =
            std::env::var("CUSTODIA_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.into());
        Self::create_on(&server).await
    }

    /// Creates a fresh database on `server`.
    pub async fn create_on(server: &str) -> Result<Self, String> {
        let mut conn = PgConnection::connect(server).await.map_err(|e| {
            format!(
                "cannot reach PostgreSQL at {} ({e}). Start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                 or point CUSTODIA_TEST_POSTGRES at a server where this user may create databases",
                redact_url(server)
            )
        })?;
        let name = format!("custodia_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("creating a test database: {e}"))?;
        let _ = conn.close().await;
        let mut url =
            url::Url::parse(server).map_err(|e| format!("{}: {e}", redact_url(server)))?;
        url.set_path(&name);
        Ok(Self {
            server: server.to_owned(),
            url: url.to_string(),
            name,
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime, which cannot block on itself: use a thread with
        // its own small runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
