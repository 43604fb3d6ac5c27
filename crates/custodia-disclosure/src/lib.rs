//! Disclosure packages: what the platform produces to an agency under accepted legal
//! process, in a form the recipient checks offline.
//!
//! A package is a tar archive, encrypted with [age](https://age-encryption.org/v1) to the
//! agency's X25519 recipient (so `age -d -i KEY` opens it), holding:
//!
//! ```text
//! README.txt               what the package is and how to check it
//! records/messages.json    the produced messages (content or metadata, as accepted)
//! records/subscribers.json the named accounts' subscriber records (when accepted)
//! certificate.json         the custodian's certificate of the records
//! receipts.json            audit-log receipts (index, leaf hash, entry, inclusion proof)
//!                          of the intake, the review, the decisions, the reads and the
//!                          package's own build, and the witnessed checkpoint they prove
//!                          against
//! manifest.json            SHA-256 and size of every file above
//! manifest.sig             a C2SP signed note, by the deployment's package key, naming the
//!                          SHA-256 of manifest.json
//! ```
//!
//! [`verify`] checks, offline: the manifest's signature; every file against the manifest
//! (none missing, none added); every receipt's entry, leaf hash and inclusion proof against
//! the checkpoint, and the checkpoint's signature by the log key (and witnesses', when
//! given); that the logged reads name exactly the produced messages and the logged build
//! names the records' hashes; and that each message's text opens its franking commitment
//! with the franking key disclosed beside it. Not checkable offline: a message's server
//! tag, which is keyed by the platform's KEK (the platform checks it on request).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_tlog::{Checkpoint, Hash, NoteVerifier, SignedNote};
use custodia_transparency::EntryView;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The package format, first line of the manifest's signed note.
pub const FORMAT: &str = "custodia-disclosure/v1";
/// The produced messages.
pub const MESSAGES: &str = "records/messages.json";
/// The subscriber records.
pub const SUBSCRIBERS: &str = "records/subscribers.json";
/// The custodian's certificate.
pub const CERTIFICATE: &str = "certificate.json";
/// The log receipts.
pub const RECEIPTS: &str = "receipts.json";
/// The manifest.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's signature (a signed note).
pub const MANIFEST_SIG: &str = "manifest.sig";
/// The explanation for the recipient.
pub const README: &str = "README.txt";
/// Most bytes a package may hold once decrypted (verify refuses more).
pub const MAX_PACKAGE_BYTES: u64 = 4 << 30;

/// The produced messages of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecords {
    /// The legal request's reference, e.g. `LR-2026-000123`.
    pub legal_request: String,
    /// `content` (texts) or `metadata` (no texts).
    pub tier: String,
    /// The conversations produced, with their members.
    pub conversations: Vec<ConversationRecord>,
    /// The messages, by conversation and sequence number.
    pub messages: Vec<MessageRecord>,
}

/// A produced conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Its id.
    pub id: String,
    /// Its members (who were or are in it).
    pub members: Vec<MemberRecord>,
}

/// A member of a produced conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Account id.
    pub account: String,
    /// Username.
    pub username: Option<String>,
    /// When they joined (RFC 3339, UTC).
    pub joined_at: String,
}

/// A produced message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The access grant under which it was read (the id the log's read entry names).
    pub grant: String,
    /// Conversation id.
    pub conversation: String,
    /// Sequence number in the conversation.
    pub seq: u64,
    /// Message id.
    pub message_id: String,
    /// Sender's account id.
    pub sender: String,
    /// Sender's username.
    pub sender_username: Option<String>,
    /// When the server accepted it (RFC 3339, UTC).
    pub sent_at: String,
    /// `text`, `deleted` (deleted for everyone, nothing kept), `metadata_only`, or
    /// `unreadable` (its sealed body failed authentication).
    pub content: String,
    /// The text, when `content` is `text`.
    pub text: Option<String>,
    /// Its franking, when it has one.
    pub franking: Option<FrankingRecord>,
}

