//! Every bad input gets a 4xx problem+json that says what to fix, and changes nothing.

mod common;

use std::collections::HashMap;

use common::{frame, status, sync};
use custodia_sdk::proto::{Problem, ServerFrame};
use custodia_sdk::{Client, Method, WsMessage};
use custodia_test::TestServer;
use uuid::Uuid;

/// Sends raw bytes and returns the status and the parsed problem body.
async fn raw(
    client: &Client,
    method: Method,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, Problem) {
    let (status, content_type, bytes) = client
        .raw(method, path, ctype, body.to_vec())
        .await
        .unwrap();
    assert_eq!(
        content_type,
        "application/problem+json",
        "status {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let problem: Problem = serde_json::from_slice(&bytes).expect("a problem body");
    assert_eq!(problem.status, status);
    assert!(!problem.detail.is_empty());
    (status, problem)
}

/// What the case is, method, path, content type, body, expected status.
type Case<'a> = (&'a str, Method, String, &'a str, &'a [u8], u16);

#[tokio::test]
async fn bad_http_requests_get_problem_json_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let path = format!("/v1/conversations/{}/messages", chat.id);

    let big =
        serde_json::json!({ "client_id": "big", "body": "x".repeat(16 * 1024 + 1) }).to_string();
    let huge =
        serde_json::json!({ "client_id": "huge", "body": "y".repeat(300 * 1024) }).to_string();
    let ghost = format!("/v1/conversations/{}/messages", Uuid::new_v4());
    let (json, post, get) = ("application/json", Method::POST, Method::GET);
    let cases: Vec<Case<'_>> = vec![
        (
            "message body over 16 KiB",
            post.clone(),
            path.clone(),
            json,
            big.as_bytes(),
            413,
        ),
        (
            "request over the transport limit",
            post.clone(),
            path.clone(),
            json,
            huge.as_bytes(),
            413,
        ),
        (
            "invalid UTF-8",
            post.clone(),
            path.clone(),
            json,
            b"{\"client_id\":\"u\",\"body\":\"\xff\xfe\"}",
            400,
        ),
        (
            "truncated JSON",
            post.clone(),
            path.clone(),
            json,
            b"{\"client_id\":",
            400,
        ),
        (
            "wrong JSON type",
            post.clone(),
            path.clone(),
            json,
            br#"{"client_id": 5, "body": "x"}"#,
            422,
        ),
        (
            "client id with a space",
            post.clone(),
            path.clone(),
            json,
            br#"{"client_id": "a b", "body": "x"}"#,
            422,
        ),
        (
            "empty body",
            post.clone(),
            path.clone(),
            json,
            br#"{"client_id": "e", "body": ""}"#,
            422,
        ),
        (
            "not JSON content type",
            post.clone(),
            path.clone(),
            "text/plain",
            br#"{"client_id":"t","body":"x"}"#,
            415,
        ),
        (
            "unknown conversation",
            post.clone(),
            ghost,
            json,
            br#"{"client_id":"g","body":"x"}"#,
            404,
        ),
        (
            "malformed conversation id",
            get.clone(),
            "/v1/conversations/not-a-uuid".into(),
            json,
            b"",
            422,
        ),
        (
            "unknown endpoint",
            get.clone(),
            "/v1/nowhere".into(),
            json,
            b"",
            404,
        ),
        (
            "wrong method",
            Method::PUT,
            "/v1/conversations".into(),
            json,
            b"{}",
            405,
        ),
        (
            "both paging cursors",
            get.clone(),
            format!("{path}?after=1&before=3"),
            json,
            b"",
            422,
        ),
        (
            "negative cursor",
            get,
            format!("{path}?after=-1"),
            json,
            b"",
            422,
        ),
    ];
    for (what, method, target, ctype, body, expected) in cases {
        let (status, problem) = raw(&alice, method, &target, ctype, body).await;
        assert_eq!(status, expected, "{what}: {}", problem.detail);
        if what == "message body over 16 KiB" {
            assert!(problem.detail.contains("16384"), "{}", problem.detail);
        }
    }
    let stranger = server.client().with_token("cst_forged");
    let (forged, _) = raw(
        &stranger,
        Method::POST,
        &path,
        json,
        br#"{"client_id":"t","body":"x"}"#,
    )
    .await;
    assert_eq!(forged, 401, "bad token");

    // Accounts: bad username, short password, impossible birth date, taken name.
    let anon = server.client();
    assert_eq!(
        status(anon.register("x", "long enough pw", "1990-01-01").await),
        422
    );
    assert_eq!(
        status(anon.register("carol", "short", "1990-01-01").await),
        422
    );
    assert_eq!(
        status(anon.register("carol", "long enough pw", "1990-02-30").await),
        422
    );
    assert_eq!(
        status(anon.register("alice", "long enough pw", "1990-01-01").await),
        409
    );
    let mut wrong = server.client();
    let (unknown, bad_pw) = (
        status(wrong.login("nobody", "whatever123", "d").await),
        status(wrong.login("alice", "wrong-password", "d").await),
    );
    assert_eq!(
        (unknown, bad_pw),
        (401, 401),
        "the same answer whether or not the account exists"
    );

    // Nothing above changed anything.
    assert!(alice.full_history(chat.id).await.unwrap().is_empty());
    assert_eq!(alice.conversations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let mut c = server.client();
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(status(c.login("alice", "not her password", "d").await));
    }
    // Ten attempts per account per five minutes; `user()` already used one to sign in.
    assert_eq!(&answers[..9], [401; 9]);
    assert_eq!(&answers[9..], [429; 3]);
    let (s, ctype, _) = c
        .raw(
            Method::POST,
            "/v1/sessions",
            "application/json",
            br#"{"username":"alice","password":"correct horse battery staple"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        (s, ctype.as_str()),
        (429, "application/problem+json"),
        "even the right password waits"
    );
}

