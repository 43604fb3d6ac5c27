//! End-to-end messaging through a real server on 127.0.0.1:0 over TLS.

mod common;

use std::collections::{HashMap, HashSet};

use common::{ack, drain_until_pong, frame, messages, status, sync};
use custodia_sdk::proto::{MessageState, ServerFrame};
use custodia_test::TestServer;
use uuid::Uuid;

#[tokio::test]
async fn two_users_exchange_direct_messages_in_real_time() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    assert_eq!(
        bob.open_direct("alice").await.unwrap().id,
        chat.id,
        "one direct conversation per pair"
    );

    let mut a = alice.connect().await.unwrap();
    let mut b = bob.connect().await.unwrap();
    assert!(sync(&mut a, HashMap::new()).await.is_empty());
    assert!(sync(&mut b, HashMap::new()).await.is_empty());

    a.send(chat.id, "a-1", "hello Bob").await.unwrap();
    let got = messages(&mut b, 1).await;
    assert_eq!((got[0].seq, got[0].body.as_deref()), (1, Some("hello Bob")));
    assert_eq!(ack(&mut a, "a-1").await.seq, 1);

    b.send(chat.id, "b-1", "hi Alice").await.unwrap();
    // Alice's session also sees her own #1 (so all of a user's devices stay in step).
    let got = messages(&mut a, 2).await;
    assert_eq!(
        got.iter()
            .map(|m| (m.seq, m.body.as_deref()))
            .collect::<Vec<_>>(),
        [(1, Some("hello Bob")), (2, Some("hi Alice"))]
    );

    // Sending moves the sender's read position; unread counts the rest.
    assert_eq!(alice.conversations().await.unwrap()[0].unread, 1);
    let bob_view = &bob.conversations().await.unwrap()[0];
    assert_eq!(bob_view.unread, 0);
    assert_eq!(
        bob_view
            .last_message
            .as_ref()
            .and_then(|m| m.body.as_deref()),
        Some("hi Alice")
    );
    // A read receipt reaches the other side and clears the unread count.
    assert_eq!(
        alice.mark_read(chat.id, 99).await.unwrap().read_seq,
        2,
        "clamped to the newest message"
    );
    let alice_id = chat
        .members
        .iter()
        .find(|m| m.username == "alice")
        .unwrap()
        .user_id;
    loop {
        if let ServerFrame::Read { seq, user_id, .. } = frame(&mut b).await {
            assert_eq!((seq, user_id), (2, alice_id));
            break;
        }
    }
    assert_eq!(alice.conversations().await.unwrap()[0].unread, 0);
}

#[tokio::test]
async fn a_group_of_five_gets_every_message_once_in_order_on_every_device() {
    let server = TestServer::start().await;
    let names = ["ann", "ben", "cat", "dan", "eve"];
    let mut users = Vec::new();
    for n in names {
        users.push(server.user(n).await);
    }
    let group = users[0].create_group("five", &names[1..]).await.unwrap();
    assert_eq!(group.member_count, 5);

    // Two devices per member, each its own session.
    let mut conns = Vec::new();
    for n in names {
        for _ in 0..2 {
            let mut c = server
                .login(n)
                .await
                .connect()
                .await
                .unwrap()
                .without_dedupe();
            assert!(sync(&mut c, HashMap::new()).await.is_empty());
            conns.push(c);
        }
    }

    // Every member sends 10 messages at once over HTTPS.
    let mut sends = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let u = u.clone();
        sends.push(tokio::spawn(async move {
            for k in 0..10 {
                u.send(
                    group.id,
                    &format!("{i}-{k}"),
                    &format!("from {i} number {k}"),
                )
                .await
                .unwrap();
            }
        }));
    }
    for s in sends {
        s.await.unwrap();
    }

    let expected: HashSet<String> = (0..5)
        .flat_map(|i| (0..10).map(move |k| format!("from {i} number {k}")))
        .collect();
    for c in &mut conns {
        let got = messages(c, 50).await;
        let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=50).collect::<Vec<_>>(),
            "in order, no gaps, no duplicates"
        );
        let bodies: HashSet<String> = got.iter().filter_map(|m| m.body.clone()).collect();
        assert_eq!(bodies, expected);
        assert!(
            drain_until_pong(c).await.is_empty(),
            "a message arrived twice"
        );
    }
}

#[tokio::test]
async fn history_survives_a_restart() {
    let mut server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    for i in 1..=3 {
        alice
            .send(chat.id, &format!("m{i}"), &format!("message {i}"))
            .await
            .unwrap();
    }
    server.restart().await;
    let bob = server.login("bob").await;
    let history = bob.full_history(chat.id).await.unwrap();
    let bodies: Vec<_> = history.iter().map(|m| m.body.clone().unwrap()).collect();
    assert_eq!(bodies, ["message 1", "message 2", "message 3"]);
    // Old sessions survive the restart too.
    assert_eq!(
        alice
            .history(chat.id, None, None, 10)
            .await
            .unwrap()
            .messages
            .len(),
        3
    );
}

