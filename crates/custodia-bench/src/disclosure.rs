//! `custodia-bench disclosure`: building, signing and encrypting a disclosure package, and
//! verifying it offline, for a production of `messages` messages.
//!
//! It starts a server in-process on a fresh data directory (release build recommended),
//! has two members exchange `messages` messages, enters a search warrant for one of them,
//! reviews, produces and approves it (grants of at most 500 messages, two approvals
//! each), then times the package build over HTTPS (the audited reads of every grant, the
//! log entries, the receipts, signing and age encryption) and the recipient's decryption
//! and verification.

use std::time::Instant;

use clap::Args;
use custodia_sdk::proto::staff as wire;
use custodia_server::RawConfig;

/// `custodia-bench disclosure` options.
#[derive(Args, Debug, Clone)]
pub struct DisclosureBenchArgs {
    /// Messages the production covers.
    #[arg(long, default_value_t = 10_000)]
    pub messages: u64,
    /// Builds (and verifications) to time.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Keep the first package here, with what `custodia disclosure verify` needs beside it
    /// (`agency.key`, `package-key.txt`, `log-key.txt`), to time the CLI on it.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: DisclosureBenchArgs) -> anyhow::Result<()> {
    let crate::world::World {
        mut running,
        staff,
        users,
        chat,
        _dir,
    } = crate::world::start(
        RawConfig {
            sends_per_minute: Some(1_000_000),
            new_account_sends_per_minute: Some(1_000_000),
            ..RawConfig::default()
        },
        &[
            ("bench-lo1", "legal_officer"),
            ("bench-lo2", "legal_officer"),
            ("bench-sen", "senior_moderator"),
        ],
    )
    .await?;
    let t0 = Instant::now();
    for i in 1..=args.messages {
        users[(i % 2) as usize]
            .send(
                chat,
                &format!("d{i}"),
                &format!("message {i}: a line of an ordinary conversation, as sent"),
            )
            .await?;
    }
    eprintln!(
        "sent {} messages in {:.1} s",
        args.messages,
        t0.elapsed().as_secs_f64()
    );
    let today = custodia_core::Day::of(custodia_core::Timestamp::from_millis(
        time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
    ))
    .to_string();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let identity_file = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let package_key = running.package_key.clone();
    let log_key = running.audit.verifier();
    let mut builds = Vec::new();
    let mut verifies = Vec::new();
    let mut size = 0;
    for run in 0..args.runs {
        let request = staff[0]
            .receive_legal_request(&wire::NewLegalRequest {
                agency: wire::AgencyInfo {
                    name: "Bench Police".into(),
                    country: "GB".into(),
                    subdivision: None,
                },
                officer: wire::OfficerInfo {
                    name: "Bench Officer".into(),
                    badge: format!("B-{run}"),
                    email: "bench@police.example".into(),
                },
                process: "search_warrant".into(),
                court: None,
                targets: vec!["bench-alice".into()],
                categories: vec!["content".into(), "subscriber".into()],
                from: today.clone(),
                to: today.clone(),
                nondisclosure: None,
                emergency_basis: None,
                documents: Vec::new(),
                follows_up: None,
            })
            .await?;
        staff[0]
            .review_legal_request(
                request.id,
                &wire::ReviewLegalRequest {
                    outcome: "full".into(),
                    reason: None,
                    narrowing: None,
                    accepted: Vec::new(),
                },
            )
            .await?;
        for grant in staff[0].produce(request.id).await? {
            staff[1].decide(grant.id, true, "bench").await?;
            staff[2].decide(grant.id, true, "bench").await?;
        }
        let t = Instant::now();
        let package = staff[0].build_package(request.id, &recipient).await?;
        builds.push(t.elapsed().as_secs_f64());
        size = package.len();
        let t = Instant::now();
        let archive = custodia_disclosure::decrypt(&identity_file, &package)?;
        let verified = custodia_disclosure::verify(
            &archive,
            &custodia_disclosure::Keys {
                package: &package_key,
                log: &log_key,
                witnesses: &[],
                quorum: 0,
            },
        )
        .map_err(|p| anyhow::anyhow!("{p}"))?;
        verifies.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(verified.messages as u64 == args.messages);
        if let Some(out) = args.out.as_ref().filter(|_| run == 0) {
            std::fs::create_dir_all(out)?;
            std::fs::write(out.join("package.tar.age"), &package)?;
            std::fs::write(out.join("agency.key"), format!("{identity_file}\n"))?;
            std::fs::write(out.join("package-key.txt"), format!("{package_key}\n"))?;
            std::fs::write(out.join("log-key.txt"), format!("{log_key}\n"))?;
        }
        if run == 0 {
            eprintln!(
                "package of {} messages: {} bytes encrypted, {} bytes as a tar",
                verified.messages,
                package.len(),
                archive.len()
            );
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "disclosure package of {} messages: build+sign+encrypt median {:.2} s (of {} runs), {:.1} MB, decrypt+verify median {:.2} s",
        args.messages,
        median(&mut builds),
        args.runs,
        size as f64 / 1e6,
        median(&mut verifies)
    );
    running.shutdown_token().cancel();
    running.wait().await
}
