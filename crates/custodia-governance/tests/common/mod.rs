//! A governance service over the real SQLite store, key service and audit log, with a
//! pinned clock, and the messaging service beside it to make users and messages.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use custodia_audit::{AuditLog, EventKind, PseudonymKey};
use custodia_core::{
    BirthDate, ClientMsgId, Clock, ConversationId, DeploymentId, ManualClock, MessageBody,
    Password, StaffRole, Timestamp, Username,
};
use custodia_governance::{Governance, GovernanceConfig, NewStaff, StaffPrincipal};
use custodia_keys::{CacheLimits, KeyService, KeyringFile, LogAuthority};
use custodia_service::{Hub, LocalFanout, Principal, Service, ServiceConfig, ServiceError};
use custodia_store::{NoObserver, Storage};
use custodia_store_sqlite::SqliteStore;

pub const FROM: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The founders' TOTP URIs once enrolled (admin, auditor).
    founder_uris: std::sync::Mutex<Vec<(StaffRole, String)>>,
    pub clock: Arc<ManualClock>,
    pub audit: Arc<AuditLog>,
    pub keys: Arc<KeyService>,
    pub storage: Storage,
    pub gov: Governance,
    pub service: Service,
}

/// A staff member's credentials after enrolling.
pub struct Creds {
    pub username: String,
    pub password: String,
    pub totp_uri: String,
}

impl Fixture {
    /// Staff decide requests as soon as they hold their role (the waiting period has its
    /// own tests).
    pub async fn new() -> Self {
        Self::with_config(GovernanceConfig {
            new_role_decides_after: Duration::ZERO,
            ..GovernanceConfig::default()
        })
        .await
    }

