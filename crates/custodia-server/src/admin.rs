//! `custodia admin …`: operator tools that work on a data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use custodia_store::{HashKind, NoObserver};

/// `custodia admin …` commands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Hash lists that uploads are matched against.
    #[command(subcommand)]
    Hashlist(HashlistCommand),
    /// TLS certificates issued by the deployment's CA.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Key-encryption keys: rotate while serving, retire old versions, progress.
    #[command(subcommand)]
    Keys(crate::keyscmd::KeysCommand),
    /// Print, per file, what the server computes of an upload before matching it against
    /// the hash lists: SHA-256, MD5, the sniffed type and, for images, the PDQ hash and
    /// quality (the same function the server runs). To check a list entry, build a list
    /// from known files, or see why a file did not match.
    ///
    /// Example: custodia admin hash photo.jpg --json
    Hash {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Recovery when no admin can act (the founding admin's one-time code was lost, or the
    /// admins were deactivated): adds a new admin account and prints its one-time
    /// enrolment code, once. Needs the server stopped (every node) and the data
    /// directory; the audit log records it as the operator's action.
    ResetAdmin {
        /// The server's configuration file (storage, witnesses; `CUSTODIA_*` apply).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Back up a data directory while servers run: a consistent snapshot of the SQLite
    /// database (`VACUUM INTO`), the keys, the TLS files and, with --config, the
    /// configuration file, as one tar encrypted with age to the operator's key. On
    /// PostgreSQL take the database with pg_dump or pg_basebackup and this with
    /// --keys-only.
    Backup {
        /// The data directory.
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// The age public key it is encrypted to (`age-keygen` prints one; keep its
        /// private half off this machine).
        #[arg(long)]
        recipient: String,
        /// Keys, TLS files and configuration only (the database is backed up elsewhere).
        #[arg(long)]
        keys_only: bool,
        /// A configuration file to keep with it (restored as `custodia.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to write it (never overwritten).
        out: PathBuf,
    },
    /// Restore a backup into a new, empty data directory; `custodia serve --data-dir` then
    /// starts on it.
    Restore {
        /// The age identity file whose key the backup was encrypted to.
        #[arg(long)]
        identity: PathBuf,
        /// The data directory to create (absent or empty).
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// The backup file.
        backup: PathBuf,
    },
}

/// `custodia admin tls …`.
#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Issue a node its own server certificate (397 days, serverAuth) from the CA, into
    /// the node's data directory (`tls/server.pem`, `tls/server.key`, `tls/ca.pem`). A
    /// running node picks it up on SIGHUP. The CA key stays where it is.
    Issue {
        /// The CA's directory (`ca.pem`, `ca.key`): by default beside the first node's
        /// data directory, `<data_dir>-ca`.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// A DNS name or IP address clients reach the node by. Repeatable; default
        /// localhost, 127.0.0.1 and ::1.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

/// `custodia admin hashlist …`.
#[derive(Subcommand, Debug)]
pub enum HashlistCommand {
    /// Import a list of hex hashes, one per line (the first comma-separated field of each
    /// line; blank lines and lines starting with '#' are skipped).
    Import {
        /// The server's configuration file (its storage settings say where the lists go;
        /// `CUSTODIA_*` variables apply as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A name for the list (shown in cases it matches).
        #[arg(long)]
        list: String,
        /// `sha256`, `md5`, or `pdq` (a ThreatExchange / Hasher-Matcher-Actioner CSV
        /// export: the first 64-hex-digit field of each line is the PDQ hash; header
        /// lines are skipped).
        #[arg(long, default_value = "sha256")]
        kind: String,
        /// The file.
        file: PathBuf,
    },
}

/// Runs one admin command.
pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Hash { files, json } => hash_files(&files, json),
        AdminCommand::Keys(cmd) => crate::keyscmd::run(cmd).await,
        AdminCommand::Backup {
            data_dir,
            recipient,
            keys_only,
            config,
            out,
        } => {
            let done =
                crate::backup::backup(&data_dir, &recipient, keys_only, config.as_deref(), &out)?;
            println!(
                "wrote {} ({} bytes, {} files{}, age-encrypted to {})",
                out.display(),
                done.bytes,
                done.files,
                if done.database {
                    ", with a snapshot of the database"
                } else {
                    ", no database"
                },
                recipient.trim()
            );
            println!(
                "restore with: custodia admin restore --identity KEY --data-dir NEW_DIR {}",
                out.display()
            );
            Ok(())
        }
        AdminCommand::Restore {
            identity,
            data_dir,
            backup,
        } => {
            let files = crate::backup::restore(&backup, &identity, &data_dir)?;
            println!(
                "restored {files} files into {}; start it with: custodia serve --data-dir {}",
                data_dir.display(),
                data_dir.display()
            );
            Ok(())
        }
        AdminCommand::ResetAdmin { config, data_dir } => {
            let flags = crate::RawConfig {
                data_dir,
                ..crate::RawConfig::default()
            };
            let config = crate::RawConfig::load(config.as_deref(), flags)?.validate()?;
            let (governance, _lock) = crate::offline_governance(&config).await?;
            let admin = governance
                .operator_adds_admin()
                .await
                .map_err(|e| anyhow::anyhow!("adding an admin: {e}"))?;
            // Shown once, here, to the operator; never logged or stored.
            println!(
                "added {} ({}): enrolment code {} (works once, until {} UTC)",
                admin.staff.username,
                admin.staff.role,
                admin.enrolment_code.as_str(),
                admin.expires_at.to_datetime()
            );
            println!(
                "  they enrol with: custodia staff --profile NAME enrol {} --code CODE",
                admin.staff.username
            );
            Ok(())
        }
        AdminCommand::Tls(TlsCommand::Issue {
            ca_dir,
            data_dir,
            names,
        }) => {
            let ca = crate::certs::CaDir(ca_dir);
            if !ca.exists() {
                bail!(
                    "{} holds no CA key (ca.key): give the CA directory the first node created \
                     (by default beside its data directory, named <data_dir>-ca)",
                    ca.0.display()
                );
            }
            let names = if names.is_empty() {
                crate::certs::DEFAULT_NAMES
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect()
            } else {
                names
            };
            let now = custodia_core::Clock::now(&crate::SystemClock).to_datetime();
            ca.issue_into(&data_dir, &names, now)?;
            println!(
                "issued {} a certificate for {} (valid {} days); a running node loads it on SIGHUP",
                data_dir.display(),
                names.join(", "),
                crate::certs::SERVER_CERT_DAYS
            );
            Ok(())
        }
        AdminCommand::Hashlist(HashlistCommand::Import {
            config,
            data_dir,
            list,
            kind,
            file,
        }) => {
            let flags = crate::RawConfig {
                data_dir,
                ..crate::RawConfig::default()
            };
            let config = crate::RawConfig::load(config.as_deref(), flags)?.validate()?;
            let storage = crate::open_storage(&config, Arc::new(NoObserver)).await?;
            import(storage, list, &kind, file).await
        }
    }
}

async fn import(
    storage: custodia_store::Storage,
    list: String,
    kind: &str,
    file: PathBuf,
) -> anyhow::Result<()> {
    let store = storage.attachments;
    let (read, added, skipped) = match kind {
        "pdq" => {
            let (read, added, skipped) = import_lines(
                &file,
                |_, line| {
                    Ok(line
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .find_map(|f| custodia_pdq::PdqHash::from_hex(f.trim().trim_matches('"')))
                        .map(|h| h.to_bytes()))
                },
                async |batch| Ok(store.import_pdq(list.clone(), batch).await?),
            )
            .await?;
            if read == 0 {
                bail!(
                    "{}: no PDQ hash (64 hex digits) found on any of its {skipped} lines",
                    file.display()
                );
            }
            (read, added, skipped)
        }
        "sha256" | "md5" => {
            let (hash_kind, len) = if kind == "sha256" {
                (HashKind::Sha256, 32)
            } else {
                (HashKind::Md5, 16)
            };
            import_lines(
                &file,
                |n, line| {
                    let field = line.split(',').next().unwrap_or("").trim();
                    if field.is_empty() || field.starts_with('#') {
                        return Ok(None);
                    }
                    hex(field)
                        .filter(|h| h.len() == len)
                        .map(Some)
                        .with_context(|| {
                            format!(
                                "{}:{n}: expected {} hex digits of a {kind} hash, found {field:?}",
                                file.display(),
                                2 * len,
                            )
                        })
                },
                async |batch| Ok(store.import_hashes(list.clone(), hash_kind, batch).await?),
            )
            .await?
        }
        other => bail!("--kind must be sha256, md5 or pdq, not {other:?}"),
    };
    println!(
        "imported {read} {kind} hashes into list {list:?} ({added} new; {skipped} lines skipped)"
    );
    Ok(())
}

/// Reads `file` line by line: `parse` makes an item of a line (numbered from 1), or
/// `None` to skip it; every 10,000 items go to `store`, with progress every 100,000.
/// Returns (items read, items new, lines skipped).
async fn import_lines<T>(
    file: &Path,
    parse: impl Fn(usize, &str) -> anyhow::Result<Option<T>>,
    mut store: impl AsyncFnMut(Vec<T>) -> anyhow::Result<u64>,
) -> anyhow::Result<(u64, u64, u64)> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let (mut batch, mut read, mut added, mut skipped) = (Vec::new(), 0u64, 0u64, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        match parse(n + 1, &line)? {
            Some(item) => {
                batch.push(item);
                read += 1;
            }
            None => skipped += 1,
        }
        if batch.len() == 10_000 {
            added += store(std::mem::take(&mut batch)).await?;
            if read.is_multiple_of(100_000) {
                eprintln!("{read} hashes read, {added} new");
            }
        }
    }
    added += store(batch).await?;
    Ok((read, added, skipped))
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `custodia admin hash`: each file hashed as an upload is.
fn hash_files(files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut all = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let h = custodia_service::upload_hashes(&bytes);
        let (pdq, quality, refused) = match &h.pdq {
            None => (None, None, None),
            Some(Ok((hash, quality))) => (Some(hash.to_string()), Some(*quality), None),
            Some(Err(why)) => (None, None, Some(why.clone())),
        };
        if json {
            all.push(serde_json::json!({
                "file": path.display().to_string(),
                "sha256": hex(&h.sha256),
                "md5": hex(&h.md5),
                "content_type": h.content_type,
                "pdq": pdq,
                "pdq_quality": quality,
                "refused": refused,
            }));
            continue;
        }
        println!("{}", path.display());
        println!("  sha256   {}", hex(&h.sha256));
        println!("  md5      {}", hex(&h.md5));
        println!("  type     {}", h.content_type);
        match (pdq, quality, refused) {
            (Some(pdq), Some(quality), _) => {
                println!("  pdq      {pdq}");
                println!(
                    "  quality  {quality}{}",
                    if quality < 50 {
                        "  (below 50: too little detail for PDQ to match on)"
                    } else {
                        ""
                    }
                );
            }
            (_, _, Some(why)) => {
                println!(
                    "  pdq      none: the image does not decode ({why}); the server refuses this upload"
                )
            }
            _ => println!("  pdq      none (not an image the server hashes)"),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
