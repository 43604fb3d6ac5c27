//! Legal requests end to end: a legal officer enters what an agency served (targets by
//! unique identifier only), reviews it against the tier rules, and every step is in the
//! audit log — with what a report counts in public and nobody's identity.

mod common;

use custodia_audit::{EntryView, EventKind, Subject};
use custodia_sdk::SdkError;
use custodia_sdk::proto::staff as wire;
use custodia_server::RawConfig;
use custodia_test::TestServer;

fn status(e: &SdkError) -> u16 {
    e.status().unwrap_or(0)
}

/// A search warrant from a UK police force for `targets`' content and subscriber data.
fn warrant(targets: &[&str]) -> wire::NewLegalRequest {
    wire::NewLegalRequest {
        agency: wire::AgencyInfo {
            name: "Metropolitan Police Service".into(),
            country: "gb".into(),
            subdivision: Some("London".into()),
        },
        officer: wire::OfficerInfo {
            name: "DC Jane Smith".into(),
            badge: "MPS-4411".into(),
            email: "jane.smith@met.police.example".into(),
        },
        process: "search_warrant".into(),
        court: Some("Westminster Magistrates' Court".into()),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        categories: vec!["content".into(), "subscriber".into()],
        from: "2026-01-01".into(),
        to: "2026-03-31".into(),
        nondisclosure: Some(wire::NondisclosureInfo {
            authority: "Westminster Magistrates' Court".into(),
            until: Some("2099-12-31".into()),
        }),
        emergency_basis: None,
        documents: Vec::new(),
        follows_up: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_request_is_received_by_identifier_reviewed_by_tier_and_logged() {
    let server = TestServer::start_with(RawConfig {
        verified_agency_domains: Some(vec!["police.example".into()]),
        ..RawConfig::default()
    })
    .await;
    let admin = server.admin().await;
    let lo = server.new_staff(&admin, "lo1", "legal_officer").await;
    let moderator = server.new_staff(&admin, "mod", "moderator").await;
    server.user("alice").await;
    let bob_id = server
        .client()
        .register("bob", custodia_test::PASSWORD, custodia_test::ADULT_DOB)
        .await
        .unwrap()
        .user_id;

    // Targets by unique identifier only; what only describes a person is refused.
    for (bad, says) in [
        ("Alice Smith", "display name"),
        ("198.51.100.23", "IP address"),
    ] {
        let e = lo
            .receive_legal_request(&warrant(&[bad]))
            .await
            .unwrap_err();
        assert_eq!(status(&e), 422);
        assert!(e.to_string().contains(says), "{e}");
    }
    let mut emergency = warrant(&["alice"]);
    emergency.process = "emergency_request".into();
    let e = lo.receive_legal_request(&emergency).await.unwrap_err();
    assert!(
        e.to_string().contains("basis"),
        "an emergency states its basis: {e}"
    );
    let mut odd_date = warrant(&["alice"]);
    odd_date.to = "2026-02-30".into();
    assert_eq!(
        status(&lo.receive_legal_request(&odd_date).await.unwrap_err()),
        422
    );
    assert_eq!(
        status(
            &moderator
                .receive_legal_request(&warrant(&["alice"]))
                .await
                .unwrap_err()
        ),
        403,
        "only legal officers"
    );

    let bob_account = format!("account:{bob_id}");
    let received = lo
        .receive_legal_request(&warrant(&["alice", &bob_account, "nobody_here"]))
        .await
        .unwrap();
    let year = time::OffsetDateTime::now_utc().year();
    assert_eq!(received.reference, format!("LR-{year}-000001"));
    assert!(
        received.officer_domain_verified,
        "met.police.example is under police.example"
    );
    assert_eq!(received.agency.country, "GB");
    let accounts: Vec<Option<uuid::Uuid>> = received.targets.iter().map(|t| t.account).collect();
    assert_eq!(accounts[1], Some(bob_id));
    assert!(
        accounts[0].is_some() && accounts[2].is_none(),
        "{accounts:?}"
    );
    assert_eq!(received.categories, ["subscriber", "content"]);
    assert!(received.review.is_none());

    // A subpoena from an unverified address cannot compel content.
    let mut subpoena = warrant(&["alice"]);
    subpoena.process = "subpoena".into();
    subpoena.officer.email = "someone@mail.example".into();
    subpoena.nondisclosure = None;
    let second = lo.receive_legal_request(&subpoena).await.unwrap();
    assert_eq!(second.reference, format!("LR-{year}-000002"));
    assert!(!second.officer_domain_verified);
    let full = common::accept_in_full();
    let e = lo.review_legal_request(second.id, &full).await.unwrap_err();
    assert_eq!(status(&e), 422);
    assert!(e.to_string().contains("cannot compel content"), "{e}");
    let partial = wire::ReviewLegalRequest {
        outcome: "partial".into(),
        reason: None,
        narrowing: Some("subscriber data only: a subpoena cannot compel content".into()),
        accepted: vec!["subscriber".into()],
    };
    let reviewed = lo.review_legal_request(second.id, &partial).await.unwrap();
    let review = reviewed.review.unwrap();
    assert_eq!(
        (review.outcome.as_str(), review.accepted),
        ("partial", vec!["subscriber".to_owned()])
    );
    assert_eq!(
        status(&lo.review_legal_request(second.id, &full).await.unwrap_err()),
        409,
        "a review is final"
    );
    // The warrant is accepted in full; a rejection needs a reason from the closed set.
    let reject = wire::ReviewLegalRequest {
        outcome: "rejected".into(),
        ..full.clone()
    };
    assert_eq!(
        status(
            &lo.review_legal_request(received.id, &reject)
                .await
                .unwrap_err()
        ),
        422
    );
    lo.review_legal_request(received.id, &full).await.unwrap();
    let listed = lo.legal_requests().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.reference.as_str())
            .collect::<Vec<_>>(),
        [second.reference.as_str(), received.reference.as_str()]
    );
    assert_eq!(status(&moderator.legal_requests().await.unwrap_err()), 403);

    // In the log: received and reviewed, the targets withheld; the public entry says what
    // a report counts and names no agency, officer or account.
    let audit = server.audit();
    let mut public = Vec::new();
    custodia_server::logcmd::read_log(
        &server.auditor_client(),
        &server.log_key(),
        &custodia_server::logcmd::WitnessPolicy::default(),
        custodia_server::logcmd::Tiles::OnMismatch,
        |_, e| public.push(e.to_vec()),
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    let mut index = 0;
    while let Some(record) = audit.record(index).await.unwrap() {
        if record.kind == EventKind::LegalReceived
            && record.case.as_deref() == Some(&received.id.to_string())
        {
            assert!(
                record
                    .subjects
                    .contains(&Subject::Withheld(custodia_core::UserId::from_uuid(bob_id)))
            );
            assert!(
                !record
                    .subjects
                    .iter()
                    .any(|s| matches!(s, Subject::User(_)))
            );
            let entry = &public[usize::try_from(index).unwrap()];
            let text = String::from_utf8_lossy(entry);
            for secret in [
                "Metropolitan",
                "jane.smith",
                "MPS-4411",
                "alice",
                "Westminster",
            ] {
                assert!(!text.contains(secret), "{secret} in the public entry");
            }
            let view = EntryView::parse(entry).unwrap();
            let scope = |k: &str| {
                view.event
                    .scope
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(scope("process").as_deref(), Some("search_warrant"));
            assert_eq!(scope("country").as_deref(), Some("GB"));
            assert_eq!(scope("accounts").as_deref(), Some("3"));
            assert_eq!(scope("nondisclosure").as_deref(), Some("yes"));
        }
        kinds.push(record.kind);
        index += 1;
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::LegalReceived)
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::LegalReviewed)
            .count(),
        2
    );

    // The transparency report counts them from the log alone.
    let today = custodia_core::Day::of(custodia_core::Timestamp::from_millis(
        received.received_at_ms,
    ))
    .to_string();
    let report: custodia_sdk::proto::report::TransparencyReport =
        serde_json::from_str(&lo.transparency_report(&today, &today, false).await.unwrap())
            .unwrap();
    let l = &report.legal_requests;
    assert_eq!(
        (
            l.all.requests,
            l.all.accounts_specified,
            l.all.with_nondisclosure_order
        ),
        (2, 4, 1)
    );
    assert_eq!(l.by_country["GB"].requests, 2);
    assert_eq!(
        l.by_process.keys().collect::<Vec<_>>(),
        ["search_warrant", "subpoena"]
    );
}

