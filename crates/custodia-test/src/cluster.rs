//! Scale-out test support: the shared parts of a deployment of several nodes, and a TCP
//! proxy that can cut a node off from PostgreSQL or NATS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use custodia_store_postgres::scratch::ScratchDatabase;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::ProcessServer;

/// The NATS server tests use unless `CUSTODIA_TEST_NATS` names another.
pub(crate) const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// One deployment's shared parts: a fresh database, a fresh NATS subject prefix (so runs
/// never see each other's events) and one data directory (keyring, deployment id, log
/// and TLS keys), which every node of the deployment uses.
pub struct Deployment {
    /// The database, dropped with the deployment.
    pub database: ScratchDatabase,
    /// The NATS server's URL.
    pub nats_url: String,
    /// The deployment's subject prefix.
    pub nats_prefix: String,
    /// The shared data directory.
    pub dir: TempDir,
}

impl Deployment {
    /// Creates the database and checks that NATS answers; fails with a message that says
    /// how to start either when it is down.
    pub async fn new() -> Self {
        let database = ScratchDatabase::create()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let nats_url = std::env::var("CUSTODIA_TEST_NATS").unwrap_or_else(|_| DEFAULT_NATS.into());
        let hostport = nats_url
            .trim_start_matches("nats://")
            .trim_end_matches('/')
            .to_owned();
        if TcpStream::connect(&hostport).await.is_err() {
            panic!(
                "cannot reach NATS at {nats_url}. Start it with `start-stop-daemon --start --oknodo \
                 --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222`, or point \
                 CUSTODIA_TEST_NATS at a running server"
            );
        }
        Self {
            database,
            nats_url,
            nats_prefix: format!("custodia_test_{}", uuid::Uuid::new_v4().simple()),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The settings of a node that reaches PostgreSQL at `postgres_url` and NATS at
    /// `nats_url` (the deployment's own, or a proxy's).
    pub fn env(&self, postgres_url: &str, nats_url: &str) -> Vec<(String, String)> {
        [
            ("CUSTODIA_STORAGE", "postgres"),
            ("CUSTODIA_POSTGRES_URL", postgres_url),
            ("CUSTODIA_POSTGRES_MAX_CONNECTIONS", "8"),
            ("CUSTODIA_FANOUT", "nats"),
            ("CUSTODIA_NATS_URL", nats_url),
            ("CUSTODIA_NATS_SUBJECT_PREFIX", &self.nats_prefix),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Starts a node of the real binary on the deployment, logging to `log`.
    pub fn node(&self, bin: &Path, log: &Path) -> ProcessServer {
        self.node_via(bin, log, self.database.url(), &self.nats_url)
    }

    /// Starts a node that reaches PostgreSQL and NATS at the given URLs.
    pub fn node_via(
        &self,
        bin: &Path,
        log: &Path,
        postgres_url: &str,
        nats_url: &str,
    ) -> ProcessServer {
        ProcessServer::start_with_env(
            bin,
            self.dir.path(),
            None,
            log,
            &self.env(postgres_url, nats_url),
        )
    }
}

/// A TCP proxy to `target` on `127.0.0.1:0` whose connections can be cut.
pub struct TcpProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let target = target.to_owned();
        let (r, c) = (refusing.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if r.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = c.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            refusing,
            cuts,
        }
    }

    /// Drops every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}
