//! Real-time delivery: the [`Hub`] of this node's live sessions and the [`Fanout`] seam
//! that carries events to every node's hub.
//!
//! Fan-out is best effort: a session whose queue is full is disconnected rather than
//! slowing everyone down, and a client that missed events catches up from storage on
//! reconnect. Correctness never rests on fan-out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use custodia_core::{ConversationId, SessionId, UserId, Username};
use tokio::sync::mpsc;

use crate::MessageView;

/// Events queued per live session before it counts as too slow and is disconnected.
const SESSION_QUEUE: usize = 1024;

/// Something members of a conversation learn in real time.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new message.
    Message(MessageView),
    /// A member's read position moved.
    Read {
        /// Where.
        conversation_id: ConversationId,
        /// Who read.
        user_id: UserId,
        /// Up to which sequence number.
        seq: u64,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// Where.
        conversation_id: ConversationId,
        /// Which message.
        seq: u64,
    },
    /// Someone joined or left (or was added or removed).
    Membership {
        /// Where.
        conversation_id: ConversationId,
        /// Who.
        user_id: UserId,
        /// Their name.
        username: Username,
        /// Joined (`true`) or left (`false`).
        joined: bool,
    },
    /// Live events may have been missed (the node lost its fan-out connection, or fell
    /// behind): catch up from storage after the positions already delivered.
    Resync,
    /// Staff read messages of the recipient (their own notice).
    AccessNotice(custodia_store::AccessNoticeRecord),
}

/// Carries an event to the hubs of every node where a recipient may be connected.
#[async_trait]
pub trait Fanout: Send + Sync {
    /// Delivers `event` to every live session of `recipients`, at most once. Never waits
    /// on another node: a send is acknowledged whether or not fan-out works.
    async fn publish(&self, recipients: Vec<UserId>, event: Arc<Event>);
    /// Closes the live connections of one session on every node (it was revoked).
    async fn disconnect_session(&self, user: UserId, session: SessionId);
    /// Whether events reach the other nodes right now (for readiness).
    fn healthy(&self) -> bool {
        true
    }
}

/// Fan-out within one process: straight into the local hub.
pub struct LocalFanout(pub Arc<Hub>);

#[async_trait]
impl Fanout for LocalFanout {
    async fn publish(&self, recipients: Vec<UserId>, event: Arc<Event>) {
        self.0.deliver(&recipients, &event);
    }

    async fn disconnect_session(&self, user: UserId, session: SessionId) {
        self.0.disconnect_session(user, session);
    }
}

struct Entry {
    conn: u64,
    session: SessionId,
    tx: mpsc::Sender<Arc<Event>>,
}

/// The live sessions connected to this node.
#[derive(Default)]
pub struct Hub {
    next: AtomicU64,
    // std Mutex: held for map updates and non-blocking `try_send`s, never across an await.
    live: Mutex<HashMap<UserId, Vec<Entry>>>,
}

/// A live session's registration; dropping it unregisters.
pub struct Subscription {
    hub: Arc<Hub>,
    user: UserId,
    conn: u64,
    /// Events for this session, in publication order. Closed when the session is revoked
    /// or was too slow.
    pub events: mpsc::Receiver<Arc<Event>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.user, |e| e.conn == self.conn);
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a live session of `user`.
    pub fn subscribe(self: &Arc<Self>, user: UserId, session: SessionId) -> Subscription {
        let (tx, events) = mpsc::channel(SESSION_QUEUE);
        let conn = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(user)
            .or_default()
            .push(Entry { conn, session, tx });
        Subscription {
            hub: self.clone(),
            user,
            conn,
            events,
        }
    }

    /// Hands `event` to every live session of `recipients` on this node. A session whose
    /// queue is full is dropped (it will catch up when it reconnects).
    pub fn deliver(&self, recipients: &[UserId], event: &Arc<Event>) {
        let mut live = self.lock();
        for user in recipients {
            if let Some(entries) = live.get_mut(user) {
                entries.retain(|e| e.tx.try_send(event.clone()).is_ok());
                if entries.is_empty() {
                    live.remove(user);
                }
            }
        }
    }

    /// Tells every live session on this node to catch up from storage (see
    /// [`Event::Resync`]). A session whose queue is full is dropped, as in `deliver`.
    pub fn resync_all(&self) {
        let event = Arc::new(Event::Resync);
        let mut live = self.lock();
        for entries in live.values_mut() {
            entries.retain(|e| e.tx.try_send(event.clone()).is_ok());
        }
        live.retain(|_, entries| !entries.is_empty());
    }

    /// Those of `users` with a live session on this node.
    pub fn live_among(&self, users: &[UserId]) -> Vec<UserId> {
        let live = self.lock();
        users
            .iter()
            .filter(|u| live.contains_key(u))
            .copied()
            .collect()
    }

    /// Closes the live connections of one session.
    pub fn disconnect_session(&self, user: UserId, session: SessionId) {
        self.remove(user, |e| e.session == session);
    }

    /// How many sessions are live on this node.
    pub fn live_sessions(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn remove(&self, user: UserId, which: impl Fn(&Entry) -> bool) {
        let mut live = self.lock();
        if let Some(entries) = live.get_mut(&user) {
            entries.retain(|e| !which(e));
            if entries.is_empty() {
                live.remove(&user);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Vec<Entry>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
