//! Staff accounts end to end, on the staff API's own TLS listener: the first admin signs
//! in with password and TOTP, manages staff, roles are enforced, codes work once, sign-ins
//! are limited, every step is in the audit log, and when the log cannot be written staff
//! actions fail while users go on messaging.

use std::collections::HashMap;

use custodia_sdk::{Method, SdkError};
use custodia_server::RawConfig;
use custodia_server::logcmd::{WitnessPolicy, verify};
use custodia_test::{TestServer, TestWitness, totp_code};

fn status(e: &SdkError) -> u16 {
    match e {
        SdkError::Api(p) => p.status,
        other => panic!("expected a problem answer, got {other}"),
    }
}

#[tokio::test]
async fn staff_are_proposed_approved_by_a_second_person_and_enrol_themselves() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auditor = server.auditor().await;
    let me = admin.staff_me().await.unwrap();
    assert_eq!((me.username.as_str(), me.role.as_str()), ("admin", "admin"));

    // The admin's proposal creates nothing yet: 202, pending.
    let proposal = admin.staff_create("mia", "moderator").await.unwrap();
    assert_eq!(proposal.status, "pending");
    assert!(
        admin
            .staff_accounts()
            .await
            .unwrap()
            .iter()
            .all(|s| s.username != "mia")
    );
    assert_eq!(
        status(&admin.staff_create("rex", "superuser").await.unwrap_err()),
        422
    );
    // The proposer cannot approve it; the auditor (the one admin's second person) can,
    // and receives the enrolment code.
    assert_eq!(
        status(
            &admin
                .staff_decide_change(proposal.id, true)
                .await
                .unwrap_err()
        ),
        403
    );
    let decided = auditor
        .staff_decide_change(proposal.id, true)
        .await
        .unwrap();
    assert_eq!(decided.change.status, "approved");
    let code = decided.enrolment_code.expect("the approver gets the code");
    assert_eq!(
        status(&admin.staff_create("mia", "auditor").await.unwrap_err()),
        409
    );
    // Listed as not enrolled; no password works until mia enrols herself.
    let listed = admin.staff_accounts().await.unwrap();
    assert!(listed.iter().any(|s| s.username == "mia" && !s.enrolled));
    let api = server.staff_client();
    assert_eq!(
        status(
            &api.staff_enrol("mia", "cse_not-the-code", "mia's own passphrase")
                .await
                .unwrap_err()
        ),
        422
    );
    let enrolled = api
        .staff_enrol("mia", &code, "mia's own passphrase")
        .await
        .unwrap();
    assert!(enrolled.totp_uri.starts_with("otpauth://totp/"));
    let mia = server
        .staff("mia", "mia's own passphrase", &enrolled.totp_uri)
        .await;
    assert_eq!(mia.staff_me().await.unwrap().role, "moderator");
    // A moderator manages no staff and decides no staff changes.
    assert_eq!(
        status(&mia.staff_create("eve", "admin").await.unwrap_err()),
        403
    );
    assert_eq!(status(&mia.staff_accounts().await.unwrap_err()), 403);
    assert_eq!(admin.staff_accounts().await.unwrap().len(), 3);
    // An admin cannot change their own account.
    assert_eq!(
        status(
            &admin
                .staff_update(me.id, "auditor", true)
                .await
                .unwrap_err()
        ),
        422
    );
    // A promotion waits for the second person; a deactivation applies at once and ends
    // the moderator's session.
    let promote = admin
        .staff_update(proposal.staff_id, "senior_moderator", true)
        .await
        .unwrap();
    assert_eq!(promote.status, "pending");
    assert_eq!(mia.staff_me().await.unwrap().role, "moderator");
    let off = admin
        .staff_update(proposal.staff_id, "moderator", false)
        .await
        .unwrap();
    assert_eq!(off.status, "approved");
    assert_eq!(status(&mia.staff_me().await.unwrap_err()), 401);
    let changes = auditor.staff_changes().await.unwrap();
    assert_eq!(changes.len(), 3);
}

