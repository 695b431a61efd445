//! The recovery rates of a small hand-built plant year (tests/common),
//! written out by hand: what counts, what does not, and where.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use remine_reporting::*;

fn report() -> RecoveryReport {
    compute(&common::input()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Checks one element's total row: input, output made in the EU and
/// outside it, and the part credited by efficiency, all in kg.
fn check(r: &RecoveryReport, element: &str, input: f64, eu: f64, non_eu: f64, credited: f64) {
    let row = r.total_row("lithium-based", element).unwrap();
    assert!(
        close(row.m_input_tonnes, input / 1000.0),
        "{element} input {}",
        row.m_input_tonnes
    );
    assert!(
        close(row.m_output_eu_tonnes, eu / 1000.0),
        "{element} EU {}",
        row.m_output_eu_tonnes
    );
    assert!(
        close(row.m_output_non_eu_tonnes, non_eu / 1000.0),
        "{element} non-EU {}",
        row.m_output_non_eu_tonnes
    );
    assert!(
        close(row.m_output_credited_tonnes, credited / 1000.0),
        "{element} credited {}",
        row.m_output_credited_tonnes
    );
    let rate = (eu + non_eu) / input * 100.0;
    assert!(
        close(row.r_rm.unwrap(), rate),
        "{element} rRM {:?} vs {rate}",
        row.r_rm
    );
}

#[test]
fn nickel_counts_products_of_the_year_credits_for_stock_and_the_smelters_alloy() {
    // Input: P1 60 + P2 40 + U3 10 = 110 kg (P0 came in 2025).
    // In the EU: NiSO4 NI1 33; BM1 half in stock, 36 kg Ni at 0.9 = 32.4;
    // U3 unprocessed, 10 kg at 0.85 = 8.5. Outside: the alloy's 17 kg.
    check(&report(), "Ni", 110.0, 33.0 + 32.4 + 8.5, 17.0, 32.4 + 8.5);
}

#[test]
fn cobalt_made_in_the_next_year_is_credited_to_this_one() {
    // CoSO4 CO1 (made in 2027) 9; BM1 stock 10.8 at 0.9 = 9.72; U3 2 at
    // 0.85 = 1.7; the alloy 5.
    check(&report(), "Co", 32.0, 9.0 + 9.72 + 1.7, 5.0, 9.72 + 1.7);
}

#[test]
fn lithium_in_residue_and_slag_never_counts_and_output_after_x_plus_2_is_not_credited() {
    // Li2CO3 LI1 (2028) 5 counts; LI2 (2029) 0.5 does not; the residue's
    // 1 kg and the slag's 3 kg never count; BM1 stock 7.2 at 0.8 = 5.76;
    // U3 2 at 0.7 = 1.4.
    let r = report();
    check(&r, "Li", 22.0, 5.0 + 5.76 + 1.4, 0.0, 5.76 + 1.4);
    let slag: Vec<_> = r.warnings_of("lithium-in-slag").collect();
    assert_eq!(slag.len(), 1);
    assert_eq!(slag[0].lot.as_deref(), Some("SLAG1"));
    assert!(
        slag[0].message.contains("3.000 kg Li"),
        "{}",
        slag[0].message
    );
    let late: Vec<_> = r.warnings_of("output-after-x-plus-2").collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].lot.as_deref(), Some("LI2"));
}

#[test]
fn copper_counts_the_copper_fraction() {
    // CU1 60; BM1 stock 2 at 0.5 = 1; U3 8 at 0.8 = 6.4; the alloy 0.8.
    check(&report(), "Cu", 78.0, 60.0 + 1.0 + 6.4, 0.8, 1.0 + 6.4);
}

