//! The transparency log end to end: a server appends, `custodia log verify` checks the
//! served log, and every kind of tampering with the stored log is detected and named.

mod common;

use std::path::{Path, PathBuf};

use custodia_server::logcmd::{WitnessPolicy, prove_consistency, prove_inclusion, verify};
use custodia_test::{TestServer, audit_event};
use custodia_tlog::{NoteSigner, NoteVerifier};

struct Log {
    server: TestServer,
    key: NoteVerifier,
    state: PathBuf,
    _work: tempfile::TempDir,
}

impl Log {
    /// A server whose log holds `n` entries: the first admin's creation (entry 0, made
    /// at first start) and "audit entry i" at each index i ≥ 1.
    async fn with_entries(n: u64) -> Self {
        let server = TestServer::start().await;
        let log = Self::around(server);
        log.append(1..n).await;
        log
    }

    fn around(server: TestServer) -> Self {
        let work = tempfile::tempdir().unwrap();
        let key = server.audit().verifier();
        Self {
            server,
            key,
            state: work.path().join("state"),
            _work: work,
        }
    }

    async fn append(&self, range: std::ops::Range<u64>) -> Vec<custodia_audit::Receipt> {
        let mut receipts = Vec::new();
        for i in range {
            receipts.push(
                self.server
                    .audit()
                    .append(&audit_event(&format!("audit entry {i}")))
                    .await
                    .unwrap(),
            );
        }
        receipts
    }

    fn client(&self) -> custodia_sdk::Client {
        let ca = std::fs::read(self.server.data_dir().join("tls/ca.pem")).unwrap();
        custodia_sdk::Client::new(self.server.audit_url(), &ca).unwrap()
    }

    async fn verify(&self) -> anyhow::Result<custodia_tlog::Checkpoint> {
        verify(&self.client(), &self.key, &Default::default(), &self.state).await
    }