#[tokio::test]
async fn staff_change_their_own_password_and_totp() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let creds = server.add_staff(&admin, "sam", "senior_moderator").await;
    let sam = server.staff("sam", &creds.password, &creds.totp_uri).await;
    assert_eq!(
        status(
            &sam.staff_change_password("not my password", "another passphrase")
                .await
                .unwrap_err()
        ),
        401
    );
    sam.staff_change_password(&creds.password, "another passphrase")
        .await
        .unwrap();
    let renewed = sam.staff_reenrol_totp("another passphrase").await.unwrap();
    assert_ne!(renewed.totp_uri, creds.totp_uri);
    let mut old = server.staff_client();
    assert_eq!(
        status(
            &old.staff_sign_in("sam", &creds.password, &totp_code(&creds.totp_uri))
                .await
                .unwrap_err()
        ),
        401
    );
    server
        .staff("sam", "another passphrase", &renewed.totp_uri)
        .await;
}

#[tokio::test]
async fn codes_work_once_and_sign_ins_are_limited_and_logged() {
    let server = TestServer::start().await;
    let first = server.first_admin().await;
    let code = totp_code(&first.totp_uri);
    let mut c = server.staff_client();
    c.staff_sign_in("admin", &first.password, &code)
        .await
        .unwrap();
    // The same code again, even with the right password: refused.
    let mut again = server.staff_client();
    let err = again
        .staff_sign_in("admin", &first.password, &code)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 401);
    assert!(err.to_string().contains("one-time code"), "{err}");
    assert_eq!(
        status(
            &again
                .staff_sign_in("admin", &first.password, "12345x")
                .await
                .unwrap_err()
        ),
        401
    );
    // Staff sign-in is limited to 5 attempts per account in five minutes.
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(
            again
                .staff_sign_in("admin", "wrong password!", "000000")
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(status(codes.last().unwrap()), 429);

    // Every sign-in and refusal is in the log, which verifies; none names the password.
    let work = tempfile::tempdir().unwrap();
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).unwrap();
    let auditor = custodia_sdk::Client::new(server.audit_url(), &ca).unwrap();
    let cp = verify(
        &auditor,
        &server.log_key(),
        &WitnessPolicy::default(),
        &work.path().join("state"),
    )
    .await
    .unwrap();
    // The founding (one entry); both founders enrolled (an enrolment counts against the
    // account's sign-in budget); signed in; refused (replay); refused (bad code); one
    // refused (bad password) before the limit; the limited attempts reach no account.
    assert_eq!(cp.size, 7, "one entry per staff step");
    let log_bytes = std::fs::read(server.data_dir().join("custodia.db")).unwrap();
    assert!(
        !log_bytes
            .windows(first.password.len())
            .any(|w| w == first.password.as_bytes()),
        "the admin password is nowhere in the database"
    );
}

