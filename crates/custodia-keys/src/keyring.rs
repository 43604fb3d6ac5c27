//! The local keyring: versioned KEKs in one file, mode 0600.
//!
//! File format (text, one record per line):
//! ```text
//! custodia-keyring v1
//! kdf argon2id <m_cost_kib> <t_cost> <p_cost> <salt-base64>     (only if passphrase-wrapped)
//! current <version>
//! key <version> <base64 key, or base64 of the key sealed under the passphrase key>
//! retired <version> <base64 franking tag key, or it sealed under the passphrase key>
//! ```
//!
//! A retired version keeps only the key its franking tags were made with
//! (`HMAC(KEK, franking label)`): reports of old messages still verify, and nothing sealed
//! under it can be opened again.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::aead::SecretKey;
use crate::franking::hmac;

const HEADER: &str = "custodia-keyring v1";

/// A passphrase that wraps the keyring. Never printed.
#[derive(Clone)]
pub struct KeyringPassphrase(Zeroizing<String>);

impl KeyringPassphrase {
    /// Wraps a passphrase.
    pub fn new(p: String) -> Self {
        Self(Zeroizing::new(p))
    }
}

impl fmt::Debug for KeyringPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyringPassphrase(<redacted>)")
    }
}

/// Why the keyring could not be used. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Reading or writing the file failed.
    #[error("keyring file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a keyring this version understands.
    #[error("keyring file is malformed: {0}")]
    Malformed(&'static str),
    /// The keyring is passphrase-wrapped and no passphrase was configured.
    #[error(
        "the keyring is protected by a passphrase: set keyring_passphrase (CUSTODIA_KEYRING_PASSPHRASE)"
    )]
    PassphraseRequired,
    /// The passphrase does not open the keyring.
    #[error("the keyring passphrase is wrong")]
    WrongPassphrase,
    /// The keyring has no such KEK version (never made, or retired).
    #[error("the keyring has no KEK version {0}")]
    NoSuchVersion(u32),
    /// The current KEK version cannot be retired.
    #[error("KEK version {0} is current: rotate to a new version first")]
    Current(u32),
    /// A passphrase was configured for a keyring that has none.
    #[error(
        "a keyring passphrase is configured but the keyring is not protected by one; remove the setting"
    )]
    NotPassphraseProtected,
}

