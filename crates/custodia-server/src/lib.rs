//! The custodia server as a library: configuration, the data directory, assembling and
//! running a server over the storage its configuration names, and the operator's and
//! auditor's tools. The `custodia` binary parses arguments and calls in here; the
//! benchmarks (`custodia-bench`) and the end-to-end tests (`custodia-test`) start servers
//! through the same [`start`].
//!
//! Layout:
//! - `config` — `RawConfig` (defaults, TOML, `CUSTODIA_*` env, flags) → validated [`Config`].
//! - `datadir` — first-start creation of the data directory: keyring, deployment id.
//! - `certs` — TLS certificates: operator-supplied (reloaded on SIGHUP) or issued by a
//!   local CA kept apart from the data directory, renewed before they expire.
//! - `server` — assembling and running a server ([`start`]), and [`open_storage`], the one
//!   way `serve`, `admin` and the benchmarks open the configured store.
//! - `run` — `custodia serve` and `custodia witness` in the foreground, until a signal.
//! - `admin` — `custodia admin`: operator tools (hash lists, TLS, backup, recovery).
//! - `keyscmd` — `custodia admin keys`: KEK rotation, retirement, progress.
//! - `logcmd` — `custodia log`: keys, the auditor's verifier and proofs.
//! - `witness` — `custodia witness`, and the client a log uses to reach witnesses.

pub mod admin;
pub mod backup;
pub mod certs;
pub mod config;
pub mod datadir;
pub mod disclosurecmd;
pub mod keyscmd;
pub mod logcmd;
pub mod run;
mod server;
pub mod witness;

pub use config::{Config, RawConfig};
pub use server::{Running, offline_governance, open_storage, start, start_with_clock};

/// The real clock: the system's time. The one place a server reads it; every crate below
/// asks the [`custodia_core::Clock`] it was given.
#[derive(Clone, Copy, Default, Debug)]
pub struct SystemClock;

impl custodia_core::Clock for SystemClock {
    fn now(&self) -> custodia_core::Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        custodia_core::Timestamp::from_millis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}