#[test]
fn targets_are_checked_against_the_rate() {
    let r = report();
    let li = r.total_row("lithium-based", "Li").unwrap();
    // 12.16 / 22 = 55.3 %: above 50 % (2027), below 80 % (2031).
    let met: Vec<_> = li
        .targets
        .iter()
        .map(|t| (t.by_end_of, t.target_pct, t.met))
        .collect();
    assert_eq!(met, [(2027, 50.0, true), (2031, 80.0, false)]);
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    assert!(
        ni.targets.iter().all(|t| !t.met),
        "90.9 / 110 = 82.6 % meets neither"
    );
    let mn = r.total_row("lithium-based", "Mn").unwrap();
    assert_eq!((mn.r_rm, mn.targets.len()), (None, 0));
}

#[test]
fn each_member_state_of_collection_gets_its_share() {
    let r = report();
    let stream = &r.streams[0];
    let states: Vec<_> = stream
        .by_member_state
        .iter()
        .map(|b| b.member_state_of_collection.clone().unwrap())
        .collect();
    assert_eq!(states, ["DE", "FR"]);
    let de = &stream.by_member_state[0];
    let ni = de.rows.iter().find(|r| r.element == "Ni").unwrap();
    // DE holds 60 of D1's 100 kg Ni: NI1 33 x 0.6, stock credit 32.4 x 0.6,
    // alloy 17 x 0.6 (outside the EU), and all of U3's 8.5.
    assert!(close(ni.m_input_tonnes, 0.070));
    assert!(close(
        ni.m_output_eu_tonnes * 1000.0,
        33.0 * 0.6 + 32.4 * 0.6 + 8.5
    ));
    assert!(close(ni.m_output_non_eu_tonnes * 1000.0, 17.0 * 0.6));
    let fr = &stream.by_member_state[1];
    assert_eq!(fr.input_units, 1);
    let co = fr.rows.iter().find(|r| r.element == "Co").unwrap();
    // FR brought 10 of D1's 30 kg Co.
    assert!(close(
        co.r_rm.unwrap(),
        (9.0 + 9.72 + 5.0) / 3.0 / 10.0 * 100.0
    ));
}

#[test]
fn recycling_efficiency_counts_element_mass_of_products_and_mass_of_side_fractions() {
    let r = report();
    let total = &r.streams[0].total;
    // Products carry Ni 33 + Co 9 + Li 5; Cu fraction 80 and steel 200 by
    // mass; credits 48.88 (BM1) + 18 (U3) by element mass; the alloy 25.
    let output = 33.0
        + 9.0
        + 5.0
        + 80.0
        + 200.0
        + (32.4 + 9.72 + 5.76 + 1.0)
        + (8.5 + 1.7 + 1.4 + 6.4)
        + 25.0;
    assert!(close(total.m_input_tonnes, 1.1));
    assert!(
        close(total.m_output_tonnes * 1000.0, output),
        "{}",
        total.m_output_tonnes
    );
    assert!(close(total.r_re.unwrap(), output / 1100.0 * 100.0));
}

#[test]
fn per_step_masses_sum_to_the_totals() {
    let r = report();
    let ids: Vec<_> = r.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids, ["N_0", "N_1", "N_2", "N_3"]);
    for el in ["Co", "Cu", "Li", "Ni"] {
        let total = r.total_row("lithium-based", el).unwrap();
        let sum = |f: fn(&StepElementRow) -> f64| -> f64 {
            r.steps
                .iter()
                .map(|s| f(s.element_rows.iter().find(|x| x.element == el).unwrap()))
                .sum()
        };
        assert!(
            close(sum(|x| x.m_output_eu_tonnes), total.m_output_eu_tonnes),
            "{el}"
        );
        assert!(
            close(
                sum(|x| x.m_output_non_eu_tonnes),
                total.m_output_non_eu_tonnes
            ),
            "{el}"
        );
        assert!(
            close(
                sum(|x| x.m_output_credited_tonnes),
                total.m_output_credited_tonnes
            ),
            "{el}"
        );
        let n0 = r.steps[0]
            .element_rows
            .iter()
            .find(|x| x.element == el)
            .unwrap();
        assert!(close(n0.m_input_tonnes, total.m_input_tonnes), "{el}");
    }
    // Ni through the steps: N_0 passes D1's 100 kg on and keeps U3's 10;
    // N_1 passes 36 to N_2 and ships 18 to the smelter (N_3), keeps 36 in
    // stock and loses 10; N_2 makes 33 and leaves 1.5 in the residue.
    let ni = |s: usize| {
        r.steps[s]
            .element_rows
            .iter()
            .find(|x| x.element == "Ni")
            .unwrap()
            .clone()
    };
    assert!(close(ni(0).m_intermediate_tonnes, 0.100) && close(ni(0).m_stock_tonnes, 0.010));
    assert!(close(ni(1).m_input_tonnes, 0.100) && close(ni(1).m_intermediate_tonnes, 0.054));
    assert!(close(ni(1).m_stock_tonnes, 0.036) && close(ni(1).m_other_tonnes, 0.010));
    assert!(close(ni(2).m_input_tonnes, 0.036) && close(ni(2).m_output_eu_tonnes, 0.033));
    assert!(close(ni(2).m_other_tonnes, 0.0015));
    assert!(close(ni(3).m_input_tonnes, 0.018) && close(ni(3).m_output_non_eu_tonnes, 0.017));
}