    async fn refused(&self) -> String {
        format!(
            "{:#}",
            self.verify().await.expect_err("tampering went unnoticed")
        )
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(db_path(self.server.data_dir())).unwrap()
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("custodia.db")
}

#[tokio::test]
async fn verify_passes_then_passes_again_after_more_entries() {
    let log = Log::with_entries(300).await;
    assert_eq!(log.verify().await.unwrap().size, 300);
    log.append(300..700).await;
    let cp = log.verify().await.unwrap();
    assert_eq!(
        cp.size, 700,
        "checked consistent with the remembered size 300"
    );
    assert_eq!(
        log.verify().await.unwrap().size,
        700,
        "an unchanged log verifies again"
    );
}

#[tokio::test]
async fn an_altered_entry_is_named() {
    let log = Log::with_entries(10).await;
    log.verify().await.unwrap();
    log.db()
        .execute(
            "UPDATE log_leaves SET entry = ?1 WHERE idx = 4",
            [b"forged entry".to_vec()],
        )
        .unwrap();
    let why = log.refused().await;
    assert!(
        why.contains("entry 4 does not match its leaf hash"),
        "{why}"
    );
}

#[tokio::test]
async fn an_altered_entry_with_a_matching_leaf_hash_breaks_the_root() {
    let log = Log::with_entries(10).await;
    let forged = custodia_tlog::leaf_hash(b"forged");
    log.db()
        .execute(
            "UPDATE log_leaves SET entry = ?1, hash = ?2 WHERE idx = 4",
            (b"forged".to_vec(), forged.to_vec()),
        )
        .unwrap();
    let why = log.refused().await;
    assert!(
        why.contains("do not hash to the checkpoint's root"),
        "{why}"
    );
}

#[tokio::test]
async fn a_deleted_entry_is_named() {
    let log = Log::with_entries(10).await;
    log.db()
        .execute("DELETE FROM log_leaves WHERE idx = 3", [])
        .unwrap();
    let why = log.refused().await;
    assert!(why.contains("entries are missing"), "{why}");
}

#[tokio::test]
async fn two_swapped_entries_are_detected() {
    let log = Log::with_entries(10).await;
    let db = log.db();
    db.execute_batch(
        "UPDATE log_leaves SET idx = -1 WHERE idx = 1; UPDATE log_leaves SET idx = 1 WHERE idx = 2; \
         UPDATE log_leaves SET idx = 2 WHERE idx = -1;",
    )
    .unwrap();
    let why = log.refused().await;
    assert!(
        why.contains("do not hash to the checkpoint's root"),
        "{why}"
    );
}

#[tokio::test]
async fn a_truncated_and_rolled_back_log_is_named() {
    let log = Log::with_entries(5).await;
    let older = log.append(5..6).await.remove(0).checkpoint; // signed at size 6
    log.append(6..8).await;
    assert_eq!(log.verify().await.unwrap().size, 8);
    // The operator cuts the last two entries and serves the older, validly signed checkpoint.
    let db = log.db();
    db.execute("DELETE FROM log_leaves WHERE idx >= 6", [])
        .unwrap();
    db.execute("UPDATE log_checkpoint SET size = 6, note = ?1", [older])
        .unwrap();
    let why = log.refused().await;
    assert!(why.contains("shrank from 8 to 6"), "{why}");
}

#[tokio::test]
async fn a_fork_signed_by_the_log_key_is_detected() {
    let log = Log::with_entries(20).await;
    log.verify().await.unwrap();

    // A second server with the same log key and a different history of larger size.
    let mut fork = TestServer::start().await;
    fork.stop().await;
    std::fs::copy(
        log.server.data_dir().join("log.key"),
        fork.data_dir().join("log.key"),
    )
    .unwrap();
    fork.restart_fresh().await;
    let forked = Log {
        state: log.state.clone(),
        ..Log::around(fork)
    };
    assert_eq!(forked.key, log.key, "the fork is signed by the same key");
    for i in 0..25 {
        forked
            .server
            .audit()
            .append(&audit_event(&format!("another history {i}")))
            .await
            .unwrap();
    }
    let why = forked.refused().await;
    assert!(
        why.contains("not consistent with the remembered checkpoint at size 20"),
        "{why}"
    );
}

#[tokio::test]
async fn a_checkpoint_signed_by_an_unknown_key_is_refused() {
    let log = Log::with_entries(3).await;
    let impostor = NoteSigner::generate(log.key.name()).unwrap().verifier();
    let other = Log {
        key: impostor,
        ..Log::around(log.server)
    };
    let why = other.refused().await;
    assert!(why.contains("not signed by the log key"), "{why}");
}

#[tokio::test]
async fn the_cli_exits_non_zero_and_names_the_problem() {
    let log = Log::with_entries(4).await;
    log.db()
        .execute("DELETE FROM log_leaves WHERE idx = 1", [])
        .unwrap();
    // Async: the in-process server runs on this test's runtime and must keep answering.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args([
            "log",
            "verify",
            "--url",
            log.server.audit_url(),
            "--key",
            &log.key.to_string(),
            "--state",
        ])
        .arg(&log.state)
        .arg("--ca-cert")
        .arg(log.server.data_dir().join("tls/ca.pem"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("entries are missing"), "{stderr}");
    assert!(
        !log.state.exists(),
        "nothing is remembered from a failed verification"
    );
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn single_entries_and_sizes_are_proven_from_the_tiles() {
    let log = Log::with_entries(5).await;
    let early = log.append(5..6).await.remove(0); // its checkpoint is of size 6
    let receipts = log.append(6..700).await;
    let none = WitnessPolicy::default();
    for index in [1u64, 5, 255, 256, 511, 699] {
        let proven = prove_inclusion(&log.client(), &log.key, &none, index)
            .await
            .unwrap();
        assert_eq!(proven.checkpoint.size, 700);
        assert_eq!(
            proven.entry.event.case.as_deref(),
            Some(&*format!("audit entry {index}"))
        );
        if index >= 6 {
            assert_eq!(proven.leaf_hash, receipts[index as usize - 6].leaf_hash);
        }
    }
    let old = custodia_tlog::Checkpoint::parse(
        &custodia_tlog::SignedNote::parse(early.checkpoint.as_bytes())
            .unwrap()
            .text,
    )
    .unwrap();
    let (new, proof) = prove_consistency(&log.client(), &log.key, &none, &old)
        .await
        .unwrap();
    assert_eq!((old.size, new.size), (6, 700));
    assert!(!proof.is_empty());

    // An altered entry is not proven; the others still are.
    log.db()
        .execute(
            "UPDATE log_leaves SET entry = ?1 WHERE idx = 300",
            [b"forged entry".to_vec()],
        )
        .unwrap();
    let why = format!(
        "{:#}",
        prove_inclusion(&log.client(), &log.key, &none, 300)
            .await
            .unwrap_err()
    );
    assert!(why.contains("not proven to be in the signed log"), "{why}");
    prove_inclusion(&log.client(), &log.key, &none, 299)
        .await
        .unwrap();
    let why = format!(
        "{:#}",
        prove_inclusion(&log.client(), &log.key, &none, 700)
            .await
            .unwrap_err()
    );
    assert!(why.contains("there is no entry 700"), "{why}");
}

#[tokio::test]
async fn inclusion_and_consistency_on_the_command_line() {
    let log = Log::with_entries(3).await;
    let receipt = log.append(3..4).await.remove(0);
    let old = log.state.with_extension("receipt");
    std::fs::write(&old, &receipt.checkpoint).unwrap();
    log.append(4..40).await;
    let run = async |args: &[&str]| {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_custodia"))
            .arg("log")
            .args(args)
            .args([
                "--url",
                log.server.audit_url(),
                "--key",
                &log.key.to_string(),
            ])
            .arg("--ca-cert")
            .arg(log.server.data_dir().join("tls/ca.pem"))
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let leaf = hex(&receipt.leaf_hash);
    let (ok, out) = run(&["inclusion", "--index", "3", "--leaf-hash", &leaf]).await;
    assert!(
        ok && out.contains("entry 3 (access.read, case audit entry 3) is in the log of 40 entries"),
        "{out}"
    );
    let (ok, out) = run(&["inclusion", "--index", "4", "--leaf-hash", &leaf]).await;
    assert!(!ok && out.contains("not the entry of the receipt"), "{out}");
    let (ok, out) = run(&["consistency", "--old", old.to_str().unwrap()]).await;
    assert!(
        ok && out.contains("of 40 entries") && out.contains("of 4 entries"),
        "{out}"
    );
    std::fs::write(&old, "not a checkpoint\n").unwrap();
    let (ok, out) = run(&["consistency", "--old", old.to_str().unwrap()]).await;
    assert!(!ok && out.contains("the earlier checkpoint"), "{out}");
}

#[tokio::test]
async fn the_auditor_listener_refuses_bad_paths_and_serves_only_what_is_signed() {
    let log = Log::with_entries(260).await;
    let client = log.client();
    let get = async |path: &str| {
        client
            .raw(custodia_sdk::Method::GET, path, "text/plain", Vec::new())
            .await
            .unwrap()
    };
    for path in [
        "/tile/0/x000/001",
        "/tile/0/1",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/0/001.p/5",
        "/tile/0/002",
        "/tile/1/000",
        "/tile/64/000",
        "/tile/entries/002",
        "/tile/entries/001.p/5",
        "/tile/entries/-1",
        "/tile/",
        "/nope",
    ] {
        let (status, ctype, body) = get(path).await;
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(ctype, "application/problem+json", "{path}");
    }
    // The full and partial tiles of the signed tree are served, at their exact widths.
    let (status, _, body) = get("/tile/0/000").await;
    assert_eq!((status, body.len()), (200, 256 * 32));
    let (status, _, body) = get("/tile/1/000.p/1").await;
    assert_eq!((status, body.len()), (200, 32));
    let (status, _, _) = get("/tile/0/001.p/4").await;
    assert_eq!(status, 200);
    let (status, _, _) = client
        .raw(
            custodia_sdk::Method::POST,
            "/checkpoint",
            "text/plain",
            b"x".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 405);
    assert_eq!(log.verify().await.unwrap().size, 260, "still serving");
}

/// c2sp.org/tlog-tiles: "Entry bundles SHOULD be compressed at the HTTP layer. Logs MAY
/// use `Content-Encoding: gzip` with no negotiation, or any compression algorithm
/// requested by the client with `Accept-Encoding`." A client that accepts gzip gets the
/// bundle gzipped (the same bytes once inflated, and smaller); one that refuses it gets
/// it as it is. Hash tiles are not compressed.
#[tokio::test]
async fn entry_bundles_are_gzipped_for_clients_that_accept_it() {
    use std::io::Read;
    let log = Log::with_entries(256).await;
    log.verify().await.unwrap();
    let addr = log
        .server
        .audit_url()
        .trim_start_matches("https://")
        .to_owned();
    let ca = std::fs::read(log.server.data_dir().join("tls/ca.pem")).unwrap();
    let get = |path: &str, accept: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept}\r\nConnection: close\r\n\r\n"
        )
    };
    let (status, head, plain) =
        common::raw_https(&addr, &ca, get("/tile/entries/000", "identity").as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(common::header_of(&head, "content-encoding"), None);
    for accept in ["gzip, identity", "br;q=1.0, gzip;q=0.5", "*"] {
        let (status, head, packed) =
            common::raw_https(&addr, &ca, get("/tile/entries/000", accept).as_bytes()).await;
        assert_eq!(status, 200);
        assert_eq!(
            common::header_of(&head, "content-encoding").as_deref(),
            Some("gzip"),
            "{accept}"
        );
        assert!(
            packed.len() * 2 < plain.len(),
            "{} -> {} bytes",
            plain.len(),
            packed.len()
        );
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain);
    }
    let (_, head, _) =
        common::raw_https(&addr, &ca, get("/tile/entries/000", "gzip;q=0").as_bytes()).await;
    assert_eq!(
        common::header_of(&head, "content-encoding"),
        None,
        "q=0 refuses gzip"
    );
    let (_, head, _) = common::raw_https(&addr, &ca, get("/tile/0/000", "gzip").as_bytes()).await;
    assert_eq!(
        common::header_of(&head, "content-encoding"),
        None,
        "hash tiles as they are"
    );
}

