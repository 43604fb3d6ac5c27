//! Test support: real servers on `127.0.0.1:0` with fresh data directories, and ready
//! clients. Used by the end-to-end tests of the `custodia` crate.
//!
//! - [`TestServer`] runs a server in-process (fast; can be restarted on the same data).
//! - [`ProcessServer`] runs the real binary as a child process (for `SIGKILL` and for
//!   reading its logs).
//! - [`Deployment`] is a scale-out deployment's shared parts (a fresh PostgreSQL
//!   database, a fresh NATS subject prefix, one data directory) for several nodes.
//! - [`TcpProxy`] sits between a node and PostgreSQL or NATS, to cut the connection.

mod cluster;

pub use cluster::{Deployment, TcpProxy};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use custodia_audit::{Actor, AuditEvent, EventKind, Subject};
use custodia_core::{ConversationId, Timestamp, UserId};
use custodia_sdk::Client;
use custodia_server::config::RawWitness;
use custodia_server::witness::{RunningWitness, WitnessOptions, start_witness};
use custodia_server::{RawConfig, Running};
use custodia_tlog::NoteVerifier;
use tempfile::TempDir;

/// A password every test user has.
pub const PASSWORD: &str = "correct horse battery staple";
/// A send limit no test reaches (tests of the limits set their own).
const UNLIMITED: u32 = 1_000_000_000;

/// An adult's date of birth.
pub const ADULT_DOB: &str = "1990-05-17";

/// The code an authenticator app shows now for the TOTP secret in `otpauth_uri`.
pub fn totp_code(otpauth_uri: &str) -> String {
    custodia_client::staffing::totp_now(otpauth_uri).expect("an otpauth URI")
}

pub use custodia_client::staffing::StaffCredentials;

/// The cases a staff member sees, once there are at least `n` (signals open cases just
/// after the send that caused them is acknowledged). Gives up after a generous 30 s.
pub async fn cases_at_least(staff: &Client, n: usize) -> Vec<custodia_sdk::proto::staff::Case> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cases = staff.cases().await.expect("listing cases");
        if cases.len() >= n || std::time::Instant::now() > deadline {
            return cases;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A staff read as the audit log records it, told apart by `case`.
pub fn audit_event(case: &str) -> AuditEvent {
    AuditEvent {
        kind: EventKind::AccessRead,
        time: Timestamp::from_millis(1_764_000_000_000),
        actor: Some(Actor {
            staff_id: "staff-test".into(),
            role: "moderator".into(),
        }),
        reason: Some("report_review".into()),
        case: Some(case.into()),
        subjects: vec![
            Subject::User(UserId::new()),
            Subject::Conversation(ConversationId::new()),
        ],
        scope: vec![("tier".into(), "content".into())],
    }
}

/// The clock a [`TestServer`] reads: the real time plus an offset that tests move
/// forward ([`TestServer::advance_clock`]) instead of sleeping. TOTP codes made by
/// [`totp_code`] follow the real time, so sign in before moving the clock far.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl custodia_core::Clock for TestClock {
    fn now(&self) -> Timestamp {
        let real = custodia_core::Clock::now(&custodia_server::SystemClock);
        Timestamp::from_millis(
            real.as_millis() + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst),
        )
    }
}

/// A server running in this process on a fresh data directory.
pub struct TestServer {
    clock: std::sync::Arc<TestClock>,
    dir: TempDir,
    config: RawConfig,
    /// The founding admin's and auditor's enrolment codes from the first start.
    founding: Vec<(String, String)>,
    /// The founders, enrolled with [`PASSWORD`] when a test first needs them (so a test
    /// that does not sees only the founding entry in the log).
    founders: tokio::sync::OnceCell<Vec<StaffCredentials>>,
    /// The founding auditor, signed in once (a TOTP code works once): the second person
    /// who approves the staff that tests create.
    auditor: tokio::sync::OnceCell<Client>,
    running: Option<Running>,
    url: String,
    ca: Vec<u8>,
    /// The SoftHSM2 token holding the KEKs (`CUSTODIA_TEST_KEK=pkcs11`); deleted after
    /// the server is gone.
    _token: Option<SoftToken>,
}

