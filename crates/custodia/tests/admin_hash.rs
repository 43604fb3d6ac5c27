//! `custodia admin hash`: what the server computes of an upload, for operators — the
//! reference PDQ hashes of the test images, and the same SHA-256 as `sha256sum`.

use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../custodia-pdq/tests/data");

fn custodia(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_custodia"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// (file, reference PDQ hex, quality) of every committed test image.
fn references() -> Vec<(String, String, i64)> {
    ["expected.txt", "expected-large.txt"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(format!("{DATA}/{f}"))
                .unwrap()
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (
                        format!("{DATA}/{}", f[0]),
                        f[1].to_owned(),
                        f[2].parse().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn bits(a: &str, b: &str) -> u32 {
    let a = custodia_pdq::PdqHash::from_hex(a).unwrap();
    a.distance(&custodia_pdq::PdqHash::from_hex(b).unwrap())
}

#[test]
fn prints_the_reference_hashes_and_sha256sums_sums() {
    let refs = references();
    assert!(refs.len() >= 10);
    let mut args = vec!["admin", "hash", "--json"];
    args.extend(refs.iter().map(|(f, _, _)| f.as_str()));
    let out = custodia(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let sums = Command::new("sha256sum")
        .args(refs.iter().map(|(f, _, _)| f.as_str()))
        .output()
        .unwrap();
    let sums = String::from_utf8(sums.stdout).unwrap();
    for (((file, pdq, quality), p), sum) in refs.iter().zip(&printed).zip(sums.lines()) {
        assert_eq!(p["file"], file.as_str());
        assert_eq!(
            p["sha256"].as_str().unwrap(),
            sum.split_whitespace().next().unwrap(),
            "{file}"
        );
        let got = p["pdq"].as_str().unwrap();
        // Large images: within 2 bits (they hash at full resolution, as lists are made);
        // the small ones within Meta's stated 10.
        let allowed = if file.contains("large-") { 2 } else { 10 };
        assert!(bits(got, pdq) <= allowed, "{file}: {}", bits(got, pdq));
        assert!((p["pdq_quality"].as_i64().unwrap() - quality).abs() <= 2);
        assert_eq!(p["md5"].as_str().unwrap().len(), 32);
    }

    // Text output, a file that is not an image, one that does not decode, one missing.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    let png = std::fs::read(&refs[0].0).unwrap();
    std::fs::write(&broken, &png[..png.len() / 2]).unwrap();
    let text = dir.path().join("note.txt");
    std::fs::write(&text, "hello").unwrap();
    let out = custodia(&[
        "admin",
        "hash",
        &refs[0].0,
        broken.to_str().unwrap(),
        text.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "  pdq      {}",
            printed[0]["pdq"].as_str().unwrap()
        )),
        "text and JSON agree: {stdout}"
    );
    assert!(
        stdout.contains("the server refuses this upload"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not an image the server hashes"),
        "{stdout}"
    );
    let missing = custodia(&["admin", "hash", "/nonexistent/x.jpg"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent/x.jpg"));
}
