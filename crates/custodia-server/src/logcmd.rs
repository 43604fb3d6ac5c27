//! `custodia log …`: key generation and the auditor's verifier.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
pub use custodia_auditor::{
    ProvenEntry, Tiles, VerifiedLog, WitnessPolicy, prove_consistency, prove_inclusion, read_log,
};
use custodia_auditor::{can_extend, hex, open_checkpoint};
use custodia_sdk::Client;
use custodia_tlog::{Checkpoint, NoteSigner, NoteVerifier};

/// `custodia log …` commands.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Generate a signing key (for a log or a witness) and print its verifier key.
    Keygen {
        /// Key name, e.g. example.org/custodia/audit.
        #[arg(long)]
        name: String,
        /// Where to write the private key (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Make a witness's cosigner key (C2SP cosignature/v1) instead of a log key.
        #[arg(long)]
        witness: bool,
    },
    /// Print the verifier key of a server's audit log.
    PublicKey {
        /// The server's data directory.
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
    },
    /// Verify a log: signature, witness quorum, entries, root, and consistency with the
    /// last run.
    Verify {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// Where the last verified checkpoint is remembered.
        #[arg(long)]
        state: PathBuf,
    },
    /// Prove that one entry is in the log: fetch the entry and the tiles its inclusion
    /// proof needs, and check the proof against the signed checkpoint.
    Inclusion {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// The entry's index (from a receipt).
        #[arg(long)]
        index: u64,
        /// The leaf hash the entry must have (hex, from a receipt).
        #[arg(long)]
        leaf_hash: Option<String>,
    },
    /// Compute the transparency report over a period from the log's public tiles alone
    /// (every entry of the current witnessed checkpoint, checked against it): JSON, or
    /// the self-contained HTML page. Staff get the same bytes from the server.
    Report {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// The first day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: String,
        /// The last day, included (YYYY-MM-DD, UTC).
        #[arg(long)]
        to: String,
        /// Print the HTML page instead of JSON.
        #[arg(long)]
        html: bool,
    },
    /// Prove that the log still extends an earlier checkpoint (a receipt's, or a
    /// `verify --state` file): fetch the tiles of the consistency proof and check it.
    Consistency {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// A file holding the earlier signed checkpoint.
        #[arg(long)]
        old: PathBuf,
    },
}

/// Where a log is and how to trust it.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// The auditor URL, e.g. https://127.0.0.1:8444.
    #[arg(long)]
    pub url: String,
    /// The log's verifier key (`custodia log public-key`).
    #[arg(long, env = "CUSTODIA_LOG_KEY")]
    pub key: String,
    /// The CA certificate of the auditor listener.
    #[arg(long, env = "CUSTODIA_CA_CERT")]
    pub ca_cert: PathBuf,
    /// The witnesses whose cosignatures are required.
    #[command(flatten)]
    pub witnesses: WitnessArgs,
}

impl LogArgs {
    /// A client for the log, its key, and the witness policy.
    pub fn open(&self) -> anyhow::Result<(Client, NoteVerifier, WitnessPolicy)> {
        let ca = fs::read(&self.ca_cert)
            .with_context(|| format!("reading the CA certificate {}", self.ca_cert.display()))?;
        let key = NoteVerifier::parse(&self.key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
        let witnesses = WitnessPolicy::new(&self.witnesses.witnesses, self.witnesses.quorum)?;
        Ok((Client::new(&self.url, &ca)?, key, witnesses))
    }
}

/// The witnesses an auditor trusts, and how many must have cosigned.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WitnessArgs {
    /// A witness's verifier key (as `custodia witness` prints it). Repeatable.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
    /// How many of the given witnesses must have cosigned the checkpoint. Default: all.
    #[arg(long)]
    pub quorum: Option<usize>,
}

