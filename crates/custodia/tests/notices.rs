//! Access notices end to end: when staff read messages, every member whose messages they
//! are is told — live on the WebSocket and in their own list — by role, reason, count and
//! time span, with the audit log entry and the receipt that proves it is in the log.

mod common;

use std::collections::HashMap;

use common::{frame, sync};
use custodia_sdk::Method;
use custodia_sdk::proto::ServerFrame;
use custodia_sdk::proto::staff as wire;
use custodia_test::TestServer;
use custodia_tlog::{Checkpoint, SignedNote, verify_inclusion};

/// Reads frames until `Pong`, returning the access notices among them.
async fn notices_until_pong(
    conn: &mut custodia_sdk::Connection,
) -> Vec<custodia_sdk::proto::AccessNotice> {
    conn.ping().await.unwrap();
    let mut out = Vec::new();
    loop {
        match frame(conn).await {
            ServerFrame::Pong => return out,
            ServerFrame::AccessNotice(n) => out.push(n),
            _ => {}
        }
    }
}

/// The next access notice on `conn` (waited for: a ping may be answered before an event
/// already queued is forwarded).
async fn next_notice(conn: &mut custodia_sdk::Connection) -> custodia_sdk::proto::AccessNotice {
    tokio::time::timeout(common::PATIENCE, async {
        loop {
            if let ServerFrame::AccessNotice(n) = frame(conn).await {
                return n;
            }
        }
    })
    .await
    .expect("an access notice, live")
}

/// The time now, in Unix ms (the test server's clock starts there).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
const DAY_MS: i64 = 86_400_000;

/// The end of an order that holds through the day of `ms` (UTC), in ms.
fn order_end(ms: i64) -> i64 {
    custodia_core::Day::of(custodia_core::Timestamp::from_millis(ms))
        .end()
        .as_millis()
}

/// A moderator and a senior moderator; alice, bob and carol, alice and bob in a direct
/// conversation (no messages yet).
struct Review {
    server: TestServer,
    moderator: custodia_sdk::Client,
    senior: custodia_sdk::Client,
    alice: custodia_sdk::Client,
    bob: custodia_sdk::Client,
    carol: custodia_sdk::Client,
    chat: uuid::Uuid,
}

impl Review {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let admin = server.admin().await;
        let moderator = server.new_staff(&admin, "mod", "moderator").await;
        let senior = server.new_staff(&admin, "sen", "senior_moderator").await;
        let alice = server.user("alice").await;
        let bob = server.user("bob").await;
        let carol = server.user("carol").await;
        let chat = alice.open_direct("bob").await.unwrap().id;
        Self {
            server,
            moderator,
            senior,
            alice,
            bob,
            carol,
            chat,
        }
    }
}

/// Two legal officers and a senior moderator, and alice and bob in a direct conversation
/// where alice wrote message 1 and bob message 2.
struct Legal {
    server: TestServer,
    lo1: custodia_sdk::Client,
    lo2: custodia_sdk::Client,
    sen: custodia_sdk::Client,
    alice: custodia_sdk::Client,
    bob: custodia_sdk::Client,
}

impl Legal {
    async fn new() -> Self {
        Self::on(TestServer::start().await).await
    }

    async fn on(server: TestServer) -> Self {
        let admin = server.admin().await;
        let lo1 = server.new_staff(&admin, "lo1", "legal_officer").await;
        let lo2 = server.new_staff(&admin, "lo2", "legal_officer").await;
        let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
        let alice = server.user("alice").await;
        let bob = server.user("bob").await;
        let chat = alice.open_direct("bob").await.unwrap().id;
        alice.send(chat, "a1", "one").await.unwrap();
        bob.send(chat, "b1", "two").await.unwrap();
        Self {
            server,
            lo1,
            lo2,
            sen,
            alice,
            bob,
        }
    }

