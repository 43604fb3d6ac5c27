//! The audit log service over the real SQLite store.

use std::sync::Arc;

use custodia_audit::{
    Actor, AuditError, AuditEvent, AuditLog, EntryView, EventKind, Pseudonym, PseudonymKey, Subject,
};
use custodia_core::{ConversationId, Timestamp, UserId};
use custodia_store::NoObserver;
use custodia_store_sqlite::SqliteStore;
use custodia_tlog::{Checkpoint, NoteSigner, SignedNote, verify_inclusion};

fn event(case: &str, subjects: Vec<Subject>) -> AuditEvent {
    AuditEvent {
        kind: EventKind::AccessRead,
        time: Timestamp::from_millis(1_764_000_000_000),
        actor: Some(Actor {
            staff_id: "staff-7".into(),
            role: "moderator".into(),
        }),
        reason: Some("report_review".into()),
        case: Some(case.into()),
        subjects,
        scope: vec![("messages".into(), "12-40".into())],
    }
}

async fn open_log(path: &std::path::Path, key: [u8; 32]) -> AuditLog {
    let store = SqliteStore::open(path, Arc::new(NoObserver)).await.unwrap();
    AuditLog::new(
        store,
        NoteSigner::generate("example.org/audit").unwrap(),
        "example.org/audit",
        PseudonymKey::from_bytes(key),
    )
}

#[tokio::test]
async fn every_append_gets_a_receipt_that_verifies_against_a_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open_log(&dir.path().join("db"), [7; 32]).await);
    let known = [log.verifier()];

    let appends: Vec<_> = (0..50)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(&event(&format!("case {i}"), vec![]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut indexes = Vec::new();
    for a in appends {
        let receipt = a.await.unwrap();
        let note = SignedNote::parse(receipt.checkpoint.as_bytes()).unwrap();
        note.verify(&known).unwrap();
        let cp = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(cp.origin, "example.org/audit");
        assert!(cp.size > receipt.index);
        verify_inclusion(
            receipt.index,
            cp.size,
            &receipt.leaf_hash,
            &receipt.proof,
            &cp.root,
        )
        .unwrap();
        indexes.push(receipt.index);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..50).collect::<Vec<_>>());
    let mut huge = event("huge", vec![]);
    huge.scope = (0..2_000)
        .map(|i| (format!("field {i}"), "x".repeat(30)))
        .collect();
    assert!(matches!(
        log.append(&huge).await,
        Err(AuditError::BadEntry(_))
    ));
    let after = log.append(&event("after", vec![])).await.unwrap();
    assert_eq!(after.index, 50, "the refused event took no index");
}

#[tokio::test]
async fn entries_tag_subjects_and_records_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let log = open_log(&path, [1; 32]).await;
    let (alice, chat) = (UserId::new(), ConversationId::new());
    let subjects = vec![Subject::User(alice), Subject::Conversation(chat)];
    let e = event("case-1", subjects.clone());
    let receipt = log.append(&e).await.unwrap();

    // The full record is kept beside the entry and reads back as the event.
    assert_eq!(log.record(receipt.index).await.unwrap(), Some(e.clone()));
    // The public entry holds neither raw id, only the subjects' tags.
    let db = rusqlite::Connection::open(&path).unwrap();
    let entry: Vec<u8> = db
        .query_row("SELECT entry FROM log_leaves WHERE idx = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    for id in [alice.as_bytes(), chat.as_bytes()] {
        assert!(!entry.windows(16).any(|w| w == id), "a raw id in the entry");
    }
    let view = EntryView::parse(&entry).unwrap();
    assert_eq!(
        view.event.subjects,
        vec![
            Pseudonym::User(log.subject_key(&subjects[0]).tag(&view.salt)),
            Pseudonym::Conversation(log.subject_key(&subjects[1]).tag(&view.salt)),
        ]
    );
    assert_eq!(
        (
            view.event.kind,
            view.event.case.as_deref(),
            view.event.actor
        ),
        (EventKind::AccessRead, Some("case-1"), e.actor.clone())
    );
}

#[tokio::test]
async fn a_stored_log_inconsistent_with_its_last_checkpoint_is_never_signed_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let log = open_log(&path, [3; 32]).await;
    for i in 0..5 {
        log.append(&event(&format!("case {i}"), vec![]))
            .await
            .unwrap();
    }
    // Someone rewrites history under the log: entry 2 and its leaf hash.
    let db = rusqlite::Connection::open(&path).unwrap();
    let forged = custodia_tlog::leaf_hash(b"forged");
    db.execute(
        "UPDATE log_leaves SET entry = ?1, hash = ?2 WHERE idx = 2",
        (b"forged".to_vec(), forged.to_vec()),
    )
    .unwrap();
    drop(db);
    match log.append(&event("after the edit", vec![])).await {
        Err(AuditError::Inconsistent(why)) => assert!(why.contains("not consistent"), "{why}"),
        other => panic!("signed over a rewritten log: {other:?}"),
    }
}
