//! [`KeyService`]: sealing and opening message bodies under per-(conversation, epoch) DEKs.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custodia_core::{
    CaseId, Clock, ConversationId, DeploymentId, Epoch, LegalRequestId, MessageId, Timestamp,
    UserId,
};
use custodia_store::{DekStore, Franking, KekItem, KekSealed, SealedBody, StoreError, WrappedDek};
use lru::LruCache;
use zeroize::Zeroizing;

use crate::KekProvider;
use crate::LoggedAccess;
use crate::aead::SecretKey;
use crate::franking::FrankingKey;

/// Format byte of a sealed body: XChaCha20-Poly1305 under the epoch DEK.
const SEALED_V1: u8 = 1;
/// As v1, with the message's franking key sealed in front of the plaintext.
const SEALED_V2: u8 = 2;

/// Why the key service unwraps a key. Every unwrap names one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// Delivering a message to an authenticated member of its conversation.
    Delivery {
        /// The member it is delivered to.
        reader: UserId,
    },
    /// A staff read within an access grant, already recorded in the audit log and
    /// checked against its receipt (see [`KeyService::verify_logged_read`]).
    StaffAccess(LoggedAccess),
}

/// What a sealed body is bound to. Opening with any other context fails.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The conversation.
    pub conversation: ConversationId,
    /// The key epoch.
    pub epoch: &'a Epoch,
    /// The message id.
    pub message: MessageId,
    /// The sender.
    pub sender: UserId,
    /// When the server accepted it (bound into the franking tag).
    pub sent_at: Timestamp,
    /// Its sequence number, once stored (not bound into the seal; a staff unwrap opens
    /// only the sequence numbers its logged read names).
    pub seq: Option<u64>,
}

/// A message as the key service sealed it: the sealed body, its franking, and the
/// franking key the members receive.
#[derive(Debug)]
pub struct SealedMessage {
    /// The sealed body (franking key and plaintext).
    pub sealed: SealedBody,
    /// The commitment and the server's tag, stored beside it.
    pub franking: Franking,
    /// The franking key, delivered to members with the body.
    pub franking_key: FrankingKey,
}

/// An opened message body.
pub struct Opened {
    /// The plaintext.
    pub body: Zeroizing<Vec<u8>>,
    /// The franking key (`None` for bodies sealed before franking existed).
    pub franking_key: Option<FrankingKey>,
}

/// Bounds of the unwrapped-DEK cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most keys held unwrapped at once.
    pub capacity: NonZeroUsize,
    /// Longest a key stays unwrapped in memory.
    pub max_age: Duration,
}

