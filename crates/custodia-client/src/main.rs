//! `custodia-client`: the member's and staff's command-line client alone, without the
//! server (no database driver is linked). The same commands as `custodia chat` and
//! `custodia staff`.

use clap::{CommandFactory, FromArgMatches, Parser};
use custodia_client::ClientCommand;
use custodia_client::examples;

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
    let cmd = examples::with_examples(Cli::command(), examples::CLIENT);
    let cli = Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit());
    cli.command.run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_an_example_that_parses() {
        let problems = examples::problems(&Cli::command(), examples::CLIENT);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