/// c2sp.org/tlog-tiles: "Full tiles MUST be exactly 256 hashes wide" — a tile the store
/// cannot fill whole is an error naming what is missing, never a short tile served as
/// immutable.
#[tokio::test]
async fn a_tile_with_rows_missing_is_an_error_never_a_short_tile() {
    let log = Log::with_entries(300).await;
    log.verify().await.unwrap();
    log.db()
        .execute("DELETE FROM log_leaves WHERE idx = 7", [])
        .unwrap();
    for path in ["/tile/entries/000", "/tile/0/000"] {
        let (status, _, body) = log
            .client()
            .raw(custodia_sdk::Method::GET, path, "text/plain", Vec::new())
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 500, "{path}: {body}");
        assert!(
            body.contains("missing from the log's store"),
            "{path}: {body}"
        );
    }
}

/// c2sp.org/tlog-tiles: "The origin line SHOULD be the scheme-less URL prefix of the log
/// with no trailing slashes." Unless `log_origin` says otherwise, a new log is named
/// after its auditor listener; a log keeps the origin it began with.
#[tokio::test]
async fn a_new_log_is_named_after_its_auditor_listener() {
    let mut server = TestServer::start_with(custodia_server::RawConfig {
        audit_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(server.audit().verifier().name(), "127.0.0.1:0");
    let named = TestServer::start_with(custodia_server::RawConfig {
        log_origin: Some("audit.example.org".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(named.audit().verifier().name(), "audit.example.org");
    // A restart keeps the origin the log began with.
    server.restart().await;
    assert_eq!(server.audit().verifier().name(), "127.0.0.1:0");
}
