//! `custodia disclosure …`: the recipient's offline check of a disclosure package, and the
//! operator's printing of the package key.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use custodia_tlog::{KeyKind, NoteSigner, NoteVerifier};

/// `custodia disclosure`.
#[derive(Debug, Subcommand)]
pub enum DisclosureCommand {
    /// Check a disclosure package offline: the manifest's signature, every file's hash,
    /// the log receipts against the witnessed checkpoint, the reads against the records,
    /// and each message's franking commitment.
    ///
    /// Example: custodia disclosure verify LR-2026-000001.tar.age --identity agency.key
    /// --package-key "$(cat package-key.txt)" --log-key "$(cat log-key.txt)"
    Verify {
        /// The package: as delivered (age-encrypted; give --identity) or as `age -d`
        /// decrypted it (a tar archive).
        package: PathBuf,
        /// The agency's age identity file (from age-keygen), to decrypt the package.
        #[arg(long)]
        identity: Option<PathBuf>,
        /// The deployment's package-signing verifier key (`custodia disclosure public-key`),
        /// or a file holding it.
        #[arg(long)]
        package_key: String,
        /// The deployment's audit log verifier key (`custodia log public-key`), or a file
        /// holding it.
        #[arg(long)]
        log_key: String,
        /// A witness's verifier key whose cosignature the checkpoint must carry. Repeatable.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the --witness keys must have cosigned (default: all).
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Print the verifier key of a server's disclosure-package signing key.
    PublicKey {
        /// The server's data directory.
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
    },
}

/// A verifier key given as text or as a file holding it.
fn verifier(flag: &str, given: &str, kind: KeyKind) -> anyhow::Result<NoteVerifier> {
    let text = match fs::read_to_string(given) {
        Ok(text) => text,
        Err(_) => given.to_owned(),
    };
    NoteVerifier::parse(text.trim())
        .ok()
        .filter(|v| v.kind() == kind)
        .with_context(|| {
            format!("{flag}: not a verifier key (name+hash+base64, as the server prints it)")
        })
}

/// Runs a `custodia disclosure` command.
pub fn run(cmd: DisclosureCommand) -> anyhow::Result<()> {
    match cmd {
        DisclosureCommand::Verify {
            package,
            identity,
            package_key,
            log_key,
            witnesses,
            quorum,
        } => {
            let package_key = verifier("--package-key", &package_key, KeyKind::Ed25519)?;
            let log_key = verifier("--log-key", &log_key, KeyKind::Ed25519)?;
            let witnesses = witnesses
                .iter()
                .map(|w| verifier("--witness", w, KeyKind::CosignatureV1))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let quorum = quorum.unwrap_or(witnesses.len());
            if quorum > witnesses.len() {
                anyhow::bail!(
                    "--quorum {quorum} is more than the {} --witness keys given",
                    witnesses.len()
                );
            }
            let bytes =
                fs::read(&package).with_context(|| format!("reading {}", package.display()))?;
            let archive = if custodia_disclosure::is_age(&bytes) {
                let identity = identity.with_context(|| {
                    format!(
                        "{} is age-encrypted: give --identity FILE (the agency's age identity), or decrypt it first with age -d",
                        package.display()
                    )
                })?;
                let text = zeroize::Zeroizing::new(
                    fs::read_to_string(&identity)
                        .with_context(|| format!("reading {}", identity.display()))?,
                );
                custodia_disclosure::decrypt(&text, &bytes)?
            } else {
                bytes
            };
            let verified = custodia_disclosure::verify(
                &archive,
                &custodia_disclosure::Keys {
                    package: &package_key,
                    log: &log_key,
                    witnesses: &witnesses,
                    quorum,
                },
            )
            .map_err(|p| anyhow::anyhow!("the package does not verify: {p}"))?;
            custodia_disclosure::summary(&verified, &mut std::io::stdout())?;
        }
        DisclosureCommand::PublicKey { data_dir } => {
            let path = data_dir.join("package.key");
            let text = zeroize::Zeroizing::new(
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            let signer = NoteSigner::from_text(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            println!("{}", signer.verifier());
        }
    }
    Ok(())
}
