//! The `custodia` binary's library half: configuration, the data directory, and the
//! commands (`serve`, `chat`, `bench`). `main.rs` only parses arguments and dispatches.
//!
//! Layout:
//! - `config` — `RawConfig` (defaults, TOML, `CUSTODIA_*` env, flags) → validated [`Config`].
//! - `datadir` — first-start creation of the data directory: keyring, deployment id, TLS.
//! - `server` — assembling and running a server ([`start`]).
//! - `admin` — `custodia admin`: operator tools (hash list import).
//! - `chat` — the command-line client.
//! - `staffcmd` — `custodia staff`: the governed-access workflow for staff.
//! - `safetybench` — `custodia admin bench-safety`: PDQ, matching, upload figures.
//! - `staffbench` — `custodia staff bench`: the latency of an audited staff read.
//! - `term` — untrusted text on a terminal: escaped, one record per line.
//! - `staffing` — enrolling and adding staff over the staff API (bench and tests).
//! - `bench` — the load generator.
//! - `logcmd` — `custodia log`: keys, the auditor's verifier and proofs.
//! - `logbench` — `custodia log bench`: the audit log's figures on a data directory.
//! - `witness` — `custodia witness`, and the client a log uses to reach witnesses.

pub mod admin;
pub mod bench;
pub mod chat;
pub mod config;
mod datadir;
pub mod logbench;
pub mod logcmd;
pub mod safetybench;
mod server;
pub mod staffbench;
pub mod staffcmd;
pub mod staffing;
pub mod term;
pub mod witness;

pub use config::{Config, RawConfig};
pub use server::{Running, open_storage, start, start_with_clock};
