//! The canonical encoding of audit events: every event round-trips through its record,
//! its entry decodes to the same event with subjects' tags, one event has one encoding,
//! arbitrary bytes never decode to something else or panic; and the tags: only the
//! subject's own key recognises them, and two entries about one member share nothing.

use custodia_core::{ConversationId, Timestamp, UserId};
use custodia_transparency::{
    Actor, AuditEvent, EntryError, EntryView, EventKind, Pseudonym, PseudonymKey, Subject,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn event() -> impl Strategy<Value = AuditEvent> {
    let subject = prop_oneof![
        any::<u128>().prop_map(|n| Subject::User(UserId::from_uuid(uuid::Uuid::from_u128(n)))),
        any::<u128>().prop_map(|n| Subject::Conversation(ConversationId::from_uuid(
            uuid::Uuid::from_u128(n)
        ))),
        any::<u128>().prop_map(|n| Subject::Withheld(UserId::from_uuid(uuid::Uuid::from_u128(n)))),
    ];
    (
        prop::sample::select(EventKind::ALL.to_vec()),
        any::<i64>(),
        prop::option::of((text(), text())),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::collection::vec(subject, 0..5),
        prop::collection::vec((text(), text()), 0..5),
    )
        .prop_map(
            |(kind, t, actor, reason, case, subjects, scope)| AuditEvent {
                kind,
                time: Timestamp::from_millis(t),
                actor: actor.map(|(staff_id, role)| Actor { staff_id, role }),
                reason,
                case,
                subjects,
                scope,
            },
        )
}

proptest! {
    #[test]
    fn records_round_trip_and_entries_match_them(e in event(), key in any::<[u8; 32]>()) {
        let key = PseudonymKey::from_bytes(key);
        let record = e.record().unwrap();
        prop_assert_eq!(&AuditEvent::from_record(&record).unwrap(), &e);
        let view = EntryView::parse(&e.entry(&key).unwrap()).unwrap();
        let expected: Vec<Pseudonym> = e.subjects.iter().map(|s| {
            let tag = key.subject_key(s).tag(&view.salt);
            match s {
                Subject::Conversation(_) => Pseudonym::Conversation(tag),
                _ => Pseudonym::User(tag),
            }
        }).collect();
        prop_assert_eq!(&view.event.subjects, &expected);
        let v = view.event;
        prop_assert_eq!((v.kind, v.time, v.actor, v.reason, v.case, v.scope),
            (e.kind, e.time, e.actor, e.reason, e.case, e.scope));
        // An entry is not a record and a record is not an entry.
        prop_assert!(EntryView::parse(&record).is_err());
    }

    #[test]
    fn one_event_has_one_encoding(a in event(), b in event()) {
        prop_assert_eq!(a == b, a.record().unwrap() == b.record().unwrap());
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_reencode_identically(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(e) = AuditEvent::from_record(&bytes) {
            prop_assert_eq!(&e.record().unwrap(), &bytes);
        }
        let _ = EntryView::parse(&bytes);
    }
}

#[test]
fn malformed_encodings_say_what_is_wrong() {
    let e = AuditEvent {
        kind: EventKind::Decision,
        time: Timestamp::from_millis(0),
        actor: None,
        reason: None,
        case: None,
        subjects: vec![],
        scope: vec![],
    };
    let good = e.record().unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut unknown_kind = good.clone();
    unknown_kind[3] = b'X';
    for (bytes, why) in [
        (&good[..good.len() - 1], "truncated"),
        (&trailing[..], "trailing bytes"),
        (&unknown_kind[..], "unknown event kind"),
        (&[0x01][..], "unknown form"),
    ] {
        match AuditEvent::from_record(bytes) {
            Err(EntryError::Malformed(m)) => assert!(m.contains(why), "{m} / {why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

fn read_about(members: &[UserId], n: i64) -> AuditEvent {
    let mut subjects = vec![Subject::Conversation(ConversationId::new())];
    subjects.extend(members.iter().map(|m| Subject::User(*m)));
    AuditEvent {
        kind: EventKind::AccessRead,
        time: Timestamp::from_millis(n),
        actor: Some(Actor {
            staff_id: "staff-1".into(),
            role: "moderator".into(),
        }),
        reason: Some("report_review".into()),
        case: Some("case-1".into()),
        subjects,
        scope: vec![("messages".into(), "1 2 3".into())],
    }
}

#[test]
fn two_entries_about_one_member_share_no_bytes_that_link_them() {
    let key = PseudonymKey::from_bytes([9; 32]);
    let (alice, bob, carol) = (UserId::new(), UserId::new(), UserId::new());
    let first = EntryView::parse(&read_about(&[alice, bob], 1).entry(&key).unwrap()).unwrap();
    let second = EntryView::parse(&read_about(&[alice], 2).entry(&key).unwrap()).unwrap();
    // Each entry has its own salt, so Alice's two tags differ, and no subject tag of one
    // entry appears in the other.
    assert_ne!(first.salt, second.salt);
    for a in &first.event.subjects {
        assert!(
            !second.event.subjects.contains(a),
            "a tag repeats across entries"
        );
    }
    // Alice's key finds both; Bob's finds only the one about him; Carol's, neither.
    let (ka, kb, kc) = (
        key.member_key(alice),
        key.member_key(bob),
        key.member_key(carol),
    );
    assert!(ka.recognises_user(&first) && ka.recognises_user(&second));
    assert!(kb.recognises_user(&first) && !kb.recognises_user(&second));
    assert!(!kc.recognises_user(&first) && !kc.recognises_user(&second));
    // Another deployment's key makes other tags for the same member.
    let other = PseudonymKey::from_bytes([8; 32]);
    assert!(!other.member_key(alice).recognises_user(&first));
    // A conversation and a user with the same id have unrelated keys.
    let same = UserId::from_uuid(*ConversationId::new().as_uuid());
    assert_ne!(
        key.member_key(same).as_bytes(),
        key.subject_key(&Subject::Conversation(ConversationId::from_uuid(
            *same.as_uuid()
        )))
        .as_bytes()
    );
}

#[test]
fn a_withheld_member_is_a_user_tag_that_their_own_key_does_not_recognise() {
    let key = PseudonymKey::from_bytes([9; 32]);
    let alice = UserId::new();
    let mut e = read_about(&[], 1);
    e.subjects.push(Subject::Withheld(alice));
    let view = EntryView::parse(&e.entry(&key).unwrap()).unwrap();
    assert!(matches!(view.event.subjects[1], Pseudonym::User(_)));
    assert!(!key.member_key(alice).recognises_user(&view));
    // The record still names her, as withheld.
    assert_eq!(
        AuditEvent::from_record(&e.record().unwrap())
            .unwrap()
            .subjects[1],
        Subject::Withheld(alice)
    );
}
