//! Attachments: each file sealed under its own key; the key sealed under the
//! conversation's epoch DEK; a SHA-256 commitment to the key stored beside it and checked
//! before opening, so one ciphertext can never open to two different files (XChaCha20-
//! Poly1305 alone is not key-committing).

use custodia_core::{AttachmentId, ConversationId, Epoch, UserId};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::SecretKey;
use crate::{KeyError, KeyService, Purpose};

/// What an attachment's seal is bound to.
#[derive(Debug, Clone, Copy)]
pub struct AttachmentContext<'a> {
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// The epoch of the conversation key its key is sealed under.
    pub epoch: &'a Epoch,
    /// The attachment.
    pub attachment: AttachmentId,
    /// Who uploaded it.
    pub uploader: UserId,
}

/// A sealed attachment, as stored.
pub struct SealedAttachment {
    /// The file key, sealed under the epoch DEK.
    pub sealed_key: Vec<u8>,
    /// SHA-256 commitment to the file key.
    pub key_commitment: [u8; 32],
    /// The file, sealed under its key.
    pub blob: Vec<u8>,
}

fn commit(key: &SecretKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"custodia/attachment-key/v1\0");
    h.update(key.expose());
    h.finalize().into()
}

impl KeyService {
    /// Seals a file under a fresh key, creating the epoch's DEK if needed.
    pub async fn seal_attachment(
        &self,
        ctx: AttachmentContext<'_>,
        file: &[u8],
    ) -> Result<SealedAttachment, KeyError> {
        let key = SecretKey::generate();
        let aad = self.attachment_aad(&ctx);
        let dek = self.dek(ctx.conversation, ctx.epoch, true).await?;
        Ok(SealedAttachment {
            sealed_key: dek.seal(key.expose(), &aad),
            key_commitment: commit(&key),
            blob: key.seal(file, &aad),
        })
    }

    /// Opens a sealed file for `purpose`; refuses a key that does not match its commitment.
    pub async fn open_attachment(
        &self,
        purpose: Purpose,
        ctx: AttachmentContext<'_>,
        sealed: &SealedAttachment,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if let Purpose::StaffAccess(access) = &purpose
            && !access.covers_file(ctx.conversation, ctx.attachment)
        {
            // Only a file the logged read names is opened for staff (fail closed).
            return Err(KeyError::NotLogged(
                "the logged read does not name this file",
            ));
        }
        let aad = self.attachment_aad(&ctx);
        let dek = self.dek(ctx.conversation, ctx.epoch, false).await?;
        let raw = dek
            .open(&sealed.sealed_key, &aad)
            .ok_or(KeyError::Unreadable)?;
        let key = SecretKey::from_slice(&raw).ok_or(KeyError::Unreadable)?;
        if !bool::from(commit(&key).ct_eq(&sealed.key_commitment)) {
            return Err(KeyError::Unreadable);
        }
        key.open(&sealed.blob, &aad).ok_or(KeyError::Unreadable)
    }

    fn attachment_aad(&self, ctx: &AttachmentContext<'_>) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        aad.extend_from_slice(b"custodia/attachment/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(ctx.conversation.as_bytes());
        let label = ctx.epoch.as_str().as_bytes();
        aad.extend_from_slice(&(label.len() as u16).to_be_bytes());
        aad.extend_from_slice(label);
        aad.extend_from_slice(ctx.attachment.as_bytes());
        aad.extend_from_slice(ctx.uploader.as_bytes());
        aad
    }
}
