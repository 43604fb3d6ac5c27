//! KEK rotation while serving, with the real `custodia` binary: `admin keys rotate` under a
//! steady send load, SIGKILL in the middle of the rewrap, a restart that finishes it, and
//! `admin keys retire` of the old version — with every message still readable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use custodia_test::{ADULT_DOB, PASSWORD, ProcessServer};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_custodia"))
}

/// One deployment's data directory, server log and settings (the KEKs in its keyring
/// file, or in a SoftHSM2 token).
struct Deployment {
    data: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl Deployment {
    fn new(work: &Path, env: Vec<(String, String)>) -> Self {
        Self {
            data: work.join("data"),
            log: work.join("server.log"),
            env,
        }
    }

    fn start(&self) -> ProcessServer {
        // Slow on purpose, so the rewrap is still under way when the server is killed.
        let mut env = self.env.clone();
        env.push(("CUSTODIA_KEK_REWRAP_PER_SEC".to_owned(), "40".to_owned()));
        ProcessServer::start_with_env(&bin(), &self.data, None, &self.log, &env)
    }

    /// Runs `custodia admin keys ARGS… --data-dir DATA` to the end.
    async fn keys(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(bin())
            .args(["admin", "keys"])
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .unwrap()
    }

    async fn status(&self) -> serde_json::Value {
        let out = self.keys(&["status", "--json"]).await;
        assert!(
            out.status.success(),
            "keys status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `custodia admin keys rotate` from version 1 to 2, which says so.
    async fn rotate_to_2(&self) {
        let rotated = self.keys(&["rotate"]).await;
        let said = String::from_utf8_lossy(&rotated.stdout);
        assert!(
            rotated.status.success() && said.contains("KEK version 2 is current (was 1)"),
            "rotate: {said} {}",
            String::from_utf8_lossy(&rotated.stderr)
        );
    }

    /// Polls `keys status` until `done` holds of it (the servers work in the background).
    async fn status_until(&self, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
        for _ in 0..3_000 {
            if done(&self.status().await) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "the KEK status never showed {what}: {}",
            self.status().await
        );
    }
}

/// Whether everything `keys status --json` counts is sealed under `version`.
fn all_under(status: &serde_json::Value, version: u64) -> bool {
    status["usage"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["version"] == version)
}

/// What the steady load sent: every acknowledged message's text by conversation and
/// sequence number, and every send that failed.
#[derive(Default)]
struct Sent {
    acked: HashMap<(uuid::Uuid, u64), String>,
    failed: Vec<String>,
}

/// Sends one message after another (each waits for its answer) until `stop`, into one
/// direct conversation and, every 20th, into a new group (a new data key, wrapped under
/// whichever version is current when it is made).
fn steady_load(
    alice: custodia_sdk::Client,
    direct: uuid::Uuid,
    round: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Sent> {
    tokio::spawn(async move {
        let mut sent = Sent::default();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let chat = if i % 20 == 0 {
                match alice
                    .create_group(&format!("load {round}-{i}"), &["bob"])
                    .await
                {
                    Ok(g) => g.id,
                    Err(e) => {
                        sent.failed.push(format!("creating a group: {e}"));
                        continue;
                    }
                }
            } else {
                direct
            };
            let text = format!("load {round}-{i}");
            match alice.send(chat, &format!("l{round}-{i}"), &text).await {
                Ok(ack) => {
                    sent.acked.insert((chat, ack.seq), text);
                }
                Err(e) => sent.failed.push(format!("send {i}: {e}")),
            }
        }
        sent
    })
}

async fn signed_in(server: &ProcessServer, name: &str, register: bool) -> custodia_sdk::Client {
    let mut c = server.client();
    if register {
        c.register(name, PASSWORD, ADULT_DOB).await.unwrap();
    }
    c.login(name, PASSWORD, "test").await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_rotation_under_steady_sends_survives_sigkill_and_ends_with_every_key_under_the_new_version()
 {
    let work = tempfile::tempdir().unwrap();
    rotate_under_load(&Deployment::new(work.path(), Vec::new())).await;
}

/// The same with the KEKs in a PKCS#11 token (SoftHSM2): the operator's tool makes the
/// new version in the token while the server holds its own session to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_rotation_in_a_token_under_steady_sends_survives_sigkill_and_ends_under_the_new_version()
 {
    let work = tempfile::tempdir().unwrap();
    let token = custodia_test::SoftToken::new("rotation");
    rotate_under_load(&Deployment::new(work.path(), token.env())).await;
}

/// `n` groups of `alice` and bob with a first message each (one data key each); the
/// messages by conversation and sequence number.
async fn groups_with_bob(
    alice: &custodia_sdk::Client,
    n: usize,
) -> HashMap<(uuid::Uuid, u64), String> {
    let mut sent = HashMap::new();
    for i in 0..n {
        let g = alice
            .create_group(&format!("g{i}"), &["bob"])
            .await
            .unwrap();
        let text = format!("before the rotation {i}");
        let ack = alice.send(g.id, &format!("b{i}"), &text).await.unwrap();
        sent.insert((g.id, ack.seq), text);
    }
    sent
}

async fn rotate_under_load(d: &Deployment) {
    let server = d.start();
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;

    // 200 conversations with a first message each: 200 data keys under version 1.
    let mut expected = groups_with_bob(&alice, 200).await;
    let direct = alice.open_direct("bob").await.unwrap().id;
    let before = d.status().await;
    assert_eq!(before["current"], 1);
    assert!(before["total"].as_u64().unwrap() >= 200, "{before}");

    // Rotation starts while alice sends without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(alice.clone(), direct, 1, stop.clone());
    d.rotate_to_2().await;
    d.status_until("rewrap under way", |s| {
        s["current"] == 2 && s["under_current"].as_u64().unwrap() >= 60
    })
    .await;
    // Retiring version 1 now is refused: keys are still sealed under it.
    let early = d.keys(&["retire", "1"]).await;
    assert!(!early.status.success());
    let why = String::from_utf8_lossy(&early.stderr);
    assert!(
        why.contains("still sealed under KEK version 1"),
        "retire before the end: {why}"
    );

    stop.store(true, Ordering::Relaxed);
    let first = load.await.unwrap();
    assert!(first.failed.is_empty(), "sends failed: {:?}", first.failed);
    assert!(!first.acked.is_empty());
    expected.extend(first.acked);

    // SIGKILL in the middle of the rewrap.
    server.kill();
    let killed = d.status().await;
    assert_eq!(killed["complete"], false, "killed mid-rotation: {killed}");
    assert!(
        killed["under_current"].as_u64() < killed["total"].as_u64(),
        "{killed}"
    );

    // Restarted, the server finishes the rotation, under load again.
    let server = d.start();
    let alice = signed_in(&server, "alice", false).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(alice.clone(), direct, 2, stop.clone());
    d.status_until("the rotation complete", |s| s["complete"] == true)
        .await;
    stop.store(true, Ordering::Relaxed);
    let second = load.await.unwrap();
    assert!(
        second.failed.is_empty(),
        "sends failed: {:?}",
        second.failed
    );
    expected.extend(second.acked);

    let done = d.status().await;
    assert!(all_under(&done, 2), "everything is under version 2: {done}");
    let logged = |s: &serde_json::Value, step: &str, version: u64| {
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["step"] == step && x["version"] == version && x["log_index"].is_u64())
    };
    d.status_until("the rotation logged", |s| {
        logged(s, "rotated", 2) && logged(s, "rewrapped", 2)
    })
    .await;

    // Version 2 is current and cannot go; version 1 is destroyed, and the server logs it.
    let current = d.keys(&["retire", "2"]).await;
    assert!(!current.status.success());
    assert!(String::from_utf8_lossy(&current.stderr).contains("KEK version 2 is current"));
    let retired = d.keys(&["retire", "1"]).await;
    assert!(
        retired.status.success(),
        "retire 1: {}",
        String::from_utf8_lossy(&retired.stderr)
    );
    d.status_until("the retirement logged", |s| logged(s, "retired", 1))
        .await;
    if let Ok(keyring) = std::fs::read_to_string(d.data.join("keyring")) {
        assert!(
            !keyring.lines().any(|l| l.starts_with("key 1 ")),
            "version 1's key is gone from the keyring"
        );
    }
    assert_eq!(d.status().await["versions_held"], serde_json::json!([2]));

    // A fresh start (nothing cached) opens every acknowledged message for bob.
    assert!(server.terminate().success());
    let server = d.start();
    let bob = signed_in(&server, "bob", false).await;
    every_message_reads_as_sent(&bob, &expected).await;
    drop(server);
}

/// Every acknowledged message reads as it was sent.
async fn every_message_reads_as_sent(
    reader: &custodia_sdk::Client,
    expected: &HashMap<(uuid::Uuid, u64), String>,
) {
    let mut by_chat: HashMap<uuid::Uuid, Vec<(u64, &String)>> = HashMap::new();
    for ((chat, seq), text) in expected {
        by_chat.entry(*chat).or_default().push((*seq, text));
    }
    for (chat, messages) in by_chat {
        let shown: HashMap<u64, Option<String>> = reader
            .full_history(chat)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.seq, m.body))
            .collect();
        for (seq, text) in messages {
            assert_eq!(
                shown.get(&seq),
                Some(&Some(text.clone())),
                "message {seq} of {chat} reads as sent"
            );
        }
    }
}

/// On PostgreSQL, two nodes on one data directory both rewrap (each item by
/// compare-and-swap); the node the rotation started on is killed mid-rewrap, and the other
/// finishes alone while alice's sends go through it without a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_nodes_share_the_rewrap_and_one_finishes_it_when_the_other_dies() {
    let cluster = custodia_test::Deployment::new().await;
    let d = Deployment {
        data: cluster.dir.path().to_owned(),
        log: cluster.dir.path().join("nodes.log"),
        env: cluster.env(cluster.database.url(), &cluster.nats_url),
    };
    let a = d.start();
    let b = d.start();
    let alice = signed_in(&a, "alice", true).await;
    signed_in(&a, "bob", true).await;
    let mut expected = groups_with_bob(&alice, 150).await;
    let direct = alice.open_direct("bob").await.unwrap().id;
    let alice_on_b = signed_in(&b, "alice", false).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(alice_on_b, direct, 1, stop.clone());

