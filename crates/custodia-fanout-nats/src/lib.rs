//! Fan-out over NATS, for deployments of several `custodia serve` nodes: behind the
//! `Fanout` seam of `custodia-service`, each node delivers an event to its own live
//! sessions at once and publishes a [`Notice`] on the deployment's subject; every other
//! node delivers it to the recipients connected there.
//!
//! NATS core delivery is at most once, so correctness never rests on it: sessions keep a
//! delivery cursor per conversation (a gap is filled from storage before the next
//! message), and whenever a node may have missed or dropped notices — its connection to
//! NATS came back, or NATS reported it as a slow consumer — it tells every node's live
//! sessions to catch up from storage ([`Event::Resync`]). Sends never wait on NATS.
//!
//! Messages cross NATS by id only: the receiving node reads the sealed message from the
//! shared store and opens it with its own key service.

mod notice;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use custodia_core::{SessionId, UserId, redact_url};
use custodia_service::{Event, Fanout, Hub, Service};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

pub use notice::{DecodeError, Kind, Notice};

/// Notices waiting to be published; when full (NATS is down or slow), further notices
/// are dropped and the node asks for a resync once it can publish again.
const OUTBOX: usize = 65_536;
/// Notices being resolved at once (a message notice reads the store); results are
/// applied in arrival order.
const RESOLVING: usize = 32;

/// How a node reaches NATS.
#[derive(Clone)]
pub struct NatsOptions {
    /// `nats://host:port`.
    pub url: String,
    /// The deployment's subject prefix: nodes of one deployment share it, and nothing
    /// else may publish under it.
    pub subject_prefix: String,
    /// A CA certificate (PEM) to trust for NATS's TLS, besides the system's roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token or password.
        f.debug_struct("NatsOptions")
            .field("url", &redact_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// Why fan-out over NATS could not start.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The subject prefix is not a valid NATS subject.
    #[error(
        "nats_subject_prefix {0:?} must be dot-separated tokens of letters, digits, '-' and '_'"
    )]
    Prefix(String),
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {why}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        why: String,
    },
    /// The subscription failed.
    #[error("subscribing on NATS: {0}")]
    Subscribe(String),
}

/// Fan-out through NATS.
pub struct NatsFanout {
    client: async_nats::Client,
    subject: String,
    node: Uuid,
    hub: Arc<Hub>,
    outbox: mpsc::Sender<Bytes>,
    resync: mpsc::UnboundedSender<()>,
}

/// What another node's notice asks of this node, applied in arrival order.
enum Step {
    /// Hand an event to these live sessions.
    Deliver(Vec<UserId>, Arc<Event>),
    /// Every live session catches up from storage.
    Resync,
    /// Close one session's live connections.
    Disconnect(UserId, SessionId),
}

fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

impl NatsFanout {
    /// Connects to NATS; fails at once (with a clear message) if it cannot be reached.
    /// Nothing is received until [`Self::start`].
    pub async fn connect(options: &NatsOptions, hub: Arc<Hub>) -> Result<Arc<Self>, FanoutError> {
        if !valid_prefix(&options.subject_prefix) {
            return Err(FanoutError::Prefix(options.subject_prefix.clone()));
        }
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let on_event = resync.clone();
        let mut connect = async_nats::ConnectOptions::new();
        if let Some(ca) = &options.ca_cert {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = connect
            .name("custodia")
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let on_event = on_event.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            let _ = on_event.send(());
                        }
                        async_nats::Event::SlowConsumer(_) => {
                            tracing::warn!("NATS dropped notices for this node (slow consumer)");
                            let _ = on_event.send(());
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("lost the connection to NATS; reconnecting");
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connect(options.url.as_str())
            .await
            .map_err(|e| FanoutError::Connect {
                url: redact_url(&options.url),
                why: e.to_string(),
            })?;
        let subject = format!("{}.fanout", options.subject_prefix);
        let (outbox, queued) = mpsc::channel(OUTBOX);
        tokio::spawn(publish_queued(client.clone(), subject.clone(), queued));
        let me = Arc::new(Self {
            client,
            subject,
            node: Uuid::new_v4(),
            hub,
            outbox,
            resync,
        });
        tokio::spawn(resync_on_signal(me.clone(), resync_rx));
        Ok(me)
    }

    /// Starts delivering other nodes' notices to this node's live sessions, resolving
    /// messages through `service`. Returns once the subscription is in place.
    pub async fn start(self: &Arc<Self>, service: Service) -> Result<(), FanoutError> {
        let sub = self
            .client
            .subscribe(self.subject.clone())
            .await
            .map_err(|e| FanoutError::Subscribe(e.to_string()))?;
        self.client
            .flush()
            .await
            .map_err(|e| FanoutError::Subscribe(e.to_string()))?;
        let me = self.clone();
        tokio::spawn(async move {
            let mut steps = sub
                .map(|msg| me.resolve(&service, msg.payload))
                .buffered(RESOLVING);
            while let Some(step) = steps.next().await {
                match step {
                    Some(Step::Deliver(recipients, event)) => me.hub.deliver(&recipients, &event),
                    Some(Step::Resync) => me.hub.resync_all(),
                    Some(Step::Disconnect(user, session)) => {
                        me.hub.disconnect_session(user, session)
                    }
                    None => {}
                }
            }
        });
        Ok(())
    }

    /// Turns another node's notice into what this node must do, if anything (an event
    /// only for the recipients connected here).
    async fn resolve(&self, service: &Service, payload: Bytes) -> Option<Step> {
        let notice = match Notice::decode(&payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed fan-out notice");
                return None;
            }
        };
        if notice.node == self.node {
            return None;
        }
        match notice.kind {
            Kind::Resync => return Some(Step::Resync),
            Kind::Disconnect {
                user_id,
                session_id,
            } => return Some(Step::Disconnect(user_id, session_id)),
            _ => {}
        }
        let here = self.hub.live_among(&notice.recipients);
        let reader = *here.first()?;
        let event = match notice.kind {
            Kind::Message {
                conversation_id,
                seq,
            } => match service.message_event(conversation_id, seq, reader).await {
                Ok(Some(e)) => e,
                Ok(None) => return None,
                Err(e) => {
                    // The session's next gap fill or resync catches up.
                    tracing::debug!(error = %e, "cannot read an announced message");
                    return None;
                }
            },
            Kind::Read {
                conversation_id,
                user_id,
                seq,
            } => Event::Read {
                conversation_id,
                user_id,
                seq,
            },
            Kind::Deleted {
                conversation_id,
                seq,
            } => Event::Deleted {
                conversation_id,
                seq,
            },
            Kind::Membership {
                conversation_id,
                user_id,
                username,
                joined,
            } => Event::Membership {
                conversation_id,
                user_id,
                username,
                joined,
            },
            Kind::AccessNotice { user_id, log_index } => {
                match service.access_notice_event(user_id, log_index).await {
                    Ok(Some(e)) => e,
                    Ok(None) => return None,
                    Err(e) => {
                        // The member's notice list has it.
                        tracing::debug!(error = %e, "cannot read an announced access notice");
                        return None;
                    }
                }
            }
            Kind::Resync | Kind::Disconnect { .. } => return None, // answered above
        };
        Some(Step::Deliver(here, Arc::new(event)))
    }