    pub async fn with_config(config: GovernanceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
            .await
            .unwrap();
        let storage = Storage::from_backend(sqlite);
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_435_200_000)));
        // The server's own provider: the keyring file, read again when it changes.
        let (keyring, _) = KeyringFile::open(&dir.path().join("keyring"), None).unwrap();
        let audit = Arc::new(AuditLog::new(
            storage.log.clone(),
            custodia_tlog::NoteSigner::generate("test/audit").unwrap(),
            "test/audit",
            PseudonymKey::from_bytes([9; 32]),
        ));
        let keys = Arc::new(
            KeyService::new(
                DeploymentId::new(),
                keyring,
                storage.deks.clone(),
                clock.clone(),
                CacheLimits {
                    capacity: NonZeroUsize::new(16).unwrap(),
                    max_age: Duration::from_secs(60),
                },
            )
            .with_log_authority(LogAuthority::new(
                audit.verifier(),
                Vec::new(),
                0,
                PseudonymKey::from_bytes([9; 32]),
            )),
        );
        let gov = Governance::new(
            storage.clone(),
            keys.clone(),
            audit.clone(),
            clock.clone(),
            config,
        );
        let hub = Hub::new();
        let service = Service::new(
            storage.clone(),
            keys.clone(),
            clock.clone(),
            hub.clone(),
            Arc::new(LocalFanout(hub)),
            ServiceConfig::default(),
        );
        Self {
            dir,
            founder_uris: std::sync::Mutex::new(Vec::new()),
            clock,
            audit,
            keys,
            storage,
            gov,
            service,
        }
    }

    /// The code an authenticator app shows now for `staff`.
    pub fn code(&self, staff: &Creds) -> String {
        let totp = totp_rs::Totp::from_url(&staff.totp_uri).unwrap();
        let secs = u64::try_from(self.clock.now().as_millis() / 1000).unwrap();
        totp.generate(secs).to_string()
    }

    pub async fn sign_in(
        &self,
        staff: &Creds,
    ) -> Result<StaffPrincipal, custodia_governance::GovernanceError> {
        let code = self.code(staff);
        self.gov
            .sign_in(
                &staff.username,
                Password::parse(staff.password.clone()).unwrap(),
                &code,
                FROM,
            )
            .await
            .map(|s| s.staff)
    }

    /// Enrols a new account with its code and the test password.
    pub async fn enrol(&self, new: &NewStaff) -> Result<Creds, ServiceError> {
        let enrolled = self
            .gov
            .enrol(
                new.staff.username.as_str(),
                &new.enrolment_code,
                Password::parse(PASSWORD.into()).unwrap(),
                FROM,
            )
            .await?;
        Ok(Creds {
            username: new.staff.username.as_str().into(),
            password: PASSWORD.into(),
            totp_uri: enrolled.totp_uri.to_string(),
        })
    }

    /// A founder's TOTP URI (after [`Fixture::founders`]).
    pub fn founder_uri(&self, role: StaffRole) -> String {
        let uris = self.founder_uris.lock().unwrap();
        uris.iter().find(|(r, _)| *r == role).unwrap().1.clone()
    }

    /// Moves to the next 30-second TOTP step.
    pub fn next_step(&self) {
        self.clock.advance(Duration::from_secs(30));
    }

    /// The founding admin and auditor, enrolled and signed in.
    pub async fn founders(&self) -> (StaffPrincipal, StaffPrincipal) {
        let founders = self.gov.bootstrap_founders().await.unwrap();
        assert_eq!(founders.len(), 2);
        let admin = self.enrol(&founders[0]).await.unwrap();
        let auditor = self.enrol(&founders[1]).await.unwrap();
        if let Ok(mut uris) = self.founder_uris.lock() {
            uris.push((StaffRole::Admin, admin.totp_uri.clone()));
            uris.push((StaffRole::Auditor, auditor.totp_uri.clone()));
        }
        (
            self.sign_in(&admin).await.unwrap(),
            self.sign_in(&auditor).await.unwrap(),
        )
    }

    /// A new account proposed by `proposer`, approved by `approver`, enrolled and signed in.
    pub async fn add_staff(
        &self,
        proposer: &StaffPrincipal,
        approver: &StaffPrincipal,
        name: &str,
        role: StaffRole,
    ) -> StaffPrincipal {
        let change = self
            .gov
            .propose_staff(proposer, Username::parse(name).unwrap(), role)
            .await
            .unwrap();
        let (_, new) = self
            .gov
            .decide_staff_change(approver, change.record.id, true)
            .await
            .unwrap();
        let creds = self.enrol(&new.unwrap()).await.unwrap();
        self.sign_in(&creds).await.unwrap()
    }

    /// Founds the deployment, creates staff of these roles (the admin proposes, the
    /// auditor approves) and signs them in.
    pub async fn staff(&self, roles: &[(&str, StaffRole)]) -> Vec<StaffPrincipal> {
        let (admin, auditor) = self.founders().await;
        let mut out = Vec::new();
        for (name, role) in roles {
            out.push(self.add_staff(&admin, &auditor, name, *role).await);
        }
        out
    }

    /// A signed-in user.
    pub async fn user(&self, name: &str) -> Principal {
        let today = self.clock.now().to_datetime().date();
        self.service
            .register(
                Username::parse(name).unwrap(),
                Password::parse(PASSWORD.into()).unwrap(),
                BirthDate::parse("1990-01-01", today).unwrap(),
                FROM,
            )
            .await
            .unwrap();
        let s = self
            .service
            .login(
                name,
                Password::parse(PASSWORD.into()).unwrap(),
                "test",
                FROM,
            )
            .await
            .unwrap();
        self.service.authenticate(&s.token).await.unwrap()
    }

    /// A direct conversation from `a` to `b` with `n` messages by `a`, `gap` apart.
    pub async fn chat(
        &self,
        a: &Principal,
        b: &Principal,
        n: u64,
        gap: Duration,
    ) -> ConversationId {
        let (conv, _) = self.service.open_direct(a, &b.username).await.unwrap();
        for i in 1..=n {
            self.service
                .send(
                    a,
                    conv.id,
                    ClientMsgId::parse(&format!("m{i}")).unwrap(),
                    MessageBody::parse(format!("message {i}")).unwrap(),
                )
                .await
                .unwrap();
            self.clock.advance(gap);
        }
        conv.id
    }

    /// Kinds and `outcome` (or `change`) of every log entry, from the full records.
    pub async fn logged(&self) -> Vec<(EventKind, String)> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(e) = self.audit.record(i).await.unwrap() {
            let outcome = e
                .scope
                .iter()
                .find(|(k, _)| k == "outcome" || k == "change")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            out.push((e.kind, outcome));
            i += 1;
        }
        out
    }
}
