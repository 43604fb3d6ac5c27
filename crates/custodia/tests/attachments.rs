//! Attachments end to end: sniffed, sealed, member-only; size limits; hash-list matches
//! blocked, kept as evidence, a case opened; and file bytes nowhere readable on disk.

use custodia_sdk::SdkError;
use custodia_sdk::proto::staff as wire;
use custodia_server::RawConfig;
use custodia_test::{TestServer, cases_at_least};
use sha2::Digest;

fn status(e: &SdkError) -> u16 {
    match e {
        SdkError::Api(p) => p.status,
        other => panic!("expected a problem answer, got {other}"),
    }
}

/// Every file under `dir`, concatenated (database, WAL, everything).
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn members_download_what_was_uploaded_and_nobody_else_can() {
    let mut server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let eve = server.user("eve").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let file = pdq_data("scene-d.png");
    let a = alice.upload(chat.id, file.clone()).await.unwrap();
    assert_eq!(a.content_type, "image/png", "sniffed, not trusted");
    assert_eq!(a.size, file.len() as u64);
    let (ctype, got) = bob.download(a.id).await.unwrap();
    assert_eq!((ctype.as_str(), &got), ("image/png", &file));
    let marker = format!("attachment-canary-{}", uuid::Uuid::new_v4());
    let note = format!("a private note: {marker}").into_bytes();
    let t = alice.upload(chat.id, note.clone()).await.unwrap();
    assert!(t.content_type.starts_with("text/plain"));
    assert_eq!(bob.download(t.id).await.unwrap().1, note);
    assert_eq!(status(&eve.download(a.id).await.unwrap_err()), 404);
    assert_eq!(
        status(&eve.upload(chat.id, b"x".to_vec()).await.unwrap_err()),
        404
    );
    assert_eq!(
        status(&bob.download(uuid::Uuid::new_v4()).await.unwrap_err()),
        404
    );

    // The file's bytes are nowhere on disk: not raw, not hex, not base64.
    server.stop().await;
    let disk = all_bytes(server.data_dir());
    use base64::Engine;
    for form in [
        marker.clone().into_bytes(),
        marker
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(&note)
            .into_bytes()[8..40]
            .to_vec(),
    ] {
        assert!(!contains(&disk, &form), "file bytes found on disk");
    }
}

