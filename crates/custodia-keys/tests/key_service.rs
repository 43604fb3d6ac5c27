//! The key service over the real SQLite store: context binding and the DEK cache bounds.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use custodia_core::{
    ConversationId, DeploymentId, Epoch, ManualClock, MessageId, Timestamp, UserId,
};
use custodia_keys::{
    CacheLimits, FrankingKey, KeyError, KeyService, Keyring, MessageContext, Purpose,
};
use custodia_store::{DekStore, NoObserver, SealedBody, StoreResult, WrappedDek};
use custodia_store_sqlite::SqliteStore;

/// The real store, counting how often the key service reads a wrapped key from it.
struct Counting {
    inner: Arc<dyn DekStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl DekStore for Counting {
    async fn wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
    ) -> StoreResult<Option<WrappedDek>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.wrapped_dek(id, epoch).await
    }
    async fn put_wrapped_dek(
        &self,
        id: ConversationId,
        epoch: &Epoch,
        dek: WrappedDek,
    ) -> StoreResult<WrappedDek> {
        self.inner.put_wrapped_dek(id, epoch, dek).await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Counting>,
    clock: Arc<ManualClock>,
    keyring_path: std::path::PathBuf,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("db"), Arc::new(NoObserver))
            .await
            .unwrap();
        let store = Arc::new(Counting {
            inner: sqlite,
            reads: AtomicUsize::new(0),
        });
        let keyring_path = dir.path().join("keyring");
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_435_200_000)));
        Self {
            _dir: dir,
            store,
            clock,
            keyring_path,
        }
    }

    fn service(&self, deployment: DeploymentId, capacity: usize) -> KeyService {
        let (keyring, _) = Keyring::load_or_create(&self.keyring_path, None).unwrap();
        let limits = CacheLimits {
            capacity: NonZeroUsize::new(capacity).unwrap(),
            max_age: Duration::from_secs(60),
        };
        KeyService::new(
            deployment,
            keyring,
            self.store.clone(),
            self.clock.clone(),
            limits,
        )
    }

    fn reads(&self) -> usize {
        self.store.reads.load(Ordering::SeqCst)
    }
}

fn ctx(
    conversation: ConversationId,
    epoch: &Epoch,
    message: MessageId,
    sender: UserId,
) -> MessageContext<'_> {
    MessageContext {
        conversation,
        epoch,
        message,
        sender,
        sent_at: Timestamp::from_millis(1_795_435_200_000),
        seq: Some(1),
    }
}

#[tokio::test]
async fn a_sealed_body_opens_only_in_its_own_context() {
    let f = Fixture::new().await;
    let deployment = DeploymentId::new();
    let keys = f.service(deployment, 16);
    let (conv, msg, sender, reader) = (
        ConversationId::new(),
        MessageId::new(),
        UserId::new(),
        UserId::new(),
    );
    let epoch = Epoch::from_label("m2026-11".into());
    let purpose = Purpose::Delivery { reader };

    let message = keys
        .seal(ctx(conv, &epoch, msg, sender), b"the plaintext")
        .await
        .unwrap();
    let sealed = message.sealed.clone();
    assert!(!sealed.0.windows(13).any(|w| w == b"the plaintext"));
    let opened = keys
        .open(purpose.clone(), ctx(conv, &epoch, msg, sender), &sealed)
        .await
        .unwrap();
    assert_eq!(&opened.body[..], b"the plaintext");
    assert_eq!(
        opened.franking_key.unwrap().as_bytes(),
        message.franking_key.as_bytes(),
        "members receive the franking key with the body"
    );

    let other_msg = keys
        .open(
            purpose.clone(),
            ctx(conv, &epoch, MessageId::new(), sender),
            &sealed,
        )
        .await;
    let other_sender = keys
        .open(
            purpose.clone(),
            ctx(conv, &epoch, msg, UserId::new()),
            &sealed,
        )
        .await;
    assert!(
        matches!(other_msg, Err(KeyError::Unreadable)),
        "moved to another message id"
    );
    assert!(
        matches!(other_sender, Err(KeyError::Unreadable)),
        "attributed to another sender"
    );
    let other_conv = keys
        .open(
            purpose.clone(),
            ctx(ConversationId::new(), &epoch, msg, sender),
            &sealed,
        )
        .await;
    assert!(
        matches!(other_conv, Err(KeyError::NoKey)),
        "another conversation has no key for it"
    );
    let next_month = Epoch::from_label("m2026-12".into());
    let other_epoch = keys
        .open(
            purpose.clone(),
            ctx(conv, &next_month, msg, sender),
            &sealed,
        )
        .await;
    assert!(matches!(other_epoch, Err(KeyError::NoKey)));

    // The same keyring and store under another deployment id cannot open it either.
    let elsewhere = f.service(DeploymentId::new(), 16);
    let moved = elsewhere
        .open(purpose.clone(), ctx(conv, &epoch, msg, sender), &sealed)
        .await;
    assert!(matches!(moved, Err(KeyError::Unreadable)));

    let mut flipped = sealed.0.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let tampered = keys
        .open(
            purpose.clone(),
            ctx(conv, &epoch, msg, sender),
            &SealedBody(flipped),
        )
        .await;
    assert!(matches!(tampered, Err(KeyError::Unreadable)));
}

