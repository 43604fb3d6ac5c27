//! `custodia-bench staff`: the latency of an audited staff read, measured end to end.
//!
//! It starts a server in-process on a fresh data directory (release build recommended),
//! makes two members exchange `messages` messages, has one report them, and sets up a
//! moderator's approved content grant over all of them. Then it times `reads` reads of
//! that grant over HTTPS: each is the grant check, a durable audit log append (commit +
//! checkpoint + inclusion proof), the DEK unwrap and the decryption of every message.

use std::time::Instant;

use clap::Args;
use custodia_sdk::proto::staff as wire;
use hdrhistogram::Histogram;

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
    let crate::world::World {
        mut running,
        staff,
        users,
        chat,
        _dir,
    } = crate::world::start(
        RawConfig::default(),
        &[
            ("bench-mod", "moderator"),
            ("bench-sen", "senior_moderator"),
        ],
    )
    .await?;
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