    /// Queues a notice for the other nodes without waiting; `false` if the outbox is full.
    fn queue(&self, kind: Kind, recipients: Vec<UserId>) -> bool {
        let notice = Notice {
            node: self.node,
            kind,
            recipients,
        };
        self.outbox.try_send(notice.encode().into()).is_ok()
    }

    /// Queues a notice; if it had to be dropped, every node resyncs once this node can
    /// publish again.
    fn send(&self, kind: Kind, recipients: Vec<UserId>) {
        if !self.queue(kind, recipients) {
            tracing::warn!("fan-out outbox full: dropped a notice; asking every node to resync");
            let _ = self.resync.send(());
        }
    }
}

/// Whenever this node may have missed or dropped notices (signalled on `signals`): once
/// the connection is back, its live sessions catch up and it asks every node to do so.
async fn resync_on_signal(me: Arc<NatsFanout>, mut signals: mpsc::UnboundedReceiver<()>) {
    while signals.recv().await.is_some() {
        // Drain repeated signals; one resync covers them.
        while signals.try_recv().is_ok() {}
        // After a reconnect, wait until the subscription is re-established (a flush round
        // trip), so nothing falls between catch-up and live.
        if me.client.flush().await.is_err() {
            continue;
        }
        me.hub.resync_all();
        // Ask the other nodes too, waiting for room in the outbox if it is full (it
        // drains as long as NATS is reachable).
        for _ in 0..100 {
            if me.queue(Kind::Resync, Vec::new()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn publish_queued(
    client: async_nats::Client,
    subject: String,
    mut queued: mpsc::Receiver<Bytes>,
) {
    while let Some(payload) = queued.recv().await {
        if let Err(e) = client.publish(subject.clone(), payload).await {
            tracing::warn!(error = %e, "publishing a fan-out notice failed");
        }
    }
}

#[async_trait]
impl Fanout for NatsFanout {
    async fn publish(&self, recipients: Vec<UserId>, event: Arc<Event>) {
        self.hub.deliver(&recipients, &event);
        let kind = match &*event {
            Event::Message(m) => Kind::Message {
                conversation_id: m.conversation_id,
                seq: m.seq,
            },
            Event::Read {
                conversation_id,
                user_id,
                seq,
            } => Kind::Read {
                conversation_id: *conversation_id,
                user_id: *user_id,
                seq: *seq,
            },
            Event::Deleted {
                conversation_id,
                seq,
            } => Kind::Deleted {
                conversation_id: *conversation_id,
                seq: *seq,
            },
            Event::Membership {
                conversation_id,
                user_id,
                username,
                joined,
            } => Kind::Membership {
                conversation_id: *conversation_id,
                user_id: *user_id,
                username: username.clone(),
                joined: *joined,
            },
            Event::AccessNotice(n) => Kind::AccessNotice {
                user_id: n.user_id,
                log_index: n.log_index,
            },
            _ => return,
        };
        self.send(kind, recipients);
    }

    async fn disconnect_session(&self, user: UserId, session: SessionId) {
        self.hub.disconnect_session(user, session);
        self.send(
            Kind::Disconnect {
                user_id: user,
                session_id: session,
            },
            vec![user],
        );
    }

    fn healthy(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
