//! Assembling and running a server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::SystemClock;
use anyhow::Context;
use custodia_api::{AppState, Metrics, TlsListener, tls13_server_config};
use custodia_fanout_nats::NatsFanout;
use custodia_keys::{KeyService, KeyringFile};
use custodia_service::{Fanout, Hub, LocalFanout, Service};
use custodia_store::Storage;
use custodia_store_postgres::PgStore;
use custodia_store_sqlite::SqliteStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::certs::{CaDir, CertSource, Certificates};
use crate::config::{FanoutConfig, StorageConfig, TlsConfig};
use crate::datadir::DataDir;
use crate::witness::HttpCosigner;

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// `https://…` base URL.
    pub url: String,
    /// `https://…` base URL of the auditor listener.
    pub audit_url: String,
    /// `https://…` base URL of the staff API.
    pub staff_url: String,
    /// The founding staff (the first admin and the first auditor) and their enrolment
    /// codes, on the start that created them; empty otherwise.
    pub founders: Vec<custodia_governance::NewStaff>,
    /// The audit log (for the components that append to it).
    pub audit: Arc<custodia_audit::AuditLog>,
    /// The verifier key of the disclosure-package signing key, for recipients.
    pub package_key: custodia_tlog::NoteVerifier,
    /// The CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Whether this start created the data directory's keyring (first start).
    pub first_start: bool,
    shutdown: CancellationToken,
    grace: std::time::Duration,
    certs: Arc<Certificates>,
    governance: custodia_governance::Governance,
    /// Held (shared) while the server runs, so the operator's tools know it does.
    _lock: std::fs::File,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish and live sessions say goodbye
    /// (sends in flight acknowledged or refused, then close 1001), closes what is left
    /// at the end of the shutdown grace, and returns, in bounded time whatever clients do.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        // The listeners close everything at the end of the grace; this bounds the rest
        // (the signal worker's store calls) with a little more.
        let bound = self.grace + std::time::Duration::from_secs(2);
        match tokio::time::timeout(bound, &mut self.task).await {
            Ok(done) => done.context("server task")?.context("server")?,
            Err(_) => {
                tracing::warn!("the server did not stop within its shutdown grace; stopping it");
                self.task.abort();
            }
        }
        Ok(())
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("server task")?
            .context("server")
    }

    /// Releases the access notices whose deferral has ended by the server's clock now (the
    /// server does this by itself every minute); returns how many.
    pub async fn release_notices(&self) -> anyhow::Result<usize> {
        self.governance
            .release_notices()
            .await
            .map_err(|e| anyhow::anyhow!("releasing access notices: {e}"))
    }

    /// Ends the preservation holds whose time ran out by the server's clock (as the
    /// server does every minute); returns how many.
    pub async fn expire_holds(&self) -> anyhow::Result<usize> {
        self.governance
            .expire_holds()
            .await
            .map_err(|e| anyhow::anyhow!("ending expired holds: {e}"))
    }

    /// Runs retention now by the server's clock (as the server does once a day); `None`
    /// when no retention is configured.
    pub async fn apply_retention(
        &self,
    ) -> anyhow::Result<Option<custodia_governance::RetentionRun>> {
        self.governance
            .apply_retention()
            .await
            .map_err(|e| anyhow::anyhow!("retention: {e}"))
    }

    /// Frees the names of accounts closed longer ago than the grace period (as the
    /// server's daily run does).
    pub async fn release_closed_names(&self) {
        self.governance.release_closed_names().await;
    }

    /// Reads the TLS certificate files again (SIGHUP): new connections get the new
    /// certificate, open ones are not dropped. On error the old certificate stays.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        self.certs.reload()
    }

    /// Renews a generated TLS certificate due for renewal at `now` (the server also does
    /// this by itself every few hours); `Ok(true)` if it did.
    pub fn renew_tls(&self, now: custodia_core::Timestamp) -> anyhow::Result<bool> {
        self.certs.renew_if_due(now)
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The deployment's storage as `config` says (SQLite in the data directory, or the shared
/// PostgreSQL database): the one way the server and the operator tools open it.
pub async fn open_storage(
    config: &Config,
    observer: Arc<dyn custodia_store::CommitObserver>,
) -> anyhow::Result<Storage> {
    Ok(match &config.storage {
        StorageConfig::Sqlite => {
            let dir = DataDir::open(&config.data_dir)?;
            Storage::from_backend(
                SqliteStore::open(&dir.database(), observer)
                    .await
                    .context("opening the database")?,
            )
        }
        StorageConfig::Postgres(options) => Storage::from_backend(
            PgStore::connect(options, observer)
                .await
                .context("opening the PostgreSQL database (storage = \"postgres\")")?,
        ),
    })
}

/// Runs `work` every `period` (the first time one period from now) until `stop`.
fn every<F, Fut>(
    period: std::time::Duration,
    stop: &CancellationToken,
    mut work: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => work().await,
            }
        }
    })
}