/// A fresh SoftHSM2 token (Debian's `softhsm2`), deleted when dropped.
pub struct SoftToken {
    /// Its label.
    pub label: String,
}

/// SoftHSM2's PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every [`SoftToken`].
pub const SOFTHSM_PIN: &str = "4711-user-pin";

impl SoftToken {
    /// Initialises a token labelled after `name` and this process.
    pub fn new(name: &str) -> Self {
        let label = format!("{name}-{}", std::process::id());
        let made = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", &label])
            .args(["--pin", SOFTHSM_PIN, "--so-pin", "4711-so-pin"])
            .output()
            .expect("softhsm2-util (apt-get install -y softhsm2; .ci/run installs it)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Self { label }
    }

    /// The key service's settings for this token.
    pub fn pkcs11_config(&self) -> custodia_keys::Pkcs11Config {
        custodia_keys::Pkcs11Config {
            module: SOFTHSM_MODULE.into(),
            token: self.label.clone(),
            pin: zeroize::Zeroizing::new(SOFTHSM_PIN.into()),
            key_label: "custodia-kek".into(),
        }
    }

    /// The `CUSTODIA_*` variables that put a server's (or an operator tool's) KEKs in
    /// this token.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CUSTODIA_PKCS11_MODULE".into(), SOFTHSM_MODULE.into()),
            ("CUSTODIA_PKCS11_TOKEN_LABEL".into(), self.label.clone()),
            ("CUSTODIA_PKCS11_PIN".into(), SOFTHSM_PIN.into()),
        ]
    }

    /// `config` with its KEKs in this token.
    pub fn configure(&self, config: RawConfig) -> RawConfig {
        RawConfig {
            pkcs11_module: Some(SOFTHSM_MODULE.into()),
            pkcs11_token_label: Some(self.label.clone()),
            pkcs11_pin: Some(SOFTHSM_PIN.into()),
            ..config
        }
    }
}

impl Drop for SoftToken {
    fn drop(&mut self) {
        let _ = Command::new("softhsm2-util")
            .args(["--delete-token", "--token", &self.label])
            .output();
    }
}

impl TestServer {
    /// Starts a server on `127.0.0.1:0` with a new temporary data directory.
    pub async fn start() -> Self {
        Self::start_with(RawConfig::default()).await
    }

