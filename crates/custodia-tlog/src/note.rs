//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures and Ed25519
//! cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`), and the key text formats of
//! the Go `note` package: a verifier key `<name>+<key id hex>+<base64(type || public key)>`
//! and a signer key `PRIVATE+KEY+<name>+<key id hex>+<base64(type || seed)>`, where the
//! type byte is 0x01 for a note signer and 0x04 for a cosigner (a witness).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a key signs: plain Ed25519 note signatures, or timestamped cosignatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// Ed25519 over the note text (signature type 0x01); logs sign checkpoints with it.
    Ed25519,
    /// Ed25519 `cosignature/v1` over a timestamp and the note text (signature type 0x04);
    /// witnesses cosign with it.
    CosignatureV1,
}

impl KeyKind {
    fn type_byte(self) -> u8 {
        match self {
            Self::Ed25519 => 0x01,
            Self::CosignatureV1 => 0x04,
        }
    }

    fn from_type_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(Self::Ed25519),
            0x04 => Some(Self::CosignatureV1),
            _ => None,
        }
    }
}

/// The message a `cosignature/v1` signs: a header line, a time line, then the note text.
fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}
/// The most signatures a note may carry here (the spec requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The largest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Why a note, key or signature was refused. Each message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note's structure is wrong.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key text is wrong.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// A signature by a known key does not verify.
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    /// No signature by any known key.
    #[error("the note is not signed by any known key")]
    NoKnownSignature,
}

/// Checks a key name: non-empty, without Unicode spaces or '+'.
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadKey(
            "a key name must be non-empty, without spaces or '+'",
        ));
    }
    Ok(())
}

/// key ID = SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian.
pub(crate) fn key_id(name: &str, sig_type: u8, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, sig_type]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 note signing key. Its secret never appears in `Debug`.
pub struct NoteSigner {
    name: String,
    id: u32,
    kind: KeyKind,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.id))
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A fresh note signing key named `name` (a log's key).
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::generate_kind(name, KeyKind::Ed25519)
    }

    /// A fresh key of `kind` named `name`.
    pub fn generate_kind(name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self::from_key(
            name,
            kind,
            SigningKey::generate(&mut rand_core::OsRng),
        ))
    }

    fn from_key(name: &str, kind: KeyKind, key: SigningKey) -> Self {
        let id = key_id(name, kind.type_byte(), key.verifying_key().as_bytes());
        Self {
            name: name.to_owned(),
            id,
            kind,
            key,
        }
    }

    /// Parses `PRIVATE+KEY+<name>+<id hex>+<base64(type || 32-byte seed)>`.
    pub fn from_text(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("expected PRIVATE+KEY+…"))?;
        let (name, id, material) = split_key(rest)?;
        let bytes = Zeroizing::new(
            B64.decode(material)
                .map_err(|_| NoteError::BadKey("key material is not base64"))?,
        );
        let (kind, seed) = match bytes.split_first() {
            Some((&t, seed)) => (
                KeyKind::from_type_byte(t).ok_or(NoteError::BadKey("not an Ed25519 key"))?,
                <[u8; 32]>::try_from(seed)
                    .map_err(|_| NoteError::BadKey("an Ed25519 seed is 32 bytes"))?,
            ),
            None => return Err(NoteError::BadKey("not an Ed25519 key")),
        };
        let signer = Self::from_key(name, kind, SigningKey::from_bytes(&seed));
        if signer.id != id {
            return Err(NoteError::BadKey("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key text (secret: store it with mode 0600).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut material = Zeroizing::new(vec![self.kind.type_byte()]);
        material.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            B64.encode(&*material)
        ))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            kind: self.kind,
            key: self.key.verifying_key(),
        }
    }

    /// What the key signs.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Signs a note text (which must be valid note text) with a note signing key.
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        if self.kind != KeyKind::Ed25519 {
            return Err(NoteError::BadKey("a cosigner key only makes cosignatures"));
        }
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        })
    }

    /// Cosigns a note text at `timestamp` (POSIX seconds) with a cosigner key: the
    /// signature is the timestamp (8 bytes, big-endian) then Ed25519 over
    /// `cosignature/v1\ntime <timestamp>\n<text>`.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        if self.kind != KeyKind::CosignatureV1 || timestamp > i64::MAX as u64 {
            return Err(NoteError::BadKey(
                "only a cosigner key cosigns, at a time below 2^63",
            ));
        }
        let mut signature = timestamp.to_be_bytes().to_vec();
        let message = cosigned_message(text, timestamp);
        signature.extend_from_slice(&self.key.sign(message.as_bytes()).to_bytes());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature,
        })
    }
}

