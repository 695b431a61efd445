//! Linting a directory: coverage of every line and chemistry, duplicates,
//! an `equipment/` subdirectory that replaces the catalogues, and no panic
//! on any input.

#![allow(clippy::unwrap_used)]

use remine_recipes::{
    SHIPPED_CATALOGUE_FILES, SHIPPED_RECIPE_FILES, lint_dir, parse_recipe, shipped_catalogues,
};
use std::path::Path;

/// A directory holding the shipped recipes, minus `leave_out`.
fn shipped_dir_without(leave_out: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in SHIPPED_RECIPE_FILES {
        if !leave_out.contains(&name) {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    }
    dir
}

fn lines_of(report: &remine_recipes::LintReport) -> Vec<String> {
    report.errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_directory_missing_a_chemistry_reports_the_missing_coverage() {
    let dir = shipped_dir_without(&["hydromet-lfp.toml"]);
    let report = lint_dir(dir.path(), &shipped_catalogues());
    let shown = dir.path().display().to_string();
    assert_eq!(
        lines_of(&report),
        vec![format!(
            "{shown}: no recipe for hydromet/LFP (expected hydromet-lfp.toml)"
        )]
    );
    assert!(
        report.to_string().ends_with("20 recipes, 1 problem"),
        "{report}"
    );
}

#[test]
fn an_empty_directory_misses_all_21_recipes() {
    let dir = tempfile::tempdir().unwrap();
    let report = lint_dir(dir.path(), &shipped_catalogues());
    assert_eq!(report.errors.len(), 21);
    assert_eq!(
        report.to_string().lines().last(),
        Some("0 recipes, 21 problems")
    );
}

#[test]
fn a_broken_file_counts_for_coverage_by_its_name_and_is_reported_once() {
    let dir = shipped_dir_without(&[]);
    std::fs::write(dir.path().join("hydromet-lfp.toml"), "line = ").unwrap();
    let report = lint_dir(dir.path(), &shipped_catalogues());
    let lines = lines_of(&report);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("hydromet-lfp.toml:1: malformed TOML"),
        "{lines:?}"
    );
}

#[test]
fn the_same_recipe_in_two_files_is_reported_as_a_duplicate() {
    let dir = shipped_dir_without(&[]);
    let (_, text) = SHIPPED_RECIPE_FILES[0];
    std::fs::write(dir.path().join("zz-copy.toml"), text).unwrap();
    let report = lint_dir(dir.path(), &shipped_catalogues());
    let lines = lines_of(&report).join("\n");
    assert!(lines.contains("zz-copy.toml:4: line and chemistry say discharge/NMC111, so the file must be named discharge-nmc111.toml"), "{lines}");
    assert!(
        lines.contains("zz-copy.toml:4: recipe discharge/NMC111 is also defined in"),
        "{lines}"
    );
    assert_eq!(report.errors.len(), 2, "{lines}");
    assert_eq!(report.files.iter().filter(|f| f.problems > 0).count(), 1);
}

#[test]
fn an_equipment_subdirectory_replaces_the_catalogues() {
    let dir = shipped_dir_without(&[]);
    std::fs::create_dir(dir.path().join("equipment")).unwrap();
    for (name, text) in SHIPPED_CATALOGUE_FILES {
        // A dryer that cannot go below 105 degC refuses the recipes' 100.
        let text = text.replace("min = 90\nmax = 120", "min = 105\nmax = 120");
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // With the shipped catalogues passed in, the local ones still win.
    let report = lint_dir(dir.path(), &shipped_catalogues());
    assert_eq!(report.errors.len(), 7 * 2, "{report}");
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.parameter.as_deref() == Some("dryer_temperature")
                && e.message
                    .contains("beyond the equipment's capability 105 degC ..= 120 degC")),
        "{report}"
    );
}

#[test]
fn a_broken_catalogue_in_the_equipment_subdirectory_is_a_problem_too() {
    let dir = shipped_dir_without(&[]);
    std::fs::create_dir(dir.path().join("equipment")).unwrap();
    for (name, text) in SHIPPED_CATALOGUE_FILES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join("equipment/hydromet.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("requirement = \"optional\"", "requirement = \"sometimes\""),
    )
    .unwrap();
    let report = lint_dir(dir.path(), &[]);
    let lines = lines_of(&report).join("\n");
    assert!(
        lines.contains(
            "equipment/hydromet.toml:92: parameter mn_sx_ph: requirement 'sometimes' is invalid"
        ),
        "{lines}"
    );
    // Without a hydromet catalogue, the 7 hydromet recipes cannot be checked.
    assert!(
        lines.contains("no equipment catalogue for the hydromet line"),
        "{lines}"
    );
    assert_eq!(report.errors.len(), 1 + 7, "{lines}");
}

#[test]
fn subdirectories_and_other_files_are_not_linted_as_recipes() {
    let dir = shipped_dir_without(&[]);
    std::fs::create_dir(dir.path().join("drafts")).unwrap();
    std::fs::write(dir.path().join("drafts/x.toml"), "garbage").unwrap();
    std::fs::write(dir.path().join("README.md"), "# notes").unwrap();
    let report = lint_dir(dir.path(), &shipped_catalogues());
    assert!(report.is_clean(), "{report}");
}

#[test]
fn a_missing_directory_is_a_problem_not_a_panic() {
    let report = lint_dir(Path::new("/nonexistent/recipes"), &shipped_catalogues());
    assert!(lines_of(&report)[0].starts_with("/nonexistent/recipes: cannot read the directory"));
}

#[test]
fn no_input_makes_the_parser_or_lint_panic() {
    let inputs: &[&[u8]] = &[
        b"",
        b"\xff\xfe\x00binary",
        b"[",
        b"line = 3\nchemistry = true",
        b"line = \"hydromet\"\nchemistry = \"NMC999\"",
        b"line = \"kitchen\"\nchemistry = \"LFP\"",
        b"line = \"hydromet\"\nchemistry = \"LFP\"",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a]\n",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b]\n",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c]\n",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c.d.e]\nx = 1",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[A.b.c]\nx = { value = 1 }",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c]\nx = { value = 1e400, unit = \"K\", min = -1, max = 0x10 }",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c]\nx = { value = -300, unit = \"degC\", min = -400, max = 0 }",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c]\nx = { value = nan, unit = \"pH\", min = 0, max = 14 }",
        b"line = \"hydromet\"\nchemistry = \"LFP\"\n[a.b.c]\nx = [1, 2]\ny = { value = [1], unit = 3, min = {}, max = 1979-05-27 }",
        b"[[a]]\nb = 1",
        "line = \"hydromet\"\nchemistry = \"LFP\"\n[\"caf\u{e9}\".b.c]\nx = 1".as_bytes(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hydromet-lfp.toml"), input).unwrap();
        let report = lint_dir(dir.path(), &shipped_catalogues());
        assert!(!report.is_clean(), "input {i}");
        let mine: Vec<_> = report
            .errors
            .iter()
            .filter(|e| e.file.ends_with("hydromet-lfp.toml"))
            .collect();
        assert!(!mine.is_empty(), "input {i}: {report}");
        if let Ok(text) = std::str::from_utf8(input) {
            assert!(
                parse_recipe(text, "x").is_err() || !mine.is_empty(),
                "input {i}"
            );
        }
    }
}
