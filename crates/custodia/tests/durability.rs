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
    assert!(
        !std::fs::read(&log).unwrap().contains(&0x1b),
        "no colour codes in logs that go to a file"
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

/// What one sending client saw of a SIGTERM: the client ids it wrote, the acks and
/// refusals it got, and the close code.
struct Seen {
    sent: Vec<String>,
    acked: HashMap<String, u64>,
    refused: Vec<String>,
    close: Option<u16>,
}

/// SIGTERM while four clients send as fast as they can and three more hold half-sent
/// requests (no TLS handshake; a request head cut off; a body cut off): every WebSocket
/// gets a 1001 close, every send was acknowledged, refused, or is found by resending it
/// with its client id, and the server exits within its shutdown grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_says_goodbye_answers_every_send_and_exits_in_bounded_time() {
    use custodia_sdk::proto::ServerFrame;
    use tokio::io::AsyncWriteExt;

    const GRACE_SECS: u64 = 2;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let log = work.path().join("server.log");
    let env = [(
        "CUSTODIA_SHUTDOWN_GRACE_SECS".to_owned(),
        GRACE_SECS.to_string(),
    )];
    let server = ProcessServer::start_with_env(&bin(), &data, None, &log, &env);
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;
    let chat = alice.open_direct("bob").await.unwrap();

    // Clients holding half-sent requests.
    let addr = server.listen_addr();
    let _no_handshake = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(common::tls_client_config(
        &std::fs::read(data.join("tls/ca.pem")).unwrap(),
        &[&rustls::version::TLS13],
    ));
    let mut half = Vec::new();
    for partial in [
        "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty".to_owned(),
        "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{\"username\":"
            .to_owned(),
    ] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = tls.connect(name, tcp).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        half.push(stream);
    }

    // Four senders, each on its own WebSocket.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut clients = Vec::new();
    for c in 0..4 {
        let mut conn = alice.connect().await.unwrap();
        sync(&mut conn, HashMap::new()).await;
        let (mut tx, mut rx) = conn.split();
        let sending = tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..400 {
                let id = format!("c{c}-{i}");
                if tx
                    .send(chat.id, &id, &format!("message {c}/{i}"))
                    .await
                    .is_err()
                {
                    break;
                }
                sent.push(id);
            }
            sent
        });
        let acks_tx = acks_tx.clone();
        clients.push(tokio::spawn(async move {
            let (mut acked, mut refused) = (HashMap::new(), Vec::new());
            while let Some(frame) = rx.next().await {
                match frame {
                    Ok(ServerFrame::Ack(a)) => {
                        acked.insert(a.client_id, a.seq);
                        let _ = acks_tx.send(());
                    }
                    Ok(ServerFrame::Error {
                        client_id: Some(id),
                        problem,
                    }) => {
                        assert_eq!(problem.status, 503, "{}", problem.detail);
                        refused.push(id);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let close = rx.closed_with().map(|(code, _)| *code);
            Seen {
                sent: sending.await.unwrap(),
                acked,
                refused,
                close,
            }
        }));
    }
    drop(acks_tx);
    for _ in 0..200 {
        acks_rx
            .recv()
            .await
            .expect("200 acks before the burst ends");
    }

    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "serve exited with {status}");
    assert!(
        took < std::time::Duration::from_secs(GRACE_SECS + 8),
        "exit took {took:?} with a grace of {GRACE_SECS} s"
    );
    drop(half);

    let mut seen = Vec::new();
    for c in clients {
        seen.push(c.await.unwrap());
    }
    let closes: Vec<Option<u16>> = seen.iter().map(|s| s.close).collect();
    assert!(
        closes.iter().all(|c| *c == Some(1001)),
        "every client is told the server is going away: {closes:?}; the server's log ends {:?}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .filter(|l| !l.contains("DEBUG"))
            .take(12)
            .collect::<Vec<_>>()
    );

    // After a restart, every send not acknowledged is sent again with its client id;
    // then each client id is stored exactly once, the acknowledged ones where they were.
    let restarted = ProcessServer::start(&bin(), &data, None, &log);
    let alice = signed_in(&restarted, "alice", false).await;
    let acked: HashMap<String, u64> = seen.iter().flat_map(|s| s.acked.clone()).collect();
    let refused = seen.iter().map(|s| s.refused.len()).sum::<usize>();
    let sent: HashSet<String> = seen.iter().flat_map(|s| s.sent.clone()).collect();
    let again: Vec<&String> = sent.iter().filter(|id| !acked.contains_key(*id)).collect();
    for chunk in again.chunks(32) {
        let sends = chunk.iter().map(|id| alice.send(chat.id, id, "again"));
        for r in futures_util::future::join_all(sends).await {
            r.unwrap();
        }
    }
    let history = alice.full_history(chat.id).await.unwrap();
    assert_acked_kept(&history, &acked);
    let stored: HashSet<String> = history.iter().map(|m| m.client_id.clone()).collect();
    assert_eq!(
        stored, sent,
        "every send written is stored once ({refused} were refused)"
    );
}

