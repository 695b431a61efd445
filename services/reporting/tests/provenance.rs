//! Per-lot provenance records and their Catena-X recycled-content part.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::id;
use remine_reporting::*;

fn record(lot: &str) -> ProvenanceRecord {
    let input = common::input();
    ProvenanceBook::new(&input)
        .unwrap()
        .record(&id(lot))
        .unwrap()
}

fn share(r: &ProvenanceRecord, source: &str) -> f64 {
    r.sources
        .iter()
        .find(|s| s.input_lot_id == source)
        .unwrap()
        .share
}

#[test]
fn a_products_sources_share_its_payable_element() {
    let r = record("NI1");
    assert_eq!(r.share_basis, "Ni");
    // D1 took 60 kg Ni from P1 and 40 kg from P2.
    assert!((share(&r, "P1") - 0.6).abs() < 1e-9 && (share(&r, "P2") - 0.4).abs() < 1e-9);
    let states: Vec<_> = r
        .by_member_state
        .iter()
        .map(|s| (s.key.as_str(), s.share))
        .collect();
    assert_eq!(states, [("DE", 0.6), ("FR", 0.4)]);
    assert_eq!(
        r.sources[0].battery_passport_id.as_deref(),
        Some("urn:test:P1")
    );
    assert_eq!(r.assays.len(), 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn the_catenax_part_splits_recycled_content_by_origin() {
    let mut input = common::input();
    input
        .origins
        .insert(id("P2"), WasteOrigin::ManufacturingWaste);
    let r = ProvenanceBook::new(&input)
        .unwrap()
        .record(&id("CO1"))
        .unwrap();
    let m = &r.secondary_material_content["secondaryMaterialContent"][0];
    let pct = |p: &str| m.pointer(p).and_then(|v| v.as_f64()).unwrap();
    // Co: P1 20 of 30 kg (a 500 kg pack: automotive), P2 10 (manufacturing waste).
    let auto = pct(
        "/inorganic/secondaryInorganic/postConsumerAutomotive/chemicalRecycling/percentageOfMaterialWeight",
    );
    let pre = pct(
        "/inorganic/secondaryInorganic/preConsumer/mechanicalRecycling/percentageOfMaterialWeight",
    );
    assert!(
        (auto - 66.666667).abs() < 1e-5 && (pre - 33.333333).abs() < 1e-5,
        "{auto} {pre}"
    );
    assert_eq!(
        pct("/inorganic/primaryInorganic/percentageOfMaterialWeight"),
        0.0
    );
    assert_eq!(m["unitOfMeasure"]["materialNetMass"], 45.0);
    assert_eq!(
        m["materialNameStandardized"]["referencedStandardID"],
        "GB/T 26523"
    );
    assert_eq!(r.secondary_material_content["orderNumber"], "CO1");
}

#[test]
fn a_side_fraction_is_mechanically_recycled_and_shared_by_mass() {
    let r = record("CU1");
    assert_eq!(r.share_basis, "mass");
    let m = &r.secondary_material_content["secondaryMaterialContent"][0];
    let mech =
        &m["inorganic"]["secondaryInorganic"]["postConsumerAutomotive"]["mechanicalRecycling"];
    assert_eq!(mech["percentageOfMaterialWeight"], 100.0);
}

#[test]
fn black_mass_has_a_record_but_is_never_at_the_calculation_point() {
    let r = record("BM1");
    assert!(r.is_black_mass && !r.at_rm_calculation_point);
    assert_eq!(r.product, "black mass-NMC");
}

#[test]
fn a_product_without_assays_or_naming_says_so_in_its_record() {
    let mut input = common::input();
    input.assays.clear();
    input.facility = FacilityConfig::from_toml(
        &common::FACILITY.replace("[products.\"Li2CO3\"]", "[products.\"Li2CO3-old\"]"),
        "plant.toml",
    )
    .unwrap();
    let r = ProvenanceBook::new(&input)
        .unwrap()
        .record(&id("LI1"))
        .unwrap();
    let codes: Vec<_> = r.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(codes, ["output-lot-without-assays", "product-not-named"]);
}

#[test]
fn the_asset_id_is_stable_and_an_input_unit_has_no_record() {
    assert_eq!(record("NI1").global_asset_id, record("NI1").global_asset_id);
    assert_ne!(record("NI1").global_asset_id, record("CO1").global_asset_id);
    let input = common::input();
    let book = ProvenanceBook::new(&input).unwrap();
    let e = book.record(&id("P1")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("lot P1: an input unit has no provenance record"),
        "{e}"
    );
    let e = book.record(&id("NOPE")).unwrap_err();
    assert_eq!(e.to_string(), "lot NOPE: not among the plant's lots");
}

#[test]
fn the_records_of_a_year_are_its_output_lots() {
    let input = common::input();
    let book = ProvenanceBook::new(&input).unwrap();
    let lots: Vec<_> = book
        .records_of_year(2026)
        .unwrap()
        .into_iter()
        .map(|r| r.lot_id)
        .collect();
    assert_eq!(lots, ["CU1", "NI1"]);
}
