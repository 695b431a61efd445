//! `remine synth` from outside: a small year into SQLite through the
//! store's ports, with an intact audit trail; a year into files; and one
//! clear error line for bad arguments.

#![allow(clippy::unwrap_used)]

use remine_system_tests::run;

#[test]
fn a_small_year_goes_into_the_database_and_the_audit_trail_verifies() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let (code, out, err) = run(
        &["synth", "--packs", "300", "--seed", "3", "--data", data],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    for needle in [
        "generated ",
        " weighings, ",
        " assays in ",
        "units by form:",
        "true yearly recovery",
        "elapsed",
    ] {
        assert!(out.contains(needle), "no '{needle}' in:\n{out}");
    }
    let (code, out, err) = run(&["audit", "verify", "--data", data], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit trail intact"), "{out}");
}

#[test]
fn a_year_written_to_files_lists_its_passports_lots_edges_and_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("year");
    let out_dir = out_dir.to_str().unwrap();
    let (code, out, err) = run(
        &[
            "synth",
            "--packs",
            "200",
            "--out",
            out_dir,
            "--bias",
            "BW-bm=+5%",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("biased instrument: BW-bm +5.00 %"), "{out}");
    for f in [
        "lots.jsonl",
        "edges.jsonl",
        "truth.jsonl",
        "intake-declared.csv",
        "README.md",
    ] {
        assert!(dir.path().join("year").join(f).is_file(), "{f}");
    }
    assert!(
        dir.path()
            .join("year/passports")
            .read_dir()
            .unwrap()
            .count()
            > 50
    );
}

fn check_error(args: &[&str], needle: &str) {
    let (code, out, err) = run(args, None);
    assert_eq!(code, 1, "{args:?}: {out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{args:?}: {err}"
    );
}

#[test]
fn bad_arguments_give_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("year");
    let d = dir.path().to_str().unwrap();
    check_error(&["synth", "--packs", "0", "--out", d], "--packs");
    check_error(
        &[
            "synth",
            "--packs",
            "10",
            "--out",
            d,
            "--db",
            "sqlite::memory:",
        ],
        "not both",
    );
    check_error(
        &[
            "synth",
            "--packs",
            "10",
            "--out",
            under_file.to_str().unwrap(),
        ],
        "cannot write",
    );
    check_error(
        &["synth", "--packs", "10", "--out", d, "--bias", "XX=+1%"],
        "unknown instrument 'XX'",
    );
    check_error(&["synth", "--packs", "10", "--out", d], "is not empty");
}
