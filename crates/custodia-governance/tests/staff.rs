//! Staff accounts over the real store, key service and audit log: bootstrap, sign-in
//! with password and single-use TOTP codes, rate limits, roles, deactivation, expiry, and
//! every step in the audit log.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use custodia_audit::{AuditLog, EventKind, PseudonymKey};
use custodia_core::{Clock, DeploymentId, ManualClock, Password, StaffRole, Timestamp, Username};
use custodia_governance::{Governance, GovernanceConfig, NewStaff, StaffPrincipal};
use custodia_keys::{CacheLimits, KeyService, Keyring};
use custodia_service::ServiceError;
use custodia_store::{NoObserver, Storage};
use custodia_store_sqlite::SqliteStore;

const FROM: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    audit: Arc<AuditLog>,
    gov: Governance,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
            .await
            .unwrap();
        let storage = Storage::from_backend(sqlite);
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_435_200_000)));
        let (keyring, _) = Keyring::load_or_create(&dir.path().join("keyring"), None).unwrap();
        let keys = Arc::new(KeyService::new(
            DeploymentId::new(),
            keyring,
            storage.deks.clone(),
            clock.clone(),
            CacheLimits {
                capacity: NonZeroUsize::new(16).unwrap(),
                max_age: Duration::from_secs(60),
            },
        ));
        let audit = Arc::new(AuditLog::new(
            storage.log.clone(),
            custodia_tlog::NoteSigner::generate("test/audit").unwrap(),
            "test/audit",
            PseudonymKey::from_bytes([9; 32]),
        ));
        let gov = Governance::new(
            storage,
            keys,
            audit.clone(),
            clock.clone(),
            GovernanceConfig::default(),
        );
        Self {
            _dir: dir,
            clock,
            audit,
            gov,
        }
    }

    /// The code an authenticator app shows now for `staff`.
    fn code(&self, staff: &NewStaff) -> String {
        let totp = totp_rs::Totp::from_url(staff.totp_uri.as_str()).unwrap();
        let secs = u64::try_from(self.clock.now().as_millis() / 1000).unwrap();
        totp.generate(secs).to_string()
    }

    async fn sign_in(&self, staff: &NewStaff) -> Result<StaffPrincipal, ServiceError> {
        let code = self.code(staff);
        self.gov
            .sign_in(
                staff.staff.username.as_str(),
                Password::parse(staff.password.to_string()).unwrap(),
                &code,
                FROM,
            )
            .await
            .map(|s| s.staff)
    }

    /// Moves to the next 30-second TOTP step.
    fn next_step(&self) {
        self.clock.advance(Duration::from_secs(30));
    }

    /// Kinds and `outcome`s of every log entry, from the full records.
    async fn logged(&self) -> Vec<(EventKind, String)> {
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

#[tokio::test]
async fn the_first_admin_is_bootstrapped_once_and_signs_in_with_a_single_use_code() {
    let f = Fixture::new().await;
    let admin = f.gov.bootstrap_admin().await.unwrap().expect("first start");
    assert_eq!(admin.staff.role, StaffRole::Admin);
    assert!(admin.totp_uri.starts_with("otpauth://totp/"));
    assert!(
        f.gov.bootstrap_admin().await.unwrap().is_none(),
        "only once"
    );

    let me = f.sign_in(&admin).await.unwrap();
    assert_eq!((me.role, me.username.as_str()), (StaffRole::Admin, "admin"));
    // The same code again (a replay) is refused, even with the right password.
    assert!(matches!(
        f.sign_in(&admin).await,
        Err(ServiceError::BadStaffCredentials)
    ));
    // A wrong code, and a right code with a wrong password, are refused alike.
    f.next_step();
    let wrong = f
        .gov
        .sign_in(
            "admin",
            Password::parse(admin.password.to_string()).unwrap(),
            "000000",
            FROM,
        )
        .await;
    assert!(matches!(wrong, Err(ServiceError::BadStaffCredentials)));
    let bad_password = f
        .gov
        .sign_in(
            "admin",
            Password::parse("not the password".into()).unwrap(),
            &f.code(&admin),
            FROM,
        )
        .await;
    assert!(matches!(
        bad_password,
        Err(ServiceError::BadStaffCredentials)
    ));
    // The next step's code works once.
    f.sign_in(&admin).await.unwrap();

    assert_eq!(
        f.logged().await,
        vec![
            (EventKind::StaffChanged, "created".into()),
            (EventKind::StaffSignIn, "signed in".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "signed in".into()),
        ],
        "every sign-in and refusal is in the log"
    );
}

#[tokio::test]
async fn sessions_are_short_lived_and_sign_in_attempts_are_limited() {
    let f = Fixture::new().await;
    let admin = f.gov.bootstrap_admin().await.unwrap().unwrap();
    let session = f
        .gov
        .sign_in(
            "admin",
            Password::parse(admin.password.to_string()).unwrap(),
            &f.code(&admin),
            FROM,
        )
        .await
        .unwrap();
    assert_eq!(
        f.gov.authenticate(&session.token).await.unwrap().staff_id,
        admin.staff.id
    );
    f.clock.advance(Duration::from_secs(15 * 60));
    assert!(matches!(
        f.gov.authenticate(&session.token).await,
        Err(ServiceError::Unauthenticated)
    ));
    assert!(matches!(
        f.gov.authenticate("css_forged").await,
        Err(ServiceError::Unauthenticated)
    ));

    // Five attempts per account in five minutes: the sixth is refused before any check.
    let mut limited = false;
    for _ in 0..6 {
        let r = f
            .gov
            .sign_in(
                "admin",
                Password::parse("wrong password".into()).unwrap(),
                "123456",
                FROM,
            )
            .await;
        if let Err(ServiceError::RateLimited { retry_after }) = r {
            assert!(retry_after > Duration::ZERO);
            limited = true;
        }
    }
    assert!(limited, "sign-in attempts are rate limited");
}

#[tokio::test]
async fn only_admins_manage_staff_and_deactivation_ends_sessions_at_once() {
    let f = Fixture::new().await;
    let admin_creds = f.gov.bootstrap_admin().await.unwrap().unwrap();
    let admin = f.sign_in(&admin_creds).await.unwrap();
    let alice = f
        .gov
        .create_staff(
            &admin,
            Username::parse("alice").unwrap(),
            StaffRole::Moderator,
        )
        .await
        .unwrap();
    assert!(matches!(
        f.gov
            .create_staff(
                &admin,
                Username::parse("alice").unwrap(),
                StaffRole::Auditor
            )
            .await,
        Err(ServiceError::Conflict(_))
    ));
    let alice_session = {
        let code = f.code(&alice);
        f.gov
            .sign_in(
                "alice",
                Password::parse(alice.password.to_string()).unwrap(),
                &code,
                FROM,
            )
            .await
            .unwrap()
    };
    let moderator = &alice_session.staff;
    assert!(matches!(
        f.gov
            .create_staff(
                moderator,
                Username::parse("mallory").unwrap(),
                StaffRole::Admin
            )
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        f.gov.list_staff(moderator).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        f.gov
            .update_staff(moderator, moderator.staff_id, StaffRole::Admin, true)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        f.gov
            .update_staff(&admin, admin.staff_id, StaffRole::Auditor, true)
            .await,
        Err(ServiceError::Rejected(_))
    ));
    assert_eq!(f.gov.list_staff(&admin).await.unwrap().len(), 2);

    let changed = f
        .gov
        .update_staff(&admin, alice.staff.id, StaffRole::Moderator, false)
        .await
        .unwrap();
    assert!(!changed.active);
    assert!(matches!(
        f.gov.authenticate(&alice_session.token).await,
        Err(ServiceError::Unauthenticated)
    ));
    f.next_step();
    assert!(matches!(
        f.sign_in(&alice).await,
        Err(ServiceError::BadStaffCredentials)
    ));
    let kinds: Vec<_> = f
        .logged()
        .await
        .into_iter()
        .filter(|(k, _)| *k == EventKind::StaffChanged)
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::StaffChanged, "created".into()),
            (EventKind::StaffChanged, "created".into()),
            (EventKind::StaffChanged, "updated".into()),
        ]
    );
}
