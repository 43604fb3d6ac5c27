//! The command-line client of members (`chat`) and staff (`staff`), over `custodia-sdk`.
//! It links no database driver and no server code: the `custodia-client` binary is what a
//! member or a staff member installs; the `custodia` binary offers the same commands.
//!
//! Layout:
//! - `chat` — the member's client, profiles and the server options all commands share.
//! - `examples` — an example for every command's `--help`, checked to parse.
//! - `staffcmd` — `staff`: the governed-access workflow for staff.
//! - `staffing` — enrolling and adding staff over the staff API (benchmarks and tests).
//! - `term` — untrusted text on a terminal: escaped, one record per line.

pub mod chat;
pub mod examples;
pub mod staffcmd;
pub mod staffing;
pub mod term;

use clap::Subcommand;

/// The client's commands, shared by the `custodia-client` and `custodia` binaries.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// The member's chat client.
    Chat {
        /// The server and profile.
        #[command(flatten)]
        server: chat::ServerArgs,
        /// What to do.
        #[command(subcommand)]
        command: chat::ChatCommand,
    },
    /// Staff: sign in with TOTP, cases, access requests, approvals, audited reads.
    Staff {
        /// The server and profile.
        #[command(flatten)]
        server: chat::ServerArgs,
        /// What to do.
        #[command(subcommand)]
        command: staffcmd::StaffCommand,
    },
}

impl ClientCommand {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            // Pointed at the other listener, every call is a 404: say which one to use.
            Self::Chat { server, command } => chat::run(server, command).await.map_err(|e| {
                if e.to_string().contains("no such staff endpoint") {
                    e.context(
                        "--server (or CUSTODIA_SERVER) names the staff API; chat talks to the client API (`listen`, e.g. https://127.0.0.1:8443)",
                    )
                } else {
                    e
                }
            }),
            Self::Staff { server, command } => {
                staffcmd::run(server, command).await.map_err(|e| {
                    if e.to_string().contains("no such endpoint") {
                        e.context(
                            "--server (or CUSTODIA_SERVER) names the client API; staff talk to the staff API (`staff_listen`, e.g. https://127.0.0.1:8446)",
                        )
                    } else {
                        e
                    }
                })
            }
        }
    }
}
