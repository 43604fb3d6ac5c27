//! `custodia-bench load`: a load generator on the SDK's protocol.
//!
//! It registers `users` accounts, pairs them into direct conversations (and optionally
//! groups), connects one WebSocket per user, and sends for `duration` seconds — open loop
//! at a fixed total `rate`, or closed loop with `window` sends in flight per user. Every
//! body starts with `conversation:sender:k:nanos|`, so receivers check per-sender order
//! (lost, duplicated) and measure send→delivery latency; acks give send→ack latency.
//! With `idle`, it also holds that many extra idle connections and, given `server_pid`,
//! reports the server's resident memory per connection. With `also_servers`, users are
//! spread over several nodes of one deployment (PostgreSQL + NATS).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use custodia_sdk::Client;
use custodia_sdk::proto::ServerFrame;
use futures_util::future::join_all;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// `custodia-bench load` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Accounts to create (each gets one connection).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Groups to create in addition to the direct pairs.
    #[arg(long, default_value_t = 0)]
    pub groups: usize,
    /// Members per group.
    #[arg(long, default_value_t = 5)]
    pub group_size: usize,
    /// Total sends per second (open loop); 0 means closed loop.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Sends in flight per user in closed loop.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Body sizes in bytes with weights, e.g. `64:70,512:25,4096:5`.
    #[arg(long, default_value = "64:70,512:25,4096:5")]
    pub sizes: String,
    /// Extra idle connections to hold open (for memory per connection).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Another node of the same deployment (repeat for more): users are spread over the
    /// server and these round-robin, for a scale-out run.
    #[arg(long = "also-server", value_name = "URL")]
    pub also_servers: Vec<String>,
    /// The server's process id, to report its resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

struct Stats {
    ack: Histogram<u64>,
    delivery: Histogram<u64>,
    deliveries: u64,
    duplicates: u64,
    out_of_order: u64,
    errors: u64,
}

impl Stats {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds");
        Self {
            ack: h(),
            delivery: h(),
            deliveries: 0,
            duplicates: 0,
            out_of_order: 0,
            errors: 0,
        }
    }
}

