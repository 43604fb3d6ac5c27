//! Teen protections, "who can message me", connections, blocking and send limits, each
//! through the real API.

use custodia_sdk::{Client, SdkError};
use custodia_server::RawConfig;
use custodia_test::{PASSWORD, TestServer, TestWitness, cases_at_least};

/// A date of birth that makes someone `years` old today.
fn born(years: i32) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let date = today
        .replace_year(today.year() - years)
        .unwrap_or_else(|_| {
            today
                .replace_day(28)
                .unwrap()
                .replace_year(today.year() - years)
                .unwrap()
        });
    date.to_string()
}

async fn member(server: &TestServer, name: &str, years: i32) -> Client {
    server
        .client()
        .register(name, PASSWORD, &born(years))
        .await
        .unwrap();
    server.login(name).await
}

fn status(e: &SdkError) -> u16 {
    match e {
        SdkError::Api(p) => p.status,
        other => panic!("expected a problem answer, got {other}"),
    }
}

#[tokio::test]
async fn ages_decide_who_may_register_and_converse() {
    let server = TestServer::start().await;
    let e = server
        .client()
        .register("kid", PASSWORD, &born(12))
        .await
        .unwrap_err();
    assert_eq!(status(&e), 422);
    assert!(e.to_string().contains("at least 13"), "{e}");

    let young = member(&server, "young", 14).await;
    let adult = member(&server, "adult", 30).await;
    let other = member(&server, "other", 30).await;
    // Under 16: no direct messages or groups, in either direction.
    assert_eq!(status(&young.open_direct("adult").await.unwrap_err()), 403);
    assert_eq!(
        status(&young.create_group("club", &["adult"]).await.unwrap_err()),
        403
    );
    let e = adult.open_direct("young").await.unwrap_err();
    assert_eq!(status(&e), 403);
    assert!(
        e.to_string().contains("cannot be messaged or added by you"),
        "{e}"
    );
    assert_eq!(
        status(&adult.create_group("club", &["young"]).await.unwrap_err()),
        403
    );
    // Nothing to choose under 16; connected or not, still no DMs.
    assert_eq!(
        status(&young.set_who_can_message("connections").await.unwrap_err()),
        422
    );
    young.connect_with("adult").await.unwrap();
    adult.connect_with("young").await.unwrap();
    assert_eq!(status(&adult.open_direct("young").await.unwrap_err()), 403);
    // Adults converse freely by default.
    adult.open_direct("other").await.unwrap();
    drop(other);
}

#[tokio::test]
async fn sixteen_and_seventeen_year_olds_are_reached_only_by_connections() {
    let server = TestServer::start().await;
    let teen = member(&server, "teen", 16).await;
    let adult = member(&server, "adult", 35).await;
    let peer = member(&server, "peer", 17).await;
    assert_eq!(
        teen.settings().await.unwrap().who_can_message,
        "connections"
    );
    assert_eq!(
        status(&teen.set_who_can_message("everyone").await.unwrap_err()),
        422,
        "16-17 cannot choose everyone"
    );
    // Strangers cannot reach them, adults or not; nor add them to a group.
    assert_eq!(status(&adult.open_direct("teen").await.unwrap_err()), 403);
    assert_eq!(status(&peer.open_direct("teen").await.unwrap_err()), 403);
    assert_eq!(
        status(&adult.create_group("club", &["teen"]).await.unwrap_err()),
        403
    );
    let group = adult.create_group("club", &[]).await.unwrap();
    assert_eq!(
        status(&adult.add_member(group.id, "teen").await.unwrap_err()),
        403
    );
    // A request alone is not a connection; accepting makes one.
    let asked = adult.connect_with("teen").await.unwrap();
    assert!(!asked.accepted && asked.asked_by_me);
    assert_eq!(status(&adult.open_direct("teen").await.unwrap_err()), 403);
    let accepted = teen.connect_with("adult").await.unwrap();
    assert!(accepted.accepted);
    let chat = adult.open_direct("teen").await.unwrap();
    adult.send(chat.id, "hi-1", "hello").await.unwrap();
    adult.add_member(group.id, "teen").await.unwrap();
    // Nobody: not even connections may start something new.
    teen.set_who_can_message("nobody").await.unwrap();
    peer.connect_with("teen").await.unwrap();
    teen.connect_with("peer").await.unwrap();
    assert_eq!(status(&peer.open_direct("teen").await.unwrap_err()), 403);
    assert_eq!(teen.connections().await.unwrap().len(), 2);
}

