//! Attachments: uploaded through the server, sniffed, hashed (SHA-256 and MD5) before
//! sealing and matched against the imported hash lists. A match is never delivered: the
//! file is kept sealed as evidence, the uploader sees a generic refusal, and the
//! [`Signals`](crate::Signals) seam opens a high-priority case and flags the uploader.

use md5::Md5;
use sha2::{Digest, Sha256};

use custodia_core::{AttachmentId, ConversationId, Timestamp, UserId};
use custodia_keys::{AttachmentContext, Purpose, SealedAttachment};
use custodia_store::{AttachmentRecord, HashKind};
use zeroize::Zeroizing;

use crate::{Principal, Service, ServiceError, ServiceResult};

/// An attachment as members see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    /// Id.
    pub id: AttachmentId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// Size in bytes.
    pub size: u64,
    /// Content type, sniffed from the bytes (never the uploader's claim).
    pub content_type: String,
    /// When.
    pub created_at: Timestamp,
}

/// A file that matched a hash list.
#[derive(Debug, Clone)]
pub struct HashMatch {
    /// The attachment kept as evidence.
    pub attachment: AttachmentView,
    /// The list it matched.
    pub list: String,
    /// The priority of its case (`high` unless the list is configured `normal`).
    pub priority: custodia_core::CasePriority,
}

fn view(a: &AttachmentRecord) -> AttachmentView {
    AttachmentView {
        id: a.id,
        conversation_id: a.conversation_id,
        uploader: a.uploader,
        size: a.size,
        content_type: a.content_type.clone(),
        created_at: a.created_at,
    }
}

/// Opens a stored attachment for `purpose` (a member's delivery, or a logged staff read
/// that names it).
pub async fn open_attachment(
    keys: &custodia_keys::KeyService,
    purpose: Purpose,
    a: &AttachmentRecord,
) -> Result<Zeroizing<Vec<u8>>, custodia_keys::KeyError> {
    let ctx = AttachmentContext {
        conversation: a.conversation_id,
        epoch: &a.epoch,
        attachment: a.id,
        uploader: a.uploader,
    };
    let sealed = SealedAttachment {
        sealed_key: a.sealed_key.clone(),
        key_commitment: a.key_commitment,
        blob: a.blob.clone(),
    };
    keys.open_attachment(purpose, ctx, &sealed).await
}

/// What the server computes of every upload before sealing it, and matches against the
/// hash lists: `custodia admin hash` prints exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHashes {
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// MD5 of the bytes (hash lists still carry it).
    pub md5: [u8; 16],
    /// The content type sniffed from the bytes.
    pub content_type: String,
    /// For an image: its PDQ hash and quality, or why it does not decode (then the upload
    /// is refused). `None` for anything that is not an image.
    pub pdq: Option<Result<(custodia_pdq::PdqHash, u8), String>>,
}

/// Hashes an upload as the server does (CPU-bound: run it on a blocking thread).
pub fn upload_hashes(bytes: &[u8]) -> UploadHashes {
    let content_type = sniff(bytes);
    let pdq = crate::images::is_image(&content_type).then(|| crate::images::pdq_of(bytes));
    UploadHashes {
        sha256: Sha256::digest(bytes).into(),
        md5: Md5::digest(bytes).into(),
        content_type,
        pdq,
    }
}

/// The content type of an upload, from its bytes (never from what the client claims).
pub(crate) fn sniff(bytes: &[u8]) -> String {
    infer::get(bytes)
        .map(|t| t.mime_type().to_owned())
        .unwrap_or_else(|| {
            if std::str::from_utf8(bytes).is_ok() {
                "text/plain; charset=utf-8".to_owned()
            } else {
                "application/octet-stream".to_owned()
            }
        })
}

impl Service {
    /// The largest attachment accepted, in bytes.
    pub fn max_attachment_bytes(&self) -> u64 {
        self.inner.config.max_attachment_bytes
    }

