//! Helpers shared by the integration tests: where the shared example
//! passports are, and a loud skip when they are not there.

#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/examples/passports` beside the workspace, or `None` after
/// printing a loud SKIP line (a clone without ../shared still passes).
pub fn shared_examples(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/examples/passports"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIP: ../shared not found, {test} not run");
        None
    }
}

/// The in-repo fixtures of this crate.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Whether `a` and `b` agree within a relative 1e-6.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-12)
}