#[tokio::test]
async fn adults_choose_who_can_message_them() {
    let server = TestServer::start().await;
    let ann = member(&server, "ann", 40).await;
    let ben = member(&server, "ben", 41).await;
    let cat = member(&server, "cat", 42).await;
    ann.set_who_can_message("connections").await.unwrap();
    assert_eq!(status(&ben.open_direct("ann").await.unwrap_err()), 403);
    ann.connect_with("ben").await.unwrap();
    ben.connect_with("ann").await.unwrap();
    ben.open_direct("ann").await.unwrap();
    ann.set_who_can_message("nobody").await.unwrap();
    assert_eq!(status(&cat.open_direct("ann").await.unwrap_err()), 403);
    ann.set_who_can_message("everyone").await.unwrap();
    cat.open_direct("ann").await.unwrap();
    assert_eq!(
        status(&ann.set_who_can_message("friends").await.unwrap_err()),
        422
    );
}

#[tokio::test]
async fn a_blocked_member_cannot_find_message_or_add_the_blocker() {
    let server = TestServer::start().await;
    let alice = member(&server, "alice", 30).await;
    let bob = member(&server, "bob", 30).await;
    member(&server, "carol", 30).await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "b-1", "before").await.unwrap();
    bob.block("alice").await.unwrap();
    assert_eq!(bob.blocks().await.unwrap(), vec!["alice".to_owned()]);

    let e = alice.send(chat.id, "b-2", "after").await.unwrap_err();
    assert_eq!(status(&e), 403);
    assert_eq!(
        status(&bob.send(chat.id, "b-3", "me neither").await.unwrap_err()),
        403,
        "no direct delivery either way"
    );
    assert_eq!(
        status(&alice.create_group("g", &["bob"]).await.unwrap_err()),
        404,
        "the blocker does not exist for the blocked"
    );
    assert_eq!(status(&alice.connect_with("bob").await.unwrap_err()), 404);
    let group = alice.create_group("g", &["carol"]).await.unwrap();
    assert_eq!(
        status(&alice.add_member(group.id, "bob").await.unwrap_err()),
        404
    );
    // The blocker cannot message the blocked either until they unblock.
    assert_eq!(
        status(&bob.create_group("h", &["alice"]).await.unwrap_err()),
        422
    );
    bob.unblock("alice").await.unwrap();
    alice.send(chat.id, "b-4", "again").await.unwrap();
    assert_eq!(status(&bob.unblock("alice").await.unwrap_err()), 404);
}

#[tokio::test]
async fn sends_are_rate_limited_per_account_with_retry_after() {
    let server = TestServer::start_with(RawConfig {
        sends_per_minute: Some(100),
        new_account_sends_per_minute: Some(3),
        ..RawConfig::default()
    })
    .await;
    let a = member(&server, "fast", 30).await;
    member(&server, "slow", 30).await;
    let chat = a.open_direct("slow").await.unwrap();
    for i in 0..3 {
        a.send(chat.id, &format!("r{i}"), "hi").await.unwrap();
    }
    let (status, _, body) = a
        .raw(
            custodia_sdk::Method::POST,
            &format!("/v1/conversations/{}/messages", chat.id),
            "application/json",
            br#"{"client_id":"r3","body":"one too many"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("retry in"));
}

#[tokio::test]
async fn an_adults_first_contact_with_a_minor_is_limited_hard() {
    let server = TestServer::start_with(RawConfig {
        first_contact_sends_per_hour: Some(2),
        ..RawConfig::default()
    })
    .await;
    let adult = member(&server, "grownup", 30).await;
    let teen = member(&server, "teenager", 17).await;
    adult.connect_with("teenager").await.unwrap();
    teen.connect_with("grownup").await.unwrap();
    let chat = adult.open_direct("teenager").await.unwrap();
    adult.send(chat.id, "f1", "hi").await.unwrap();
    adult.send(chat.id, "f2", "hi again").await.unwrap();
    let e = adult.send(chat.id, "f3", "and again").await.unwrap_err();
    assert_eq!(status(&e), 429);
    // The teen is not limited by it.
    for i in 0..5 {
        teen.send(chat.id, &format!("t{i}"), "hey").await.unwrap();
    }
}

#[tokio::test]
async fn a_message_matching_the_text_rules_opens_a_case_nobody_has_read() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
threshold = 10
[[rules]]
name = "secrecy"
category = "grooming"
pattern = "(?i)don'?t tell your (mum|mom|dad|parents)"
score = 10
"#,
    )
    .unwrap();
    let server = TestServer::start_with(RawConfig {
        text_rules: Some(rules.clone()),
        ..RawConfig::default()
    })
    .await;
    let admin = server.admin().await;
    let m = server.new_staff(&admin, "mod", "moderator").await;
    let a = member(&server, "sender", 30).await;
    member(&server, "receiver", 30).await;
    let chat = a.open_direct("receiver").await.unwrap();
    a.send(chat.id, "ok-1", "see you at practice")
        .await
        .unwrap();
    a.send(chat.id, "bad-1", "Don't tell your parents we talk")
        .await
        .unwrap();

    // The case opens just after the send is acknowledged.
    let cases = cases_at_least(&m, 1).await;
    assert_eq!(cases.len(), 1, "one signal, for the matching message only");
    let case = &cases[0];
    assert_eq!(
        (case.kind.as_str(), case.category.as_deref()),
        ("signal", Some("grooming"))
    );
    assert_eq!(case.reported, vec![2]);
    assert_eq!((case.from_seq, case.to_seq), (1, 2));
    assert!(case.evidence.is_empty() && case.comment.is_none());
    let json = format!("{case:?}");
    assert!(
        !json.contains("tell your parents"),
        "the case holds no text"
    );

    // A bad rule file stops the server from starting, saying what is wrong.
    std::fs::write(
        &rules,
        "threshold = 10\n[[rules]]\nname = \"broken\"\ncategory = \"spam\"\npattern = \"(\"\nscore = 1\n",
    )
    .unwrap();
    let err = RawConfig {
        text_rules: Some(rules),
        ..RawConfig::default()
    }
    .validate()
    .expect_err("a bad pattern is refused");
    assert!(
        format!("{err:#}").contains("\"broken\": bad pattern"),
        "{err:#}"
    );
}

