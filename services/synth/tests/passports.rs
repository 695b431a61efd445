//! Every generated passport document is read by `remine_passports` into the
//! very passport the generator keeps for its unit, and a declaring form
//! states the unit's true element masses up to the form's rounding.

#![allow(clippy::unwrap_used)]

use remine_domain::{ContentSource, Element, PassportForm};
use remine_passports::{import_paths, read_unit};
use remine_synth::{PlantYear, SynthConfig, generate};
use std::path::Path;

fn written(units: usize, seed: u64) -> (PlantYear, tempfile::TempDir) {
    let y = generate(&SynthConfig::new(units, seed).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    y.write_files(dir.path()).unwrap();
    (y, dir)
}

/// The most a form's rounding can move one element, in kg: entries of an
/// element (at most 3) times half the last written digit.
fn rounding_kg(form: PassportForm, mass_kg: f64) -> f64 {
    let per_entry = match form {
        PassportForm::BatteryPass120 => 0.05e-3,
        PassportForm::Idta => 0.5e-6,
        PassportForm::CatenaX610 => 0.5e-7 * mass_kg,
        _ => 0.0,
    };
    3.0 * per_entry + 1e-9 * mass_kg
}

fn check_unit(y: &PlantYear, i: usize, dir: &Path) {
    let unit = &y.units()[i];
    let Some(rel) = unit.passport_path() else {
        return;
    };
    let read =
        read_unit(&dir.join("passports").join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(read.warnings.is_empty(), "{rel}: {:?}", read.warnings);
    let mine = unit.passport().unwrap();
    assert_eq!(read.passport, mine, "{rel}");

    let truth = &y.lots()[unit.lot()];
    let p = &read.passport;
    assert!(
        (p.mass().kg() - truth.true_mass()).abs() <= 1e-9 * truth.true_mass(),
        "{rel}: passport {} vs true {} kg",
        p.mass(),
        truth.true_mass()
    );
    let content = p.content().unwrap();
    if unit.form() == PassportForm::GbtIntake {
        assert_eq!(content.source, ContentSource::Estimated, "{rel}");
        assert_eq!(p.country_of_collection(), Some(unit.country()));
        return;
    }
    assert_eq!(content.source, ContentSource::Declared, "{rel}");
    let tol = rounding_kg(unit.form(), truth.true_mass());
    for e in Element::ALL {
        let (declared, true_kg) = (p.element(e).kg(), truth.true_element(e));
        assert!(
            (declared - true_kg).abs() <= tol,
            "{rel}: {e} declared {declared} kg, true {true_kg} kg (tolerance {tol})"
        );
    }
}

#[test]
fn every_passport_file_reads_back_into_the_units_passport_and_truth() {
    let (y, dir) = written(400, 21);
    for i in 0..y.units().len() {
        check_unit(&y, i, dir.path());
    }
}

#[test]
fn every_form_is_present_and_a_batch_import_accepts_all_of_them() {
    let (y, dir) = written(400, 22);
    let with_file = y
        .units()
        .iter()
        .filter(|u| u.passport_path().is_some())
        .count();
    for form in [
        PassportForm::BatteryPass120,
        PassportForm::CatenaX610,
        PassportForm::Idta,
        PassportForm::GbtIntake,
        PassportForm::Declared,
    ] {
        let n = y.units().iter().filter(|u| u.form() == form).count();
        assert!(n >= 20, "{} units of {}", n, form.name());
    }
    let summary = import_paths(&[dir.path().join("passports")]);
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    assert_eq!(summary.accepted.len(), with_file);
}

#[test]
fn units_without_a_passport_are_listed_with_their_weighed_mass() {
    let (y, dir) = written(200, 23);
    let csv = std::fs::read_to_string(dir.path().join("intake-declared.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("lot,chemistry,unit_type,weighed_mass_kg,country")
    );
    let declared: Vec<_> = y
        .units()
        .iter()
        .filter(|u| u.form() == PassportForm::Declared)
        .collect();
    assert_eq!(lines.clone().count(), declared.len());
    for (line, unit) in lines.zip(declared) {
        let cols: Vec<&str> = line.split(',').collect();
        let lot = &y.lots()[unit.lot()];
        assert_eq!(cols[0], lot.id().as_str());
        assert_eq!(cols[3].parse::<f64>().unwrap(), lot.booked_mass());
        let p = unit.passport().unwrap();
        assert_eq!(p.mass().kg(), lot.booked_mass());
        assert_eq!(p.content().unwrap().source, ContentSource::Estimated);
    }
}
