//! Staff accounts over the real store, key service and audit log: founding, proposals
//! that need a second person, self-enrolment, sign-in with password and single-use TOTP
//! codes, rate limits, roles, deactivation, expiry, and every step in the audit log.
//!
//! The property under test: **no single person reaches content**. Every path by which one
//! person could create, promote or enrol the accounts that would ask for and approve
//! access has a test here (and the access side — sponsors and new-role waiting — in
//! `access.rs`).

mod common;

use std::time::Duration;

use common::{FROM, Fixture, PASSWORD};
use custodia_audit::EventKind;
use custodia_core::{Password, StaffChangeStatus, StaffRole, Username};
use custodia_governance::GovernanceError;
use custodia_service::ServiceError;

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

#[tokio::test]
async fn founders_are_created_once_enrol_themselves_and_sign_in_with_single_use_codes() {
    let f = Fixture::new().await;
    let founders = f.gov.bootstrap_founders().await.unwrap();
    let roles: Vec<_> = founders
        .iter()
        .map(|n| (n.staff.username.as_str().to_owned(), n.staff.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("admin".into(), StaffRole::Admin),
            ("auditor".into(), StaffRole::Auditor)
        ]
    );
    assert!(founders.iter().all(|n| !n.staff.enrolled));
    assert!(
        f.gov.bootstrap_founders().await.unwrap().is_empty(),
        "only once"
    );
    let admin = f.enrol(&founders[0]).await.unwrap();
    assert!(admin.totp_uri.starts_with("otpauth://totp/"));

    let me = f.sign_in(&admin).await.unwrap();
    assert_eq!((me.role, me.username.as_str()), (StaffRole::Admin, "admin"));
    // The same code again (a replay) is refused, even with the right password.
    assert!(matches!(
        f.sign_in(&admin).await,
        Err(GovernanceError::BadStaffCredentials)
    ));
    // A wrong code, and a right code with a wrong password, are refused alike.
    f.next_step();
    let wrong = f
        .gov
        .sign_in(
            "admin",
            Password::parse(PASSWORD.into()).unwrap(),
            "000000",
            FROM,
        )
        .await;
    assert!(matches!(wrong, Err(GovernanceError::BadStaffCredentials)));
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
        Err(GovernanceError::BadStaffCredentials)
    ));
    // A later step's code works once (a minute on, when the sign-in budget has a token).
    f.clock.advance(Duration::from_secs(60));
    f.sign_in(&admin).await.unwrap();

    assert_eq!(
        f.logged().await,
        vec![
            (EventKind::StaffChanged, "founded".into()),
            (EventKind::StaffChanged, "enrolled".into()),
            (EventKind::StaffSignIn, "signed in".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "refused".into()),
            (EventKind::StaffSignIn, "signed in".into()),
        ],
        "every enrolment, sign-in and refusal is in the log"
    );
}

#[tokio::test]
async fn an_enrolment_code_works_once_for_its_own_account_until_it_expires() {
    let f = Fixture::new().await;
    let founders = f.gov.bootstrap_founders().await.unwrap();
    // Before enrolling, no password works (the account has none).
    assert!(matches!(
        f.gov
            .sign_in(
                "admin",
                Password::parse(PASSWORD.into()).unwrap(),
                "000000",
                FROM
            )
            .await,
        Err(GovernanceError::BadStaffCredentials)
    ));
    // A code works only for its own account.
    let wrong_account = f
        .gov
        .enrol(
            "auditor",
            &founders[0].enrolment_code,
            Password::parse(PASSWORD.into()).unwrap(),
            FROM,
        )
        .await;
    assert!(matches!(wrong_account, Err(ServiceError::Rejected(_))));
    f.enrol(&founders[0]).await.unwrap();
    assert!(
        matches!(f.enrol(&founders[0]).await, Err(ServiceError::Rejected(_))),
        "the code works once"
    );
    f.clock.advance(Duration::from_secs(3 * 24 * 3600));
    assert!(
        matches!(f.enrol(&founders[1]).await, Err(ServiceError::Rejected(_))),
        "the code expires"
    );
}

