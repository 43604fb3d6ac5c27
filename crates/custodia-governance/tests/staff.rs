//! Staff accounts over the real store, key service and audit log: bootstrap, sign-in
//! with password and single-use TOTP codes, rate limits, roles, deactivation, expiry, and
//! every step in the audit log.

mod common;

use std::time::Duration;

use common::{FROM, Fixture};
use custodia_audit::EventKind;
use custodia_core::{Password, StaffRole, Username};
use custodia_service::ServiceError;

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
