//! The witness against c2sp.org/tlog-witness, rule by rule, spoken byte by byte: each
//! request is written on a TLS connection by hand (no client code of ours), each answer
//! read back as status line, headers and body, and each test quotes the rule it checks.
//! The checkpoints are signed by a log key the witness is configured for.

mod common;

use custodia_test::TestWitness;
use custodia_tlog::{
    Checkpoint, EMPTY_ROOT, Hash, MemoryTree, NoteSignature, NoteSigner, NoteVerifier, SignedNote,
    consistency_proof, leaf_hash, root_hash,
};

const ORIGIN: &str = "example.com/behind-the-sofa";

/// A log of `n` leaves in memory, signing with `key`.
struct Log {
    key: NoteSigner,
    tree: MemoryTree,
}

fn b64(h: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

impl Log {
    fn new(key: NoteSigner, tag: &str, n: usize) -> Self {
        let leaves = (0..n)
            .map(|i| leaf_hash(format!("{tag} {i}").as_bytes()))
            .collect();
        Self {
            key,
            tree: MemoryTree(leaves),
        }
    }

    /// A signed checkpoint of `size` with `root`, as text.
    fn checkpoint_with_root(&self, size: u64, root: &Hash) -> String {
        let text = format!("{ORIGIN}\n{size}\n{}\n", b64(root));
        let sig = self.key.sign(&text).unwrap();
        format!("{text}\n{sig}\n")
    }

    fn checkpoint(&self, size: u64) -> String {
        self.checkpoint_with_root(size, &root_hash(&self.tree, size).unwrap())
    }

    /// An `add-checkpoint` body from `old` to `new`, as the spec lays it out: the old size
    /// line, the proof lines, an empty line, the checkpoint.
    fn body(&self, old: u64, new: u64) -> String {
        let proof = consistency_proof(&self.tree, old, new).unwrap().unwrap();
        body_with(old, &proof, &self.checkpoint(new))
    }
}

fn body_with(old: u64, proof: &[Hash], checkpoint: &str) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&b64(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(checkpoint);
    out
}

/// An HTTP answer: status, the Content-Type header, the body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// Sends one raw HTTP/1.1 request to the witness over TLS and reads the whole answer.
async fn raw(witness: &TestWitness, method: &str, path: &str, body: &str) -> Answer {
    let config = witness.config();
    let addr = config.url.trim_start_matches("https://").to_owned();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let ca = std::fs::read(&config.ca_cert).unwrap();
    let (status, head, body) = common::raw_https(&addr, &ca, request.as_bytes()).await;
    Answer {
        status,
        content_type: common::header_of(&head, "content-type").unwrap_or_default(),
        body: String::from_utf8(body).unwrap(),
    }
}

async fn setup() -> (TestWitness, Log, NoteVerifier) {
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let verifier = key.verifier();
    let witness = TestWitness::start("witness.example/w1", vec![verifier.clone()]).await;
    (witness, Log::new(key, "entry", 300), verifier)
}

#[tokio::test]
async fn a_valid_checkpoint_gets_timestamped_cosignature_lines() {
    // "If all the checks above pass, the witness MUST update its record of the latest
    // cosigned checkpoint and respond with a "200 Success" HTTP status code. The response
    // body MUST be a sequence of one or more note signature lines, each starting with the
    // `—` character (U+2014) and ending with a newline character (U+000A)." ... "The
    // cosignature MUST NOT omit the timestamp, i.e. the timestamp MUST NOT be zero."
    let (w, log, _) = setup().await;
    let a = raw(&w, "POST", "/add-checkpoint", &log.body(0, 20)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!a.body.is_empty() && a.body.ends_with('\n'));
    for line in a.body.lines() {
        assert!(line.starts_with("— "), "{line:?}");
        let sig = NoteSignature::parse_line(line).unwrap();
        assert!(sig.cosigned_at().is_some_and(|t| t > 0), "{line:?}");
    }
    let note = SignedNote::parse(format!("{}{}", log.checkpoint(20), a.body).as_bytes()).unwrap();
    assert_eq!(
        note.verified_by(&[w.key()]).len(),
        1,
        "a cosignature by the witness key"
    );
    // And the record moved: the next request goes on from 20.
    let a = raw(&w, "POST", "/add-checkpoint", &log.body(20, 40)).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn an_unknown_origin_gets_404() {
    // "If the checkpoint origin is unknown, the witness MUST respond with a "404 Not
    // Found" HTTP status code."
    let (w, log, _) = setup().await;
    let body = log.body(0, 10).replace(ORIGIN, "example.com/elsewhere");
    assert_eq!(raw(&w, "POST", "/add-checkpoint", &body).await.status, 404);
}

#[tokio::test]
async fn no_trusted_signature_or_a_bad_one_gets_403() {
    // "The witness MUST respond with a "403 Forbidden" HTTP status code if either no
    // signature from a trusted key for the origin is present, or a signature line's key
    // name and ID match a trusted key but the signature itself fails to verify."
    let (w, log, _) = setup().await;
    let impostor = Log::new(NoteSigner::generate(ORIGIN).unwrap(), "entry", 300);
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &impostor.body(0, 10))
            .await
            .status,
        403
    );
    // The trusted key's line over another text: its name and id match, it fails.
    let honest = log.checkpoint(10);
    let forged_sig = log.checkpoint(11);
    let sig_line = forged_sig.lines().last().unwrap();
    let (text, _) = honest.split_once("\n\n").unwrap();
    let forged = format!("{text}\n\n{sig_line}\n");
    let proof: Vec<Hash> = Vec::new();
    let a = raw(
        &w,
        "POST",
        "/add-checkpoint",
        &body_with(0, &proof, &forged),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
}

#[tokio::test]
async fn an_old_size_above_the_checkpoint_gets_400() {
    // "The old size MUST be equal to or lower than the checkpoint size. Otherwise, the
    // witness MUST respond with a "400 Bad Request" HTTP status code."
    let (w, log, _) = setup().await;
    let body = body_with(30, &[], &log.checkpoint(20));
    assert_eq!(raw(&w, "POST", "/add-checkpoint", &body).await.status, 400);
}

#[tokio::test]
async fn an_old_size_that_is_not_the_cosigned_one_gets_409_with_that_size() {
    // "If it doesn't match, the witness MUST respond with a "409 Conflict" HTTP status
    // code. The response body MUST consist of the tree size of the latest cosigned
    // checkpoint in decimal, followed by a newline (U+000A). The response MUST have a
    // `Content-Type` of `text/x.tlog.size`."
    let (w, log, _) = setup().await;
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &log.body(0, 20))
            .await
            .status,
        200
    );
    let a = raw(&w, "POST", "/add-checkpoint", &log.body(10, 30)).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.body, "20\n");
    assert_eq!(a.content_type, "text/x.tlog.size");
    // "If a client doesn't have information on the latest cosigned checkpoint, it MAY
    // initially make a request with a old size of zero to obtain it."
    let a = raw(&w, "POST", "/add-checkpoint", &log.body(0, 30)).await;
    assert_eq!((a.status, a.body.as_str()), (409, "20\n"));
}

