//! The facility configuration file.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use remine_domain::{Chemistry, Element, LotKind, ProductKind, SideFraction};
use remine_reporting::*;

fn example() -> FacilityConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/facility.example.toml");
    FacilityConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

#[test]
fn the_shipped_example_parses() {
    let c = example();
    let steps: Vec<_> = c.steps().iter().map(|s| s.id()).collect();
    assert_eq!(steps, ["N_0", "N_1", "N_2"]);
    assert!(c.facility().in_eu());
    assert_eq!(c.input_ewc_code(), "16 06 05");
    assert!(c.product_naming("NiSO4.6H2O").is_some());
}

#[test]
fn a_lot_belongs_to_the_step_that_consumes_what_it_was_made_from() {
    let c = example();
    let check =
        |kind: LotKind, step: Option<usize>| assert_eq!(c.step_consuming(kind), step, "{kind:?}");
    check(LotKind::InputUnit, Some(0));
    check(LotKind::DischargeBatch, Some(1));
    check(LotKind::BlackMass(Chemistry::Lfp), Some(2));
    check(LotKind::Solution, Some(2));
    check(LotKind::Product(ProductKind::NickelSulphate), None);
}

#[test]
fn efficiencies_are_found_by_kind_code_or_its_prefix() {
    let c = example();
    let nmc = LotKind::BlackMass(Chemistry::Nmc811);
    assert_eq!(c.deferred_efficiency(nmc, Element::Ni), Some(0.93));
    assert_eq!(c.deferred_efficiency(nmc, Element::Mn), None);
    assert_eq!(c.deferred_efficiency(LotKind::Residue, Element::Ni), None);
    assert!(!c.has_deferred_credit(LotKind::Residue));
}

#[test]
fn recycling_efficiency_counts_the_listed_fractions_only() {
    let c = example();
    assert!(c.counts_for_rre(LotKind::Product(ProductKind::LithiumCarbonate)));
    assert!(c.counts_for_rre(LotKind::SideFraction(SideFraction::Steel)));
    assert!(!c.counts_for_rre(LotKind::SideFraction(SideFraction::Plastics)));
    assert!(!c.counts_for_rre(LotKind::Residue));
}

#[test]
fn the_first_step_must_take_the_input_fraction() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/facility.example.toml"
    ))
    .unwrap()
    .replacen("consumes = [\"input-unit\"]", "consumes = [\"loss\"]", 1);
    let e = FacilityConfig::from_toml(&text, "plant.toml").unwrap_err();
    assert!(
        e.to_string()
            .contains("field steps[0].consumes: the first step (N_0) must consume"),
        "{e}"
    );
}