fn split_key(text: &str) -> Result<(&str, u32, &str), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey("expected <name>+<key id>+<key>"));
    };
    check_name(name)?;
    if id.len() != 8 {
        return Err(NoteError::BadKey("the key id is 8 hex digits"));
    }
    let id =
        u32::from_str_radix(id, 16).map_err(|_| NoteError::BadKey("the key id is 8 hex digits"))?;
    Ok((name, id, material))
}

/// An Ed25519 note verifier key.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    kind: KeyKind,
    key: VerifyingKey,
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({self})")
    }
}

impl fmt::Display for NoteVerifier {
    /// `<name>+<key id hex>+<base64(type || public key)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = vec![self.kind.type_byte()];
        material.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }
}

impl NoteVerifier {
    /// Parses `<name>+<key id hex>+<base64(type || 32-byte public key)>`, type 0x01 (a
    /// note signer) or 0x04 (a cosigner).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, material) = split_key(text.trim())?;
        let bytes = B64
            .decode(material)
            .map_err(|_| NoteError::BadKey("key material is not base64"))?;
        let (kind, public) = match bytes.split_first() {
            Some((&t, pk)) => (
                KeyKind::from_type_byte(t).ok_or(NoteError::BadKey("not an Ed25519 key"))?,
                <[u8; 32]>::try_from(pk)
                    .map_err(|_| NoteError::BadKey("an Ed25519 public key is 32 bytes"))?,
            ),
            None => return Err(NoteError::BadKey("not an Ed25519 key")),
        };
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey("not a valid Ed25519 public key"))?;
        if key_id(name, kind.type_byte(), &public) != id {
            return Err(NoteError::BadKey("the key id does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            kind,
            key,
        })
    }

    /// What the key verifies.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// Whether a signature line names this key (name and key id), valid or not.
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.id
    }

    /// Whether `sig` is this key's valid signature (or cosignature) of `text`.
    pub fn verifies(&self, text: &str, sig: &NoteSignature) -> bool {
        if !self.matches(sig) {
            return false;
        }
        let (message, raw) = match self.kind {
            KeyKind::Ed25519 => (text.to_owned(), sig.signature.as_slice()),
            KeyKind::CosignatureV1 => match sig.cosigned_at() {
                Some(t) if t <= i64::MAX as u64 => (cosigned_message(text, t), &sig.signature[8..]),
                _ => return false,
            },
        };
        let Ok(raw) = <[u8; 64]>::try_from(raw) else {
            return false;
        };
        self.key
            .verify(
                message.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&raw),
            )
            .is_ok()
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// Signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The timestamp of a `cosignature/v1` (its first 8 bytes), if it has the length of one.
    pub fn cosigned_at(&self) -> Option<u64> {
        (self.signature.len() == 72)
            .then(|| u64::from_be_bytes(self.signature[..8].try_into().unwrap_or_default()))
    }

    /// Parses one signature line, without its newline: `— <name> <base64(id || sig)>`.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line starts with an em dash and a space",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line is '— name signature'",
        ))?;
        check_name(name).map_err(|_| NoteError::Malformed("bad key name in a signature line"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("a signature is too short"));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            signature: raw[4..].to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// `— <name> <base64(key id || signature)>` (without the newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        write!(f, "\u{2014} {} {}", self.name, B64.encode(bytes))
    }
}

/// A note: text and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The text, ending in a newline.
    pub text: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

/// Checks note text: non-empty, ends with a newline, no control characters but newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end with a newline"));
    }
    if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "control characters other than newline",
        ));
    }
    Ok(())
}

impl SignedNote {
    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("the note is too large"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        if s.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed(
                "control characters other than newline",
            ));
        }
        let split = s
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&s[..=split], &s[split + 2..]);
        check_text(text)?;
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature lines must end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies against known keys: signatures by unknown keys are ignored, a failing
    /// signature by a known key rejects the note, and at least one must verify. Returns
    /// the keys that signed.
    pub fn verify<'a>(
        &self,
        known: &'a [NoteVerifier],
    ) -> Result<Vec<&'a NoteVerifier>, NoteError> {
        let mut signed = Vec::new();
        for sig in &self.signatures {
            if let Some(v) = known.iter().find(|v| v.matches(sig)) {
                if !v.verifies(&self.text, sig) {
                    return Err(NoteError::BadSignature(sig.name.clone()));
                }
                if !signed.contains(&v) {
                    signed.push(v);
                }
            }
        }
        if signed.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(signed)
    }

    /// The distinct keys among `known` with a valid signature on the note; invalid and
    /// unknown signatures are ignored (how a client counts a witness quorum).
    pub fn verified_by<'a>(&self, known: &'a [NoteVerifier]) -> Vec<&'a NoteVerifier> {
        let mut signed: Vec<&NoteVerifier> = Vec::new();
        for v in known {
            if !signed.contains(&v) && self.signatures.iter().any(|s| v.verifies(&self.text, s)) {
                signed.push(v);
            }
        }
        signed
    }
}

impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        for s in &self.signatures {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}
