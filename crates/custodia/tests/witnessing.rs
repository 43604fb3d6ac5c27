//! Witnessed audit logs end to end: a server submits each checkpoint to its witnesses
//! (C2SP tlog-witness over TLS), keeps it only with a quorum of cosignatures, and
//! `custodia log verify` checks that quorum; a witness refuses a fork of a log it
//! witnessed, also after it restarts.

use custodia_server::RawConfig;
use custodia_server::logcmd::{WitnessPolicy, verify};
use custodia_test::{TestServer, TestWitness, audit_event};
use custodia_tlog::{Checkpoint, NoteVerifier, SignedNote};

async fn witnessed(n: usize, quorum: usize) -> (TestServer, Vec<TestWitness>) {
    TestServer::witnessed(n, quorum).await
}

fn policy(witnesses: &[&TestWitness], quorum: Option<usize>) -> WitnessPolicy {
    let keys: Vec<String> = witnesses.iter().map(|w| w.key().to_string()).collect();
    WitnessPolicy::new(&keys, quorum).unwrap()
}

/// Appends the entries concurrently (so they share checkpoints); returns the last receipt.
/// Entry 0 of every log is the first admin's creation, so ranges start at 1.
async fn append(server: &TestServer, range: std::ops::Range<u32>) -> custodia_audit::Receipt {
    let log = server.audit();
    let appends = range.map(|i| {
        let log = log.clone();
        async move {
            log.append(&audit_event(&format!("witnessed entry {i}")))
                .await
                .expect("append")
        }
    });
    futures_util::future::join_all(appends)
        .await
        .into_iter()
        .max_by_key(|r| r.index)
        .expect("at least one entry")
}

async fn verify_with(
    server: &TestServer,
    policy: &WitnessPolicy,
    state: &std::path::Path,
) -> anyhow::Result<Checkpoint> {
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).unwrap();
    let client = custodia_sdk::Client::new(server.audit_url(), &ca).unwrap();
    verify(&client, &server.log_key(), policy, state).await
}

#[tokio::test]
async fn a_witnessed_log_verifies_with_its_quorum_and_keeps_verifying_as_it_grows() {
    let (server, witnesses) = witnessed(2, 2).await;
    let receipt = append(&server, 1..5).await;
    // The receipt's checkpoint carries the log's signature and both cosignatures.
    let note = SignedNote::parse(receipt.checkpoint.as_bytes()).unwrap();
    let keys: Vec<NoteVerifier> = witnesses.iter().map(TestWitness::key).collect();
    assert_eq!(note.verified_by(&keys).len(), 2);
    note.verify(&[server.log_key()]).unwrap();

    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let both = policy(&[&witnesses[0], &witnesses[1]], None);
    assert_eq!(verify_with(&server, &both, &state).await.unwrap().size, 5);
    append(&server, 5..300).await;
    assert_eq!(verify_with(&server, &both, &state).await.unwrap().size, 300);

    // An auditor who also requires a witness this log never used is told so.
    let log = server.log_key();
    let stranger = TestWitness::start("witness.test/stranger", vec![log]).await;
    let strict = policy(&[&witnesses[0], &witnesses[1], &stranger], None);
    let why = format!(
        "{:#}",
        verify_with(&server, &strict, &state).await.unwrap_err()
    );
    assert!(
        why.contains("fewer than the quorum of 3") && why.contains("witness.test/stranger"),
        "{why}"
    );
}

#[tokio::test]
async fn below_the_quorum_appends_fail_closed_and_the_last_kept_checkpoint_is_served() {
    let (server, mut witnesses) = witnessed(2, 2).await;
    append(&server, 1..3).await;
    witnesses[1].stop().await;
    let err = server
        .audit()
        .append(&audit_event("while a witness is down"))
        .await
        .expect_err("an append without the quorum must fail");
    assert!(
        err.to_string().contains("witness quorum not reached"),
        "{err}"
    );

    // Auditors still get the last checkpoint that had the quorum.
    let work = tempfile::tempdir().unwrap();
    let both = policy(&[&witnesses[0], &witnesses[1]], None);
    let state = work.path().join("state");
    assert_eq!(verify_with(&server, &both, &state).await.unwrap().size, 3);

    // Back up: the witness that missed a checkpoint is caught up (it answers 409 with its
    // size, and the log proves consistency from there), and the pending entry is covered.
    witnesses[1].restart().await;
    let receipt = append(&server, 3..4).await;
    assert_eq!(
        receipt.index, 5,
        "the entry appended during the outage was kept (3), with its abandonment (4)"
    );
    let abandonment = server.audit().record(4).await.unwrap().unwrap();
    assert_eq!(abandonment.kind, custodia_audit::EventKind::ActionAbandoned);
    assert!(abandonment.scope.contains(&("entry".into(), "3".into())));
    assert_eq!(verify_with(&server, &both, &state).await.unwrap().size, 6);
}

