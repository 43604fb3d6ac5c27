//! Legal process to the end: a warrant is entered with its served document, reviewed,
//! held, produced, approved twice, and built into a disclosure package that the agency
//! opens with the real `age` CLI and checks offline with `custodia disclosure verify` —
//! and that fails, naming the problem, when anything in it is changed. The emergency path:
//! a grant of at most 4 hours, and its follow-up legal process tracked.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use custodia_audit::EventKind;
use custodia_disclosure as pkg;
use custodia_sdk::proto::staff as wire;
use custodia_test::TestServer;
use custodia_tlog::{NoteSigner, NoteVerifier};
use sha2::Digest;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_custodia")
}

/// Runs a program, returning (success, stdout, stderr).
fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): .ci/run installs it"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An agency key pair made by the real `age-keygen`: (identity file, recipient).
fn agency_key(dir: &Path) -> (std::path::PathBuf, String) {
    let identity = dir.join("agency.key");
    let (ok, _, err) = run("age-keygen", &["-o", identity.to_str().unwrap()]);
    assert!(ok, "age-keygen: {err}");
    let text = std::fs::read_to_string(&identity).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_owned();
    (identity, recipient)
}

fn today(offset_days: i64) -> String {
    custodia_core::Day::of(custodia_core::Timestamp::from_millis(
        (time::OffsetDateTime::now_utc() + time::Duration::days(offset_days)).unix_timestamp()
            * 1000,
    ))
    .to_string()
}

fn warrant(targets: &[&str], document: &[u8]) -> wire::NewLegalRequest {
    use base64::Engine;
    wire::NewLegalRequest {
        agency: wire::AgencyInfo {
            name: "Metropolitan Police Service".into(),
            country: "GB".into(),
            subdivision: None,
        },
        officer: wire::OfficerInfo {
            name: "DC Jane Smith".into(),
            badge: "MPS-4411".into(),
            email: "jane.smith@met.police.example".into(),
        },
        process: "search_warrant".into(),
        court: Some("Westminster Magistrates' Court".into()),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        categories: vec!["content".into(), "subscriber".into()],
        from: today(-1),
        to: today(1),
        nondisclosure: None,
        emergency_basis: None,
        documents: vec![wire::DocumentUpload {
            name: "warrant 2026-114.pdf".into(),
            media_type: "application/pdf".into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(document),
        }],
        follows_up: None,
    }
}

/// A tracing subscriber for this test binary that keeps every log line (debug and up).
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");
    buf
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The archive's files, in order.
fn unpack(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.push((path, bytes));
    }
    out
}

/// The package rebuilt from `files` with a new manifest signed by `signer`: what someone
/// holding the package key could forge.
fn resigned(files: &[(String, Vec<u8>)], signer: &NoteSigner) -> Vec<u8> {
    let old: pkg::Manifest = serde_json::from_slice(file(files, pkg::MANIFEST)).unwrap();
    let kept: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(p, _)| p != pkg::MANIFEST && p != pkg::MANIFEST_SIG)
        .cloned()
        .collect();
    let manifest = pkg::to_json(&pkg::manifest(
        &old.legal_request,
        &old.legal_request_id,
        &old.built_at,
        &kept,
    ));
    let text = pkg::signed_text(&old.legal_request, &manifest);
    let note = custodia_tlog::SignedNote {
        text: text.clone(),
        signatures: vec![signer.sign(&text).unwrap()],
    };
    pkg::archive(&kept, &manifest, &note.to_string(), 0)
}

fn replace(files: &mut [(String, Vec<u8>)], path: &str, bytes: Vec<u8>) {
    files.iter_mut().find(|(p, _)| p == path).unwrap().1 = bytes;
}

