//! The PKCS#11 KEK provider against a real token: SoftHSM2 (Debian's `softhsm2`, which
//! `.ci/run` installs), each test on a token of its own, deleted afterwards.

use custodia_keys::{KekProvider, KeyError, Pkcs11Kek};
use custodia_test::SoftToken as Token;
use zeroize::Zeroizing;

#[test]
fn a_token_seals_opens_and_derives_with_keys_it_made_and_keeps() {
    let token = Token::new("kek-roundtrip");
    let (kek, created) = Pkcs11Kek::open(&token.pkcs11_config()).unwrap();
    assert!(created, "an empty token gets version 1");
    assert_eq!(kek.current(), 1);

    let sealed = kek.seal(1, b"a data key", b"bound to this").unwrap();
    assert_eq!(
        &kek.open(1, &sealed, b"bound to this").unwrap()[..],
        b"a data key"
    );
    assert_ne!(
        kek.seal(1, b"a data key", b"bound to this").unwrap(),
        sealed,
        "a fresh nonce each time"
    );
    assert!(matches!(
        kek.open(1, &sealed, b"bound to that"),
        Err(KeyError::Unreadable)
    ));
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        kek.open(1, &flipped, b"bound to this"),
        Err(KeyError::Unreadable)
    ));
    assert!(matches!(
        kek.open(2, &sealed, b"bound to this"),
        Err(KeyError::UnknownKek(2))
    ));

    let derived = kek.derive(1, b"custodia/franking-tag-key/v1").unwrap();
    assert_eq!(
        *derived,
        *kek.derive(1, b"custodia/franking-tag-key/v1").unwrap()
    );
    assert_ne!(*derived, *kek.derive(1, b"another use").unwrap());
    drop(kek);

    // The keys stay in the token: a new session finds them and opens what was sealed.
    let (again, created) = Pkcs11Kek::open(&token.pkcs11_config()).unwrap();
    assert!(!created);
    assert_eq!(
        &again.open(1, &sealed, b"bound to this").unwrap()[..],
        b"a data key"
    );
    assert_eq!(
        *again.derive(1, b"custodia/franking-tag-key/v1").unwrap(),
        *derived
    );
}

#[test]
fn a_wrong_pin_or_token_is_refused_with_what_to_check() {
    let token = Token::new("kek-refusals");
    let mut wrong = token.pkcs11_config();
    wrong.pin = Zeroizing::new("not the pin".into());
    let Err(KeyError::Token(why)) = Pkcs11Kek::open(&wrong) else {
        panic!("a wrong PIN must be refused")
    };
    assert!(why.contains("check the PIN"), "{why}");
    assert!(
        !why.contains("not the pin"),
        "the PIN is never repeated: {why}"
    );
    let mut missing = token.pkcs11_config();
    missing.token = "no-such-token".into();
    let Err(KeyError::Token(why)) = Pkcs11Kek::open(&missing) else {
        panic!("a missing token must be refused")
    };
    assert!(why.contains("no token labelled"), "{why}");
}

#[test]
fn a_new_version_made_in_the_token_becomes_current_and_a_retired_one_keeps_only_its_tag_key() {
    let token = Token::new("kek-rotate");
    let (kek, _) = Pkcs11Kek::open(&token.pkcs11_config()).unwrap();
    let old = kek.seal(1, b"a data key", b"aad").unwrap();
    let tag_key = kek.derive(1, b"custodia/franking-tag-key/v1").unwrap();

    assert_eq!(kek.add_version().unwrap(), 2);
    assert_eq!(kek.versions(), vec![1, 2]);
    assert_eq!(kek.current(), 2);
    let new = kek.seal(2, b"a data key", b"aad").unwrap();

    assert!(
        matches!(kek.retire(2), Err(KeyError::Token(why)) if why.contains("current")),
        "the current version cannot be retired"
    );
    kek.retire(1).unwrap();
    assert_eq!(kek.versions(), vec![2]);
    assert!(matches!(
        kek.open(1, &old, b"aad"),
        Err(KeyError::UnknownKek(1))
    ));
    assert_eq!(
        *kek.derive(1, b"custodia/franking-tag-key/v1").unwrap(),
        *tag_key,
        "old franking tags still verify"
    );
    drop(kek);

    // Found the same way by a new session.
    let (again, created) = Pkcs11Kek::open(&token.pkcs11_config()).unwrap();
    assert!(!created);
    assert_eq!(again.versions(), vec![2]);
    assert_eq!(again.current(), 2);
    assert_eq!(&again.open(2, &new, b"aad").unwrap()[..], b"a data key");
    assert!(again.open(1, &old, b"aad").is_err());
    assert_eq!(
        *again.derive(1, b"custodia/franking-tag-key/v1").unwrap(),
        *tag_key
    );
}