#[tokio::test]
async fn the_staff_api_is_only_on_its_own_listener() {
    let server = TestServer::start().await;
    let user_side = server.client();
    let (status, ctype, _) = user_side
        .raw(
            Method::POST,
            "/v1/staff/sessions",
            "application/json",
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, ctype.as_str()), (404, "application/problem+json"));
    let staff_side = server.staff_client();
    let (status, _, _) = staff_side
        .raw(
            Method::POST,
            "/v1/accounts",
            "application/json",
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    // Bad input on the staff API: clear 4xx problems.
    for (body, ctype, expected) in [
        (&b"{not json"[..], "application/json", 400),
        (&b"{\"username\":\"admin\"}"[..], "application/json", 422),
        (&b"username=admin"[..], "text/plain", 415),
    ] {
        let (status, got, text) = staff_side
            .raw(Method::POST, "/v1/staff/sessions", ctype, body.to_vec())
            .await
            .unwrap();
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&text));
        assert_eq!(got, "application/problem+json");
    }
    let (status, _, _) = staff_side
        .raw(Method::GET, "/v1/staff/me", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn without_the_audit_log_staff_actions_fail_and_users_go_on_messaging() {
    // A log that needs its witness to keep checkpoints: stopping the witness makes the
    // log unable to take entries.
    let mut server = TestServer::start().await;
    let admin = server.first_admin().await;
    let (admin_password, admin_totp) = (admin.password.to_string(), admin.totp_uri.to_string());
    server.stop().await;
    let mut witness = TestWitness::start("witness.test/w", vec![server.log_key()]).await;
    server
        .restart_fresh_with(RawConfig {
            witnesses: Some(vec![witness.config()]),
            ..RawConfig::default()
        })
        .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    let admin = server.staff("admin", &admin_password, &admin_totp).await;
    // A moderator with an approved grant over the conversation.
    let m = server.new_staff(&admin, "mod", "moderator").await;
    let sen = server.new_staff(&admin, "sen", "senior_moderator").await;
    alice.send(chat.id, "reported", "a message").await.unwrap();
    let case = bob
        .report(chat.id, &[1], "spam", None)
        .await
        .unwrap()
        .case_id;
    let grant = m
        .request_access(&custodia_sdk::proto::staff::CreateAccessRequest {
            case_id: case,
            reason: "report_review".into(),
            from_seq: 1,
            to_seq: 1,
            tier: "content".into(),
            duration_secs: 3600,
            justification: "review".into(),
        })
        .await
        .unwrap();
    sen.decide(grant.id, true, "ok").await.unwrap();

    witness.stop().await;
    let err = m.read_grant(grant.id).await.unwrap_err();
    assert_eq!(status(&err), 503, "no read without its log entry: {err}");
    assert!(!err.to_string().contains("a message"));
    let err = admin.staff_create("otto", "auditor").await.unwrap_err();
    assert_eq!(status(&err), 503, "{err}");
    let mut other = server.staff_client();
    let err = other
        .staff_sign_in("admin", &admin_password, "000000")
        .await
        .unwrap_err();
    assert_eq!(status(&err), 503, "not even a refusal goes unlogged: {err}");
    assert!(!err.to_string().contains(&admin_password));

    // Users are not affected.
    alice
        .send(chat.id, "during-outage", "still here")
        .await
        .unwrap();
    let page = bob.history(chat.id, None, None, 50).await.unwrap();
    assert_eq!(page.messages.len(), 2);

    witness.restart().await;
    admin
        .staff_create("otto", "auditor")
        .await
        .expect("with the log back, staff act again");
    let proposals = admin.staff_changes().await.unwrap();
    assert_eq!(
        proposals.iter().filter(|c| c.username == "otto").count(),
        1,
        "the refused proposal left nothing behind: otto once"
    );
    assert_eq!(m.read_grant(grant.id).await.unwrap().messages.len(), 1);

    // The log and the world tell the same story: the entries of refused actions are in
    // the log (they were stored before the witness was found missing), each followed by
    // an `action.abandoned` entry naming it; the actions that happened are not.
    let log = server.audit();
    let size = log.tree().store().log_size().await.unwrap();
    let mut events = Vec::new();
    for i in 0..size {
        events.push(log.record(i).await.unwrap().expect("a record per entry"));
    }
    let abandoned: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == custodia_audit::EventKind::ActionAbandoned)
        .filter_map(|e| e.scope.iter().find(|(k, _)| k == "entry"))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    let otto: Vec<u64> = (0..size)
        .filter(|&i| {
            let e = &events[i as usize];
            e.kind == custodia_audit::EventKind::StaffChanged
                && e.scope.iter().any(|(k, v)| k == "username" && v == "otto")
        })
        .collect();
    let standing: Vec<&u64> = otto.iter().filter(|i| !abandoned.contains(i)).collect();
    assert_eq!(
        otto.len(),
        2,
        "the refused proposal and the one that happened"
    );
    assert_eq!(
        standing.len(),
        1,
        "the log shows otto proposed once, as the store does"
    );
    let reads = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == custodia_audit::EventKind::AccessRead)
        .map(|(i, _)| i as u64)
        .filter(|i| !abandoned.contains(i))
        .count();
    assert_eq!(
        reads, 1,
        "one read happened, the refused one is marked abandoned"
    );
}