/// Runs `custodia ARGS…` to the end (async: servers of this test keep answering).
async fn custodia(args: &[&std::ffi::OsStr]) -> std::process::Output {
    tokio::process::Command::new(bin())
        .args(args)
        .output()
        .await
        .unwrap()
}

/// Backup and restore: a backup taken while alice sends a burst, restored into a fresh
/// data directory, starts a server holding every message acknowledged before the backup
/// began, and the audit log there still verifies against the state an auditor saved
/// before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_a_send_burst_restores_every_message_acknowledged_before_it() {
    let work = tempfile::tempdir().unwrap();
    let (data, restored) = (work.path().join("data"), work.path().join("restored"));
    let log = work.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auditor = format!("https://127.0.0.1:{port}");
    let env = vec![(
        "CUSTODIA_AUDIT_LISTEN".to_owned(),
        format!("127.0.0.1:{port}"),
    )];
    let server = ProcessServer::start_with_env(&bin(), &data, None, &log, &env);
    let alice = signed_in(&server, "alice", true).await;
    signed_in(&server, "bob", true).await;
    let chat = alice.open_direct("bob").await.unwrap().id;

    // An auditor saves the log's state before any backup.
    let os = |s: &str| std::ffi::OsString::from(s);
    let key = custodia(&[
        &os("log"),
        &os("public-key"),
        &os("--data-dir"),
        data.as_os_str(),
    ])
    .await;
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let state = work.path().join("audit-state");
    let verify = |ca: PathBuf| {
        let (key, state, auditor) = (key.clone(), state.clone(), auditor.clone());
        async move {
            let args = [
                os("log"),
                os("verify"),
                os("--url"),
                os(&auditor),
                os("--key"),
                os(&key),
                os("--state"),
                state.into_os_string(),
                os("--ca-cert"),
                ca.into_os_string(),
            ];
            custodia(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>()).await
        }
    };
    let before = verify(data.join("tls/ca.pem")).await;
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );

    let identity = age::x25519::Identity::generate();
    let identity_file = work.path().join("operator.key");
    std::fs::write(
        &identity_file,
        age::secrecy::ExposeSecret::expose_secret(&identity.to_string()),
    )
    .unwrap();
    let recipient = identity.to_public().to_string();
    let archive = work.path().join("backup.tar.age");

    // The burst: 600 sends; the backup starts once 200 are acknowledged and runs while
    // the rest are sent and stored.
    let mut conn = alice.connect().await.unwrap();
    common::sync(&mut conn, HashMap::new()).await;
    let (mut tx, mut rx) = conn.split();
    let sending = tokio::spawn(async move {
        for i in 0..600 {
            tx.send(chat, &format!("b-{i}"), &format!("burst message {i}"))
                .await
                .unwrap();
        }
        tx
    });
    let mut acked = HashMap::new();
    let mut next_ack = async || loop {
        let frame = tokio::time::timeout(common::PATIENCE, rx.next())
            .await
            .expect("acks keep coming")
            .unwrap()
            .unwrap();
        if let custodia_sdk::proto::ServerFrame::Ack(a) = frame {
            return (a.client_id, a.seq);
        }
    };
    while acked.len() < 200 {
        let (id, seq) = next_ack().await;
        acked.insert(id, seq);
    }
    let acked_before = acked.clone();
    let done = tokio::spawn(
        tokio::process::Command::new(bin())
            .args(["admin", "backup", "--data-dir"])
            .arg(&data)
            .args(["--recipient", &recipient])
            .arg(&archive)
            .output(),
    );
    while acked.len() < 600 {
        let (id, seq) = next_ack().await;
        acked.insert(id, seq);
    }
    drop(sending.await);
    let done = done.await.unwrap().unwrap();
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(said.contains("with a snapshot of the database"), "{said}");
    let bytes = std::fs::read(&archive).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "encrypted");
    server.kill();

    // A wrong key restores nothing; the right one restores into an empty directory only.
    let stranger = work.path().join("stranger.key");
    std::fs::write(
        &stranger,
        age::secrecy::ExposeSecret::expose_secret(&age::x25519::Identity::generate().to_string()),
    )
    .unwrap();
    let restore = |key: &Path| {
        let args = [
            os("admin"),
            os("restore"),
            os("--identity"),
            key.as_os_str().to_owned(),
            os("--data-dir"),
            restored.clone().into_os_string(),
            archive.clone().into_os_string(),
        ];
        async move { custodia(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>()).await }
    };
    let refused = restore(&stranger).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("decrypting"));
    let _ = std::fs::remove_dir_all(&restored);
    let ok = restore(&identity_file).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = restore(&identity_file).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    let server = ProcessServer::start_with_env(&bin(), &restored, None, &log, &env);
    let alice = signed_in(&server, "alice", false).await;
    let history = alice.full_history(chat).await.unwrap();
    assert_acked_kept(&history, &acked_before);
    assert!(history.len() >= acked_before.len());
    let after = verify(restored.join("tls/ca.pem")).await;
    assert!(
        after.status.success(),
        "the restored log extends what the auditor saw: {}",
        String::from_utf8_lossy(&after.stderr)
    );
}