    /// Starts a server with `config` (its data directory and listeners are the test's).
    /// Unless `config` says otherwise, new staff decide access requests at once
    /// (`staff_decide_after_hours = 0`, see `boot`). The founding staff enrol with
    /// [`PASSWORD`].
    pub async fn start_with(config: RawConfig) -> Self {
        // The suites run again with their KEKs in SoftHSM2 (`CUSTODIA_TEST_KEK=pkcs11`).
        let (config, token) = match std::env::var("CUSTODIA_TEST_KEK").as_deref() {
            Ok("pkcs11") if config.pkcs11_module.is_none() => {
                let token = SoftToken::new("custodia-test");
                (token.configure(config), Some(token))
            }
            _ => (config, None),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = std::sync::Arc::new(TestClock::default());
        let mut running = boot(dir.path(), "127.0.0.1:0", &config, &clock).await;
        let url = running.url.clone();
        let ca = std::fs::read(&running.ca_cert).expect("CA certificate");
        let founding = std::mem::take(&mut running.founders)
            .into_iter()
            .map(|f| (f.staff.username.to_string(), f.enrolment_code.to_string()))
            .collect();
        Self {
            clock,
            dir,
            config,
            founding,
            founders: tokio::sync::OnceCell::new(),
            auditor: tokio::sync::OnceCell::new(),
            running: Some(running),
            url,
            ca,
            _token: token,
        }
    }

    /// Stops the server gracefully and starts it again on the same data and port.
    pub async fn restart(&mut self) {
        let addr = self.running.as_ref().map(|r| r.addr).expect("running");
        self.stop().await;
        let running = boot(
            self.dir.path(),
            &addr.to_string(),
            &self.config,
            &self.clock,
        )
        .await;
        self.url = running.url.clone();
        self.running = Some(running);
    }

    /// Starts a stopped server again on its data directory (on a fresh port), with
    /// `config` from now on.
    pub async fn restart_fresh_with(&mut self, config: RawConfig) {
        // The KEKs stay in the same token.
        self.config = match &self._token {
            Some(token) => token.configure(config),
            None => config,
        };
        self.restart_fresh().await;
    }

    /// Starts a stopped server again on its data directory (on a fresh port).
    pub async fn restart_fresh(&mut self) {
        // The signed-in auditor's client points at the old port.
        self.auditor = tokio::sync::OnceCell::new();
        let running = boot(self.dir.path(), "127.0.0.1:0", &self.config, &self.clock).await;
        self.url = running.url.clone();
        self.running = Some(running);
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }

    /// A server whose log is witnessed by `n` witnesses (started here) with `quorum`.
    pub async fn witnessed(n: usize, quorum: usize) -> (Self, Vec<TestWitness>) {
        let mut server = Self::start().await;
        server.stop().await;
        let key = server.log_key();
        let mut witnesses = Vec::new();
        for i in 0..n {
            witnesses
                .push(TestWitness::start(&format!("witness.test/w{i}"), vec![key.clone()]).await);
        }
        server
            .restart_fresh_with(RawConfig {
                witnesses: Some(witnesses.iter().map(TestWitness::config).collect()),
                witness_quorum: Some(quorum),
                ..RawConfig::default()
            })
            .await;
        (server, witnesses)
    }

    /// Releases the access notices whose deferral has ended by the server's clock (as the
    /// server does every minute), returning how many.
    pub async fn release_notices(&self) -> usize {
        self.try_release_notices().await.expect("release")
    }

    /// [`Self::release_notices`], failing as the server's periodic pass may (the audit log
    /// unavailable).
    pub async fn try_release_notices(&self) -> anyhow::Result<usize> {
        self.running
            .as_ref()
            .expect("running")
            .release_notices()
            .await
    }

    /// Runs retention by the server's clock (as the server does daily).
    pub async fn apply_retention(&self) -> Option<custodia_governance::RetentionRun> {
        self.running
            .as_ref()
            .expect("running")
            .apply_retention()
            .await
            .expect("retention")
    }

    /// Frees the names of accounts closed longer ago than the grace period (as the
    /// server's daily run does).
    pub async fn release_closed_names(&self) {
        self.running
            .as_ref()
            .expect("running")
            .release_closed_names()
            .await;
    }

    /// Ends the holds whose time ran out by the server's clock (as the server does every
    /// minute), returning how many.
    pub async fn expire_holds(&self) -> usize {
        self.running
            .as_ref()
            .expect("running")
            .expire_holds()
            .await
            .expect("expire holds")
    }

    /// Moves the server's clock forward by `by` (grants and sessions expire, waiting
    /// periods pass) without waiting.
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The staff API's base URL.
    pub fn staff_url(&self) -> &str {
        self.running.as_ref().map_or("", |r| r.staff_url.as_str())
    }

    /// The first admin's credentials (enrolled on first use).
    pub async fn first_admin(&self) -> &StaffCredentials {
        self.founders()
            .await
            .first()
            .expect("founded on the first start")
    }

    /// The founding admin's and auditor's credentials (enrolled on first use).
    pub async fn founders(&self) -> &[StaffCredentials] {
        self.founders
            .get_or_init(|| async {
                let api = self.staff_client();
                let mut out = Vec::new();
                for (name, code) in &self.founding {
                    out.push(
                        custodia_client::staffing::enrol(&api, name, code, PASSWORD)
                            .await
                            .expect("enrolling a founder"),
                    );
                }
                out
            })
            .await
    }

    /// A client of the staff API, signed in as the first admin.
    pub async fn admin(&self) -> Client {
        let admin = self.first_admin().await;
        self.staff(&admin.username, &admin.password, &admin.totp_uri)
            .await
    }

    /// The founding auditor, signed in (once per server: later calls share the session).
    pub async fn auditor(&self) -> &Client {
        self.auditor
            .get_or_init(|| async {
                let a = self
                    .founders()
                    .await
                    .get(1)
                    .expect("founded on the first start");
                self.staff(&a.username, &a.password, &a.totp_uri).await
            })
            .await
    }

    /// A client of the staff API, signed in with these credentials.
    pub async fn staff(&self, username: &str, password: &str, totp_uri: &str) -> Client {
        let mut c = self.staff_client();
        c.staff_sign_in(username, password, &totp_code(totp_uri))
            .await
            .expect("staff sign-in");
        c
    }

    /// A new staff member's credentials: proposed by `admin`, approved by the founding
    /// auditor, enrolled with [`PASSWORD`].
    pub async fn add_staff(&self, admin: &Client, username: &str, role: &str) -> StaffCredentials {
        custodia_client::staffing::add_staff(admin, self.auditor().await, username, role, PASSWORD)
            .await
            .expect("adding staff")
    }

    /// A new staff member with this role (see [`TestServer::add_staff`]), signed in.
    pub async fn new_staff(&self, admin: &Client, username: &str, role: &str) -> Client {
        let c = self.add_staff(admin, username, role).await;
        self.staff(username, &c.password, &c.totp_uri).await
    }

    /// A client of the staff API, not signed in.
    pub fn staff_client(&self) -> Client {
        Client::new(self.staff_url(), &self.ca).expect("staff client")
    }

    /// The audit log's verifier key (from the data directory, so also while stopped).
    pub fn log_key(&self) -> NoteVerifier {
        let text = std::fs::read_to_string(self.dir.path().join("log.key")).expect("log.key");
        custodia_tlog::NoteSigner::from_text(&text)
            .expect("a log key")
            .verifier()
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The auditor listener's base URL.
    pub fn audit_url(&self) -> &str {
        self.running.as_ref().map_or("", |r| r.audit_url.as_str())
    }

    /// A client of the auditor listener (the public log).
    pub fn auditor_client(&self) -> Client {
        Client::new(self.audit_url(), &self.ca).expect("auditor client")
    }

    /// The audit log, to append entries as the server's components will.
    pub fn audit(&self) -> std::sync::Arc<custodia_audit::AuditLog> {
        self.running
            .as_ref()
            .map(|r| r.audit.clone())
            .expect("running")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client that is not signed in.
    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.ca).expect("client")
    }

    /// Registers `name` and returns a client signed in as them.
    pub async fn user(&self, name: &str) -> Client {
        let c = self.client();
        c.register(name, PASSWORD, ADULT_DOB)
            .await
            .expect("register");
        self.login(name).await
    }

    /// Another signed-in session (device) of an existing user.
    pub async fn login(&self, name: &str) -> Client {
        let mut c = self.client();
        c.login(name, PASSWORD, "test device").await.expect("login");
        c
    }
}

async fn boot(
    dir: &Path,
    listen: &str,
    config: &RawConfig,
    clock: &std::sync::Arc<TestClock>,
) -> Running {
    // Retry briefly: after a restart the port may still be held for a moment.
    let mut last = None;
    for _ in 0..50 {
        let raw = RawConfig {
            data_dir: Some(dir.to_owned()),
            listen: Some(listen.to_owned()),
            audit_listen: Some("127.0.0.1:0".to_owned()),
            staff_listen: Some("127.0.0.1:0".to_owned()),
            // Tests send bursts from brand-new accounts; the limits have their own tests.
            sends_per_minute: config.sends_per_minute.or(Some(UNLIMITED)),
            new_account_sends_per_minute: config.new_account_sends_per_minute.or(Some(UNLIMITED)),
            // Tests register many members from 127.0.0.1; the sign-up limit has its own test.
            signups_per_address_per_hour: config.signups_per_address_per_hour.or(Some(UNLIMITED)),
            // New staff decide at once unless a test sets the waiting period.
            staff_decide_after_hours: config.staff_decide_after_hours.or(Some(0)),
            ..config.clone()
        };
        match custodia_server::start_with_clock(raw.validate().expect("test config"), clock.clone())
            .await
        {
            Ok(r) => return r,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not start: {last:?}");
}

/// A witness (`custodia witness`) running in this process on a fresh data directory.
pub struct TestWitness {
    dir: TempDir,
    logs: Vec<NoteVerifier>,
    key: NoteVerifier,
    running: Option<RunningWitness>,
    addr: String,
}

impl TestWitness {
    /// Starts a witness of the logs with verifier keys `logs`, on `127.0.0.1:0`.
    pub async fn start(name: &str, logs: Vec<NoteVerifier>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let running = boot_witness(dir.path(), name, "127.0.0.1:0", &logs).await;
        let addr = running.url.trim_start_matches("https://").to_owned();
        Self {
            dir,
            logs,
            key: running.key.clone(),
            running: Some(running),
            addr,
        }
    }

    /// Its verifier key.
    pub fn key(&self) -> NoteVerifier {
        self.key.clone()
    }

    /// How a server is configured to use it.
    pub fn config(&self) -> RawWitness {
        RawWitness {
            url: format!("https://{}", self.addr),
            key: self.key().to_string(),
            ca_cert: self.dir.path().join("tls/ca.pem"),
        }
    }

    /// Stops it (requests fail until it is started again).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean witness shutdown");
        }
    }

    /// Starts it again on its data directory and address.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = boot_witness(self.dir.path(), self.key.name(), &self.addr, &self.logs).await;
        self.running = Some(running);
    }
}