/// How often a running server releases access notices whose deferral has ended.
const NOTICE_RELEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Releases the access notices due now; a failure is logged and tried again later.
/// What the clock makes due: deferred notices to release, holds to end.
async fn timed_duties(governance: &custodia_governance::Governance) {
    match governance.release_notices().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(notices = n, "released deferred access notices"),
        Err(e) => tracing::warn!(error = %e, "could not release deferred access notices"),
    }
    match governance.expire_holds().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(holds = n, "preservation holds expired"),
        Err(e) => tracing::warn!(error = %e, "could not end expired preservation holds"),
    }
    if let Err(e) = governance.apply_retention_daily().await {
        tracing::warn!(error = %e, "the retention run failed; retried at the next pass");
    }
}

/// How often a running server looks for KEK steps (a rotation, a retirement) and rewraps
/// its share of what an old KEK version still seals.
const KEK_ROUND: std::time::Duration = std::time::Duration::from_secs(1);

/// One round of KEK rotation work with a budget of `per_sec` (one second's worth); a
/// failure is logged and the next round tries again.
async fn rotation_round(governance: &custodia_governance::Governance, per_sec: u32) {
    match governance.rotation_round(u64::from(per_sec)).await {
        Ok(r) if r.rewrapped > 0 => {
            tracing::debug!(
                rewrapped = r.rewrapped,
                version = r.current,
                "rewrapped under the current KEK"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "KEK rotation round failed; retried in a moment"),
    }
}

/// How often a running server signs (and has witnessed) a checkpoint for its log's size.
const CHECKPOINT_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// Signs a checkpoint for the log's current size if it grew, with the witnesses' quorum;
/// a failure (witnesses unreachable) is logged and tried again later.
async fn refresh_checkpoint(audit: &custodia_audit::AuditLog) {
    if let Err(e) = audit.checkpoint().await {
        tracing::warn!(error = %e, "no witnessed checkpoint for the log's current size yet");
    }
}

/// How often a running server checks whether its generated certificate is due.
const RENEWAL_CHECK: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Where a server's certificate comes from, as configured.
fn cert_source(config: &Config, dir: &DataDir) -> CertSource {
    match &config.tls {
        TlsConfig::Files { cert, key } => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        TlsConfig::Generated { ca_dir } => CertSource::Generated {
            data_dir: dir.root.clone(),
            ca: CaDir(ca_dir.clone().unwrap_or_else(|| dir.default_ca_dir())),
        },
    }
}

/// What staff actions rest on: the audit log and the key service.
struct Core {
    audit: Arc<custodia_audit::AuditLog>,
    keys: Arc<KeyService>,
    /// Whether the keyring was created now (first start).
    first_start: bool,
}

/// Opens the keyring, the audit log (with its witnesses) and the key service of the data
/// directory `dir` over `storage`.
fn open_core(
    config: &Config,
    dir: &DataDir,
    storage: &custodia_store::Storage,
    clock: Arc<dyn custodia_core::Clock>,
) -> anyhow::Result<Core> {
    // The KEKs: in the PKCS#11 token when one is configured (no keyring file then),
    // else in the data directory's keyring.
    let (kek, first_start): (Box<dyn custodia_keys::KekProvider>, bool) = match &config.pkcs11 {
        Some(token) => {
            let (kek, created) = custodia_keys::Pkcs11Kek::open(token)
                .map_err(|e| anyhow::anyhow!("opening the KEK token: {e}"))?;
            (Box::new(kek), created)
        }
        None => {
            let (keyring, created) =
                KeyringFile::open(&dir.keyring(), config.keyring_passphrase.clone())
                    .context("opening the keyring")?;
            (Box::new(keyring), created)
        }
    };
    let deployment = dir.deployment_id()?;
    // The log's origin: as configured, or the one its key has had since the log began,
    // or for a new log the auditor listener's scheme-less URL prefix (c2sp.org/tlog-tiles).
    let log_signer = dir.log_signer_for(
        config.log_origin.as_deref(),
        &display_host(config.audit_listen),
    )?;
    let origin = log_signer.name().to_owned();
    let witnesses = config
        .witnesses
        .iter()
        .map(|w| Ok(Arc::new(HttpCosigner::new(w)?) as Arc<dyn custodia_audit::Cosigner>))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let audit = Arc::new(
        custodia_audit::AuditLog::new(
            storage.log.clone(),
            log_signer,
            origin.clone(),
            dir.pseudonym_key()?,
        )
        .with_witnesses(witnesses, config.witness_quorum),
    );
    // Staff unwraps are checked against this log's receipts, by the key service itself.
    let authority = custodia_keys::LogAuthority::new(
        audit.verifier(),
        config.witnesses.iter().map(|w| w.key.clone()).collect(),
        config.witness_quorum,
        dir.pseudonym_key()?,
    );
    let keys = Arc::new(
        KeyService::new(
            deployment,
            kek,
            storage.deks.clone(),
            clock,
            config.dek_cache,
        )
        .with_log_authority(authority)
        .with_package_signer(dir.package_signer(&origin)?),
    );
    Ok(Core {
        audit,
        keys,
        first_start,
    })
}

/// Governance over a stopped deployment's data directory, for the operator's tools (no
/// listener, no fan-out). Fails while a server runs on the data directory.
pub async fn offline_governance(
    config: &Config,
) -> anyhow::Result<(custodia_governance::Governance, std::fs::File)> {
    let dir = DataDir::open(&config.data_dir)?;
    let lock = dir.lock_alone()?;
    let storage = open_storage(config, Arc::new(custodia_store::NoObserver)).await?;
    let clock: Arc<dyn custodia_core::Clock> = Arc::new(SystemClock);
    let core = open_core(config, &dir, &storage, clock.clone())?;
    let governance = custodia_governance::Governance::new(
        storage,
        core.keys,
        core.audit,
        clock,
        config.governance.clone(),
    );
    Ok((governance, lock))
}

/// Creates or opens the data directory, then starts listening.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`], with every service reading time from `clock` (tests move it forward
/// instead of waiting).
pub async fn start_with_clock(
    config: Config,
    clock: Arc<dyn custodia_core::Clock>,
) -> anyhow::Result<Running> {
    let dir = DataDir::open(&config.data_dir)?;
    // Shared by every server on this data directory; `admin reset-admin` needs it alone.
    let lock = dir.lock_shared()?;
    let certs = Arc::new(Certificates::open(cert_source(&config, &dir), clock.now())?);
    let tls =
        tls13_server_config(certs.server_cert()).map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    let storage = open_storage(&config, metrics.clone()).await?;
    let Core {
        audit,
        keys,
        first_start,
    } = open_core(&config, &dir, &storage, clock.clone())?;
    let package_key = keys
        .package_key()
        .ok_or_else(|| anyhow::anyhow!("the key service has no package-signing key"))?;
    let hub = Hub::new();
    let nats = match &config.fanout {
        FanoutConfig::Local => None,
        FanoutConfig::Nats(options) => Some(
            NatsFanout::connect(options, hub.clone())
                .await
                .context("starting fan-out (fanout = \"nats\")")?,
        ),
    };
    let fanout: Arc<dyn Fanout> = match &nats {
        Some(n) => n.clone(),
        None => Arc::new(LocalFanout(hub.clone())),
    };
    let governance = custodia_governance::Governance::new(
        storage.clone(),
        keys.clone(),
        audit.clone(),
        clock.clone(),
        config.governance.clone(),
    );
    governance.notify_through(fanout.clone());
    let service = Service::new(
        storage,
        keys,
        clock.clone(),
        hub,
        fanout,
        config.service.clone(),
    )
    .with_signals(Arc::new(governance.clone()), config.text_rules.clone());
    // Send limits every node shares, when a Redis is configured (keys per deployment).
    let service = match &config.redis_url {
        Some(url) => service.with_shared_limits(Arc::new(
            custodia_limits_redis::RedisBuckets::new(
                url,
                &format!("custodia:{}:limit:", dir.deployment_id()?.as_uuid()),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
        None => service,
    };
    if let Some(n) = &nats {
        n.start(service.clone())
            .await
            .context("starting fan-out (fanout = \"nats\")")?;
    }

    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = tcp.local_addr()?;
    let listener = TlsListener::new(tcp, tls.clone(), config.edge)?;
    let audit_tcp = tokio::net::TcpListener::bind(config.audit_listen)
        .await
        .with_context(|| format!("listening on {} (audit_listen)", config.audit_listen))?;
    let audit_addr = audit_tcp.local_addr()?;
    let audit_listener = TlsListener::new(audit_tcp, tls.clone(), config.edge)?;
    let staff_tcp = tokio::net::TcpListener::bind(config.staff_listen)
        .await
        .with_context(|| format!("listening on {} (staff_listen)", config.staff_listen))?;
    let staff_addr = staff_tcp.local_addr()?;
    let staff_listener = TlsListener::new(staff_tcp, tls.clone(), config.edge)?;
    let metrics_token = Arc::new(dir.metrics_token()?);
    // Founded last, once everything that can fail at start has started: the founders'
    // one-time codes are returned (and printed) by the start that created them.
    let founders = governance
        .bootstrap_founders()
        .await
        .map_err(|e| anyhow::anyhow!("creating the founding staff accounts: {e}"))?;
    // A checkpoint for the current size with the witnesses' quorum, now and every few
    // minutes: auditors get a witnessed checkpoint without waiting for the next action
    // (after a restart, or after the witnesses came back).
    // On one node (SQLite), an entry no kept checkpoint covers is from an append that
    // never returned: its action did not happen, and the log says so before moving on.
    if matches!(config.storage, StorageConfig::Sqlite) {
        match audit.abandon_unconfirmed().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                entries = n,
                "logged actions interrupted by the last stop are marked abandoned"
            ),
            Err(e) => tracing::warn!(error = %e, "could not look for interrupted log entries"),
        }
    }
    refresh_checkpoint(&audit).await;
    // Access notices whose non-disclosure order ended, and holds whose time ran out, while
    // the server was down are handled now, and from then on every minute (each once, by
    // whichever node).
    timed_duties(&governance).await;
    // A rotation the operator started while this node was down: adopted (and its steps
    // logged) before serving; the rewrap goes on in the background.
    rotation_round(&governance, 0).await;
    let shutdown = CancellationToken::new();
    let rotation = every(KEK_ROUND, &shutdown, {
        let governance = governance.clone();
        let per_sec = config.kek_rewrap_per_sec;
        move || {
            let governance = governance.clone();
            async move { rotation_round(&governance, per_sec).await }
        }
    });
    let releases = every(NOTICE_RELEASE, &shutdown, {
        let governance = governance.clone();
        move || {
            let governance = governance.clone();
            async move { timed_duties(&governance).await }
        }
    });
    let checkpoints = every(CHECKPOINT_REFRESH, &shutdown, {
        let audit = audit.clone();
        move || {
            let audit = audit.clone();
            async move { refresh_checkpoint(&audit).await }
        }
    });
    let audit_state = custodia_api::AuditState { log: audit.clone() };
    let auditor = custodia_api::serve_audit(audit_listener, audit_state, shutdown.clone());
    let staff = custodia_api::serve_staff(staff_listener, governance.clone(), shutdown.clone());
    let notices_governance = governance.clone();
    let state = AppState {
        service,
        governance,
        metrics,
        metrics_token,
        shutdown: shutdown.clone(),
        sessions: tokio_util::task::TaskTracker::new(),
    };
    // Signals stored with their messages become cases here, retried until they exist
    // (also those a crash left behind at the last run).
    let signals = state
        .service
        .spawn_signal_worker(shutdown.clone().cancelled_owned());
    // A generated certificate is renewed before it expires, while the server runs.
    if let Err(e) = certs.renew_if_due(clock.now()) {
        tracing::error!(error = %e, "renewing the TLS certificate failed");
    }
    let renewals = every(RENEWAL_CHECK, &shutdown, {
        let (certs, clock) = (certs.clone(), clock.clone());
        move || {
            if let Err(e) = certs.renew_if_due(clock.now()) {
                tracing::error!(error = %e, "renewing the TLS certificate failed");
            }
            std::future::ready(())
        }
    });
    let task = tokio::spawn(async move {
        let (api, auditor, staff) =
            tokio::join!(custodia_api::serve(listener, state), auditor, staff);
        let _ = signals.await;
        let _ = renewals.await;
        let _ = checkpoints.await;
        let _ = releases.await;
        let _ = rotation.await;
        api.and(auditor).and(staff)
    });
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        url: format!("https://{}", display_host(addr)),
        audit_url: format!("https://{}", display_host(audit_addr)),
        staff_url: format!("https://{}", display_host(staff_addr)),
        founders,
        audit,
        package_key,
        ca_cert: certs.ca_cert().unwrap_or_else(|| dir.ca_cert()),
        data_dir: dir.root.clone(),
        first_start,
        shutdown,
        grace: config.edge.shutdown_grace,
        certs,
        governance: notices_governance,
        _lock: lock,
        task,
    })
}

fn display_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}