    d.rotate_to_2().await;
    d.status_until("rewrap under way", |s| {
        s["current"] == 2 && s["under_current"].as_u64().unwrap() >= 40
    })
    .await;
    a.kill();
    d.status_until("the rotation complete", |s| s["complete"] == true)
        .await;
    stop.store(true, Ordering::Relaxed);
    let sent = load.await.unwrap();
    assert!(sent.failed.is_empty(), "sends failed: {:?}", sent.failed);
    expected.extend(sent.acked);
    let retired = d.keys(&["retire", "1"]).await;
    assert!(
        retired.status.success(),
        "retire 1: {}",
        String::from_utf8_lossy(&retired.stderr)
    );

    // A new node (nothing cached) opens every acknowledged message.
    let c = d.start();
    let bob = signed_in(&c, "bob", false).await;
    every_message_reads_as_sent(&bob, &expected).await;
    drop((b, c));
}

/// For nodes that each hold a copy of the keyring: `rotate --stage` adds the version
/// without making it current (nothing is wrapped under it, so a node without the copy yet
/// loses nothing), and `rotate` then makes the staged version current instead of adding
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_version_is_held_but_unused_until_rotate_makes_it_current() {
    let work = tempfile::tempdir().unwrap();
    let d = Deployment::new(work.path(), Vec::new());
    let server = d.start();
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;
    groups_with_bob(&alice, 3).await;

    let staged = d.keys(&["rotate", "--stage"]).await;
    let said = String::from_utf8_lossy(&staged.stdout);
    assert!(
        staged.status.success()
            && said.contains("added KEK version 2")
            && said.contains("not current yet"),
        "stage: {said} {}",
        String::from_utf8_lossy(&staged.stderr)
    );
    let held = d.status().await;
    assert_eq!(held["versions_held"], serde_json::json!([1, 2]));
    assert_eq!(held["current"], 1);
    // A conversation made now still gets its key under version 1.
    let g = alice.create_group("after staging", &["bob"]).await.unwrap();
    alice.send(g.id, "s1", "after staging").await.unwrap();
    let usage = d.status().await;
    assert!(
        all_under(&usage, 1),
        "nothing under the staged version: {usage}"
    );

    d.rotate_to_2().await;
    d.status_until("the rotation complete", |s| s["complete"] == true)
        .await;
    assert_eq!(
        d.status().await["versions_held"],
        serde_json::json!([1, 2]),
        "the staged version was made current, no other added"
    );
    drop(server);
}

