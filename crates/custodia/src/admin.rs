//! `custodia admin …`: operator tools that work on a data directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use custodia_store::{AttachmentStore, HashKind, NoObserver};
use custodia_store_sqlite::SqliteStore;

use crate::datadir::DataDir;

/// `custodia admin …` commands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Hash lists that uploads are matched against.
    #[command(subcommand)]
    Hashlist(HashlistCommand),
    /// Measure PDQ, PDQ matching and upload throughput (see `safetybench`).
    BenchSafety(crate::safetybench::SafetyBenchArgs),
}

/// `custodia admin hashlist …`.
#[derive(Subcommand, Debug)]
pub enum HashlistCommand {
    /// Import a list of hex hashes, one per line (the first comma-separated field of each
    /// line; blank lines and lines starting with '#' are skipped).
    Import {
        /// The server's data directory.
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
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
        AdminCommand::Hashlist(HashlistCommand::Import {
            data_dir,
            list,
            kind,
            file,
        }) => import(data_dir, list, &kind, file).await,
        AdminCommand::BenchSafety(args) => crate::safetybench::run(args).await,
    }
}

async fn import(data_dir: PathBuf, list: String, kind: &str, file: PathBuf) -> anyhow::Result<()> {
    let (kind, len) = match kind {
        "sha256" => (HashKind::Sha256, 32),
        "md5" => (HashKind::Md5, 16),
        "pdq" => return import_pdq(data_dir, list, file).await,
        other => bail!("--kind must be sha256, md5 or pdq, not {other:?}"),
    };
    let dir = DataDir::open(&data_dir)?;
    let store = SqliteStore::open(&dir.database(), Arc::new(NoObserver))
        .await
        .context("opening the database")?;
    let reader = BufReader::new(
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?,
    );
    let (mut batch, mut read, mut added) = (Vec::new(), 0u64, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        let field = line.split(',').next().unwrap_or("").trim();
        if field.is_empty() || field.starts_with('#') {
            continue;
        }
        let hash = hex(field).filter(|h| h.len() == len).with_context(|| {
            format!(
                "{}:{}: expected {} hex digits of a {} hash, found {field:?}",
                file.display(),
                n + 1,
                2 * len,
                kind.as_str()
            )
        })?;
        batch.push(hash);
        read += 1;
        if batch.len() == 10_000 {
            added += store
                .import_hashes(list.clone(), kind, std::mem::take(&mut batch))
                .await?;
            if read.is_multiple_of(100_000) {
                eprintln!("{read} hashes read, {added} new");
            }
        }
    }
    added += store.import_hashes(list.clone(), kind, batch).await?;
    println!(
        "imported {read} {} hashes into list {list:?} ({added} new)",
        kind.as_str()
    );
    Ok(())
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

async fn import_pdq(data_dir: PathBuf, list: String, file: PathBuf) -> anyhow::Result<()> {
    let dir = DataDir::open(&data_dir)?;
    let store = SqliteStore::open(&dir.database(), Arc::new(NoObserver))
        .await
        .context("opening the database")?;
    let reader = BufReader::new(
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?,
    );
    let (mut batch, mut read, mut added, mut skipped) = (Vec::new(), 0u64, 0u64, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        let hash = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .find_map(|f| custodia_pdq::PdqHash::from_hex(f.trim().trim_matches('"')));
        match hash {
            Some(h) => {
                batch.push(h.to_bytes());
                read += 1;
            }
            None => {
                skipped += 1;
                continue;
            }
        }
        if batch.len() == 10_000 {
            added += store
                .import_pdq(list.clone(), std::mem::take(&mut batch))
                .await?;
            if read.is_multiple_of(100_000) {
                eprintln!("{read} PDQ hashes read, {added} new");
            }
        }
    }
    added += store.import_pdq(list.clone(), batch).await?;
    if read == 0 {
        bail!(
            "{}: no PDQ hash (64 hex digits) found on any of its {skipped} lines",
            file.display()
        );
    }
    println!(
        "imported {read} pdq hashes into list {list:?} ({added} new; {skipped} lines without a hash skipped)"
    );
    Ok(())
}
