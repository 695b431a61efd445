//! The recipes and equipment catalogues remine ships: every one parses,
//! validates clean, round-trips through the canonical form, and together
//! they cover every line and chemistry; the catalogues' PLC tags exist in
//! the demo plant's tag maps and accept the whole capability range.

#![allow(clippy::unwrap_used)]

use remine_domain::recipe::rules::missing_coverage;
use remine_domain::recipe::units::Unit;
use remine_domain::recipe::{Line, diff};
use remine_recipes::{
    SHIPPED_RECIPE_FILES, check_recipe, file_name, lint_dir, parse_recipe, render_recipe,
    shipped_catalogues, shipped_recipes,
};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn there_is_one_shipped_catalogue_per_line() {
    let lines: Vec<Line> = shipped_catalogues().iter().map(|c| c.line()).collect();
    assert_eq!(lines, Line::ALL.to_vec());
}

#[test]
fn every_shipped_recipe_parses_and_validates_clean_against_the_shipped_catalogues() {
    let catalogues = shipped_catalogues();
    assert_eq!(shipped_recipes().len(), 21);
    for (name, text) in SHIPPED_RECIPE_FILES {
        let r = parse_recipe(text, name).unwrap();
        assert_eq!(file_name(r.key()), name);
        let problems = check_recipe(&r, name, Some(text), &catalogues);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

#[test]
fn every_shipped_recipe_round_trips_through_the_canonical_form() {
    for (name, r) in shipped_recipes() {
        let again = parse_recipe(&render_recipe(&r), &name).unwrap();
        assert_eq!(again, r, "{name}");
        assert!(diff(&r, &again).is_empty(), "{name}");
        // The canonical form is a fixed point.
        assert_eq!(render_recipe(&again), render_recipe(&r), "{name}");
    }
}

#[test]
fn the_shipped_recipes_cover_every_line_and_chemistry() {
    let keys = shipped_recipes().into_iter().map(|(_, r)| r.key());
    assert_eq!(missing_coverage(keys), vec![]);
}

#[test]
fn lint_of_the_repositorys_recipes_directory_is_clean_and_covers_21_recipes() {
    let report = lint_dir(&repo().join("recipes"), &[]);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.keys().len(), 21);
    assert_eq!(missing_coverage(report.keys()), vec![]);
    assert!(
        report.to_string().ends_with("21 recipes, 0 problems"),
        "{report}"
    );
    // The equipment/ there is what is compiled in.
    assert_eq!(
        lint_dir(&repo().join("recipes"), &shipped_catalogues()).to_string(),
        "21 recipes, 0 problems"
    );
}

#[test]
fn layered_oxides_leach_with_a_reductant_and_lfp_with_an_oxidant() {
    for (name, r) in shipped_recipes() {
        if r.key().line != Line::Hydromet {
            continue;
        }
        let lfp = name.ends_with("lfp.toml");
        assert_eq!(r.parameter("reductant_ratio").is_some(), !lfp, "{name}");
        assert_eq!(r.parameter("oxidant_ratio").is_some(), lfp, "{name}");
    }
}

/// A write-access tag of the demo tag maps: its unit and write limits.
struct DemoTag {
    name: String,
    unit: String,
    min: f64,
    max: f64,
}

fn demo_tags() -> Vec<DemoTag> {
    let mut out = Vec::new();
    for line in ["discharge", "mechanical", "hydromet"] {
        let path = repo().join(format!("services/remine/demo/plant-{line}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        for t in doc["tag"].as_array().unwrap() {
            let get = |k: &str| t.get(k);
            if get("access").and_then(|a| a.as_str()) == Some("read") {
                continue;
            }
            let num = |k: &str| {
                get(k)
                    .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                    .unwrap_or(f64::NAN)
            };
            out.push(DemoTag {
                name: get("name").and_then(|v| v.as_str()).unwrap().to_string(),
                unit: get("unit")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                min: num("min"),
                max: num("max"),
            });
        }
    }
    out
}

#[test]
fn every_catalogue_tag_is_a_writable_demo_tag_whose_limits_hold_the_capability() {
    let tags = demo_tags();
    let mut checked = 0;
    for cat in shipped_catalogues() {
        for cap in cat.capabilities() {
            let Some(tag) = cap.tag_for("Discharge/Station1") else {
                continue;
            };
            let tag = tag.unwrap();
            let demo = tags
                .iter()
                .find(|t| t.name == tag.as_str())
                .unwrap_or_else(|| panic!("{}: tag {tag} is not in the demo tag maps", cap.name()));
            let unit = Unit::parse(&demo.unit).unwrap();
            let lo = cap.min().to(unit).unwrap().value();
            let hi = cap.max().to(unit).unwrap().value();
            assert!(
                demo.min <= lo + 1e-9 && hi <= demo.max + 1e-9,
                "{}: capability {lo}..={hi} {unit} is beyond {}'s write limits {}..={}",
                cap.name(),
                demo.name,
                demo.min,
                demo.max
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        4 + 6 + 3,
        "discharge 4, mechanical 6, hydromet 3 tagged parameters"
    );
}
