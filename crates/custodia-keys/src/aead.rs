//! XChaCha20-Poly1305 with random 192-bit nonces, and the key types. Keys zeroize on drop
//! and have no `Debug`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const NONCE: usize = 24;

/// A 256-bit symmetric key (a KEK or a DEK).
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// From exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(arr))
    }

    /// The raw bytes, for wrapping or writing to the keyring.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// `nonce || ciphertext+tag` of `plaintext` under this key, bound to `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce fails only when the plaintext exceeds
        // the cipher's limit (~256 GiB), which our callers bound far below.
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`Self::seal`] produced; `None` if the bytes or `aad` were altered.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().ok()?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = SecretKey::generate();
        let sealed = k.seal(b"hello", b"ctx");
        assert_eq!(&k.open(&sealed, b"ctx").unwrap()[..], b"hello");
        assert!(k.open(&sealed, b"other").is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open(&bad, b"ctx").is_none(), "flip at {i} went unnoticed");
        }
        assert!(SecretKey::generate().open(&sealed, b"ctx").is_none());
    }

    /// Whether `T` implements `Debug`, decided at compile time: the method of `ViaDebug`
    /// applies to `&&Probe<T>` only when `T: Debug`; otherwise method lookup falls through
    /// to `Fallback` on `&Probe<T>`.
    struct Probe<T>(std::marker::PhantomData<T>);
    trait ViaDebug {
        fn has_debug(&self) -> bool {
            true
        }
    }
    impl<T: std::fmt::Debug> ViaDebug for &Probe<T> {}
    trait Fallback {
        fn has_debug(&self) -> bool {
            false
        }
    }
    impl<T> Fallback for Probe<T> {}

    fn zeroizes_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    // The two borrows are the probe: removing them, as the lint suggests, changes the answer.
    #[allow(clippy::needless_borrow)]
    fn key_material_zeroizes_on_drop_and_has_no_debug() {
        zeroizes_on_drop::<SecretKey>();
        assert!(!(&&Probe::<SecretKey>(std::marker::PhantomData)).has_debug());
        // The probe itself tells the two apart.
        assert!((&&Probe::<u8>(std::marker::PhantomData)).has_debug());
    }
}
