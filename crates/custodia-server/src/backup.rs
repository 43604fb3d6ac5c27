//! `custodia admin backup` and `restore`: one age-encrypted tar of the data directory —
//! a consistent snapshot of the SQLite database taken while servers run, the keys, the
//! TLS files, and the configuration file if given — and its return into an empty data
//! directory. Streamed both ways: nothing holds the whole archive in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

/// The database and its journal files, which the snapshot stands in for.
const DATABASE_FILES: [&str; 3] = ["custodia.db", "custodia.db-wal", "custodia.db-shm"];
/// Not data: the lock every server holds on the directory.
const LOCK_FILE: &str = "server.lock";
/// Where a given configuration file goes in the archive (and, restored, in the directory).
const CONFIG_NAME: &str = "custodia.toml";

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    /// Files in the archive.
    pub files: usize,
    /// Bytes of the encrypted archive.
    pub bytes: u64,
    /// Whether it holds the database.
    pub database: bool,
}

/// Writes the backup of `data_dir` to `out` (refused if it exists), encrypted to
/// `recipient` (`age1…`). Without `keys_only`, the SQLite database is snapshotted first
/// (`VACUUM INTO`, while servers go on writing). `config` is stored as `custodia.toml`.
pub fn backup(
    data_dir: &Path,
    recipient: &str,
    keys_only: bool,
    config: Option<&Path>,
    out: &Path,
) -> anyhow::Result<BackupSummary> {
    let recipient = custodia_disclosure::recipient(recipient)
        .map_err(|e| anyhow::anyhow!("--recipient: {e} (age-keygen prints one)"))?;
    if !data_dir.join("keyring").is_file() {
        bail!(
            "{} is not a custodia data directory (it has no keyring): give --data-dir",
            data_dir.display()
        );
    }
    if out.exists() {
        bail!("{} exists already: choose another file", out.display());
    }
    let scratch = tempfile::tempdir().context("a scratch directory for the snapshot")?;
    let snapshot = scratch.path().join("custodia.db");
    let database = !keys_only && data_dir.join("custodia.db").is_file();
    if database {
        custodia_store_sqlite::snapshot(&data_dir.join("custodia.db"), &snapshot)
            .map_err(|e| anyhow::anyhow!("snapshotting the database: {e}"))?;
    }

    let tmp = out.with_extension("partial");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> anyhow::Result<usize> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .context("age")?;
        let sealed = encryptor.wrap_output(BufWriter::new(&file))?;
        let mut archive = tar::Builder::new(sealed);
        archive.mode(tar::HeaderMode::Complete);
        let mut files = 0;
        for (path, name) in data_files(data_dir)? {
            archive
                .append_path_with_name(&path, &name)
                .with_context(|| format!("adding {}", path.display()))?;
            files += 1;
        }
        if database {
            archive.append_path_with_name(&snapshot, "custodia.db")?;
            files += 1;
        }
        if let Some(config) = config {
            archive
                .append_path_with_name(config, CONFIG_NAME)
                .with_context(|| format!("adding {}", config.display()))?;
            files += 1;
        }
        archive.into_inner()?.finish()?.flush()?;
        Ok(files)
    })();
    let files = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()?;
    fs::rename(&tmp, out)?;
    // A bare file name's parent is "": the current directory.
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    sync_dir(parent.unwrap_or(Path::new(".")))?;
    Ok(BackupSummary {
        files,
        bytes: fs::metadata(out)?.len(),
        database,
    })
}

/// The data directory's files to keep, with their names in the archive.
fn data_files(root: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.strip_prefix(root)?.to_owned();
            let top = name.to_string_lossy();
            if path.is_dir() {
                dirs.push(path);
            } else if !(DATABASE_FILES.contains(&top.as_ref()) || top == LOCK_FILE) {
                out.push((path, name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Restores the backup `input` into `data_dir` (absent or empty), decrypting it with an
/// identity from `identity_file`. Returns the files restored.
pub fn restore(input: &Path, identity_file: &Path, data_dir: &Path) -> anyhow::Result<usize> {
    if data_dir.exists()
        && fs::read_dir(data_dir)
            .with_context(|| format!("reading {}", data_dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore into a new data directory (a backup never overwrites one)",
            data_dir.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(identity_file)
            .with_context(|| format!("reading the identity {}", identity_file.display()))?,
    );
    let identities = custodia_disclosure::identities(&text).map_err(|_| {
        anyhow::anyhow!(
            "{} holds no age identity (AGE-SECRET-KEY-1…)",
            identity_file.display()
        )
    })?;
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("{} is not an age-encrypted backup: {e}", input.display()))?;
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| anyhow::anyhow!("decrypting {}: {e}", input.display()))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let mut archive = tar::Archive::new(plain);
    archive.set_preserve_permissions(true);
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        if !name.components().all(|c| matches!(c, Component::Normal(_))) {
            bail!(
                "the backup names {} outside the data directory",
                name.display()
            );
        }
        if !entry.unpack_in(data_dir)? {
            bail!(
                "the backup names {} outside the data directory",
                name.display()
            );
        }
        if entry.header().entry_type().is_file() {
            File::open(data_dir.join(&name))?.sync_all()?;
            files += 1;
        }
    }
    sync_dir(data_dir)?;
    Ok(files)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}