    /// lo1 enters a search warrant for alice's content (an emergency request when
    /// `reason` is `emergency_disclosure`), with a non-disclosure order through the day of
    /// `order` if given, reviews and produces it (one request over both messages); the
    /// senior moderator approves, and for legal process lo2 too (an emergency has one
    /// approver now). Returns the case and the approved request.
    async fn approved(&self, order: Option<i64>, reason: &str) -> (uuid::Uuid, uuid::Uuid) {
        let day =
            |ms: i64| custodia_core::Day::of(custodia_core::Timestamp::from_millis(ms)).to_string();
        let emergency = reason == "emergency_disclosure";
        let received = self
            .lo1
            .receive_legal_request(&wire::NewLegalRequest {
                agency: wire::AgencyInfo {
                    name: "Bundeskriminalamt".into(),
                    country: "DE".into(),
                    subdivision: None,
                },
                officer: wire::OfficerInfo {
                    name: "K. Weber".into(),
                    badge: "BKA-118".into(),
                    email: "k.weber@bka.example".into(),
                },
                process: if emergency {
                    "emergency_request"
                } else {
                    "search_warrant"
                }
                .into(),
                court: None,
                targets: vec!["alice".into()],
                categories: vec!["content".into()],
                from: day(now_ms() - DAY_MS),
                to: day(now_ms() + DAY_MS),
                nondisclosure: order.map(|o| wire::NondisclosureInfo {
                    authority: "Amtsgericht".into(),
                    until: Some(day(o)),
                }),
                emergency_basis: emergency.then(|| "a threat to a life, tonight".into()),
                documents: Vec::new(),
                follows_up: None,
            })
            .await
            .unwrap();
        self.lo1
            .review_legal_request(received.id, &common::accept_in_full())
            .await
            .unwrap();
        let made = self.lo1.produce(received.id).await.unwrap();
        assert_eq!(made.len(), 1, "alice has one conversation");
        assert_eq!(made[0].reason, reason);
        let request = made[0].id;
        self.sen.decide(request, true, "valid order").await.unwrap();
        if reason == "legal_process" {
            self.lo2
                .decide(request, true, "checked the order")
                .await
                .unwrap();
        }
        (made[0].case_id, request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_read_is_noticed_by_each_member_whose_messages_it_read_and_nobody_else() {
    let Review {
        server,
        moderator,
        senior,
        alice,
        bob,
        carol,
        chat,
    } = Review::new().await;
    // Carol talks with alice elsewhere: not part of the case.
    let other = alice.open_direct("carol").await.unwrap().id;
    carol.send(other, "c1", "unrelated").await.unwrap();

    let mut live = HashMap::new();
    for (name, c) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let mut conn = c.connect().await.unwrap();
        sync(&mut conn, HashMap::new()).await;
        live.insert(name, conn);
    }

    alice.send(chat, "a1", "hello bob").await.unwrap();
    alice.send(chat, "a2", "are you there").await.unwrap();
    bob.send(chat, "b1", "stop writing to me").await.unwrap();
    let case = bob
        .report(chat, &[2], "harassment", None)
        .await
        .unwrap()
        .case_id;
    let request = moderator
        .request_access(&common::content_request(case, "report_review", (1, 2)))
        .await
        .unwrap();
    senior.decide(request.id, true, "credible").await.unwrap();
    let read = moderator.read_grant(request.id).await.unwrap();
    assert_eq!(read.messages.len(), 2);

    // Live: one notice each to alice and bob, none to carol.
    for name in ["alice", "bob"] {
        let conn = live.get_mut(name).unwrap();
        let first = next_notice(conn).await;
        assert_eq!(first.case_id, case);
        let more = notices_until_pong(conn).await;
        assert!(
            more.is_empty(),
            "{name} gets exactly one notice live: {more:?}"
        );
    }
    assert!(
        notices_until_pong(live.get_mut("carol").unwrap())
            .await
            .is_empty()
    );

    // Listed: the same notice, by role and reason, never by name.
    let log_key = server.log_key();
    for (name, member) in [("alice", &alice), ("bob", &bob)] {
        let list = member.access_notices().await.unwrap();
        assert_eq!(list.len(), 1, "{name}");
        let n = &list[0];
        assert_eq!(
            (
                n.role.as_str(),
                n.reason.as_str(),
                n.messages,
                n.case_id,
                n.conversation_id
            ),
            ("moderator", "report_review", 2, case, chat),
            "{name}"
        );
        assert!(n.first_sent_at_ms <= n.last_sent_at_ms);
        let shown = serde_json::to_string(n).unwrap();
        assert!(
            !shown.contains("\"mod\""),
            "never the reader's name: {shown}"
        );
        // The receipt proves the read's entry is in the witnessed log.
        let note = SignedNote::parse(n.checkpoint.as_bytes()).unwrap();
        note.verify(std::slice::from_ref(&log_key)).unwrap();
        let cp = Checkpoint::parse(&note.text).unwrap();
        let entry = server
            .audit()
            .tree()
            .store()
            .log_entries(n.log_index, 1)
            .await
            .unwrap()
            .remove(0);
        let proof: Vec<[u8; 32]> = n
            .proof
            .iter()
            .map(|h| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(h)
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect();
        verify_inclusion(
            n.log_index,
            cp.size,
            &custodia_tlog::leaf_hash(&entry),
            &proof,
            &cp.root,
        )
        .unwrap();
    }
    assert!(carol.access_notices().await.unwrap().is_empty());

    // A member's notices are theirs alone: a staff session is no member's.
    let (status, _, _) = moderator
        .raw(
            Method::GET,
            "/v1/me/access-notices",
            "text/plain",
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(matches!(status, 401 | 404), "staff get {status}");
}

/// A read under a legal request whose non-disclosure order holds through the day 30 days
/// from now: recorded now, shown to nobody on day 29, shown once that day has passed — once, though the server restarts in
/// between and is asked to release again — saying it was deferred and until when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_disclosure_order_defers_the_notice_until_it_ends_exactly_once() {
    let legal = Legal::new().await;
    let until = now_ms() + 30 * DAY_MS;
    let (_, request) = legal.approved(Some(until), "legal_process").await;
    assert_eq!(
        legal.lo1.read_grant(request).await.unwrap().messages.len(),
        2
    );
    let Legal {
        mut server,
        alice,
        bob,
        ..
    } = legal;
    assert!(
        alice.access_notices().await.unwrap().is_empty(),
        "not told yet"
    );
    server.advance_clock(29 * DAY);
    assert_eq!(server.release_notices().await, 0, "day 29: the order holds");
    assert!(bob.access_notices().await.unwrap().is_empty());
    // Nor does bob's own scan of the log find the read: its entry names him under a key
    // nobody holds until the order ends.
    let scan = history(&server, &bob).await;
    assert!(scan.reads.is_empty() && scan.found.is_empty(), "{scan:?}");

    server.restart().await;
    server.advance_clock(2 * DAY);
    assert_eq!(
        server.release_notices().await,
        2,
        "day 31: the order's last day has passed: both members"
    );
    assert_eq!(server.release_notices().await, 0, "released once");
    server.restart().await;
    assert_eq!(
        server.release_notices().await,
        0,
        "and not again after a restart"
    );
    // Sessions survive restarts; members sign in again only for a fresh client here.
    let (alice, bob) = (server.login("alice").await, server.login("bob").await);
    for member in [&alice, &bob] {
        let list = member.access_notices().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, "legal_process");
        assert_eq!(
            list[0].deferred_until_ms,
            Some(order_end(until)),
            "it says it was deferred, and until when"
        );
        // Now the log names the read to them too: a `notice.released` entry with their
        // ordinary tag points at it.
        let scan = history(&server, member).await;
        assert_eq!(
            scan.reads.iter().copied().collect::<Vec<_>>(),
            vec![list[0].log_index],
            "{scan:?}"
        );
        assert!(scan.missing.is_empty() && scan.unconfirmed.is_empty());
        assert!(
            scan.found
                .iter()
                .any(|f| f.kind == custodia_audit::EventKind::NoticeReleased)
        );
    }
}

/// `member`'s scan of the whole public log (what `chat access-history --verify` does).
async fn history(
    server: &TestServer,
    member: &custodia_sdk::Client,
) -> custodia_transparency::HistoryCheck {
    custodia_client::chat::access_history(
        member,
        &server.auditor_client(),
        &custodia_server::logcmd::WitnessPolicy::default(),
    )
    .await
    .unwrap()
    .check
}

/// The member's scan finds every read of their messages among thousands of other entries,
/// and a notice the server drops from their list is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_scan_finds_every_read_of_theirs_among_thousands_and_catches_a_dropped_notice() {
    let Review {
        server,
        moderator,
        senior,
        alice,
        bob,
        carol,
        chat,
    } = Review::new().await;
    alice.send(chat, "a1", "hello bob").await.unwrap();
    bob.send(chat, "b1", "leave me alone").await.unwrap();
    let case = bob
        .report(chat, &[2], "harassment", None)
        .await
        .unwrap()
        .case_id;
    let read = |from: u64, to: u64| {
        let (moderator, senior) = (&moderator, &senior);
        async move {
            let request = moderator
                .request_access(&common::content_request(case, "report_review", (from, to)))
                .await
                .unwrap();
            senior.decide(request.id, true, "credible").await.unwrap();
            moderator
                .read_grant(request.id)
                .await
                .unwrap()
                .receipt
                .index
        }
    };
    let first = read(1, 2).await;
    // Thousands of entries about other people, in concurrent batches (sharing checkpoints).
    let audit = server.audit();
    for batch in 0..30 {
        let appends = (0..100).map(|i| {
            let audit = audit.clone();
            async move {
                audit
                    .append(&custodia_test::audit_event(&format!("noise-{batch}-{i}")))
                    .await
                    .unwrap()
            }
        });
        futures_util::future::join_all(appends).await;
    }
    let second = read(1, 1).await;

    let alice_scan = history(&server, &alice).await;
    assert!(alice_scan.entries > 3000);
    assert_eq!(
        alice_scan.reads.iter().copied().collect::<Vec<_>>(),
        vec![first, second]
    );
    assert!(alice_scan.missing.is_empty() && alice_scan.unconfirmed.is_empty());
    // Bob's messages were in the first read only (he was in the conversation when
    // message 1 was sent, so both reads are of his messages).
    let bob_scan = history(&server, &bob).await;
    assert_eq!(bob_scan.reads.len(), 2, "{bob_scan:?}");
    let carol_scan = history(&server, &carol).await;
    assert!(
        carol_scan.found.is_empty(),
        "carol's key recognises nothing"
    );

    // Someone with the database drops alice's first notice: her scan names the read.
    let db = rusqlite::Connection::open(server.data_dir().join("custodia.db")).unwrap();
    let dropped = db
        .execute(
            "DELETE FROM access_notices WHERE log_index = ?1 AND user_id = \
             (SELECT id FROM users WHERE username = 'alice')",
            [i64::try_from(first).unwrap()],
        )
        .unwrap();
    assert_eq!(dropped, 1);
    let after = history(&server, &alice).await;
    assert_eq!(after.missing, vec![first], "the dropped notice is caught");
    assert_eq!(alice.access_notices().await.unwrap().len(), 1);
}

/// A legal officer records an order's extension (logged, with the new document's hash):
/// the deferred notices wait until the new end; nobody else may extend it, and it only
/// moves later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_order_keeps_the_notice_deferred_until_its_new_end() {
    let legal = Legal::new().await;
    let now_ms = now_ms();
    let (case, request) = legal
        .approved(Some(now_ms + 30 * DAY_MS), "legal_process")
        .await;
    legal.lo1.read_grant(request).await.unwrap();
    let Legal {
        server, lo2, sen, ..
    } = legal;