#[test]
fn black_mass_is_an_intermediate_labelled_with_its_chemistry() {
    let r = report();
    let n1 = &r.steps[1];
    let bm: Vec<_> = n1
        .intermediate_fractions
        .iter()
        .filter(|f| f.type_label == "black mass-NMC")
        .map(|f| f.further_step.clone().unwrap())
        .collect();
    // Half of BM1 goes on to the plant's hydromet line, BM2 to the smelter.
    assert_eq!(bm, ["N_2", "N_3"]);
    assert_eq!(r.main_treated_chemistries, ["NMC"]);
    for s in &r.steps {
        assert!(
            s.output_fractions
                .iter()
                .all(|f| !f.type_label.starts_with("black mass"))
        );
    }
    assert!(
        r.output_lots
            .iter()
            .all(|o| !o.type_label.starts_with("black mass"))
    );
}

#[test]
fn outputs_are_split_into_made_in_the_eu_and_outside() {
    let r = report();
    let made: Vec<_> = r
        .output_lots
        .iter()
        .map(|o| (o.lot_id.as_str(), o.made_in_eu))
        .collect();
    assert_eq!(
        made,
        [
            ("CU1", true),
            ("NI1", true),
            ("CO1", true),
            ("LI1", true),
            ("ALLOY1", false)
        ]
    );
    assert_eq!(r.member_states_of_recycling, ["DE", "NO"]);
    assert!(!r.steps[3].facility.in_eu);
}

#[test]
fn the_uncertainty_comes_from_the_reconciliation_where_given() {
    let r = report();
    let ni = r.total_row("lithium-based", "Ni").unwrap();
    assert_eq!(ni.uncertainty_basis, "reconciliation");
    assert!(close(ni.r_rm_sigma.unwrap(), ni.r_rm.unwrap() * 0.01));
    let co = r.total_row("lithium-based", "Co").unwrap();
    assert_eq!(co.uncertainty_basis, "content-sources");
    assert!(co.r_rm_sigma.unwrap() > 0.0);
}

#[test]
fn stock_credited_by_efficiency_is_listed_per_kind_of_lot() {
    let r = report();
    let d = &r.deferred_output_allocation;
    assert!(d.applied);
    assert_eq!(d.years, [2027, 2028]);
    let ni: Vec<_> = d
        .credits
        .iter()
        .filter(|c| c.element == "Ni")
        .map(|c| {
            (
                c.stage.as_str(),
                c.lots,
                (c.credited_tonnes * 1e6).round() / 1e3,
            )
        })
        .collect();
    assert_eq!(ni, [("black-mass:NMC622", 1, 32.4), ("input-unit", 1, 8.5)]);
}

#[test]
fn a_fully_assayed_year_has_no_warning_but_the_ones_it_earns() {
    let codes: Vec<_> = report().warnings.iter().map(|w| w.code.clone()).collect();
    assert_eq!(codes, ["output-after-x-plus-2", "lithium-in-slag"]);
}