async fn boot_witness(
    dir: &Path,
    name: &str,
    listen: &str,
    logs: &[NoteVerifier],
) -> RunningWitness {
    let mut last = None;
    for _ in 0..50 {
        let opts = WitnessOptions {
            data_dir: dir.to_owned(),
            listen: listen.parse().expect("address"),
            name: name.to_owned(),
            logs: logs.to_vec(),
        };
        match start_witness(opts).await {
            Ok(r) => return r,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("witness did not start: {last:?}");
}

/// The real `custodia` binary running as a child process.
pub struct ProcessServer {
    child: Child,
    /// Base URL.
    pub url: String,
    /// CA certificate PEM.
    pub ca: Vec<u8>,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
}

impl ProcessServer {
    /// Starts `bin serve` on `data_dir` (port 0 unless `listen` is given), logging at
    /// debug level to `log`.
    pub fn start(bin: &Path, data_dir: &Path, listen: Option<&str>, log: &Path) -> Self {
        Self::start_with_env(bin, data_dir, listen, log, &[])
    }

    /// The same, with more `CUSTODIA_*` settings in its environment.
    pub fn start_with_env(
        bin: &Path,
        data_dir: &Path,
        listen: Option<&str>,
        log: &Path,
        env: &[(String, String)],
    ) -> Self {
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = Command::new(bin)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", listen.unwrap_or("127.0.0.1:0")])
            .env("RUST_LOG", "debug")
            .env("CUSTODIA_AUDIT_LISTEN", "127.0.0.1:0")
            .env("CUSTODIA_STAFF_LISTEN", "127.0.0.1:0")
            .env("CUSTODIA_SENDS_PER_MINUTE", UNLIMITED.to_string())
            .env(
                "CUSTODIA_SIGNUPS_PER_ADDRESS_PER_HOUR",
                UNLIMITED.to_string(),
            )
            .env(
                "CUSTODIA_NEW_ACCOUNT_SENDS_PER_MINUTE",
                UNLIMITED.to_string(),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(logfile)
            .spawn()
            .expect("spawn custodia serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap_or_else(|| {
                let logs = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = logs.lines().rev().take(5).collect();
                panic!("unexpected first line from serve: {first:?}; its log ends: {tail:?}")
            })
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let ca = std::fs::read(data_dir.join("tls/ca.pem")).expect("CA certificate");
        Self {
            child,
            url,
            ca,
            log: log.to_owned(),
        }
    }

    /// A client that is not signed in.
    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.ca).expect("client")
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in /proc status")
            * 1024
    }

    /// The port it listens on.
    pub fn listen_addr(&self) -> String {
        self.url.trim_start_matches("https://").to_owned()
    }

    /// Kills it with SIGKILL (no chance to clean up).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends the server SIGHUP (it reads its TLS certificate files again).
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-HUP", &pid]).status();
    }

    /// Asks it to stop with SIGTERM and waits.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait")
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
