//! The folder a year is written to: the same seed gives byte-identical
//! files, another seed other files; the lines say what the plant booked
//! and what was true; nothing is written over.

#![allow(clippy::unwrap_used)]

use remine_synth::{SynthConfig, SynthError, generate};
use std::collections::BTreeMap;
use std::path::Path;

fn write(units: usize, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let y = generate(&SynthConfig::new(units, seed).unwrap()).unwrap();
    y.write_files(dir.path()).unwrap();
    dir
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_same_seed_gives_byte_identical_files() {
    let (a, b) = (write(300, 41), write(300, 41));
    let (a, b) = (tree(a.path()), tree(b.path()));
    assert!(a.len() > 300);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs");
    }
}

#[test]
fn another_seed_gives_other_files() {
    let (a, b) = (tree(write(300, 42).path()), tree(write(300, 43).path()));
    for name in [
        "lots.jsonl",
        "edges.jsonl",
        "truth.jsonl",
        "intake-declared.csv",
    ] {
        assert_ne!(a[name], b[name], "{name}");
    }
}

fn lines(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn lots_edges_and_truth_are_json_lines_that_refer_to_each_other() {
    let dir = write(200, 44);
    let lots = lines(dir.path(), "lots.jsonl");
    let truth = lines(dir.path(), "truth.jsonl");
    let edges = lines(dir.path(), "edges.jsonl");
    assert_eq!(lots.len(), truth.len());
    let mass: BTreeMap<&str, f64> = lots
        .iter()
        .map(|l| (l["id"].as_str().unwrap(), l["mass_kg"].as_f64().unwrap()))
        .collect();
    for (l, t) in lots.iter().zip(&truth) {
        assert_eq!(l["id"], t["id"]);
        assert!(l["measurement"]["instrument"].is_string(), "{l}");
        assert!(t["mass_kg"].as_f64().unwrap() > 0.0);
        remine_domain::LotKind::parse_code(l["kind"].as_str().unwrap()).unwrap();
    }
    let mut taken: BTreeMap<&str, f64> = BTreeMap::new();
    for e in &edges {
        assert!(mass.contains_key(e["to"].as_str().unwrap()));
        *taken.entry(e["from"].as_str().unwrap()).or_default() += e["mass_kg"].as_f64().unwrap();
    }
    for (from, kg) in taken {
        assert!(
            kg <= mass[from] * (1.0 + 1e-12) + 1e-9,
            "{from}: {kg} of {}",
            mass[from]
        );
    }
    let bm = lots
        .iter()
        .find(|l| l["kind"].as_str().unwrap().starts_with("black-mass:"))
        .unwrap();
    assert_eq!(bm["content_source"], "assayed");
    assert!(bm["assays"].as_array().unwrap().len() >= 5, "{bm}");
    assert!(bm["measurement"]["moisture"].as_f64().unwrap() > 0.0);
    let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(readme.contains("true yearly recovery"), "{readme}");
}

#[test]
fn a_folder_with_files_in_it_is_not_written_over() {
    let dir = write(20, 45);
    let y = generate(&SynthConfig::new(20, 45).unwrap()).unwrap();
    let e = y.write_files(dir.path()).unwrap_err();
    assert!(matches!(e, SynthError::NotEmpty(_)), "{e}");
    assert!(e.to_string().contains("is not empty"), "{e}");
}

#[test]
fn a_folder_that_cannot_be_made_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let y = generate(&SynthConfig::new(5, 46).unwrap()).unwrap();
    let e = y.write_files(&file.join("year")).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot write ") && e.contains("a-file"),
        "{e}"
    );
}

#[test]
fn zero_units_or_too_many_are_refused() {
    for n in [0, 10_000_000] {
        let e = SynthConfig::new(n, 1).unwrap_err().to_string();
        assert!(
            e.contains("--packs") && e.contains(&format!("got {n}")),
            "{e}"
        );
    }
}