/// A preservation request for `target`, over the days around now.
fn preservation(target: &str) -> wire::NewLegalRequest {
    let day = |offset: i64| {
        custodia_core::Day::of(custodia_core::Timestamp::from_millis(
            (time::OffsetDateTime::now_utc() + time::Duration::days(offset)).unix_timestamp()
                * 1000,
        ))
        .to_string()
    };
    wire::NewLegalRequest {
        process: "preservation_request".into(),
        categories: vec!["content".into()],
        from: day(-1),
        to: day(1),
        nondisclosure: None,
        ..warrant(&[target])
    }
}

/// Whether message `seq` of `chat` still has its sealed body in the database.
fn body_kept(server: &TestServer, chat: uuid::Uuid, seq: i64) -> bool {
    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    db.query_row(
        "SELECT sealed IS NOT NULL FROM messages WHERE conversation_id = ?1 AND seq = ?2",
        rusqlite::params![chat, seq],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_keeps_deleted_messages_for_90_days_extends_once_and_each_step_is_logged() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo = server.new_staff(&admin, "lo1", "legal_officer").await;
    let moderator = server.new_staff(&admin, "mod", "moderator").await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap().id;
    alice.send(chat, "a1", "first").await.unwrap();
    alice.send(chat, "a2", "second").await.unwrap();

    let request = lo
        .receive_legal_request(&preservation("alice"))
        .await
        .unwrap();
    assert_eq!(
        status(&moderator.place_holds(request.id).await.unwrap_err()),
        403
    );
    let holds = lo.place_holds(request.id).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].conversations, [chat]);
    assert_eq!(status(&lo.place_holds(request.id).await.unwrap_err()), 409);

    // Alice deletes a held message: gone for everyone, told the copy is kept for now.
    let (code, _, body) = alice
        .raw(
            custodia_sdk::Method::DELETE,
            &format!("/v1/conversations/{chat}/messages/1"),
            "application/json",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let told: custodia_sdk::proto::DeletionDeferred = serde_json::from_slice(&body).unwrap();
    assert!(told.deleted_for_everyone && !told.destroyed);
    let seen = bob.full_history(chat).await.unwrap();
    assert!(seen[0].body.is_none(), "bob sees it deleted");
    assert!(body_kept(&server, chat, 1), "the held body stays");

    // 90 days, one extension of 90 more, then it ends and the body is destroyed.
    let hold = holds[0].id;
    let extended = lo.extend_hold(hold).await.unwrap();
    assert_eq!(
        extended.expires_at_ms,
        holds[0].expires_at_ms + 90 * 86_400_000
    );
    assert_eq!(
        status(&lo.extend_hold(hold).await.unwrap_err()),
        422,
        "once only"
    );
    // A rejected request holds nothing; a hold can be released by hand.
    let mut subpoena = warrant(&["alice"]);
    subpoena.process = "subpoena".into();
    let refused = lo.receive_legal_request(&subpoena).await.unwrap();
    lo.review_legal_request(
        refused.id,
        &wire::ReviewLegalRequest {
            outcome: "rejected".into(),
            reason: Some("insufficient_for_tier".into()),
            narrowing: None,
            accepted: Vec::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(status(&lo.place_holds(refused.id).await.unwrap_err()), 422);
    let again = lo
        .receive_legal_request(&preservation("alice"))
        .await
        .unwrap();
    let held = lo.place_holds(again.id).await.unwrap();
    let released = lo.release_hold(held[0].id).await.unwrap();
    assert_eq!(released.ended.as_deref(), Some("released"));
    assert_eq!(status(&lo.release_hold(held[0].id).await.unwrap_err()), 422);

    // Staff sessions are short; the clock moves on without them.
    server.advance_clock(std::time::Duration::from_secs(179 * 86_400));
    assert_eq!(server.expire_holds().await, 0, "day 179: still held");
    assert!(body_kept(&server, chat, 1));
    server.advance_clock(std::time::Duration::from_secs(86_400 + 60));
    assert_eq!(server.expire_holds().await, 1, "day 180: it ends");
    assert_eq!(server.expire_holds().await, 0, "once");
    assert!(
        !body_kept(&server, chat, 1),
        "destroyed once no hold keeps it"
    );
    assert!(
        body_kept(&server, chat, 2),
        "a message nobody deleted stays"
    );

    // Each transition is one log entry.
    let audit = server.audit();
    let mut kinds = Vec::new();
    let mut index = 0;
    while let Some(record) = audit.record(index).await.unwrap() {
        kinds.push(record.kind);
        index += 1;
    }
    let count = |k: EventKind| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(
        (
            count(EventKind::HoldPlaced),
            count(EventKind::HoldExtended),
            count(EventKind::HoldExpired),
            count(EventKind::HoldReleased)
        ),
        (2, 1, 1, 1)
    );
}

/// Production goes through the governed path: an accepted warrant opens a case per
/// conversation of the named account and asks for exactly its messages, which then need
/// their approvals; the read is told to nobody while the order holds, and the report ties
/// the disclosure to the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_is_produced_through_cases_requests_and_approvals() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
    let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server.user("carol").await;
    let dm = alice.open_direct("bob").await.unwrap().id;
    alice.send(dm, "a1", "meet at nine").await.unwrap();
    bob.send(dm, "b1", "ok").await.unwrap();
    let group = alice.create_group("club", &["carol"]).await.unwrap().id;
    alice.send(group, "g1", "hello club").await.unwrap();

    let mut request = preservation("alice");
    request.process = "search_warrant".into();
    request.categories = vec!["content".into()];
    request.nondisclosure = Some(wire::NondisclosureInfo {
        authority: "the court".into(),
        until: None,
    });
    let warrant = lo1.receive_legal_request(&request).await.unwrap();
    assert_eq!(
        status(&lo1.produce(warrant.id).await.unwrap_err()),
        422,
        "reviewed first"
    );
    let full = common::accept_in_full();
    lo1.review_legal_request(warrant.id, &full).await.unwrap();
    let made = lo1.produce(warrant.id).await.unwrap();
    assert_eq!(made.len(), 2, "one per conversation of alice's");
    for r in &made {
        assert_eq!(
            (r.reason.as_str(), r.tier.as_str()),
            ("legal_process", "content")
        );
        assert_eq!(r.status, "pending", "approvals as for any request");
    }
    assert_eq!(status(&lo1.produce(warrant.id).await.unwrap_err()), 409);
    // A production stopped halfway (a case opened, its request not made yet) resumes
    // where it stopped.
    let group_request = made.iter().find(|r| r.conversation_id == group).unwrap();
    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    let deleted = db
        .execute(
            "DELETE FROM access_requests WHERE id = ?1",
            [group_request.id],
        )
        .unwrap();
    assert_eq!(deleted, 1);
    let resumed = lo1.produce(warrant.id).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(
        (resumed[0].conversation_id, resumed[0].case_id),
        (group, group_request.case_id),
        "the same case, its request made now"
    );
    let dm_request = made
        .iter()
        .find(|r| r.conversation_id == dm)
        .expect("the direct conversation's request");
    assert_eq!((dm_request.from_seq, dm_request.to_seq), (1, 2));
    assert!(
        lo1.read_grant(dm_request.id).await.is_err(),
        "not before approval"
    );
    sen.decide(dm_request.id, true, "valid warrant")
        .await
        .unwrap();
    lo2.decide(dm_request.id, true, "checked").await.unwrap();
    let read = lo1.read_grant(dm_request.id).await.unwrap();
    assert_eq!(read.messages.len(), 2);
    assert_eq!(
        read.usernames
            .values()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .len(),
        2,
        "the senders by name"
    );
    assert!(
        read.usernames.values().any(|n| n == "alice")
            && read.usernames.values().any(|n| n == "bob")
    );
    // The order gives no end: nobody is told while it holds.
    assert!(alice.access_notices().await.unwrap().is_empty());
    assert!(bob.access_notices().await.unwrap().is_empty());

    // The order is lifted: they are told now, once.
    let lifted = lo2
        .lift_nondisclosure(
            dm_request.case_id,
            &wire::LiftNondisclosure {
                document_sha256: "ab".repeat(32),
            },
        )
        .await
        .unwrap();
    assert!(lifted.nondisclosure_until_ms.is_some());
    for member in [&alice, &bob] {
        let told = member.access_notices().await.unwrap();
        assert_eq!(told.len(), 1, "told once the order is lifted");
        assert_eq!(told[0].reason, "legal_process");
    }
    assert_eq!(
        status(
            &lo2.lift_nondisclosure(
                dm_request.case_id,
                &wire::LiftNondisclosure {
                    document_sha256: "ab".repeat(32),
                },
            )
            .await
            .unwrap_err()
        ),
        422,
        "nothing left to lift"
    );
    // A subpoena accepted for subscriber data has no messages to produce.
    let mut subpoena = preservation("alice");
    subpoena.process = "subpoena".into();
    subpoena.categories = vec!["subscriber".into()];
    let subpoena = lo1.receive_legal_request(&subpoena).await.unwrap();
    lo1.review_legal_request(subpoena.id, &full).await.unwrap();
    assert_eq!(status(&lo1.produce(subpoena.id).await.unwrap_err()), 422);

    // The report counts two legal requests (not their cases), one with a disclosure.
    let today = custodia_core::Day::of(custodia_core::Timestamp::from_millis(
        warrant.received_at_ms,
    ))
    .to_string();
    let report: custodia_sdk::proto::report::TransparencyReport = serde_json::from_str(
        &lo1.transparency_report(&today, &today, false)
            .await
            .unwrap(),
    )
    .unwrap();
    let l = &report.legal_requests;
    assert_eq!((l.all.requests, l.all.with_disclosure), (2, 1));
    assert_eq!(l.by_process["search_warrant"].with_disclosure, 1);
}

/// How many keys (and messages) conversation `chat` still has in the database.
fn keys_and_messages(server: &TestServer, chat: uuid::Uuid) -> (i64, i64) {
    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    let count = |table: &str| {
        db.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE conversation_id = ?1"),
            [chat],
            |r| r.get(0),
        )
        .unwrap()
    };
    (count("deks"), count("messages"))
}

