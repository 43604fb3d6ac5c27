//! Governed access end to end: a member's report opens a case; a moderator asks for
//! access; a senior moderator approves; the moderator reads exactly the reported messages
//! and the K before them, with a receipt, after the read is in the audit log; legal
//! process needs two approvers including a legal officer; and every staff endpoint is
//! checked against every role and every request state.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use custodia_audit::EventKind;
use custodia_sdk::proto::staff as wire;
use custodia_sdk::{Client, Method};
use custodia_server::logcmd::{WitnessPolicy, verify};
use custodia_test::TestServer;
use uuid::Uuid;

/// A server with an admin, staff of every role, and a conversation between two members.
struct World {
    server: TestServer,
    staff: HashMap<&'static str, Client>,
    alice: Client,
    bob: Client,
    chat: Uuid,
}

impl World {
    /// `accounts`: (username, role) of the staff to create and sign in.
    async fn new(accounts: &[(&'static str, &str)], messages: u64) -> Self {
        let server = TestServer::start().await;
        let admin = server.admin().await;
        let mut staff = HashMap::new();
        for (name, role) in accounts {
            staff.insert(*name, server.new_staff(&admin, name, role).await);
        }
        staff.insert("admin", admin);
        let alice = server.user("alice").await;
        let bob = server.user("bob").await;
        let chat = alice.open_direct("bob").await.unwrap().id;
        for i in 1..=messages {
            alice
                .send(chat, &format!("m{i}"), &format!("message number {i}"))
                .await
                .unwrap();
        }
        Self {
            server,
            staff,
            alice,
            bob,
            chat,
        }
    }

    fn staff(&self, name: &str) -> &Client {
        &self.staff[name]
    }

    /// The kinds of every audit log entry, in order.
    async fn logged(&self) -> Vec<EventKind> {
        let audit = self.server.audit();
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(e) = audit.record(i).await.unwrap() {
            out.push(e.kind);
            i += 1;
        }
        out
    }
}

fn request(case: Uuid, reason: &str, seqs: (u64, u64), secs: u64) -> wire::CreateAccessRequest {
    wire::CreateAccessRequest {
        duration_secs: secs,
        ..common::content_request(case, reason, seqs)
    }
}

fn status(e: &custodia_sdk::SdkError) -> u16 {
    match e {
        custodia_sdk::SdkError::Api(p) => p.status,
        other => panic!("expected a problem answer, got {other}"),
    }
}

#[tokio::test]
async fn a_report_review_shows_exactly_the_reported_messages_and_the_k_before_them() {
    let w = World::new(
        &[
            ("mod", "moderator"),
            ("sen", "senior_moderator"),
            ("aud", "auditor"),
        ],
        30,
    )
    .await;
    // Another conversation of alice's, which no grant here may show.
    w.server.user("carol").await;
    let other = w.alice.open_direct("carol").await.unwrap().id;
    w.alice
        .send(other, "elsewhere", "not part of any case")
        .await
        .unwrap();

    let case = w
        .bob
        .report(w.chat, &[25, 27], "harassment", Some("he keeps writing"))
        .await
        .unwrap()
        .case_id;
    // A member cannot report a conversation they are not in (it does not exist for them).
    let carol = w.server.login("carol").await;
    assert_eq!(
        status(&carol.report(w.chat, &[1], "spam", None).await.unwrap_err()),
        404
    );

    let (m, sen) = (w.staff("mod"), w.staff("sen"));
    let seen = m.case(case).await.unwrap();
    assert_eq!(
        (seen.from_seq, seen.to_seq),
        (15, 27),
        "K = 10 before the first"
    );
    assert_eq!(seen.comment.as_deref(), Some("he keeps writing"));
    assert_eq!(seen.reported, vec![25, 27]);

    // Nothing after the reported messages, and nothing beyond K before them.
    for range in [(15, 28), (14, 27)] {
        let e = m
            .request_access(&request(case, "report_review", range, 3600))
            .await
            .unwrap_err();
        assert_eq!(status(&e), 422, "{e}");
    }
    // An unknown reason code is refused.
    let e = m
        .request_access(&request(case, "curiosity", (15, 27), 3600))
        .await
        .unwrap_err();
    assert_eq!(status(&e), 422);

    let req = m
        .request_access(&request(case, "report_review", (15, 27), 3600))
        .await
        .unwrap();
    assert_eq!((req.status.as_str(), req.required), ("pending", 1));
    assert_eq!(status(&m.read_grant(req.id).await.unwrap_err()), 403);
    assert_eq!(
        status(&m.decide(req.id, true, "looks fine").await.unwrap_err()),
        403,
        "nobody approves their own request"
    );
    // A senior moderator who joined after the request was made is not in its frozen set.
    let late = w
        .server
        .new_staff(w.staff("admin"), "late", "senior_moderator")
        .await;
    assert_eq!(
        status(&late.decide(req.id, true, "me too").await.unwrap_err()),
        403,
        "approvers are frozen when the request is made"
    );
    let approved = sen
        .decide(req.id, true, "report is credible")
        .await
        .unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(
        status(&sen.decide(req.id, true, "again").await.unwrap_err()),
        409,
        "nobody decides twice"
    );

    let before = w.logged().await.len();
    let read = m.read_grant(req.id).await.unwrap();
    let seqs: Vec<u64> = read.messages.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, (15..=27).collect::<Vec<_>>());
    assert!(read.messages.iter().all(|x| x.conversation_id == w.chat));
    assert_eq!(read.messages[0].body.as_deref(), Some("message number 15"));
    let logged = w.logged().await;
    assert_eq!(
        &logged[before..],
        &[EventKind::AccessRead],
        "exactly one log entry per read"
    );
    assert_eq!(read.receipt.index as usize, before);

    // The receipt proves the read is in the signed log.
    let note = custodia_tlog::SignedNote::parse(read.receipt.checkpoint.as_bytes()).unwrap();
    note.verify(&[w.server.log_key()]).unwrap();
    let cp = custodia_tlog::Checkpoint::parse(&note.text).unwrap();
    use base64::Engine;
    let proof: Vec<custodia_tlog::Hash> = read
        .receipt
        .proof
        .iter()
        .map(|p| {
            base64::engine::general_purpose::STANDARD
                .decode(p)
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let leaf: custodia_tlog::Hash = (0..32)
        .map(|i| u8::from_str_radix(&read.receipt.leaf_hash[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    custodia_tlog::verify_inclusion(read.receipt.index, cp.size, &leaf, &proof, &cp.root).unwrap();

    // An auditor reads the full record of that entry (subjects named), and that read is
    // itself logged; nobody else may.
    let record = w
        .staff("aud")
        .audit_record(read.receipt.index)
        .await
        .unwrap();
    assert_eq!(record.kind, "access.read");
    assert_eq!(record.actor_role.as_deref(), Some("moderator"));
    assert!(
        record
            .subjects
            .iter()
            .any(|s| s.kind == "conversation" && s.id == w.chat)
    );
    assert!(
        record.scope.contains(&(
            "messages".into(),
            (15..=27)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    );
    assert_eq!(w.logged().await.last(), Some(&EventKind::AccessRead));
    assert_eq!(
        status(&m.audit_record(read.receipt.index).await.unwrap_err()),
        403
    );
    assert_eq!(
        status(&w.staff("admin").audit_record(0).await.unwrap_err()),
        403
    );

    // Only the requester reads; after revocation, nobody.
    assert_eq!(status(&sen.read_grant(req.id).await.unwrap_err()), 403);
    assert_eq!(sen.revoke(req.id).await.unwrap().status, "revoked");
    let e = m.read_grant(req.id).await.unwrap_err();
    assert_eq!(status(&e), 403);
    assert!(e.to_string().contains("revoked"), "{e}");

    // The whole log verifies.
    let work = tempfile::tempdir().unwrap();
    let ca = std::fs::read(w.server.data_dir().join("tls/ca.pem")).unwrap();
    let auditor = Client::new(w.server.audit_url(), &ca).unwrap();
    verify(
        &auditor,
        &w.server.log_key(),
        &WitnessPolicy::default(),
        &work.path().join("state"),
    )
    .await
    .unwrap();
    let kinds = w.logged().await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::AccessRead)
            .count(),
        2,
        "the moderator's read and the auditor's"
    );
    assert!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::AccessDenied)
            .count()
            >= 3,
        "refused reads are logged"
    );
}

#[tokio::test]
async fn legal_process_needs_two_approvers_including_a_legal_officer() {
    let w = World::new(
        &[
            ("lo1", "legal_officer"),
            ("lo2", "legal_officer"),
            ("sen", "senior_moderator"),
            ("mod", "moderator"),
        ],
        5,
    )
    .await;
    // Legal cases are opened only by producing a reviewed legal request.
    let day = |offset: i64| {
        custodia_core::Day::of(custodia_core::Timestamp::from_millis(
            (time::OffsetDateTime::now_utc() + time::Duration::days(offset)).unix_timestamp()
                * 1000,
        ))
        .to_string()
    };
    let warrant = wire::NewLegalRequest {
        agency: wire::AgencyInfo {
            name: "Police".into(),
            country: "US".into(),
            subdivision: None,
        },
        officer: wire::OfficerInfo {
            name: "O".into(),
            badge: "1".into(),
            email: "o@police.example".into(),
        },
        process: "search_warrant".into(),
        court: None,
        targets: vec!["alice".into()],
        categories: vec!["content".into()],
        from: day(-1),
        to: day(1),
        nondisclosure: Some(wire::NondisclosureInfo {
            authority: "the court".into(),
            until: Some(day(30)),
        }),
        emergency_basis: None,
        documents: Vec::new(),
        follows_up: None,
    };
    // An unknown process type or a malformed country is refused, saying what to use.
    for (process, country) in [("warrant", "US"), ("search_warrant", "USA")] {
        let mut bad = warrant.clone();
        bad.process = process.into();
        bad.agency.country = country.into();
        assert_eq!(
            status(
                &w.staff("lo1")
                    .receive_legal_request(&bad)
                    .await
                    .unwrap_err()
            ),
            422,
            "{process} {country}"
        );
    }
    assert_eq!(
        status(
            &w.staff("mod")
                .receive_legal_request(&warrant)
                .await
                .unwrap_err()
        ),
        403
    );
    let mut ended = warrant.clone();
    ended.nondisclosure = Some(wire::NondisclosureInfo {
        authority: "the court".into(),
        until: Some(day(-2)),
    });
    assert_eq!(
        status(
            &w.staff("lo1")
                .receive_legal_request(&ended)
                .await
                .unwrap_err()
        ),
        422,
        "a non-disclosure order that already ended is refused"
    );
    let received = w
        .staff("lo1")
        .receive_legal_request(&warrant)
        .await
        .unwrap();
    w.staff("lo1")
        .review_legal_request(received.id, &common::accept_in_full())
        .await
        .unwrap();
    let produced = w.staff("lo1").produce(received.id).await.unwrap();
    let case = produced[0].case_id;
    let opened = w.staff("lo1").case(case).await.unwrap();
    assert!(
        opened.nondisclosure_until_ms.is_some(),
        "the case keeps its non-disclosure order"
    );
    assert_eq!(
        status(
            &w.staff("mod")
                .request_access(&request(case, "legal_process", (1, 5), 3600))
                .await
                .unwrap_err()
        ),
        403,
        "a moderator cannot ask under legal process"
    );
    let req = w
        .staff("lo1")
        .request_access(&request(case, "legal_process", (1, 5), 3600))
        .await
        .unwrap();
    assert_eq!(req.required, 2);
    assert_eq!(
        status(
            &w.staff("mod")
                .decide(req.id, true, "fine")
                .await
                .unwrap_err()
        ),
        403,
        "a role outside the frozen set cannot approve"
    );
    let one = w
        .staff("sen")
        .decide(req.id, true, "valid order")
        .await
        .unwrap();
    assert_eq!(one.status, "pending", "one approval is not enough");
    assert_eq!(
        status(&w.staff("lo1").read_grant(req.id).await.unwrap_err()),
        403
    );
    let two = w
        .staff("lo2")
        .decide(req.id, true, "checked the order")
        .await
        .unwrap();
    assert_eq!(two.status, "approved");
    let read = w.staff("lo1").read_grant(req.id).await.unwrap();
    assert_eq!(read.messages.len(), 5);
    assert_eq!(
        w.staff("lo1").access_request(req.id).await.unwrap().status,
        "active"
    );
    assert_eq!(
        w.staff("lo1").complete(req.id).await.unwrap().status,
        "completed"
    );
    assert_eq!(
        status(&w.staff("lo1").read_grant(req.id).await.unwrap_err()),
        403
    );
}

/// The states a request can be in, and how to reach each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NoCase,
    Pending,
    Approved,
    Active,
    Expired,
    Revoked,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Get,
    Approve,
    Revoke,
    Complete,
    Read,
}

/// Who calls: the requester (a moderator), or another staff member of a role.
const ACTORS: [&str; 6] = ["requester", "mod2", "sen", "lex", "aud", "admin"];
/// An agency's age public key (its identity is thrown away: nothing is decrypted here).
const AGENCY: &str = "age19rmacgdnfxfllh8xtxy98qpg2nd2epxxxasfqs3l5n8u2pnf7cqs4pegy6";

/// The expected status of `call` by `actor` on a request in `state`.
fn expected(call: Call, actor: &str, state: State) -> u16 {
    use State::*;
    let reader = actor != "admin";
    let access = matches!(actor, "requester" | "mod2" | "sen" | "lex");
    let approver = actor == "sen";
    let open_grant = matches!(state, Approved | Active);
    match call {
        Call::Read if state == NoCase => 404,
        Call::Read => {
            if actor == "requester" && open_grant {
                200
            } else {
                403
            }
        }
        _ if state == NoCase && !matches!(call, Call::Get) && !access => 403,
        _ if state == NoCase && matches!(call, Call::Get) && !reader => 403,
        _ if state == NoCase => 404,
        Call::Get => {
            if reader {
                200
            } else {
                403
            }
        }
        Call::Approve => match (access, actor, approver) {
            (false, _, _) => 403,
            (_, "requester", _) => 403,
            (_, _, false) => 403,
            _ if state == Pending => 200,
            _ => 422,
        },
        Call::Revoke => match (access, actor == "requester" || approver) {
            (false, _) | (true, false) => 403,
            _ if matches!(state, Pending | Approved | Active) => 200,
            _ => 422,
        },
        Call::Complete => match (access, actor == "requester") {
            (false, _) | (true, false) => 403,
            _ if open_grant => 200,
            _ => 422,
        },
    }
}

#[tokio::test]
async fn every_staff_endpoint_against_every_role_and_request_state() {
    let w = World::new(
        &[
            ("requester", "moderator"),
            ("mod2", "moderator"),
            ("sen", "senior_moderator"),
            ("setup", "senior_moderator"),
            ("lex", "legal_officer"),
            ("aud", "auditor"),
        ],
        3,
    )
    .await;
    let canary = format!("canary-{}", Uuid::new_v4());
    w.alice.send(w.chat, "canary", &canary).await.unwrap();
    let case = w
        .bob
        .report(w.chat, &[4], "spam", None)
        .await
        .unwrap()
        .case_id;
    let (requester, setup) = (w.staff("requester"), w.staff("setup"));

    let calls = [
        Call::Get,
        Call::Approve,
        Call::Revoke,
        Call::Complete,
        Call::Read,
    ];
    let states = [
        State::NoCase,
        State::Pending,
        State::Approved,
        State::Active,
        State::Expired,
        State::Revoked,
        State::Denied,
    ];
    // One fresh request per (state, actor, call), so no call changes another's state.
    let mut made: Vec<(State, &str, Call, Uuid)> = Vec::new();
    for state in states {
        for actor in ACTORS {
            for call in calls {
                let id = if state == State::NoCase {
                    Uuid::new_v4()
                } else {
                    let secs = if state == State::Expired { 1 } else { 3600 };
                    let r = requester
                        .request_access(&request(case, "report_review", (1, 4), secs))
                        .await
                        .unwrap();
                    match state {
                        State::Pending | State::NoCase => {}
                        State::Denied => drop(setup.decide(r.id, false, "no").await.unwrap()),
                        _ => drop(setup.decide(r.id, true, "yes").await.unwrap()),
                    }
                    match state {
                        State::Active => drop(requester.read_grant(r.id).await.unwrap()),
                        State::Revoked => drop(requester.revoke(r.id).await.unwrap()),
                        _ => {}
                    }
                    r.id
                };
                made.push((state, actor, call, id));
            }
        }
    }
    // The one-second grants run out: the server's clock moves on (no waiting).
    w.server.advance_clock(Duration::from_millis(1500));

    let mut failures = Vec::new();
    for (state, actor, call, id) in made {
        let c = w.staff(actor);
        let (method, path) = match call {
            Call::Get => (Method::GET, format!("/v1/staff/requests/{id}")),
            Call::Approve => (Method::POST, format!("/v1/staff/requests/{id}/decisions")),
            Call::Revoke => (Method::POST, format!("/v1/staff/requests/{id}/revoke")),
            Call::Complete => (Method::POST, format!("/v1/staff/requests/{id}/complete")),
            Call::Read => (Method::GET, format!("/v1/staff/requests/{id}/messages")),
        };
        let body = if call == Call::Approve {
            br#"{"approve":true,"justification":"matrix"}"#.to_vec()
        } else {
            Vec::new()
        };
        let (got, ctype, answer) = c
            .raw(method, &path, "application/json", body)
            .await
            .unwrap();
        let want = expected(call, actor, state);
        if got != want {
            failures.push(format!(
                "{call:?} by {actor} in {state:?}: {got}, expected {want}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        if got >= 400 {
            assert_eq!(ctype, "application/problem+json");
            assert!(
                !String::from_utf8_lossy(&answer).contains(&canary),
                "a refused response carries message content"
            );
        } else if call == Call::Read {
            assert!(String::from_utf8_lossy(&answer).contains(&canary));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The other staff endpoints by role (they do not depend on a request's state): every
    // role but the admin sees cases; nobody opens a legal case but by production; only admins
    // propose staff changes, admins and auditors list them, and only a second person
    // decides one; only moderators and senior
    // moderators ask for a report review.
    let intake = r#"{"agency":{"name":"Police","country":"US"},"officer":{"name":"O","badge":"1","email":"o@police.example"},"process":"subpoena","targets":["alice"],"categories":["subscriber"],"from":"2026-01-01","to":"2026-01-31"}"#;
    let legal = format!(
        r#"{{"conversation_id":"{}","from_seq":1,"to_seq":2,"reference":"matrix","process":"subpoena","country":"US"}}"#,
        w.chat
    );
    for (i, actor) in ACTORS.into_iter().enumerate() {
        let c = w.staff(actor);
        let reader = actor != "admin";
        let account = format!(r#"{{"username":"new{i}","role":"auditor"}}"#);
        // A fresh proposal per actor: only a second person decides it (here, with one
        // admin, the auditor); never its proposer.
        let proposal = w
            .staff("admin")
            .staff_create(&format!("cand{i}"), "moderator")
            .await
            .unwrap();
        let nobody = uuid::Uuid::new_v4();
        let cases: [(Method, String, Vec<u8>, u16); 21] = [
            (
                Method::GET,
                "/v1/staff/cases".into(),
                vec![],
                if reader { 200 } else { 403 },
            ),
            (
                Method::GET,
                format!("/v1/staff/cases/{case}"),
                vec![],
                if reader { 200 } else { 403 },
            ),
            (
                Method::GET,
                format!("/v1/staff/cases/{case}/requests"),
                vec![],
                if reader { 200 } else { 403 },
            ),
            // No side door: legal cases come only from produced legal requests.
            (
                Method::POST,
                "/v1/staff/cases".into(),
                legal.clone().into_bytes(),
                405,
            ),
            (
                Method::GET,
                "/v1/staff/accounts".into(),
                vec![],
                if matches!(actor, "admin" | "aud") {
                    200
                } else {
                    403
                },
            ),
            (
                Method::POST,
                "/v1/staff/accounts".into(),
                account.into_bytes(),
                if actor == "admin" { 202 } else { 403 },
            ),
            (
                Method::GET,
                "/v1/staff/changes".into(),
                vec![],
                if matches!(actor, "admin" | "aud") {
                    200
                } else {
                    403
                },
            ),
            (
                Method::POST,
                format!("/v1/staff/changes/{}/decisions", proposal.id),
                br#"{"approve":false}"#.to_vec(),
                if actor == "aud" { 200 } else { 403 },
            ),
            (Method::GET, "/v1/staff/me".into(), vec![], 200),
            // Legal requests: legal officers only (moderators and admins never see them;
            // auditors see their log records only).
            (
                Method::GET,
                "/v1/staff/legal-requests".into(),
                vec![],
                if actor == "lex" { 200 } else { 403 },
            ),
            (
                Method::POST,
                "/v1/staff/legal-requests".into(),
                intake.as_bytes().to_vec(),
                if actor == "lex" { 201 } else { 403 },
            ),
            (
                Method::POST,
                format!("/v1/staff/legal-requests/{nobody}/produce"),
                vec![],
                if actor == "lex" { 404 } else { 403 },
            ),
            (
                Method::GET,
                format!("/v1/staff/legal-requests/{nobody}/holds"),
                vec![],
                if actor == "lex" { 404 } else { 403 },
            ),
            (
                Method::POST,
                format!("/v1/staff/legal-requests/{nobody}/package"),
                format!(r#"{{"recipient":"{AGENCY}"}}"#).into_bytes(),
                if actor == "lex" { 404 } else { 403 },
            ),
            (
                Method::GET,
                format!("/v1/staff/legal-requests/{nobody}/documents/0"),
                vec![],
                if actor == "lex" { 404 } else { 403 },
            ),
            // A preserved file under an evidence grant: no such grant, for anyone (the
            // grant's own checks are in attachments.rs).
            (
                Method::GET,
                format!("/v1/staff/requests/{nobody}/files/{nobody}"),
                vec![],
                404,
            ),
            (
                Method::POST,
                format!("/v1/staff/holds/{nobody}/extend"),
                vec![],
                if actor == "lex" { 404 } else { 403 },
            ),
            (
                Method::POST,
                format!("/v1/staff/holds/{nobody}/release"),
                vec![],
                if actor == "lex" { 404 } else { 403 },
            ),
            (
                Method::POST,
                format!("/v1/staff/cases/{case}/nondisclosure/lift"),
                format!(r#"{{"document_sha256":"{}"}}"#, "ab".repeat(32)).into_bytes(),
                // A report case has no order to lift.
                if actor == "lex" { 422 } else { 403 },
            ),
            // The transparency report says nothing the public log does not: every role.
            (
                Method::GET,
                "/v1/staff/transparency-report?from=2020-01-01&to=2030-12-31".into(),
                vec![],
                200,
            ),
            (
                Method::GET,
                "/v1/staff/audit/records/0".into(),
                vec![],
                if actor == "aud" { 200 } else { 403 },
            ),
        ];
        for (method, path, body, want) in cases {
            let (got, _, answer) = c
                .raw(method.clone(), &path, "application/json", body)
                .await
                .unwrap();
            assert_eq!(
                got,
                want,
                "{method} {path} by {actor}: {}",
                String::from_utf8_lossy(&answer)
            );
            if got >= 400 {
                assert!(!String::from_utf8_lossy(&answer).contains(&canary));
            }
        }
        let asked = c
            .request_access(&request(case, "report_review", (1, 4), 60))
            .await;
        assert_eq!(
            asked.is_ok(),
            matches!(actor, "requester" | "mod2" | "sen"),
            "{actor} asking for a report review"
        );
    }
}

#[tokio::test]
async fn reported_messages_are_shown_verified_and_a_forged_report_is_not() {
    let w = World::new(&[("mod", "moderator"), ("sen", "senior_moderator")], 3).await;
    let page = w.bob.history(w.chat, None, None, 50).await.unwrap();
    let received = &page.messages;
    assert!(
        received.iter().all(|m| m.franking_key.is_some()),
        "members receive each message's franking key"
    );
    let honest = w
        .bob
        .report_messages(w.chat, &received[1..2], "harassment", None)
        .await
        .unwrap()
        .case_id;
    let mut forged = received[2].clone();
    forged.body = Some("send me your address or else".into());
    let forgery = w
        .bob
        .report_messages(w.chat, &[forged], "harassment", None)
        .await
        .unwrap()
        .case_id;
    let bare = w
        .bob
        .report(w.chat, &[1], "spam", None)
        .await
        .unwrap()
        .case_id;

    let m = w.staff("mod");
    let before = w.logged().await.len();
    let case = m.case(honest).await.unwrap();
    let e = &case.evidence[0];
    assert!(e.verified, "the reported text is what alice sent");
    assert_eq!(
        e.sender_username.as_deref(),
        Some("alice"),
        "staff see who, by name"
    );
    assert_eq!(e.body.as_deref(), Some("message number 2"));
    assert_eq!(e.sender_id, received[1].sender_id);
    assert_eq!(e.sent_at_ms, received[1].sent_at_ms);
    assert_eq!(
        &w.logged().await[before..],
        &[EventKind::AccessRead],
        "showing reported texts is logged"
    );
    let case = m.case(forgery).await.unwrap();
    assert!(
        !case.evidence[0].verified,
        "a forged report is shown unverified"
    );
    assert_eq!(
        case.evidence[0].body.as_deref(),
        Some("send me your address or else")
    );
    let case = m.case(bare).await.unwrap();
    assert!(!case.evidence[0].verified && case.evidence[0].body.is_none());
    // The case list shows verification without the texts.
    let listed = m.cases().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|c| c.evidence.iter().all(|e| e.body.is_none()))
    );

    // Staff reads within a grant never carry franking keys.
    let req = m
        .request_access(&request(honest, "report_review", (1, 2), 60))
        .await
        .unwrap();
    w.staff("sen").decide(req.id, true, "ok").await.unwrap();
    let read = m.read_grant(req.id).await.unwrap();
    assert!(read.messages.iter().all(|x| x.franking_key.is_none()));
}