/// A message's franking: the commitment made when the server accepted it, the server's
/// tag over it, and (with its text) the key that opens the commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrankingRecord {
    /// HMAC-SHA-256(key, text), hex.
    pub commitment: String,
    /// The server's tag binding the commitment to sender, conversation, message and time
    /// (hex; the first 4 bytes are the KEK version). Checkable by the platform only.
    pub server_tag: String,
    /// The franking key, hex (with content only).
    pub key: Option<String>,
}

/// The subscriber records of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberRecords {
    /// The legal request's reference.
    pub legal_request: String,
    /// One per account the request names.
    pub accounts: Vec<SubscriberRecord>,
}

/// What the platform holds about a named account's subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberRecord {
    /// As the request named it (`username:NAME` or `account:UUID`).
    pub given: String,
    /// Whether such an account exists.
    pub found: bool,
    /// Account id.
    pub account: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Date of birth the member gave (YYYY-MM-DD).
    pub birth_date: Option<String>,
    /// When the account was created (RFC 3339, UTC).
    pub created_at: Option<String>,
}

/// The custodian's certificate (in the spirit of FRE 902(11), (13) and (14)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The legal request's reference.
    pub legal_request: String,
    /// The deployment (its audit log's origin).
    pub deployment: String,
    /// Who certifies.
    pub custodian: Custodian,
    /// The statement.
    pub statement: String,
    /// When (RFC 3339, UTC).
    pub date: String,
    /// The record files certified.
    pub records: Vec<String>,
}

/// The custodian of records who built a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Custodian {
    /// Staff username.
    pub name: String,
    /// Staff id (as the log names the actor).
    pub staff_id: String,
    /// Role.
    pub role: String,
}

/// The log receipts of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipts {
    /// The signed (and witness-cosigned) checkpoint every proof leads to.
    pub checkpoint: String,
    /// The receipts.
    pub entries: Vec<ReceiptRecord>,
}

/// One log receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// What the entry records: `intake`, `review`, `decision`, `read` or `build`.
    pub what: String,
    /// Its index in the log.
    pub index: u64,
    /// RFC 6962 leaf hash, hex.
    pub leaf_hash: String,
    /// The public entry, base64.
    pub entry: String,
    /// The inclusion proof against the checkpoint, hex hashes.
    pub proof: Vec<String>,
}

/// The manifest: every file's hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The legal request's reference.
    pub legal_request: String,
    /// The legal request's id (as the log's entries name it).
    pub legal_request_id: String,
    /// When the package was built (RFC 3339, UTC).
    pub built_at: String,
    /// The files.
    pub files: Vec<FileEntry>,
}

/// A file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its path in the archive.
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A value as pretty JSON with a final newline.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value)
        .unwrap_or_else(|_| unreachable!("package records serialize"));
    out.push(b'\n');
    out
}

/// The `records` scope value of a package's build entry: `SHA256:PATH` of each record
/// file, space-separated, so the log vouches for the records before the manifest exists.
pub fn records_scope(files: &[(String, Vec<u8>)]) -> String {
    files
        .iter()
        .filter(|(path, _)| path.starts_with("records/"))
        .map(|(path, bytes)| format!("{}:{path}", sha256_hex(bytes)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The manifest of `files`.
pub fn manifest(
    legal_request: &str,
    legal_request_id: &str,
    built_at: &str,
    files: &[(String, Vec<u8>)],
) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        legal_request: legal_request.into(),
        legal_request_id: legal_request_id.into(),
        built_at: built_at.into(),
        files: files
            .iter()
            .map(|(path, bytes)| FileEntry {
                path: path.clone(),
                sha256: sha256_hex(bytes),
                size: bytes.len() as u64,
            })
            .collect(),
    }
}

/// The text the package key signs for a manifest's bytes: the format, the reference, and
/// the manifest's SHA-256.
pub fn signed_text(legal_request: &str, manifest_json: &[u8]) -> String {
    format!(
        "{FORMAT}\n{legal_request}\nsha256 {}\n",
        sha256_hex(manifest_json)
    )
}

/// The archive: `files`, then the manifest and its signature (`signature`, a signed note).
/// Entries are plain files, mode 0644, stamped `mtime` (seconds).
pub fn archive(
    files: &[(String, Vec<u8>)],
    manifest_json: &[u8],
    signature: &str,
    mtime: u64,
) -> Vec<u8> {
    let all = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .chain([
            (MANIFEST, manifest_json),
            (MANIFEST_SIG, signature.as_bytes()),
        ]);
    tar_of(all, mtime)
}

/// The canonical tar of `entries`, in order: ustar headers, plain files, mode 0644.
fn tar_of<'a>(entries: impl Iterator<Item = (&'a str, &'a [u8])>, mtime: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes)
            .unwrap_or_else(|_| unreachable!("writing a tar entry to memory"));
    }
    builder
        .into_inner()
        .unwrap_or_else(|_| unreachable!("finishing a tar archive in memory"))
}