/// A signal is stored with its message, so neither an audit log outage (the case cannot
/// be opened) nor a stop of the server loses it: the case opens once the log is back.
#[tokio::test]
async fn a_signal_survives_a_log_outage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "threshold = 10\n[[rules]]\nname = \"secrecy\"\ncategory = \"grooming\"\n\
         pattern = \"(?i)our secret\"\nscore = 10\n",
    )
    .unwrap();
    let mut server = TestServer::start().await;
    let admin = server.first_admin().await.clone();
    server.stop().await;
    let mut witness = TestWitness::start("witness.test/w", vec![server.log_key()]).await;
    let config = RawConfig {
        text_rules: Some(rules),
        witnesses: Some(vec![witness.config()]),
        ..RawConfig::default()
    };
    server.restart_fresh_with(config.clone()).await;
    let a = member(&server, "sender", 30).await;
    member(&server, "receiver", 30).await;
    let chat = a.open_direct("receiver").await.unwrap();

    // The log cannot take entries: the case cannot be opened, the send still succeeds.
    witness.stop().await;
    a.send(chat.id, "bad-1", "this is our secret")
        .await
        .unwrap();
    server.stop().await;

    // Back, with the log: the stored signal becomes its case.
    witness.restart().await;
    server.restart_fresh_with(config).await;
    let admin = server
        .staff(&admin.username, &admin.password, &admin.totp_uri)
        .await;
    let m = server.new_staff(&admin, "mod", "moderator").await;
    let cases = cases_at_least(&m, 1).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(
        (cases[0].kind.as_str(), cases[0].reported.as_slice()),
        ("signal", &[1][..])
    );
}

#[tokio::test]
async fn in_a_shared_group_blocked_members_get_nothing_of_each_other() {
    let server = TestServer::start().await;
    let alice = member(&server, "alice", 30).await;
    let bob = member(&server, "bob", 30).await;
    let carol = member(&server, "carol", 30).await;
    let group = alice.create_group("club", &["bob", "carol"]).await.unwrap();
    alice
        .send(group.id, "g-1", "before the block")
        .await
        .unwrap();
    bob.block("alice").await.unwrap();
    alice
        .send(group.id, "g-2", "after the block")
        .await
        .unwrap();
    bob.send(group.id, "g-3", "bob speaks").await.unwrap();

    let state = |c: &Client| {
        let c = c.clone();
        async move {
            c.history(group.id, None, None, 10)
                .await
                .unwrap()
                .messages
                .into_iter()
                .map(|m| (m.seq, format!("{:?}", m.state), m.body))
                .collect::<Vec<_>>()
        }
    };
    let for_bob = state(&bob).await;
    assert_eq!(
        for_bob[0].1, "Hidden",
        "blocking hides earlier messages too"
    );
    assert_eq!(for_bob[1].1, "Hidden");
    assert!(for_bob[0].2.is_none() && for_bob[1].2.is_none());
    assert_eq!(for_bob[2].2.as_deref(), Some("bob speaks"));
    let for_alice = state(&alice).await;
    assert_eq!(for_alice[2].1, "Hidden", "both ways");
    let for_carol = state(&carol).await;
    assert!(for_carol.iter().all(|m| m.1 == "Ok"), "{for_carol:?}");
}
