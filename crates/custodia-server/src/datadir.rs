//! The data directory: created on first start, then reused.
//!
//! ```text
//! DIR/                  mode 0700
//!   custodia.db         SQLite database (+ -wal, -shm)
//!   keyring             KEKs, mode 0600
//!   log.key             the audit log's signing key (signed-note text), mode 0600
//!   pseudonym.key       the key of the audit log's subject pseudonyms (32 bytes), mode 0600
//!   package.key         the disclosure-package signing key (signed-note text), mode 0600
//!   witness.key         `custodia witness` only: its cosigner key, mode 0600
//!   witness-state/      `custodia witness` only: the last checkpoint cosigned per log
//!   deployment-id       this deployment's id (bound into every seal)
//!   tls/ca.pem          the CA clients trust (--ca-cert); its key is never here
//!   tls/server.pem      this node's certificate (generated: localhost, 127.0.0.1, ::1;
//!                       397 days, renewed 30 days before expiry while the CA key is at hand)
//!   tls/server.key      its key, mode 0600
//! DIR-ca/               beside it, not inside (`tls_ca_dir`): the generated CA
//!   ca.pem, ca.key      the key mode 0600; keep it off the nodes that do not need it
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use custodia_core::DeploymentId;
use custodia_tlog::{KeyKind, NoteSigner};

/// Paths inside one data directory.
pub struct DataDir {
    pub(crate) root: PathBuf,
}

impl DataDir {
    /// Creates the directory (mode 0700) if missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root.join("tls"))
            .with_context(|| format!("creating data directory {}", root.display()))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Takes the data directory's lock shared, as every server using it does (several
    /// nodes may share one directory); held while the returned file is open.
    pub(crate) fn lock_shared(&self) -> anyhow::Result<fs::File> {
        let f = self.lock_file()?;
        match f.try_lock_shared() {
            Ok(()) => Ok(f),
            Err(_) => anyhow::bail!(
                "{} is in use by an operator's tool (custodia admin): wait for it to finish",
                self.root.display()
            ),
        }
    }

    /// Takes the data directory's lock alone: no server runs on it (on this machine).
    pub(crate) fn lock_alone(&self) -> anyhow::Result<fs::File> {
        let f = self.lock_file()?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(_) => anyhow::bail!(
                "a server is running on {}: stop it first (and every node of the deployment)",
                self.root.display()
            ),
        }
    }

    fn lock_file(&self) -> anyhow::Result<fs::File> {
        let path = self.root.join("server.lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.root.join("custodia.db")
    }

    pub(crate) fn keyring(&self) -> PathBuf {
        self.root.join("keyring")
    }

    pub(crate) fn ca_cert(&self) -> PathBuf {
        self.root.join("tls/ca.pem")
    }

    /// Where the generated CA lives unless configured otherwise: beside the data
    /// directory (`<data_dir>-ca`), so that copying the data directory copies no CA key.
    pub fn default_ca_dir(&self) -> PathBuf {
        let root = fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let name = root.file_name().map_or_else(
            || "custodia-data".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        root.with_file_name(format!("{name}-ca"))
    }

    /// The audit log's signing key, created on first start with the origin as its name.
    fn log_signer(&self, origin: &str) -> anyhow::Result<NoteSigner> {
        self.note_signer("log.key", origin, KeyKind::Ed25519)
    }

    /// The audit log's signing key: the one this directory holds (whose name is the log's
    /// origin, fixed since the log began; `configured`, if given, must be it), or a new one
    /// named `configured` or else `default`.
    pub fn log_signer_for(
        &self,
        configured: Option<&str>,
        default: &str,
    ) -> anyhow::Result<NoteSigner> {
        let existing = self.root.join("log.key");
        let name = match (configured, fs::read_to_string(&existing)) {
            (Some(name), _) => name.to_owned(),
            (None, Ok(text)) => NoteSigner::from_text(&zeroize::Zeroizing::new(text))
                .map_err(|e| anyhow::anyhow!("{}: {e}", existing.display()))?
                .name()
                .to_owned(),
            (None, Err(_)) => default.to_owned(),
        };
        self.log_signer(&name)
    }

    /// The key that pseudonymizes subjects in the audit log, created on first start.
    pub fn pseudonym_key(&self) -> anyhow::Result<custodia_audit::PseudonymKey> {
        let path = self.root.join("pseudonym.key");
        match fs::read(&path) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                let key: [u8; 32] = bytes[..].try_into().map_err(|_| {
                    anyhow::anyhow!("{} must hold exactly 32 bytes", path.display())
                })?;
                Ok(custodia_audit::PseudonymKey::from_bytes(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = zeroize::Zeroizing::new([0u8; 32]);
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key[..]);
                write_new(&path, &key[..], 0o600)?;
                Ok(custodia_audit::PseudonymKey::from_bytes(*key))
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The disclosure-package signing key, created on first start named
    /// `<origin>/disclosure`; its name never changes after.
    pub fn package_signer(&self, origin: &str) -> anyhow::Result<NoteSigner> {
        let existing = self.root.join("package.key");
        let name = match fs::read_to_string(&existing) {
            Ok(text) => NoteSigner::from_text(&zeroize::Zeroizing::new(text))
                .map_err(|e| anyhow::anyhow!("{}: {e}", existing.display()))?
                .name()
                .to_owned(),
            Err(_) => format!("{origin}/disclosure"),
        };
        self.note_signer("package.key", &name, KeyKind::Ed25519)
    }

    /// A witness's cosigner key, created on first start with `name`.
    pub(crate) fn witness_signer(&self, name: &str) -> anyhow::Result<NoteSigner> {
        self.note_signer("witness.key", name, KeyKind::CosignatureV1)
    }

    /// The signing key in `file`, created on first start; its name and kind never change.
    fn note_signer(&self, file: &str, name: &str, kind: KeyKind) -> anyhow::Result<NoteSigner> {
        let path = self.root.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let signer = NoteSigner::from_text(&zeroize::Zeroizing::new(text))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                if signer.name() != name || signer.kind() != kind {
                    anyhow::bail!(
                        "{} is the key {:?}, but the configured name is {name:?}; a key's name cannot change",
                        path.display(),
                        signer.name()
                    );
                }
                Ok(signer)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = NoteSigner::generate_kind(name, kind)
                    .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
                write_new(&path, signer.to_text().as_bytes(), 0o600)?;
                Ok(signer)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The operator's token for `/metrics`, created on first start (or when missing).
    pub(crate) fn metrics_token(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        let path = self.root.join("metrics.token");
        match fs::read_to_string(&path) {
            Ok(s) => {
                let token = zeroize::Zeroizing::new(s.trim().to_owned());
                if token.len() < 32 {
                    anyhow::bail!(
                        "{} must hold a token of at least 32 characters",
                        path.display()
                    );
                }
                Ok(token)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (token, _) = custodia_service::credentials::new_token("cmt_");
                write_new(&path, token.as_bytes(), 0o600)?;
                Ok(token)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The deployment id, created on first start.
    pub(crate) fn deployment_id(&self) -> anyhow::Result<DeploymentId> {
        let path = self.root.join("deployment-id");
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = DeploymentId::new();
                write_new(&path, id.to_string().as_bytes(), 0o644)?;
                Ok(id)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Writes a new file with `mode`, synced, via a temporary name.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