    let extension = wire::ExtendNondisclosure {
        until_ms: now_ms + 60 * DAY_MS,
        document_sha256: "ab".repeat(32),
    };
    let err = sen
        .extend_nondisclosure(case, &extension)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, custodia_sdk::SdkError::Api(p) if p.status == 403),
        "{err}"
    );
    let shorter = wire::ExtendNondisclosure {
        until_ms: now_ms + 10 * DAY_MS,
        ..extension.clone()
    };
    let err = lo2.extend_nondisclosure(case, &shorter).await.unwrap_err();
    assert!(
        matches!(&err, custodia_sdk::SdkError::Api(p) if p.status == 422),
        "{err}"
    );
    let extended = lo2.extend_nondisclosure(case, &extension).await.unwrap();
    assert_eq!(extended.nondisclosure_until_ms, Some(extension.until_ms));

    // Sessions expire over these months: members sign in again to look.
    server.advance_clock(31 * DAY);
    assert_eq!(
        server.release_notices().await,
        0,
        "day 31: the extended order holds"
    );
    let alice = server.login("alice").await;
    assert!(alice.access_notices().await.unwrap().is_empty());
    server.advance_clock(30 * DAY);
    assert_eq!(server.release_notices().await, 2, "day 61: both members");
    let notices = server.login("alice").await.access_notices().await.unwrap();
    assert_eq!(notices[0].deferred_until_ms, Some(extension.until_ms));
    // The extension is in the log, with the document's hash.
    let log = server.audit();
    let size = log.tree().store().log_size().await.unwrap();
    let mut found = false;
    for i in 0..size {
        let e = log.record(i).await.unwrap().unwrap();
        found |= e.kind == custodia_audit::EventKind::OrderExtended
            && e.scope
                .contains(&("document_sha256".into(), "ab".repeat(32)));
    }
    assert!(found, "the extension is logged");
}