/// The key-encryption keys, by version.
pub struct Keyring {
    current: u32,
    keys: BTreeMap<u32, SecretKey>,
    /// What is left of retired versions: their franking tag keys.
    retired: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

struct Kdf {
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
}

impl Kdf {
    fn derive(&self, pass: &KeyringPassphrase) -> Result<SecretKey, KeyringError> {
        let params = Params::new(self.m, self.t, self.p, Some(32))
            .map_err(|_| KeyringError::Malformed("kdf parameters"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pass.0.as_bytes(), &self.salt, &mut out[..])
            .map_err(|_| KeyringError::Malformed("kdf parameters"))?;
        SecretKey::from_slice(&out[..]).ok_or(KeyringError::Malformed("kdf output"))
    }
}

fn key_aad(version: u32) -> Vec<u8> {
    format!("custodia/keyring/v1/{version}").into_bytes()
}

fn retired_aad(version: u32) -> Vec<u8> {
    format!("custodia/keyring/v1/retired/{version}").into_bytes()
}

/// Writes `text` to `path` through a new file in the same directory, synced, then renamed
/// over it (readers see the old keyring or the new one, never half of one).
fn write_atomically(path: &Path, text: &str) -> Result<(), KeyringError> {
    let io = |source| KeyringError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    // A temporary file a crash left behind is stale.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

impl Keyring {
    /// Loads the keyring at `path`, or creates one with a fresh KEK (version 1) if the
    /// file does not exist. Returns whether it was created.
    pub fn load_or_create(
        path: &Path,
        pass: Option<&KeyringPassphrase>,
    ) -> Result<(Self, bool), KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(&Zeroizing::new(text), pass)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self {
                    current: 1,
                    keys: BTreeMap::from([(1, SecretKey::generate())]),
                    retired: BTreeMap::new(),
                };
                write_atomically(path, &ring.render(pass)?)?;
                Ok((ring, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Loads the keyring at `path` (which must exist).
    pub fn load(path: &Path, pass: Option<&KeyringPassphrase>) -> Result<Self, KeyringError> {
        let text = fs::read_to_string(path).map_err(|source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&Zeroizing::new(text), pass)
    }

    /// Changes the keyring file at `path` with `change`, and writes it back atomically.
    fn modify<T>(
        path: &Path,
        pass: Option<&KeyringPassphrase>,
        change: impl FnOnce(&mut Self) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let mut ring = Self::load(path, pass)?;
        let out = change(&mut ring)?;
        write_atomically(path, &ring.render(pass)?)?;
        Ok(out)
    }

    /// Adds a new KEK version to the keyring file (the highest version ever, plus one);
    /// with `current`, the file names it current. Returns the version.
    pub fn add_version(
        path: &Path,
        pass: Option<&KeyringPassphrase>,
        current: bool,
    ) -> Result<u32, KeyringError> {
        Self::modify(path, pass, |ring| {
            let highest = ring
                .keys
                .keys()
                .chain(ring.retired.keys())
                .max()
                .copied()
                .unwrap_or(0);
            let v = highest + 1;
            ring.keys.insert(v, SecretKey::generate());
            if current {
                ring.current = v;
            }
            Ok(v)
        })
    }

    /// Names version `v` current in the keyring file.
    pub fn set_current(
        path: &Path,
        pass: Option<&KeyringPassphrase>,
        v: u32,
    ) -> Result<(), KeyringError> {
        Self::modify(path, pass, |ring| {
            if !ring.keys.contains_key(&v) {
                return Err(KeyringError::NoSuchVersion(v));
            }
            ring.current = v;
            Ok(())
        })
    }

    /// Destroys KEK version `v` in the keyring file, keeping only its franking tag key.
    pub fn retire(
        path: &Path,
        pass: Option<&KeyringPassphrase>,
        v: u32,
    ) -> Result<(), KeyringError> {
        Self::modify(path, pass, |ring| {
            if v == ring.current {
                return Err(KeyringError::Current(v));
            }
            let kek = ring.keys.remove(&v).ok_or(KeyringError::NoSuchVersion(v))?;
            ring.retired.insert(
                v,
                Zeroizing::new(hmac(kek.expose(), &[crate::kek::FRANKING_TAG_LABEL])),
            );
            Ok(())
        })
    }

    /// The versions it can seal and open under.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The franking tag key of a retired version.
    pub(crate) fn retired_tag_key(&self, v: u32) -> Option<&[u8; 32]> {
        self.retired.get(&v).map(|k| &**k)
    }

    /// The current KEK and its version.
    pub(crate) fn current(&self) -> (u32, &SecretKey) {
        // Invariant: parse and create both guarantee the current version is present.
        (self.current, &self.keys[&self.current])
    }

    /// The KEK of one version.
    pub(crate) fn version(&self, v: u32) -> Option<&SecretKey> {
        self.keys.get(&v)
    }

    fn render(&self, pass: Option<&KeyringPassphrase>) -> Result<Zeroizing<String>, KeyringError> {
        let mut out = Zeroizing::new(format!("{HEADER}\n"));
        let wrap = match pass {
            Some(p) => {
                let mut salt = vec![0u8; 16];
                OsRng.fill_bytes(&mut salt);
                let kdf = Kdf {
                    m: 64 * 1024,
                    t: 3,
                    p: 1,
                    salt,
                };
                out.push_str(&format!(
                    "kdf argon2id {} {} {} {}\n",
                    kdf.m,
                    kdf.t,
                    kdf.p,
                    B64.encode(&kdf.salt)
                ));
                Some(kdf.derive(p)?)
            }
            None => None,
        };
        out.push_str(&format!("current {}\n", self.current));
        for (v, k) in &self.keys {
            let material = match &wrap {
                Some(w) => B64.encode(w.seal(k.expose(), &key_aad(*v))),
                None => B64.encode(k.expose()),
            };
            out.push_str(&format!("key {v} {material}\n"));
        }
        for (v, k) in &self.retired {
            let material = match &wrap {
                Some(w) => B64.encode(w.seal(&k[..], &retired_aad(*v))),
                None => B64.encode(&k[..]),
            };
            out.push_str(&format!("retired {v} {material}\n"));
        }
        Ok(out)
    }

    fn parse(text: &str, pass: Option<&KeyringPassphrase>) -> Result<Self, KeyringError> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(KeyringError::Malformed("unknown header"));
        }
        let mut kdf = None;
        let mut current = None;
        let mut raw_keys = Vec::new();
        let mut raw_retired = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            match f.as_slice() {
                ["kdf", "argon2id", m, t, p, salt] => {
                    let n = |s: &str| {
                        s.parse::<u32>()
                            .map_err(|_| KeyringError::Malformed("kdf line"))
                    };
                    let salt = B64
                        .decode(salt)
                        .map_err(|_| KeyringError::Malformed("kdf salt"))?;
                    kdf = Some(Kdf {
                        m: n(m)?,
                        t: n(t)?,
                        p: n(p)?,
                        salt,
                    });
                }
                ["current", v] => {
                    current = Some(
                        v.parse::<u32>()
                            .map_err(|_| KeyringError::Malformed("current"))?,
                    )
                }
                ["key", v, material] => {
                    let v = v
                        .parse::<u32>()
                        .map_err(|_| KeyringError::Malformed("key version"))?;
                    let bytes = Zeroizing::new(
                        B64.decode(material)
                            .map_err(|_| KeyringError::Malformed("key"))?,
                    );
                    raw_keys.push((v, bytes));
                }
                ["retired", v, material] => {
                    let v = v
                        .parse::<u32>()
                        .map_err(|_| KeyringError::Malformed("retired version"))?;
                    let bytes = Zeroizing::new(
                        B64.decode(material)
                            .map_err(|_| KeyringError::Malformed("retired key"))?,
                    );
                    raw_retired.push((v, bytes));
                }
                _ => return Err(KeyringError::Malformed("unknown line")),
            }
        }
        let unwrap_key = match (&kdf, pass) {
            (Some(_), None) => return Err(KeyringError::PassphraseRequired),
            (None, Some(_)) => return Err(KeyringError::NotPassphraseProtected),
            (Some(k), Some(p)) => Some(k.derive(p)?),
            (None, None) => None,
        };
        let mut keys = BTreeMap::new();
        for (v, bytes) in raw_keys {
            let key = match &unwrap_key {
                Some(w) => {
                    let plain = w
                        .open(&bytes, &key_aad(v))
                        .ok_or(KeyringError::WrongPassphrase)?;
                    SecretKey::from_slice(&plain)
                }
                None => SecretKey::from_slice(&bytes),
            }
            .ok_or(KeyringError::Malformed("key length"))?;
            keys.insert(v, key);
        }
        let mut retired = BTreeMap::new();
        for (v, bytes) in raw_retired {
            let plain = match &unwrap_key {
                Some(w) => w
                    .open(&bytes, &retired_aad(v))
                    .ok_or(KeyringError::WrongPassphrase)?,
                None => Zeroizing::new(bytes.to_vec()),
            };
            let key: [u8; 32] = plain
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::Malformed("retired key length"))?;
            retired.insert(v, Zeroizing::new(key));
        }
        let current = current.ok_or(KeyringError::Malformed("no current version"))?;
        if !keys.contains_key(&current) {
            return Err(KeyringError::Malformed("current version has no key"));
        }
        Ok(Self {
            current,
            keys,
            retired,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tmp() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        (dir, path)
    }

    #[test]
    fn plain_keyring_round_trips_with_mode_0600() {
        let (_dir, path) = tmp();
        let (a, created) = Keyring::load_or_create(&path, None).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = Keyring::load_or_create(&path, None).unwrap();
        assert!(!created);
        assert_eq!(a.current().1.expose(), b.current().1.expose());
        assert!(matches!(
            Keyring::load_or_create(&path, Some(&KeyringPassphrase::new("x".into()))),
            Err(KeyringError::NotPassphraseProtected)
        ));
    }

    #[test]
    fn passphrase_keyring_needs_the_right_passphrase() {
        let (_dir, path) = tmp();
        let pass = KeyringPassphrase::new("correct horse".into());
        let (a, _) = Keyring::load_or_create(&path, Some(&pass)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&B64.encode(a.current().1.expose())),
            "KEK stored unwrapped"
        );
        let (b, _) = Keyring::load_or_create(&path, Some(&pass)).unwrap();
        assert_eq!(a.current().1.expose(), b.current().1.expose());
        assert!(matches!(
            Keyring::load_or_create(&path, None),
            Err(KeyringError::PassphraseRequired)
        ));
        assert!(matches!(
            Keyring::load_or_create(&path, Some(&KeyringPassphrase::new("wrong".into()))),
            Err(KeyringError::WrongPassphrase)
        ));
    }
}
