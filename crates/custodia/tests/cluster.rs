//! Scale-out: several `custodia serve` nodes (the real binary) on one PostgreSQL database
//! and one NATS server, each test with its own database and subject prefix.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;

use common::{PATIENCE, drain_until_pong, messages, sync};
use custodia_sdk::proto::ServerFrame;
use custodia_sdk::{Client, Method};
use custodia_test::{ADULT_DOB, Deployment, PASSWORD, ProcessServer, TcpProxy};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_custodia"))
}

/// Starts `n` nodes on the deployment, one after another (the first creates the shared
/// data directory's keys).
fn nodes(dep: &Deployment, n: usize) -> Vec<ProcessServer> {
    (0..n)
        .map(|i| dep.node(&bin(), &dep.dir.path().join(format!("node{i}.log"))))
        .collect()
}

/// Registers `name` through `node` and signs in there.
async fn user(node: &ProcessServer, name: &str) -> Client {
    let mut c = node.client();
    c.register(name, PASSWORD, ADULT_DOB).await.unwrap();
    c.login(name, PASSWORD, "test device").await.unwrap();
    c
}

/// The same session, talking to another node.
fn on(node: &ProcessServer, c: &Client) -> Client {
    node.client().with_token(c.token().unwrap())
}

/// Polls `/readyz` until it answers `status`.
async fn readiness(node: &ProcessServer, status: u16) {
    let anon = node.client();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let got = anon
                .raw(Method::GET, "/readyz", "text/plain", Vec::new())
                .await
                .map(|(s, _, _)| s);
            if got.ok() == Some(status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/readyz never answered {status}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_over_three_nodes_gets_every_message_once_in_order_even_when_a_node_dies() {
    let dep = Deployment::new().await;
    let mut nodes = nodes(&dep, 3);
    let names = ["ann", "ben", "cat", "dan", "eve", "fay"];
    let mut users = Vec::new();
    for (i, n) in names.iter().enumerate() {
        users.push(user(&nodes[i % 3], n).await);
    }
    let group = users[0].create_group("six", &names[1..]).await.unwrap();

    // Each member live on its own node.
    let mut conns = Vec::new();
    for u in &users {
        let mut c = u.connect().await.unwrap().without_dedupe();
        assert!(sync(&mut c, HashMap::new()).await.is_empty());
        conns.push(c);
    }

    // Every member sends 10 at once, each through its own node.
    let gid = group.id;
    let send_all = move |senders: Vec<(usize, Client)>, round: u32| async move {
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|(i, u)| {
                tokio::spawn(async move {
                    for k in 0..10 {
                        u.send(
                            gid,
                            &format!("{round}-{i}-{k}"),
                            &format!("r{round} {i}.{k}"),
                        )
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    };
    send_all(users.iter().cloned().enumerate().collect(), 1).await;
    let first: HashSet<String> = (0..6)
        .flat_map(|i| (0..10).map(move |k| format!("r1 {i}.{k}")))
        .collect();
    for c in &mut conns {
        let got = messages(c, 60).await;
        let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=60).collect::<Vec<_>>(),
            "once, in order, on every node"
        );
        let bodies: HashSet<String> = got.into_iter().filter_map(|m| m.body).collect();
        assert_eq!(bodies, first);
    }

    // Node 0 dies; ann and dan were connected there.
    nodes.remove(0).kill();
    let mut dead: Vec<_> = [3, 0].into_iter().map(|i| conns.remove(i)).collect();
    for c in &mut dead {
        let closed = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(_)) = c.next().await {}
        })
        .await;
        assert!(closed.is_ok(), "the dead node's connections close");
    }
    // The others go on sending through the surviving nodes meanwhile.
    let survivors: Vec<(usize, Client)> = [1, 2, 4, 5]
        .into_iter()
        .map(|i| (i, on(&nodes[(i + 1) % 2], &users[i])))
        .collect();
    send_all(survivors, 2).await;

    // ann and dan reconnect to node 1 with the same sessions and catch up from 60.
    for i in [0, 3] {
        let mut c = on(&nodes[0], &users[i])
            .connect()
            .await
            .unwrap()
            .without_dedupe();
        let caught = sync(&mut c, HashMap::from([(group.id, 60)])).await;
        let seqs: Vec<u64> = caught.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (61..=100).collect::<Vec<_>>(),
            "nothing lost or repeated"
        );
        assert!(drain_until_pong(&mut c).await.is_empty());
    }
    for c in &mut conns {
        let got = messages(c, 40).await;
        let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (61..=100).collect::<Vec<_>>());
        assert!(drain_until_pong(c).await.is_empty(), "and nothing twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_through_three_nodes_get_contiguous_numbers_and_client_ids_hold() {
    let dep = Deployment::new().await;
    let nodes = nodes(&dep, 3);
    let owner = user(&nodes[0], "owner").await;
    user(&nodes[1], "peer").await;
    let group = owner.create_group("race", &["peer"]).await.unwrap();

    // The same member sends through all three nodes at once, four in flight per node.
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for lane in 0..4 {
            let c = on(node, &owner);
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for k in 0..15 {
                    let ack = c
                        .send(group.id, &format!("{n}-{lane}-{k}"), "x")
                        .await
                        .unwrap();
                    assert!(!ack.duplicate);
                    seqs.push(ack.seq);
                }
                seqs
            }));
        }
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=180).collect::<Vec<_>>(), "no gap, no duplicate");

    // One client id sent through every node at once is one message.
    let mut same = Vec::new();
    for node in &nodes {
        let c = on(node, &owner);
        same.push(tokio::spawn(async move {
            c.send(group.id, "once", "only once").await.unwrap()
        }));
    }
    let mut acks = Vec::new();
    for t in same {
        acks.push(t.await.unwrap());
    }
    assert!(acks.iter().all(|a| a.seq == 181 && a.id == acks[0].id));
    assert_eq!(acks.iter().filter(|a| !a.duplicate).count(), 1);
    assert_eq!(owner.full_history(group.id).await.unwrap().len(), 181);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_nats_catches_its_clients_up_when_it_returns() {
    let dep = Deployment::new().await;
    let hostport = dep.nats_url.trim_start_matches("nats://").to_owned();
    let proxy = TcpProxy::start(&hostport).await;
    let a = dep.node(&bin(), &dep.dir.path().join("a.log"));
    let b = dep.node_via(
        &bin(),
        &dep.dir.path().join("b.log"),
        dep.database.url(),
        &format!("nats://{}", proxy.addr),
    );
    let alice = user(&a, "alice").await;
    let bob = user(&b, "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let mut live = bob.connect().await.unwrap().without_dedupe();
    sync(&mut live, HashMap::new()).await;

    alice.send(chat.id, "m1", "before the cut").await.unwrap();
    assert_eq!(messages(&mut live, 1).await[0].seq, 1, "across nodes, live");

    proxy.cut();
    readiness(&b, 503).await;
    for k in 2..=10 {
        alice
            .send(chat.id, &format!("m{k}"), &format!("during the cut {k}"))
            .await
            .unwrap();
    }
    proxy.restore();
    readiness(&b, 200).await;

    // No further send: the node's reconnect makes its sessions catch up.
    let got = messages(&mut live, 9).await;
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (2..=10).collect::<Vec<_>>());
    alice.send(chat.id, "m11", "after").await.unwrap();
    let next = messages(&mut live, 1).await;
    assert_eq!(next[0].seq, 11);
    assert!(
        drain_until_pong(&mut live).await.is_empty(),
        "nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_postgres_answers_errors_and_acknowledges_nothing() {
    let dep = Deployment::new().await;
    let (node, proxy) = behind_a_postgres_proxy(&dep, "n.log").await;
    let alice = user(&node, "alice").await;
    user(&node, "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "m1", "stored").await.unwrap();

    proxy.cut();
    for k in 2..=4 {
        let err = alice
            .send(chat.id, &format!("m{k}"), "cannot be stored")
            .await
            .expect_err("no acknowledgement without the database");
        assert_eq!(err.status(), Some(503), "{err}");
    }
    readiness(&node, 503).await;
    proxy.restore();
    readiness(&node, 200).await;
    alice.send(chat.id, "m5", "stored again").await.unwrap();
    let history = alice.full_history(chat.id).await.unwrap();
    let bodies: Vec<String> = history.into_iter().filter_map(|m| m.body).collect();
    assert_eq!(bodies, ["stored", "stored again"]);
}

/// A node of `dep` that reaches PostgreSQL through a proxy the test can cut.
async fn behind_a_postgres_proxy(dep: &Deployment, log: &str) -> (ProcessServer, TcpProxy) {
    let url = url_of(dep.database.url());
    let proxy = TcpProxy::start(&url.1).await;
    let node = dep.node_via(
        &bin(),
        &dep.dir.path().join(log),
        &url.0.replace(&url.1, &proxy.addr.to_string()),
        &dep.nats_url,
    );
    (node, proxy)
}

/// The URL and its `host:port`.
fn url_of(url: &str) -> (String, String) {
    let after = url.split_once("@").map_or(url, |(_, rest)| rest);
    let hostport = after.split('/').next().unwrap().to_owned();
    (url.to_owned(), hostport)
}

#[tokio::test]
async fn unreachable_postgres_or_nats_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = custodia_server::RawConfig {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        audit_listen: Some("127.0.0.1:0".into()),
        staff_listen: Some("127.0.0.1:0".into()),
        storage: Some(custodia_server::config::StorageKind::Postgres),
        postgres_url: Some("postgres://root@127.0.0.1:1/custodia".into()),
        ..Default::default()
    };
    let err = custodia_server::start(base.clone().validate().unwrap())
        .await
        .err()
        .expect("no database, no start");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot connect to PostgreSQL at postgres://***@127.0.0.1:1/custodia"),
        "{text}"
    );

    let dep = Deployment::new().await;
    let nats = custodia_server::RawConfig {
        postgres_url: Some(dep.database.url().to_owned()),
        fanout: Some(custodia_server::config::FanoutKind::Nats),
        nats_url: Some("nats://127.0.0.1:1".into()),
        ..base
    };
    let err = custodia_server::start(nats.validate().unwrap())
        .await
        .err()
        .expect("no NATS, no start");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{text}"
    );
}

