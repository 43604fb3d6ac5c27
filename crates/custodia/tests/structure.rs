//! Guarantees that hold by the shape of the workspace, checked from its manifests.

use std::path::Path;

/// No build of the server may weaken security: no crate declares a cargo feature (which
/// `--all-features` would switch on silently) that stores bodies unsealed or otherwise
/// opts into danger. Danger is opted into at run time, loudly, or not at all.
#[test]
fn no_cargo_feature_weakens_security() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        checked += 1;
        let features = parsed
            .get("features")
            .and_then(|f| f.as_table())
            .map(|f| f.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for name in features {
            assert!(
                !name.contains("dangerous") && !name.contains("unsealed"),
                "{} declares the feature {name:?}",
                manifest.display()
            );
        }
    }
    assert!(
        checked >= 15,
        "only {checked} manifests found under {}",
        crates.display()
    );
}