#[tokio::test]
async fn the_dek_cache_is_bounded_in_age_and_size() {
    let f = Fixture::new().await;
    let keys = f.service(DeploymentId::new(), 1);
    let epoch = Epoch::from_label("m2026-11".into());
    let (a, b, sender) = (ConversationId::new(), ConversationId::new(), UserId::new());
    let purpose = Purpose::Delivery { reader: sender };
    let sealed_a = keys
        .seal(ctx(a, &epoch, MessageId::new(), sender), b"a")
        .await
        .unwrap()
        .sealed;
    let reads_after_create = f.reads();

    // Cached: sealing again in the same epoch does not touch the store.
    let m = MessageId::new();
    let again = keys
        .seal(ctx(a, &epoch, m, sender), b"a2")
        .await
        .unwrap()
        .sealed;
    assert_eq!(f.reads(), reads_after_create);

    // Older than max_age: unwrapped again from the store.
    f.clock.advance(Duration::from_secs(61));
    keys.open(purpose.clone(), ctx(a, &epoch, m, sender), &again)
        .await
        .unwrap();
    assert_eq!(f.reads(), reads_after_create + 1);

    // Capacity 1: another conversation's key evicts it.
    keys.seal(ctx(b, &epoch, MessageId::new(), sender), b"b")
        .await
        .unwrap();
    let before = f.reads();
    keys.open(purpose.clone(), ctx(a, &epoch, m, sender), &again)
        .await
        .unwrap();
    assert_eq!(f.reads(), before + 1, "a's key was evicted and read again");
    assert!(
        keys.open(
            purpose.clone(),
            ctx(a, &epoch, MessageId::new(), sender),
            &sealed_a
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn franking_verifies_only_the_exact_text_from_its_sender_at_its_time() {
    let f = Fixture::new().await;
    let keys = f.service(DeploymentId::new(), 16);
    let epoch = Epoch::from_label("m2026-11".into());
    let (conv, msg, sender) = (ConversationId::new(), MessageId::new(), UserId::new());
    let c = ctx(conv, &epoch, msg, sender);
    let m = keys.seal(c, b"you will regret this").await.unwrap();
    let key = &m.franking_key;
    assert!(keys.verify_franking(&c, &m.franking, b"you will regret this", key));
    // A forged text, another key, another sender or time: not verified.
    assert!(!keys.verify_franking(&c, &m.franking, b"you will regret this!", key));
    let other_key = FrankingKey::from_bytes([7; 32]);
    assert!(!keys.verify_franking(&c, &m.franking, b"you will regret this", &other_key));
    let mut someone_else = c;
    someone_else.sender = UserId::new();
    assert!(!keys.verify_franking(&someone_else, &m.franking, b"you will regret this", key));
    let mut later = c;
    later.sent_at = Timestamp::from_millis(1_795_435_200_001);
    assert!(!keys.verify_franking(&later, &m.franking, b"you will regret this", key));
    // The commitment does not reveal the text; the tag is not a commitment to it either.
    assert_ne!(&m.franking.commitment[..], &b"you will regret this"[..]);
    let mut forged_tag = m.franking.clone();
    *forged_tag.tag.last_mut().unwrap() ^= 1;
    assert!(!keys.verify_franking(&c, &forged_tag, b"you will regret this", key));
}
