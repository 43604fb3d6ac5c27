//! KEK rotation in governance, over the real SQLite store and keyring file: the staff's
//! TOTP secrets and reporters' texts are rewrapped with the data keys, so staff still sign
//! in and cases still read once the old version is retired; an item that does not open is
//! left as it is and keeps the rotation from being recorded complete.

mod common;

use common::{Creds, Fixture, PASSWORD};
use custodia_core::{Clock, ReportCategory, StaffRole};
use custodia_governance::{KekStatus, Report, ReportedMessage};
use custodia_keys::Keyring;
use custodia_store::{KekSealedKind, KekStep, KekStepKind, WrappedDek};

/// Records that the operator made `version` current (what `custodia admin keys rotate`
/// does after adding it to the keyring file).
async fn rotate(f: &Fixture) -> u32 {
    let version = Keyring::add_version(&f.dir.path().join("keyring"), None, true).unwrap();
    assert!(
        f.storage
            .deks
            .add_kek_step(KekStep {
                kind: KekStepKind::Rotated,
                version,
                at: f.clock.now(),
                detail: String::new(),
                log_index: None,
            })
            .await
            .unwrap()
    );
    version
}

/// Rounds with an ample budget (its pacing is then microseconds) until one finds the
/// rotation complete, or `most` rounds.
async fn rounds(f: &Fixture, most: usize) -> bool {
    for _ in 0..most {
        if f.gov.rotation_round(1_000_000).await.unwrap().complete {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_rotation_rewraps_totp_secrets_and_case_texts_so_staff_sign_in_and_cases_read_after_retiring()
 {
    let f = Fixture::new().await;
    let staff = f.staff(&[("mia", StaffRole::Moderator)]).await;
    let mia = &staff[0];
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    let chat = f
        .chat(&alice, &bob, 3, std::time::Duration::from_secs(1))
        .await;
    let case = f
        .gov
        .report(
            &bob,
            Report {
                conversation_id: chat,
                messages: vec![ReportedMessage {
                    seq: 2,
                    text: Some("message 2".into()),
                    franking_key: None,
                }],
                category: ReportCategory::Harassment,
                comment: Some("she keeps writing".into()),
            },
        )
        .await
        .unwrap();
    let before = KekStatus::read(&f.storage).await.unwrap();
    for kind in [
        KekSealedKind::Dek,
        KekSealedKind::Totp,
        KekSealedKind::CaseComment,
        KekSealedKind::Evidence,
    ] {
        assert!(
            before
                .usage
                .iter()
                .any(|u| u.kind == kind && u.version == 1),
            "{kind:?} sealed under version 1: {before:?}"
        );
    }

    assert_eq!(rotate(&f).await, 2);
    assert!(rounds(&f, 20).await, "the rotation completes");
    assert_eq!(f.keys.current_kek(), 2);
    let after = KekStatus::read(&f.storage).await.unwrap();
    assert_eq!(after.under(1), 0, "{after:?}");
    assert_eq!(after.under(2), before.total());
    assert!(after.has(KekStepKind::Rewrapped, 2));

    // Version 1 destroyed; the provider reads the keyring again at the next round.
    Keyring::retire(&f.dir.path().join("keyring"), None, 1).unwrap();
    f.storage
        .deks
        .add_kek_step(KekStep {
            kind: KekStepKind::Retired,
            version: 1,
            at: f.clock.now(),
            detail: String::new(),
            log_index: None,
        })
        .await
        .unwrap();
    f.gov.rotation_round(1_000_000).await.unwrap();
    assert_eq!(f.keys.kek_versions(), vec![2]);

    // The moderator signs in again with the same authenticator (the TOTP secret opens),
    // and the case's texts read as the reporter gave them.
    f.next_step();
    let again = f
        .sign_in(&Creds {
            username: mia.username.as_str().into(),
            password: PASSWORD.into(),
            totp_uri: f.founder_uri(StaffRole::Admin),
        })
        .await;
    assert!(again.is_err(), "another's authenticator does not work");
    let admin = f
        .sign_in(&Creds {
            username: "admin".into(),
            password: PASSWORD.into(),
            totp_uri: f.founder_uri(StaffRole::Admin),
        })
        .await;
    assert!(
        admin.is_ok(),
        "the admin's TOTP secret opens under version 2"
    );
    let view = f.gov.case(mia, case).await.unwrap();
    assert_eq!(view.comment.as_deref(), Some("she keeps writing"));
    assert_eq!(
        view.evidence
            .iter()
            .find(|e| e.seq == 2)
            .and_then(|e| e.text.as_deref()),
        Some("message 2")
    );
    // Every step is in the log.
    let logged = f.logged().await;
    let rotations = logged
        .iter()
        .filter(|(k, _)| *k == custodia_audit::EventKind::KeyRotated)
        .count();
    assert_eq!(rotations, 3, "rotated, rewrapped, retired: {logged:?}");
}

#[tokio::test]
async fn an_item_that_does_not_open_is_left_and_the_rotation_is_not_recorded_complete() {
    let f = Fixture::new().await;
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    f.chat(&alice, &bob, 2, std::time::Duration::from_secs(1))
        .await;
    let carol = f.user("carol").await;
    f.chat(&alice, &carol, 2, std::time::Duration::from_secs(1))
        .await;
    // One data key's wrapped bytes are damaged.
    let dek = f
        .storage
        .deks
        .kek_sealed_not_under(KekSealedKind::Dek, 99, None, 1)
        .await
        .unwrap()
        .remove(0);
    let mut bytes = dek.sealed.bytes.clone();
    bytes[5] ^= 1;
    assert!(
        f.storage
            .deks
            .replace_kek_sealed(
                dek,
                WrappedDek {
                    kek_version: 1,
                    bytes
                }
            )
            .await
            .unwrap()
    );
    rotate(&f).await;
    assert!(!rounds(&f, 10).await, "never recorded complete");
    let status = KekStatus::read(&f.storage).await.unwrap();
    assert_eq!(
        status.under(1),
        1,
        "only the damaged key is left: {status:?}"
    );
    assert!(status.under(2) >= 1);
    assert!(!status.has(KekStepKind::Rewrapped, 2));
}

#[tokio::test]
async fn after_the_rotation_a_key_left_under_the_old_version_is_rewrapped_at_the_next_sweep() {
    let f = Fixture::new().await;
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    f.chat(&alice, &bob, 2, std::time::Duration::from_secs(1))
        .await;
    let old = f
        .storage
        .deks
        .kek_sealed_not_under(KekSealedKind::Dek, 99, None, 1)
        .await
        .unwrap()
        .remove(0);
    rotate(&f).await;
    assert!(rounds(&f, 10).await);
    // A node that had not adopted version 2 yet stored this key under version 1 (here:
    // the key as it was before the rotation is put back).
    let now = f
        .storage
        .deks
        .kek_sealed_not_under(KekSealedKind::Dek, 1, None, 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        f.storage
            .deks
            .replace_kek_sealed(now, old.sealed.clone())
            .await
            .unwrap()
    );
    // Complete rotations are not swept every second (a sweep reads every key)…
    f.gov.rotation_round(1_000_000).await.unwrap();
    let status = KekStatus::read(&f.storage).await.unwrap();
    assert_eq!(status.under(1), 1, "{status:?}");
    // …but every ten minutes.
    f.clock.advance(std::time::Duration::from_secs(11 * 60));
    for _ in 0..3 {
        f.gov.rotation_round(1_000_000).await.unwrap();
    }
    let status = KekStatus::read(&f.storage).await.unwrap();
    assert_eq!(status.under(1), 0, "{status:?}");
}