/// Why a package could not be encrypted or opened.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    /// Not an age X25519 recipient.
    #[error("the recipient must be an age X25519 public key (age1…): {0}")]
    Recipient(String),
    /// No usable identity in the identity file.
    #[error("the identity file holds no age X25519 identity (AGE-SECRET-KEY-1…)")]
    NoIdentity,
    /// Decryption failed.
    #[error("cannot decrypt the package with this identity: {0}")]
    Decrypt(String),
}

/// Parses an age X25519 recipient (`age1…`).
pub fn recipient(text: &str) -> Result<age::x25519::Recipient, AgeError> {
    text.trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|e| AgeError::Recipient(e.to_string()))
}

/// Encrypts `archive` to `recipient` in the age format.
pub fn encrypt(recipient: &age::x25519::Recipient, archive: &[u8]) -> Vec<u8> {
    age::encrypt(recipient, archive).unwrap_or_else(|_| unreachable!("age encrypts to memory"))
}

/// Decrypts an age-encrypted package with the identities in `identity_file` (the text of
/// an age identity file: `AGE-SECRET-KEY-1…` lines, `#` comments).
pub fn decrypt(identity_file: &str, encrypted: &[u8]) -> Result<Vec<u8>, AgeError> {
    let identities = identities(identity_file)?;
    let decryptor = age::Decryptor::new(encrypted).map_err(|e| AgeError::Decrypt(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| AgeError::Decrypt(e.to_string()))?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| AgeError::Decrypt(e.to_string()))?;
    Ok(out)
}

/// The X25519 identities of an age identity file's text (`AGE-SECRET-KEY-1…` lines, `#`
/// comments); an error if it holds none.
pub fn identities(identity_file: &str) -> Result<Vec<age::x25519::Identity>, AgeError> {
    let found: Vec<age::x25519::Identity> = identity_file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.parse().ok())
        .collect();
    if found.is_empty() {
        return Err(AgeError::NoIdentity);
    }
    Ok(found)
}

/// Whether `bytes` start like an age file.
pub fn is_age(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/v1\n")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// What verification found: a problem, named.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Problem(pub String);

fn problem<T>(msg: impl Into<String>) -> Result<T, Problem> {
    Err(Problem(msg.into()))
}

/// What a verified package holds, and what could not be checked offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The legal request's reference.
    pub legal_request: String,
    /// The files checked against the manifest.
    pub files: usize,
    /// Messages produced.
    pub messages: usize,
    /// Messages whose text opened their franking commitment.
    pub franking_checked: usize,
    /// Subscriber records.
    pub subscribers: usize,
    /// Receipts proven against the checkpoint.
    pub receipts: usize,
    /// The checkpoint's origin and size.
    pub checkpoint: (String, u64),
    /// Witnesses whose cosignature on the checkpoint verified.
    pub witnessed_by: Vec<String>,
}

/// The keys a package is checked against.
pub struct Keys<'a> {
    /// The deployment's package-signing key.
    pub package: &'a NoteVerifier,
    /// The deployment's audit log key.
    pub log: &'a NoteVerifier,
    /// Witness keys whose cosignatures on the checkpoint are required.
    pub witnesses: &'a [NoteVerifier],
    /// How many of `witnesses` must have cosigned.
    pub quorum: usize,
}

