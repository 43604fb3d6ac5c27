//! The witness's `add-checkpoint` decisions (c2sp.org/tlog-witness), over real state files:
//! it cosigns a growing log, refuses forks and roll-backs with the protocol's answers, and
//! remembers what it cosigned across a restart.

use std::sync::Arc;

use custodia_core::{ManualClock, Timestamp};
use custodia_tlog::{
    AddCheckpoint, Checkpoint, KeyKind, MemoryTree, NoteSigner, SignedNote, consistency_proof,
    leaf_hash, root_hash,
};
use custodia_witness::{Witness, WitnessError};

const ORIGIN: &str = "example.org/custodia/audit";

/// A log in memory: its leaves and its key.
struct Log {
    key: NoteSigner,
    tree: MemoryTree,
}

impl Log {
    fn new(key: NoteSigner, tag: &str, n: usize) -> Self {
        Self {
            key,
            tree: MemoryTree(
                (0..n)
                    .map(|i| leaf_hash(format!("{tag} {i}").as_bytes()))
                    .collect(),
            ),
        }
    }

    fn checkpoint(&self, size: u64) -> String {
        let text = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: root_hash(&self.tree, size).unwrap(),
            extensions: vec![],
        }
        .to_string();
        SignedNote {
            signatures: vec![self.key.sign(&text).unwrap()],
            text,
        }
        .to_string()
    }

    /// A request to move the witness from `old` to `new`.
    fn request(&self, old: u64, new: u64) -> Vec<u8> {
        AddCheckpoint {
            old,
            proof: consistency_proof(&self.tree, old, new).unwrap().unwrap(),
            checkpoint: self.checkpoint(new),
        }
        .to_bytes()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    witness_key: String,
    log: Log,
}

impl Setup {
    fn new() -> Self {
        let witness =
            NoteSigner::generate_kind("witness.example/w1", KeyKind::CosignatureV1).unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            witness_key: witness.to_text().to_string(),
            log: Log::new(NoteSigner::generate(ORIGIN).unwrap(), "entry", 1000),
        }
    }

    fn open(&self) -> Witness {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
        Witness::open(
            NoteSigner::from_text(&self.witness_key).unwrap(),
            vec![self.log.key.verifier()],
            self.dir.path(),
            clock,
        )
        .unwrap()
    }
}

