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
use custodia_store::{
    DekStore, KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage, NoObserver,
    SealedBody, StoreResult, WrappedDek,
};
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
    async fn kek_usage(&self) -> StoreResult<Vec<KekUsage>> {
        self.inner.kek_usage().await
    }
    async fn kek_sealed_not_under(
        &self,
        kind: KekSealedKind,
        current: u32,
        after: Option<KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<KekSealed>> {
        self.inner
            .kek_sealed_not_under(kind, current, after, limit)
            .await
    }
    async fn replace_kek_sealed(&self, old: KekSealed, new: WrappedDek) -> StoreResult<bool> {
        self.inner.replace_kek_sealed(old, new).await
    }
    async fn add_kek_step(&self, step: KekStep) -> StoreResult<bool> {
        self.inner.add_kek_step(step).await
    }
    async fn kek_steps(&self) -> StoreResult<Vec<KekStep>> {
        self.inner.kek_steps().await
    }
    async fn kek_step_logged(
        &self,
        kind: KekStepKind,
        version: u32,
        index: u64,
    ) -> StoreResult<()> {
        self.inner.kek_step_logged(kind, version, index).await
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

#[tokio::test]
async fn a_rotated_kek_rewraps_every_data_key_and_a_retired_one_opens_nothing_but_tags_still_verify()
 {
    let f = Fixture::new().await;
    let deployment = DeploymentId::new();
    let (ring, _) = custodia_keys::KeyringFile::open(&f.keyring_path, None).unwrap();
    let keys = KeyService::new(
        deployment,
        ring,
        f.store.clone(),
        f.clock.clone(),
        CacheLimits {
            capacity: NonZeroUsize::new(1).unwrap(),
            max_age: Duration::from_secs(60),
        },
    );
    let sender = UserId::new();
    let reader = Purpose::Delivery { reader: sender };
    let epochs: Vec<Epoch> = (1..=5)
        .map(|d| Epoch::from_label(format!("d2026-11-0{d}")))
        .collect();
    let conv = ConversationId::new();
    let mut sent = Vec::new();
    for epoch in &epochs {
        let msg = MessageId::new();
        let m = keys
            .seal(ctx(conv, epoch, msg, sender), b"before")
            .await
            .unwrap();
        sent.push((epoch.clone(), msg, m));
    }
    assert_eq!(keys.current_kek(), 1);

    // The operator adds version 2; the service adopts it once its provider holds it.
    let v = Keyring::add_version(&f.keyring_path, None, true).unwrap();
    assert_eq!(v, 2);
    keys.adopt_kek(2).unwrap();
    assert_eq!(keys.current_kek(), 2);
    assert!(matches!(keys.adopt_kek(3), Err(KeyError::UnknownKek(3))));
    assert_eq!(
        keys.current_kek(),
        2,
        "a version it does not hold is not adopted"
    );

    // A new epoch's key is wrapped under version 2 at once.
    let new_epoch = Epoch::from_label("d2026-11-09".into());
    keys.seal(ctx(conv, &new_epoch, MessageId::new(), sender), b"after")
        .await
        .unwrap();
    let wrapped = f
        .store
        .wrapped_dek(conv, &new_epoch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wrapped.kek_version, 2);

    let old_wrapped = f
        .store
        .wrapped_dek(conv, &epochs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old_wrapped.kek_version, 1);

    // Rewrap what is under version 1, two at a time.
    let mut after = None;
    let mut rewrapped = 0;
    loop {
        let page = f
            .store
            .kek_sealed_not_under(KekSealedKind::Dek, 2, after.clone(), 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.item.clone());
        for item in page {
            let new = keys.rewrap(&item, None).unwrap();
            assert_eq!(new.kek_version, 2);
            assert!(f.store.replace_kek_sealed(item, new).await.unwrap());
            rewrapped += 1;
        }
    }
    assert_eq!(rewrapped, 5);
    let usage = f.store.kek_usage().await.unwrap();
    assert!(
        usage.iter().all(|u| u.version == 2),
        "nothing is left under version 1: {usage:?}"
    );

    // Version 1 retired: a fresh service (cold cache) opens every message, and the
    // franking tags made under version 1 still verify.
    Keyring::retire(&f.keyring_path, None, 1).unwrap();
    let text = std::fs::read_to_string(&f.keyring_path).unwrap();
    assert!(text.contains("\nretired 1 ") && !text.contains("\nkey 1 "));
    let (ring, created) = custodia_keys::KeyringFile::open(&f.keyring_path, None).unwrap();
    assert!(!created);
    let fresh = KeyService::new(
        deployment,
        ring,
        f.store.clone(),
        f.clock.clone(),
        CacheLimits {
            capacity: NonZeroUsize::new(16).unwrap(),
            max_age: Duration::from_secs(60),
        },
    );
    assert_eq!(fresh.kek_versions(), vec![2]);
    for (epoch, msg, m) in &sent {
        let c = ctx(conv, epoch, *msg, sender);
        let opened = fresh.open(reader.clone(), c, &m.sealed).await.unwrap();
        assert_eq!(&opened.body[..], b"before");
        assert!(fresh.verify_franking(&c, &m.franking, b"before", &m.franking_key));
        assert!(!fresh.verify_franking(&c, &m.franking, b"changed", &m.franking_key));
    }
    // Nothing sealed under version 1 opens any more: a copy of the data key as it was
    // wrapped before (an old backup, say) is useless.
    let old = KekSealed {
        item: KekItem::Dek {
            conversation: conv,
            epoch: epochs[0].clone(),
        },
        sealed: old_wrapped,
    };
    assert!(matches!(
        fresh.rewrap(&old, None),
        Err(KeyError::UnknownKek(1))
    ));
    assert!(matches!(
        Keyring::retire(&f.keyring_path, None, 2),
        Err(custodia_keys::KeyringError::Current(2))
    ));
}

#[tokio::test]
async fn a_served_document_is_rewrapped_bound_to_its_request_and_digest() {
    let f = Fixture::new().await;
    let (ring, _) = custodia_keys::KeyringFile::open(&f.keyring_path, None).unwrap();
    let keys = KeyService::new(
        DeploymentId::new(),
        ring,
        f.store.clone(),
        f.clock.clone(),
        CacheLimits {
            capacity: NonZeroUsize::new(4).unwrap(),
            max_age: Duration::from_secs(60),
        },
    );
    let request = custodia_core::LegalRequestId::new();
    let document = b"%PDF- a court order";
    let sha = [7u8; 32];
    let sealed = keys.seal_served_document(request, &sha, document).unwrap();
    let item = KekSealed {
        item: KekItem::Document {
            request,
            position: 0,
        },
        sealed: WrappedDek {
            kek_version: 1,
            bytes: sealed.0.clone(),
        },
    };
    Keyring::add_version(&f.keyring_path, None, true).unwrap();
    keys.adopt_kek(2).unwrap();
    assert!(
        matches!(keys.rewrap(&item, None), Err(KeyError::Unreadable)),
        "a document's digest is part of what it is bound to"
    );
    assert!(
        keys.rewrap(&item, Some(&[8u8; 32])).is_err(),
        "another digest"
    );
    let new = keys.rewrap(&item, Some(&sha)).unwrap();
    assert_eq!(new.kek_version, 2);
    assert_eq!(
        &new.bytes[..4],
        &2u32.to_be_bytes(),
        "stored with its version in front"
    );
    let opened = keys
        .open_served_document(request, &sha, &SealedBody(new.bytes))
        .unwrap();
    assert_eq!(&opened[..], document);
}
