//! The domain crate stays pure: no async runtime, database, web framework or
//! serialization in its dependency tree.

use cargo_metadata::{CargoOpt, MetadataCommand};
use std::collections::{HashMap, HashSet};

const FORBIDDEN: [&str; 8] = [
    "tokio",
    "sqlx",
    "axum",
    "serde",
    "hyper",
    "reqwest",
    "tokio-modbus",
    "async-opcua",
];

#[test]
fn the_domain_depends_on_no_io_or_serialization_crate() {
    let meta = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .features(CargoOpt::AllFeatures)
        .exec()
        .expect("cargo metadata runs");
    let resolve = meta.resolve.as_ref().expect("metadata has a resolve graph");
    let names: HashMap<_, _> = meta
        .packages
        .iter()
        .map(|p| (&p.id, p.name.as_str()))
        .collect();
    let nodes: HashMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let root = meta
        .packages
        .iter()
        .find(|p| p.name.as_str() == "remine-domain")
        .expect("remine-domain is in the workspace");

    // Walk normal (non-dev, non-build) dependencies only.
    let mut seen = HashSet::new();
    let mut stack = vec![&root.id];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in &nodes[id].deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == cargo_metadata::DependencyKind::Normal);
            if normal {
                stack.push(&dep.pkg);
            }
        }
    }
    let found: Vec<&str> = seen
        .iter()
        .map(|id| names[id])
        .filter(|n| FORBIDDEN.contains(n))
        .collect();
    assert!(found.is_empty(), "remine-domain pulls in {found:?}");
    // The walk itself must have found the crate's real dependencies.
    assert!(seen.iter().any(|id| names[id] == "sha2"));
}
