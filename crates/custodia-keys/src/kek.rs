//! Where the key-encryption keys (KEKs) live, behind one seam: the keyring file, or a
//! PKCS#11 token (`pkcs11`), which never lets a KEK out. The key service only asks a
//! provider to seal, open and MAC under a KEK version.

use zeroize::Zeroizing;

use crate::KeyError;
use crate::franking::hmac;
use crate::keyring::Keyring;

/// The versioned KEKs of a deployment, used in place.
pub trait KekProvider: Send + Sync {
    /// The version new seals use.
    fn current(&self) -> u32;
    /// `plaintext` sealed under KEK `version`, bound to `aad`.
    fn seal(&self, version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Opens what [`Self::seal`] sealed under `version` with the same `aad`.
    fn open(&self, version: u32, sealed: &[u8], aad: &[u8])
    -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// HMAC-SHA256 of `label` under KEK `version`: a key derived from it for one use
    /// (the franking tag key), so the KEK itself is never needed outside the provider.
    fn derive(&self, version: u32, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError>;
}

impl KekProvider for Keyring {
    fn current(&self) -> u32 {
        Keyring::current(self).0
    }

    fn seal(&self, version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let kek = self.version(version).ok_or(KeyError::UnknownKek(version))?;
        Ok(kek.seal(plaintext, aad))
    }

    fn open(
        &self,
        version: u32,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let kek = self.version(version).ok_or(KeyError::UnknownKek(version))?;
        kek.open(sealed, aad).ok_or(KeyError::Unreadable)
    }

    fn derive(&self, version: u32, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let kek = self.version(version).ok_or(KeyError::UnknownKek(version))?;
        Ok(Zeroizing::new(hmac(kek.expose(), &[label])))
    }
}

impl<T: KekProvider + ?Sized> KekProvider for Box<T> {
    fn current(&self) -> u32 {
        (**self).current()
    }

    fn seal(&self, version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        (**self).seal(version, plaintext, aad)
    }

    fn open(
        &self,
        version: u32,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        (**self).open(version, sealed, aad)
    }

    fn derive(&self, version: u32, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        (**self).derive(version, label)
    }
}
