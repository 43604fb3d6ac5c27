//! TLS, operations endpoints, history paging, and the `custodia chat` walkthrough.

mod common;

use std::path::PathBuf;
use std::process::Command;

use custodia_sdk::Method;
use custodia_test::{ADULT_DOB, PASSWORD, ProcessServer, TestServer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::tls_client_config as client_config;

#[tokio::test]
async fn only_tls13_is_spoken_and_there_is_no_plaintext_listener() {
    let server = TestServer::start().await;
    let addr = server.url().trim_start_matches("https://").to_owned();
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();

    let tls13 = tokio_rustls::TlsConnector::from(client_config(&ca, &[&rustls::version::TLS13]));
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let stream = tls13
        .connect(name.clone(), tcp)
        .await
        .expect("TLS 1.3 handshake");
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );

    let tls12 = tokio_rustls::TlsConnector::from(client_config(&ca, &[&rustls::version::TLS12]));
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(
        tls12.connect(name, tcp).await.is_err(),
        "a TLS 1.2-only client must be refused"
    );

    // Plain HTTP on the same port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(common::PATIENCE, tcp.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "plaintext HTTP was served"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    alice.send(chat.id, "m", "counted").await.unwrap();
    let anon = server.client();
    for (path, expect) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let (status, _, body) = anon
            .raw(Method::GET, path, "text/plain", Vec::new())
            .await
            .unwrap();
        assert_eq!(
            (status, String::from_utf8(body).unwrap().as_str()),
            (200, expect)
        );
    }
    // Metrics are the operator's: not on the public listener without its token.
    let (status, ctype, _) = anon
        .raw(Method::GET, "/metrics", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!((status, ctype.as_str()), (401, "application/problem+json"));
    let forged = server
        .client()
        .with_token("cmt_not-the-operators-token-at-all-000000");
    let (status, _, _) = forged
        .raw(Method::GET, "/metrics", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 401);
    let token = std::fs::read_to_string(server.data_dir().join("metrics.token")).unwrap();
    let operator = server.client().with_token(token.trim());
    let (status, ctype, body) = operator
        .raw(Method::GET, "/metrics", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("custodia_sends_total 1"), "{text}");
    for name in [
        "custodia_deliveries_total",
        "custodia_sessions",
        "custodia_commit_batch_size",
        "custodia_commit_seconds",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
}

#[tokio::test]
async fn history_pages_in_both_directions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    for i in 1..=25 {
        alice
            .send(chat.id, &i.to_string(), &format!("n{i}"))
            .await
            .unwrap();
    }
    let seqs =
        |p: &custodia_sdk::proto::HistoryPage| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();

    let newest = alice.history(chat.id, None, None, 10).await.unwrap();
    assert_eq!(
        (seqs(&newest), newest.has_more),
        ((16..=25).collect(), true)
    );
    let older = alice.history(chat.id, None, Some(16), 10).await.unwrap();
    assert_eq!((seqs(&older), older.has_more), ((6..=15).collect(), true));
    let oldest = alice.history(chat.id, None, Some(6), 10).await.unwrap();
    assert_eq!((seqs(&oldest), oldest.has_more), ((1..=5).collect(), false));

    let forward = alice.history(chat.id, Some(20), None, 10).await.unwrap();
    assert_eq!(
        (seqs(&forward), forward.has_more),
        ((21..=25).collect(), false)
    );
    let middle = alice.history(chat.id, Some(3), None, 4).await.unwrap();
    assert_eq!((seqs(&middle), middle.has_more), ((4..=7).collect(), true));
    assert_eq!(alice.full_history(chat.id).await.unwrap().len(), 25);
}

