//! `custodia`: the server, its command-line client, and tools.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use custodia::chat::{self, ChatCommand, ServerArgs};
use custodia::{RawConfig, start};
use tracing_subscriber::EnvFilter;

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
    },
    /// Load generator: registers users, sends over WebSockets, reports rates and latency.
    Bench {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        args: custodia::bench::BenchArgs,
    },
    /// Transparency log tools: keys and the auditor's verifier.
    #[command(subcommand)]
    Log(custodia::logcmd::LogCommand),
    /// Operator tools on a data directory (hash list import).
    #[command(subcommand)]
    Admin(custodia::admin::AdminCommand),
    /// Staff: sign in with TOTP, cases, access requests, approvals, audited reads.
    Staff {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: custodia::staffcmd::StaffCommand,
    },
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
    /// The command-line chat client.
    Chat {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ChatCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            listen,
        } => {
            serve(
                config,
                RawConfig {
                    data_dir,
                    listen,
                    ..Default::default()
                },
            )
            .await
        }
        Command::Chat { server, command } => chat::run(server, command).await,
        Command::Staff { server, command } => custodia::staffcmd::run(server, command).await,
        Command::Log(command) => custodia::logcmd::run(command).await,
        Command::Admin(command) => custodia::admin::run(command).await,
        Command::Witness {
            data_dir,
            listen,
            name,
            logs,
        } => {
            let logs = logs
                .iter()
                .map(|k| {
                    custodia_tlog::NoteVerifier::parse(k)
                        .map_err(|e| anyhow::anyhow!("--log {k:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            witness(custodia::witness::WitnessOptions {
                data_dir,
                listen,
                name,
                logs,
            })
            .await
        }
        Command::Bench { server, args } => {
            custodia::bench::run(chat::client_for(&server)?, args).await
        }
    }
}

async fn witness(opts: custodia::witness::WitnessOptions) -> anyhow::Result<()> {
    init_logs(false);
    let running = custodia::witness::start_witness(opts).await?;
    println!("custodia witness is listening on {}", running.url);
    println!("  witness key: {}", running.key);
    println!(
        "  CA certificate: {}",
        std::fs::canonicalize(&running.ca_cert)
            .unwrap_or_else(|_| running.ca_cert.clone())
            .display()
    );
    until_signal(running.shutdown_token()).await;
    running.shutdown().await
}

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init()
    } else {
        logs.init()
    }
}

/// Cancels `stop` on Ctrl-C or SIGTERM, then returns once it is cancelled.
async fn until_signal(stop: tokio_util::sync::CancellationToken) {
    let token = stop.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => drop(t.recv().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("shutting down");
        token.cancel();
    });
    stop.cancelled().await;
}

async fn serve(file: Option<PathBuf>, flags: RawConfig) -> anyhow::Result<()> {
    let config = RawConfig::load(file.as_deref(), flags)?.validate()?;
    init_logs(config.json_logs);

    let running = start(config).await?;
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    println!("custodia is listening on {}", running.url);
    println!("  auditor (transparency log tiles): {}", running.audit_url);
    println!("  audit log key: {}", running.audit.verifier());
    println!(
        "  CA certificate: {}   (clients: --ca-cert or CUSTODIA_CA_CERT)",
        abs(&running.ca_cert).display()
    );
    println!(
        "  data directory: {}   (custodia.db, keyring, tls/)",
        abs(&running.data_dir).display()
    );
    println!("  staff API: {}", running.staff_url);
    if !running.founders.is_empty() {
        // Shown once, here, to the operator starting the server; never logged or stored.
        println!("  founding staff (codes shown only now; each works once, for 3 days):");
        for f in &running.founders {
            println!(
                "    {} ({}): enrolment code {}",
                f.staff.username,
                f.staff.role,
                f.enrolment_code.as_str()
            );
        }
        println!("    each enrols with: custodia staff --profile NAME enrol NAME --code CODE");
        println!(
            "    give the auditor's code to a second person: staff changes need a second \
             person's approval (the auditor's, while there is one admin)"
        );
    }
    if running.first_start {
        println!("  first start: created a new keyring, deployment id and certificates");
    }

    until_signal(running.shutdown_token()).await;
    running.shutdown().await.context("shutting down")
}