#[tokio::test]
async fn the_same_client_id_three_times_across_a_reconnect_is_one_message() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();

    let mut first = alice.connect().await.unwrap();
    sync(&mut first, HashMap::new()).await;
    first.send(chat.id, "retry-me", "only once").await.unwrap();
    let original = ack(&mut first, "retry-me").await;
    assert!(!original.duplicate);
    drop(first);

    let mut second = alice.connect().await.unwrap();
    sync(&mut second, HashMap::from([(chat.id, original.seq)])).await;
    second.send(chat.id, "retry-me", "only once").await.unwrap();
    let again = ack(&mut second, "retry-me").await;
    let over_https = alice.send(chat.id, "retry-me", "only once").await.unwrap();
    for dup in [&again, &over_https] {
        assert!(dup.duplicate);
        assert_eq!((dup.seq, dup.id), (original.seq, original.id));
    }
    let history = alice.full_history(chat.id).await.unwrap();
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn a_non_member_cannot_read_send_or_learn_that_a_conversation_exists() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let mallory = server.user("mallory").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "s1", "private").await.unwrap();
    let group = alice.create_group("secret club", &["bob"]).await.unwrap();

    for id in [chat.id, group.id] {
        let ghost = Uuid::new_v4();
        for target in [id, ghost] {
            let history = mallory.history(target, None, None, 10).await;
            let send = mallory.send(target, "x", "let me in").await;
            let view = mallory.conversation(target).await;
            let join = mallory.add_member(target, "mallory").await;
            let answers = [status(history), status(send), status(view), status(join)];
            assert_eq!(
                answers, [404; 4],
                "existing and missing conversations must look the same"
            );
        }
    }
    // Not in her list, not in her catch-up, and her WebSocket send is refused the same way.
    assert!(mallory.conversations().await.unwrap().is_empty());
    let mut conn = mallory.connect().await.unwrap();
    assert!(sync(&mut conn, HashMap::new()).await.is_empty());
    conn.send(chat.id, "ws-1", "hello?").await.unwrap();
    match frame(&mut conn).await {
        ServerFrame::Error { client_id, problem } => {
            assert_eq!((client_id.as_deref(), problem.status), (Some("ws-1"), 404));
            assert!(!problem.detail.contains("private"));
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert_eq!(
        alice.full_history(chat.id).await.unwrap().len(),
        1,
        "nothing was added"
    );
}

#[tokio::test]
async fn a_reconnecting_client_catches_up_in_order_without_gaps_or_duplicates() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let group = alice.create_group("g", &["bob"]).await.unwrap();

    let mut b = bob.connect().await.unwrap().without_dedupe();
    sync(&mut b, HashMap::new()).await;
    alice.send(chat.id, "1", "one").await.unwrap();
    let seen = messages(&mut b, 1).await;
    drop(b);

    // While bob is away: 4 more direct messages and 3 in the group.
    for i in 2..=5 {
        alice
            .send(chat.id, &i.to_string(), &format!("dm {i}"))
            .await
            .unwrap();
    }
    for i in 1..=3 {
        alice
            .send(group.id, &format!("g{i}"), &format!("group {i}"))
            .await
            .unwrap();
    }

    let mut b = bob.connect().await.unwrap().without_dedupe();
    let missed = sync(&mut b, HashMap::from([(chat.id, seen[0].seq)])).await;
    let dm: Vec<u64> = missed
        .iter()
        .filter(|m| m.conversation_id == chat.id)
        .map(|m| m.seq)
        .collect();
    let grp: Vec<u64> = missed
        .iter()
        .filter(|m| m.conversation_id == group.id)
        .map(|m| m.seq)
        .collect();
    assert_eq!(dm, [2, 3, 4, 5]);
    assert_eq!(
        grp,
        [1, 2, 3],
        "a conversation the client did not name is caught up from the start"
    );

    // Live delivery continues right after the catch-up, without repeats.
    alice.send(chat.id, "6", "dm 6").await.unwrap();
    assert_eq!(messages(&mut b, 1).await[0].seq, 6);
    assert!(drain_until_pong(&mut b).await.is_empty());
}

#[tokio::test]
async fn delete_for_everyone_leaves_a_tombstone_and_destroys_the_body() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "d1", "regret this").await.unwrap();
    alice.send(chat.id, "d2", "keep this").await.unwrap();
    assert_eq!(
        status(bob.delete_message(chat.id, 1).await),
        403,
        "only the sender deletes for everyone"
    );

    let mut b = bob.connect().await.unwrap();
    sync(&mut b, HashMap::from([(chat.id, 2)])).await;
    alice.delete_message(chat.id, 1).await.unwrap();
    loop {
        if let ServerFrame::Deleted { seq, .. } = frame(&mut b).await {
            assert_eq!(seq, 1);
            break;
        }
    }
    let history = bob.full_history(chat.id).await.unwrap();
    assert_eq!(history[0].state, MessageState::Deleted);
    assert_eq!(history[0].body, None);
    assert_eq!(history[1].body.as_deref(), Some("keep this"));

    let db = sealed_bodies(server.data_dir()).await;
    assert_eq!(
        db,
        vec![None, Some(true)],
        "the deleted row keeps no sealed body"
    );
}

