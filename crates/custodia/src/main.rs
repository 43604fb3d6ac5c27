//! `custodia`: the server, the operator's and auditor's tools, and the command-line client.
//! Only parses arguments: the server is `custodia-server`, the client `custodia-client`.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use custodia_client::{ClientCommand, examples};
use custodia_server::RawConfig;

#[derive(Parser)]
#[command(
    name = "custodia",
    version,
    about = "Private messaging with governed, audited access"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creates the data directory on first start).
    Serve {
        /// A TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (database, keyring, certificates).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listener address, e.g. 127.0.0.1:8443 (port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
        /// The staff API's listener, e.g. 127.0.0.1:8446.
        #[arg(long)]
        staff_listen: Option<String>,
        /// The auditor listener (transparency log tiles), e.g. 127.0.0.1:8444.
        #[arg(long)]
        audit_listen: Option<String>,
        /// Print the effective configuration, each setting with where it came from, and
        /// exit without serving.
        #[arg(long)]
        print_config: bool,
    },
    /// Transparency log tools: keys and the auditor's verifier.
    #[command(subcommand)]
    Log(custodia_server::logcmd::LogCommand),
    /// Disclosure packages: the recipient's offline check, and the package key.
    #[command(subcommand)]
    Disclosure(custodia_server::disclosurecmd::DisclosureCommand),
    /// Operator tools on a data directory (hash list import).
    #[command(subcommand)]
    Admin(custodia_server::admin::AdminCommand),
    /// Run a witness that cosigns logs' checkpoints (C2SP tlog-witness).
    Witness {
        /// Data directory (witness key, certificates, state).
        #[arg(long, default_value = "custodia-witness")]
        data_dir: PathBuf,
        /// Listener address.
        #[arg(long, default_value = "127.0.0.1:8445")]
        listen: std::net::SocketAddr,
        /// The witness's name (fixed once its key exists).
        #[arg(long, default_value = "localhost/custodia/witness")]
        name: String,
        /// A log to witness: its verifier key (`custodia log public-key`). Repeatable.
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
    },
    #[command(flatten)]
    Client(ClientCommand),
}

/// The server's and tools' examples, as `custodia_client::examples::CLIENT` has the client's.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "serve",
        "serve --data-dir custodia-data --listen 127.0.0.1:8443 --staff-listen 127.0.0.1:8446 \
         --audit-listen 127.0.0.1:8444",
    ),
    (
        "log keygen",
        "log keygen --name example.org/custodia/audit --out audit-log.key",
    ),
    ("log public-key", "log public-key --data-dir custodia-data"),
    (
        "log verify",
        r#"log verify --url https://127.0.0.1:8444 --key "$(custodia log public-key)" --ca-cert custodia-data/tls/ca.pem --state audit-state"#,
    ),
    (
        "log inclusion",
        r#"log inclusion --url https://127.0.0.1:8444 --key "$(custodia log public-key)" --ca-cert custodia-data/tls/ca.pem --index 12"#,
    ),
    (
        "log report",
        r#"log report --url https://127.0.0.1:8444 --key "$(custodia log public-key)" --ca-cert custodia-data/tls/ca.pem --from 2026-01-01 --to 2026-12-31 --html"#,
    ),
    (
        "log consistency",
        r#"log consistency --url https://127.0.0.1:8444 --key "$(custodia log public-key)" --ca-cert custodia-data/tls/ca.pem --old audit-state"#,
    ),
    (
        "disclosure verify",
        r#"disclosure verify LR.tar --package-key "$(custodia disclosure public-key)" --log-key "$(custodia log public-key)""#,
    ),
    (
        "disclosure public-key",
        "disclosure public-key --data-dir custodia-data",
    ),
    (
        "admin hashlist import",
        "admin hashlist import --data-dir custodia-data --list iwf --kind sha256 iwf-sha256.txt",
    ),
    (
        "admin tls issue",
        "admin tls issue --ca-dir custodia-data-ca --data-dir node-b --name node-b.internal \
         --name 127.0.0.1",
    ),
    ("admin hash", "admin hash photo.jpg --json"),
    (
        "admin reset-admin",
        "admin reset-admin --data-dir custodia-data",
    ),
    (
        "admin backup",
        "admin backup --data-dir custodia-data --recipient \
         age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p backup.tar.age",
    ),
    (
        "admin keys rotate",
        "admin keys rotate --data-dir custodia-data",
    ),
    (
        "admin keys retire",
        "admin keys retire --data-dir custodia-data 1",
    ),
    (
        "admin keys status",
        "admin keys status --data-dir custodia-data",
    ),
    (
        "admin restore",
        "admin restore --identity operator.key --data-dir restored-data backup.tar.age",
    ),
    (
        "witness",
        r#"witness --data-dir witness-data --listen 127.0.0.1:8445 --log "$(custodia log public-key)""#,
    ),
];

/// The command line, with every command's example in its `--help`.
fn command() -> clap::Command {
    examples::with_examples(Cli::command(), &[EXAMPLES, examples::CLIENT].concat())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            listen,
            staff_listen,
            audit_listen,
            print_config,
        } => {
            let flags = RawConfig {
                data_dir,
                listen,
                staff_listen,
                audit_listen,
                ..Default::default()
            };
            if print_config {
                print!("{}", RawConfig::describe(config.as_deref(), flags)?);
                return Ok(());
            }
            custodia_server::run::serve(config, flags).await
        }
        Command::Log(command) => custodia_server::logcmd::run(command).await,
        Command::Disclosure(command) => custodia_server::disclosurecmd::run(command),
        Command::Admin(command) => custodia_server::admin::run(command).await,
        Command::Witness {
            data_dir,
            listen,
            name,
            logs,
        } => custodia_server::run::witness(data_dir, listen, name, &logs).await,
        Command::Client(command) => command.run().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_an_example_that_parses() {
        let problems = examples::problems(&command(), &[EXAMPLES, examples::CLIENT].concat());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
