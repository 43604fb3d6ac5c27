//! `custodia admin keys …`: rotating and retiring key-encryption keys while servers run.
//! The tool changes the keyring file (or the token) and records the step in the store;
//! the running servers adopt it, log it and rewrap in the background
//! (`custodia_governance` `rotation`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use custodia_core::Clock;
use custodia_governance::{KekStatus, usage_detail, version_in_use};
use custodia_keys::{KekProvider, Keyring, Pkcs11Kek};
use custodia_store::{KekSealedKind, KekStep, KekStepKind, NoObserver, Storage};

use crate::Config;
use crate::datadir::DataDir;

/// `custodia admin keys …` commands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new KEK version current while the servers run: new data keys are wrapped
    /// under it at once, and every running server rewraps the existing keys and secrets
    /// in the background (kek_rewrap_per_sec), resuming after a restart. Each step is
    /// logged. With several nodes that each hold a copy of the keyring file, add the
    /// version with --stage first, copy the keyring to every node, then run this again.
    Rotate {
        /// The server's configuration file (storage, keyring or token; `CUSTODIA_*` apply).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only add the new version to the keyring file, not current yet.
        #[arg(long)]
        stage: bool,
    },
    /// Destroy an old KEK version once nothing is sealed under it (refused before the
    /// rotation away from it has finished). Franking tags made under it still verify.
    Retire {
        /// The server's configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The version to destroy.
        version: u32,
    },
    /// Show the KEK versions, what each still seals, and the rotation's progress.
    Status {
        /// The server's configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where the KEKs are, opened for the operator's tool.
enum Keks {
    File(PathBuf, Option<custodia_keys::KeyringPassphrase>, Keyring),
    Token(Pkcs11Kek),
}

impl Keks {
    fn open(config: &Config) -> anyhow::Result<Self> {
        Ok(match &config.pkcs11 {
            Some(token) => Self::Token(
                Pkcs11Kek::open(token)
                    .map(|(t, _)| t)
                    .map_err(|e| anyhow::anyhow!("opening the KEK token: {e}"))?,
            ),
            None => {
                let path = DataDir::open(&config.data_dir)?.keyring();
                let ring = Keyring::load(&path, config.keyring_passphrase.as_ref()).with_context(
                    || {
                        format!(
                            "opening the keyring of {} (start the server once to create it)",
                            config.data_dir.display()
                        )
                    },
                )?;
                Self::File(path, config.keyring_passphrase.clone(), ring)
            }
        })
    }

    /// The version the servers use (their own rule).
    fn in_use(&self, status: &KekStatus) -> u32 {
        version_in_use(&status.steps, &self.versions()).unwrap_or(1)
    }

    fn versions(&self) -> Vec<u32> {
        match self {
            Self::File(_, _, ring) => ring.versions(),
            Self::Token(t) => t.versions(),
        }
    }
}

async fn open(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<(Storage, Keks)> {
    let flags = crate::RawConfig {
        data_dir,
        ..crate::RawConfig::default()
    };
    let config = crate::RawConfig::load(config.as_deref(), flags)?.validate()?;
    let storage = crate::open_storage(&config, Arc::new(NoObserver)).await?;
    let keks = Keks::open(&config)?;
    Ok((storage, keks))
}

async fn status(storage: &Storage) -> anyhow::Result<KekStatus> {
    KekStatus::read(storage)
        .await
        .map_err(|e| anyhow::anyhow!("reading the KEK state: {e}"))
}

/// Runs one `admin keys` command.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate {
            config,
            data_dir,
            stage,
        } => rotate(config, data_dir, stage).await,
        KeysCommand::Retire {
            config,
            data_dir,
            version,
        } => retire(config, data_dir, version).await,
        KeysCommand::Status {
            config,
            data_dir,
            json,
        } => {
            let (storage, keks) = open(config, data_dir).await?;
            let status = status(&storage).await?;
            if json {
                println!("{}", status_json(&status, &keks));
            } else {
                print!("{}", status_text(&status, &keks));
            }
            Ok(())
        }
    }
}