/// Retention: past `retention_days`, an epoch's key is destroyed and its messages
/// deleted; a held conversation's epoch survives until the hold ends, then goes; each run
/// is one log entry with counts and epochs only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_shreds_old_epochs_and_a_hold_defers_it_until_it_ends() {
    let server = TestServer::start_with(RawConfig {
        retention_days: Some(30),
        ..RawConfig::default()
    })
    .await;
    let admin = server.admin().await;
    let lo = server.new_staff(&admin, "lo1", "legal_officer").await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    server.user("carol").await;
    let ab = alice.open_direct("bob").await.unwrap().id;
    let ac = alice.open_direct("carol").await.unwrap().id;
    for chat in [ab, ac] {
        alice.send(chat, "m1", "an old message").await.unwrap();
        alice.send(chat, "m2", "another").await.unwrap();
    }
    // Carol's conversations are preserved.
    let request = lo
        .receive_legal_request(&preservation("carol"))
        .await
        .unwrap();
    assert_eq!(lo.place_holds(request.id).await.unwrap().len(), 1);
    assert_eq!(
        server.apply_retention().await.unwrap().epochs,
        0,
        "nothing is old yet"
    );

    server.advance_clock(std::time::Duration::from_secs(70 * 86_400));
    let run = server.apply_retention().await.unwrap();
    assert_eq!(
        (run.epochs, run.messages),
        (1, 2),
        "alice and bob's month only"
    );
    assert_eq!(
        keys_and_messages(&server, ab),
        (0, 0),
        "key destroyed, messages gone"
    );
    assert_eq!(keys_and_messages(&server, ac), (1, 2), "held");
    let alice = server.login("alice").await;
    assert!(
        alice
            .history(ab, None, None, 10)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(
        alice
            .history(ac, None, None, 10)
            .await
            .unwrap()
            .messages
            .len(),
        2
    );

    // The hold expires at 90 days; the next run destroys what it kept.
    server.advance_clock(std::time::Duration::from_secs(21 * 86_400));
    assert_eq!(server.expire_holds().await, 1);
    let run = server.apply_retention().await.unwrap();
    assert_eq!((run.epochs, run.messages), (1, 2));
    assert_eq!(keys_and_messages(&server, ac), (0, 0));

    // One entry per run (the server's own daily run at start among them): counts and
    // epoch labels, no conversation.
    let audit = server.audit();
    let size = audit.tree().store().log_size().await.unwrap();
    let mut runs = Vec::new();
    for i in 0..size {
        let e = audit.record(i).await.unwrap().unwrap();
        if e.kind == EventKind::RetentionApplied {
            assert!(e.subjects.is_empty());
            runs.push(
                e.scope
                    .iter()
                    .find(|(k, _)| k == "epochs")
                    .unwrap()
                    .1
                    .clone(),
            );
        }
    }
    assert!(runs.len() >= 3, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| *r == "1").count(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r == "0" || r == "1"), "{runs:?}");
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

