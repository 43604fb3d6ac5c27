//! `custodia`: the server, the operator's and auditor's tools, and the command-line client.
//! Only parses arguments: the server is `custodia-server`, the client `custodia-client`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use custodia_client::ClientCommand;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
