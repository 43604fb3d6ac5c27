//! KEKs in a PKCS#11 token (an HSM; SoftHSM2 in tests): each version is an AES-256 key
//! for AES-GCM and a generic secret for HMAC-SHA256, generated inside the token as
//! sensitive and never extractable. Sealing and opening run in the token; no KEK byte is
//! ever in this process or on disk.
//!
//! Objects are labelled `LABEL-vN` (AES) and `LABEL-vN-derive` (HMAC); the highest
//! version present is current. The first start on an empty token creates version 1.
//! Retiring a version destroys its AES key and keeps its HMAC key, so the franking tags
//! made with it still verify while nothing sealed under it opens again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::{KekProvider, KeyError};

/// AES-GCM nonce bytes (random per seal: KEK seals are few, far below the 2^32 bound).
const NONCE: usize = 12;

/// Where the token is and how to sign in to it.
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// The prefix of the KEK objects' labels.
    pub key_label: String,
}

/// The KEK versions in one token, used through one logged-in session.
pub struct Pkcs11Kek {
    // Declared before the context: the session closes before the library finalizes.
    session: Mutex<Session>,
    keys: RwLock<BTreeMap<u32, Version>>,
    label: String,
    _context: Pkcs11,
}

#[derive(Clone, Copy)]
struct Version {
    /// None once retired.
    aes: Option<ObjectHandle>,
    mac: ObjectHandle,
}

fn token_error(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Token(format!("{what}: {e}"))
}

impl Pkcs11Kek {
    /// Opens the token, signs in, and finds the KEK versions; on a token without any,
    /// generates version 1 inside it. Returns whether it did.
    pub fn open(config: &Pkcs11Config) -> Result<(Self, bool), KeyError> {
        let context = Pkcs11::new(&config.module)
            .map_err(|e| token_error(&format!("loading {}", config.module.display()), e))?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| token_error("initializing the PKCS#11 module", e))?;
        let slot = context
            .get_slots_with_token()
            .map_err(|e| token_error("listing tokens", e))?
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .is_ok_and(|t| t.label().trim() == config.token)
            })
            .ok_or_else(|| KeyError::Token(format!("no token labelled {:?}", config.token)))?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| token_error("opening a session", e))?;
        session
            .login(
                UserType::User,
                Some(&AuthPin::new(config.pin.as_str().into())),
            )
            .map_err(|e| token_error("signing in to the token (check the PIN)", e))?;
        let mut keys = find_versions(&session, &config.key_label)?;
        let created = keys.is_empty();
        if created {
            keys.insert(1, generate(&session, &config.key_label, 1)?);
        }
        Ok((
            Self {
                session: Mutex::new(session),
                keys: RwLock::new(keys),
                label: config.key_label.clone(),
                _context: context,
            },
            created,
        ))
    }

    fn version(&self, v: u32) -> Result<Version, KeyError> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&v)
            .copied()
            .ok_or(KeyError::UnknownKek(v))
    }

    fn aes(&self, v: u32) -> Result<ObjectHandle, KeyError> {
        self.version(v)?.aes.ok_or(KeyError::UnknownKek(v))
    }

    /// Generates a new KEK version in the token (the highest ever, plus one), which is
    /// then current; returns it.
    pub fn add_version(&self) -> Result<u32, KeyError> {
        self.refresh()?;
        let highest = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .next_back()
            .copied();
        let v = highest.unwrap_or(0) + 1;
        let made = generate(&self.session(), &self.label, v)?;
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(v, made);
        Ok(v)
    }

    /// Destroys the AES key of version `v` in the token, keeping its franking tag key.
    pub fn retire(&self, v: u32) -> Result<(), KeyError> {
        self.refresh()?;
        if v == KekProvider::current(self) {
            return Err(KeyError::Token(format!(
                "KEK version {v} is current: rotate to a new version first"
            )));
        }
        let aes = self.aes(v)?;
        self.session()
            .destroy_object(aes)
            .map_err(|e| token_error("destroying the KEK", e))?;
        self.refresh()
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The versions labelled `LABEL-vN` / `LABEL-vN-derive` in the token.
fn find_versions(session: &Session, label: &str) -> Result<BTreeMap<u32, Version>, KeyError> {
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .map_err(|e| token_error("listing keys", e))?;
    let mut aes: BTreeMap<u32, ObjectHandle> = BTreeMap::new();
    let mut mac: BTreeMap<u32, ObjectHandle> = BTreeMap::new();
    let prefix = format!("{label}-v");
    for h in handles {
        let attrs = session
            .get_attributes(h, &[AttributeType::Label])
            .map_err(|e| token_error("reading a key's label", e))?;
        let Some(Attribute::Label(bytes)) = attrs.into_iter().next() else {
            continue;
        };
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        match rest.strip_suffix("-derive") {
            Some(v) => v.parse().ok().map(|v: u32| mac.insert(v, h)),
            None => rest.parse().ok().map(|v: u32| aes.insert(v, h)),
        };
    }
    Ok(mac
        .into_iter()
        .map(|(v, mac)| {
            (
                v,
                Version {
                    aes: aes.get(&v).copied(),
                    mac,
                },
            )
        })
        .collect())
}

/// Generates version `v` inside the token: sensitive, never extractable.
fn generate(session: &Session, label: &str, v: u32) -> Result<Version, KeyError> {
    let common = |name: String| {
        vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::ValueLen(32.into()),
            Attribute::Label(name.into_bytes()),
        ]
    };
    let mut aes = common(format!("{label}-v{v}"));
    aes.extend([Attribute::Encrypt(true), Attribute::Decrypt(true)]);
    let mut mac = common(format!("{label}-v{v}-derive"));
    mac.extend([
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sign(true),
    ]);
    Ok(Version {
        aes: Some(
            session
                .generate_key(&Mechanism::AesKeyGen, &aes)
                .map_err(|e| token_error("generating the KEK", e))?,
        ),
        mac: session
            .generate_key(&Mechanism::GenericSecretKeyGen, &mac)
            .map_err(|e| token_error("generating the KEK's derivation key", e))?,
    })
}

impl KekProvider for Pkcs11Kek {
    fn current(&self) -> u32 {
        self.versions().last().copied().unwrap_or(1)
    }

    fn versions(&self) -> Vec<u32> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, k)| k.aes.is_some())
            .map(|(v, _)| *v)
            .collect()
    }

    fn refresh(&self) -> Result<(), KeyError> {
        let found = find_versions(&self.session(), &self.label)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }

    fn seal(&self, version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.aes(version)?;
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into())
            .map_err(|e| token_error("AES-GCM parameters", e))?;
        let sealed = self
            .session()
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(|e| token_error("sealing in the token", e))?;
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(
        &self,
        version: u32,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self.aes(version)?;
        let (nonce, body) = sealed
            .split_first_chunk::<NONCE>()
            .ok_or(KeyError::Unreadable)?;
        let mut iv = *nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into())
            .map_err(|e| token_error("AES-GCM parameters", e))?;
        // A token answers altered bytes with an error: unreadable, as for the keyring.
        self.session()
            .decrypt(&Mechanism::AesGcm(params), key, body)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Unreadable)
    }

    fn derive(&self, version: u32, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let key = self.version(version)?.mac;
        let mac = self
            .session()
            .sign(&Mechanism::Sha256Hmac, key, label)
            .map_err(|e| token_error("deriving in the token", e))?;
        let out: [u8; 32] = mac
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Token("the token's HMAC is not 32 bytes".into()))?;
        Ok(Zeroizing::new(out))
    }
}