/// Runs `custodia staff …` against the server's staff API with `profile`, answering the
/// password and code prompts from the environment.
async fn cli(
    server: &TestServer,
    config: &std::path::Path,
    profile: &str,
    args: &[&str],
    secrets: Option<(&str, &str)>,
) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_custodia"));
    cmd.arg("staff")
        .args(args)
        .args(["--server", server.staff_url(), "--profile", profile])
        .arg("--ca-cert")
        .arg(server.data_dir().join("tls/ca.pem"))
        .env("CUSTODIA_CONFIG_DIR", config);
    if let Some((password, totp_uri)) = secrets {
        cmd.env("CUSTODIA_PASSWORD", password);
        if !totp_uri.is_empty() {
            cmd.env("CUSTODIA_TOTP_CODE", totp_code(totp_uri));
        }
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The value after `label` on a line of `out`.
fn after<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.split_once(label).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {label:?} in {out}"))
}

#[tokio::test]
async fn the_staff_workflow_runs_from_the_command_line() {
    let server = TestServer::start().await;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let admin = server.first_admin().await;
    let (ok, out) = cli(
        &server,
        dir,
        "admin",
        &["login", "admin"],
        Some((&admin.password, &admin.totp_uri)),
    )
    .await;
    assert!(ok && out.contains("signed in as admin (admin)"), "{out}");
    let founder = &server.founders().await[1];
    let (ok, out) = cli(
        &server,
        dir,
        "auditor",
        &["login", "auditor"],
        Some((&founder.password, &founder.totp_uri)),
    )
    .await;
    assert!(ok, "{out}");
    let mut creds = HashMap::new();
    for (name, role) in [("mia", "moderator"), ("sam", "senior_moderator")] {
        let (ok, out) = cli(
            &server,
            dir,
            "admin",
            &["create-account", name, "--role", role],
            None,
        )
        .await;
        assert!(ok, "{out}");
        let change = after(&out, "approves it with: custodia staff approve-change").to_owned();
        let (ok, out) = cli(&server, dir, "auditor", &["approve-change", &change], None).await;
        assert!(ok, "{out}");
        let code = after(&out, "never to the proposer):").to_owned();
        let password = format!("{name}'s own passphrase");
        let (ok, out) = cli(
            &server,
            dir,
            name,
            &["enrol", name, "--code", &code],
            Some((&password, "")),
        )
        .await;
        assert!(ok, "{out}");
        let totp = after(&out, "authenticator app (shown once):").to_owned();
        let (ok, out) = cli(
            &server,
            dir,
            name,
            &["login", name],
            Some((&password, &totp)),
        )
        .await;
        assert!(ok, "{out}");
        creds.insert(name, (password, totp));
    }

    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let chat = alice.open_direct("bob").await.unwrap();
    for i in 1..=3 {
        alice
            .send(chat.id, &format!("c{i}"), &format!("cli message {i}"))
            .await
            .unwrap();
    }
    let received = bob.history(chat.id, None, None, 10).await.unwrap().messages;
    let case = bob
        .report_messages(chat.id, &received[2..3], "harassment", Some("please look"))
        .await
        .unwrap()
        .case_id
        .to_string();

    let (ok, out) = cli(&server, dir, "mia", &["cases"], None).await;
    assert!(
        ok && out.contains(&case) && out.contains("1 verified"),
        "{out}"
    );
    let (ok, out) = cli(&server, dir, "mia", &["case", &case], None).await;
    assert!(
        ok && out.contains("[verified: sent by") && out.contains("cli message 3"),
        "{out}"
    );
    let (ok, out) = cli(
        &server,
        dir,
        "mia",
        &[
            "request",
            "--case",
            &case,
            "--reason",
            "report_review",
            "--from",
            "1",
            "--to",
            "3",
            "--justification",
            "checking context",
        ],
        None,
    )
    .await;
    assert!(ok && out.contains("pending"), "{out}");
    let request = after(&out, "request ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (ok, out) = cli(&server, dir, "mia", &["read", &request], None).await;
    assert!(!ok && out.contains("not approved yet"), "{out}");
    let (ok, out) = cli(
        &server,
        dir,
        "sam",
        &["approve", &request, "--justification", "credible"],
        None,
    )
    .await;
    assert!(ok && out.contains("approved"), "{out}");
    let (ok, out) = cli(&server, dir, "mia", &["read", &request], None).await;
    assert!(
        ok && out.contains("logged as audit entry") && out.contains("cli message 1"),
        "{out}"
    );
    let (ok, out) = cli(&server, dir, "sam", &["revoke", &request], None).await;
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, out) = cli(&server, dir, "mia", &["read", &request], None).await;
    assert!(!ok && out.contains("revoked"), "{out}");
    let (ok, out) = cli(&server, dir, "mia", &["logout"], None).await;
    assert!(ok, "{out}");
    let (ok, out) = cli(&server, dir, "mia", &["whoami"], None).await;
    assert!(!ok && out.contains("not signed in"), "{out}");
}

