//! Where the key-encryption keys (KEKs) live, behind one seam: the keyring file, or a
//! PKCS#11 token (`pkcs11`), which never lets a KEK out. The key service only asks a
//! provider to seal, open and MAC under a KEK version.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use zeroize::Zeroizing;

use crate::KeyError;
use crate::franking::hmac;
use crate::keyring::{Keyring, KeyringError, KeyringPassphrase};

/// The one label [`KekProvider::derive`] is asked for: the franking tag key. A retired
/// KEK version keeps only this derived key, so old messages' tags still verify.
pub(crate) const FRANKING_TAG_LABEL: &[u8] = b"custodia/franking-tag-key/v1";

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
    /// The versions it can seal and open under now (retired ones are not among them).
    fn versions(&self) -> Vec<u32>;
    /// Finds the versions again (an operator added or retired one while the server ran).
    fn refresh(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

impl KekProvider for Keyring {
    fn current(&self) -> u32 {
        Keyring::current(self).0
    }

    fn versions(&self) -> Vec<u32> {
        Keyring::versions(self)
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
        match self.version(version) {
            Some(kek) => Ok(Zeroizing::new(hmac(kek.expose(), &[label]))),
            None => match self.retired_tag_key(version) {
                Some(key) if label == FRANKING_TAG_LABEL => Ok(Zeroizing::new(*key)),
                _ => Err(KeyError::UnknownKek(version)),
            },
        }
    }
}

/// The keyring file of a data directory, read again when an operator changes it (a new
/// version from `custodia admin keys rotate`, one retired).
pub struct KeyringFile {
    path: PathBuf,
    passphrase: Option<KeyringPassphrase>,
    ring: RwLock<Keyring>,
    /// SHA-256 of the file as last read: it is parsed again (an argon2id derivation, with
    /// a passphrase) only when it changed.
    read: std::sync::Mutex<[u8; 32]>,
}

fn file_digest(path: &Path) -> Result<[u8; 32], KeyringError> {
    use sha2::Digest;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyringError::Io {
        path: path.display().to_string(),
        source,
    })?);
    Ok(sha2::Sha256::digest(&bytes[..]).into())
}

impl KeyringFile {
    /// Opens the keyring at `path`, creating it with a first KEK if there is none;
    /// returns whether it did.
    pub fn open(
        path: &Path,
        passphrase: Option<KeyringPassphrase>,
    ) -> Result<(Self, bool), KeyringError> {
        let (ring, created) = Keyring::load_or_create(path, passphrase.as_ref())?;
        Ok((
            Self {
                path: path.to_owned(),
                passphrase,
                ring: RwLock::new(ring),
                read: std::sync::Mutex::new(file_digest(path)?),
            },
            created,
        ))
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.ring.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl KekProvider for KeyringFile {
    fn current(&self) -> u32 {
        KekProvider::current(&*self.ring())
    }

    fn seal(&self, version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.ring().seal(version, plaintext, aad)
    }

    fn open(
        &self,
        version: u32,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.ring().open(version, sealed, aad)
    }

    fn derive(&self, version: u32, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.ring().derive(version, label)
    }

    fn versions(&self) -> Vec<u32> {
        self.ring().versions()
    }

    fn refresh(&self) -> Result<(), KeyError> {
        let failed = |e: KeyringError| KeyError::Keyring(e.to_string());
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let digest = file_digest(&self.path).map_err(failed)?;
        if digest == *read {
            return Ok(());
        }
        let fresh = Keyring::load(&self.path, self.passphrase.as_ref()).map_err(failed)?;
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        *read = digest;
        Ok(())
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

    fn versions(&self) -> Vec<u32> {
        (**self).versions()
    }

    fn refresh(&self) -> Result<(), KeyError> {
        (**self).refresh()
    }
}