/// Runs `custodia chat …` as README's walkthrough does and returns its stdout.
fn chat(
    config_dir: &std::path::Path,
    server: &ProcessServer,
    ca: &std::path::Path,
    args: &[&str],
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_custodia"))
        .arg("chat")
        .args(args)
        .env("CUSTODIA_SERVER", &server.url)
        .env("CUSTODIA_CA_CERT", ca)
        .env("CUSTODIA_CONFIG_DIR", config_dir)
        .env("CUSTODIA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_readme_walkthrough_works_with_the_chat_client() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = ProcessServer::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_custodia")),
        &data,
        None,
        &work.path().join("log"),
    );
    let ca = data.join("tls/ca.pem");
    let cfg = work.path().join("cfg");
    let c = |args: &[&str]| chat(&cfg, &server, &ca, args);

    let registered = c(&[
        "--profile",
        "alice",
        "register",
        "alice",
        "--date-of-birth",
        ADULT_DOB,
    ]);
    assert!(registered.contains("registered alice"), "{registered}");
    assert!(
        registered.contains("now run: custodia chat --profile alice login alice"),
        "the hint names the profile the session must go to: {registered}"
    );
    c(&[
        "--profile",
        "bob",
        "register",
        "bob",
        "--date-of-birth",
        ADULT_DOB,
    ]);
    c(&["--profile", "alice", "login", "alice"]);
    c(&["--profile", "bob", "login", "bob"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg.join("alice.session"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the saved token must be private");

    assert!(c(&["--profile", "alice", "send", "bob", "hello Bob"]).contains("sent #1"));
    c(&["--profile", "bob", "send", "alice", "hi Alice"]);
    let history = c(&["--profile", "alice", "history", "bob"]);
    assert!(
        history.contains("alice: hello Bob") && history.contains("bob: hi Alice"),
        "{history}"
    );
    let list = c(&["--profile", "bob", "conversations"]);
    assert!(
        list.contains("alice") && list.contains("hi Alice"),
        "{list}"
    );
    // A hostile message: one line, escapes shown, no escape byte reaches the terminal.
    let hostile = "ok\n#9 00:00 alice: forged\x1b[2J\x1b]0;owned\x07\u{202e}txt";
    c(&["--profile", "bob", "send", "alice", hostile]);
    let history = c(&["--profile", "alice", "history", "bob"]);
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(
        !history.contains('\x1b') && !history.contains('\u{202e}'),
        "{history:?}"
    );
    assert!(
        history.contains("bob: ok\\n#9 00:00 alice: forged\\u{1b}[2J"),
        "{history}"
    );
    let list = c(&["--profile", "alice", "conversations"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(!list.contains('\x1b'), "{list:?}");
    let group = c(&["--profile", "alice", "group", "create", "book club", "bob"]);
    assert!(group.contains("2 members"), "{group}");
    // Alice reports bob's message #2 from the command line, with her franking key.
    let reported = c(&[
        "--profile",
        "alice",
        "report",
        "bob",
        "2",
        "--category",
        "harassment",
        "--comment",
        "rude",
    ]);
    assert!(reported.contains("reported 1 message (case "), "{reported}");

    // `listen` catches up on what bob missed, then prints live messages.
    let mut listen = Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args(["chat", "--profile", "bob", "listen"])
        .env("CUSTODIA_SERVER", &server.url)
        .env("CUSTODIA_CA_CERT", &ca)
        .env("CUSTODIA_CONFIG_DIR", &cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = listen.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("live one");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    // Wait until bob's listener has caught up (it prints the missed messages first).
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !std::fs::read_to_string(cfg.join("bob.session"))
        .unwrap()
        .contains("seen.")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "listen did not catch up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    c(&["--profile", "alice", "send", "bob", "live one"]);
    let seen = lines.join().unwrap();
    let _ = listen.kill();
    let _ = listen.wait();
    assert!(seen.iter().any(|l| l.contains("hello Bob")), "{seen:?}");
    assert!(seen.last().unwrap().contains("alice: live one"), "{seen:?}");
}

/// A real server, and `custodia chat` profiles of members registered and signed in there.
struct Members {
    work: tempfile::TempDir,
    bin: PathBuf,
    server: ProcessServer,
    ca: PathBuf,
    cfg: PathBuf,
}

impl Members {
    fn start(names: &[&str]) -> Self {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_custodia"));
        let server = ProcessServer::start(&bin, &data, None, &work.path().join("log"));
        let (ca, cfg) = (data.join("tls/ca.pem"), work.path().join("cfg"));
        for name in names {
            let profile = ["--profile", name];
            chat(
                &cfg,
                &server,
                &ca,
                &[
                    &profile[..],
                    &["register", name, "--date-of-birth", ADULT_DOB],
                ]
                .concat(),
            );
            chat(
                &cfg,
                &server,
                &ca,
                &[&profile[..], &["login", name]].concat(),
            );
        }
        Self {
            work,
            bin,
            server,
            ca,
            cfg,
        }
    }
}

/// A program running on a pseudo-terminal of its own (its session's controlling
/// terminal), as in a terminal window; its screen's lines arrive on `lines`.
struct Terminal {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Terminal {
    fn run(program: &std::path::Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        use std::io::BufRead;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::OpenOptionsExt;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        // O_NOCTTY: never this test's own controlling terminal.
        let noctty = rustix::fs::OFlags::NOCTTY.bits() as i32;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(noctty)
            .open(std::ffi::OsStr::from_bytes(name.as_bytes()))
            .unwrap();
        // setsid(1) --ctty: a new session whose controlling terminal is this one.
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = cmd.spawn().expect("spawning on the terminal");
        drop(cmd);
        let (tx, lines) = std::sync::mpsc::channel();
        let screen = std::fs::File::from(master);
        std::thread::spawn(move || {
            // Ends with EIO once the program exits and the terminal closes.
            for line in std::io::BufReader::new(screen).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim_end_matches('\r').to_owned()).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `chat listen` in a real terminal (a pseudo-terminal): a direct conversation is named
/// by the peer and a group by its title, being added to a group and members joining and
/// leaving are shown, and times are in the member's own time zone (`TZ`).
#[tokio::test]
async fn chat_listen_in_a_terminal_names_each_conversation_and_shows_who_joins_and_leaves() {
    let m = Members::start(&["alice", "bob", "carol"]);
    let (bin, server, ca, cfg) = (&m.bin, &m.server, &m.ca, &m.cfg);
    let c = |args: &[&str]| chat(cfg, server, ca, args);

    // bob listens in a terminal 5 h 30 min east of UTC.
    let term = Terminal::run(
        bin,
        &["chat", "--profile", "bob", "listen"],
        &[
            ("TZ", "XST-05:30".as_ref()),
            ("CUSTODIA_SERVER", server.url.as_ref()),
            ("CUSTODIA_CA_CERT", ca.as_ref()),
            ("CUSTODIA_CONFIG_DIR", cfg.as_ref()),
        ],
    );
    let rx = &term.lines;
    let mut screen: Vec<String> = Vec::new();
    let mut expect = |wanted: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(common::PATIENCE)
                .unwrap_or_else(|_| panic!("no {wanted:?} on bob's terminal: {screen:#?}"));
            screen.push(line.clone());
            if line.contains(wanted) {
                return line;
            }
        }
    };
    expect("listening; Ctrl-C to stop");

    let before = time::OffsetDateTime::now_utc();
    c(&["--profile", "alice", "send", "bob", "hello Bob"]);
    let after = time::OffsetDateTime::now_utc();
    let dm = expect("hello Bob");
    let east = time::UtcOffset::from_hms(5, 30, 0).unwrap();
    let hhmm = |t: time::OffsetDateTime| {
        let t = t.to_offset(east);
        format!("{:02}:{:02}", t.hour(), t.minute())
    };
    assert!(
        dm == format!("[alice] #1 {} alice: hello Bob", hhmm(before))
            || dm == format!("[alice] #1 {} alice: hello Bob", hhmm(after)),
        "a direct conversation is named by the peer, at bob's local time: {dm:?}"
    );

    let created = c(&[
        "--profile",
        "alice",
        "group",
        "create",
        "book club",
        "bob",
        "carol",
    ]);
    let group = created.split_whitespace().nth(2).unwrap().to_owned();
    assert_eq!(expect("you were added"), "[book club] you were added");
    assert_eq!(expect("carol joined"), "[book club] carol joined");
    c(&["--profile", "alice", "send", &group, "welcome, both"]);
    let line = expect("welcome, both");
    assert!(
        line.starts_with("[book club] #1 ") && line.ends_with(" alice: welcome, both"),
        "a group is named by its title: {line:?}"
    );
    c(&["--profile", "alice", "group", "remove", &group, "carol"]);
    assert_eq!(expect("carol left"), "[book club] carol left");
    c(&["--profile", "alice", "send", "bob", "and again"]);
    assert!(expect("and again").starts_with("[alice] #2 "));

    drop(term);
    assert!(
        !screen.iter().any(|l| l.contains('\x1b')),
        "no escape sequences: {screen:#?}"
    );
}

/// Unmounts a file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk: sends are refused with 503 and `/readyz` answers 503 with the reason at
/// once; when space returns, `/readyz` answers 200 and sends are stored again, without a
/// restart; hundreds of refusals are logged a few times, not once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_node_not_ready_until_space_returns() {
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("running mount");
    assert!(
        mounted.success(),
        "this test fills a 32 MiB tmpfs, which needs root (CAP_SYS_ADMIN) to mount"
    );
    let _unmount = Mounted(small.clone());
    let log = work.path().join("server.log");
    let server = ProcessServer::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_custodia")),
        &small.join("data"),
        None,
        &log,
    );
    let mut alice = server.client();
    alice.register("alice", PASSWORD, ADULT_DOB).await.unwrap();
    alice.login("alice", PASSWORD, "t").await.unwrap();
    let bob = server.client();
    bob.register("bob", PASSWORD, ADULT_DOB).await.unwrap();
    let chat = alice.open_direct("bob").await.unwrap();
    let anon = server.client();
    let readyz = || anon.raw(Method::GET, "/readyz", "text/plain", Vec::new());
    assert_eq!(readyz().await.unwrap().0, 200);

    // Take the rest of the space with a file that can be given back.
    let filler = small.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 1 << 16]).is_ok() {}
    }
    let body = "x".repeat(8 * 1024);
    let mut refused = 0;
    for k in 0..20_000 {
        match alice.send(chat.id, &format!("m{k}"), &body).await {
            Ok(_) => assert_eq!(refused, 0, "a send stored after sends were refused"),
            Err(e) => {
                assert_eq!(e.status(), Some(503), "{e}");
                if refused == 0 {
                    // Not ready at once, saying why.
                    let (status, _, why) = readyz().await.unwrap();
                    let why = String::from_utf8_lossy(&why).into_owned();
                    assert_eq!(status, 503, "{why}");
                    assert!(why.contains("full"), "{why}");
                }
                refused += 1;
                if refused == 500 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 500, "the disk never filled");
    assert_eq!(readyz().await.unwrap().0, 503);

    std::fs::remove_file(&filler).unwrap();
    let mut answers = Vec::new();
    for _ in 0..50 {
        let status = readyz().await.unwrap().0;
        answers.push(status);
        if status == 200 {
            break;
        }
    }
    assert_eq!(
        answers.last(),
        Some(&200),
        "ready again once space returns: {answers:?}"
    );
    alice.send(chat.id, "after", "stored again").await.unwrap();

    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let loud = logged
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains(" WARN"))
        .count();
    assert!(
        loud < 50,
        "{loud} warnings and errors for 500 refused sends"
    );
    drop(server);
}

/// The DNS names and IP addresses of the certificate a server presents to a new
/// connection.
async fn presented_names(addr: &str, ca: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let tls = tokio_rustls::TlsConnector::from(client_config(ca, &[&rustls::version::TLS13]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tls
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("a TLS handshake the CA verifies");
    let der = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect()
}

/// The cluster walkthrough's `cp -r node-a node-b` copies no CA key: node b serves TLS
/// from the copy; `custodia admin tls issue` gives it its own certificate, which it
/// presents after SIGHUP, while a WebSocket opened before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_copied_without_the_ca_key_serves_tls_and_takes_its_own_certificate_on_sighup() {
    let work = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_custodia"));
    let (a, b) = (work.path().join("node-a"), work.path().join("node-b"));
    let log = work.path().join("server.log");
    ProcessServer::start(&bin, &a, None, &log).kill();
    assert!(
        work.path().join("node-a-ca/ca.key").is_file(),
        "the CA lives beside node a"
    );
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(copied.success());
    let keys = Command::new("find")
        .arg(&b)
        .args(["-name", "ca.key"])
        .output()
        .unwrap();
    assert!(keys.stdout.is_empty(), "no CA key in the copy");

    let node_b = ProcessServer::start(&bin, &b, None, &log);
    let mut c = node_b.client();
    c.register("alice", PASSWORD, ADULT_DOB).await.unwrap();
    c.login("alice", PASSWORD, "t").await.unwrap();
    let mut live = c.connect().await.unwrap();
    live.sync(Default::default()).await.unwrap();
    let ca = std::fs::read(b.join("tls/ca.pem")).unwrap();
    let addr = node_b.listen_addr();
    assert!(
        presented_names(&addr, &ca)
            .await
            .contains(&"localhost".to_owned())
    );

    let issued = Command::new(&bin)
        .args(["admin", "tls", "issue", "--ca-dir"])
        .arg(work.path().join("node-a-ca"))
        .arg("--data-dir")
        .arg(&b)
        .args(["--name", "node-b.internal", "--name", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    node_b.hangup();
    let mut names = Vec::new();
    for _ in 0..500 {
        names = presented_names(&addr, &ca).await;
        if names.contains(&"node-b.internal".to_owned()) {
            break;
        }
    }
    assert_eq!(
        names,
        ["node-b.internal"],
        "node b presents its own certificate"
    );

    // The connection opened before the reload is still there.
    live.ping().await.unwrap();
    loop {
        match live.next().await {
            Some(Ok(custodia_sdk::proto::ServerFrame::Pong)) => break,
            Some(Ok(_)) => {}
            other => panic!("the WebSocket did not survive the reload: {other:?}"),
        }
    }

    // Without a CA key, the tool says what to give it.
    let refused = Command::new(&bin)
        .args(["admin", "tls", "issue", "--ca-dir"])
        .arg(work.path().join("nowhere"))
        .arg("--data-dir")
        .arg(&b)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds no CA key"));
}

/// `serve` takes every listener as a flag (flags win over the environment), and says where
/// each listens.
#[test]
fn serve_takes_each_listener_as_a_flag() {
    use std::io::BufRead;
    let bin = env!("CARGO_BIN_EXE_custodia");
    let help = Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in ["--listen", "--staff-listen", "--audit-listen"] {
        assert!(help.contains(flag), "serve --help lists {flag}: {help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--staff-listen",
            "127.0.0.1:0",
            "--audit-listen",
            "127.0.0.1:0",
        ])
        // The environment says otherwise: the flags win.
        .env("CUSTODIA_STAFF_LISTEN", "127.0.0.1:1")
        .env("CUSTODIA_AUDIT_LISTEN", "127.0.0.1:1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ports = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line
            .split_whitespace()
            .find(|w| w.starts_with("https://127.0.0.1:"))
        {
            let port: u16 = url
                .trim_start_matches("https://127.0.0.1:")
                .trim_end_matches('/')
                .parse()
                .unwrap();
            ports.push(port);
        }
        if line.contains("staff API:") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ports.len(), 3, "client, auditor and staff URLs: {ports:?}");
    assert!(
        ports
            .iter()
            .all(|p| *p > 1 && ![8443, 8444, 8446].contains(p)),
        "each on a port picked for it: {ports:?}"
    );
}

/// `serve --print-config` shows each setting's effective value and where it came from
/// (flag over environment over file over default), with secrets hidden, and serves nothing.
#[test]
fn print_config_shows_each_settings_source_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custodia.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9443\"\nmax_connections = 77\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--staff-listen", "127.0.0.1:9446", "--print-config"])
        .env("CUSTODIA_MAX_CONNECTIONS", "88")
        .env("CUSTODIA_KEYRING_PASSPHRASE", "correct horse battery")
        .env("CUSTODIA_REDIS_URL", "redis://limits:s3cret@127.0.0.1:6379")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
            .to_owned()
    };
    assert!(line("listen").contains("\"127.0.0.1:9443\"") && line("listen").contains("# file"));
    assert!(line("staff_listen").ends_with("# command-line flag"));
    assert!(line("max_connections").starts_with("max_connections = 88"));
    assert!(line("max_connections").ends_with("# environment CUSTODIA_MAX_CONNECTIONS"));
    assert!(line("audit_listen").ends_with("# default"));
    assert!(line("redis_url").contains("redis://limits:***@127.0.0.1:6379"));
    assert_eq!(
        line("keyring_passphrase").split("    #").next(),
        Some("keyring_passphrase = \"***\"")
    );
    assert!(!text.contains("s3cret") && !text.contains("correct horse"));
    assert!(
        !dir.path().join("custodia-data").exists(),
        "nothing was created"
    );
}

/// Self-export: `chat export` writes a zip of the member's own data — their
/// conversations with every message they can see, and no one else's — streamed: the
/// server's peak memory barely moves while it sends an export far larger than that.
/// 20,000 messages of 1 KiB here (CUSTODIA_EXPORT_MESSAGES=100000 for the 100,000 of
/// the acceptance: about two minutes of sending in a debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_exports_their_data_as_a_streamed_zip_of_their_conversations_only() {
    let messages_sent: usize = std::env::var("CUSTODIA_EXPORT_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let filler = if messages_sent >= 100_000 { 4 } else { 38 };
    let m = Members::start(&["alice", "bob", "carol"]);
    let (work, server, ca, cfg) = (&m.work, &m.server, &m.ca, &m.cfg);
    let c = |args: &[&str]| chat(cfg, server, ca, args);
    c(&[
        "--profile",
        "bob",
        "send",
        "carol",
        "between bob and carol only",
    ]);
    c(&["--profile", "bob", "send", "alice", "hello alice"]);

    // Alice's long history, sent pipelined over one WebSocket.
    let mut alice = server.client();
    alice.login("alice", PASSWORD, "bulk").await.unwrap();
    let chat_id = alice.open_direct("bob").await.unwrap().id;
    let mut conn = alice.connect().await.unwrap();
    common::sync(&mut conn, Default::default()).await;
    let (mut tx, mut rx) = conn.split();
    let sending = tokio::spawn(async move {
        for i in 0..messages_sent {
            let text = format!(
                "message {i:06} {}",
                "lorem ipsum dolor sit amet ".repeat(filler)
            );
            tx.send(chat_id, &format!("m{i}"), &text).await.unwrap();
        }
        tx
    });
    let mut acked = 0;
    while acked < messages_sent {
        match tokio::time::timeout(common::PATIENCE, rx.next()).await {
            Ok(Some(Ok(custodia_sdk::proto::ServerFrame::Ack(_)))) => acked += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("the bulk send stopped after {acked}: {other:?}"),
        }
    }
    drop(sending.await);

    let before = server.peak_rss_bytes();
    let file = work.path().join("alice-export.zip");
    let said = c(&["--profile", "alice", "export", file.to_str().unwrap()]);
    assert!(said.contains("README.txt"), "{said}");
    let grown = server.peak_rss_bytes().saturating_sub(before);

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&file).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    let conversation = format!("conversations/{chat_id}.json");
    let mut expected = [
        "README.txt",
        "access-notices.json",
        "blocks.json",
        "connections.json",
        &conversation,
        "conversations.json",
        "profile.json",
        "settings.json",
    ];
    expected.sort();
    assert_eq!(
        names, expected,
        "alice's one conversation, and none of bob and carol's"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(&conversation).unwrap(), &mut text).unwrap();
    let messages: Vec<custodia_sdk::proto::Message> = serde_json::from_str(&text).unwrap();
    assert_eq!(messages.len(), messages_sent + 1);
    assert_eq!(messages[0].body.as_deref(), Some("hello alice"));
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=messages_sent as u64 + 1).collect::<Vec<_>>());
    let mut profile = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("profile.json").unwrap(), &mut profile).unwrap();
    assert!(profile.contains("\"username\": \"alice\""), "{profile}");
    let mut everything = Vec::new();
    for i in 0..zip.len() {
        std::io::Read::read_to_end(&mut zip.by_index(i).unwrap(), &mut everything).unwrap();
    }
    assert!(
        !String::from_utf8_lossy(&everything).contains("between bob and carol only"),
        "no one else's conversation"
    );

    // Flat: the JSON alone is far larger than what the server's peak grew by.
    let json = text.len() as u64;
    assert!(json > 15 << 20, "a large export: {json} bytes of JSON");
    assert!(
        grown < json / 4,
        "the server's peak memory grew by {grown} bytes for {json} bytes of JSON"
    );
    eprintln!("export: {json} bytes of JSON, server peak grew {grown} bytes");
}

