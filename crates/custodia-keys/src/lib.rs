//! The key service: the only component that holds a key-encryption key (KEK) or an
//! unwrapped data key (DEK).
//!
//! **Architecture invariant: only this crate holds key material.** It seals message
//! bodies under a per-(conversation, epoch) DEK, stores DEKs only wrapped by a versioned
//! KEK (through the `DekStore` seam), and opens bodies only for a named [`Purpose`].
//!
//! Layout:
//! - `kek` — [`KekProvider`], the seam to where KEKs live (the keyring, a PKCS#11 token).
//! - `keyring` — the KEK file on disk (mode 0600, optionally passphrase-wrapped).
//! - `pkcs11` — KEKs in a PKCS#11 token (an HSM), used in place, never extractable.
//! - `aead` — XChaCha20-Poly1305 sealing with associated data; the key types.
//! - `service` — [`KeyService`]: seal, open, the DEK cache.
//! - `totp` — staff TOTP secrets, sealed under the KEK and checked here.
//! - `attachments` — files under their own keys, key-committing.
//! - `logged` — staff unwraps only against the audit log's receipt for the read.
//! - `franking` — per-message commitments and server tags, so reports can be verified.

mod aead;
mod attachments;
mod franking;
mod kek;
mod keyring;
mod logged;
mod pkcs11;
mod service;
mod totp;

pub use attachments::{AttachmentContext, SealedAttachment};
pub use franking::FrankingKey;
pub use kek::{KekProvider, KeyringFile};
pub use keyring::{Keyring, KeyringError, KeyringPassphrase};
pub use logged::{LogAuthority, LoggedAccess};
pub use pkcs11::{Pkcs11Config, Pkcs11Kek};
pub use service::{
    CacheLimits, KeyError, KeyService, MessageContext, Opened, Purpose, SealedMessage,
    evidence_label,
};
