//! `custodia-bench kek`: what the KEK's home costs — sealing and opening a data key
//! (32 bytes, with its 60-odd bytes of associated data) under the keyring file's KEK and
//! under a PKCS#11 token's (SoftHSM2, on a token of its own). This is the KEK's part of a
//! DEK cache miss; a cache hit never reaches the KEK, so it costs the same either way.

use std::time::Instant;

use clap::Args;
use custodia_keys::{KekProvider, Keyring, Pkcs11Kek};

/// `custodia-bench kek` options.
#[derive(Args, Debug, Clone)]
pub struct KekBenchArgs {
    /// Seal-and-open pairs per provider.
    #[arg(long, default_value_t = 20_000)]
    pub ops: u32,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: KekBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (keyring, _) = Keyring::load_or_create(&dir.path().join("keyring"), None)?;
    report("keyring file", &keyring, args.ops)?;
    drop(keyring);

    let token = custodia_test::SoftToken::new("custodia-bench-kek");
    let (hsm, _) = Pkcs11Kek::open(&token.pkcs11_config())?;
    report("PKCS#11 (SoftHSM2)", &hsm, args.ops)?;
    Ok(())
}

fn report(name: &str, kek: &dyn KekProvider, ops: u32) -> anyhow::Result<()> {
    let dek = [7u8; 32];
    let aad = [1u8; 64];
    let v = kek.current();
    let sealed: Vec<Vec<u8>> = {
        let start = Instant::now();
        let all = (0..ops)
            .map(|_| kek.seal(v, &dek, &aad))
            .collect::<Result<Vec<_>, _>>()?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: seal {:.0}/s ({:.1} µs each)",
            f64::from(ops) / secs,
            secs * 1e6 / f64::from(ops)
        );
        all
    };
    let start = Instant::now();
    for s in &sealed {
        let opened = kek.open(v, s, &aad)?;
        anyhow::ensure!(opened[..] == dek, "{name}: a data key did not open");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name}: open (the KEK's part of a DEK cache miss) {:.0}/s ({:.1} µs each)",
        f64::from(ops) / secs,
        secs * 1e6 / f64::from(ops)
    );
    Ok(())
}