#[tokio::test]
async fn an_oversized_upload_is_refused_and_nothing_is_kept() {
    let server = TestServer::start_with(RawConfig {
        max_attachment_bytes: Some(1000),
        ..RawConfig::default()
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let e = alice.upload(chat.id, vec![7; 1001]).await.unwrap_err();
    assert_eq!(status(&e), 413, "{e}");
    assert_eq!(
        status(&alice.upload(chat.id, Vec::new()).await.unwrap_err()),
        422
    );
    alice.upload(chat.id, vec![7; 1000]).await.unwrap();
}

async fn import(server: &TestServer, list: &str, kind: &str, lines: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.txt");
    std::fs::write(&file, lines).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args([
            "admin", "hashlist", "import", "--list", list, "--kind", kind,
        ])
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg(&file)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn a_file_on_a_hash_list_is_blocked_preserved_and_opens_a_case() {
    // The MD5 list is configured to open normal-priority cases; every other list high.
    let server = TestServer::start_with(custodia_server::RawConfig {
        normal_priority_lists: Some(vec!["test-md5".into()]),
        ..custodia_server::RawConfig::default()
    })
    .await;
    let admin = server.admin().await;
    let m = server.new_staff(&admin, "mod", "moderator").await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    // An older, normal case: bob reports a message first.
    alice
        .send(chat.id, "s1", "buy followers now")
        .await
        .unwrap();
    let reported = bob
        .report(chat.id, &[1], "spam", None)
        .await
        .unwrap()
        .case_id;
    server.advance_clock(std::time::Duration::from_secs(60));

    let known = b"a known abuse file stand-in, exact bytes".to_vec();
    let other = b"a known file, not an image".to_vec();
    let sha = hex(&sha2::Sha256::digest(&known));
    let md5 = hex(&md5::Md5::digest(&other));
    let (ok, out) = import(
        &server,
        "test-list",
        "sha256",
        &format!("# test\n{sha},extra\n\n"),
    )
    .await;
    assert!(ok && out.contains("imported 1 sha256 hashes"), "{out}");
    let (ok, out) = import(&server, "test-md5", "md5", &format!("{md5}\n")).await;
    assert!(ok, "{out}");
    let (ok, out) = import(&server, "bad", "sha256", "not-a-hash\n").await;
    assert!(
        !ok && out.contains("list.txt:1") && out.contains("64 hex digits"),
        "{out}"
    );

    for file in [known, other] {
        server.advance_clock(std::time::Duration::from_secs(60));
        let e = alice.upload(chat.id, file).await.unwrap_err();
        assert_eq!(status(&e), 422);
        assert!(e.to_string().contains("this file cannot be sent"), "{e}");
        assert!(
            !e.to_string().contains("list"),
            "the refusal reveals nothing: {e}"
        );
    }
    // An unrelated file passes.
    alice
        .upload(chat.id, b"an unrelated holiday note".to_vec())
        .await
        .unwrap();

    // Two child-safety cases, no content in them: the SHA-256 list's is high and heads
    // the queue before the older report; the MD5 list's is normal (as configured), after
    // the report, which waited longer.
    let cases = cases_at_least(&m, 3).await;
    assert_eq!(cases.len(), 3);
    assert_eq!(
        cases
            .iter()
            .map(|c| (c.priority.as_str(), c.category.as_deref().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("high", "child_safety"),
            ("normal", "spam"),
            ("normal", "child_safety")
        ]
    );
    assert_eq!(cases[1].id, reported);
    assert!(
        cases[0].opened_at_ms > cases[1].opened_at_ms,
        "the older one waits"
    );
    for c in [&cases[0], &cases[2]] {
        assert!(
            c.reference
                .as_deref()
                .is_some_and(|r| r.contains("matched hash list")),
            "{c:?}"
        );
    }
    // Nothing was delivered: bob has no attachment to fetch and no message about it.
    assert_eq!(
        bob.history(chat.id, None, None, 10)
            .await
            .unwrap()
            .messages
            .len(),
        1,
        "only the text message"
    );
}

fn pdq_data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../custodia-pdq/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The reference hash of a test image, from the file Meta's implementation produced.
fn reference_pdq(name: &str) -> String {
    let expected = String::from_utf8(pdq_data("expected.txt")).unwrap();
    expected
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims 100000 × 100000 pixels: 30 GB once decompressed.
fn bomb() -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

#[tokio::test]
async fn pdq_lists_catch_the_image_resized_and_reencoded_and_bad_images_are_refused() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let m = server.new_staff(&admin, "mod", "moderator").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();

    // A Hasher-Matcher-Actioner style CSV export, with a header line.
    let csv = format!(
        "signal_type,signal_value,quality\npdq,{},100\n",
        reference_pdq("scene-a.png")
    );
    let (ok, out) = import(&server, "pdq-test", "pdq", &csv).await;
    assert!(ok && out.contains("imported 1 pdq hashes"), "{out}");

    for name in ["scene-a.png", "scene-a-small.jpg", "scene-a-q60.jpg"] {
        let e = alice.upload(chat.id, pdq_data(name)).await.unwrap_err();
        assert_eq!(status(&e), 422, "{name}: {e}");
        assert!(e.to_string().contains("this file cannot be sent"), "{e}");
    }
    let passed = alice
        .upload(chat.id, pdq_data("scene-b.png"))
        .await
        .unwrap();
    assert_eq!(passed.content_type, "image/png");

    // A decompression bomb and a truncated image: refused, and the server goes on.
    let e = alice.upload(chat.id, bomb()).await.unwrap_err();
    assert_eq!(status(&e), 422);
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let whole = pdq_data("scene-c.png");
    let e = alice
        .upload(chat.id, whole[..whole.len() / 2].to_vec())
        .await
        .unwrap_err();
    assert_eq!(status(&e), 422);
    alice
        .upload(chat.id, pdq_data("scene-d.png"))
        .await
        .unwrap();

    let cases = cases_at_least(&m, 3).await;
    assert_eq!(cases.len(), 3, "one case per matching upload");
}

/// A hash-list match's preserved file: nobody fetches it, but a legal officer's evidence
/// grant for mandatory reporting returns its original bytes, one logged read each time;
/// refused (and logged) before approval, to anyone else, and after the grant ends.
#[tokio::test]
async fn preserved_evidence_is_read_only_under_a_mandatory_reporting_grant() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lex = server.new_staff(&admin, "lex", "legal_officer").await;
    let lex2 = server.new_staff(&admin, "lex2", "legal_officer").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    let moderator = server.new_staff(&admin, "mod", "moderator").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "m1", "hello").await.unwrap();
    let known = b"a known abuse file stand-in, exact bytes, for the evidence test".to_vec();
    let (ok, out) = import(
        &server,
        "ncmec",
        "sha256",
        &format!("{}\n", hex(&sha2::Sha256::digest(&known))),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        status(&alice.upload(chat.id, known.clone()).await.unwrap_err()),
        422
    );
    let case = cases_at_least(&lex, 1).await.remove(0);
    assert_eq!(case.priority, "high");
    let file = case.files[0];
    // Nobody fetches it as a member: 404, as for any preserved file.
    assert_eq!(status(&alice.download(file).await.unwrap_err()), 404);

    let ask = |reason: &str, tier: &str| wire::CreateAccessRequest {
        case_id: case.id,
        reason: reason.into(),
        from_seq: case.from_seq,
        to_seq: case.to_seq,
        tier: tier.into(),
        duration_secs: 600,
        justification: "CyberTipline report of a hash-list match".into(),
    };
    for (who, reason, tier) in [
        (&lex, "mandatory_reporting", "content"),
        (&moderator, "report_review", "evidence"),
    ] {
        assert_eq!(
            status(&who.request_access(&ask(reason, tier)).await.unwrap_err()),
            422,
            "{reason} {tier}"
        );
    }
    assert_eq!(
        status(
            &moderator
                .request_access(&ask("mandatory_reporting", "evidence"))
                .await
                .unwrap_err()
        ),
        403,
        "legal officers ask"
    );
    let grant = lex
        .request_access(&ask("mandatory_reporting", "evidence"))
        .await
        .unwrap();
    assert_eq!(grant.required, 1);
    assert_eq!(
        status(&lex.read_evidence(grant.id, file).await.unwrap_err()),
        403,
        "not approved yet"
    );
    sen.decide(grant.id, true, "a report the law requires")
        .await
        .unwrap();
    let (content_type, bytes) = lex.read_evidence(grant.id, file).await.unwrap();
    assert_eq!(
        hex(&sha2::Sha256::digest(&bytes)),
        hex(&sha2::Sha256::digest(&known)),
        "the original bytes"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "as sniffed at upload"
    );
    assert_eq!(
        status(&lex2.read_evidence(grant.id, file).await.unwrap_err()),
        403,
        "only the requester"
    );
    assert_eq!(
        status(
            &lex.read_evidence(grant.id, uuid::Uuid::new_v4())
                .await
                .unwrap_err()
        ),
        404,
        "only the case's files"
    );
    assert_eq!(
        status(&lex.read_grant(grant.id).await.unwrap_err()),
        422,
        "an evidence grant opens no messages"
    );
    // Ten minutes on (the staff session lasts fifteen), the grant has ended.
    server.advance_clock(std::time::Duration::from_secs(601));
    let e = lex.read_evidence(grant.id, file).await.unwrap_err();
    assert_eq!(status(&e), 403);
    assert!(e.to_string().contains("expired"), "{e}");

    // In the log: exactly one read of the file, and the refusals.
    let audit = server.audit();
    let size = audit.tree().store().log_size().await.unwrap();
    let (mut reads, mut denied) = (0, 0);
    for i in 0..size {
        let e = audit.record(i).await.unwrap().unwrap();
        let names_grant = e.scope.contains(&("request".into(), grant.id.to_string()));
        if names_grant && e.kind == custodia_audit::EventKind::AccessRead {
            reads += 1;
            assert!(e.scope.contains(&("attachments".into(), file.to_string())));
        }
        if names_grant && e.kind == custodia_audit::EventKind::AccessDenied {
            denied += 1;
        }
    }
    assert_eq!(reads, 1, "one log entry for the one read");
    assert_eq!(denied, 3, "before approval, another officer, after expiry");
}
