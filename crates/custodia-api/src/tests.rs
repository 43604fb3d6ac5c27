//! The API without sockets: handlers driven with `Router::oneshot`, and the WebSocket
//! session driven over in-memory channels, over the real SQLite store, key service and
//! audit log.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::extract::ConnectInfo;
use axum::extract::ws::Message as WsMessage;
use axum::http::{Request, StatusCode, header};
use custodia_audit::{AuditLog, PseudonymKey};
use custodia_core::SessionId;
use custodia_core::{DeploymentId, ManualClock, Timestamp};
use custodia_keys::{CacheLimits, KeyService, Keyring, LogAuthority};
use custodia_proto::{ClientFrame, ServerFrame};
use custodia_service::{Event, Fanout, Hub, LocalFanout, Service, ServiceConfig};
use custodia_store::{NoObserver, Storage};
use futures_util::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{AppState, Metrics, PeerAddr};

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
}

async fn fixture() -> Fixture {
    fixture_with(|hub| Arc::new(LocalFanout(hub)), ServiceConfig::default()).await
}

/// A fixture whose service publishes through `fanout` (given the hub) with `config`.
async fn fixture_with(
    fanout: impl FnOnce(Arc<Hub>) -> Arc<dyn Fanout>,
    config: ServiceConfig,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        custodia_store_sqlite::SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
            .await
            .unwrap();
    let storage = Storage::from_backend(store);
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_435_200_000)));
    let (keyring, _) = Keyring::load_or_create(&dir.path().join("keyring"), None).unwrap();
    let audit = Arc::new(AuditLog::new(
        storage.log.clone(),
        custodia_tlog::NoteSigner::generate("test/audit").unwrap(),
        "test/audit",
        PseudonymKey::from_bytes([3; 32]),
    ));
    let keys = Arc::new(
        KeyService::new(
            DeploymentId::new(),
            keyring,
            storage.deks.clone(),
            clock.clone(),
            CacheLimits {
                capacity: NonZeroUsize::new(16).unwrap(),
                max_age: Duration::from_secs(60),
            },
        )
        .with_log_authority(LogAuthority::new(
            audit.verifier(),
            Vec::new(),
            0,
            PseudonymKey::from_bytes([3; 32]),
        )),
    );
    let governance = custodia_governance::Governance::new(
        storage.clone(),
        keys.clone(),
        audit,
        clock.clone(),
        Default::default(),
    );
    let hub = Hub::new();
    let service = Service::new(storage, keys, clock, hub.clone(), fanout(hub), config);
    Fixture {
        _dir: dir,
        state: AppState {
            service,
            governance,
            metrics: Arc::new(Metrics::new()),
            metrics_token: Arc::new(zeroize::Zeroizing::new(
                "cmt_test-token-of-the-operator-0000".into(),
            )),
            shutdown: CancellationToken::new(),
            sessions: Default::default(),
        },
    }
}

