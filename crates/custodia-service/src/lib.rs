//! The domain service: what users can do, independent of any wire format.
//!
//! It checks permissions, seals and opens bodies through the key service, writes through
//! the storage seam and announces events through the fan-out seam. It knows no JSON and
//! no status codes; its outcomes are [`ServiceError`] variants.
//!
//! Layout:
//! - `accounts` — register, sign in, sessions.
//! - `attachments` — upload (sniffed, hashed, matched, sealed) and member-only download.
//! - `images` — safe decoding, PDQ hashing and the PDQ list index.
//! - `credentials` — argon2id password hashes off the async threads, bearer tokens.
//! - `conversations` — direct conversations and groups, membership.
//! - `messages` — send, history, catch-up, read receipts, delete for everyone.
//! - `safety` — teen protections, connections, blocking, send limits.
//! - `signals` — text rules evaluated at ingest, and the [`Signals`] seam that opens cases.
//! - `fanout` — [`Event`]s, the [`Hub`] of live sessions, the [`Fanout`] seam.
//! - `error` — [`ServiceError`].

mod accounts;
mod attachments;
mod conversations;
pub mod credentials;
mod error;
mod fanout;
mod images;
mod limits;
mod messages;
mod safety;
mod signals;

use std::sync::Arc;
use std::time::Duration;

use custodia_core::{Clock, EpochScheme, RateLimit};
use custodia_keys::KeyService;
use custodia_store::Storage;

pub use accounts::{NewSession, Principal, SessionInfo};
pub use attachments::{AttachmentView, HashMatch, UploadHashes, open_attachment, upload_hashes};
pub use conversations::{ConversationView, MemberView};
pub use error::{ServiceError, ServiceResult};
pub use fanout::{Event, Fanout, Hub, LocalFanout, Subscription};
pub use limits::{SendLimit, SharedBuckets, SharedLimit};
pub use messages::{
    Admit, Content, Deletion, DeliveryCursor, HistoryPage, MAX_PAGE, MessageView, SendOutcome,
    context_of, metadata_of, open_for_disclosure, open_message,
};
pub use safety::ConnectionView;
pub use signals::{Signal, Signals, TextRules};

/// Tunables of the service, validated by the caller's configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How key epochs are cut.
    pub epoch: EpochScheme,
    /// Lifetime of a user session.
    pub session_ttl: Duration,
    /// Most members of a group.
    pub max_group_members: u32,
    /// Sign-in attempts on one account from one client address (what a stranger can spend
    /// on someone else's account, so it cannot lock the member out).
    pub login_per_account: RateLimit,
    /// Sign-in attempts on one account from all addresses together.
    pub login_per_account_total: RateLimit,
    /// Sign-in attempts per client address.
    pub login_per_address: RateLimit,
    /// Sign-ups per client address.
    pub signups_per_address: RateLimit,
    /// Sends per account.
    pub sends_per_account: RateLimit,
    /// Sends per account in its first day.
    pub sends_new_account: RateLimit,
    /// An adult's sends to a minor in a direct conversation less than a day old.
    pub sends_first_contact: RateLimit,
    /// The largest attachment, in bytes.
    pub max_attachment_bytes: u64,
    /// The largest PDQ distance that counts as a match (at most 31).
    pub pdq_max_distance: u32,
    /// The lowest PDQ quality trusted for matching.
    pub pdq_min_quality: u8,
    /// Hash lists whose matches open `normal` cases (every other list's open `high` ones).
    pub normal_priority_lists: Vec<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            epoch: EpochScheme::Month,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            max_group_members: 1024,
            login_per_account: RateLimit {
                burst: 10,
                per: Duration::from_secs(300),
            },
            login_per_account_total: RateLimit {
                burst: 100,
                per: Duration::from_secs(300),
            },
            login_per_address: RateLimit {
                burst: 50,
                per: Duration::from_secs(300),
            },
            signups_per_address: RateLimit {
                burst: 20,
                per: Duration::from_secs(3600),
            },
            sends_per_account: RateLimit {
                burst: 120,
                per: Duration::from_secs(60),
            },
            sends_new_account: RateLimit {
                burst: 30,
                per: Duration::from_secs(60),
            },
            sends_first_contact: RateLimit {
                burst: 5,
                per: Duration::from_secs(3600),
            },
            max_attachment_bytes: 25 * 1024 * 1024,
            pdq_max_distance: 31,
            pdq_min_quality: 50,
            normal_priority_lists: Vec::new(),
        }
    }
}

