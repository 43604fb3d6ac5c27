//! `custodia-bench`: the load generator and the benchmarks. Release builds for figures:
//! `cargo run --release -p custodia-bench -- <command> …`.

use clap::{Parser, Subcommand};
use custodia_bench::{disclosure, kek, load, log, rotation, safety, staff};
use custodia_client::chat::{ServerArgs, client_for};

#[derive(Parser)]
#[command(
    name = "custodia-bench",
    version,
    about = "Load generator and benchmarks for custodia"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load generator: registers users, sends over WebSockets, reports rates and latency.
    Load {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        args: load::BenchArgs,
    },
    /// The audit log on a data directory of its own: appends, proofs.
    Log(log::LogBenchArgs),
    /// PDQ, PDQ matching and upload throughput.
    Safety(safety::SafetyBenchArgs),
    /// An audited staff read on an in-process server.
    Staff(staff::StaffBenchArgs),
    /// Building and verifying a disclosure package on an in-process server.
    Disclosure(disclosure::DisclosureBenchArgs),
    /// Sealing and opening data keys under the keyring's KEK and a PKCS#11 token's.
    Kek(kek::KekBenchArgs),
    /// A KEK rotation on an in-process server: the rewrap rate, sends meanwhile.
    Rotation(rotation::RotationBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The in-process servers' logs, at RUST_LOG's level (none unless it is set).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().command {
        Command::Load { server, args } => load::run(client_for(&server)?, args).await,
        Command::Log(args) => log::run(args).await,
        Command::Safety(args) => safety::run(args).await,
        Command::Staff(args) => staff::run(args).await,
        Command::Disclosure(args) => disclosure::run(args).await,
        Command::Kek(args) => kek::run(args).await,
        Command::Rotation(args) => rotation::run(args).await,
    }
}
