//! The 24 example units of ../shared/examples/passports against their
//! ground truth (truth.jsonl): id, form, chemistry, unit type, mass, the
//! declared element masses and the state of health, within a relative 1e-6.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod common;

use common::close;
use remine_domain::{ContentSource, Element};
use remine_passports::{ImportedUnit, read_unit};
use serde_json::Value;

/// Every truth line with its unit as imported, or `None` (after a loud
/// SKIP) when ../shared is absent.
fn units(test: &str) -> Option<Vec<(Value, ImportedUnit)>> {
    let dir = common::shared_examples(test)?;
    let text = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24, "truth.jsonl lists 24 units");
    Some(
        lines
            .into_iter()
            .map(|t| {
                let path = dir.join(t["path"].as_str().unwrap());
                let unit =
                    read_unit(&path).unwrap_or_else(|e| panic!("{} refused: {e}", path.display()));
                (t, unit)
            })
            .collect(),
    )
}

fn stated(t: &Value, field: &str) -> bool {
    t["inDocument"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str() == Some(field))
}

#[test]
fn ids_and_forms_are_read_exactly_as_written() {
    let Some(units) = units("ids_and_forms_are_read_exactly_as_written") else {
        return;
    };
    for (t, u) in &units {
        assert_eq!(u.passport.id().as_str(), t["id"].as_str().unwrap());
        assert_eq!(
            u.passport.form().name(),
            t["form"].as_str().unwrap(),
            "{}",
            t["id"]
        );
    }
}

#[test]
fn chemistries_are_read_from_every_spelling() {
    let Some(units) = units("chemistries_are_read_from_every_spelling") else {
        return;
    };
    for (t, u) in &units {
        assert_eq!(
            u.passport.chemistry().map(|c| c.name()),
            t["chemistry"].as_str(),
            "{} wrote {}",
            t["id"],
            t["chemistryAsWritten"]
        );
    }
}

#[test]
fn unit_types_come_from_the_form_the_product_name_or_the_mass() {
    let Some(units) = units("unit_types_come_from_the_form_the_product_name_or_the_mass") else {
        return;
    };
    for (t, u) in &units {
        assert_eq!(
            u.passport.unit_type().name(),
            t["unitType"].as_str().unwrap(),
            "{}",
            t["id"]
        );
    }
}

#[test]
fn masses_are_converted_to_kilograms_from_every_unit() {
    let Some(units) = units("masses_are_converted_to_kilograms_from_every_unit") else {
        return;
    };
    for (t, u) in &units {
        let want = t["massKg"].as_f64().unwrap();
        let got = u.passport.mass().kg();
        assert!(close(got, want), "{}: {got} kg, truth {want} kg", t["id"]);
    }
}

#[test]
fn declared_element_masses_are_summed_and_converted_to_kilograms() {
    let Some(units) = units("declared_element_masses_are_summed_and_converted_to_kilograms") else {
        return;
    };
    let mut compared = 0;
    for (t, u) in units.iter().filter(|(t, _)| stated(t, "elementsKg")) {
        let content = u.passport.content().unwrap();
        assert_eq!(content.source, ContentSource::Declared, "{}", t["id"]);
        let truth = t["elementsKg"].as_object().unwrap();
        for e in Element::ALL {
            match truth.get(e.symbol()).and_then(Value::as_f64) {
                Some(want) => {
                    let got = content.masses.get(e).kg();
                    assert!(
                        close(got, want),
                        "{} {e}: {got} kg, truth {want} kg",
                        t["id"]
                    );
                    compared += 1;
                }
                None => assert!(!content.masses.contains(e), "{} declares no {e}", t["id"]),
            }
        }
    }
    assert!(compared > 100, "only {compared} element masses compared");
}

#[test]
fn units_without_a_declared_composition_get_an_estimate_from_their_chemistry() {
    let Some(units) =
        units("units_without_a_declared_composition_get_an_estimate_from_their_chemistry")
    else {
        return;
    };
    for (t, u) in units.iter().filter(|(t, _)| !stated(t, "elementsKg")) {
        let content = u.passport.content().unwrap();
        assert_eq!(content.source, ContentSource::Estimated, "{}", t["id"]);
        let ni = u.passport.element(Element::Ni).kg();
        let has_ni = t["elementsKg"].get("Ni").is_some();
        assert_eq!(ni > 0.0, has_ni, "{} Ni estimate {ni} kg", t["id"]);
    }
}

#[test]
fn states_of_health_are_read_where_the_form_states_them() {
    let Some(units) = units("states_of_health_are_read_where_the_form_states_them") else {
        return;
    };
    for (t, u) in &units {
        let want = stated(t, "stateOfHealthPct").then(|| t["stateOfHealthPct"].as_f64().unwrap());
        assert_eq!(u.passport.state_of_health_pct(), want, "{}", t["id"]);
    }
}

#[test]
fn countries_of_collection_are_read_where_the_form_states_them() {
    let Some(units) = units("countries_of_collection_are_read_where_the_form_states_them") else {
        return;
    };
    for (t, u) in &units {
        let want =
            stated(t, "countryOfCollection").then(|| t["countryOfCollection"].as_str().unwrap());
        assert_eq!(
            u.passport.country_of_collection().map(|c| c.as_str()),
            want,
            "{}",
            t["id"]
        );
    }
}

#[test]
fn clean_examples_import_without_warnings() {
    let Some(units) = units("clean_examples_import_without_warnings") else {
        return;
    };
    for (t, u) in &units {
        assert!(u.warnings.is_empty(), "{}: {:?}", t["id"], u.warnings);
        assert!(u.passport.warnings().is_empty(), "{}", t["id"]);
    }
}
