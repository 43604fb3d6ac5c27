//! `custodia-client`: the member's and staff's command-line client alone, without the
//! server (no database driver is linked). The same commands as `custodia chat` and
//! `custodia staff`.

use clap::Parser;
use custodia_client::ClientCommand;

#[derive(Parser)]
#[command(
    name = "custodia-client",
    version,
    about = "The custodia command-line client for members and staff"
)]
struct Cli {
    #[command(subcommand)]
    command: ClientCommand,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse().command.run().await
}