#[tokio::test]
async fn a_witness_refuses_a_fork_of_a_log_it_witnessed_also_after_a_restart() {
    let (server, mut witnesses) = witnessed(1, 1).await;
    append(&server, 1..10).await;

    // A second server holding the same log key, with another history, using the witness.
    let mut fork = TestServer::start().await;
    fork.stop().await;
    std::fs::copy(
        server.data_dir().join("log.key"),
        fork.data_dir().join("log.key"),
    )
    .unwrap();
    let config = RawConfig {
        witnesses: Some(vec![witnesses[0].config()]),
        ..RawConfig::default()
    };
    fork.restart_fresh_with(config).await;
    // Smaller than what the witness cosigned (409), then larger but not an extension (422).
    for i in 0..12 {
        let err = fork
            .audit()
            .append(&audit_event(&format!("another history {i}")))
            .await
            .expect_err("the witness must not cosign a fork");
        assert!(
            err.to_string().contains("witness quorum not reached"),
            "{err}"
        );
    }
    witnesses[0].restart().await;
    fork.audit()
        .append(&audit_event("after the witness restarted"))
        .await
        .expect_err("the witness remembers what it cosigned across a restart");
    // The honest log goes on being witnessed.
    append(&server, 10..12).await;
}

#[tokio::test]
async fn the_witness_command_serves_cosignatures_for_a_server() {
    let mut server = TestServer::start().await;
    server.stop().await;
    let key = server.log_key();
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args(["witness", "--listen", "127.0.0.1:0", "--name", "cli.test/w"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--log", &key.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut field = async |prefix: &str| {
        let line = lines.next_line().await.unwrap().unwrap();
        line.split_whitespace()
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {line:?}"))
            .to_owned()
    };
    let url = field("https://").await;
    let witness_key = field("cli.test/w+").await;
    server
        .restart_fresh_with(RawConfig {
            witnesses: Some(vec![custodia_server::config::RawWitness {
                url,
                key: witness_key.clone(),
                ca_cert: dir.path().join("tls/ca.pem"),
            }]),
            ..RawConfig::default()
        })
        .await;
    append(&server, 1..3).await;
    let work = tempfile::tempdir().unwrap();
    let policy = WitnessPolicy::new(&[witness_key], None).unwrap();
    assert_eq!(
        verify_with(&server, &policy, &work.path().join("state"))
            .await
            .unwrap()
            .size,
        3
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_witness_endpoint_answers_each_refusal_with_its_status() {
    let (server, witnesses) = witnessed(1, 1).await;
    let receipt = append(&server, 1..3).await;
    let w = witnesses[0].config();
    let ca = std::fs::read(&w.ca_cert).unwrap();
    let client = custodia_sdk::Client::new(&w.url, &ca).unwrap();
    let post = async |body: Vec<u8>| {
        let (status, ctype, body) = client
            .raw(
                custodia_sdk::Method::POST,
                "/add-checkpoint",
                "text/plain",
                body,
            )
            .await
            .unwrap();
        (status, ctype, String::from_utf8_lossy(&body).into_owned())
    };
    let stale = format!("old 0\n\n{}", receipt.checkpoint).into_bytes();
    let (status, ctype, body) = post(stale.clone()).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "3\n")
    );
    let text = SignedNote::parse(receipt.checkpoint.as_bytes())
        .unwrap()
        .text;
    let unsigned = format!("old 3\n\n{text}\n\u{2014} x AAAAAAAA\n");
    for (body, expected) in [
        (b"garbage".to_vec(), 400),
        (b"old 0\n\nnot a note\n".to_vec(), 400),
        (format!("old 5\n\n{}", receipt.checkpoint).into_bytes(), 400),
        (unsigned.into_bytes(), 403),
    ] {
        let (status, ctype, text) = post(body).await;
        assert_eq!(status, expected, "{text}");
        assert_eq!(ctype, "application/problem+json", "{text}");
    }
    // None of that moved the witness: the log still appends.
    append(&server, 3..4).await;
}

/// A restarted server gets its witnesses' quorum for the log's current size at start,
/// without waiting for the next action: entries stored while a witness was down are
/// covered by a witnessed checkpoint as soon as the server is back.
#[tokio::test]
async fn a_restart_obtains_a_witnessed_checkpoint_for_the_current_size() {
    let (mut server, mut witnesses) = witnessed(1, 1).await;
    append(&server, 1..3).await;
    witnesses[0].stop().await;
    server
        .audit()
        .append(&audit_event("while the witness is down"))
        .await
        .expect_err("no quorum");
    let stored = server.audit().tree().store().log_size().await.unwrap();
    witnesses[0].restart().await;
    server.restart().await;

    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let checked = verify_with(&server, &policy(&[&witnesses[0]], None), &state)
        .await
        .unwrap();
    assert!(
        checked.size >= stored,
        "the served checkpoint ({}) covers all {stored} stored entries, witnessed",
        checked.size
    );
}
