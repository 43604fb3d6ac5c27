//! The audit log service over the real SQLite store.

use std::sync::Arc;

use custodia_audit::{AuditError, AuditLog};
use custodia_store::NoObserver;
use custodia_store_sqlite::SqliteStore;
use custodia_tlog::{Checkpoint, NoteSigner, SignedNote, verify_inclusion};

#[tokio::test]
async fn every_append_gets_a_receipt_that_verifies_against_a_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
        .await
        .unwrap();
    let log = Arc::new(AuditLog::new(
        store,
        NoteSigner::generate("example.org/audit").unwrap(),
        "example.org/audit",
    ));
    let known = [log.verifier()];

    let appends: Vec<_> = (0..50)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(
                async move { log.append(format!("entry {i}").into_bytes()).await.unwrap() },
            )
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
    assert!(matches!(
        log.append(Vec::new()).await,
        Err(AuditError::BadEntry)
    ));
    assert!(matches!(
        log.append(vec![0; 65_536]).await,
        Err(AuditError::BadEntry)
    ));
}

#[tokio::test]
async fn a_stored_log_inconsistent_with_its_last_checkpoint_is_never_signed_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteStore::open(&path, Arc::new(NoObserver))
        .await
        .unwrap();
    let log = AuditLog::new(
        store,
        NoteSigner::generate("example.org/audit").unwrap(),
        "example.org/audit",
    );
    for i in 0..5 {
        log.append(format!("entry {i}").into_bytes()).await.unwrap();
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
    match log.append(b"after the edit".to_vec()).await {
        Err(AuditError::Inconsistent(why)) => assert!(why.contains("not consistent"), "{why}"),
        other => panic!("signed over a rewritten log: {other:?}"),
    }
}
