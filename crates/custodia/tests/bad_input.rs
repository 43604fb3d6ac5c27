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

#[tokio::test]
async fn bad_http_requests_get_problem_json_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let path = format!("/v1/conversations/{}/messages", chat.id);
    let json = "application/json";

    // Oversized message body: over the 16 KiB limit, and a request over the transport limit.
    let big =
        serde_json::json!({ "client_id": "big", "body": "x".repeat(16 * 1024 + 1) }).to_string();
    let (s, p) = raw(&alice, Method::POST, &path, json, big.as_bytes()).await;
    assert_eq!(s, 413);
    assert!(p.detail.contains("16384"), "{}", p.detail);
    let huge =
        serde_json::json!({ "client_id": "huge", "body": "y".repeat(300 * 1024) }).to_string();
    assert_eq!(
        raw(&alice, Method::POST, &path, json, huge.as_bytes())
            .await
            .0,
        413
    );

    // Invalid UTF-8, malformed JSON, wrong shapes, missing content type.
    let (s, _) = raw(
        &alice,
        Method::POST,
        &path,
        json,
        b"{\"client_id\":\"u\",\"body\":\"\xff\xfe\"}",
    )
    .await;
    assert_eq!(s, 400);
    let (s, p) = raw(&alice, Method::POST, &path, json, b"{\"client_id\":").await;
    assert_eq!(s, 400);
    assert!(p.detail.contains("JSON"), "{}", p.detail);
    assert_eq!(
        raw(
            &alice,
            Method::POST,
            &path,
            json,
            br#"{"client_id": 5, "body": "x"}"#
        )
        .await
        .0,
        422
    );
    assert_eq!(
        raw(
            &alice,
            Method::POST,
            &path,
            json,
            br#"{"client_id": "has space", "body": "x"}"#
        )
        .await
        .0,
        422
    );
    assert_eq!(
        raw(
            &alice,
            Method::POST,
            &path,
            json,
            br#"{"client_id": "e", "body": ""}"#
        )
        .await
        .0,
        422
    );
    assert_eq!(
        raw(
            &alice,
            Method::POST,
            &path,
            "text/plain",
            br#"{"client_id":"t","body":"x"}"#
        )
        .await
        .0,
        415
    );

    // Unknown conversation, malformed id, bad token, unknown endpoint, wrong method.
    let ghost = format!("/v1/conversations/{}/messages", Uuid::new_v4());
    assert_eq!(
        raw(
            &alice,
            Method::POST,
            &ghost,
            json,
            br#"{"client_id":"g","body":"x"}"#
        )
        .await
        .0,
        404
    );
    assert_eq!(
        raw(
            &alice,
            Method::GET,
            "/v1/conversations/not-a-uuid",
            json,
            b""
        )
        .await
        .0,
        422
    );
    let stranger = server.client().with_token("cst_forged");
    assert_eq!(
        raw(
            &stranger,
            Method::POST,
            &path,
            json,
            br#"{"client_id":"t","body":"x"}"#
        )
        .await
        .0,
        401
    );
    assert_eq!(
        raw(&alice, Method::GET, "/v1/nowhere", json, b"").await.0,
        404
    );
    assert_eq!(
        raw(&alice, Method::PUT, "/v1/conversations", json, b"{}")
            .await
            .0,
        405
    );
    assert_eq!(
        raw(
            &alice,
            Method::GET,
            &format!("{path}?after=1&before=3"),
            json,
            b""
        )
        .await
        .0,
        422
    );
    assert_eq!(
        raw(&alice, Method::GET, &format!("{path}?after=-1"), json, b"")
            .await
            .0,
        422
    );

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
