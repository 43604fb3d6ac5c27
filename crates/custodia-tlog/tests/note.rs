//! Signed notes and checkpoints: the Go `note` package's published vector, and the
//! C2SP rules for malformed notes and unknown or bad signatures.

use custodia_tlog::{Checkpoint, KeyKind, NoteError, NoteSigner, NoteVerifier, SignedNote};

// golang.org/x/mod/sumdb/note: the package documentation's example.
const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn the_published_note_is_reproduced_and_verifies() {
    let signer = NoteSigner::from_text(SKEY).unwrap();
    assert_eq!(signer.verifier().to_string(), VKEY);
    assert_eq!(&*signer.to_text(), SKEY);
    let note = SignedNote {
        text: TEXT.into(),
        signatures: vec![signer.sign(TEXT).unwrap()],
    };
    assert_eq!(
        note.to_string(),
        NOTE,
        "Ed25519 is deterministic: byte-for-byte the Go output"
    );

    let parsed = SignedNote::parse(NOTE.as_bytes()).unwrap();
    assert_eq!(parsed, note);
    let known = [NoteVerifier::parse(VKEY).unwrap()];
    assert_eq!(parsed.verify(&known).unwrap()[0].name(), "PeterNeumann");

    let altered = NOTE.replace("cryptography", "cryptographY");
    let err = SignedNote::parse(altered.as_bytes())
        .unwrap()
        .verify(&known)
        .unwrap_err();
    assert_eq!(err, NoteError::BadSignature("PeterNeumann".into()));
}

#[test]
fn unknown_signatures_are_ignored_but_one_known_is_required() {
    let log = NoteSigner::generate("example.org/log").unwrap();
    let stranger = NoteSigner::generate("example.org/log").unwrap(); // same name, other key
    let text = "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let known = [log.verifier()];

    let by_stranger = SignedNote {
        text: text.into(),
        signatures: vec![stranger.sign(text).unwrap()],
    };
    assert_eq!(
        by_stranger.verify(&known).unwrap_err(),
        NoteError::NoKnownSignature
    );
    let both = SignedNote {
        text: text.into(),
        signatures: vec![stranger.sign(text).unwrap(), log.sign(text).unwrap()],
    };
    assert_eq!(both.verify(&known).unwrap().len(), 1);

    // A known key's signature over other text rejects the whole note.
    let mut forged = both.clone();
    forged.signatures[1] = log
        .sign("example.org/log\n4\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
        .unwrap();
    assert!(matches!(
        forged.verify(&known),
        Err(NoteError::BadSignature(_))
    ));
}

#[test]
fn malformed_notes_and_keys_are_refused_with_a_reason() {
    let sig = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    let owned = |s: String| s.into_bytes();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"no signatures at all\n".to_vec(), "no blank line"),
        (b"text\n\n".to_vec(), "signature lines must end"),
        (
            owned(format!("text\n\n{}", sig.trim_end())),
            "signature lines must end",
        ),
        (owned("text\n\n- PeterNeumann abc=\n".into()), "em dash"),
        (
            owned("text\n\n\u{2014} PeterNeumann !!!\n".into()),
            "not base64",
        ),
        (
            owned("text\n\n\u{2014} PeterNeumann AAAA\n".into()),
            "too short",
        ),
        (owned(format!("te\rxt\n\n{sig}")), "control characters"),
        (b"\xff\xfe\n\n".to_vec(), "not UTF-8"),
        (
            owned(format!("text\n\n\u{2014} Peter+Neumann {}", &sig[17..])),
            "key name",
        ),
    ];
    for (bytes, why) in cases {
        let err = SignedNote::parse(&bytes).unwrap_err().to_string();
        assert!(
            err.contains(why),
            "{:?}: {err}",
            String::from_utf8_lossy(&bytes)
        );
    }
    for bad in [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ApQ=",
        "Peter Neumann+c74f20a3+ARpc",
    ] {
        assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
    }
    assert!(NoteSigner::generate("has space").is_err());
    assert!(NoteSigner::from_text(VKEY).is_err());
}

#[test]
fn checkpoints_round_trip_and_follow_the_format() {
    let cp = Checkpoint {
        origin: "example.org/custodia/audit".into(),
        size: 20852163,
        root: [7; 32],
        extensions: vec![],
    };
    let text = cp.to_string();
    assert_eq!(
        text,
        "example.org/custodia/audit\n20852163\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
    );
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    let with_ext = "o\n0\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\nextra line\n";
    assert_eq!(
        Checkpoint::parse(with_ext).unwrap().extensions,
        ["extra line"]
    );

    // The spec's own example parses.
    let spec =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    assert_eq!(Checkpoint::parse(spec).unwrap().size, 20852163);

    for bad in [
        "o\n007\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "o\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "o\n1\nBwcH\n",
        "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n",
        "o\n99999999999999999999999\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "o\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn cosignatures_are_timestamped_bound_to_the_text_and_typed() {
    let w = NoteSigner::generate_kind("witness.example/w1", KeyKind::CosignatureV1).unwrap();
    let text = "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    // The key texts carry type 0x04, and the key id is computed with it.
    let vkey = w.verifier().to_string();
    let parsed = NoteVerifier::parse(&vkey).unwrap();
    assert_eq!(parsed.kind(), KeyKind::CosignatureV1);
    assert_eq!(
        NoteSigner::from_text(&w.to_text()).unwrap().verifier(),
        parsed
    );
    let material = vkey.splitn(3, '+').nth(2).unwrap(); // base64 may itself hold '+'
    use base64::Engine;
    let material = base64::engine::general_purpose::STANDARD
        .decode(material)
        .unwrap();
    assert_eq!(material[0], 0x04, "the cosigner type byte: {vkey}");

    let sig = w.cosign(text, 1_679_315_147).unwrap();
    assert_eq!(sig.cosigned_at(), Some(1_679_315_147));
    assert_eq!(sig.signature.len(), 8 + 64);
    let note = SignedNote {
        text: text.into(),
        signatures: vec![sig.clone()],
    };
    let round = SignedNote::parse(note.to_string().as_bytes()).unwrap();
    assert_eq!(round.verified_by(std::slice::from_ref(&parsed)).len(), 1);

    // Another timestamp, another text, or the same key read as a plain signer: refused.
    let mut moved = sig.clone();
    moved.signature[7] ^= 1;
    for (t, s) in [(text, moved), (&text.replace('3', "4")[..], sig.clone())] {
        let n = SignedNote {
            text: t.into(),
            signatures: vec![s],
        };
        assert!(n.verified_by(std::slice::from_ref(&parsed)).is_empty());
    }
    assert!(
        w.sign(text).is_err(),
        "a cosigner key makes no plain signatures"
    );
    let log = NoteSigner::generate("example.org/log").unwrap();
    assert!(
        log.cosign(text, 1).is_err(),
        "a log key makes no cosignatures"
    );
    assert!(
        w.cosign(text, u64::MAX).is_err(),
        "timestamps stay below 2^63"
    );
}
