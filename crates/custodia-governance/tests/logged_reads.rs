//! Log before release, enforced by the key service: a staff unwrap needs the audit log's
//! receipt for exactly that read. A receipt for another read, a forged entry, a stale
//! checkpoint or one signed by another key opens nothing.

mod common;

use std::time::Duration;

use common::Fixture;
use custodia_audit::{Actor, AuditEvent, EventKind, Receipt, Subject};
use custodia_core::{Clock, ConversationId, RequestId};
use custodia_keys::{KeyError, Purpose};
use custodia_service::context_of;
use custodia_store::SeqRange;

fn read_event(f: &Fixture, grant: RequestId, conv: ConversationId, messages: &str) -> AuditEvent {
    AuditEvent {
        kind: EventKind::AccessRead,
        time: f.clock.now(),
        actor: Some(Actor {
            staff_id: "staff".into(),
            role: "moderator".into(),
        }),
        reason: Some("report_review".into()),
        case: Some("case".into()),
        subjects: vec![Subject::Conversation(conv)],
        scope: vec![
            ("request".into(), grant.to_string()),
            ("tier".into(), "content".into()),
            ("messages".into(), messages.into()),
        ],
    }
}

fn refused(r: Result<custodia_keys::LoggedAccess, KeyError>) -> &'static str {
    match r {
        Err(KeyError::NotLogged(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_receipt_of_exactly_this_read_opens_exactly_its_messages() {
    let f = Fixture::new().await;
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    let conv = f.chat(&alice, &bob, 3, Duration::from_secs(1)).await;
    let other_conv = f
        .chat(&bob, &f.user("carol").await, 1, Duration::from_secs(1))
        .await;
    let grant = RequestId::new();
    let early: Receipt = f
        .audit
        .append(&read_event(&f, RequestId::new(), conv, "1"))
        .await
        .unwrap();
    let receipt = f
        .audit
        .append(&read_event(&f, grant, conv, "1 2"))
        .await
        .unwrap();

    // The receipt of this read: messages 1 and 2 open, message 3 does not.
    let access = f.keys.verify_logged_read(&receipt, grant, conv).unwrap();
    let stored = f
        .storage
        .messages
        .messages(conv, SeqRange::After(0), 10)
        .await
        .unwrap();
    for m in &stored {
        let opened = f
            .keys
            .open(
                Purpose::StaffAccess(access.clone()),
                context_of(m),
                m.sealed.as_ref().unwrap(),
            )
            .await;
        match m.seq {
            1 | 2 => assert!(opened.is_ok(), "message {} is in the logged read", m.seq),
            _ => assert!(
                matches!(opened, Err(KeyError::NotLogged(_))),
                "message {} is not in the logged read",
                m.seq
            ),
        }
    }

    // A receipt for another read: another grant, another conversation.
    refused(f.keys.verify_logged_read(&receipt, RequestId::new(), conv));
    refused(f.keys.verify_logged_read(&receipt, grant, other_conv));
    refused(f.keys.verify_logged_read(&early, grant, conv));

    // A forged entry: more messages named, with or without the leaf hash to match.
    let mut forged = receipt.clone();
    forged.entry = read_event(&f, grant, conv, "1 2 3")
        .entry(&custodia_audit::PseudonymKey::from_bytes([9; 32]))
        .unwrap();
    assert!(refused(f.keys.verify_logged_read(&forged, grant, conv)).contains("leaf"));
    forged.leaf_hash = custodia_tlog::leaf_hash(&forged.entry);
    assert!(refused(f.keys.verify_logged_read(&forged, grant, conv)).contains("tree"));

    // A stale checkpoint, from before the entry was appended.
    let mut stale = receipt.clone();
    stale.checkpoint = early.checkpoint.clone();
    refused(f.keys.verify_logged_read(&stale, grant, conv));

    // The same checkpoint text signed by another key.
    let note = custodia_tlog::SignedNote::parse(receipt.checkpoint.as_bytes()).unwrap();
    let impostor = custodia_tlog::NoteSigner::generate("test/audit").unwrap();
    let mut resigned = receipt.clone();
    resigned.checkpoint = custodia_tlog::SignedNote {
        text: note.text.clone(),
        signatures: vec![impostor.sign(&note.text).unwrap()],
    }
    .to_string();
    assert!(refused(f.keys.verify_logged_read(&resigned, grant, conv)).contains("signed"));

    // With a witness quorum configured, an uncosigned checkpoint is not enough.
    let dir = tempfile::tempdir().unwrap();
    let (keyring, _) = custodia_keys::Keyring::load_or_create(&dir.path().join("k"), None).unwrap();
    let witness = custodia_tlog::NoteSigner::generate_kind(
        "witness.test/w",
        custodia_tlog::KeyKind::CosignatureV1,
    )
    .unwrap()
    .verifier();
    let witnessed = custodia_keys::KeyService::new(
        custodia_core::DeploymentId::new(),
        keyring,
        f.storage.deks.clone(),
        f.clock.clone(),
        custodia_keys::CacheLimits {
            capacity: std::num::NonZeroUsize::new(4).unwrap(),
            max_age: Duration::from_secs(60),
        },
    )
    .with_log_authority(custodia_keys::LogAuthority::new(
        f.audit.verifier(),
        vec![witness],
        1,
        custodia_audit::PseudonymKey::from_bytes([9; 32]),
    ));
    assert!(refused(witnessed.verify_logged_read(&receipt, grant, conv)).contains("witness"));
}
