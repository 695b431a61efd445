//! Batches: `import_paths` over folders of units, its walk of one level, and
//! its refusal of a second unit with an id already imported.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod common;

use remine_passports::{ImportError, import_paths};
use std::collections::BTreeSet;
use std::path::PathBuf;
use tempfile::TempDir;

fn units() -> PathBuf {
    common::fixtures().join("units")
}

#[test]
fn a_folder_of_units_is_walked_one_level_in_name_order() {
    let summary = import_paths(&[units()]);
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    let sources: Vec<String> = summary
        .accepted
        .iter()
        .map(|u| u.source.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        sources,
        [
            "2QRPE7AK3LM92XN6F0004711.json",
            "KPS21C0004242",
            "MRV23M0001234",
            "TAL22P0098765"
        ]
    );
}

#[test]
fn a_unit_listed_twice_is_imported_once_and_refused_once_naming_the_first_file() {
    let unit = units().join("MRV23M0001234");
    let summary = import_paths(&[unit.clone(), units()]);
    assert_eq!(summary.accepted.len(), 4);
    assert_eq!(summary.refused.len(), 1);
    let refusal = &summary.refused[0];
    assert_eq!(refusal.path, unit);
    let first = unit.join("GeneralProductInformation.json");
    assert_eq!(
        refusal.error.to_string(),
        format!(
            "{}: duplicate passport id urn:morvan:mrv23m0001234 (already imported from {})",
            first.display(),
            first.display()
        )
    );
}

#[test]
fn stray_folders_are_refused_and_nested_collections_left_alone() {
    let tmp = TempDir::new().unwrap();
    let stray = tmp.path().join("A_stray");
    std::fs::create_dir(&stray).unwrap();
    std::fs::write(stray.join("batterypass.json"), "{}").unwrap();
    let nested = tmp.path().join("B_older_batch/unit");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(tmp.path().join("README.md"), "notes").unwrap();
    std::fs::copy(
        units().join("2QRPE7AK3LM92XN6F0004711.json"),
        tmp.path().join("C.json"),
    )
    .unwrap();

    let summary = import_paths(&[tmp.path().to_path_buf(), tmp.path().join("missing")]);
    assert_eq!(summary.accepted.len(), 1);
    let refused: Vec<(PathBuf, String)> = summary
        .refused
        .iter()
        .map(|r| (r.path.clone(), r.error.to_string()))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0].0, stray);
    assert!(refused[0].1.contains("no passport files"), "{refused:?}");
    assert_eq!(refused[1].0, tmp.path().join("missing"));
    assert!(refused[1].1.contains("cannot read"), "{refused:?}");
}

#[test]
fn of_a_duplicate_pair_the_first_is_imported_and_the_second_refused_naming_the_first() {
    let Some(examples) = common::shared_examples(
        "of_a_duplicate_pair_the_first_is_imported_and_the_second_refused_naming_the_first",
    ) else {
        return;
    };
    let dir = examples.join("broken");
    let summary = import_paths(std::slice::from_ref(&dir));
    let dup_a = dir.join("11_duplicate_id_a");
    let dup_b = dir.join("11_duplicate_id_b");
    assert!(summary.accepted.iter().any(|u| u.source == dup_a));
    assert!(!summary.accepted.iter().any(|u| u.source == dup_b));
    let refusal = summary
        .refused
        .iter()
        .find(|r| r.path == dup_b)
        .expect("the second of the pair is refused");
    assert!(matches!(refusal.error, ImportError::Duplicate { .. }));
    assert_eq!(
        refusal.error.to_string(),
        format!(
            "{}: duplicate passport id urn:lingxi:lxb22p5888086 (already imported from {})",
            dup_b.join("GeneralProductInformation.json").display(),
            dup_a.join("GeneralProductInformation.json").display()
        )
    );
    // The other verdicts hold in a batch too: 5 accepted (09, 11a, 13, 18, 19).
    assert_eq!(summary.accepted.len(), 5, "{:?}", summary.accepted);
    assert_eq!(summary.refused.len(), 15);
}

#[test]
fn the_whole_examples_folder_imports_cleanly() {
    let Some(examples) = common::shared_examples("the_whole_examples_folder_imports_cleanly")
    else {
        return;
    };
    let summary = import_paths(&[examples]);
    let refused: Vec<String> = summary
        .refused
        .iter()
        .map(|r| r.error.to_string())
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    assert_eq!(summary.accepted.len(), 24);
    let ids: BTreeSet<&str> = summary
        .accepted
        .iter()
        .map(|u| u.passport.id().as_str())
        .collect();
    assert_eq!(ids.len(), 24, "ids are unique");
}
