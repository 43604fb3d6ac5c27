//! Guarantees that hold by the shape of the workspace, checked from its manifests and
//! sources.

use std::path::{Path, PathBuf};

/// The folder holding every crate of the workspace.
fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The parsed manifest of workspace crate `krate`, `None` if it is not one.
fn manifest(krate: &str) -> Option<toml::Table> {
    let text = std::fs::read_to_string(crates().join(krate).join("Cargo.toml")).ok()?;
    Some(toml::from_str(&text).unwrap())
}

/// The keys of a manifest's table `section` (e.g. `dependencies`, `features`).
fn keys(manifest: &toml::Table, section: &str) -> Vec<String> {
    manifest
        .get(section)
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every workspace crate with its manifest.
fn workspace() -> Vec<(String, toml::Table)> {
    let all: Vec<_> = std::fs::read_dir(crates())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            manifest(&name).map(|m| (name, m))
        })
        .collect();
    assert!(all.len() >= 15, "only {} crates found", all.len());
    all
}

/// No build of the server may weaken security: no crate declares a cargo feature (which
/// `--all-features` would switch on silently) that stores bodies unsealed or otherwise
/// opts into danger. Danger is opted into at run time, loudly, or not at all.
#[test]
fn no_cargo_feature_weakens_security() {
    for (krate, manifest) in workspace() {
        for name in keys(&manifest, "features") {
            assert!(
                !name.contains("dangerous") && !name.contains("unsealed"),
                "{krate} declares the feature {name:?}"
            );
        }
    }
}

/// The normal (non-dev) dependencies of a workspace crate, by package name, and, for
/// those inside the workspace, theirs in turn.
fn dependency_closure(krate: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![krate.to_owned()];
    while let Some(name) = todo.pop() {
        // Not a workspace crate: an external package, whose own dependencies are not ours.
        let Some(manifest) = manifest(&name) else {
            continue;
        };
        for dep in keys(&manifest, "dependencies") {
            if seen.insert(dep.clone()) {
                todo.push(dep);
            }
        }
    }
    seen
}

/// The member's and staff's client links no database driver and no server code: what a
/// member installs cannot open a store. The server, by contrast, does (the check sees it).
#[test]
fn the_client_links_no_database_driver() {
    const DRIVERS: [&str; 5] = [
        "sqlx",
        "rusqlite",
        "libsqlite3-sys",
        "custodia-store-sqlite",
        "custodia-store-postgres",
    ];
    let client = dependency_closure("custodia-client");
    assert!(client.contains("custodia-sdk"), "{client:?}");
    for driver in DRIVERS {
        assert!(
            !client.contains(driver),
            "custodia-client depends on {driver}"
        );
    }
    for server_side in [
        "custodia-server",
        "custodia-service",
        "custodia-keys",
        "custodia-store",
    ] {
        assert!(
            !client.contains(server_side),
            "custodia-client depends on {server_side}"
        );
    }
    let server = dependency_closure("custodia-server");
    assert!(
        server.contains("rusqlite") && server.contains("sqlx"),
        "{server:?}"
    );
}

/// No load generator or benchmark is part of the server or its binary: they live in
/// `custodia-bench`, which is never published.
#[test]
fn benchmarks_stay_out_of_the_server() {
    for krate in ["custodia", "custodia-server", "custodia-client"] {
        assert!(
            !dependency_closure(krate).contains("custodia-bench"),
            "{krate} depends on custodia-bench"
        );
    }
    let bench = manifest("custodia-bench").unwrap();
    assert_eq!(
        bench["package"].get("publish").and_then(|p| p.as_bool()),
        Some(false),
        "custodia-bench is never published"
    );
}

/// The core crates read no clock and do no I/O: time comes from the injected `Clock`
/// (ids made at a time take it from there too), bytes from their callers.
#[test]
fn core_crates_read_no_clock_and_do_no_io() {
    const FORBIDDEN: [&str; 9] = [
        "SystemTime",
        "Instant::now",
        "now_v7",
        "OffsetDateTime::now",
        "std::fs",
        "std::net",
        "tokio",
        "std::env",
        "std::process",
    ];
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in [
        "custodia-core",
        "custodia-tlog",
        "custodia-proto",
        "custodia-pdq",
        "custodia-transparency",
    ] {
        let mut files = vec![crates.join(krate).join("src")];
        let mut read = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            read += 1;
            for word in FORBIDDEN {
                assert!(!text.contains(word), "{} mentions {word}", path.display());
            }
        }
        assert!(read > 0, "no sources found for {krate}");
    }
}

/// Only the HTTP layer knows status codes, and within it only `ApiError` turns an outcome
/// into an error status: handlers name the outcome (`ApiError::not_found(…)`) and choose
/// nothing but their success status. No server crate but `custodia-api` uses axum.
#[test]
fn error_statuses_are_chosen_only_in_api_error() {
    let api = crates().join("custodia-api/src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&api).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "problem.rs" || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        checked += 1;
        for (at, _) in text.match_indices("StatusCode::") {
            let code: String = text[at + "StatusCode::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            assert!(
                ["OK", "CREATED", "ACCEPTED", "NO_CONTENT"].contains(&code.as_str()),
                "{name} chooses StatusCode::{code}; name the outcome on ApiError instead"
            );
        }
        assert!(
            !text.contains("ApiError::new("),
            "{name} builds an ApiError from a status"
        );
    }
    assert!(checked >= 8, "only {checked} files in {}", api.display());
    for (krate, manifest) in workspace() {
        assert!(
            krate == "custodia-api" || !keys(&manifest, "dependencies").contains(&"axum".into()),
            "{krate} depends on axum"
        );
    }
}
