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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_read_is_noticed_by_each_member_whose_messages_it_read_and_nobody_else() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let moderator = server.new_staff(&admin, "mod", "moderator").await;
    let senior = server.new_staff(&admin, "sen", "senior_moderator").await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let chat = alice.open_direct("bob").await.unwrap().id;
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
        .request_access(&wire::CreateAccessRequest {
            case_id: case,
            reason: "report_review".into(),
            from_seq: 1,
            to_seq: 2,
            tier: "content".into(),
            duration_secs: 3600,
            justification: "reviewing the report".into(),
        })
        .await
        .unwrap();
    senior.decide(request.id, true, "credible").await.unwrap();
    let read = moderator.read_grant(request.id).await.unwrap();
    assert_eq!(read.messages.len(), 2);

    // Live: one notice each to alice and bob, none to carol.
    for name in ["alice", "bob"] {
        let got = notices_until_pong(live.get_mut(name).unwrap()).await;
        assert_eq!(got.len(), 1, "{name} gets exactly one notice live");
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
