//! The edge, probed as an attacker would: half-open and half-sent connections, oversized
//! declared bodies, the headers every answer carries, frames over the size limit, and a
//! flood of sign-ups. Each test here failed before the edge limits existed.

mod common;

use std::net::SocketAddr;

use custodia_sdk::WsMessage;
use custodia_server::RawConfig;
use custodia_test::{ADULT_DOB, PASSWORD, ProcessServer, TestServer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

fn connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(common::tls_client_config(
        ca_pem,
        &[&rustls::version::TLS13],
    ))
}

fn addr(server: &TestServer) -> SocketAddr {
    at(server.url())
}

fn at(url: &str) -> SocketAddr {
    url.trim_start_matches("https://").parse().unwrap()
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 all reach the
/// server, each as a different client address).
async fn tcp_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

async fn tls_from(server: &TestServer, from: &str) -> std::io::Result<TlsStream<TcpStream>> {
    tls_to(server, addr(server), from).await
}

async fn tls_to(
    server: &TestServer,
    to: SocketAddr,
    from: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).unwrap();
    let tcp = tcp_from(from, to).await?;
    connector(&ca)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

/// Sends `request` on a fresh TLS connection from `from` and returns what came back
/// until the server closed or `PATIENCE` passed.
async fn exchange(server: &TestServer, from: &str, request: &[u8]) -> String {
    exchange_at(server, addr(server), from, request).await
}

/// The same, with the listener at `to`; reads until the server closes (send
/// `Connection: close`).
async fn exchange_at(server: &TestServer, to: SocketAddr, from: &str, request: &[u8]) -> String {
    let mut tls = tls_to(server, to, from).await.expect("a TLS connection");
    tls.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(common::PATIENCE, tls.read_to_end(&mut buf))
        .await
        .expect("an answer");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn half_open_connections_neither_stay_open_nor_lock_out_a_new_client() {
    let server = TestServer::start_with(RawConfig {
        header_timeout_secs: Some(1),
        ..RawConfig::default()
    })
    .await;
    let to = addr(&server);
    // 500 TLS connections whose request head is never finished …
    let mut half_sent = Vec::new();
    for _ in 0..500 {
        match tls_from(&server, "127.0.0.1").await {
            Ok(mut tls) => {
                tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await
                    .unwrap();
                tls.flush().await.unwrap();
                half_sent.push(tls);
            }
            // Past this address's cap the server closes at once.
            Err(_) => break,
        }
    }
    // … and 500 TCP connections that never start TLS.
    let mut silent = Vec::new();
    for _ in 0..500 {
        if let Ok(tcp) = tcp_from("127.0.0.1", to).await {
            silent.push(tcp);
        }
    }
    assert!(half_sent.len() >= 100, "the test holds many connections");

    // A new client from another address is served at once.
    let answer = exchange(
        &server,
        "127.0.0.2",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The half-sent requests are cut off by the header timeout, not kept for ever.
    for tls in &mut half_sent {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(common::PATIENCE, tls.read(&mut buf))
            .await
            .expect("the server closes a connection whose head never completes");
        if let Ok(n) = read {
            // Either a 408 answer or a plain close; never a served request.
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(!text.contains("200 OK"), "{text}");
        }
    }
    drop((half_sent, silent));
    // And the attacker's own address is served again once they are gone.
    let answer = exchange(
        &server,
        "127.0.0.1",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused_before_100_continue() {
    let server = TestServer::start().await;
    for path in ["/v1/accounts", "/v1/conversations/x/attachments"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 900000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        );
        let answer = exchange(&server, "127.0.0.1", request.as_bytes()).await;
        let first = answer.lines().next().unwrap_or("");
        // The attachment route answers 401 first (no session), also before any body.
        assert!(
            first.starts_with("HTTP/1.1 413") || first.starts_with("HTTP/1.1 401"),
            "{path}: {answer}"
        );
        assert!(!answer.contains("100 Continue"), "{path}: {answer}");
    }
    // Signed in, the attachment route refuses the declared size too.
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let request = format!(
        "POST /v1/conversations/{}/attachments HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\nContent-Type: image/png\r\n\
         Content-Length: 900000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        chat.id,
        alice.token().unwrap()
    );
    let answer = exchange(&server, "127.0.0.1", request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}

#[tokio::test]
async fn answers_carry_hsts_nosniff_and_no_store_and_tiles_stay_cacheable() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "m1", "hello").await.unwrap();
    let body = r#"{"username":"alice","password":"correct horse battery staple"}"#;
    let login = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let history = format!(
        "GET /v1/conversations/{}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        chat.id,
        alice.token().unwrap()
    );
    let client = addr(&server);
    let staff = at(server.staff_url());
    let me = b"GET /v1/staff/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    for (to, request) in [
        (client, login.into_bytes()),
        (client, history.into_bytes()),
        (staff, me),
    ] {
        let answer = exchange_at(&server, to, "127.0.0.1", &request)
            .await
            .to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 "), "{answer}");
        for header in [
            "strict-transport-security: max-age=",
            "x-content-type-options: nosniff",
            "cache-control: no-store",
        ] {
            assert!(answer.contains(header), "missing {header}: {answer}");
        }
    }
    // A handler's own cache policy stands (the checkpoint changes; tiles never do).
    let checkpoint = b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = exchange_at(&server, at(server.audit_url()), "127.0.0.1", checkpoint)
        .await
        .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("cache-control: no-cache"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut conn = alice.connect().await.unwrap();
    conn.raw(WsMessage::Text("x".repeat(1024 * 1024).into()))
        .await
        .unwrap();
    let end = tokio::time::timeout(common::PATIENCE, async {
        while let Some(Ok(_)) = conn.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the server closes the connection");
    let (code, reason) = conn.closed_with().expect("a close frame with a code");
    assert_eq!(*code, 1009, "{reason}");
    assert!(reason.contains("131072"), "{reason}");
}

/// Fires `n` sign-ups from `parallel` tasks at once (each sending its share one after
/// another) and returns the answers' statuses (0: no HTTP answer, e.g. a connection
/// refused over the address's cap).
async fn sign_up_flood(client: &custodia_sdk::Client, n: usize, parallel: usize) -> Vec<u16> {
    let mut flood = tokio::task::JoinSet::new();
    for t in 0..parallel {
        let c = client.clone();
        flood.spawn(async move {
            let mut statuses = Vec::new();
            for i in (t..n).step_by(parallel) {
                statuses.push(
                    match c.register(&format!("flood{i}"), PASSWORD, ADULT_DOB).await {
                        Ok(_) => 201,
                        Err(e) => e.status().unwrap_or(0),
                    },
                );
            }
            statuses
        });
    }
    let mut out = Vec::new();
    while let Some(statuses) = flood.join_next().await {
        out.extend(statuses.unwrap());
    }
    out
}

/// Alice sends `n` messages over her live connection while `during` runs; bob receives
/// every one.
async fn messaging_goes_on<F: std::future::Future>(
    alice: &mut custodia_sdk::Connection,
    bob: &mut custodia_sdk::Connection,
    chat: uuid::Uuid,
    n: u64,
    during: F,
) -> F::Output {
    let sending = async {
        for i in 1..=n {
            alice
                .send(chat, &format!("{chat}-{i}"), &format!("still here {i}"))
                .await
                .unwrap();
        }
    };
    let (out, ()) = tokio::join!(during, sending);
    let mut got = 0;
    while got < n {
        if let custodia_sdk::proto::ServerFrame::Message(m) = common::frame(bob).await
            && m.body
                .as_deref()
                .is_some_and(|b| b.starts_with("still here"))
        {
            got += 1;
        }
    }
    out
}

#[tokio::test]
async fn a_sign_up_flood_keeps_memory_flat_and_members_messaging() {
    const MB: u64 = 1024 * 1024;
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_custodia"));
    let work = tempfile::tempdir().unwrap();
    // 1,000 sign-ups at once under the default limit; then, with no limit, 300 sign-ups
    // that are all hashed (20 at a time, within the address's connection limits).
    let rounds = [(Some("20"), 1000usize, 1000usize), (None, 300, 20)];
    for (round, (limit, n, parallel)) in rounds.into_iter().enumerate() {
        let env: Vec<(String, String)> = limit
            .map(|l| {
                (
                    "CUSTODIA_SIGNUPS_PER_ADDRESS_PER_HOUR".to_owned(),
                    l.to_owned(),
                )
            })
            .into_iter()
            .collect();
        let data = work.path().join(format!("data{round}"));
        let server = ProcessServer::start_with_env(
            &bin,
            &data,
            None,
            &work.path().join(format!("log{round}")),
            &env,
        );
        let anon = server.client();
        let mut signed_in = Vec::new();
        for name in ["alice", "bob"] {
            anon.register(name, PASSWORD, ADULT_DOB).await.unwrap();
            let mut c = server.client();
            c.login(name, PASSWORD, "d").await.unwrap();
            signed_in.push(c);
        }
        let chat = signed_in[0].open_direct("bob").await.unwrap().id;
        let mut alice = signed_in[0].connect().await.unwrap();
        let mut bob = signed_in[1].connect().await.unwrap();
        common::sync(&mut alice, Default::default()).await;
        common::sync(&mut bob, Default::default()).await;

        eprintln!(
            "peak RSS before the flood {} MiB",
            server.peak_rss_bytes() / MB
        );
        let statuses = messaging_goes_on(
            &mut alice,
            &mut bob,
            chat,
            20,
            sign_up_flood(&anon, n, parallel),
        )
        .await;
        let created = statuses.iter().filter(|s| **s == 201).count();
        match limit {
            // Two of the address's twenty went to alice and bob.
            Some(_) => {
                let limited = statuses.iter().filter(|s| **s == 429).count();
                let refused = statuses.iter().filter(|s| **s == 0).count();
                eprintln!(
                    "{created} created, {limited} limited (429), {refused} connections refused"
                );
                assert_eq!(created, 18, "{statuses:?}");
                assert_eq!(created + limited + refused, n, "{statuses:?}");
            }
            // Without the limit every sign-up is hashed: memory must still stay flat.
            None => {
                eprintln!("{created} of {n} created");
                assert_eq!(created, n, "{statuses:?}");
            }
        }
        let peak = server.peak_rss_bytes();
        eprintln!("peak RSS {} MiB", peak / MB);
        assert!(
            peak < 150 * MB,
            "peak RSS {} MiB after {n} parallel sign-ups (limit {limit:?})",
            peak / MB
        );
    }
}
