//! The data downstream facilities send the first recycler: what a plant
//! running remine exports, and how the first recycler's report takes it in.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use remine_reporting::*;

#[test]
fn a_remine_plant_exports_what_it_made_from_the_lots_it_received() {
    let d = export_downstream(&common::smelter_plant()).unwrap();
    assert_eq!(d.facility().name, "Downstream Hydromet SA");
    let outputs: Vec<_> = d
        .outputs()
        .iter()
        .map(|o| {
            (
                o.lot_id.as_str(),
                o.fraction_type,
                o.at_rm_calculation_point,
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [
            ("NIX", FractionType::Product, true),
            ("RESX", FractionType::Residue, false)
        ]
    );
    // The leach batch took 18 kg Ni with BM2 and 6 kg with BMX.
    let nix = &d.outputs()[0];
    assert_eq!(nix.sources.len(), 2);
    let bm2 = nix
        .sources
        .iter()
        .find(|s| s.upstream_lot.as_str() == "BM2")
        .unwrap();
    assert!((bm2.share - 0.75).abs() < 1e-12);
}

#[test]
fn the_first_recycler_credits_a_downstream_plants_products_to_its_units() {
    let exported = export_downstream(&common::smelter_plant())
        .unwrap()
        .to_json()
        .unwrap();
    let mut input = common::input();
    input.downstream = vec![import_downstream(&exported, "hydromet-be.json").unwrap()];
    let r = compute(&input).unwrap();
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    // NIX holds 22 kg Ni, 3/4 of it from BM2, made in Belgium (EU):
    // 16.5 kg join NI1 33, BM1's credit 32.4 and U3's 8.5.
    assert!((ni.m_output_eu_tonnes * 1000.0 - (33.0 + 32.4 + 8.5 + 16.5)).abs() < 1e-9);
    assert_eq!(ni.m_output_non_eu_tonnes, 0.0);
    let step = r.steps.last().unwrap();
    assert_eq!(
        (step.step_id.as_str(), step.facility.country.as_str()),
        ("N_3", "BE")
    );
    assert!(step.name.contains("Downstream Hydromet SA"));
    assert_eq!(r.downstream_facilities[0].name, "Downstream Hydromet SA");
}

#[test]
fn an_export_without_received_lots_has_no_outputs() {
    let d = export_downstream(&common::input()).unwrap();
    assert!(d.outputs().is_empty());
}