/// Whether each message row of the database still has a sealed body.
async fn sealed_bodies(dir: &std::path::Path) -> Vec<Option<bool>> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("custodia.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT sealed FROM messages ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Option<Vec<u8>>>(0))
        .unwrap();
    rows.map(|s| s.unwrap().is_some().then_some(true)).collect()
}

#[tokio::test]
async fn groups_obey_their_roles() {
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let member = server.user("member").await;
    server.user("newbie").await;
    let direct = owner.open_direct("member").await.unwrap();
    let g = owner.create_group("club", &["member"]).await.unwrap();

    assert_eq!(status(member.add_member(g.id, "newbie").await), 403);
    owner.add_member(g.id, "newbie").await.unwrap();
    assert_eq!(status(owner.add_member(g.id, "newbie").await), 409);
    assert_eq!(status(member.remove_member(g.id, "newbie").await), 403);
    member.remove_member(g.id, "member").await.unwrap(); // leaving
    assert_eq!(
        status(member.history(g.id, None, None, 5).await),
        404,
        "a former member sees nothing"
    );
    assert_eq!(
        status(owner.add_member(direct.id, "newbie").await),
        422,
        "direct conversations stay two"
    );
    let members: Vec<String> = owner
        .conversation(g.id)
        .await
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.username)
        .collect();
    assert_eq!(members, ["owner", "newbie"]);
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked_and_revocation_closes_live_connections() {
    let server = TestServer::start().await;
    let laptop = server.user("alice").await;
    let phone = server.login("alice").await;
    let sessions = laptop.sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let phone_session = sessions.iter().find(|s| !s.current).unwrap().id;

    let mut live = phone.connect().await.unwrap();
    sync(&mut live, HashMap::new()).await;
    laptop.revoke_session(phone_session).await.unwrap();
    let closed = tokio::time::timeout(common::PATIENCE, live.next())
        .await
        .expect("closed in time");
    assert!(
        matches!(closed, None | Some(Err(_))),
        "revoked session's socket must close, got {closed:?}"
    );
    assert_eq!(status(phone.conversations().await), 401);

    let mut laptop = laptop;
    laptop.logout().await.unwrap();
    let stale = server.client().with_token("cst_this-is-not-a-token");
    assert_eq!(status(stale.conversations().await), 401);
}

/// A member whose client stops reading while 2,000 long messages arrive (more than the
/// socket buffers, the session's queue and the hub's queue hold, so the server drops the
/// live session as too slow) still gets every message once, in order: the client
/// reconnects and syncs from what it holds, and the catch-up pages through the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_client_gets_every_message_of_a_long_burst_once_in_order() {
    const BURST: u64 = 2_000;
    let server = TestServer::start_with(custodia_server::RawConfig {
        sends_per_minute: Some(1_000_000),
        new_account_sends_per_minute: Some(1_000_000),
        ..Default::default()
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();

    let mut b = bob.connect().await.unwrap().without_dedupe();
    sync(&mut b, HashMap::new()).await;
    // Bob reads nothing while the burst arrives.
    let body = "x".repeat(16 * 1024 - 16);
    for chunk in (1..=BURST).collect::<Vec<_>>().chunks(32) {
        let sends = chunk.iter().map(|k| {
            let (alice, body, id) = (&alice, &body, format!("m{k}"));
            async move { alice.send(chat.id, &id, body).await }
        });
        for r in futures_util::future::join_all(sends).await {
            r.unwrap();
        }
    }

    let mut received = Vec::new();
    let mut connections = 1;
    loop {
        while received.last() != Some(&BURST) {
            match b.next().await {
                Some(Ok(ServerFrame::Message(m))) => received.push(m.seq),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        if received.last() == Some(&BURST) {
            break;
        }
        assert!(connections < 20, "{connections} connections for one burst");
        let held = b.positions();
        b = bob.connect().await.unwrap().without_dedupe();
        connections += 1;
        received.extend(sync(&mut b, held).await.iter().map(|m| m.seq));
    }
    let first_wrong = received.iter().zip(1..).position(|(seq, due)| *seq != due);
    assert!(
        first_wrong.is_none() && received.len() as u64 == BURST,
        "not every message once in order over {connections} connection(s): {} frames, \
         the first out of place at {first_wrong:?}",
        received.len()
    );
}