#[tokio::test]
async fn a_size_zero_checkpoint_must_have_the_empty_root() {
    // "A checkpoint of size zero MUST have the root hash of the empty tree, which
    // [RFC 6962], Section 2.1 defines as the hash of the empty string. Otherwise, the
    // witness MUST respond with a "422 Unprocessable Entity" HTTP status code."
    let (w, log, _) = setup().await;
    let wrong = body_with(0, &[], &log.checkpoint_with_root(0, &leaf_hash(b"x")));
    assert_eq!(raw(&w, "POST", "/add-checkpoint", &wrong).await.status, 422);
    let right = body_with(0, &[], &log.checkpoint_with_root(0, &EMPTY_ROOT));
    assert_eq!(raw(&w, "POST", "/add-checkpoint", &right).await.status, 200);
}

#[tokio::test]
async fn proofs_that_are_not_empty_from_zero_or_do_not_verify_get_422() {
    // "If the proof is not empty when the old size is zero, or if a Merkle Consistency
    // Proof doesn't verify, the witness MUST respond with a "422 Unprocessable Entity"
    // HTTP status code."
    let (w, log, _) = setup().await;
    let from_zero = body_with(0, &[leaf_hash(b"x")], &log.checkpoint(10));
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &from_zero).await.status,
        422
    );
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &log.body(0, 10))
            .await
            .status,
        200
    );
    let mut proof = consistency_proof(&log.tree, 10, 40).unwrap().unwrap();
    proof[0][0] ^= 1;
    let bad = body_with(10, &proof, &log.checkpoint(40));
    assert_eq!(raw(&w, "POST", "/add-checkpoint", &bad).await.status, 422);
}