#[tokio::test]
async fn bad_websocket_frames_get_error_frames_and_the_connection_stays_up() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let mut conn = alice.connect().await.unwrap();
    sync(&mut conn, HashMap::new()).await;

    let expect_error = |f: ServerFrame| match f {
        ServerFrame::Error { client_id, problem } => (client_id, problem.status, problem.detail),
        other => panic!("expected an error frame, got {other:?}"),
    };
    conn.raw(WsMessage::Text(r#"{"type":"dance"}"#.into()))
        .await
        .unwrap();
    let (_, s, detail) = expect_error(frame(&mut conn).await);
    assert_eq!(s, 400);
    assert!(detail.contains("dance"), "{detail}");
    conn.raw(WsMessage::Text("not json at all".into()))
        .await
        .unwrap();
    assert_eq!(expect_error(frame(&mut conn).await).1, 400);
    conn.raw(WsMessage::Binary(vec![0xff, 0x00].into()))
        .await
        .unwrap();
    assert_eq!(expect_error(frame(&mut conn).await).1, 415);
    conn.send(chat.id, "too-big", &"z".repeat(16 * 1024 + 1))
        .await
        .unwrap();
    assert_eq!(
        expect_error(frame(&mut conn).await),
        (
            Some("too-big".into()),
            413,
            "body is too long: at most 16384 bytes".into()
        )
    );
    conn.send(Uuid::new_v4(), "nowhere", "hi").await.unwrap();
    assert_eq!(expect_error(frame(&mut conn).await).1, 404);
    conn.sync(HashMap::new()).await.unwrap();
    assert_eq!(expect_error(frame(&mut conn).await).1, 409);

    // Still up, and still works.
    conn.ping().await.unwrap();
    assert!(matches!(frame(&mut conn).await, ServerFrame::Pong));
    conn.send(chat.id, "fine", "still here").await.unwrap();
    let ack = common::ack(&mut conn, "fine").await;
    assert_eq!(ack.seq, 1, "none of the bad frames stored anything");
}

#[tokio::test]
async fn a_websocket_without_a_valid_token_is_refused() {
    let server = TestServer::start().await;
    let forged = server.client().with_token("cst_forged");
    assert!(forged.connect().await.is_err());
}
