//! Running the server and a witness in the foreground, as `custodia serve` and `custodia
//! witness` do: logs to standard error, what an operator needs printed once at start, and
//! a clean stop on Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::RawConfig;
use crate::witness::WitnessOptions;

/// `custodia serve`: loads the configuration (`file`, then `CUSTODIA_*`, then `flags`),
/// starts the server and runs it until a signal.
pub async fn serve(file: Option<PathBuf>, flags: RawConfig) -> anyhow::Result<()> {
    let config = RawConfig::load(file.as_deref(), flags)?.validate()?;
    init_logs(config.json_logs);

    let running = crate::start(config).await?;
    println!("custodia is listening on {}", running.url);
    println!("  auditor (transparency log tiles): {}", running.audit_url);
    println!("  audit log key: {}", running.audit.verifier());
    println!("  disclosure package key: {}", running.package_key);
    println!(
        "  CA certificate: {}   (clients: --ca-cert or CUSTODIA_CA_CERT)",
        absolute(&running.ca_cert).display()
    );
    println!(
        "  data directory: {}   (custodia.db, keyring, tls/)",
        absolute(&running.data_dir).display()
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
    println!("  ready; Ctrl-C or SIGTERM stops it");

    // SIGHUP: read the TLS certificate files again (operator-supplied, or new ones from
    // `custodia admin tls issue`), without dropping a connection.
    let running = Arc::new(running);
    let reloads = {
        let running = running.clone();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match running.reload_tls() {
                    Ok(()) => tracing::info!("reloaded the TLS certificate"),
                    Err(e) => {
                        tracing::error!(error = %e, "reloading the TLS certificate failed; the old one stays")
                    }
                }
            }
        })
    };
    until_signal(running.shutdown_token()).await;
    reloads.abort();
    let _ = reloads.await;
    let running = Arc::into_inner(running).context("the server is still in use")?;
    running.shutdown().await.context("shutting down")
}

/// `custodia witness`: starts a witness of `logs` (verifier keys, as `custodia log
/// public-key` prints them) and runs it until a signal.
pub async fn witness(
    data_dir: PathBuf,
    listen: std::net::SocketAddr,
    name: String,
    logs: &[String],
) -> anyhow::Result<()> {
    let logs = logs
        .iter()
        .map(|k| {
            custodia_tlog::NoteVerifier::parse(k).map_err(|e| anyhow::anyhow!("--log {k:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    init_logs(false);
    let running = crate::witness::start_witness(WitnessOptions {
        data_dir,
        listen,
        name,
        logs,
    })
    .await?;
    println!("custodia witness is listening on {}", running.url);
    println!("  witness key: {}", running.key);
    println!("  CA certificate: {}", absolute(&running.ca_cert).display());
    println!("  ready; Ctrl-C or SIGTERM stops it");
    until_signal(running.shutdown_token()).await;
    running.shutdown().await
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    // Colour only on a terminal, and never under NO_COLOR (no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