    /// Uploads a file to a conversation: member, send rules and limits as for a message;
    /// hashed and matched before sealing.
    pub async fn upload(
        &self,
        who: &Principal,
        conversation: ConversationId,
        file: Vec<u8>,
    ) -> ServiceResult<AttachmentView> {
        let inner = &self.inner;
        let targets = self.send_targets(who, conversation).await?;
        self.may_send(who, conversation, &targets).await?;
        if file.is_empty() || file.len() as u64 > inner.config.max_attachment_bytes {
            return Err(ServiceError::Rejected(
                "an attachment must be between 1 byte and the size limit",
            ));
        }
        let (file, hashes) = tokio::task::spawn_blocking(move || {
            let hashes = upload_hashes(&file);
            (file, hashes)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))?;
        let UploadHashes {
            sha256,
            md5,
            content_type,
            pdq,
        } = hashes;
        let mut matched = inner
            .store
            .attachments
            .hash_match(vec![
                (HashKind::Sha256, sha256.to_vec()),
                (HashKind::Md5, md5.to_vec()),
            ])
            .await?;
        let pdq = pdq.unwrap_or(Ok((custodia_pdq::PdqHash::from_bytes([0; 32]), 0)));
        let (pdq, quality) = pdq.map_err(|why| {
            tracing::info!(uploader = %who.user_id, why, "refused an image that does not decode");
            crate::images::unreadable()
        })?;
        if matched.is_none() && quality >= inner.config.pdq_min_quality {
            matched = self.pdq_match(&pdq).await?;
        }
        let now = inner.clock.now();
        let id = AttachmentId::at(now);
        let epoch = inner.config.epoch.epoch_of(now);
        let ctx = AttachmentContext {
            conversation,
            epoch: &epoch,
            attachment: id,
            uploader: who.user_id,
        };
        let file = Zeroizing::new(file);
        let sealed = inner.keys.seal_attachment(ctx, &file).await?;
        let record = AttachmentRecord {
            id,
            conversation_id: conversation,
            uploader: who.user_id,
            epoch: epoch.clone(),
            size: file.len() as u64,
            content_type,
            sealed_key: sealed.sealed_key,
            key_commitment: sealed.key_commitment,
            blob: sealed.blob,
            created_at: now,
            preserved: matched.is_some(),
        };
        let v = view(&record);
        inner.store.attachments.put_attachment(record).await?;
        if let Some(list) = matched {
            tracing::warn!(attachment = %id, uploader = %who.user_id, "upload matched a hash list; kept as evidence");
            if let Some(sink) = &inner.signals {
                let priority = if inner.config.normal_priority_lists.contains(&list) {
                    custodia_core::CasePriority::Normal
                } else {
                    custodia_core::CasePriority::High
                };
                sink.file_matched(HashMatch {
                    attachment: v,
                    list,
                    priority,
                })
                .await;
            }
            return Err(ServiceError::Rejected("this file cannot be sent"));
        }
        Ok(v)
    }

    /// Downloads an attachment: members of its conversation only; evidence never.
    pub async fn download(
        &self,
        who: &Principal,
        id: AttachmentId,
    ) -> ServiceResult<(AttachmentView, Zeroizing<Vec<u8>>)> {
        let inner = &self.inner;
        let a = inner
            .store
            .attachments
            .attachment(id)
            .await?
            .filter(|a| !a.preserved)
            .ok_or(ServiceError::NotFound("attachment"))?;
        self.membership(who, a.conversation_id)
            .await
            .map_err(|_| ServiceError::NotFound("attachment"))?;
        let bytes = open_attachment(
            &inner.keys,
            Purpose::Delivery {
                reader: who.user_id,
            },
            &a,
        )
        .await
        .map_err(|e| {
            tracing::warn!(attachment = %id, error = %e, "attachment cannot be opened");
            ServiceError::Rejected("this attachment is unreadable")
        })?;
        Ok((view(&a), bytes))
    }
}
