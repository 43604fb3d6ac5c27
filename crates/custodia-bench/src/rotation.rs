//! `custodia-bench rotation`: the rewrap rate of a KEK rotation and the send latency
//! meanwhile, on an in-process server (release build recommended).
//!
//! It makes `conversations` groups with a first message each (one data key each), times
//! closed-loop sends for `seconds` without a rotation, then runs `custodia admin keys
//! rotate` (the same code) and times the same sends until the rotation is complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use custodia_governance::KekStatus;
use custodia_server::RawConfig;
use custodia_server::keyscmd::KeysCommand;
use hdrhistogram::Histogram;

/// `custodia-bench rotation` options.
#[derive(Args, Debug, Clone)]
pub struct RotationBenchArgs {
    /// Conversations made before the rotation (one data key each).
    #[arg(long, default_value_t = 5_000)]
    pub conversations: usize,
    /// The server's `kek_rewrap_per_sec`.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Concurrent senders (each sends, waits for the answer, sends again).
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Seconds of sends timed before the rotation.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

/// Closed-loop sends from `senders` tasks until `stop`; their latencies (µs) and failures.
async fn sends(
    client: &custodia_sdk::Client,
    chat: uuid::Uuid,
    senders: usize,
    tag: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let (client, stop, tag) = (client.clone(), stop.clone(), tag.to_owned());
        tasks.spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut failed = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let t0 = Instant::now();
                match client
                    .send(
                        chat,
                        &format!("{tag}-{s}-{i}"),
                        "a message during the bench",
                    )
                    .await
                {
                    Ok(_) => h.record(t0.elapsed().as_micros() as u64)?,
                    Err(_) => failed += 1,
                }
            }
            anyhow::Ok((h, failed))
        });
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        let (h, f) = r??;
        all.add(&h)?;
        failed += f;
    }
    Ok((all, failed))
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Runs the benchmark and prints the rewrap rate and the send latencies.
pub async fn run(args: RotationBenchArgs) -> anyhow::Result<()> {
    let crate::world::World {
        mut running,
        users,
        chat,
        _dir,
        ..
    } = crate::world::start(
        RawConfig {
            kek_rewrap_per_sec: Some(args.rate),
            sends_per_minute: Some(100_000_000),
            new_account_sends_per_minute: Some(100_000_000),
            first_contact_sends_per_hour: Some(100_000_000),
            ..RawConfig::default()
        },
        &[],
    )
    .await?;
    let data_dir = running.data_dir.clone();
    // Data keys: one per group, made by its first message, a few groups at a time.
    let made = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for part in 0..8 {
        let alice = users[0].clone();
        let n = args.conversations;
        tasks.spawn(async move {
            for i in (part..n).step_by(8) {
                let g = alice.create_group(&format!("g{i}"), &["bench-bob"]).await?;
                alice.send(g.id, "first", "the first message").await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    eprintln!(
        "made {} conversations in {:.1} s",
        args.conversations,
        made.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let baseline = {
        let stop2 = stop.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
            stop2.store(true, Ordering::Relaxed);
        });
        let r = sends(&users[0], chat, args.senders, "base", stop.clone()).await?;
        timer.await?;
        r
    };

    let config = RawConfig {
        data_dir: Some(data_dir.clone()),
        ..RawConfig::default()
    }
    .validate()?;
    let storage =
        custodia_server::open_storage(&config, Arc::new(custodia_store::NoObserver)).await?;
    let status = || async {
        KekStatus::read(&storage)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let items = status().await?.total();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, stop) = (users[0].clone(), stop.clone());
        let senders = args.senders;
        tokio::spawn(async move { sends(&client, chat, senders, "rot", stop).await })
    };
    let started = Instant::now();
    custodia_server::keyscmd::run(KeysCommand::Rotate {
        config: None,
        data_dir: Some(data_dir),
        stage: false,
    })
    .await?;
    // Only the steps (a small table): counting every key here would load the machine.
    loop {
        let steps = storage
            .deks
            .kek_steps()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if steps
            .iter()
            .any(|s| s.kind == custodia_store::KekStepKind::Rewrapped && s.version == 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during, failed) = load.await??;
    println!(
        "rotation: {items} keys and secrets rewrapped in {:.2} s = {:.0}/s (kek_rewrap_per_sec {})",
        took.as_secs_f64(),
        items as f64 / took.as_secs_f64(),
        args.rate
    );
    println!(
        "sends before: {} in {} s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} failed)",
        baseline.0.len(),
        args.seconds,
        ms(&baseline.0, 0.5),
        ms(&baseline.0, 0.99),
        baseline.0.max() as f64 / 1000.0,
        baseline.1
    );
    println!(
        "sends during the rotation: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({failed} failed)",
        during.len(),
        ms(&during, 0.5),
        ms(&during, 0.99),
        during.max() as f64 / 1000.0,
    );
    running.shutdown_token().cancel();
    running.wait().await
}