/// With `pkcs11_module`, the KEKs live in the token (SoftHSM2 here): the data directory
/// holds no keyring, messages and staff sign-in work across a restart, and a wrong PIN
/// stops the server with an error that says what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_kek_in_a_token_the_data_directory_holds_no_key_encryption_key() {
    let token = custodia_test::SoftToken::new("custodia-ops");
    let mut server = TestServer::start_with(token.configure(Default::default())).await;
    assert!(
        !server.data_dir().join("keyring").exists(),
        "no keyring file: the KEKs are in the token"
    );
    let alice = server.user("alice").await;
    server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap().id;
    alice
        .send(chat, "k1", "sealed by the token's KEK")
        .await
        .unwrap();
    server.admin().await;
    server.restart().await;
    let bob = server.login("bob").await;
    let seen = bob.full_history(chat).await.unwrap();
    assert_eq!(seen[0].body.as_deref(), Some("sealed by the token's KEK"));

    server.stop().await;
    let wrong = custodia_server::RawConfig {
        pkcs11_pin: Some("not the pin".into()),
        ..token.configure(Default::default())
    };
    let refused = custodia_server::start(
        custodia_server::RawConfig {
            data_dir: Some(server.data_dir().to_owned()),
            listen: Some("127.0.0.1:0".into()),
            audit_listen: Some("127.0.0.1:0".into()),
            staff_listen: Some("127.0.0.1:0".into()),
            ..wrong
        }
        .validate()
        .unwrap(),
    )
    .await;
    let why = format!("{:#}", refused.err().expect("a wrong PIN stops the start"));
    assert!(why.contains("check the PIN"), "{why}");
}
