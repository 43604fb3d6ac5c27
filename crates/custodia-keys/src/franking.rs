//! Message franking: proof of what a member received, without unwrapping any key.
//!
//! At sealing, each message gets a random franking key `kf`. The body is sealed as
//! `kf || plaintext`; stored beside it are the commitment `c = HMAC-SHA-256(kf, plaintext)`
//! and the server's tag `t = kek_version || HMAC-SHA-256(Kt, context || c)`, where `Kt` is
//! derived from the KEK and the context binds deployment, conversation, message id,
//! sender and time. Members receive `kf` with the body; to report a message they hand over
//! the text and `kf`. The server checks the text against `c` and `c` against `t`, so a
//! reported message is shown as "sent by X at T" if and only if it is what X sent.

use std::fmt;

use custodia_store::Franking;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, MessageContext};

/// A message's franking key: members get it with the body, and disclose it to report.
#[derive(Clone)]
pub struct FrankingKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for FrankingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrankingKey").finish_non_exhaustive()
    }
}

impl FrankingKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k[..]);
        Self(k)
    }

    /// From its 32 bytes (as a reporter hands it over).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Its bytes, to deliver to a member.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The commitment to `plaintext`.
    pub(crate) fn commit(&self, plaintext: &[u8]) -> [u8; 32] {
        hmac(&self.0[..], &[plaintext])
    }
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl KeyService {
    /// The franking of a message with `commitment`: the tag under the current KEK.
    pub(crate) fn franking(&self, ctx: &MessageContext<'_>, commitment: [u8; 32]) -> Franking {
        let version = self.current_kek();
        Franking {
            commitment,
            tag: self.tag(ctx, &commitment, version).unwrap_or_default(),
        }
    }

    /// Whether `claimed` is exactly the plaintext of the message `ctx`: the reporter's
    /// `key` opens the stored commitment to it, and the server's tag binds that commitment
    /// to this sender, conversation, message and time.
    pub fn verify_franking(
        &self,
        ctx: &MessageContext<'_>,
        franking: &Franking,
        claimed: &[u8],
        key: &FrankingKey,
    ) -> bool {
        let Some((version, mac)) = franking.tag.split_first_chunk::<4>() else {
            return false;
        };
        let Ok(expected) = self.tag(ctx, &franking.commitment, u32::from_be_bytes(*version)) else {
            return false;
        };
        let tag_ok: bool = expected[4..].ct_eq(mac).into();
        let commitment_ok: bool = key.commit(claimed).ct_eq(&franking.commitment).into();
        tag_ok && commitment_ok
    }

    fn tag(
        &self,
        ctx: &MessageContext<'_>,
        commitment: &[u8; 32],
        kek_version: u32,
    ) -> Result<Vec<u8>, KeyError> {
        let tag_key = self
            .kek
            .derive(kek_version, crate::kek::FRANKING_TAG_LABEL)?;
        let sent_at = ctx.sent_at.as_millis().to_be_bytes();
        let mac = hmac(
            &tag_key[..],
            &[
                b"custodia/frank/v1\0",
                self.deployment.as_bytes(),
                ctx.conversation.as_bytes(),
                ctx.message.as_bytes(),
                ctx.sender.as_bytes(),
                &sent_at,
                commitment,
            ],
        );
        let mut out = kek_version.to_be_bytes().to_vec();
        out.extend_from_slice(&mac);
        Ok(out)
    }
}
