//! The domain crate stays pure: no async runtime, database, web framework,
//! protocol stack or serialization in what it declares or pulls in.
//!
//! Two views: `cargo metadata` for what the crate itself declares (its
//! dependencies and the features it asks of them), and `cargo tree -p
//! remine-domain -e normal` for everything it pulls in when built on its own
//! (other workspace crates enable more features of shared dependencies, e.g.
//! async-opcua turns on chrono's serde; that is theirs, not the domain's).

use cargo_metadata::{DependencyKind, MetadataCommand};
use std::process::Command;

const FORBIDDEN: [&str; 9] = [
    "tokio",
    "sqlx",
    "axum",
    "serde",
    "serde_json",
    "hyper",
    "reqwest",
    "tokio-modbus",
    "async-opcua",
];

fn manifest() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")
}

#[test]
fn the_domain_declares_no_io_or_serialization_dependency_or_feature() {
    let meta = MetadataCommand::new()
        .manifest_path(manifest())
        .exec()
        .expect("cargo metadata runs");
    let domain = meta
        .packages
        .iter()
        .find(|p| p.name.as_str() == "remine-domain")
        .expect("remine-domain is in the workspace");
    let normal: Vec<_> = domain
        .dependencies
        .iter()
        .filter(|d| d.kind == DependencyKind::Normal)
        .collect();
    assert!(
        normal.iter().any(|d| d.name == "sha2"),
        "the walk sees the real dependencies"
    );
    for d in &normal {
        assert!(
            !FORBIDDEN.contains(&d.name.as_str()),
            "remine-domain depends on {}",
            d.name
        );
        for f in &d.features {
            assert!(
                !f.contains("serde") && !f.contains("tokio"),
                "remine-domain enables {}/{f}",
                d.name
            );
        }
    }
}

#[test]
fn the_domain_built_alone_pulls_in_no_io_or_serialization_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--manifest-path",
            manifest(),
            "-p",
            "remine-domain",
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}", "--offline"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"sha2") && names.contains(&"chrono"),
        "unexpected tree: {tree}"
    );
    let found: Vec<&&str> = names.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(found.is_empty(), "remine-domain pulls in {found:?}");
}