/// Reads a (decrypted) package archive into its files; refuses anything but plain files
/// with plain relative paths, a path given twice, and any byte outside the files that is
/// not as custodia writes it (the archive is canonical, so every byte is checked).
fn files_of(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, Problem> {
    let mut files = BTreeMap::new();
    let mut order = Vec::new();
    let mut mtime = None;
    let mut total = 0u64;
    let mut tar = tar::Archive::new(archive);
    let entries = tar
        .entries()
        .map_err(|e| Problem(format!("the package is not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Problem(format!("the package archive is damaged: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| Problem(format!("the package archive is damaged: {e}")))?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return problem(format!("{path}: not a plain file"));
        }
        if path.starts_with('/') || path.split('/').any(|p| p == ".." || p.is_empty()) {
            return problem(format!("{path}: not a plain relative path"));
        }
        total += entry.size();
        if total > MAX_PACKAGE_BYTES {
            return problem("the package is larger than any package custodia builds");
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Problem(format!("{path}: cannot be read: {e}")))?;
        mtime.get_or_insert(entry.header().mtime().unwrap_or(0));
        order.push(path.clone());
        if files.insert(path.clone(), bytes).is_some() {
            return problem(format!("{path}: appears twice in the package"));
        }
    }
    let canonical = tar_of(
        order.iter().map(|p| (p.as_str(), files[p].as_slice())),
        mtime.unwrap_or(0),
    );
    if canonical != archive {
        return problem(
            "the archive's headers or padding were changed (its bytes outside the files are not as built)",
        );
    }
    Ok(files)
}

fn json<'a, T: Deserialize<'a>>(
    files: &'a BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<T, Problem> {
    let bytes = files
        .get(path)
        .ok_or_else(|| Problem(format!("{path} is missing from the package")))?;
    serde_json::from_slice(bytes).map_err(|e| Problem(format!("{path} is not valid: {e}")))
}

/// Verifies a decrypted package archive offline (see the crate docs for what is checked).
pub fn verify(archive: &[u8], keys: &Keys<'_>) -> Result<Verified, Problem> {
    let files = files_of(archive)?;

    // The signature over the manifest, and the manifest over every file.
    let sig = files
        .get(MANIFEST_SIG)
        .ok_or_else(|| Problem(format!("{MANIFEST_SIG} is missing from the package")))?;
    let note = SignedNote::parse(sig)
        .map_err(|e| Problem(format!("{MANIFEST_SIG} is not a signed note: {e}")))?;
    note.verify(std::slice::from_ref(keys.package))
        .map_err(|_| {
            Problem(format!(
                "{MANIFEST_SIG} is not signed by the given package key ({})",
                keys.package.name()
            ))
        })?;
    let manifest_json = files
        .get(MANIFEST)
        .ok_or_else(|| Problem(format!("{MANIFEST} is missing from the package")))?;
    let manifest: Manifest = json(&files, MANIFEST)?;
    if note.text != signed_text(&manifest.legal_request, manifest_json) {
        return problem(format!(
            "{MANIFEST} does not match its signature: the manifest was changed"
        ));
    }
    if manifest.format != FORMAT {
        return problem(format!("unknown package format {:?}", manifest.format));
    }
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        let bytes = files
            .get(&f.path)
            .ok_or_else(|| Problem(format!("{} is listed in the manifest but missing", f.path)))?;
        if sha256_hex(bytes) != f.sha256 || bytes.len() as u64 != f.size {
            return problem(format!(
                "{}: its SHA-256 does not match the manifest (the file was changed)",
                f.path
            ));
        }
        listed.insert(f.path.as_str());
    }
    if let Some(extra) = files
        .keys()
        .find(|p| !listed.contains(p.as_str()) && *p != MANIFEST && *p != MANIFEST_SIG)
    {
        return problem(format!("{extra} is in the package but not in its manifest"));
    }

    // The receipts against the checkpoint, the checkpoint against the log key.
    let receipts: Receipts = json(&files, RECEIPTS)?;
    let checkpoint_note = SignedNote::parse(receipts.checkpoint.as_bytes()).map_err(|e| {
        Problem(format!(
            "the receipts' checkpoint is not a signed note: {e}"
        ))
    })?;
    checkpoint_note
        .verify(std::slice::from_ref(keys.log))
        .map_err(|_| {
            Problem(format!(
                "the receipts' checkpoint is not signed by the given log key ({}): the receipts are from another log",
                keys.log.name()
            ))
        })?;
    let checkpoint = Checkpoint::parse(&checkpoint_note.text)
        .map_err(|e| Problem(format!("the receipts' checkpoint is malformed: {e}")))?;
    if checkpoint.origin != keys.log.name() {
        return problem(format!(
            "the receipts' checkpoint is of log {:?}, not of the given log key's {:?}",
            checkpoint.origin,
            keys.log.name()
        ));
    }
    let witnessed: Vec<String> = checkpoint_note
        .verified_by(keys.witnesses)
        .iter()
        .map(|v| v.name().to_owned())
        .collect();
    if witnessed.len() < keys.quorum {
        return problem(format!(
            "the receipts' checkpoint has {} of the {} witness cosignatures required",
            witnessed.len(),
            keys.quorum
        ));
    }
    let mut entries: Vec<(String, EntryView)> = Vec::new();
    for (n, r) in receipts.entries.iter().enumerate() {
        let name = format!("receipt {} ({}, entry {})", n + 1, r.what, r.index);
        let entry = B64
            .decode(&r.entry)
            .map_err(|_| Problem(format!("{name}: its entry is not base64")))?;
        let leaf = custodia_tlog::leaf_hash(&entry);
        if Some(leaf.to_vec()) != unhex(&r.leaf_hash) {
            return problem(format!("{name}: its leaf hash does not match its entry"));
        }
        let proof: Vec<Hash> = r
            .proof
            .iter()
            .map(|h| unhex(h).and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| Problem(format!("{name}: its proof is not hex hashes")))?;
        custodia_tlog::verify_inclusion(r.index, checkpoint.size, &leaf, &proof, &checkpoint.root)
            .map_err(|_| {
                Problem(format!(
                    "{name}: its inclusion proof does not lead to the checkpoint's root (the entry is not in this log at that index)"
                ))
            })?;
        let view = EntryView::parse(&entry)
            .map_err(|e| Problem(format!("{name}: its entry cannot be read: {e}")))?;
        let expected = match r.what.as_str() {
            "intake" => "legal.received",
            "review" => "legal.reviewed",
            "decision" => "decision",
            "read" => "access.read",
            "build" => "disclosure.built",
            other => return problem(format!("{name}: unknown kind of receipt {other:?}")),
        };
        if view.event.kind.as_str() != expected {
            return problem(format!(
                "{name}: the entry is a {}, not a {expected}",
                view.event.kind.as_str()
            ));
        }
        entries.push((r.what.clone(), view));
    }
    let id = manifest.legal_request_id.as_str();
    for (what, says) in [
        ("intake", "its intake"),
        ("review", "its review"),
        ("build", "its own build"),
    ] {
        let found = entries
            .iter()
            .find(|(w, _)| w == what)
            .ok_or_else(|| Problem(format!("the package has no receipt for {says}")))?;
        if found.1.event.case.as_deref() != Some(id) {
            return problem(format!(
                "the receipt for {says} is about another legal request"
            ));
        }
    }
    let scope = |v: &EntryView, name: &str| -> Option<String> {
        v.event
            .scope
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    // The build entry names the grants read for the package: every decision and read
    // receipt is of one of them, and each has its read.
    let build = &entries
        .iter()
        .find(|(w, _)| w == "build")
        .unwrap_or_else(|| unreachable!("checked above"))
        .1;
    let grants: BTreeSet<String> = scope(build, "grants")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for (what, e) in entries
        .iter()
        .filter(|(w, _)| w == "read" || w == "decision")
    {
        let grant = scope(e, "request").unwrap_or_default();
        if !grants.contains(&grant) {
            return problem(format!(
                "a {what} receipt is of grant {grant:?}, which the log's build entry does not name"
            ));
        }
    }
    if let Some(g) = grants.iter().find(|g| {
        !entries
            .iter()
            .any(|(w, e)| w == "read" && scope(e, "request").as_deref() == Some(g.as_str()))
    }) {
        return problem(format!(
            "grant {g} was read for this package (the log's build entry says so) but the package has no receipt of that read"
        ));
    }

    // The reads name exactly the messages; the build entry vouches for the records.
    let mut logged: BTreeSet<(String, u64)> = BTreeSet::new();
    for (_, read) in entries.iter().filter(|(w, _)| w == "read") {
        let grant = scope(read, "request").unwrap_or_default();
        for seq in scope(read, "messages")
            .unwrap_or_default()
            .split_whitespace()
        {
            let seq = seq
                .parse()
                .map_err(|_| Problem(format!("a read entry of grant {grant} is malformed")))?;
            logged.insert((grant.clone(), seq));
        }
    }
    let mut messages = 0;
    let mut franking_checked = 0;
    if files.contains_key(MESSAGES) {
        let records: MessageRecords = json(&files, MESSAGES)?;
        let mut produced = BTreeSet::new();
        for m in &records.messages {
            let at = format!("message {} of conversation {}", m.seq, m.conversation);
            if !logged.contains(&(m.grant.clone(), m.seq)) {
                return problem(format!("{at} is in the records but in no logged read"));
            }
            produced.insert((m.grant.clone(), m.seq));
            if let (Some(text), Some(f)) = (&m.text, &m.franking)
                && let Some(key) = &f.key
            {
                let key = unhex(key).ok_or_else(|| Problem(format!("{at}: bad franking key")))?;
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
                    .map_err(|_| Problem(format!("{at}: bad franking key")))?;
                mac.update(text.as_bytes());
                if hex(&mac.finalize().into_bytes()) != f.commitment {
                    return problem(format!(
                        "{at}: its text does not open its franking commitment (the text is not what was sent)"
                    ));
                }
                franking_checked += 1;
            }
        }
        if let Some((grant, seq)) = logged.difference(&produced).next() {
            return problem(format!(
                "message {seq} of grant {grant} was read for this package (the log says so) but is missing from the records"
            ));
        }
        messages = records.messages.len();
    } else if !logged.is_empty() {
        return problem(format!(
            "{MESSAGES} is missing, but the log shows messages read for it"
        ));
    }
    let vouched: BTreeMap<String, String> = scope(build, "records")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pair| pair.split_once(':'))
        .map(|(hash, path)| (path.to_owned(), hash.to_owned()))
        .collect();
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("records/")) {
        if vouched.get(path) != Some(&sha256_hex(bytes)) {
            return problem(format!(
                "{path} is not the record the log's build entry names"
            ));
        }
    }
    if let Some(missing) = vouched.keys().find(|p| !files.contains_key(*p)) {
        return problem(format!(
            "{missing} is named by the log's build entry but missing"
        ));
    }
    let subscribers = if files.contains_key(SUBSCRIBERS) {
        json::<SubscriberRecords>(&files, SUBSCRIBERS)?
            .accounts
            .len()
    } else {
        0
    };
    json::<Certificate>(&files, CERTIFICATE)?;
    Ok(Verified {
        legal_request: manifest.legal_request,
        files: manifest.files.len(),
        messages,
        franking_checked,
        subscribers,
        receipts: receipts.entries.len(),
        checkpoint: (checkpoint.origin, checkpoint.size),
        witnessed_by: witnessed,
    })
}