async fn rotate(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    stage: bool,
) -> anyhow::Result<()> {
    let (storage, keks) = open(config, data_dir).await?;
    let before = status(&storage).await?;
    let from = keks.in_use(&before);
    // A version above it that the store does not name yet was staged, or added by a
    // rotate that stopped before recording it: it is made current instead of another.
    let staged = keks.versions().into_iter().filter(|v| *v > from).max();
    let version = match (&keks, staged) {
        (Keks::Token(_), _) if stage => bail!(
            "--stage is for keyring files copied to each node; every node uses the same token"
        ),
        (Keks::File(..), Some(v)) if stage => bail!(
            "KEK version {v} is already staged: copy the keyring to every node, then run \
             `custodia admin keys rotate` to make it current"
        ),
        (Keks::Token(_), Some(v)) => v,
        (Keks::Token(token), None) => token
            .add_version()
            .map_err(|e| anyhow::anyhow!("adding a KEK version in the token: {e}"))?,
        (Keks::File(path, pass, _), Some(v)) if !stage => {
            Keyring::set_current(path, pass.as_ref(), v)?;
            v
        }
        (Keks::File(path, pass, _), _) => Keyring::add_version(path, pass.as_ref(), !stage)?,
    };
    if stage {
        let Keks::File(path, ..) = &keks else {
            unreachable!("refused above")
        };
        println!(
            "added KEK version {version} to {}; it is not current yet. Copy this keyring file \
             into every node's data directory (running nodes read it within a second), then run \
             `custodia admin keys rotate` again to make it current.",
            path.display()
        );
        return Ok(());
    }
    let older: u64 = before.total() - before.under(version);
    storage
        .deks
        .add_kek_step(KekStep {
            kind: KekStepKind::Rotated,
            version,
            at: crate::SystemClock.now(),
            detail: format!("from={from} to_rewrap={older}"),
            log_index: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("recording the rotation: {e}"))?;
    println!(
        "KEK version {version} is current (was {from}): running servers wrap new data keys \
         under it within a second, log the rotation, and rewrap the {older} keys and secrets \
         under older versions in the background."
    );
    println!(
        "  progress: custodia admin keys status; when it is complete: custodia admin keys retire {from}"
    );
    Ok(())
}

async fn retire(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    version: u32,
) -> anyhow::Result<()> {
    let (storage, keks) = open(config, data_dir).await?;
    let state = status(&storage).await?;
    let current = keks.in_use(&state);
    if version == current {
        bail!(
            "KEK version {version} is current: rotate to a new version first (custodia admin keys rotate)"
        );
    }
    if !keks.versions().contains(&version) {
        bail!(
            "there is no KEK version {version} to retire (versions: {})",
            list(&keks.versions())
        );
    }
    let left = state.under(version);
    if left > 0 {
        bail!(
            "{left} keys and secrets are still sealed under KEK version {version}: wait for the \
             rotation to finish (custodia admin keys status)"
        );
    }
    if !state.has(KekStepKind::Rewrapped, current) {
        bail!(
            "the rotation to KEK version {current} has not finished yet (custodia admin keys status)"
        );
    }
    match &keks {
        Keks::Token(token) => token
            .retire(version)
            .map_err(|e| anyhow::anyhow!("retiring the KEK in the token: {e}"))?,
        Keks::File(path, pass, _) => Keyring::retire(path, pass.as_ref(), version)?,
    }
    storage
        .deks
        .add_kek_step(KekStep {
            kind: KekStepKind::Retired,
            version,
            at: crate::SystemClock.now(),
            detail: String::new(),
            log_index: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("recording the retirement: {e}"))?;
    println!(
        "KEK version {version} is destroyed (only its franking tag key is kept, so reports of \
         old messages still verify); running servers log it within a second."
    );
    Ok(())
}

fn list(versions: &[u32]) -> String {
    versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn when(t: custodia_core::Timestamp) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// What `status` reports, computed once for both forms.
struct Progress {
    current: u32,
    under_current: u64,
    total: u64,
    complete: bool,
}

fn progress(status: &KekStatus, keks: &Keks) -> Progress {
    let current = keks.in_use(status);
    let under_current = status.under(current);
    let total = status.total();
    Progress {
        current,
        under_current,
        total,
        complete: under_current == total
            && (status.target.is_none() || status.has(KekStepKind::Rewrapped, current)),
    }
}

fn status_text(status: &KekStatus, keks: &Keks) -> String {
    let p = progress(status, keks);
    let mut out = format!(
        "KEK version {} is current; versions held: {}\n",
        p.current,
        list(&keks.versions())
    );
    let percent = (p.under_current * 100).checked_div(p.total).unwrap_or(100);
    out.push_str(&format!(
        "{} of {} keys and secrets are under version {} ({percent}%){}\n",
        p.under_current,
        p.total,
        p.current,
        if p.complete {
            ": the rotation is complete"
        } else {
            ": rewrapping"
        }
    ));
    let mut versions: Vec<u32> = status.usage.iter().map(|u| u.version).collect();
    versions.dedup();
    for v in versions {
        let parts: Vec<String> = KekSealedKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let n: u64 = status
                    .usage
                    .iter()
                    .filter(|u| u.kind == kind && u.version == v)
                    .map(|u| u.count)
                    .sum();
                (n > 0).then(|| format!("{n} {}", kind.as_str()))
            })
            .collect();
        out.push_str(&format!("  under version {v}: {}\n", parts.join(", ")));
    }
    for s in &status.steps {
        out.push_str(&format!(
            "  {} {} version {}{}\n",
            when(s.at),
            s.kind.as_str(),
            s.version,
            match s.log_index {
                Some(i) => format!(" (log entry {i})"),
                None => " (not logged yet: a running server logs it)".into(),
            }
        ));
    }
    out
}

fn status_json(status: &KekStatus, keks: &Keks) -> serde_json::Value {
    let p = progress(status, keks);
    serde_json::json!({
        "current": p.current,
        "versions_held": keks.versions(),
        "total": p.total,
        "under_current": p.under_current,
        "complete": p.complete,
        "usage": status.usage.iter().map(|u| serde_json::json!({
            "version": u.version, "kind": u.kind.as_str(), "count": u.count,
        })).collect::<Vec<_>>(),
        "detail_under_current": usage_detail(&status.usage, p.current),
        "steps": status.steps.iter().map(|s| serde_json::json!({
            "step": s.kind.as_str(), "version": s.version, "at_ms": s.at.as_millis(),
            "log_index": s.log_index,
        })).collect::<Vec<_>>(),
    })
}