/// The service. Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Storage,
    keys: Arc<KeyService>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    fanout: Arc<dyn Fanout>,
    config: ServiceConfig,
    /// Sign-in and sign-up attempts, kept in the store (they must hold across nodes).
    login_by_account: SharedLimit,
    login_by_account_total: SharedLimit,
    login_by_address: SharedLimit,
    signups_by_address: SharedLimit,
    /// Send limits: shared by every node when `shared_limits` is set, else per node.
    sends_per_account: SendLimit,
    sends_new_account: SendLimit,
    sends_first_contact: SendLimit,
    shared_limits: Option<Arc<dyn SharedBuckets>>,
    /// Whether the shared limits failed at their last use (each node then limits alone).
    limits_degraded: std::sync::atomic::AtomicBool,
    /// Where signals go (case opening), if anywhere.
    signals: Option<Arc<dyn Signals>>,
    /// The text rules, if configured.
    text_rules: Option<Arc<TextRules>>,
    /// Wakes the signal worker when a send stored a signal in the outbox.
    signal_wakeup: tokio::sync::Notify,
    /// The PDQ lists' index.
    pdq: images::PdqLists,
    // std Mutex: held for one cache lookup or insert, never across an await.
    births: std::sync::Mutex<lru::LruCache<custodia_core::UserId, custodia_core::BirthDate>>,
}

impl Service {
    /// Assembles the service from its parts.
    pub fn new(
        store: Storage,
        keys: Arc<KeyService>,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        fanout: Arc<dyn Fanout>,
        config: ServiceConfig,
    ) -> Self {
        let shared =
            |name, limit| SharedLimit::new(name, limit, store.limits.clone(), clock.clone());
        let login_by_account = shared("login-account-address", config.login_per_account);
        let login_by_account_total = shared("login-account", config.login_per_account_total);
        let login_by_address = shared("login-address", config.login_per_address);
        let signups_by_address = shared("signup-address", config.signups_per_address);
        let sends_per_account =
            SendLimit::new("sends-account", config.sends_per_account, clock.clone());
        let sends_new_account =
            SendLimit::new("sends-new-account", config.sends_new_account, clock.clone());
        let sends_first_contact = SendLimit::new(
            "sends-first-contact",
            config.sends_first_contact,
            clock.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                clock,
                hub,
                fanout,
                config,
                login_by_account,
                login_by_account_total,
                login_by_address,
                signups_by_address,
                sends_per_account,
                sends_new_account,
                sends_first_contact,
                shared_limits: None,
                limits_degraded: std::sync::atomic::AtomicBool::new(false),
                signals: None,
                text_rules: None,
                signal_wakeup: tokio::sync::Notify::new(),
                pdq: images::PdqLists::new(),
                births: std::sync::Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(100_000).unwrap_or(std::num::NonZeroUsize::MIN),
                )),
            }),
        }
    }

    /// The same service, handing hash-list matches and (with `rules`) text-rule matches
    /// to `sink`. Call before the service is shared.
    pub fn with_signals(mut self, sink: Arc<dyn Signals>, rules: Option<Arc<TextRules>>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.signals = Some(sink);
            inner.text_rules = rules;
        }
        self
    }

    /// The same service, taking send limits from `buckets`, which every node shares (on
    /// any failure each node limits on its own). Call before the service is shared.
    pub fn with_shared_limits(mut self, buckets: Arc<dyn SharedBuckets>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.shared_limits = Some(buckets);
        }
        self
    }

    /// Whether send limits are degraded to per-node: shared limits are configured and did
    /// not answer (at their last use, or now).
    pub async fn limits_degraded(&self) -> bool {
        let inner = &self.inner;
        match &inner.shared_limits {
            None => false,
            Some(s) => {
                let down = !s.healthy().await;
                if !down {
                    inner
                        .limits_degraded
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                }
                down || inner
                    .limits_degraded
                    .load(std::sync::atomic::Ordering::Relaxed)
            }
        }
    }

    /// The hub of live sessions on this node.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Today's date (UTC) by the service's clock.
    pub fn today(&self) -> time::Date {
        self.inner.clock.now().to_datetime().date()
    }

    /// Succeeds if storage can serve reads and writes and fan-out reaches the other
    /// nodes (a load balancer should send clients elsewhere otherwise).
    pub async fn ready(&self) -> ServiceResult<()> {
        self.inner.store.health.ping().await?;
        if !self.inner.fanout.healthy() {
            return Err(ServiceError::Unavailable(
                "fan-out to the other nodes is down".into(),
            ));
        }
        Ok(())
    }
}