/// Runs one log command.
pub async fn run(cmd: LogCommand) -> anyhow::Result<()> {
    match cmd {
        LogCommand::Keygen { name, out, witness } => {
            let kind = if witness {
                custodia_tlog::KeyKind::CosignatureV1
            } else {
                custodia_tlog::KeyKind::Ed25519
            };
            let signer =
                NoteSigner::generate_kind(&name, kind).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
            f.write_all(signer.to_text().as_bytes())?;
            f.sync_all()?;
            println!("{}", signer.verifier());
        }
        LogCommand::PublicKey { data_dir } => {
            let path = data_dir.join("log.key");
            let text = zeroize::Zeroizing::new(
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            let signer = NoteSigner::from_text(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            println!("{}", signer.verifier());
        }
        LogCommand::Verify { log, state } => {
            let (client, key, witnesses) = log.open()?;
            let verified = verify(&client, &key, &witnesses, &state).await?;
            println!(
                "verified: {} entries, root {}",
                verified.size,
                hex(&verified.root)
            );
        }
        LogCommand::Inclusion {
            log,
            index,
            leaf_hash,
        } => {
            let (client, key, witnesses) = log.open()?;
            let proven = prove_inclusion(&client, &key, &witnesses, index).await?;
            if let Some(expected) = leaf_hash
                && !expected.eq_ignore_ascii_case(&hex(&proven.leaf_hash))
            {
                bail!(
                    "entry {index} has leaf hash {}, not {expected}: it is not the entry of the receipt",
                    hex(&proven.leaf_hash)
                );
            }
            println!(
                "entry {index} ({}, case {}) is in the log of {} entries, root {}",
                proven.entry.event.kind.as_str(),
                proven.entry.event.case.as_deref().unwrap_or("-"),
                proven.checkpoint.size,
                hex(&proven.checkpoint.root)
            );
            println!("leaf hash {}", hex(&proven.leaf_hash));
            for h in &proven.proof {
                println!("proof {}", hex(h));
            }
        }
        LogCommand::Report {
            log,
            from,
            to,
            html,
        } => {
            let period = custodia_transparency::Period::parse(&from, &to)
                .map_err(|e| anyhow::anyhow!("--from/--to: {e}"))?;
            let (client, key, witnesses) = log.open()?;
            let report = report(&client, &key, &witnesses, period).await?;
            if html {
                print!("{}", custodia_transparency::report_html(&report));
            } else {
                print!("{}", report.to_json());
            }
        }
        LogCommand::Consistency { log, old } => {
            let (client, key, witnesses) = log.open()?;
            let bytes = fs::read(&old).with_context(|| format!("reading {}", old.display()))?;
            let (old, _) = open_checkpoint(&bytes, &key)
                .with_context(|| format!("the earlier checkpoint in {}", old.display()))?;
            let (new, proof) = prove_consistency(&client, &key, &witnesses, &old).await?;
            println!(
                "the log of {} entries (root {}) extends the earlier one of {} entries (root {})",
                new.size,
                hex(&new.root),
                old.size,
                hex(&old.root)
            );
            for h in &proof {
                println!("proof {}", hex(h));
            }
        }
    }
    Ok(())
}

/// The transparency report over `period`, from every entry of the log at `client` (its
/// checkpoint signed by `key` and cosigned by `witnesses`' quorum).
pub async fn report(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    period: custodia_transparency::Period,
) -> anyhow::Result<custodia_sdk::proto::report::TransparencyReport> {
    let mut report = custodia_transparency::ReportBuilder::new(period);
    let log = read_log(client, key, witnesses, Tiles::OnMismatch, |_, e| {
        report.visit(e)
    })
    .await?;
    let cp = &log.checkpoint;
    Ok(report.finish(&cp.origin, cp.size, &cp.root))
}

/// Checks the log at `client` and remembers its checkpoint in `state`.
pub async fn verify(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    state: &Path,
) -> anyhow::Result<Checkpoint> {
    let remembered = match fs::read(state) {
        Ok(bytes) => Some(
            open_checkpoint(&bytes, key)
                .context("the remembered checkpoint in the state file")?
                .0,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", state.display())),
    };
    let log = read_log(client, key, witnesses, Tiles::Check, |_, _| ()).await?;
    if let Some(old) = &remembered {
        can_extend(old, &log.checkpoint).context("compared with the state file")?;
        if log.root_at(old.size)? != old.root {
            bail!(
                "the log is not consistent with the remembered checkpoint at size {}: the log forked or its history was rewritten",
                old.size
            );
        }
    }
    let tmp = state.with_extension("tmp");
    fs::write(&tmp, log.note.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, state).with_context(|| format!("writing {}", state.display()))?;
    Ok(log.checkpoint)
}
