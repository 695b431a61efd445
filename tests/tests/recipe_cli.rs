//! `remine recipe lint|diff|import` from outside, for engineers who keep
//! recipes in git: the shipped folder lints clean, a broken one is refused
//! line by line, a diff names parameters with units, and an import stores
//! a draft once and refuses a bad file without storing anything.

#![allow(clippy::unwrap_used)]

use remine_system_tests::run;
use std::path::PathBuf;

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn the_shipped_recipes_lint_clean_and_cover_every_line_and_chemistry() {
    let (code, out, err) = run(&["recipe", "lint", &repo("recipes")], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("21 recipes, 0 problems"), "{out}");
}

#[test]
fn a_folder_of_broken_recipes_is_refused_naming_file_line_and_parameter() {
    let dir = repo("services/recipes/tests/broken");
    let (code, out, err) = run(&["recipe", "lint", &dir], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in [
        "reductant-in-lfp.toml:12: parameter reductant_ratio: not used for LFP",
        "o2-alarm-above-trip.toml:",
        "unknown-unit.toml:",
        "no recipe for hydromet/NMC811 (expected hydromet-nmc811.toml)",
    ] {
        assert!(
            out.lines().any(|l| l.contains(needle)),
            "no line with '{needle}' in:\n{out}"
        );
    }
}

#[test]
fn a_diff_names_each_changed_parameter_with_its_units() {
    let (code, out, err) = run(
        &[
            "recipe",
            "diff",
            &repo("recipes/hydromet-nmc811.toml"),
            &repo("recipes/hydromet-nmc622.toml"),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("~ leach_temperature") && l.contains("degC")),
        "{out}"
    );
}

#[test]
fn an_import_stores_one_draft_and_refuses_a_broken_file_storing_nothing() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let file = repo("recipes/mechanical-lfp.toml");
    let (code, out, err) = run(&["recipe", "--data", d, "import", &file], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("draft mechanical/LFP v1 created"), "{out}");
    let (code, _, err) = run(&["recipe", "--data", d, "import", &file], None);
    assert_ne!(code, 0);
    assert!(err.contains("v1 is still draft"), "{err}");

    let broken = repo("services/recipes/tests/broken/reductant-in-lfp.toml");
    let (code, out, err) = run(&["recipe", "--data", d, "import", &broken], None);
    assert_ne!(code, 0);
    assert!(out.contains("reductant_ratio"), "{out}");
    assert!(err.contains("nothing was stored"), "{err}");
    let (code, out, _) = run(&["audit", "verify", "--data", d], None);
    assert_eq!(code, 0);
    assert!(out.contains('1'), "one audited create: {out}");
}