#[tokio::test]
async fn the_cosigned_size_with_another_root_gets_422() {
    // "If the old size matches the checkpoint size, the witness MUST check that the root
    // hashes are also identical. If they don't match, the witness MUST respond with a
    // "422 Unprocessable Entity" HTTP status code."
    let (w, log, _) = setup().await;
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &log.body(0, 50))
            .await
            .status,
        200
    );
    let fork = Log::new(
        NoteSigner::from_text(&log.key.to_text()).unwrap(),
        "fork",
        300,
    );
    let a = raw(&w, "POST", "/add-checkpoint", &fork.body(50, 50)).await;
    assert_eq!(a.status, 422, "{}", a.body);
    // The same checkpoint again is fine.
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", &log.body(50, 50))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn add_checkpoint_is_a_post() {
    // "The request MUST be an HTTP POST."
    let (w, log, _) = setup().await;
    assert_eq!(raw(&w, "GET", "/add-checkpoint", "").await.status, 405);
    assert_eq!(
        raw(&w, "PUT", "/add-checkpoint", &log.body(0, 5))
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn monitors_get_the_latest_cosigned_checkpoint_by_origin_hash() {
    // "A witness SHOULD serve a recent checkpoint for each log it cosigned. GET
    // <monitoring prefix>/<origin hash>/checkpoint ... The origin hash is the SHA-256 hash
    // of the log's origin, hex encoded, in lowercase. The response body MUST be a
    // checkpoint for the log identified by the origin, and it MUST include the
    // cosignature(s) from the witness's key(s) that were returned from add-checkpoint and
    // the cosignature from the log key(s) that the witness verified. If the witness has
    // never cosigned a checkpoint for that log, it MUST respond with a "404 Not Found"
    // HTTP status code instead."
    use sha2::Digest;
    let (w, log, log_key) = setup().await;
    let hash: String = sha2::Sha256::digest(ORIGIN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = format!("/{hash}/checkpoint");
    assert_eq!(raw(&w, "GET", &path, "").await.status, 404);
    let cosigned = raw(&w, "POST", "/add-checkpoint", &log.body(0, 77)).await;
    assert_eq!(cosigned.status, 200);
    let a = raw(&w, "GET", &path, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let note = SignedNote::parse(a.body.as_bytes()).unwrap();
    assert_eq!(Checkpoint::parse(&note.text).unwrap().size, 77);
    assert_eq!(note.verified_by(&[log_key]).len(), 1, "the log's signature");
    assert_eq!(
        note.verified_by(&[w.key()]).len(),
        1,
        "the witness's cosignature"
    );
    assert!(
        a.body.contains(cosigned.body.trim_end()),
        "the one add-checkpoint returned"
    );
    assert_eq!(
        raw(&w, "GET", &format!("/{}/checkpoint", "0".repeat(64)), "")
            .await
            .status,
        404
    );
}

/// The spec's own example request body, byte for byte. Its log key is not ours, so a
/// witness that does not know the origin answers 404, and one configured for that origin
/// with another key answers 403, as the spec's rules say.
#[tokio::test]
async fn the_specs_example_request_gets_the_specs_answers() {
    const EXAMPLE: &str = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
    // "If the checkpoint origin is unknown, the witness MUST respond with a "404 Not
    // Found" HTTP status code."
    let other = NoteSigner::generate("example.org/another-log").unwrap();
    let w = TestWitness::start("witness.example/w1", vec![other.verifier()]).await;
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", EXAMPLE).await.status,
        404
    );
    // "The witness MUST respond with a "403 Forbidden" HTTP status code if ... no
    // signature from a trusted key for the origin is present".
    let (w, _, _) = setup().await;
    assert_eq!(
        raw(&w, "POST", "/add-checkpoint", EXAMPLE).await.status,
        403
    );
}