/// Writes the human summary of a verified package.
pub fn summary(v: &Verified, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "package {}: verified", v.legal_request)?;
    writeln!(
        out,
        "  signature: manifest.sig by the package key; {} files match the manifest",
        v.files
    )?;
    writeln!(
        out,
        "  log: {} receipts proven against checkpoint {} of {} entries{}",
        v.receipts,
        v.checkpoint.0,
        v.checkpoint.1,
        if v.witnessed_by.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {}", v.witnessed_by.join(", "))
        }
    )?;
    writeln!(
        out,
        "  records: {} messages, exactly those the logged reads name; {} subscriber record{}",
        v.messages,
        v.subscribers,
        if v.subscribers == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "  franking: {} message texts open their commitments",
        v.franking_checked
    )?;
    writeln!(
        out,
        "  not checked offline: each message's server tag (keyed by the platform; ask it to confirm)"
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use custodia_tlog::{MemoryTree, NoteSigner};
    use custodia_transparency::{AuditEvent, EventKind, PseudonymKey};

    use super::*;

    const ID: &str = "0192f0c5-1b2c-7d3e-8f40-123456789abc";

    fn event(kind: EventKind, case: &str, scope: Vec<(String, String)>) -> AuditEvent {
        AuditEvent {
            kind,
            time: custodia_core_time(),
            actor: None,
            reason: None,
            case: Some(case.into()),
            subjects: Vec::new(),
            scope,
        }
    }

    fn custodia_core_time() -> custodia_core::Timestamp {
        custodia_core::Timestamp::from_millis(1_780_000_000_000)
    }

    /// A small log holding a request's path and a package over it: (archive, package
    /// signer, log signer).
    fn package(text: &str) -> (Vec<u8>, NoteSigner, NoteSigner) {
        package_with(text, "grant-1")
    }

    /// The same, its build entry naming `grants`.
    fn package_with(text: &str, grants: &str) -> (Vec<u8>, NoteSigner, NoteSigner) {
        let log = NoteSigner::generate("log.example/audit").unwrap();
        let packager = NoteSigner::generate("log.example/audit/disclosure").unwrap();
        let key = PseudonymKey::from_bytes([9; 32]);
        let franking_key = [5u8; 32];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&franking_key).unwrap();
        mac.update(text.as_bytes());
        let messages = MessageRecords {
            legal_request: "LR-2026-000001".into(),
            tier: "content".into(),
            conversations: Vec::new(),
            messages: vec![MessageRecord {
                grant: "grant-1".into(),
                conversation: "c".into(),
                seq: 7,
                message_id: "m".into(),
                sender: "s".into(),
                sender_username: Some("alice".into()),
                sent_at: "2026-05-28T00:00:00.000Z".into(),
                content: "text".into(),
                text: Some(text.into()),
                franking: Some(FrankingRecord {
                    commitment: hex(&mac.finalize().into_bytes()),
                    server_tag: "00".into(),
                    key: Some(hex(&franking_key)),
                }),
            }],
        };
        let mut files = vec![(MESSAGES.to_owned(), to_json(&messages))];
        let path = [
            ("intake", event(EventKind::LegalReceived, ID, Vec::new())),
            ("review", event(EventKind::LegalReviewed, ID, Vec::new())),
            (
                "read",
                event(
                    EventKind::AccessRead,
                    "case",
                    vec![
                        ("request".into(), "grant-1".into()),
                        ("messages".into(), "7".into()),
                    ],
                ),
            ),
            (
                "build",
                event(
                    EventKind::DisclosureBuilt,
                    ID,
                    vec![
                        ("grants".into(), grants.into()),
                        ("records".into(), records_scope(&files)),
                    ],
                ),
            ),
        ];
        let entries: Vec<Vec<u8>> = path.iter().map(|(_, e)| e.entry(&key).unwrap()).collect();
        let tree = MemoryTree(
            entries
                .iter()
                .map(|e| custodia_tlog::leaf_hash(e))
                .collect(),
        );
        let size = entries.len() as u64;
        let checkpoint = Checkpoint {
            origin: log.name().into(),
            size,
            root: custodia_tlog::root_hash(&tree, size).unwrap(),
            extensions: Vec::new(),
        }
        .to_string();
        let receipts = Receipts {
            checkpoint: SignedNote {
                signatures: vec![log.sign(&checkpoint).unwrap()],
                text: checkpoint,
            }
            .to_string(),
            entries: path
                .iter()
                .zip(&entries)
                .enumerate()
                .map(|(i, ((what, _), entry))| ReceiptRecord {
                    what: (*what).into(),
                    index: i as u64,
                    leaf_hash: hex(&custodia_tlog::leaf_hash(entry)),
                    entry: B64.encode(entry),
                    proof: custodia_tlog::inclusion_proof(&tree, i as u64, size)
                        .unwrap()
                        .unwrap()
                        .iter()
                        .map(|h| hex(h))
                        .collect(),
                })
                .collect(),
        };
        files.push((RECEIPTS.into(), to_json(&receipts)));
        files.push((
            CERTIFICATE.into(),
            to_json(&Certificate {
                legal_request: "LR-2026-000001".into(),
                deployment: log.name().into(),
                custodian: Custodian {
                    name: "lo1".into(),
                    staff_id: "x".into(),
                    role: "legal_officer".into(),
                },
                statement: "true copies".into(),
                date: "2026-05-28T00:00:00.000Z".into(),
                records: vec![MESSAGES.into()],
            }),
        ));
        let manifest = to_json(&manifest(
            "LR-2026-000001",
            ID,
            "2026-05-28T00:00:00.000Z",
            &files,
        ));
        let text = signed_text("LR-2026-000001", &manifest);
        let sig = SignedNote {
            signatures: vec![packager.sign(&text).unwrap()],
            text,
        };
        (
            archive(&files, &manifest, &sig.to_string(), 1_780_000_000),
            packager,
            log,
        )
    }

    fn check(archive: &[u8], packager: &NoteSigner, log: &NoteSigner) -> Result<Verified, Problem> {
        verify(
            archive,
            &Keys {
                package: &packager.verifier(),
                log: &log.verifier(),
                witnesses: &[],
                quorum: 0,
            },
        )
    }

    #[test]
    fn a_package_verifies_and_every_changed_byte_is_caught() {
        let (archive, packager, log) = package("meet at nine");
        let v = check(&archive, &packager, &log).unwrap();
        assert_eq!((v.messages, v.franking_checked, v.receipts), (1, 1, 4));
        for at in 0..archive.len() {
            let mut flipped = archive.clone();
            flipped[at] ^= 0x01;
            assert!(check(&flipped, &packager, &log).is_err(), "byte {at}");
        }
    }

    #[test]
    fn the_reads_are_exactly_those_of_the_grants_the_build_names() {
        let (archive, packager, log) = package_with("meet at nine", "");
        let e = check(&archive, &packager, &log).unwrap_err();
        assert!(e.0.contains("does not name"), "{e}");
        let (archive, packager, log) = package_with("meet at nine", "grant-1 grant-2");
        let e = check(&archive, &packager, &log).unwrap_err();
        assert!(
            e.0.contains("grant grant-2") && e.0.contains("no receipt"),
            "{e}"
        );
    }

    #[test]
    fn the_wrong_keys_are_named() {
        let (archive, packager, log) = package("meet at nine");
        let other = NoteSigner::generate("other.example/audit").unwrap();
        let e = check(&archive, &other, &log).unwrap_err();
        assert!(e.0.contains("not signed by the given package key"), "{e}");
        let e = check(&archive, &packager, &other).unwrap_err();
        assert!(e.0.contains("from another log"), "{e}");
    }

    #[test]
    fn a_package_round_trips_through_age() {
        let (archive, _, _) = package("meet at nine");
        let identity = age::x25519::Identity::generate();
        let sealed = encrypt(&identity.to_public(), &archive);
        assert!(is_age(&sealed));
        let file = format!(
            "# a comment\n{}\n",
            age::secrecy::ExposeSecret::expose_secret(&identity.to_string())
        );
        assert_eq!(decrypt(&file, &sealed).unwrap(), archive);
        let stranger = age::x25519::Identity::generate();
        let other = age::secrecy::ExposeSecret::expose_secret(&stranger.to_string()).to_owned();
        assert!(matches!(
            decrypt(&other, &sealed),
            Err(AgeError::Decrypt(_))
        ));
        assert!(matches!(
            decrypt("# nothing\n", &sealed),
            Err(AgeError::NoIdentity)
        ));
        assert!(recipient("age1nope").is_err());
    }
}