/// Runs the benchmark against `client`'s server and prints a report.
pub async fn run(base: Client, args: BenchArgs) -> anyhow::Result<()> {
    if args.users < 2 {
        bail!("--users must be at least 2");
    }
    let sizes = parse_sizes(&args.sizes)?;
    let run_id = &Uuid::new_v4().simple().to_string()[..8];
    let password = format!("bench-{run_id}-password");
    eprintln!("registering {} users…", args.users);
    let mut clients: Vec<Client> = Vec::with_capacity(args.users);
    for chunk in (0..args.users).collect::<Vec<_>>().chunks(16) {
        let batch = join_all(chunk.iter().map(|i| {
            let (mut c, name, pw) = (base.clone(), format!("b{run_id}-{i}"), password.clone());
            async move {
                c.register(&name, &pw, "1990-01-01").await?;
                c.login(&name, &pw, "bench").await?;
                Ok::<_, anyhow::Error>(c)
            }
        }))
        .await;
        for c in batch {
            clients.push(c?);
        }
    }
    // Spread the users over the deployment's nodes.
    let nodes = 1 + args.also_servers.len();
    for (i, c) in clients.iter_mut().enumerate() {
        if i % nodes != 0 {
            *c = c.at(&args.also_servers[i % nodes - 1])?;
        }
    }
    let names: Vec<String> = (0..args.users).map(|i| format!("b{run_id}-{i}")).collect();

    // Conversations: consecutive pairs, then groups of random members.
    let mut convs: Vec<(Uuid, Vec<usize>)> = Vec::new();
    for i in (0..args.users - 1).step_by(2) {
        convs.push((
            clients[i].open_direct(&names[i + 1]).await?.id,
            vec![i, i + 1],
        ));
    }
    let mut rng = rand::thread_rng();
    for _ in 0..args.groups {
        let mut members: Vec<usize> = (0..args.group_size.min(args.users))
            .map(|_| rng.gen_range(0..args.users))
            .collect();
        members.sort_unstable();
        members.dedup();
        let owner = members[0];
        let others: Vec<&str> = members[1..].iter().map(|m| names[*m].as_str()).collect();
        convs.push((
            clients[owner].create_group("bench", &others).await?.id,
            members,
        ));
    }
    let conv_index: HashMap<Uuid, usize> = convs
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut mine: Vec<Vec<usize>> = vec![Vec::new(); args.users];
    for (ci, (_, members)) in convs.iter().enumerate() {
        for m in members {
            mine[*m].push(ci);
        }
    }

    let idle = open_idle(&clients, args.idle, args.server_pid).await?;
    // Every user is connected and synced before anyone sends, so no message is caught up
    // (and skipped) during set-up.
    let mut conns = Vec::with_capacity(clients.len());
    for client in &clients {
        let mut conn = client.connect().await?.without_dedupe();
        conn.sync(HashMap::new()).await?;
        while let Some(f) = conn.next().await {
            if matches!(f?, ServerFrame::Synced { .. }) {
                break;
            }
        }
        conns.push(conn);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(args.duration);
    let per_user_rate = (args.rate > 0).then(|| args.rate as f64 / args.users as f64);
    eprintln!(
        "{} conversations; sending for {} s…",
        convs.len(),
        args.duration
    );

    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (u, conn) in conns.into_iter().enumerate() {
        let (mut tx, mut rx) = conn.split();
        let window = Arc::new(Semaphore::new(args.window.max(1)));
        let pending: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
        // Receiver: acks and deliveries.
        let (pending_r, window_r, acked_r, index) = (
            pending.clone(),
            window.clone(),
            acked.clone(),
            conv_index.clone(),
        );
        receivers.push(tokio::spawn(async move {
            let mut s = Stats::new();
            let mut last: HashMap<(usize, usize), u64> = HashMap::new();
            let drain_until = deadline + Duration::from_secs(3);
            while let Ok(Some(frame)) = tokio::time::timeout_at(drain_until.into(), rx.next()).await
            {
                let now = Instant::now();
                let Ok(frame) = frame else { break };
                match frame {
                    ServerFrame::Ack(a) => {
                        let started = pending_r
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&a.client_id);
                        if let Some(t) = started {
                            let _ = s.ack.record(micros(now - t));
                        }
                        acked_r.fetch_add(1, Ordering::Relaxed);
                        window_r.add_permits(1);
                    }
                    ServerFrame::Message(m) => {
                        let Some(header) = m.body.as_deref().and_then(|b| b.split('|').next())
                        else {
                            continue;
                        };
                        let f: Vec<u64> =
                            header.split(':').filter_map(|x| x.parse().ok()).collect();
                        let [conv, sender, k, nanos] = f[..] else {
                            continue;
                        };
                        if sender as usize == u
                            || index.get(&m.conversation_id) != Some(&(conv as usize))
                        {
                            continue;
                        }
                        let sent_at = epoch + Duration::from_nanos(nanos);
                        let _ = s
                            .delivery
                            .record(micros(now.saturating_duration_since(sent_at)));
                        let prev = last.entry((conv as usize, sender as usize)).or_insert(0);
                        if k <= *prev {
                            s.duplicates += 1;
                        } else {
                            if k != *prev + 1 {
                                s.out_of_order += 1;
                            }
                            *prev = k;
                            s.deliveries += 1;
                        }
                    }
                    ServerFrame::Error { .. } => {
                        s.errors += 1;
                        window_r.add_permits(1);
                    }
                    _ => {}
                }
            }
            s
        }));
        // Sender.
        let (convs_of_me, ids, sizes, sent_s) =
            (mine[u].clone(), convs.clone(), sizes.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            if convs_of_me.is_empty() {
                return;
            }
            let mut counters: HashMap<usize, u64> = HashMap::new();
            let mut rng = rand::rngs::StdRng::from_entropy();
            let mut tick = per_user_rate.map(|r| {
                // Each user starts at a random point of its period, so the offered load
                // is smooth rather than every user sending in the same instant.
                let period = Duration::from_secs_f64(1.0 / r);
                let offset = period.mul_f64(rng.r#gen::<f64>());
                let mut i = tokio::time::interval_at((Instant::now() + offset).into(), period);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                i
            });
            while Instant::now() < deadline {
                match tick.as_mut() {
                    Some(t) => drop(t.tick().await),
                    None => {
                        match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                            Ok(Ok(p)) => p.forget(),
                            _ => break,
                        }
                    }
                }
                let ci = convs_of_me[rng.gen_range(0..convs_of_me.len())];
                let k = counters.entry(ci).or_insert(0);
                *k += 1;
                let now = Instant::now();
                let mut body = format!("{ci}:{u}:{k}:{}|", (now - epoch).as_nanos());
                let size = pick(&sizes, &mut rng);
                while body.len() < size {
                    body.push('x');
                }
                let client_id = format!("{u}-{ci}-{k}");
                pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client_id.clone(), now);
                if tx.send(ids[ci].0, &client_id, &body).await.is_err() {
                    break;
                }
                sent_s.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    join_all(senders).await;
    let mut s = Stats::new();
    for r in join_all(receivers).await {
        let r = r.context("a receiver task failed")?;
        s.ack.add(&r.ack).context("merging histograms")?;
        s.delivery.add(&r.delivery).context("merging histograms")?;
        s.deliveries += r.deliveries;
        s.duplicates += r.duplicates;
        s.out_of_order += r.out_of_order;
        s.errors += r.errors;
    }
    let elapsed = args.duration as f64;
    drop(idle);

    let (sent, acked) = (sent.load(Ordering::Relaxed), acked.load(Ordering::Relaxed));
    let expected = expected_deliveries(&convs, acked);
    println!(
        "workload: {} users, {} conversations, {} s, {}",
        args.users,
        convs.len(),
        args.duration,
        if args.rate > 0 {
            format!("open loop {} sends/s", args.rate)
        } else {
            format!("closed loop, window {}", args.window)
        }
    );
    println!(
        "sends:      {sent} sent, {acked} acked ({:.0} acked/s), {} errors",
        acked as f64 / elapsed,
        s.errors
    );
    println!(
        "deliveries: {} ({:.0}/s)",
        s.deliveries,
        s.deliveries as f64 / elapsed
    );
    println!(
        "lost:       {}   duplicated: {}   out of order: {}",
        expected.saturating_sub(s.deliveries),
        s.duplicates,
        s.out_of_order
    );
    for (name, h) in [("send→ack", &s.ack), ("send→delivery", &s.delivery)] {
        println!(
            "{name:<14} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.9)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
    Ok(())
}

/// Deliveries to other members that the acked sends should have produced. Exact for
/// direct pairs; for groups it assumes sends spread evenly, which is how they are chosen.
fn expected_deliveries(convs: &[(Uuid, Vec<usize>)], acked: u64) -> u64 {
    let fanouts: Vec<u64> = convs.iter().map(|(_, m)| m.len() as u64 - 1).collect();
    let avg = fanouts.iter().sum::<u64>() as f64 / fanouts.len().max(1) as f64;
    (acked as f64 * avg).round() as u64
}

async fn open_idle(
    clients: &[Client],
    n: usize,
    pid: Option<u32>,
) -> anyhow::Result<Vec<custodia_sdk::Connection>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let before = pid.map(rss_kib).transpose()?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = clients[i % clients.len()]
            .connect()
            .await
            .with_context(|| format!("idle connection {i}"))?;
        c.sync(HashMap::from([(Uuid::nil(), 0)])).await?;
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(pid), Some(before)) = (pid, before) {
        let after = rss_kib(pid)?;
        println!(
            "idle:       {n} connections; server RSS {before} KiB → {after} KiB = {:.1} KiB per connection",
            (after.saturating_sub(before)) as f64 / n as f64
        );
    }
    Ok(conns)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the server's /proc status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

fn parse_sizes(spec: &str) -> anyhow::Result<Vec<(usize, u32)>> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (size, weight) = part.split_once(':').unwrap_or((part, "1"));
        let size: usize = size
            .trim()
            .parse()
            .with_context(|| format!("--sizes: bad size {size:?}"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .with_context(|| format!("--sizes: bad weight {weight:?}"))?;
        if !(32..=16 * 1024).contains(&size) {
            bail!(
                "--sizes: each size must be 32..=16384 bytes (the header needs room), got {size}"
            );
        }
        out.push((size, weight));
    }
    if out.iter().all(|(_, w)| *w == 0) {
        bail!("--sizes: at least one weight must be positive");
    }
    Ok(out)
}

fn pick(sizes: &[(usize, u32)], rng: &mut impl Rng) -> usize {
    let total: u32 = sizes.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (size, w) in sizes {
        if x < *w {
            return *size;
        }
        x -= w;
    }
    sizes[0].0
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}
