//! Crash durability, graceful shutdown, tamper detection and the plaintext canary, with
//! the real `custodia` binary as a child process.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::{ack, assert_acked_kept, burst_until, spellings, sync};
use custodia_sdk::proto::MessageState;
use custodia_test::{ADULT_DOB, PASSWORD, ProcessServer, TestServer};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_custodia"))
}

async fn signed_in(server: &ProcessServer, name: &str, register: bool) -> custodia_sdk::Client {
    let mut c = server.client();
    if register {
        c.register(name, PASSWORD, ADULT_DOB).await.unwrap();
    }
    c.login(name, PASSWORD, "test").await.unwrap();
    c
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test]
async fn the_plaintext_canary_is_nowhere_on_disk_or_in_the_logs() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let log = work.path().join("server.log");
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let server = ProcessServer::start(&bin(), &data, None, &log);
    let alice = signed_in(&server, "alice", true).await;
    let bob = signed_in(&server, "bob", true).await;
    let chat = alice.open_direct("bob").await.unwrap();

    // Over HTTPS and over the WebSocket, read back by both, shown in previews.
    alice
        .send(chat.id, "c1", &format!("first {canary}"))
        .await
        .unwrap();
    let mut ws = bob.connect().await.unwrap();
    sync(&mut ws, HashMap::new()).await;
    ws.send(chat.id, "c2", &format!("{canary} again"))
        .await
        .unwrap();
    ack(&mut ws, "c2").await;
    let history = alice.full_history(chat.id).await.unwrap();
    assert!(
        history
            .iter()
            .all(|m| m.body.as_deref().unwrap().contains(&canary)),
        "the test itself must see it"
    );
    assert!(
        bob.conversations().await.unwrap()[0]
            .last_message
            .as_ref()
            .unwrap()
            .body
            .as_deref()
            .unwrap()
            .contains(&canary)
    );
    drop(ws);
    assert!(server.terminate().success());

    let files = files_under(&data)
        .into_iter()
        .chain([log.clone()])
        .collect::<Vec<_>>();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("custodia.db-wal") || f.ends_with("custodia.db"))
    );
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "the server logged something"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for s in spellings(&canary) {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s),
                "{} contains the canary as {:?}",
                f.display(),
                String::from_utf8_lossy(&s)
            );
        }
    }
}

/// Sends a burst over one WebSocket, stops the server with `stop` once `after` acks have
/// arrived, restarts it, and checks that every acknowledged message is in history.
async fn burst_then(stop: impl FnOnce(ProcessServer), after: usize) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let log = work.path().join("server.log");
    let server = ProcessServer::start(&bin(), &data, None, &log);
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;
    let chat = alice.open_direct("bob").await.unwrap();

    let acked = burst_until(&alice, chat.id, after, move || stop(server)).await;

    let restarted = ProcessServer::start(&bin(), &data, None, &log);
    let alice = signed_in(&restarted, "alice", false).await;
    let history = alice.full_history(chat.id).await.unwrap();
    assert_acked_kept(&history, &acked);
    assert!(history.iter().all(|m| m.state == MessageState::Ok));
}

#[tokio::test]
async fn every_acknowledged_message_survives_sigkill_during_a_burst() {
    burst_then(ProcessServer::kill, 150).await;
}

#[tokio::test]
async fn graceful_shutdown_during_a_burst_keeps_every_acknowledged_message() {
    burst_then(
        |s| {
            let status = s.terminate();
            assert!(status.success(), "serve exited with {status}");
        },
        150,
    )
    .await;
}

#[tokio::test]
async fn a_flipped_byte_in_a_sealed_body_makes_only_that_message_unreadable() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    for i in 1..=3 {
        alice
            .send(chat.id, &i.to_string(), &format!("message {i}"))
            .await
            .unwrap();
    }

    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    let mut sealed: Vec<u8> = db
        .query_row("SELECT sealed FROM messages WHERE seq = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    let middle = sealed.len() / 2;
    sealed[middle] ^= 0x01;
    db.execute("UPDATE messages SET sealed = ?1 WHERE seq = 2", [&sealed])
        .unwrap();
    drop(db);

    let history = alice.full_history(chat.id).await.unwrap();
    let states: Vec<_> = history
        .iter()
        .map(|m| (m.state, m.body.as_deref()))
        .collect();
    assert_eq!(
        states,
        [
            (MessageState::Ok, Some("message 1")),
            (MessageState::Unreadable, None),
            (MessageState::Ok, Some("message 3"))
        ]
    );
    // The server keeps running and serving.
    assert_eq!(alice.send(chat.id, "4", "message 4").await.unwrap().seq, 4);
    let unique: HashSet<u64> = alice
        .full_history(chat.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(unique.len(), 4);
}