fn file<'a>(files: &'a [(String, Vec<u8>)], path: &str) -> &'a [u8] {
    &files.iter().find(|(p, _)| p == path).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warrant_becomes_a_package_the_agency_opens_with_age_and_verifies_offline() {
    let logs = capture_logs();
    let (server, witnesses) = TestServer::witnessed(1, 1).await;
    let admin = server.admin().await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let dm = alice.open_direct("bob").await.unwrap().id;
    let canary = format!("canary-{}", uuid::Uuid::new_v4());
    alice.send(dm, "a1", "are you coming").await.unwrap();
    bob.send(dm, "b1", "yes").await.unwrap();
    alice.send(dm, "a2", &canary).await.unwrap();
    bob.send(dm, "b2", "see you").await.unwrap();

    // Intake, with the served document stored sealed and its hash recorded.
    let document = b"%PDF-1.4\n% search warrant 2026-114 for the account alice\n".to_vec();
    let received = lo1
        .receive_legal_request(&warrant(&["alice"], &document))
        .await
        .unwrap();
    assert_eq!(received.documents.len(), 1);
    assert_eq!(
        received.documents[0].sha256,
        pkg::hex(&sha2::Sha256::digest(&document))
    );
    let (media_type, served) = lo1.served_document(received.id, 0).await.unwrap();
    assert_eq!((media_type.as_str(), served), ("application/pdf", document));
    assert!(!received.follow_up_missing, "not an emergency");

    // Review, hold, produce, two approvals each.
    lo1.review_legal_request(received.id, &common::accept_in_full())
        .await
        .unwrap();
    assert_eq!(lo1.place_holds(received.id).await.unwrap().len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = agency_key(dir.path());
    let e = lo1
        .build_package(received.id, &recipient)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("produce"), "produced first: {e}");
    let made = lo1.produce(received.id).await.unwrap();
    assert_eq!(made.len(), 1);
    let e = lo1
        .build_package(received.id, &recipient)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("approvals"), "approved first: {e}");
    sen.decide(made[0].id, true, "valid warrant").await.unwrap();
    lo2.decide(made[0].id, true, "checked").await.unwrap();
    assert_eq!(
        lo2.build_package(received.id, &recipient)
            .await
            .unwrap_err()
            .status(),
        Some(422),
        "only the requester reads under the grant"
    );
    assert_eq!(
        lo1.build_package(received.id, "not-a-key")
            .await
            .unwrap_err()
            .status(),
        Some(422)
    );

    let package = lo1.build_package(received.id, &recipient).await.unwrap();
    let delivered = dir.path().join("package.tar.age");
    std::fs::write(&delivered, &package).unwrap();
    assert!(!contains(&package, canary.as_bytes()), "encrypted");

    // The agency: age -d with its identity, then the offline check.
    let decrypted = dir.path().join("package.tar");
    let (ok, _, err) = run(
        "age",
        &[
            "-d",
            "-i",
            identity.to_str().unwrap(),
            "-o",
            decrypted.to_str().unwrap(),
            delivered.to_str().unwrap(),
        ],
    );
    assert!(ok, "age -d: {err}");
    let (ok, package_key, err) = run(
        bin(),
        &[
            "disclosure",
            "public-key",
            "--data-dir",
            server.data_dir().to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let package_key = package_key.trim().to_owned();
    let log_key = server.log_key().to_string();
    let witness_key = witnesses[0].key().to_string();
    let verify = |path: &Path, extra: &[&str]| {
        let mut args = vec![
            "disclosure",
            "verify",
            path.to_str().unwrap(),
            "--package-key",
            &package_key,
            "--log-key",
            &log_key,
            "--witness",
            &witness_key,
        ];
        args.extend_from_slice(extra);
        run(bin(), &args)
    };
    let (ok, out, err) = verify(&decrypted, &[]);
    assert!(ok, "verify: {out}{err}");
    assert!(out.contains("verified"), "{out}");
    assert!(out.contains("4 messages"), "{out}");
    assert!(
        out.contains("4 message texts open their commitments"),
        "{out}"
    );
    assert!(out.contains("cosigned by witness.test/w0"), "{out}");
    assert!(out.contains("not checked offline"), "{out}");
    let (ok, out, err) = verify(&delivered, &["--identity", identity.to_str().unwrap()]);
    assert!(ok, "verify the encrypted package: {out}{err}");
    let (ok, _, err) = verify(&delivered, &[]);
    assert!(!ok && err.contains("--identity"), "{err}");

    // What is in it.
    let archive = std::fs::read(&decrypted).unwrap();
    let files = unpack(&archive);
    let records: pkg::MessageRecords = serde_json::from_slice(file(&files, pkg::MESSAGES)).unwrap();
    assert_eq!(records.messages.len(), 4);
    let with_canary = records
        .messages
        .iter()
        .find(|m| m.text.as_deref() == Some(canary.as_str()))
        .expect("the canary message is produced");
    assert_eq!(
        (with_canary.seq, with_canary.sender_username.as_deref()),
        (3, Some("alice"))
    );
    assert!(with_canary.franking.as_ref().unwrap().key.is_some());
    let subscribers: pkg::SubscriberRecords =
        serde_json::from_slice(file(&files, pkg::SUBSCRIBERS)).unwrap();
    assert_eq!(
        subscribers.accounts[0].username.as_deref(),
        Some("alice"),
        "subscriber data was accepted too"
    );
    let certificate: pkg::Certificate =
        serde_json::from_slice(file(&files, pkg::CERTIFICATE)).unwrap();
    assert_eq!(
        (
            certificate.custodian.name.as_str(),
            certificate.custodian.role.as_str()
        ),
        ("lo1", "legal_officer")
    );
    let receipts: pkg::Receipts = serde_json::from_slice(file(&files, pkg::RECEIPTS)).unwrap();
    let kinds: Vec<&str> = receipts.entries.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(
        kinds,
        ["intake", "review", "decision", "decision", "read", "build"]
    );

    // Tampering, each named.
    let keys_owned = (
        NoteVerifier::parse(&package_key).unwrap(),
        server.log_key(),
        vec![witnesses[0].key()],
    );
    let keys = pkg::Keys {
        package: &keys_owned.0,
        log: &keys_owned.1,
        witnesses: &keys_owned.2,
        quorum: 1,
    };
    pkg::verify(&archive, &keys).expect("the package as delivered");
    // A flipped byte anywhere in the archive, or in the encrypted package.
    for at in (0..archive.len()).step_by(97) {
        let mut flipped = archive.clone();
        flipped[at] ^= 0x20;
        assert!(
            pkg::verify(&flipped, &keys).is_err(),
            "a flipped byte at {at} of {} went unnoticed",
            archive.len()
        );
    }
    let identity_text = std::fs::read_to_string(&identity).unwrap();
    for at in (0..package.len()).step_by(211) {
        let mut flipped = package.clone();
        flipped[at] ^= 0x01;
        assert!(
            pkg::decrypt(&identity_text, &flipped).is_err(),
            "age authenticates every byte (at {at})"
        );
    }
    let mut flipped = files.clone();
    let mut text = file(&files, pkg::MESSAGES).to_vec();
    let at = text
        .windows(canary.len())
        .position(|w| w == canary.as_bytes())
        .unwrap();
    text[at] ^= 0x01;
    replace(&mut flipped, pkg::MESSAGES, text);
    let tampered = dir.path().join("tampered.tar");
    std::fs::write(
        &tampered,
        pkg::archive(
            &flipped[..flipped.len() - 2],
            file(&files, pkg::MANIFEST),
            std::str::from_utf8(file(&files, pkg::MANIFEST_SIG)).unwrap(),
            0,
        ),
    )
    .unwrap();
    let (ok, _, err) = verify(&tampered, &[]);
    assert!(!ok, "a changed text is refused");
    assert!(
        err.contains("records/messages.json: its SHA-256 does not match the manifest"),
        "{err}"
    );

    // A removed message: refused by the manifest; and even by someone holding the package
    // key, by the log, whose read names it.
    let signer = NoteSigner::from_text(
        &std::fs::read_to_string(server.data_dir().join("package.key")).unwrap(),
    )
    .unwrap();
    let mut fewer = records.clone();
    fewer.messages.retain(|m| m.seq != 2);
    let mut removed = files.clone();
    replace(&mut removed, pkg::MESSAGES, pkg::to_json(&fewer));
    let e = pkg::verify(
        &pkg::archive(
            &removed[..removed.len() - 2],
            file(&files, pkg::MANIFEST),
            std::str::from_utf8(file(&files, pkg::MANIFEST_SIG)).unwrap(),
            0,
        ),
        &keys,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not match the manifest"), "{e}");
    let e = pkg::verify(&resigned(&removed, &signer), &keys).unwrap_err();
    assert!(
        e.to_string().contains("message 2 of grant")
            && e.to_string().contains("missing from the records"),
        "{e}"
    );

    // Receipts from another log: its checkpoint, or its key.
    let other = TestServer::start().await;
    other.admin().await;
    let other_checkpoint = other.audit().checkpoint().await.unwrap();
    let mut foreign = receipts.clone();
    foreign.checkpoint = other_checkpoint;
    let mut swapped = files.clone();
    replace(&mut swapped, pkg::RECEIPTS, pkg::to_json(&foreign));
    let e = pkg::verify(&resigned(&swapped, &signer), &keys).unwrap_err();
    assert!(e.to_string().contains("from another log"), "{e}");
    let other_key = other.log_key().to_string();
    let (ok, _, err) = run(
        bin(),
        &[
            "disclosure",
            "verify",
            decrypted.to_str().unwrap(),
            "--package-key",
            &package_key,
            "--log-key",
            &other_key,
        ],
    );
    assert!(!ok && err.contains("from another log"), "{err}");
    let mut moved = receipts.clone();
    moved.entries[0].index += 1;
    let mut swapped = files.clone();
    replace(&mut swapped, pkg::RECEIPTS, pkg::to_json(&moved));
    let e = pkg::verify(&resigned(&swapped, &signer), &keys).unwrap_err();
    assert!(e.to_string().contains("inclusion proof"), "{e}");

    // The build and the hand-over are each one log entry; the read is logged as any read.
    let audit = server.audit();
    let size = custodia_tlog::Checkpoint::parse(
        &custodia_tlog::SignedNote::parse(audit.checkpoint().await.unwrap().as_bytes())
            .unwrap()
            .text,
    )
    .unwrap()
    .size;
    let mut kinds = Vec::new();
    for i in 0..size {
        let record = audit.record(i).await.unwrap().unwrap();
        if record.case.as_deref() == Some(received.id.to_string().as_str()) {
            kinds.push(record.kind);
        }
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::DisclosureBuilt)
            .count(),
        1
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::DisclosureDelivered)
            .count(),
        1
    );

    // Nothing outside the sealed store holds the plaintext: not the data directory (the
    // database, its WAL, keys), not the server's logs.
    let mut scanned = files_under(server.data_dir());
    scanned.retain(|f| f.is_file());
    assert!(scanned.iter().any(|f| f.ends_with("custodia.db")));
    for f in &scanned {
        let bytes = std::fs::read(f).unwrap();
        for s in common::spellings(&canary) {
            assert!(!contains(&bytes, &s), "{} holds the canary", f.display());
        }
    }
    let logged = logs.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&logged).contains("disclosure package built"),
        "the logs were captured"
    );
    for s in common::spellings(&canary) {
        assert!(!contains(&logged, &s), "the server's logs hold the canary");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_is_granted_for_4_hours_at_most_and_its_follow_up_is_tracked() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let dm = alice.open_direct("bob").await.unwrap().id;
    alice.send(dm, "a1", "help").await.unwrap();

    let mut emergency = warrant(&["alice"], b"emergency disclosure request form");
    emergency.process = "emergency_request".into();
    emergency.emergency_basis =
        Some("a credible threat to the life of a named child, tonight".into());
    let emergency = lo1.receive_legal_request(&emergency).await.unwrap();
    assert!(emergency.follow_up_missing, "no legal process has followed");
    lo1.review_legal_request(emergency.id, &common::accept_in_full())
        .await
        .unwrap();
    let made = lo1.produce(emergency.id).await.unwrap();
    assert_eq!(made[0].reason, "emergency_disclosure");
    // One approver now: the second review comes within 24 hours.
    let approved = lo2.decide(made[0].id, true, "imminent risk").await.unwrap();
    assert_eq!(approved.status, "approved");
    let (from, until) = (
        approved.granted_from_ms.unwrap(),
        approved.granted_until_ms.unwrap(),
    );
    assert!(until - from <= 4 * 3600 * 1000, "{}", until - from);
    // Asked for by hand, a longer emergency grant is refused.
    let mut longer = common::content_request(made[0].case_id, "emergency_disclosure", (1, 1));
    longer.duration_secs = 4 * 3600 + 1;
    assert_eq!(
        lo1.request_access(&longer).await.unwrap_err().status(),
        Some(422)
    );
    longer.duration_secs = 4 * 3600;
    lo1.request_access(&longer).await.unwrap();

    // The follow-up legal process names the emergency; the emergency then shows it.
    let mut follow_up = warrant(&["alice"], b"court order");
    follow_up.process = "court_order".into();
    follow_up.categories = vec!["metadata".into()];
    follow_up.follows_up = Some("LR-1999-000001".into());
    let e = lo1.receive_legal_request(&follow_up).await.unwrap_err();
    assert!(e.to_string().contains("no legal request"), "{e}");
    follow_up.follows_up = Some(emergency.reference.clone());
    let court_order = lo1.receive_legal_request(&follow_up).await.unwrap();
    assert_eq!(
        court_order.follows_up.as_deref(),
        Some(emergency.reference.as_str())
    );
    let shown = lo1.legal_request(emergency.id).await.unwrap();
    assert!(!shown.follow_up_missing);
    assert_eq!(shown.followed_up_by, vec![court_order.reference.clone()]);
    // Only an emergency is followed up.
    follow_up.follows_up = Some(court_order.reference.clone());
    assert_eq!(
        lo1.receive_legal_request(&follow_up)
            .await
            .unwrap_err()
            .status(),
        Some(422)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_court_order_for_metadata_produces_no_text_and_still_verifies() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let dm = alice.open_direct("bob").await.unwrap().id;
    let canary = format!("canary-{}", uuid::Uuid::new_v4());
    alice.send(dm, "a1", &canary).await.unwrap();
    alice.send(dm, "a2", "second").await.unwrap();

    let mut order = warrant(&["alice"], b"court order for metadata");
    order.process = "court_order".into();
    order.categories = vec!["metadata".into()];
    let order = lo1.receive_legal_request(&order).await.unwrap();
    lo1.review_legal_request(order.id, &common::accept_in_full())
        .await
        .unwrap();
    let made = lo1.produce(order.id).await.unwrap();
    assert_eq!(made[0].tier, "metadata");
    sen.decide(made[0].id, true, "valid order").await.unwrap();
    lo2.decide(made[0].id, true, "checked").await.unwrap();
    let identity = age::x25519::Identity::generate();
    let package = lo1
        .build_package(order.id, &identity.to_public().to_string())
        .await
        .unwrap();
    let archive = pkg::decrypt(
        age::secrecy::ExposeSecret::expose_secret(&identity.to_string()),
        &package,
    )
    .unwrap();
    assert!(!contains(&archive, canary.as_bytes()), "no content");
    let package_key = NoteVerifier::parse(
        run(
            bin(),
            &[
                "disclosure",
                "public-key",
                "--data-dir",
                server.data_dir().to_str().unwrap(),
            ],
        )
        .1
        .trim(),
    )
    .unwrap();
    let verified = pkg::verify(
        &archive,
        &pkg::Keys {
            package: &package_key,
            log: &server.log_key(),
            witnesses: &[],
            quorum: 0,
        },
    )
    .unwrap();
    assert_eq!((verified.messages, verified.franking_checked), (2, 0));
    assert_eq!(verified.subscribers, 0, "subscriber data was not accepted");
    let files = unpack(&archive);
    let records: pkg::MessageRecords = serde_json::from_slice(file(&files, pkg::MESSAGES)).unwrap();
    assert_eq!(records.tier, "metadata");
    assert!(records.messages.iter().all(|m| m.content == "metadata_only"
        && m.text.is_none()
        && m.franking.as_ref().is_some_and(|f| f.key.is_none())));
    assert_eq!(records.conversations[0].members.len(), 2);
}

/// Past the grant size: 501 messages are produced as two grants (500 + 1), each approved
/// and read for the package; the package holds all 501, and its receipts both reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_over_two_grants_packages_every_message_once() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let dm = alice.open_direct("bob").await.unwrap().id;
    for i in 1..=501 {
        alice
            .send(dm, &format!("m{i}"), &format!("message {i}"))
            .await
            .unwrap();
    }
    let request = lo1
        .receive_legal_request(&warrant(&["alice"], b"warrant"))
        .await
        .unwrap();
    lo1.review_legal_request(request.id, &common::accept_in_full())
        .await
        .unwrap();
    let made = lo1.produce(request.id).await.unwrap();
    assert_eq!(
        made.iter()
            .map(|r| (r.from_seq, r.to_seq))
            .collect::<Vec<_>>(),
        [(1, 500), (501, 501)]
    );
    for r in &made {
        sen.decide(r.id, true, "valid warrant").await.unwrap();
        lo2.decide(r.id, true, "checked").await.unwrap();
    }
    let identity = age::x25519::Identity::generate();
    let package = lo1
        .build_package(request.id, &identity.to_public().to_string())
        .await
        .unwrap();
    let archive = pkg::decrypt(
        age::secrecy::ExposeSecret::expose_secret(&identity.to_string()),
        &package,
    )
    .unwrap();
    let package_key = NoteSigner::from_text(
        &std::fs::read_to_string(server.data_dir().join("package.key")).unwrap(),
    )
    .unwrap()
    .verifier();
    let verified = pkg::verify(
        &archive,
        &pkg::Keys {
            package: &package_key,
            log: &server.log_key(),
            witnesses: &[],
            quorum: 0,
        },
    )
    .unwrap();
    assert_eq!((verified.messages, verified.franking_checked), (501, 501));
    let files = unpack(&archive);
    let records: pkg::MessageRecords = serde_json::from_slice(file(&files, pkg::MESSAGES)).unwrap();
    let seqs: Vec<u64> = records.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=501).collect::<Vec<_>>(), "each once, in order");
    let receipts: pkg::Receipts = serde_json::from_slice(file(&files, pkg::RECEIPTS)).unwrap();
    assert_eq!(
        receipts.entries.iter().filter(|r| r.what == "read").count(),
        2
    );
}
