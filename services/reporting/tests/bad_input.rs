//! Bad input gives a named error, or a warning printed in the report
//! itself; never a silently wrong rate.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{edge, id, input, lot, smelter_json};
use remine_domain::{Element, LotKind};
use remine_reporting::*;

/// The report's warnings with `code`, and that each is printed in the HTML.
fn warned(r: &RecoveryReport, code: &str) -> Vec<Warning> {
    let found: Vec<Warning> = r.warnings_of(code).cloned().collect();
    let html = to_html(r);
    for w in &found {
        assert!(html.contains(code), "the HTML does not print {code}");
        let start: String = w.message.chars().take(20).collect();
        assert!(
            html.contains(&start.replace('&', "&amp;")),
            "the HTML does not print {}",
            w.message
        );
    }
    found
}

fn downstream_error(json: &str) -> ReportError {
    import_downstream(json, "sent.json").unwrap_err()
}

fn smelter_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&smelter_json()).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn a_year_without_input_units_is_an_error_naming_the_year() {
    let mut i = input();
    i.year = 2030;
    let e = compute(&i).unwrap_err();
    assert!(matches!(e, ReportError::NoData { year: 2030 }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "no data for 2030: no input unit was received in that calendar year"
    );
}

#[test]
fn black_mass_given_as_a_downstream_output_is_refused_by_name() {
    let json = smelter_with(|v| v["outputs"][0]["fractionType"] = "black-mass".into());
    let e = downstream_error(&json);
    assert!(matches!(e, ReportError::BlackMassAsOutput { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("ALLOY1")
            && msg.contains("outputs[0].fractionType")
            && msg.contains("sent.json"),
        "{msg}"
    );

    let json = smelter_with(|v| v["outputs"][1]["type"] = "black mass-NMC".into());
    let e = downstream_error(&json);
    assert!(matches!(e, ReportError::BlackMassAsOutput { .. }), "{e:?}");
    assert!(e.to_string().contains("outputs[1].type"), "{e}");
}

#[test]
fn black_mass_listed_for_recycling_efficiency_is_refused_by_name() {
    let text = format!(
        "{}\n[recycling_efficiency]\nfractions = [\"product\", \"black-mass\"]\n",
        common::FACILITY
    );
    let e = FacilityConfig::from_toml(&text, "plant.toml").unwrap_err();
    assert!(matches!(e, ReportError::BlackMassAsOutput { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("plant.toml, field recycling_efficiency.fractions"),
        "{e}"
    );
}

#[test]
fn an_output_lot_without_assays_is_a_printed_warning() {
    let mut i = input();
    i.assays.remove(&id("NI1"));
    let r = compute(&i).unwrap();
    let w = warned(&r, "output-lot-without-assays");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].lot.as_deref(), Some("NI1"));
    // The rate is still computed from the booked content, and says so.
    assert!(
        w[0].message.contains("as booked (assayed)"),
        "{}",
        w[0].message
    );
}

#[test]
fn downstream_shares_below_one_are_a_printed_warning_and_only_what_is_given_counts() {
    let mut i = input();
    let json = smelter_with(|v| v["outputs"][0]["sources"][0]["share"] = 0.5.into());
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let r = compute(&i).unwrap();
    let w = warned(&r, "shares-do-not-sum-to-one");
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("0.5000 (< 1)"), "{}", w[0].message);
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    assert!(
        (ni.m_output_non_eu_tonnes - 0.0085).abs() < 1e-12,
        "half of the alloy's 17 kg"
    );
}

#[test]
fn downstream_shares_above_one_are_scaled_to_one_with_a_printed_warning() {
    let mut i = input();
    let json = smelter_with(|v| {
        v["outputs"][0]["sources"] = serde_json::json!([
            {"upstreamLotId": "BM2", "share": 0.9},
            {"upstreamLotId": "BM2", "share": 0.6}
        ])
    });
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let r = compute(&i).unwrap();
    let w = warned(&r, "shares-do-not-sum-to-one");
    assert!(w[0].message.contains("1.5000 (> 1)"), "{}", w[0].message);
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    assert!(
        (ni.m_output_non_eu_tonnes - 0.017).abs() < 1e-12,
        "never more than the alloy holds"
    );
}

#[test]
fn a_lot_whose_edges_take_more_than_its_mass_is_a_printed_warning() {
    let mut i = input();
    i.edges.push(edge("LB1", "RES1", 30.0));
    let r = compute(&i).unwrap();
    let w = warned(&r, "shares-do-not-sum-to-one");
    assert_eq!(w[0].lot.as_deref(), Some("LB1"));
    assert!(
        w[0].message.contains("230.000 kg of its 200.000 kg"),
        "{}",
        w[0].message
    );
}

#[test]
fn a_downstream_document_naming_none_of_the_plants_lots_is_an_error_naming_the_field() {
    let mut i = input();
    let json = smelter_with(|v| {
        v["outputs"][0]["sources"][0]["upstreamLotId"] = "BM9".into();
        v["outputs"][1]["sources"][0]["upstreamLotId"] = "BM8".into();
    });
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let e = compute(&i).unwrap_err();
    assert_eq!(
        e.to_string(),
        "downstream facility data smelter.json, field outputs[0].sources[0].upstreamLotId: \
         lot 'BM9' is not a lot of this plant, nor is any other the document names"
    );
}

#[test]
fn lots_of_other_suppliers_in_a_downstream_document_are_left_out_with_a_printed_warning() {
    let mut i = input();
    let json = smelter_with(|v| v["outputs"][0]["sources"][0]["upstreamLotId"] = "BM9".into());
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let r = compute(&i).unwrap();
    let w = warned(&r, "downstream-lot-unknown");
    assert!(w[0].message.contains("(BM9)"), "{}", w[0].message);
    assert_eq!(
        r.total_row("lithium-based", "Ni")
            .unwrap()
            .m_output_non_eu_tonnes,
        0.0
    );
}

#[test]
fn a_downstream_document_against_its_schema_is_an_error_naming_the_path() {
    let e = downstream_error(&smelter_with(|v| {
        v["outputs"][0]["sources"][0]["share"] = 1.5.into()
    }));
    assert!(
        e.to_string().contains("field /outputs/0/sources/0/share"),
        "{e}"
    );
    let e = downstream_error(&smelter_with(|v| {
        v["facility"]["country"] = "Norway".into()
    }));
    assert!(e.to_string().contains("field /facility/country"), "{e}");
    let e = downstream_error(&smelter_with(|v| v["outputs"][0]["stepId"] = "S9".into()));
    assert!(
        e.to_string()
            .contains("field outputs[0].stepId: step 'S9' is not among"),
        "{e}"
    );
    let e = downstream_error(&smelter_with(|v| v["outputs"][0]["massKg"] = 2.0.into()));
    assert!(
        e.to_string()
            .contains("field outputs[0].elementsKg: elements sum to 22.800 kg"),
        "{e}"
    );
    let e = downstream_error("{ not json");
    assert!(
        e.to_string()
            .contains("sent.json, field (document): not JSON"),
        "{e}"
    );
}

#[test]
fn a_cyclic_genealogy_is_an_error() {
    let mut i = input();
    i.edges.push(edge("NI1", "D1", 1.0));
    let e = compute(&i).unwrap_err();
    assert!(matches!(e, ReportError::Genealogy(_)), "{e:?}");
    assert!(e.to_string().contains("cyclic"), "{e}");
}

#[test]
fn units_without_a_country_are_reported_under_an_unknown_member_state_with_a_warning() {
    let mut i = input();
    i.lots.push(lot(
        "U4",
        LotKind::InputUnit,
        2026,
        50.0,
        &[(Element::Ni, 5.0)],
        None,
    ));
    let r = compute(&i).unwrap();
    assert_eq!(warned(&r, "unknown-member-state").len(), 1);
    let last = r.streams[0].by_member_state.last().unwrap();
    assert_eq!(
        (last.member_state_of_collection.clone(), last.input_units),
        (None, 1)
    );
}

#[test]
fn stock_of_a_kind_without_an_efficiency_is_not_credited_and_says_so() {
    let mut i = input();
    let text =
        common::FACILITY.replace("[deferred_credit.input-unit]", "[deferred_credit.solution]");
    i.facility = FacilityConfig::from_toml(&text, "plant.toml").unwrap();
    let r = compute(&i).unwrap();
    let w = warned(&r, "no-deferred-efficiency");
    assert_eq!(w[0].field.as_deref(), Some("deferred_credit.input-unit"));
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    assert!(
        (ni.m_output_credited_tonnes - 0.0324).abs() < 1e-12,
        "BM1's credit only"
    );
}

#[test]
fn an_input_unit_without_content_is_a_printed_warning() {
    let mut i = input();
    i.lots
        .push(lot("U5", LotKind::InputUnit, 2026, 50.0, &[], Some("DE")));
    let r = compute(&i).unwrap();
    assert_eq!(
        warned(&r, "input-unit-without-content")[0].lot.as_deref(),
        Some("U5")
    );
}

fn config_error(edit: (&str, &str)) -> String {
    let text = common::FACILITY.replacen(edit.0, edit.1, 1);
    FacilityConfig::from_toml(&text, "plant.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_facility_file_error_names_the_file_and_field() {
    assert_eq!(
        config_error(("id = \"N_1\"", "id = \"N_5\"")),
        "facility configuration plant.toml, field steps[1].id: 'N_5' should be N_1: steps are numbered in order from N_0"
    );
    assert!(
        config_error(("consumes = [\"discharge-batch\"]", "consumes = [\"pizza\"]"))
            .contains("field steps[1].consumes: unknown lot kind 'pizza'")
    );
    assert!(
        config_error(("Ni = 0.9\n", "Ni = 1.2\n"))
            .contains("field deferred_credit.black-mass.Ni: efficiency 1.2 is not between 0 and 1")
    );
    assert!(
        config_error(("country = \"DE\"", "country = \"Germany\""))
            .contains("field facility.country")
    );
    assert!(
        config_error(("standard = \"GB\"", "standard = \"ANSI\""))
            .contains("field products.\"NiSO4.6H2O\".standard: 'ANSI' is not one of")
    );
    assert!(config_error(("[facility]", "[facility]\ncolour = \"red\"")).contains("colour"));
}

#[test]
fn a_downstream_document_naming_a_lot_the_plant_used_up_is_a_printed_warning() {
    let mut i = input();
    let json = smelter_with(|v| v["outputs"][0]["sources"][0]["upstreamLotId"] = "D1".into());
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let r = compute(&i).unwrap();
    let w = warned(&r, "downstream-lot-used-up");
    assert!(w[0].message.contains("(D1)"), "{}", w[0].message);
}