/// The sealed body of message `seq` of `chat`, as stored.
fn sealed_body(server: &TestServer, chat: uuid::Uuid, seq: i64) -> Vec<u8> {
    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    db.query_row(
        "SELECT sealed FROM messages WHERE conversation_id = ?1 AND seq = ?2",
        rusqlite::params![chat, seq],
        |r| r.get(0),
    )
    .unwrap()
}

/// Erasure: with their password a member closes their account. Their messages show as
/// deleted to the others at once (live too), their sessions end, their name stays taken
/// for the grace period; what they sent is found nowhere in the data directory (its
/// sealed bytes neither, in the database, its write-ahead log or anywhere else) — except a
/// message a hold covers, which survives until the hold ends, as the member is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_closes_their_account_and_what_they_sent_is_destroyed_unless_held() {
    use custodia_sdk::proto::ServerFrame;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lo = server.new_staff(&admin, "lo1", "legal_officer").await;
    let mut alice = server.user("alice").await;
    let other_device = server.login("alice").await;
    let bob = server.user("bob").await;
    server.user("carol").await;
    let ab = alice.open_direct("bob").await.unwrap().id;
    let ac = alice.open_direct("carol").await.unwrap().id;
    let canary = "CANARY-7f3a9c1e-only-alice-wrote-this";
    alice.send(ab, "a1", canary).await.unwrap();
    bob.send(ab, "b1", "bob's own words").await.unwrap();
    alice.send(ac, "a2", "words a hold keeps").await.unwrap();
    // Carol's conversations are preserved.
    let request = lo
        .receive_legal_request(&preservation("carol"))
        .await
        .unwrap();
    let holds = lo.place_holds(request.id).await.unwrap();
    let mut bob_live = bob.connect().await.unwrap();
    common::sync(&mut bob_live, Default::default()).await;

    // What to look for: the canary's sealed bytes are in the data directory now.
    let sealed = sealed_body(&server, ab, 1);
    let needle = &sealed[sealed.len() - 32..];
    assert!(
        !files_holding(server.data_dir(), needle).is_empty(),
        "the search finds a stored body"
    );

    // The wrong password changes nothing.
    let (code, kind, body) = alice
        .raw(
            custodia_sdk::Method::DELETE,
            "/v1/me",
            "application/json",
            br#"{"password":"not alice's password at all"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(kind, "application/problem+json");
    alice.send(ab, "a3", "still here").await.unwrap();

    let closed = alice.close_account(custodia_test::PASSWORD).await.unwrap();
    assert_eq!(
        (closed.messages_deleted, closed.messages_kept_under_hold),
        (3, 1)
    );
    assert!(
        closed.detail.contains("1 of them are kept"),
        "told honestly: {}",
        closed.detail
    );

    // Bob sees them deleted, live and in the history; his own message stays.
    let mut seen_deleted = Vec::new();
    while seen_deleted.len() < 2 {
        match common::frame(&mut bob_live).await {
            ServerFrame::Deleted {
                conversation_id,
                seq,
            } if conversation_id == ab => seen_deleted.push(seq),
            _ => {}
        }
    }
    seen_deleted.sort();
    assert!(
        seen_deleted == [1, 3] || seen_deleted == [1, 2],
        "{seen_deleted:?}"
    );
    let history = bob.full_history(ab).await.unwrap();
    let bodies: Vec<Option<&str>> = history.iter().map(|m| m.body.as_deref()).collect();
    assert_eq!(bodies, [None, Some("bob's own words"), None]);

    // Signed out everywhere; cannot sign in; the name is taken for now.
    assert_eq!(
        status(&other_device.conversations().await.unwrap_err()),
        401
    );
    let mut again = server.client();
    assert_eq!(
        status(
            &again
                .login("alice", custodia_test::PASSWORD, "d")
                .await
                .unwrap_err()
        ),
        401
    );
    assert_eq!(
        status(
            &again
                .register("alice", custodia_test::PASSWORD, custodia_test::ADULT_DOB)
                .await
                .unwrap_err()
        ),
        409
    );

    // Nowhere in the data directory: not the sealed bytes, not the text.
    assert_eq!(
        files_holding(server.data_dir(), needle),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(files_holding(server.data_dir(), canary.as_bytes()).is_empty());
    assert!(
        body_kept(&server, ac, 1),
        "the held message survives for now"
    );

    // The hold ends; the kept copy goes.
    lo.release_hold(holds[0].id).await.unwrap();
    assert!(!body_kept(&server, ac, 1));

    // After the grace period the name is free for someone new.
    server.advance_clock(std::time::Duration::from_secs(31 * 86_400));
    server.release_closed_names().await;
    again
        .register("alice", custodia_test::PASSWORD, custodia_test::ADULT_DOB)
        .await
        .unwrap();

    // One entry, counts only.
    let audit = server.audit();
    let size = audit.tree().store().log_size().await.unwrap();
    let mut closures = Vec::new();
    for i in 0..size {
        let e = audit.record(i).await.unwrap().unwrap();
        if e.kind == EventKind::AccountClosed {
            assert!(e.subjects.is_empty());
            closures.push(e.scope);
        }
    }
    assert_eq!(closures.len(), 1);
    assert!(closures[0].contains(&("kept_under_hold".into(), "1".into())));
}
