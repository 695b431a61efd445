//! Every defective document of ../shared/examples/passports/broken gets the
//! verdict its README asks for, with a message that names the file and the
//! field or value at fault.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod common;

use remine_domain::{Chemistry, ContentSource};
use remine_passports::read_unit;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a good importer says about a case.
enum Verdict {
    /// Refused; the message contains this.
    Refused(&'static str),
    /// Accepted; one of its warnings, naming the case's file, contains this.
    Accepted(&'static str),
    /// Accepted without a warning (a defect only a batch can see).
    Clean,
}
use Verdict::{Accepted, Clean, Refused};

/// The `file` of each case in expected.jsonl.
fn expected_files(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_to_string(dir.join("expected.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["case"].as_str().unwrap().to_string(),
                dir.join(v["file"].as_str().unwrap()),
            )
        })
        .collect()
}

fn check(dir: &Path, case: &str, verdict: Verdict) {
    let file = expected_files(dir)
        .into_iter()
        .find(|(c, _)| c == case)
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("{case} is not in expected.jsonl"));
    let got = read_unit(&dir.join(case));
    match (got, verdict) {
        (Err(e), Refused(fragment)) => {
            let message = e.to_string();
            assert!(message.contains(fragment), "{case}: {message}");
            assert_eq!(e.file(), file, "{case}: the message names the wrong file");
            assert!(
                message.starts_with(&file.display().to_string()),
                "{case}: {message}"
            );
        }
        (Ok(unit), Accepted(fragment)) => {
            assert!(
                unit.warnings.iter().any(|w| w.contains(fragment)),
                "{case}: {:?}",
                unit.warnings
            );
            let file = file.display().to_string();
            assert!(
                unit.warnings.iter().any(|w| w.starts_with(&file)),
                "{case}: no warning names {file}: {:?}",
                unit.warnings
            );
        }
        (Ok(unit), Clean) => assert!(unit.warnings.is_empty(), "{case}: {:?}", unit.warnings),
        (Err(e), Accepted(_) | Clean) => panic!("{case} should be accepted, was refused: {e}"),
        (Ok(unit), Refused(fragment)) => {
            panic!("{case} should be refused ({fragment}), was accepted: {unit:?}")
        }
    }
}

#[test]
fn every_broken_case_gets_its_verdict() {
    let Some(examples) = common::shared_examples("every_broken_case_gets_its_verdict") else {
        return;
    };
    let dir = examples.join("broken");
    let table = [
        (
            "01_composition_over_100pct",
            Refused("declared concentrations sum to 132.2 % (> 100 %)"),
        ),
        (
            "02_negative_mass",
            Refused("batteryMass must be > 0 (got -493.5 kg)"),
        ),
        (
            "03_element_mass_exceeds_battery",
            Refused("Ni 457.080 kg exceeds battery mass 351.600 kg"),
        ),
        (
            "04_absurd_value_1e38",
            Refused("implausible value 1.6e38 g for Li"),
        ),
        (
            "05_malformed_uuid",
            Refused("passportIdentifier is not a valid UUID"),
        ),
        (
            "06_gbt_code_23_chars.json",
            Refused("GB/T 34014 code must have 24 characters, got 23"),
        ),
        (
            "07_gbt_invalid_product_type.json",
            Refused("unknown product type X in GB/T code (expected P/M/C)"),
        ),
        (
            "08_idta_grams_as_kg",
            Refused("Ni 46703.000 kg exceeds battery mass 367.100 kg - looks like grams"),
        ),
        (
            "09_missing_chemistry_no_composition",
            Accepted("no chemistry and no composition - sampling/assay required"),
        ),
        ("10_unknown_unit", Refused("unknown mass unit 'unit:kgm'")),
        ("11_duplicate_id_a", Clean),
        ("11_duplicate_id_b", Clean),
        (
            "12_json_syntax_error",
            Refused("invalid JSON at line 19 column 5"),
        ),
        (
            "13_utf16_encoded.json",
            Accepted("file is UTF-16LE (RFC 8259 requires UTF-8); decoded"),
        ),
        ("14_empty_file", Refused("empty file")),
        (
            "15_gbt_invalid_month.json",
            Refused("invalid production month D in GB/T code"),
        ),
        (
            "16_gbt_chemistry_conflict.json",
            Refused("GB/T code says LFP, form says NMC811: hold for assay"),
        ),
        (
            "17_bp_identifier_pattern",
            Refused(
                "batteryPassportIdentifier does not match ^urn:[a-z0-9]+:[a-z0-9]+$ (got 'urn:CVL:CVL-22P-3153270')",
            ),
        ),
        (
            "18_idta_langstring_object",
            Accepted("ManufacturerName should be a list of language strings"),
        ),
        (
            "19_percent_volume",
            Accepted("volume percent cannot be converted to element mass"),
        ),
    ];
    let listed: BTreeSet<String> = expected_files(&dir).into_iter().map(|(c, _)| c).collect();
    let covered: BTreeSet<String> = table.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(
        listed, covered,
        "every case of expected.jsonl has a verdict"
    );
    for (case, verdict) in table {
        check(&dir, case, verdict);
    }
}

#[test]
fn a_unit_without_chemistry_or_composition_is_never_given_a_default_chemistry() {
    let Some(examples) = common::shared_examples(
        "a_unit_without_chemistry_or_composition_is_never_given_a_default_chemistry",
    ) else {
        return;
    };
    let unit = read_unit(&examples.join("broken/09_missing_chemistry_no_composition")).unwrap();
    assert_eq!(unit.passport.chemistry(), None);
    assert!(unit.passport.content().is_none());
    assert!(
        unit.passport
            .warnings()
            .iter()
            .any(|w| w.contains("sampling/assay required"))
    );
}

#[test]
fn a_composition_in_volume_percent_is_refused_and_the_unit_kept_with_its_chemistry() {
    let Some(examples) = common::shared_examples(
        "a_composition_in_volume_percent_is_refused_and_the_unit_kept_with_its_chemistry",
    ) else {
        return;
    };
    let unit = read_unit(&examples.join("broken/19_percent_volume")).unwrap();
    assert_eq!(unit.passport.chemistry(), Some(Chemistry::Lfp));
    assert_eq!(
        unit.passport.content().map(|c| c.source),
        Some(ContentSource::Estimated)
    );
}

#[test]
fn a_utf16_intake_form_is_decoded_exactly() {
    let Some(examples) = common::shared_examples("a_utf16_intake_form_is_decoded_exactly") else {
        return;
    };
    let unit = read_unit(&examples.join("broken/13_utf16_encoded.json")).unwrap();
    assert_eq!(unit.passport.id().as_str(), "0SHMEWTARW6RBDNB36449947");
    assert_eq!(unit.passport.chemistry(), Some(Chemistry::Nmc811));
    assert_eq!(unit.passport.mass().kg(), 57.11);
    assert_eq!(
        unit.passport.country_of_collection().map(|c| c.as_str()),
        Some("NO")
    );
}

#[test]
fn a_manufacturer_name_written_as_one_object_is_still_read() {
    let Some(examples) =
        common::shared_examples("a_manufacturer_name_written_as_one_object_is_still_read")
    else {
        return;
    };
    let unit = read_unit(&examples.join("broken/18_idta_langstring_object")).unwrap();
    assert_eq!(
        unit.passport.manufacturer(),
        Some("Shenghua Power Cell Co., Ltd.")
    );
}
