//! Two nodes' audit logs over one PostgreSQL database (the same signing key, as nodes of
//! one deployment have): concurrent appends from both get distinct indices and receipts
//! that verify, and every checkpoint either signs is consistent with every later one.

use std::sync::Arc;

use custodia_audit::{AuditEvent, AuditLog, EventKind, PseudonymKey};
use custodia_core::Timestamp;
use custodia_store::NoObserver;
use custodia_store_postgres::scratch::ScratchDatabase;
use custodia_store_postgres::{PgOptions, PgStore};
use custodia_tlog::{Checkpoint, NoteSigner, SignedNote, verify_consistency, verify_inclusion};

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        kind: EventKind::AccessRead,
        time: Timestamp::from_millis(1_764_000_000_000),
        actor: None,
        reason: Some("report_review".into()),
        case: Some(format!("case {n}")),
        subjects: Vec::new(),
        scope: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_append_to_one_log_and_every_checkpoint_is_consistent() {
    let db = ScratchDatabase::create().await.unwrap();
    let signer_text = NoteSigner::generate("example.org/audit").unwrap().to_text();
    let mut logs = Vec::new();
    for _ in 0..2 {
        let options = PgOptions {
            url: db.url().to_owned(),
            max_connections: 8,
        };
        let store = PgStore::connect(&options, Arc::new(NoObserver))
            .await
            .unwrap();
        logs.push(Arc::new(AuditLog::new(
            store,
            NoteSigner::from_text(&signer_text).unwrap(),
            "example.org/audit",
            PseudonymKey::from_bytes([7; 32]),
        )));
    }
    let known = [logs[0].verifier()];

    let tasks: Vec<_> = (0..60)
        .map(|n| {
            let log = logs[n % 2].clone();
            tokio::spawn(async move { log.append(&event(n)).await.unwrap() })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        receipts.push(t.await.unwrap());
    }
    let mut indices: Vec<u64> = receipts.iter().map(|r| r.index).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..60).collect::<Vec<_>>(),
        "no index twice or skipped"
    );

    let newest = SignedNote::parse(logs[1].checkpoint().await.unwrap().as_bytes()).unwrap();
    newest.verify(&known).unwrap();
    let newest = Checkpoint::parse(&newest.text).unwrap();
    assert_eq!(newest.size, 60);
    let store = PgStore::connect(
        &PgOptions {
            url: db.url().to_owned(),
            max_connections: 8,
        },
        Arc::new(NoObserver),
    )
    .await
    .unwrap();
    for r in &receipts {
        let note = SignedNote::parse(r.checkpoint.as_bytes()).unwrap();
        note.verify(&known).unwrap();
        let cp = Checkpoint::parse(&note.text).unwrap();
        verify_inclusion(r.index, cp.size, &r.leaf_hash, &r.proof, &cp.root).unwrap();
        // Whichever node signed it, the newest checkpoint extends it.
        let proof = custodia_audit::LogTree::new(store.clone())
            .consistency_proof(cp.size, 60)
            .await
            .unwrap();
        verify_consistency(cp.size, 60, &cp.root, &newest.root, &proof).unwrap();
    }
}
