//! `custodia-bench safety`: the child-safety figures — PDQ per 1-megapixel JPEG,
//! one match against a large PDQ list, and upload throughput with hashing and sealing.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use custodia_pdq::{PdqHash, PdqIndex};
use custodia_sdk::Client;

use custodia_server::RawConfig;

/// `custodia-bench safety` options.
#[derive(Args, Debug, Clone)]
pub struct SafetyBenchArgs {
    /// Hashes in the PDQ list to match against.
    #[arg(long, default_value_t = 1_000_000)]
    pub hashes: u64,
    /// Megabytes to upload for the throughput figure (in 5 MB files).
    #[arg(long, default_value_t = 100)]
    pub upload_mb: u64,
}

/// A deterministic 1000 × 1000 JPEG with gradients and texture.
fn test_jpeg() -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(1000, 1000, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 64;
        image::Rgb([(x / 4) as u8, (y / 4) as u8, ((x + y) / 8 + n) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

fn random_hash(x: &mut u64) -> PdqHash {
    let mut bytes = [0u8; 32];
    for b in &mut bytes {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *b = *x as u8;
    }
    PdqHash::from_bytes(bytes)
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: SafetyBenchArgs) -> anyhow::Result<()> {
    // PDQ of a 1-megapixel JPEG: decode + hash, as an upload does.
    let jpeg = test_jpeg()?;
    let reps = 20;
    let t0 = Instant::now();
    for _ in 0..reps {
        let img = image::load_from_memory(&jpeg)?.to_rgb8();
        let (w, h) = img.dimensions();
        std::hint::black_box(custodia_pdq::hash_rgb(w as usize, h as usize, img.as_raw()));
    }
    let per = t0.elapsed().as_secs_f64() * 1000.0 / f64::from(reps);
    println!(
        "PDQ of a 1000x1000 JPEG ({} KB), decode + hash: {per:.1} ms",
        jpeg.len() / 1024
    );

    // One match against a large list.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut index = PdqIndex::new();
    let t0 = Instant::now();
    for i in 0..args.hashes {
        index.insert(random_hash(&mut seed), i);
    }
    println!(
        "indexed {} PDQ hashes in {:.1} s",
        args.hashes,
        t0.elapsed().as_secs_f64()
    );
    let queries = 2000;
    let t0 = Instant::now();
    let mut found = 0;
    for _ in 0..queries {
        found += usize::from(index.nearest(&random_hash(&mut seed), 31).is_some());
    }
    let per = t0.elapsed().as_secs_f64() * 1e6 / f64::from(queries);
    println!(
        "match against {} hashes (distance <= 31): {per:.1} us per query ({found} matches among random queries)",
        args.hashes
    );

    // Upload throughput over HTTPS on an in-process server: stream, sniff, SHA-256, MD5,
    // seal, store durably.
    let dir = tempfile::tempdir()?;
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        audit_listen: Some("127.0.0.1:0".into()),
        staff_listen: Some("127.0.0.1:0".into()),
        sends_per_minute: Some(1_000_000),
        new_account_sends_per_minute: Some(1_000_000),
        ..RawConfig::default()
    }
    .validate()?;
    let mut running = custodia_server::start(config).await?;
    let ca = std::fs::read(&running.ca_cert)?;
    let mut a = Client::new(&running.url, &ca)?;
    let mut b = Client::new(&running.url, &ca)?;
    for (c, name) in [(&mut a, "bench-up-a"), (&mut b, "bench-up-b")] {
        c.register(name, "bench password 12345", "1990-01-01")
            .await?;
        c.login(name, "bench password 12345", "bench").await?;
    }
    let chat = a.open_direct("bench-up-b").await?.id;
    let file: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let files = args.upload_mb.div_ceil(5);
    let t0 = Instant::now();
    for _ in 0..files {
        a.upload(chat, file.clone()).await.context("upload")?;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "uploads: {} x 5 MB in {secs:.2} s = {:.1} MB/s (sniff, SHA-256, MD5, seal, durable store)",
        files,
        (files * 5) as f64 / secs
    );
    running.shutdown_token().cancel();
    running.wait().await
}