#[tokio::test]
async fn sessions_are_short_lived_and_sign_in_attempts_are_limited() {
    let f = Fixture::new().await;
    let founders = f.gov.bootstrap_founders().await.unwrap();
    let admin = f.enrol(&founders[0]).await.unwrap();
    let session = f
        .gov
        .sign_in(
            "admin",
            Password::parse(PASSWORD.into()).unwrap(),
            &f.code(&admin),
            FROM,
        )
        .await
        .unwrap();
    assert_eq!(
        f.gov.authenticate(&session.token).await.unwrap().staff_id,
        founders[0].staff.id
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
        if let Err(GovernanceError::Service(ServiceError::RateLimited { retry_after })) = r {
            assert!(retry_after > Duration::ZERO);
            limited = true;
        }
    }
    assert!(limited, "sign-in attempts are rate limited");
}

#[tokio::test]
async fn a_lone_admin_creates_and_promotes_nobody_without_a_second_person() {
    let f = Fixture::new().await;
    let (admin, auditor) = f.founders().await;

    // The proposal alone creates nothing, and hands the proposer no code.
    let proposal = f
        .gov
        .propose_staff(&admin, name("sock"), StaffRole::SeniorModerator)
        .await
        .unwrap();
    assert_eq!(proposal.status, StaffChangeStatus::Pending);
    assert!(
        f.gov
            .list_staff(&admin)
            .await
            .unwrap()
            .iter()
            .all(|s| s.username.as_str() != "sock"),
        "a proposed account does not exist"
    );
    // The proposer cannot approve it.
    assert!(matches!(
        f.gov
            .decide_staff_change(&admin, proposal.record.id, true)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    // A lower role cannot either (one admin plus an accomplice moderator).
    let moderator = f
        .add_staff(&admin, &auditor, "mia", StaffRole::Moderator)
        .await;
    assert!(matches!(
        f.gov
            .decide_staff_change(&moderator, proposal.record.id, true)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        f.gov
            .propose_staff(&moderator, name("sock2"), StaffRole::Admin)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    // Promoting the accomplice is a proposal too.
    let promote = f
        .gov
        .change_staff(&admin, moderator.staff_id, StaffRole::SeniorModerator, true)
        .await
        .unwrap();
    assert_eq!(promote.status, StaffChangeStatus::Pending);
    assert!(matches!(
        f.gov
            .decide_staff_change(&moderator, promote.record.id, true)
            .await,
        Err(ServiceError::Forbidden(_)),
    ));
    // Nobody changes their own account, nor decides a change to it.
    assert!(matches!(
        f.gov
            .change_staff(&admin, admin.staff_id, StaffRole::Auditor, true)
            .await,
        Err(ServiceError::Rejected(_))
    ));

    // The second person (the auditor, while there is one admin) approves: the code goes
    // to them, not to the proposer.
    let (decided, new) = f
        .gov
        .decide_staff_change(&auditor, proposal.record.id, true)
        .await
        .unwrap();
    assert_eq!(decided.status, StaffChangeStatus::Approved);
    let new = new.expect("an enrolment code for the approver to deliver");
    assert_eq!(new.staff.role, StaffRole::SeniorModerator);
    assert!(!new.staff.enrolled);
    // Decisions are final.
    assert!(matches!(
        f.gov
            .decide_staff_change(&auditor, proposal.record.id, false)
            .await,
        Err(ServiceError::Rejected(_))
    ));
    // Denied: nothing happens.
    let (denied, none) = f
        .gov
        .decide_staff_change(&auditor, promote.record.id, false)
        .await
        .unwrap();
    assert_eq!(
        (denied.status, none.is_none()),
        (StaffChangeStatus::Denied, true)
    );
    let mia = f
        .gov
        .list_staff(&admin)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == moderator.staff_id)
        .unwrap();
    assert_eq!(mia.role, StaffRole::Moderator);

    let changes: Vec<_> = f
        .logged()
        .await
        .into_iter()
        .filter(|(k, _)| *k == EventKind::StaffChanged)
        .map(|(_, c)| c)
        .collect();
    assert!(changes.contains(&"proposed".to_owned()));
    assert!(changes.contains(&"approved".to_owned()));
    assert!(changes.contains(&"denied".to_owned()));
}

#[tokio::test]
async fn with_two_admins_an_auditor_no_longer_approves_and_a_deactivated_one_cannot() {
    let f = Fixture::new().await;
    let (admin, auditor) = f.founders().await;
    let second = f.add_staff(&admin, &auditor, "ada", StaffRole::Admin).await;
    let p = f
        .gov
        .propose_staff(&admin, name("lena"), StaffRole::LegalOfficer)
        .await
        .unwrap();
    assert!(
        matches!(
            f.gov.decide_staff_change(&auditor, p.record.id, true).await,
            Err(ServiceError::Forbidden(_))
        ),
        "with a second admin, the second person is an admin"
    );
    // An admin deactivating the other admin (at once: it only takes access away) …
    let off = f
        .gov
        .change_staff(&admin, second.staff_id, StaffRole::Admin, false)
        .await
        .unwrap();
    assert_eq!(off.status, StaffChangeStatus::Approved);
    // … and the auditor too: then nobody is left to approve anything, so the lone admin
    // still reaches nobody's accounts.
    f.gov
        .change_staff(&admin, auditor.staff_id, StaffRole::Auditor, false)
        .await
        .unwrap();
    let back = f
        .gov
        .change_staff(&admin, second.staff_id, StaffRole::Admin, true)
        .await
        .unwrap();
    assert_eq!(
        back.status,
        StaffChangeStatus::Pending,
        "reactivation needs a second person"
    );
    assert!(matches!(
        f.gov.decide_staff_change(&admin, p.record.id, true).await,
        Err(ServiceError::Forbidden(_))
    ));
    // A proposal nobody decides expires.
    f.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let all = f.gov.staff_changes(&admin).await.unwrap();
    let lena = all.iter().find(|c| c.record.id == p.record.id).unwrap();
    assert_eq!(lena.status, StaffChangeStatus::Expired);
}

#[tokio::test]
async fn deactivation_ends_sessions_at_once_and_usernames_stay_unique() {
    let f = Fixture::new().await;
    let (admin, auditor) = f.founders().await;
    let alice = f
        .add_staff(&admin, &auditor, "alice", StaffRole::Moderator)
        .await;
    assert!(matches!(
        f.gov
            .propose_staff(&admin, name("alice"), StaffRole::Auditor)
            .await,
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        f.gov.list_staff(&alice).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert_eq!(f.gov.list_staff(&admin).await.unwrap().len(), 3);
    f.gov
        .change_staff(&admin, alice.staff_id, StaffRole::Moderator, false)
        .await
        .unwrap();
    let listed = f.gov.list_staff(&admin).await.unwrap();
    assert!(
        !listed
            .iter()
            .find(|s| s.id == alice.staff_id)
            .unwrap()
            .active
    );
    assert!(matches!(
        f.gov
            .sign_in(
                "alice",
                Password::parse(PASSWORD.into()).unwrap(),
                "000000",
                FROM
            )
            .await,
        Err(GovernanceError::BadStaffCredentials)
    ));
}

#[tokio::test]
async fn staff_change_their_own_password_and_totp_and_the_old_ones_stop_working() {
    let f = Fixture::new().await;
    let founders = f.gov.bootstrap_founders().await.unwrap();
    let mut creds = f.enrol(&founders[0]).await.unwrap();
    let me = f.sign_in(&creds).await.unwrap();
    assert!(matches!(
        f.gov
            .change_password(
                &me,
                Password::parse("not my password".into()).unwrap(),
                Password::parse("a brand new passphrase".into()).unwrap(),
            )
            .await,
        Err(GovernanceError::BadStaffCredentials)
    ));
    f.gov
        .change_password(
            &me,
            Password::parse(PASSWORD.into()).unwrap(),
            Password::parse("a brand new passphrase".into()).unwrap(),
        )
        .await
        .unwrap();
    f.next_step();
    assert!(
        f.sign_in(&creds).await.is_err(),
        "the old password stops working"
    );
    creds.password = "a brand new passphrase".into();
    f.next_step();
    let me = f.sign_in(&creds).await.unwrap();

    let uri = f
        .gov
        .reenrol_totp(&me, Password::parse(creds.password.clone()).unwrap())
        .await
        .unwrap();
    assert_ne!(uri.as_str(), creds.totp_uri);
    f.next_step();
    assert!(
        f.sign_in(&creds).await.is_err(),
        "the old TOTP secret stops working"
    );
    creds.totp_uri = uri.to_string();
    f.next_step();
    f.sign_in(&creds).await.unwrap();
    let changes: Vec<_> = f
        .logged()
        .await
        .into_iter()
        .filter(|(k, _)| *k == EventKind::StaffChanged)
        .map(|(_, c)| c)
        .collect();
    assert!(changes.contains(&"password changed".to_owned()));
    assert!(changes.contains(&"totp re-enrolled".to_owned()));
}
