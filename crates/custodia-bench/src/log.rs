//! `custodia-bench log`: the audit log's figures on a real data directory.
//!
//! It grows the log of a (stopped) server's data directory to each requested size with
//! bulk appends of realistic entries, and at each size measures the durable append rate
//! through the audit log service (each append answered with its receipt: inclusion proof
//! and signed checkpoint), and the time to produce and to verify inclusion and
//! consistency proofs. Afterwards `custodia serve` on the same directory serves the log,
//! so `custodia log verify` can be timed against it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use custodia_audit::{Actor, AuditEvent, AuditLog, EventKind, LogTree, Subject};
use custodia_core::{ConversationId, Timestamp, UserId};
use custodia_store::{HashRange, LogAppend, LogStore, NoObserver};
use custodia_store_sqlite::SqliteStore;
use hdrhistogram::Histogram;
use rand::Rng;

use custodia_server::datadir::DataDir;

/// `custodia-bench log` options.
#[derive(Args, Debug, Clone)]
pub struct LogBenchArgs {
    /// A data directory for the benchmark alone: new, or one whose log is empty. It
    /// appends made-up entries signed with that directory's log key, so it refuses a
    /// directory whose log has entries (a server's).
    #[arg(long)]
    pub data_dir: std::path::PathBuf,
    /// The log's origin (as the server's `log_origin`); by default the name of the log key
    /// the directory holds, or `localhost/custodia/audit` for a new one.
    #[arg(long)]
    pub origin: Option<String>,
    /// Log sizes to measure at, ascending, e.g. `10000,1000000,10000000`.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub sizes: Vec<u64>,
    /// Concurrent appenders while measuring durable appends.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds of durable appends at each size.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Proofs produced and verified at each size.
    #[arg(long, default_value_t = 1000)]
    pub proofs: u64,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: LogBenchArgs) -> anyhow::Result<()> {
    let dir = DataDir::open(&args.data_dir)?;
    let store = SqliteStore::open(&dir.database(), Arc::new(NoObserver))
        .await
        .context("opening the database")?;
    let pseudonyms = dir.pseudonym_key()?;
    let signer = dir.log_signer_for(args.origin.as_deref(), "localhost/custodia/audit")?;
    let origin = signer.name().to_owned();
    let log = Arc::new(AuditLog::new(store.clone(), signer, origin, pseudonyms));
    let key = dir.pseudonym_key()?;
    let existing = store.log_size().await?;
    if existing > 0 {
        anyhow::bail!(
            "{} holds an audit log with {existing} entries: the benchmark appends made-up \
             entries signed with its log key, so give it a new data directory",
            args.data_dir.display()
        );
    }
    for &target in &args.sizes {
        let have = store.log_size().await?;
        if have < target {
            let started = Instant::now();
            let mut at = have;
            while at < target {
                let n = (target - at).min(10_000);
                let batch = (0..n)
                    .map(|i| {
                        let e = event(at + i);
                        Ok(LogAppend::new(e.entry(&key)?, e.record()?))
                    })
                    .collect::<Result<Vec<_>, custodia_audit::EntryError>>()?;
                log.tree().append(batch).await?;
                at += n;
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "filled {have} -> {target} entries in {secs:.1} s ({:.0} entries/s in batches of 10000)",
                (target - have) as f64 / secs
            );
        }
        proofs(log.tree(), args.proofs).await?;
        durable_appends(&log, args.concurrency, Duration::from_secs(args.duration)).await?;
    }
    // Leave a checkpoint covering everything, for `custodia serve` and `log verify`.
    log.checkpoint().await?;
    Ok(())
}

/// A staff read of a realistic shape, numbered `i`.
fn event(i: u64) -> AuditEvent {
    AuditEvent {
        kind: EventKind::AccessRead,
        time: Timestamp::from_millis(1_764_000_000_000 + i64::try_from(i).unwrap_or(0)),
        actor: Some(Actor {
            staff_id: format!("staff-{}", i % 97),
            role: "senior_moderator".into(),
        }),
        reason: Some("report_review".into()),
        case: Some(format!("case-{}", i / 10)),
        subjects: vec![
            Subject::User(UserId::new()),
            Subject::Conversation(ConversationId::new()),
        ],
        scope: vec![
            ("tier".into(), "content".into()),
            ("messages".into(), format!("{}-{}", i % 1000, i % 1000 + 10)),
        ],
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!("static bounds"))
}

fn us(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

async fn durable_appends(
    log: &Arc<AuditLog>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut h = histogram();
                let mut k = 0u64;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    log.append(&event(t as u64 * 1_000_000 + k)).await?;
                    h.record(t0.elapsed().as_micros() as u64).ok();
                    k += 1;
                }
                anyhow::Ok(h)
            })
        })
        .collect();
    let mut all = histogram();
    for t in tasks {
        all.add(t.await??).ok();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  durable appends with receipts ({concurrency} concurrent): {:.0}/s, latency p50 {} us, p99 {} us",
        all.len() as f64 / secs,
        us(&all, 0.5),
        us(&all, 0.99)
    );
    Ok(())
}

async fn proofs(tree: &LogTree, n: u64) -> anyhow::Result<()> {
    let size = tree.store().log_size().await?;
    let root = tree.root(size).await?;
    let (mut make_inc, mut check_inc, mut make_con, mut check_con) =
        (histogram(), histogram(), histogram(), histogram());
    let mut rng = rand::thread_rng();
    let mut proof_len = (0, 0);
    for _ in 0..n {
        let index = rng.gen_range(0..size);
        let leaf = tree
            .store()
            .log_hashes(vec![HashRange {
                level: 0,
                start: index,
                count: 1,
            }])
            .await?[0][0];
        let t0 = Instant::now();
        let proof = tree.inclusion_proof(index, size).await?;
        make_inc.record(t0.elapsed().as_micros() as u64).ok();
        let t0 = Instant::now();
        custodia_tlog::verify_inclusion(index, size, &leaf, &proof, &root)
            .map_err(|e| anyhow::anyhow!("inclusion proof failed: {e}"))?;
        check_inc.record(t0.elapsed().as_nanos() as u64).ok();

        let old = rng.gen_range(1..=size);
        let old_root = tree.root(old).await?;
        let t0 = Instant::now();
        let cproof = tree.consistency_proof(old, size).await?;
        make_con.record(t0.elapsed().as_micros() as u64).ok();
        let t0 = Instant::now();
        custodia_tlog::verify_consistency(old, size, &old_root, &root, &cproof)
            .map_err(|e| anyhow::anyhow!("consistency proof failed: {e}"))?;
        check_con.record(t0.elapsed().as_nanos() as u64).ok();
        proof_len = (proof.len(), cproof.len());
    }
    println!(
        "  at {size} entries: inclusion proof ({} hashes) made p50 {} us p99 {} us, verified p50 {} ns; \
         consistency proof (~{} hashes) made p50 {} us p99 {} us, verified p50 {} ns",
        proof_len.0,
        us(&make_inc, 0.5),
        us(&make_inc, 0.99),
        us(&check_inc, 0.5),
        proof_len.1,
        us(&make_con, 0.5),
        us(&make_con, 0.99),
        us(&check_con, 0.5),
    );
    Ok(())
}
