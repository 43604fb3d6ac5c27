//! Attachments end to end: sniffed, sealed, member-only; size limits; hash-list matches
//! blocked, kept as evidence, a case opened; and file bytes nowhere readable on disk.

use custodia::RawConfig;
use custodia_sdk::SdkError;
use custodia_test::TestServer;
use sha2::Digest;

fn status(e: &SdkError) -> u16 {
    match e {
        SdkError::Api(p) => p.status,
        other => panic!("expected a problem answer, got {other}"),
    }
}

/// A PNG signature followed by `marker`: sniffed as an image whatever it is called.
fn png(marker: &[u8]) -> Vec<u8> {
    let mut f = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    f.extend_from_slice(marker);
    f
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
    let marker = format!("attachment-canary-{}", uuid::Uuid::new_v4());
    let file = png(marker.as_bytes());
    let a = alice.upload(chat.id, file.clone()).await.unwrap();
    assert_eq!(a.content_type, "image/png", "sniffed, not trusted");
    assert_eq!(a.size, file.len() as u64);
    let (ctype, got) = bob.download(a.id).await.unwrap();
    assert_eq!((ctype.as_str(), &got), ("image/png", &file));
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
            .encode(&file)
            .into_bytes()[..24]
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
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin.staff_create("mod", "moderator").await.unwrap();
    let m = server
        .staff("mod", &created.password, &created.totp_uri)
        .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();

    let known = png(b"a known abuse image stand-in");
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
        .upload(chat.id, png(b"an unrelated holiday photo"))
        .await
        .unwrap();

    // Two high-priority child-safety cases, no content in them.
    let mut cases = Vec::new();
    for _ in 0..300 {
        cases = m.cases().await.unwrap();
        if cases.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(cases.len(), 2);
    for c in &cases {
        assert_eq!(c.category.as_deref(), Some("child_safety"));
        assert!(
            c.reference
                .as_deref()
                .is_some_and(|r| r.contains("HIGH PRIORITY")),
            "{c:?}"
        );
    }
    // Nothing was delivered: bob has no attachment to fetch and no message about it.
    assert!(
        bob.history(chat.id, None, None, 10)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}
