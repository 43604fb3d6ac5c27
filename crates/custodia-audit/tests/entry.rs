//! The canonical encoding of audit events: every event round-trips through its record,
//! its entry decodes to the same event with pseudonyms, one event has one encoding, and
//! arbitrary bytes never decode to something else or panic.

use custodia_audit::{
    Actor, AuditEvent, EntryError, EntryView, EventKind, Pseudonym, PseudonymKey, Subject,
};
use custodia_core::{ConversationId, Timestamp, UserId};
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
        let expected: Vec<Pseudonym> = e.subjects.iter().map(|s| match s {
            Subject::User(_) => Pseudonym::User(key.pseudonym(s)),
            Subject::Conversation(_) => Pseudonym::Conversation(key.pseudonym(s)),
            _ => unreachable!("only users and conversations are generated"),
        }).collect();
        prop_assert_eq!(view.subjects, expected);
        prop_assert_eq!((view.kind, view.time, view.actor, view.reason, view.case, view.scope),
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
        (&[0x02][..], "unknown form"),
    ] {
        match AuditEvent::from_record(bytes) {
            Err(EntryError::Malformed(m)) => assert!(m.contains(why), "{m} / {why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}