/// Why sealing or opening failed. Never contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The sealed bytes or their context were altered; the body cannot be opened.
    #[error("sealed data failed authentication")]
    Unreadable,
    /// No key exists for this epoch (never created, or destroyed).
    #[error("no data key for this conversation epoch")]
    NoKey,
    /// The DEK was wrapped by a KEK version this keyring does not hold.
    #[error("data key wrapped by unknown KEK version {0}")]
    UnknownKek(u32),
    /// The PKCS#11 token holding the KEKs failed or refused (its words, never a key).
    #[error("KEK token: {0}")]
    Token(String),
    /// The keyring file could not be read again.
    #[error("keyring: {0}")]
    Keyring(String),
    /// A TOTP secret could not be made or used.
    #[error("TOTP: {0}")]
    Totp(&'static str),
    /// A staff unwrap without a receipt that proves the read is in the audit log.
    #[error("not a logged staff read: {0}")]
    NotLogged(&'static str),
    /// A disclosure package could not be signed.
    #[error("package signing: {0}")]
    Signing(&'static str),
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Cached {
    dek: Arc<SecretKey>,
    loaded: Timestamp,
}

/// The key service. Holds the keyring and a bounded cache of unwrapped DEKs.
pub struct KeyService {
    pub(crate) deployment: DeploymentId,
    /// Where the KEKs are: the keyring, or a PKCS#11 token.
    pub(crate) kek: Box<dyn KekProvider>,
    /// The version new seals use: the provider's at start, then what the deployment's
    /// rotation made current.
    current: AtomicU32,
    store: Arc<dyn DekStore>,
    clock: Arc<dyn Clock>,
    max_age: Duration,
    // std Mutex: held only for a map lookup or insert, never across an await.
    cache: Mutex<LruCache<(ConversationId, Epoch), Cached>>,
    /// The audit log staff unwraps are checked against; none: staff unwraps are refused.
    pub(crate) log_authority: Option<crate::LogAuthority>,
    /// The deployment's disclosure-package signing key; none: no packages are signed.
    package_signer: Option<custodia_tlog::NoteSigner>,
}

impl KeyService {
    /// A key service for one deployment.
    pub fn new(
        deployment: DeploymentId,
        kek: impl KekProvider + 'static,
        store: Arc<dyn DekStore>,
        clock: Arc<dyn Clock>,
        limits: CacheLimits,
    ) -> Self {
        let current = AtomicU32::new(kek.current());
        Self {
            deployment,
            kek: Box::new(kek),
            current,
            store,
            clock,
            max_age: limits.max_age,
            cache: Mutex::new(LruCache::new(limits.capacity)),
            log_authority: None,
            package_signer: None,
        }
    }

    /// The same service, signing disclosure packages with `signer` (an Ed25519 note key).
    pub fn with_package_signer(mut self, signer: custodia_tlog::NoteSigner) -> Self {
        self.package_signer = Some(signer);
        self
    }

    /// The verifier key of the package-signing key, published for recipients.
    pub fn package_key(&self) -> Option<custodia_tlog::NoteVerifier> {
        self.package_signer.as_ref().map(|s| s.verifier())
    }

    /// Signs `text` (a disclosure package's manifest line) as a C2SP signed note.
    pub fn sign_package(&self, text: &str) -> Result<String, KeyError> {
        let signer = self.package_signer.as_ref().ok_or(KeyError::Signing(
            "this deployment has no package-signing key",
        ))?;
        let signature = signer
            .sign(text)
            .map_err(|_| KeyError::Signing("the package text is not a valid note"))?;
        Ok(custodia_tlog::SignedNote {
            text: text.to_owned(),
            signatures: vec![signature],
        }
        .to_string())
    }

    /// The same service, accepting staff unwraps only with receipts of this audit log.
    pub fn with_log_authority(mut self, authority: crate::LogAuthority) -> Self {
        self.log_authority = Some(authority);
        self
    }

    /// The KEK version new seals use.
    pub fn current_kek(&self) -> u32 {
        self.current.load(Ordering::Acquire)
    }

    /// The KEK versions the provider can seal and open under now.
    pub fn kek_versions(&self) -> Vec<u32> {
        self.kek.versions()
    }

    /// Finds the provider's KEK versions again (one was added or retired).
    pub fn refresh_keks(&self) -> Result<(), KeyError> {
        self.kek.refresh()
    }

    /// Makes KEK `version` the one new seals use, once the provider holds it (finding its
    /// versions again first if it does not yet).
    pub fn adopt_kek(&self, version: u32) -> Result<(), KeyError> {
        if !self.kek.versions().contains(&version) {
            self.kek.refresh()?;
            if !self.kek.versions().contains(&version) {
                return Err(KeyError::UnknownKek(version));
            }
        }
        self.current.store(version, Ordering::Release);
        Ok(())
    }

    /// `item` sealed again under the current KEK version: opened under its own version
    /// with its associated data and sealed anew (the data key or secret inside is the
    /// same, so nothing it protects changes). A served document's associated data needs
    /// the document's SHA-256 (`document_sha256`).
    pub fn rewrap(
        &self,
        item: &KekSealed,
        document_sha256: Option<&[u8; 32]>,
    ) -> Result<WrappedDek, KeyError> {
        let to = self.current_kek();
        let sha = match (&item.item, document_sha256) {
            (KekItem::Document { .. }, None) => return Err(KeyError::Unreadable),
            (_, sha) => sha.copied().unwrap_or_default(),
        };
        let aad = |v: u32| -> Vec<u8> {
            match &item.item {
                KekItem::Dek {
                    conversation,
                    epoch,
                } => self.dek_aad(*conversation, epoch, v),
                KekItem::Totp { staff } => self.totp_aad(*staff, v),
                KekItem::CaseComment { case } => self.case_aad(*case, "comment", v),
                KekItem::Evidence { case, seq } => self.case_aad(*case, &evidence_label(*seq), v),
                KekItem::Document { request, .. } => self.document_aad(*request, &sha, v),
            }
        };
        let from = item.sealed.kek_version;
        match rows_prefixed(&item.item) {
            false => {
                let raw = self.kek.open(from, &item.sealed.bytes, &aad(from))?;
                Ok(WrappedDek {
                    kek_version: to,
                    bytes: self.kek.seal(to, &raw, &aad(to))?,
                })
            }
            true => {
                let raw = self.open_under_kek(&SealedBody(item.sealed.bytes.clone()), aad)?;
                let sealed = self.seal_under_kek(&raw, aad)?;
                Ok(WrappedDek {
                    kek_version: to,
                    bytes: sealed.0,
                })
            }
        }
    }

    /// Seals a new message body with a fresh franking key, creating the epoch's DEK if it
    /// is the first message.
    #[tracing::instrument(skip_all, fields(conversation = %ctx.conversation, epoch = %ctx.epoch))]
    pub async fn seal(
        &self,
        ctx: MessageContext<'_>,
        plaintext: &[u8],
    ) -> Result<SealedMessage, KeyError> {
        let franking_key = FrankingKey::generate();
        let franking = self.franking(&ctx, franking_key.commit(plaintext));
        let mut payload = Zeroizing::new(franking_key.as_bytes().to_vec());
        payload.extend_from_slice(plaintext);
        let sealed = {
            let dek = self.dek(ctx.conversation, ctx.epoch, true).await?;
            let mut out = vec![SEALED_V2];
            out.extend_from_slice(&dek.seal(&payload, &self.body_aad(&ctx)));
            SealedBody(out)
        };
        Ok(SealedMessage {
            sealed,
            franking,
            franking_key,
        })
    }

    /// Opens a sealed body for `purpose`.
    #[tracing::instrument(skip_all, fields(conversation = %ctx.conversation, purpose = ?purpose))]
    pub async fn open(
        &self,
        purpose: Purpose,
        ctx: MessageContext<'_>,
        sealed: &SealedBody,
    ) -> Result<Opened, KeyError> {
        if let Purpose::StaffAccess(a) = &purpose {
            if !ctx.seq.is_some_and(|seq| a.covers(ctx.conversation, seq)) {
                return Err(KeyError::NotLogged(
                    "the logged read does not name this message",
                ));
            }
            tracing::info!(grant = %a.grant(), log_index = a.log_index(), "unwrapping for a logged staff access");
        }
        let payload = match sealed.0.split_first() {
            Some((&(SEALED_V1 | SEALED_V2), rest)) => {
                let dek = self.dek(ctx.conversation, ctx.epoch, false).await?;
                dek.open(rest, &self.body_aad(&ctx))
                    .ok_or(KeyError::Unreadable)?
            }
            _ => return Err(KeyError::Unreadable),
        };
        let v1 = sealed.0.first() == Some(&SEALED_V1);
        if v1 {
            return Ok(Opened {
                body: payload,
                franking_key: None,
            });
        }
        let (key, body) = payload
            .split_first_chunk::<32>()
            .ok_or(KeyError::Unreadable)?;
        Ok(Opened {
            franking_key: Some(FrankingKey::from_bytes(*key)),
            body: Zeroizing::new(body.to_vec()),
        })
    }

    /// Seals a text a reporter gave (a comment, a reported message) under the current KEK,
    /// bound to its case and `label`, so it cannot be moved to another case or field.
    pub fn seal_case_text(
        &self,
        case: CaseId,
        label: &str,
        text: &str,
    ) -> Result<SealedBody, KeyError> {
        self.seal_under_kek(text.as_bytes(), |v| self.case_aad(case, label, v))
    }

    /// Opens what [`Self::seal_case_text`] sealed (shown to staff with its case).
    pub fn open_case_text(
        &self,
        case: CaseId,
        label: &str,
        sealed: &SealedBody,
    ) -> Result<String, KeyError> {
        let raw = self.open_under_kek(sealed, |v| self.case_aad(case, label, v))?;
        String::from_utf8(raw.to_vec()).map_err(|_| KeyError::Unreadable)
    }

    /// Seals a document served with legal request `request` under the current KEK, bound
    /// to the request and to the document's SHA-256 (so it cannot pass for another).
    pub fn seal_served_document(
        &self,
        request: LegalRequestId,
        sha256: &[u8; 32],
        document: &[u8],
    ) -> Result<SealedBody, KeyError> {
        self.seal_under_kek(document, |v| self.document_aad(request, sha256, v))
    }

    /// Opens what [`Self::seal_served_document`] sealed.
    pub fn open_served_document(
        &self,
        request: LegalRequestId,
        sha256: &[u8; 32],
        sealed: &SealedBody,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.open_under_kek(sealed, |v| self.document_aad(request, sha256, v))
    }

    fn document_aad(
        &self,
        request: LegalRequestId,
        sha256: &[u8; 32],
        kek_version: u32,
    ) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        aad.extend_from_slice(b"custodia/served-document/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(request.as_bytes());
        aad.extend_from_slice(sha256);
        aad.extend_from_slice(&kek_version.to_be_bytes());
        aad
    }

    /// Seals `plaintext` directly under the current KEK (version first), with the
    /// associated data `aad` makes for that version.
    fn seal_under_kek(
        &self,
        plaintext: &[u8],
        aad: impl Fn(u32) -> Vec<u8>,
    ) -> Result<SealedBody, KeyError> {
        let version = self.current_kek();
        let mut out = version.to_be_bytes().to_vec();
        out.extend_from_slice(&self.kek.seal(version, plaintext, &aad(version))?);
        Ok(SealedBody(out))
    }

    /// Opens what [`Self::seal_under_kek`] sealed.
    fn open_under_kek(
        &self,
        sealed: &SealedBody,
        aad: impl Fn(u32) -> Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let (version, rest) = sealed
            .0
            .split_first_chunk::<4>()
            .ok_or(KeyError::Unreadable)?;
        let version = u32::from_be_bytes(*version);
        self.kek.open(version, rest, &aad(version))
    }

    fn case_aad(&self, case: CaseId, label: &str, kek_version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"custodia/case-text/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(case.as_bytes());
        push_label(&mut aad, label);
        aad.extend_from_slice(&kek_version.to_be_bytes());
        aad
    }

    /// The unwrapped DEK of an epoch, from the cache or the store; creates it if allowed.
    pub(crate) async fn dek(
        &self,
        conv: ConversationId,
        epoch: &Epoch,
        create: bool,
    ) -> Result<Arc<SecretKey>, KeyError> {
        let now = self.clock.now();
        let key = (conv, epoch.clone());
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&key) {
                Some(c) if now.since(c.loaded) < self.max_age => return Ok(c.dek.clone()),
                Some(_) => {
                    cache.pop(&key);
                }
                None => {}
            }
        }
        let wrapped = match self.store.wrapped_dek(conv, epoch).await? {
            Some(w) => w,
            None if create => {
                let fresh = SecretKey::generate();
                let version = self.current_kek();
                let bytes =
                    self.kek
                        .seal(version, fresh.expose(), &self.dek_aad(conv, epoch, version))?;
                // If another writer raced us, the stored key wins and ours is dropped.
                self.store
                    .put_wrapped_dek(
                        conv,
                        epoch,
                        WrappedDek {
                            kek_version: version,
                            bytes,
                        },
                    )
                    .await?
            }
            None => return Err(KeyError::NoKey),
        };
        let raw = self.kek.open(
            wrapped.kek_version,
            &wrapped.bytes,
            &self.dek_aad(conv, epoch, wrapped.kek_version),
        )?;
        let dek = Arc::new(SecretKey::from_slice(&raw).ok_or(KeyError::Unreadable)?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(
            key,
            Cached {
                dek: dek.clone(),
                loaded: now,
            },
        );
        Ok(dek)
    }

    fn body_aad(&self, ctx: &MessageContext<'_>) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        aad.extend_from_slice(b"custodia/body/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(ctx.conversation.as_bytes());
        push_label(&mut aad, ctx.epoch.as_str());
        aad.extend_from_slice(ctx.message.as_bytes());
        aad.extend_from_slice(ctx.sender.as_bytes());
        aad
    }

    fn dek_aad(&self, conv: ConversationId, epoch: &Epoch, kek_version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"custodia/dek/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(conv.as_bytes());
        push_label(&mut aad, epoch.as_str());
        aad.extend_from_slice(&kek_version.to_be_bytes());
        aad
    }
}

/// Whether `item` is stored with its KEK version in front of its bytes.
fn rows_prefixed(item: &KekItem) -> bool {
    matches!(
        item,
        KekItem::CaseComment { .. } | KekItem::Evidence { .. } | KekItem::Document { .. }
    )
}

/// The label a reported message's text is sealed under in its case.
pub fn evidence_label(seq: u64) -> String {
    format!("message {seq}")
}

/// Appends a length-prefixed label, so adjacent fields cannot be confused.
fn push_label(buf: &mut Vec<u8>, label: &str) {
    let len = u16::try_from(label.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&label.as_bytes()[..usize::from(len)]);
}
