//! `custodia-bench log` works on a data directory of its own and never on a server's.

use std::process::Command;

use custodia_test::TestServer;

#[tokio::test]
async fn the_log_bench_refuses_a_data_directory_whose_log_has_entries() {
    let bench = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_custodia-bench"))
            .args(["log", "--sizes", "10", "--duration", "1", "--proofs", "1"])
            .arg("--data-dir")
            .arg(dir)
            .output()
            .unwrap()
    };
    let mut server = TestServer::start().await;
    server.stop().await;
    let out = bench(server.data_dir());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("holds an audit log with 1 entries"), "{err}");
    // A new directory is fine.
    let fresh = tempfile::tempdir().unwrap();
    let out = bench(&fresh.path().join("bench"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