/// A first start that fails after the data directory exists (the staff port is taken)
/// creates no founders; the start that succeeds creates them and shows their one-time
/// codes; no later start shows any.
#[tokio::test]
async fn a_failed_first_start_loses_no_founder_and_the_codes_are_shown_once() {
    let work = tempfile::tempdir().unwrap();
    let config = |staff_listen: &str| {
        RawConfig {
            data_dir: Some(work.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            audit_listen: Some("127.0.0.1:0".into()),
            staff_listen: Some(staff_listen.into()),
            ..RawConfig::default()
        }
        .validate()
        .unwrap()
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let err = custodia_server::start(config(&busy))
        .await
        .err()
        .expect("the staff port is taken");
    assert!(format!("{err:#}").contains("staff_listen"), "{err:#}");
    drop(taken);

    let running = custodia_server::start(config("127.0.0.1:0")).await.unwrap();
    let names: Vec<String> = running
        .founders
        .iter()
        .map(|f| f.staff.username.as_str().to_owned())
        .collect();
    assert_eq!(
        names,
        ["admin", "auditor"],
        "shown by the start that made them"
    );
    running.shutdown().await.unwrap();
    let again = custodia_server::start(config("127.0.0.1:0")).await.unwrap();
    assert!(again.founders.is_empty(), "shown exactly once");
    again.shutdown().await.unwrap();
}

/// `custodia admin reset-admin`: refused while a server runs on the data directory;
/// with it stopped, it adds an admin whose one-time code enrols them, and the audit log
/// says the operator did it.
#[tokio::test]
async fn the_operator_recovers_an_admin_with_the_server_stopped_and_it_is_logged() {
    let mut server = TestServer::start().await;
    let reset = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_custodia"))
            .args(["admin", "reset-admin", "--data-dir"])
            .arg(dir)
            .env("CUSTODIA_AUDIT_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap()
    };
    let refused = reset(server.data_dir());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a server is running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    server.stop().await;
    let done = reset(server.data_dir());
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let code = out
        .split("enrolment code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a code")
        .to_owned();
    assert!(out.contains("admin-2"), "{out}");

    server.restart_fresh().await;
    custodia_client::staffing::enrol(
        &server.staff_client(),
        "admin-2",
        &code,
        "a new admin's password",
    )
    .await
    .expect("the code enrols the new admin");
    let log = server.audit();
    let size = log.tree().store().log_size().await.unwrap();
    let mut logged = false;
    for i in 0..size {
        if let Some(event) = log.record(i).await.unwrap() {
            logged |= event
                .scope
                .iter()
                .any(|(k, v)| k == "change" && v == "operator-recovery");
        }
    }
    assert!(logged, "the recovery is in the audit log");
}

/// A sign-in the audit log cannot take (its witness is down) is refused with 503 and does
/// not spend the one-time code: the retry with the same code works once the log is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sign_in_does_not_spend_the_one_time_code() {
    let (server, mut witnesses) = TestServer::witnessed(1, 1).await;
    let admin = server.admin().await;
    let creds = server.add_staff(&admin, "lex", "legal_officer").await;
    let code = custodia_test::totp_code(&creds.totp_uri);
    witnesses[0].stop().await;
    let mut c = server.staff_client();
    let e = c
        .staff_sign_in(&creds.username, &creds.password, &code)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    witnesses[0].restart().await;
    c.staff_sign_in(&creds.username, &creds.password, &code)
        .await
        .expect("the same code works for the retry");
    assert_eq!(
        server
            .staff_client()
            .staff_sign_in(&creds.username, &creds.password, &code)
            .await
            .unwrap_err()
            .status(),
        Some(401),
        "and then only once"
    );
}
