//! Lint refuses broken recipes, each with a message that names the file,
//! the line and the parameter at fault. The broken set is
//! `tests/broken/`, one file per case, each opening with a comment saying
//! what is wrong with it.

#![allow(clippy::unwrap_used)]

use remine_recipes::{RecipeFileError, lint_dir, shipped_catalogues};
use std::path::{Path, PathBuf};

fn broken_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

/// One case: the broken file, the name it is linted under, and the line,
/// parameter and message fragment one of its errors must carry.
struct Case {
    file: &'static str,
    lint_as: &'static str,
    line: usize,
    parameter: Option<&'static str>,
    says: &'static str,
}

const MECH: &str = "mechanical-nmc622.toml";

const fn case(
    file: &'static str,
    line: usize,
    parameter: Option<&'static str>,
    says: &'static str,
) -> Case {
    Case {
        file,
        lint_as: MECH,
        line,
        parameter,
        says,
    }
}

const SPEED: Option<&str> = Some("shredder_speed");

const CASES: &[Case] = &[
    case("malformed-toml", 12, SPEED, "malformed TOML"),
    case("missing-unit", 12, SPEED, "missing unit"),
    case(
        "unknown-unit",
        12,
        SPEED,
        "unit 'rpmm' is invalid: not a known unit",
    ),
    case(
        "unknown-parameter",
        13,
        Some("shredder_colour"),
        "unknown parameter",
    ),
    case(
        "value-beyond-min-max",
        12,
        SPEED,
        "70 rpm, limits 20 rpm ..= 60 rpm",
    ),
    case("min-above-max", 12, SPEED, "min 60 rpm is above max 20 rpm"),
    case(
        "value-beyond-capability",
        12,
        SPEED,
        "value 110 rpm is beyond the equipment's capability 10 rpm ..= 100 rpm",
    ),
    case(
        "wrong-dimension",
        20,
        Some("screen_cut_size"),
        "unit min is a time; this parameter is a length",
    ),
    case(
        "dryer-too-cold",
        16,
        Some("dryer_temperature"),
        "does not exceed the boiling point of EMC at 1000 mbar",
    ),
    case(
        "o2-alarm-above-trip",
        7,
        Some("o2_alarm_limit"),
        "must be below the O2 trip",
    ),
    case(
        "missing-required-parameter",
        3,
        Some("screen_cut_size"),
        "missing: every mechanical recipe for NMC622 needs it",
    ),
    Case {
        file: "line-chemistry-not-matching-file-name",
        lint_as: "mechanical-nmc532.toml",
        line: 2,
        parameter: None,
        says: "line and chemistry say mechanical/NMC622, so the file must be named mechanical-nmc622.toml",
    },
    case(
        "duplicate-parameter-name",
        21,
        SPEED,
        "given twice in this recipe (first at line 12)",
    ),
    case(
        "non-numeric-value",
        12,
        SPEED,
        "value must be a number, got the string \"forty\"",
    ),
    case("extra-key-in-parameter", 12, SPEED, "unknown key note"),
    case(
        "wrong-nesting-depth",
        16,
        Some("feed_rate_in_operation"),
        "sits in [shredding.shred], which is not a phase",
    ),
    case("version-in-file", 4, None, "carries no version"),
    case(
        "infinite-value",
        9,
        Some("n2_flow"),
        "max: value must be a finite number",
    ),
    Case {
        file: "reductant-in-lfp",
        lint_as: "hydromet-lfp.toml",
        line: 12,
        parameter: Some("reductant_ratio"),
        says: "not used for LFP: LFP needs no reductant",
    },
];

/// Lints the case's file alone in a fresh directory, under its `lint_as`
/// name, against the shipped catalogues, and returns that file's errors.
fn lint_alone(c: &Case) -> (String, Vec<RecipeFileError>) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(broken_dir().join(format!("{}.toml", c.file))).unwrap();
    std::fs::write(dir.path().join(c.lint_as), text).unwrap();
    let report = lint_dir(dir.path(), &shipped_catalogues());
    assert!(!report.is_clean(), "{}: lint passed it", c.file);
    let shown = dir.path().join(c.lint_as).display().to_string();
    let errors = report
        .errors
        .into_iter()
        .filter(|e| e.file == shown)
        .collect();
    (shown, errors)
}

fn check(c: &Case) {
    let (shown, errors) = lint_alone(c);
    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let hit = errors.iter().find(|e| {
        e.line == Some(c.line)
            && e.parameter.as_deref() == c.parameter
            && e.message.contains(c.says)
    });
    let Some(hit) = hit else {
        panic!(
            "{}: expected line {} parameter {:?} saying {:?}; got:\n{}",
            c.file,
            c.line,
            c.parameter,
            c.says,
            all.join("\n")
        );
    };
    let prefix = match c.parameter {
        Some(p) => format!("{shown}:{}: parameter {p}: ", c.line),
        None => format!("{shown}:{}: ", c.line),
    };
    assert!(hit.to_string().starts_with(&prefix), "{hit}");
}

#[test]
fn every_broken_recipe_is_refused_naming_file_line_and_parameter() {
    for c in CASES {
        check(c);
    }
}

#[test]
fn the_broken_set_and_the_case_table_list_the_same_files_each_saying_what_is_wrong() {
    let mut on_disk: Vec<String> = std::fs::read_dir(broken_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| format!("{}.toml", c.file)).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    for name in on_disk {
        let text = std::fs::read_to_string(broken_dir().join(&name)).unwrap();
        assert!(text.starts_with("# Broken on purpose: "), "{name}");
    }
}

#[test]
fn a_broken_file_is_refused_by_import_too() {
    for c in CASES.iter().filter(|c| c.lint_as == MECH) {
        let path = broken_dir().join(format!("{}.toml", c.file));
        let errs = remine_recipes::load_recipe(&path, &shipped_catalogues()).expect_err(c.file);
        assert!(!errs.is_empty(), "{}", c.file);
    }
}