/// One request through the whole router (with the headers every answer carries), from
/// a client at 192.0.2.7.
async fn call(
    f: &Fixture,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(HttpBody::from(body.to_owned())).unwrap();
    let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
    let router = crate::edge::harden(crate::router(f.state.clone()));
    let res = router.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

async fn member(f: &Fixture, name: &str) -> String {
    let (s, _, _) = call(
        f,
        "POST",
        "/v1/accounts",
        None,
        &format!(r#"{{"username":"{name}","password":"correct horse battery","date_of_birth":"1990-01-01"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, body) = call(
        f,
        "POST",
        "/v1/sessions",
        None,
        &format!(r#"{{"username":"{name}","password":"correct horse battery","device":"t"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn handlers_answer_problems_and_carry_no_store_without_a_socket() {
    let f = fixture().await;
    let (s, headers, body) = call(&f, "POST", "/v1/accounts", None, "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["status"], 400);
    let token = member(&f, "alice").await;
    let (s, headers, body) = call(&f, "GET", "/v1/conversations", Some(&token), "").await;
    assert_eq!(
        (s, body.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let (s, _, _) = call(&f, "GET", "/v1/conversations", Some("cst_forged"), "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&f, "GET", "/metrics", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_websocket_session_runs_over_in_memory_channels() {
    let f = fixture().await;
    let alice = member(&f, "alice").await;
    let bob_token = member(&f, "bob").await;
    let (s, _, conv) = call(
        &f,
        "POST",
        "/v1/conversations",
        Some(&alice),
        &serde_json::to_string(&custodia_proto::CreateConversation::Direct { peer: "bob".into() })
            .unwrap(),
    )
    .await;
    assert!(s.is_success(), "{conv}");
    let conv_id: uuid::Uuid = conv["id"].as_str().unwrap().parse().unwrap();
    let who = f.state.service.authenticate(&alice).await.unwrap();
    let bob = f.state.service.authenticate(&bob_token).await.unwrap();

    // The session reads client frames from one channel and writes to another.
    let (to_session, from_client) = futures_channel();
    let (to_client, mut from_session) = futures_channel();
    let session = tokio::spawn(crate::ws::run(
        f.state.clone(),
        who,
        to_client.sink_map_err(|_| ()),
        from_client.map(Ok::<_, axum::Error>),
    ));
    let mut to_session = to_session;
    let frame = |f: &ClientFrame| WsMessage::Text(serde_json::to_string(f).unwrap().into());
    to_session
        .send(frame(&ClientFrame::Sync {
            cursors: Default::default(),
            limit: None,
        }))
        .await
        .unwrap();
    to_session
        .send(frame(&ClientFrame::Send {
            conversation_id: conv_id,
            client_id: "c1".into(),
            body: "over channels".into(),
        }))
        .await
        .unwrap();
    let mut acked = false;
    while let Some(WsMessage::Text(t)) = from_session.next().await {
        if let Ok(ServerFrame::Ack(a)) = serde_json::from_str::<ServerFrame>(t.as_str()) {
            assert_eq!(a.seq, 1);
            acked = true;
            break;
        }
    }
    assert!(acked, "the send is acknowledged on the session");
    let history = f
        .state
        .service
        .history(
            &bob,
            custodia_core::ConversationId::from_uuid(conv_id),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
    // The client closing its side ends the session with a close frame.
    drop(to_session);
    let mut closed = None;
    while let Some(m) = from_session.next().await {
        if let WsMessage::Close(c) = m {
            closed = c.map(|c| c.code);
        }
    }
    assert_eq!(closed, Some(1000));
    session.await.unwrap();
}

/// An unbounded in-memory channel as a `Sink` and a `Stream` of WebSocket messages.
fn futures_channel() -> (
    impl futures_util::Sink<WsMessage, Error = ()> + Unpin + Send + 'static,
    impl futures_util::Stream<Item = WsMessage> + Unpin + Send + 'static,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<WsMessage>();
    let sink = futures_util::sink::unfold(tx, |tx, m: WsMessage| async move {
        tx.send(m).map_err(drop)?;
        Ok::<_, ()>(tx)
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (Box::pin(sink), Box::pin(stream))
}

/// Fan-out that loses every message event while `losing` is set (a NATS blip, a slow
/// consumer, a node cut off), and passes everything else to the hub.
struct LossyFanout {
    hub: Arc<Hub>,
    losing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Fanout for LossyFanout {
    async fn publish(&self, recipients: Vec<custodia_core::UserId>, event: Arc<Event>) {
        let lost = matches!(*event, Event::Message(_))
            && self.losing.load(std::sync::atomic::Ordering::SeqCst);
        if !lost {
            self.hub.deliver(&recipients, &event);
        }
    }
    async fn disconnect_session(&self, user: custodia_core::UserId, session: SessionId) {
        self.hub.disconnect_session(user, session);
    }
}

/// What happens between the sender and the receiving session.
#[derive(Debug, Clone)]
enum Step {
    /// Messages whose live events arrive.
    Live(u64),
    /// Messages whose live events are lost.
    Lost(u64),
    /// The receiver reconnects and syncs from what it holds.
    Reconnect,
    /// The node asks every session to catch up from storage.
    Resync,
}

/// A receiving client over in-memory channels: every message frame it was sent, in order,
/// across sessions, and what it holds (the SDK's `Positions`).
struct Receiving {
    to_session: Option<Box<dyn futures_util::Sink<WsMessage, Error = ()> + Unpin + Send>>,
    from_session: Box<dyn futures_util::Stream<Item = WsMessage> + Unpin + Send>,
    session: tokio::task::JoinHandle<()>,
    frames: Vec<u64>,
    held: custodia_sdk::Positions,
}

impl Receiving {
    async fn connect(
        f: &Fixture,
        who: &custodia_service::Principal,
        held: custodia_sdk::Positions,
    ) -> Self {
        let (mut to_session, from_client) = futures_channel();
        let (to_client, from_session) = futures_channel();
        let session = tokio::spawn(crate::ws::run(
            f.state.clone(),
            who.clone(),
            to_client.sink_map_err(|_| ()),
            from_client.map(Ok::<_, axum::Error>),
        ));
        let sync = ClientFrame::Sync {
            cursors: held.through(),
            limit: None,
        };
        to_session
            .send(WsMessage::Text(
                serde_json::to_string(&sync).unwrap().into(),
            ))
            .await
            .unwrap();
        Self {
            to_session: Some(Box::new(to_session)),
            from_session: Box::new(from_session),
            session,
            frames: Vec::new(),
            held,
        }
    }

    /// Reads frames until message `seq` has arrived (a failure if the session ends first).
    async fn until(&mut self, seq: u64) {
        while self.frames.last() != Some(&seq) {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.from_session.next())
                .await
                .expect("a frame within a minute")
                .expect("the session is open");
            self.take(frame);
        }
    }

    fn take(&mut self, frame: WsMessage) {
        if let WsMessage::Text(t) = frame
            && let Ok(ServerFrame::Message(m)) = serde_json::from_str::<ServerFrame>(t.as_str())
        {
            self.frames.push(m.seq);
            self.held.receive(m.conversation_id, m.seq);
        }
    }

    /// Closes this session (reading what it still sent) and opens the next one.
    async fn reconnect(mut self, f: &Fixture, who: &custodia_service::Principal) -> Self {
        drop(self.to_session.take());
        while let Some(frame) = self.from_session.next().await {
            self.take(frame);
        }
        self.session.await.unwrap();
        let mut next = Self::connect(f, who, self.held).await;
        next.frames = self.frames;
        next
    }
}

/// Delivery never skips and never repeats: whatever live events are lost, however large
/// the gaps (past the 200-message page), and however often the client reconnects, the
/// receiving client is sent every message once, in order, and holds all of them.
fn delivery_with(steps: Vec<Step>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let lossy = Arc::new(std::sync::OnceLock::<Arc<LossyFanout>>::new());
        let keep = lossy.clone();
        let config = ServiceConfig {
            sends_per_account: custodia_core::RateLimit {
                burst: 1_000_000,
                per: Duration::from_secs(60),
            },
            sends_new_account: custodia_core::RateLimit {
                burst: 1_000_000,
                per: Duration::from_secs(60),
            },
            ..ServiceConfig::default()
        };
        let f = fixture_with(
            move |hub| {
                let fanout = Arc::new(LossyFanout {
                    hub,
                    losing: Default::default(),
                });
                let _ = keep.set(fanout.clone());
                fanout
            },
            config,
        )
        .await;
        let lossy = lossy.get().unwrap().clone();
        let alice = member(&f, "alice").await;
        let bob = member(&f, "bob").await;
        let alice = f.state.service.authenticate(&alice).await.unwrap();
        let bob = f.state.service.authenticate(&bob).await.unwrap();
        let conv = f
            .state
            .service
            .open_direct(&alice, &custodia_core::Username::parse("bob").unwrap())
            .await
            .unwrap()
            .0
            .id;
        let mut receiving = Receiving::connect(&f, &bob, Default::default()).await;
        let mut sent = 0u64;
        let send = |n: u64, from: u64| {
            let (f, alice) = (&f, &alice);
            async move {
                for chunk in (from..from + n).collect::<Vec<_>>().chunks(64) {
                    let sends = chunk.iter().map(|k| {
                        f.state.service.send(
                            alice,
                            conv,
                            custodia_core::ClientMsgId::parse(&format!("m{k}")).unwrap(),
                            custodia_core::MessageBody::parse(format!("message {k}")).unwrap(),
                        )
                    });
                    for r in futures_util::future::join_all(sends).await {
                        r.unwrap();
                    }
                }
            }
        };
        for step in steps.into_iter().chain([Step::Live(1)]) {
            match step {
                Step::Live(n) => {
                    send(n, sent).await;
                    sent += n;
                }
                Step::Lost(n) => {
                    lossy
                        .losing
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    send(n, sent).await;
                    lossy
                        .losing
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    sent += n;
                }
                Step::Reconnect => receiving = receiving.reconnect(&f, &bob).await,
                Step::Resync => lossy.hub.deliver(&[bob.user_id], &Arc::new(Event::Resync)),
            }
        }
        receiving.until(sent).await;
        let expected: Vec<u64> = (1..=sent).collect();
        if let Some(at) = (0..expected.len().max(receiving.frames.len()))
            .find(|&k| receiving.frames.get(k) != expected.get(k))
        {
            panic!(
                "not every message once, in order: {} frames for {sent} messages; \
                 frame {at} is {:?} where {:?} was due",
                receiving.frames.len(),
                receiving.frames.get(at),
                expected.get(at)
            );
        }
        assert_eq!(receiving.held.through()[conv.as_uuid()], sent);
    });
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (1u64..4).prop_map(Step::Live),
        (1u64..450).prop_map(Step::Lost),
        Just(Step::Reconnect),
        Just(Step::Resync),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
    #[test]
    fn any_losses_gaps_and_reconnects_deliver_every_message_once_in_order(
        steps in proptest::collection::vec(step(), 1..6)
    ) {
        delivery_with(steps);
    }
}

/// The sizes that hid the bug: a gap of 300 and one of 1,000 behind a live message, and
/// a reconnect after a lost burst.
#[test]
fn gaps_past_a_page_are_filled_whole() {
    delivery_with(vec![
        Step::Live(2),
        Step::Lost(300),
        Step::Live(1),
        Step::Lost(1_000),
    ]);
    delivery_with(vec![
        Step::Lost(450),
        Step::Reconnect,
        Step::Lost(201),
        Step::Resync,
    ]);
}