#[tokio::test]
async fn cosigns_a_growing_log_and_the_cosignature_verifies() {
    let s = Setup::new();
    let w = s.open();
    let mut old = 0;
    for size in [1, 7, 256, 300, 1000] {
        let sig = w.add_checkpoint(&s.log.request(old, size)).await.unwrap();
        assert_eq!(sig.cosigned_at(), Some(1_700_000_000));
        let mut note = SignedNote::parse(s.log.checkpoint(size).as_bytes()).unwrap();
        note.signatures.push(sig);
        let witness = w.verifier();
        assert_eq!(
            note.verified_by(std::slice::from_ref(&witness)).len(),
            1,
            "the cosignature must verify under the witness key"
        );
        // The cosignature covers this checkpoint only.
        let other = SignedNote::parse(s.log.checkpoint(size - 1).as_bytes()).unwrap();
        let moved = SignedNote {
            text: other.text,
            signatures: note.signatures.clone(),
        };
        assert!(moved.verified_by(std::slice::from_ref(&witness)).is_empty());
        old = size;
    }
    // The same checkpoint again is cosigned again.
    w.add_checkpoint(&s.log.request(1000, 1000)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_old_size_gets_a_conflict_with_the_cosigned_size() {
    let s = Setup::new();
    let w = s.open();
    w.add_checkpoint(&s.log.request(0, 10)).await.unwrap();
    for old in [0, 5, 11] {
        match w.add_checkpoint(&s.log.request(old, 20)).await {
            Err(WitnessError::Conflict(10)) => {}
            other => panic!("old {old}: expected a conflict at 10, got {other:?}"),
        }
    }
    // A rolled-back checkpoint (smaller than the cosigned one) is refused.
    assert!(matches!(
        w.add_checkpoint(&s.log.request(0, 5)).await,
        Err(WitnessError::Conflict(10))
    ));
    w.add_checkpoint(&s.log.request(10, 20)).await.unwrap();
}

#[tokio::test]
async fn forks_are_refused() {
    let s = Setup::new();
    let w = s.open();
    w.add_checkpoint(&s.log.request(0, 100)).await.unwrap();
    // Same key, different history.
    let fork = Log::new(
        NoteSigner::from_text(&s.log.key.to_text()).unwrap(),
        "forked",
        1000,
    );
    assert!(
        matches!(
            w.add_checkpoint(&fork.request(100, 100)).await,
            Err(WitnessError::BadProof(_))
        ),
        "a second root at the cosigned size (422, not a 409 a log would loop on)"
    );
    assert!(
        matches!(
            w.add_checkpoint(&fork.request(100, 200)).await,
            Err(WitnessError::BadProof(_))
        ),
        "a larger tree that does not extend the cosigned one"
    );
    // A genuine proof for a tampered checkpoint root.
    let mut req = AddCheckpoint::parse(&s.log.request(100, 200)).unwrap();
    req.proof[0][0] ^= 1;
    assert!(matches!(
        w.add_checkpoint(&req.to_bytes()).await,
        Err(WitnessError::BadProof(_))
    ));
    // The honest log still moves on.
    w.add_checkpoint(&s.log.request(100, 200)).await.unwrap();
}

#[tokio::test]
async fn state_survives_a_restart() {
    let s = Setup::new();
    s.open()
        .add_checkpoint(&s.log.request(0, 300))
        .await
        .unwrap();
    let w = s.open();
    assert!(matches!(
        w.add_checkpoint(&s.log.request(0, 400)).await,
        Err(WitnessError::Conflict(300))
    ));
    w.add_checkpoint(&s.log.request(300, 400)).await.unwrap();
    // A damaged state file stops the witness from starting rather than forgetting.
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("400", "401");
        std::fs::write(&path, text).unwrap();
    }
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let err = Witness::open(
        NoteSigner::from_text(&s.witness_key).unwrap(),
        vec![s.log.key.verifier()],
        s.dir.path(),
        clock,
    )
    .err()
    .expect("a damaged state must not load");
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[tokio::test]
async fn unknown_logs_unsigned_and_malformed_requests_are_refused() {
    let s = Setup::new();
    let w = s.open();
    let mut req = AddCheckpoint::parse(&s.log.request(0, 10)).unwrap();
    req.checkpoint = req.checkpoint.replacen(ORIGIN, "example.org/other", 1);
    assert!(matches!(
        w.add_checkpoint(&req.to_bytes()).await,
        Err(WitnessError::UnknownLog(o)) if o == "example.org/other"
    ));
    let impostor = Log::new(NoteSigner::generate(ORIGIN).unwrap(), "entry", 10);
    assert!(matches!(
        w.add_checkpoint(&impostor.request(0, 10)).await,
        Err(WitnessError::NotSigned)
    ));
    let good = String::from_utf8(s.log.request(0, 10)).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        b"old 0\n".to_vec(),
        b"old 00\n\n".to_vec(),
        good.replacen("old 0", "old x", 1).into_bytes(),
        good.replacen("old 0\n", "old 0\nnot-base64\n", 1)
            .into_bytes(),
        good.replacen("old 0", "old 11", 1).into_bytes(),
        good.replace('\u{2014}', "-").into_bytes(),
        vec![0xff, 0xfe, b'\n'],
    ];
    for body in bad {
        match w.add_checkpoint(&body).await {
            Err(WitnessError::Malformed(why)) => assert!(!why.is_empty()),
            other => panic!(
                "{:?}: expected a malformed-request refusal, got {other:?}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
    // Nothing was cosigned: the first real request still starts from 0.
    w.add_checkpoint(&s.log.request(0, 10)).await.unwrap();
}
