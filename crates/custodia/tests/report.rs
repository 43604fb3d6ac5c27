//! The transparency report: recomputed by anyone from the public tiles, equal byte for
//! byte to the one the server serves staff for the same checkpoint, and with the counts a
//! known mix of events must give.

use custodia_sdk::Client;
use custodia_sdk::proto::report::TransparencyReport;
use custodia_sdk::proto::staff as wire;
use custodia_server::logcmd::WitnessPolicy;
use custodia_test::TestServer;
use uuid::Uuid;

mod common;

/// A request for content of messages 1-2 under `case`.
fn ask(case: Uuid, reason: &str) -> wire::CreateAccessRequest {
    common::content_request(case, reason, (1, 2))
}

/// Two members in a direct conversation, each having written one message.
async fn pair(server: &TestServer, a: &str, b: &str) -> (Client, Client, Uuid) {
    let (ca, cb) = (server.user(a).await, server.user(b).await);
    let chat = ca.open_direct(b).await.unwrap().id;
    ca.send(chat, "m1", "first").await.unwrap();
    cb.send(chat, "m2", "second").await.unwrap();
    (ca, cb, chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_from_the_tiles_equals_the_servers_and_counts_a_known_mix() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let moderator = server.new_staff(&admin, "mod", "moderator").await;
    let senior = server.new_staff(&admin, "sen", "senior_moderator").await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let (_alice, bob, ab) = pair(&server, "alice", "bob").await;
    let (carol, _dave, cd) = pair(&server, "carol", "dave").await;

    // Two member reports; one review read, one request denied, one grant revoked.
    let harassment = bob
        .report(ab, &[2], "harassment", None)
        .await
        .unwrap()
        .case_id;
    let spam = carol.report(cd, &[2], "spam", None).await.unwrap().case_id;
    let review = moderator
        .request_access(&ask(harassment, "report_review"))
        .await
        .unwrap();
    senior.decide(review.id, true, "credible").await.unwrap();
    moderator.read_grant(review.id).await.unwrap();
    let denied = moderator
        .request_access(&ask(spam, "report_review"))
        .await
        .unwrap();
    senior.decide(denied.id, false, "not needed").await.unwrap();
    let revoked = moderator
        .request_access(&ask(harassment, "report_review"))
        .await
        .unwrap();
    senior.decide(revoked.id, true, "ok").await.unwrap();
    senior.revoke(revoked.id).await.unwrap();

    // Two legal requests: a US search warrant for alice and bob with a non-disclosure
    // order, read under legal process and in an emergency; a German court order for carol
    // and dave, never read.
    let day = |offset: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::days(offset);
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    };
    let legal_request =
        |process: &str, country: &str, targets: [&str; 2], order: bool| wire::NewLegalRequest {
            agency: wire::AgencyInfo {
                name: "Agency never in the public log".into(),
                country: country.into(),
                subdivision: None,
            },
            officer: wire::OfficerInfo {
                name: "O".into(),
                badge: "1".into(),
                email: "o@agency.example".into(),
            },
            process: process.into(),
            court: None,
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            categories: vec!["content".into()],
            from: day(-1),
            to: day(1),
            nondisclosure: order.then(|| wire::NondisclosureInfo {
                authority: "the court".into(),
                until: Some(day(30)),
            }),
            emergency_basis: None,
            documents: Vec::new(),
            follows_up: None,
        };
    let warrant = lo1
        .receive_legal_request(&legal_request(
            "search_warrant",
            "us",
            ["alice", "bob"],
            true,
        ))
        .await
        .unwrap();
    lo1.receive_legal_request(&legal_request(
        "court_order",
        "DE",
        ["carol", "dave"],
        false,
    ))
    .await
    .unwrap();
    lo1.review_legal_request(warrant.id, &common::accept_in_full())
        .await
        .unwrap();
    let legal = lo1.produce(warrant.id).await.unwrap().remove(0);
    assert_eq!((legal.from_seq, legal.to_seq), (1, 2));
    let us = legal.case_id;
    senior.decide(legal.id, true, "valid").await.unwrap();
    lo2.decide(legal.id, true, "checked").await.unwrap();
    lo1.read_grant(legal.id).await.unwrap();
    let emergency = lo1
        .request_access(&ask(us, "emergency_disclosure"))
        .await
        .unwrap();
    senior
        .decide(emergency.id, true, "imminent danger")
        .await
        .unwrap();
    lo1.read_grant(emergency.id).await.unwrap();

    // The server's report, and the one recomputed from the public tiles.
    let (from, to) = (day(-1), day(1));
    let served_json = lo2.transparency_report(&from, &to, false).await.unwrap();
    let served_html = lo2.transparency_report(&from, &to, true).await.unwrap();
    let period = custodia_transparency::Period::parse(&from, &to).unwrap();
    let recomputed = custodia_server::logcmd::report(
        &server.auditor_client(),
        &server.log_key(),
        &WitnessPolicy::default(),
        period,
    )
    .await
    .unwrap();
    assert_eq!(recomputed.to_json(), served_json, "byte for byte");
    assert_eq!(custodia_transparency::report_html(&recomputed), served_html);
    assert!(
        !served_json.contains("never in the public log") && !served_json.contains("LR-"),
        "no agency or reference in public"
    );

    let r: TransparencyReport = serde_json::from_str(&served_json).unwrap();
    let l = &r.legal_requests;
    assert_eq!(
        (
            l.all.requests,
            l.all.accounts_specified,
            l.all.with_disclosure
        ),
        (2, 4, 1)
    );
    assert_eq!(l.all.with_nondisclosure_order, 1);
    assert_eq!((l.disclosure_rate, l.nondisclosure_share), (0.5, 0.5));
    assert_eq!(
        l.by_process.keys().collect::<Vec<_>>(),
        ["court_order", "search_warrant"]
    );
    assert_eq!(l.by_country["US"].with_disclosure, 1);
    assert_eq!(l.by_country["DE"].with_disclosure, 0);
    assert_eq!(
        (
            r.emergency_disclosures.requests,
            r.emergency_disclosures.with_disclosure
        ),
        (1, 1)
    );
    let s = &r.staff_reads;
    assert_eq!(
        (s.reads, s.messages, s.accounts, s.notices_deferred),
        (3, 6, 6, 2)
    );
    assert_eq!(
        s.by_reason
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("emergency_disclosure", 1),
            ("legal_process", 1),
            ("report_review", 1)
        ]
    );
    assert_eq!(r.member_reports.total, 2);
    assert_eq!(r.member_reports.by_category["harassment"], 1);
    assert_eq!(r.member_reports.by_category["spam"], 1);
    assert_eq!(r.access_requests.total, 5);
    assert_eq!(r.access_requests.by_reason["report_review"], 3);
    assert_eq!((r.access_requests.denied, r.grants_revoked), (1, 1));
    assert_eq!((r.hash_list_matches, r.notices_released), (0, 0));
    assert_eq!(
        r.checkpoint_size,
        server.audit().last_checkpoint().await.unwrap().unwrap().0
    );

    // A period before anything happened counts nothing, and a bad period is refused.
    let empty = lo2
        .transparency_report("2020-01-01", "2020-12-31", false)
        .await
        .unwrap();
    let empty: TransparencyReport = serde_json::from_str(&empty).unwrap();
    assert_eq!((empty.entries_in_period, empty.staff_reads.reads), (0, 0));
    let bad = lo2
        .transparency_report("2026-02-30", &to, false)
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(422));
    // Only signed-in staff are served it (anyone else recomputes it from the tiles).
    let anonymous = server
        .staff_client()
        .transparency_report(&from, &to, false)
        .await;
    assert_eq!(anonymous.unwrap_err().status(), Some(401));
}
