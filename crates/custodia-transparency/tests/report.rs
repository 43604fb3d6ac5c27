//! The report's arithmetic and the scan's rules, on entries made here (no server): which
//! days a period holds, what a known mix counts, that log text is escaped in the page,
//! and that a member's scan ties releases only to earlier reads.

use custodia_core::{ConversationId, Timestamp, UserId};
use custodia_transparency::{
    Actor, AuditEvent, EventKind, HistoryScan, Period, PeriodError, PseudonymKey, ReportBuilder,
    Subject, report_html,
};

/// 2026-03-01T00:00:00Z in Unix ms.
const MARCH_1: i64 = 1_772_323_200_000;
const DAY: i64 = 86_400_000;

fn event(kind: EventKind, at: i64, reason: Option<&str>, scope: &[(&str, &str)]) -> AuditEvent {
    AuditEvent {
        kind,
        time: Timestamp::from_millis(at),
        actor: Some(Actor {
            staff_id: "s1".into(),
            role: "moderator".into(),
        }),
        reason: reason.map(Into::into),
        case: Some("case-1".into()),
        subjects: vec![Subject::Conversation(ConversationId::new())],
        scope: scope
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn entry(e: &AuditEvent) -> Vec<u8> {
    e.entry(&PseudonymKey::from_bytes([5; 32])).unwrap()
}

#[test]
fn a_period_holds_its_days_whole_in_utc_and_refuses_bad_dates() {
    let march = Period::parse("2026-03-01", "2026-03-31").unwrap();
    let mut report = ReportBuilder::new(march);
    for at in [
        MARCH_1 - 1,            // Feb 28, 23:59:59.999: out
        MARCH_1,                // in
        MARCH_1 + 31 * DAY - 1, // Mar 31, 23:59:59.999: in
        MARCH_1 + 31 * DAY,     // Apr 1: out
    ] {
        report.visit(&entry(&event(
            EventKind::GrantRevoked,
            at,
            None,
            &[("status", "revoked")],
        )));
    }
    let r = report.finish("example/log", 4, &[0; 32]);
    assert_eq!((r.entries_in_period, r.grants_revoked), (2, 2));
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        ("2026-03-01", "2026-03-31")
    );

    assert!(matches!(
        Period::parse("2026-02-30", "2026-03-01"),
        Err(PeriodError::BadDate(_))
    ));
    assert!(matches!(
        Period::parse("2026-03-02", "2026-03-01"),
        Err(PeriodError::Backwards { .. })
    ));
    assert!(Period::parse("1 March", "2026-03-01").is_err());
}

#[test]
fn a_known_mix_gives_its_counts_and_the_page_escapes_log_text() {
    let mut report = ReportBuilder::new(Period::parse("2026-03-01", "2026-03-01").unwrap());
    let legal = |case: &str, process: &str, country: &str, nd: &str| {
        let mut e = event(
            EventKind::CaseOpened,
            MARCH_1,
            None,
            &[
                ("kind", "legal"),
                ("process", process),
                ("country", country),
                ("accounts", "3"),
                ("nondisclosure", nd),
            ],
        );
        e.case = Some(case.into());
        entry(&e)
    };
    let entries = vec![
        legal("L1", "search_warrant", "FR", "yes"),
        legal("L2", "search_warrant", "FR", "no"),
        legal("L3", "subpoena", "US", "no"),
        // A read under L1 (a day later: still a disclosure of a request in the period).
        {
            let mut e = event(
                EventKind::AccessRead,
                MARCH_1 + DAY,
                Some("legal_process"),
                &[
                    ("messages", "1 2 3"),
                    ("accounts", "2"),
                    ("notice", "deferred"),
                ],
            );
            e.case = Some("L1".into());
            entry(&e)
        },
        entry(&event(
            EventKind::AccessRead,
            MARCH_1,
            Some("<script>alert(1)</script>\u{202e}"),
            &[("messages", "7"), ("accounts", "1"), ("notice", "now")],
        )),
        // An auditor reading a record: no reason, no messages, not a staff read of content.
        entry(&event(
            EventKind::AccessRead,
            MARCH_1,
            None,
            &[("entry", "3")],
        )),
        entry(&event(
            EventKind::Decision,
            MARCH_1,
            Some("report_review"),
            &[("request", "r1"), ("decision", "deny")],
        )),
        entry(&event(
            EventKind::Decision,
            MARCH_1,
            Some("report_review"),
            &[("request", "r1"), ("decision", "deny")],
        )),
        entry(&event(
            EventKind::CaseOpened,
            MARCH_1,
            None,
            &[("kind", "hash_match")],
        )),
    ];
    for e in &entries {
        report.visit(e);
    }
    report.visit(b"not an entry");
    let r = report.finish("example/log", 10, &[0xab; 32]);
    let l = &r.legal_requests;
    assert_eq!((l.all.requests, l.all.accounts_specified), (3, 9));
    assert_eq!(
        (l.all.with_disclosure, l.all.with_nondisclosure_order),
        (1, 1)
    );
    assert_eq!((l.disclosure_rate, l.nondisclosure_share), (0.3333, 0.3333));
    assert_eq!(l.by_country["FR"].requests, 2);
    assert_eq!(l.by_process["subpoena"].with_disclosure, 0);
    // The read of March 2 is outside the one-day period; the disclosure it makes counts.
    assert_eq!(r.staff_reads.reads, 1);
    assert_eq!((r.staff_reads.messages, r.staff_reads.accounts), (1, 1));
    assert_eq!(r.access_requests.denied, 1, "one request, denied once");
    assert_eq!(r.hash_list_matches, 1);
    assert_eq!(r.checkpoint_root, "ab".repeat(32));

    let json = r.to_json();
    assert!(
        json.is_ascii() && json.contains("</script>\\u202e"),
        "{json}"
    );
    let page = report_html(&r);
    assert!(!page.contains("<script"), "log text is escaped");
    assert!(page.contains("&lt;script&gt;") && page.contains("&#x202e;"));
    assert!(page.is_ascii());
    assert!(
        page.contains(&"ab".repeat(32)),
        "the page names its checkpoint"
    );
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "nothing is fetched"
    );
}

#[test]
fn a_scan_ties_a_release_only_to_an_earlier_read_of_the_member() {
    let key = PseudonymKey::from_bytes([5; 32]);
    let alice = UserId::new();
    let mut read = event(EventKind::AccessRead, MARCH_1, Some("legal_process"), &[]);
    read.subjects.push(Subject::Withheld(alice));
    let release = |entry: &str| AuditEvent {
        kind: EventKind::NoticeReleased,
        time: Timestamp::from_millis(MARCH_1 + DAY),
        actor: None,
        reason: None,
        case: Some("case-1".into()),
        subjects: vec![Subject::User(alice)],
        scope: vec![("entry".into(), entry.into())],
    };
    let log = [
        read.entry(&key).unwrap(),
        release("0").entry(&key).unwrap(),
        // A release naming a later entry proves nothing about it.
        release("3").entry(&key).unwrap(),
        read.entry(&key).unwrap(),
    ];
    let mut scan = HistoryScan::new(key.member_key(alice));
    for (i, e) in log.iter().enumerate() {
        scan.visit(i as u64, e);
    }
    let check = scan.check([0, 7]);
    assert_eq!(check.reads.into_iter().collect::<Vec<_>>(), vec![0]);
    assert!(check.missing.is_empty());
    assert_eq!(check.unconfirmed, vec![7]);
    assert_eq!(
        check.found.len(),
        2,
        "the two releases name her; the reads do not"
    );
}
