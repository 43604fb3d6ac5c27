//! `custodia-bench staff`: the latency of an audited staff read, measured end to end.
//!
//! It starts a server in-process on a fresh data directory (release build recommended),
//! makes two members exchange `messages` messages, has one report them, and sets up a
//! moderator's approved content grant over all of them. Then it times `reads` reads of
//! that grant over HTTPS: each is the grant check, a durable audit log append (commit +
//! checkpoint + inclusion proof), the DEK unwrap and the decryption of every message.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use custodia_sdk::Client;
use custodia_sdk::proto::staff as wire;
use hdrhistogram::Histogram;

use custodia_client::staffing;
use custodia_server::RawConfig;

/// `custodia-bench staff` options.
#[derive(Args, Debug, Clone)]
pub struct StaffBenchArgs {
    /// Messages the grant covers.
    #[arg(long, default_value_t = 50)]
    pub messages: u64,
    /// Reads to time.
    #[arg(long, default_value_t = 500)]
    pub reads: u64,
}

/// Runs the benchmark and prints p50/p99.
pub async fn run(args: StaffBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a temporary data directory")?;
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        audit_listen: Some("127.0.0.1:0".into()),
        staff_listen: Some("127.0.0.1:0".into()),
        // The bench's senior moderator approves as soon as it exists.
        staff_decide_after_hours: Some(0),
        ..RawConfig::default()
    }
    .validate()?;
    let mut running = custodia_server::start(config).await?;
    let ca = std::fs::read(&running.ca_cert)?;
    let password = "bench password 12345";
    let api = Client::new(&running.staff_url, &ca)?;
    let mut founders = Vec::new();
    for f in std::mem::take(&mut running.founders) {
        let creds =
            staffing::enrol(&api, f.staff.username.as_str(), &f.enrolment_code, password).await?;
        founders.push(staffing::sign_in(&api, &creds).await?);
    }
    let [admin, auditor] = founders.as_slice() else {
        anyhow::bail!("a fresh data directory has two founders");
    };
    let mut staff = Vec::new();
    for (name, role) in [
        ("bench-mod", "moderator"),
        ("bench-sen", "senior_moderator"),
    ] {
        let creds = staffing::add_staff(admin, auditor, name, role, password).await?;
        staff.push(staffing::sign_in(&api, &creds).await?);
    }
    let mut users = Vec::new();
    for name in ["bench-alice", "bench-bob"] {
        let mut c = Client::new(&running.url, &ca)?;
        c.register(name, password, "1990-01-01").await?;
        c.login(name, password, "bench").await?;
        users.push(c);
    }
    let chat = users[0].open_direct("bench-bob").await?.id;
    for i in 1..=args.messages {
        users[0]
            .send(
                chat,
                &format!("b{i}"),
                &format!("benchmark message {i} of a staff read"),
            )
            .await?;
    }
    let seqs: Vec<u64> = (1..=args.messages.min(50)).collect();
    let case = users[1].report(chat, &seqs, "other", None).await?.case_id;
    let req = staff[0]
        .request_access(&wire::CreateAccessRequest {
            case_id: case,
            reason: "report_review".into(),
            from_seq: 1,
            to_seq: args.messages.min(50),
            tier: "content".into(),
            duration_secs: 24 * 3600,
            justification: "benchmark".into(),
        })
        .await?;
    staff[1].decide(req.id, true, "benchmark").await?;

    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for _ in 0..args.reads {
        let t0 = Instant::now();
        let read = staff[0].read_grant(req.id).await?;
        h.record(t0.elapsed().as_micros() as u64)?;
        anyhow::ensure!(read.messages.len() as u64 == args.messages.min(50));
    }
    println!(
        "audited staff read of {} messages ({} reads over HTTPS): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.messages.min(50),
        args.reads,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    running.shutdown_token().cancel();
    running.wait().await
}
