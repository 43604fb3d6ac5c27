//! The suite covers the whole seam: every method a storage trait declares is called by at
//! least one check, so no behaviour a backend provides goes untested on either backend.

use std::path::Path;

#[test]
fn every_storage_method_is_called_by_a_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let traits = std::fs::read_to_string(root.join("../custodia-store/src/traits.rs")).unwrap();
    let mut suite = String::new();
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        suite += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    // The methods of the storage traits (not of `CommitObserver`, which a backend calls).
    let mut methods = Vec::new();
    let mut in_store_trait = false;
    for line in traits.lines() {
        if let Some(rest) = line.strip_prefix("pub trait ") {
            in_store_trait = !rest.starts_with("CommitObserver");
        }
        let Some(rest) = line.trim_start().strip_prefix("async fn ") else {
            continue;
        };
        if in_store_trait {
            methods.push(rest.split(['(', '<']).next().unwrap().to_owned());
        }
    }
    assert!(methods.len() > 60, "found only {} methods", methods.len());
    let missing: Vec<&String> = methods
        .iter()
        .filter(|m| !suite.contains(&format!(".{m}(")))
        .collect();
    assert!(missing.is_empty(), "never called by the suite: {missing:?}");
}