/// The next frame that is not a message (reads, deletions, membership).
async fn next_event(conn: &mut custodia_sdk::Connection) -> ServerFrame {
    loop {
        match common::frame(conn).await {
            ServerFrame::Message(_) => {}
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_deletions_membership_and_revocations_cross_nodes() {
    let dep = Deployment::new().await;
    let nodes = nodes(&dep, 2);
    let alice = user(&nodes[0], "alice").await;
    let bob = user(&nodes[1], "bob").await;
    let carol = user(&nodes[0], "carol").await;
    let group = alice.create_group("club", &["bob"]).await.unwrap();
    let mut live = bob.connect().await.unwrap();
    sync(&mut live, HashMap::new()).await;
    let sent = alice.send(group.id, "m1", "hello").await.unwrap();
    assert_eq!(
        messages(&mut live, 1).await[0].body.as_deref(),
        Some("hello")
    );

    // All through node 0; bob is live on node 1.
    alice.add_member(group.id, "carol").await.unwrap();
    assert!(matches!(
        next_event(&mut live).await,
        ServerFrame::Membership { username, joined: true, .. } if username == "carol"
    ));
    carol.mark_read(group.id, sent.seq).await.unwrap();
    assert!(matches!(
        next_event(&mut live).await,
        ServerFrame::Read { seq, .. } if seq == sent.seq
    ));
    alice.delete_message(group.id, sent.seq).await.unwrap();
    assert!(matches!(
        next_event(&mut live).await,
        ServerFrame::Deleted { seq, .. } if seq == sent.seq
    ));

    // bob's session on node 1 is revoked from another of his sessions on node 0.
    let laptop = on(&nodes[0], &user_login(&nodes[0], "bob").await);
    let sessions = laptop.sessions().await.unwrap();
    let live_session = sessions.iter().find(|s| !s.current).unwrap().id;
    laptop.revoke_session(live_session).await.unwrap();
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match live.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the revoked session's socket on the other node closes"
    );
}

/// Another session of an existing user, signed in through `node`.
async fn user_login(node: &ProcessServer, name: &str) -> Client {
    let mut c = node.client();
    c.login(name, PASSWORD, "second device").await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_a_killed_node_acknowledged_is_served_by_another() {
    let dep = Deployment::new().await;
    let mut nodes = nodes(&dep, 2);
    let alice = user(&nodes[0], "alice").await;
    user(&nodes[0], "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();

    let doomed = nodes.remove(0);
    // SIGKILL mid-burst, after 300 acknowledgements.
    let acked = common::burst_until(&alice, chat.id, 300, move || doomed.kill()).await;
    let history = on(&nodes[0], &alice).full_history(chat.id).await.unwrap();
    common::assert_acked_kept(&history, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_spread_over_nodes_share_one_budget() {
    let dep = Deployment::new().await;
    let nodes = nodes(&dep, 2);
    user(&nodes[0], "mallory-target").await; // one attempt (a good one) of the 10 allowed
    let mut statuses = Vec::new();
    for k in 0..10 {
        let mut c = nodes[k % 2].client();
        let err = c
            .login("mallory-target", "not the password", "guess")
            .await
            .expect_err("wrong password");
        statuses.push(err.status().unwrap());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 401, 401, 401, 401, 429],
        "the default 10 attempts per account hold across both nodes"
    );
    let mut c = nodes[1].client();
    let err = c
        .login("mallory-target", PASSWORD, "owner")
        .await
        .expect_err("even the right password waits");
    assert_eq!(err.status(), Some(429));
}

#[tokio::test]
async fn hash_lists_are_imported_into_the_deployments_postgres() {
    use sha2::Digest;
    let dep = Deployment::new().await;
    let node = dep.node(&bin(), &dep.dir.path().join("node.log"));
    let bad = b"a file on a list kept in postgres".to_vec();
    let sha: String = sha2::Sha256::digest(&bad)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let list = dep.dir.path().join("list.txt");
    std::fs::write(&list, format!("{sha}\n")).unwrap();
    // The operator tool reads the same settings as the server (here from the
    // environment), so the list goes into the deployment's PostgreSQL, not a local file.
    let out = tokio::process::Command::new(bin())
        .args([
            "admin", "hashlist", "import", "--list", "pg", "--kind", "sha256",
        ])
        .arg("--data-dir")
        .arg(dep.dir.path())
        .arg(&list)
        .envs(dep.env(dep.database.url(), &dep.nats_url))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alice = user(&node, "alice").await;
    user(&node, "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let e = alice.upload(chat.id, bad).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
}

#[tokio::test]
async fn sign_ups_spread_over_nodes_share_one_budget_per_address() {
    let dep = Deployment::new().await;
    let nodes: Vec<ProcessServer> = (0..2)
        .map(|i| {
            let mut env = dep.env(dep.database.url(), &dep.nats_url);
            env.push(("CUSTODIA_SIGNUPS_PER_ADDRESS_PER_HOUR".into(), "4".into()));
            ProcessServer::start_with_env(
                &bin(),
                dep.dir.path(),
                None,
                &dep.dir.path().join(format!("node{i}.log")),
                &env,
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for k in 0..6 {
        let c = nodes[k % 2].client();
        statuses.push(
            match c.register(&format!("new{k}"), PASSWORD, ADULT_DOB).await {
                Ok(_) => 201,
                Err(e) => e.status().unwrap_or(0),
            },
        );
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 201, 429, 429],
        "four sign-ups per address per hour, however many nodes they are spread over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_text_reaches_postgres_nats_or_the_logs() {
    let dep = Deployment::new().await;
    let nodes = nodes(&dep, 2);
    // Everything the nodes say to each other, as NATS carries it.
    let nats = async_nats::connect(dep.nats_url.as_str()).await.unwrap();
    let mut wire = nats
        .subscribe(format!("{}.>", dep.nats_prefix))
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let alice = user(&nodes[0], "alice").await;
    let bob = user(&nodes[1], "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let mut live = bob.connect().await.unwrap();
    sync(&mut live, HashMap::new()).await;
    alice
        .send(chat.id, "c1", &format!("across nodes: {canary}"))
        .await
        .unwrap();
    let got = messages(&mut live, 1).await;
    assert!(
        got[0].body.as_deref().unwrap().contains(&canary),
        "bob on the other node reads it"
    );

    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), wire.next()).await {
        seen.push(m.payload.to_vec());
    }
    assert!(!seen.is_empty(), "the send crossed NATS");
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "-d", dep.database.url()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut places: Vec<(String, Vec<u8>)> = vec![("the database".into(), dump.stdout)];
    places.extend(seen.into_iter().map(|p| ("a NATS notice".into(), p)));
    for i in 0..2 {
        let log = dep.dir.path().join(format!("node{i}.log"));
        places.push((format!("node {i}'s log"), std::fs::read(log).unwrap()));
    }
    for (place, bytes) in &places {
        for s in common::spellings(&canary) {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s),
                "{place} holds the message text as {:?}",
                String::from_utf8_lossy(&s)
            );
        }
    }
}

/// A `nats-server` child process that requires TLS, killed on drop.
struct TlsNats {
    child: std::process::Child,
    url: String,
}

impl TlsNats {
    async fn start(cert: &std::path::Path, key: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("/usr/sbin/nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--tls",
                "--tlscert",
            ])
            .arg(cert)
            .arg("--tlskey")
            .arg(key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run /usr/sbin/nats-server (Debian package nats-server)");
        let addr = format!("127.0.0.1:{port}");
        tokio::time::timeout(PATIENCE, async {
            while tokio::net::TcpStream::connect(&addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("nats-server listening");
        Self {
            child,
            url: format!("tls://{addr}"),
        }
    }
}

impl Drop for TlsNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_nats_over_tls_with_a_private_ca() {
    let dep = Deployment::new().await;
    // A first start (without fan-out) creates the data directory's keys and certificate;
    // NATS then serves TLS with that certificate.
    let first = ProcessServer::start_with_env(
        &bin(),
        dep.dir.path(),
        None,
        &dep.dir.path().join("first.log"),
        &[
            ("CUSTODIA_STORAGE".into(), "postgres".into()),
            ("CUSTODIA_POSTGRES_URL".into(), dep.database.url().into()),
        ],
    );
    first.terminate();
    let tls = dep.dir.path().join("tls");
    let nats = TlsNats::start(&tls.join("server.pem"), &tls.join("server.key")).await;

    let with_ca = |i: usize| {
        let mut env = dep.env(dep.database.url(), &nats.url);
        env.push((
            "CUSTODIA_NATS_CA_CERT".into(),
            tls.join("ca.pem").display().to_string(),
        ));
        ProcessServer::start_with_env(
            &bin(),
            dep.dir.path(),
            None,
            &dep.dir.path().join(format!("tls{i}.log")),
            &env,
        )
    };
    let (a, b) = (with_ca(0), with_ca(1));
    let alice = user(&a, "alice").await;
    let bob = user(&b, "bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let mut live = bob.connect().await.unwrap();
    sync(&mut live, HashMap::new()).await;
    alice.send(chat.id, "t1", "over TLS").await.unwrap();
    assert_eq!(
        messages(&mut live, 1).await[0].body.as_deref(),
        Some("over TLS")
    );

    // Without the CA, the certificate is not trusted and the node does not start.
    let untrusting = custodia_server::RawConfig {
        data_dir: Some(dep.dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        audit_listen: Some("127.0.0.1:0".into()),
        staff_listen: Some("127.0.0.1:0".into()),
        storage: Some(custodia_server::config::StorageKind::Postgres),
        postgres_url: Some(dep.database.url().into()),
        fanout: Some(custodia_server::config::FanoutKind::Nats),
        nats_url: Some(nats.url.clone()),
        ..Default::default()
    };
    let err = custodia_server::start(untrusting.validate().unwrap())
        .await
        .err()
        .expect("an untrusted NATS certificate stops start-up");
    assert!(
        format!("{err:#}").contains("cannot connect to NATS"),
        "{err:#}"
    );
}

/// The crash drill's reproduction: node C loses PostgreSQL while 600 messages are sent on
/// node A. A member connected to C gets all of them once, in order (live, by gap fills
/// past a page, or after reconnecting and syncing from what it holds), none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_a_node_that_lost_postgres_gets_every_message_once_in_order() {
    let dep = Deployment::new().await;
    let a = dep.node(&bin(), &dep.dir.path().join("a.log"));
    let (c, proxy) = behind_a_postgres_proxy(&dep, "c.log").await;
    let alice = user(&a, "alice").await;
    let bob = on(&c, &user(&a, "bob").await);
    let chat = alice.open_direct("bob").await.unwrap();
    let mut live = bob.connect().await.unwrap().without_dedupe();
    sync(&mut live, HashMap::new()).await;

    proxy.cut();
    readiness(&c, 503).await;
    for chunk in (1..=600).collect::<Vec<u64>>().chunks(20) {
        let sends = chunk.iter().map(|k| {
            let alice = &alice;
            let (id, body) = (format!("m{k}"), format!("message {k}"));
            async move { alice.send(chat.id, &id, &body).await }
        });
        for r in futures_util::future::join_all(sends).await {
            r.unwrap();
        }
    }
    proxy.restore();
    readiness(&c, 200).await;
    for k in 601..=602 {
        alice
            .send(chat.id, &format!("m{k}"), &format!("message {k}"))
            .await
            .unwrap();
    }

    let mut received: Vec<u64> = Vec::new();
    let mut connections = 1;
    tokio::time::timeout(PATIENCE, async {
        while received.last() != Some(&602) {
            match live.next().await {
                Some(Ok(ServerFrame::Message(m))) => received.push(m.seq),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
                None => {
                    // Closed (1013: the node could not read what was missed): sync again
                    // from what is held.
                    let held = live.positions();
                    live = bob.connect().await.unwrap().without_dedupe();
                    connections += 1;
                    received.extend(sync(&mut live, held).await.iter().map(|m| m.seq));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} messages arrived", received.len()));
    let first_wrong = received.iter().zip(1..).position(|(seq, due)| *seq != due);
    assert!(
        first_wrong.is_none() && received.len() == 602,
        "not every message once in order over {connections} connection(s): {} frames, \
         the first out of place at {first_wrong:?}",
        received.len()
    );
}

/// The readiness text of `node` (200 expected).
async fn readyz(node: &ProcessServer) -> String {
    let (status, _, body) = node
        .client()
        .raw(Method::GET, "/readyz", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

/// One sender spreading sends over three nodes gets one budget (Redis holds it), within
/// 10 % of the configured rate; with Redis unreachable, sends go on under each node's own
/// limit and `/readyz` says the limits are degraded; back again, they are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_limit_holds_across_three_nodes_and_degrades_to_per_node_without_redis() {
    const PER_MINUTE: u32 = 60;
    let dep = Deployment::new().await;
    let redis =
        std::env::var("CUSTODIA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let hostport = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    assert!(
        tokio::net::TcpStream::connect(&hostport).await.is_ok(),
        "cannot reach Redis at {redis}: start it (redis-server --daemonize yes) or set CUSTODIA_TEST_REDIS"
    );
    let proxy = TcpProxy::start(&hostport).await;
    let mut env = dep.env(dep.database.url(), &dep.nats_url);
    for (k, v) in [
        ("CUSTODIA_REDIS_URL", format!("redis://{}", proxy.addr)),
        ("CUSTODIA_SENDS_PER_MINUTE", PER_MINUTE.to_string()),
        (
            "CUSTODIA_NEW_ACCOUNT_SENDS_PER_MINUTE",
            PER_MINUTE.to_string(),
        ),
    ] {
        env.push((k.to_owned(), v));
    }
    let nodes: Vec<ProcessServer> = (0..3)
        .map(|i| {
            ProcessServer::start_with_env(
                &bin(),
                dep.dir.path(),
                None,
                &dep.dir.path().join(format!("node{i}.log")),
                &env,
            )
        })
        .collect();
    let alice = user(&nodes[0], "alice").await;
    user(&nodes[1], "bob").await;
    let chat = alice.open_direct("bob").await.unwrap().id;
    let sessions: Vec<Client> = nodes.iter().map(|n| on(n, &alice)).collect();
    assert_eq!(readyz(&nodes[0]).await, "ready");

    // Three times the budget, round robin over the nodes, as fast as they answer.
    let started = std::time::Instant::now();
    let mut accepted = 0u32;
    for i in 0..3 * PER_MINUTE {
        match sessions[i as usize % 3]
            .send(chat, &format!("m{i}"), "hi")
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e.status(), Some(429), "{e}"),
        }
    }
    // The budget over the time taken: the burst, plus what refilled meanwhile.
    let elapsed = started.elapsed().as_secs_f64();
    let budget = f64::from(PER_MINUTE) * (1.0 + elapsed / 60.0);
    assert!(
        (f64::from(accepted) - budget).abs() <= budget * 0.1,
        "{accepted} sends accepted over three nodes in {elapsed:.1} s; one budget is {budget:.1}"
    );

    // Redis unreachable: sends go on, under the node's own limit; /readyz says so.
    proxy.cut();
    let mut fallback = 0u32;
    for i in 0..2 * PER_MINUTE {
        match sessions[0].send(chat, &format!("d{i}"), "hi").await {
            Ok(_) => fallback += 1,
            Err(e) => assert_eq!(e.status(), Some(429), "{e}"),
        }
    }
    assert!(
        fallback >= PER_MINUTE && f64::from(fallback) <= f64::from(PER_MINUTE) * 1.1,
        "{fallback} sends through one node on its own limit of {PER_MINUTE}"
    );
    assert!(readyz(&nodes[0]).await.contains("degraded"));

    // Back: shared again (the node reconnects within a second or so).
    proxy.restore();
    tokio::time::timeout(PATIENCE, async {
        while readyz(&nodes[0]).await != "ready" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("/readyz says ready once Redis answers again");
}