/// An emergency read (one approver now, a second review within a day): its notices are
/// held until the second review is decided, then told, once, saying why they were late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_reads_notice_waits_for_its_second_review() {
    let legal = Legal::new().await;
    let mut live = legal.bob.connect().await.unwrap();
    sync(&mut live, HashMap::new()).await;
    let (_, request) = legal.approved(None, "emergency_disclosure").await;
    let Legal {
        server,
        lo1,
        lo2,
        alice,
        bob,
        ..
    } = legal;
    lo1.read_grant(request).await.unwrap();
    assert!(
        alice.access_notices().await.unwrap().is_empty(),
        "held for the review"
    );
    assert!(notices_until_pong(&mut live).await.is_empty());

    lo2.decide(request, true, "reviewed, justified")
        .await
        .unwrap();
    // Bob is told live once the review is done.
    let told = next_notice(&mut live).await;
    assert!(told.deferred_until_review);
    for member in [&alice, &bob] {
        let list = member.access_notices().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, "emergency_disclosure");
        assert!(list[0].deferred_until_review);
    }
    assert_eq!(server.release_notices().await, 0, "nothing left to release");
}

/// A release the audit log could not take (its witness down) is logged at the next pass,
/// and only then marked logged: the member's scan finds the read either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_the_log_missed_is_logged_at_the_next_pass() {
    let (server, mut witnesses) = TestServer::witnessed(1, 1).await;
    let legal = Legal::on(server).await;
    let (_, request) = legal
        .approved(Some(now_ms() + 30 * DAY_MS), "legal_process")
        .await;
    let read = legal.lo1.read_grant(request).await.unwrap().receipt.index;
    let Legal { server, .. } = legal;
    server.advance_clock(31 * DAY);
    let alice = server.login("alice").await;
    witnesses[0].stop().await;
    assert!(
        server.try_release_notices().await.is_err(),
        "the release is not in the log"
    );
    // Released all the same: the member is told, though the log cannot say so yet.
    assert_eq!(alice.access_notices().await.unwrap().len(), 1);
    witnesses[0].restart().await;
    assert_eq!(server.release_notices().await, 0, "nothing new to release");
    let releases = |scan: &custodia_transparency::HistoryCheck| {
        scan.found
            .iter()
            .filter(|f| f.kind == custodia_audit::EventKind::NoticeReleased)
            .count()
    };
    let scan = history(&server, &alice).await;
    assert_eq!(scan.reads.iter().copied().collect::<Vec<_>>(), vec![read]);
    assert!(scan.unconfirmed.is_empty() && scan.missing.is_empty());
    // The entry of the failed pass (abandoned by the log) and the one of the next pass.
    assert_eq!(releases(&scan), 2, "{scan:?}");
    server.release_notices().await;
    assert_eq!(releases(&history(&server, &alice).await), 2, "logged once");
}