/// A `rotate` that stopped after adding the version to the keyring but before recording
/// it (a crash, a lost database connection): the servers keep the version the store
/// names, and running `rotate` again makes that added version current, logged, instead
/// of adding another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_that_stopped_half_way_is_finished_by_running_it_again() {
    let work = tempfile::tempdir().unwrap();
    let d = Deployment::new(work.path(), Vec::new());
    let server = d.start();
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;
    groups_with_bob(&alice, 3).await;
    assert!(server.terminate().success());

    // What the interrupted rotate left: version 2 in the keyring, named current there,
    // and nothing in the store.
    let added = custodia_keys::Keyring::add_version(&d.data.join("keyring"), None, true).unwrap();
    assert_eq!(added, 2);
    let server = d.start();
    let alice = signed_in(&server, "alice", false).await;
    let g = alice
        .create_group("after the stop", &["bob"])
        .await
        .unwrap();
    alice.send(g.id, "h1", "after the stop").await.unwrap();
    let state = d.status().await;
    assert_eq!(state["current"], 1, "{state}");
    assert!(
        all_under(&state, 1),
        "no key under the unrecorded version: {state}"
    );

    d.rotate_to_2().await;
    d.status_until("the rotation complete and logged", |s| {
        s["complete"] == true
            && s["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["step"] == "rotated" && x["version"] == 2 && x["log_index"].is_u64())
    })
    .await;
    assert_eq!(d.status().await["versions_held"], serde_json::json!([1, 2]));
    drop(server);
}
