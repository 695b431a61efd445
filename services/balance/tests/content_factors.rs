//! Factored contents: streams whose booked content shares one error (a
//! chemistry estimate) carry one content factor, which the assays
//! downstream correct for all of them at once; each stream keeps a small
//! independent error of its own.

#![allow(clippy::unwrap_used)]

use remine_balance::{
    Assay, BalanceError, Balances, Class, Endpoint, NetworkBuilder, Options, Reading, Variable,
    mass_balance, reconcile,
};
use remine_domain::Element;

const NI: Element = Element::Ni;

/// A shredder fed `units` (mass kg, booked Ni fraction), all booked from
/// one estimate (factor sigma `shared`, own sigma `own`, relative), making
/// black mass of `bm_kg` assayed at `bm_ni` (3 %) and nothing else.
fn plant(units: &[(f64, f64)], shared: f64, own: f64, bm_kg: f64, bm_ni: f64) -> NetworkBuilder {
    let mut b = NetworkBuilder::new();
    b.node("shredder", Balances::total_and(&[NI]));
    b.factor("NMC622 estimate Ni", shared, "chemistry estimate");
    let total: f64 = units.iter().map(|u| u.0).sum();
    for (k, &(kg, ni)) in units.iter().enumerate() {
        let name = format!("unit {k}");
        b.stream(
            &name,
            Endpoint::Environment,
            Endpoint::node("shredder"),
            Some(Reading::kg_relative(kg, 0.002, "weighbridge").unwrap()),
        );
        b.assay(
            &name,
            NI,
            Assay::Factored {
                fraction: Reading::fraction_relative(ni, own, "chemistry estimate").unwrap(),
                factor: "NMC622 estimate Ni".into(),
            },
        );
    }
    b.stream(
        "black mass",
        Endpoint::node("shredder"),
        Endpoint::Environment,
        Some(Reading::kg_relative(bm_kg, 0.005, "belt weigher").unwrap()),
    );
    b.assay(
        "black mass",
        NI,
        Assay::Measured(Reading::fraction_relative(bm_ni, 0.03, "ICP").unwrap()),
    );
    b.stream(
        "loss",
        Endpoint::node("shredder"),
        Endpoint::Environment,
        Some(Reading::kg_relative(total - bm_kg, 0.05, "bin scale").unwrap()),
    );
    b.assay("loss", NI, Assay::Free);
    b
}

fn check(units: &[(f64, f64)], bm_kg: f64, bm_ni: f64, expected_factor: f64, tol: f64) {
    let network = plant(units, 0.2, 0.01, bm_kg, bm_ni).build().unwrap();
    let r = reconcile(&network, &Options::default()).unwrap();
    assert!(r.converged);
    let (_, factor, _) = r.factored("unit 0", NI).unwrap();
    assert_eq!(
        factor.variable,
        Variable::Factor {
            name: "NMC622 estimate Ni".into()
        }
    );
    assert_eq!(factor.class, Class::Redundant);
    let f = factor.estimate.unwrap();
    assert!(
        (f - expected_factor).abs() < tol,
        "factor {f}, expected {expected_factor}"
    );
    // Every unit's fraction moves by the same factor, its own error stays small.
    for (k, &(_, ni)) in units.iter().enumerate() {
        let x = r.fraction(&format!("unit {k}"), NI).unwrap();
        assert!((x / ni - f).abs() < 0.02, "unit {k}: {x} vs {ni} x {f}");
    }
    // The balance holds after reconciliation.
    let ni_in: f64 = (0..units.len())
        .map(|k| r.element_flow(&format!("unit {k}"), NI).unwrap())
        .sum();
    let ni_out = r.element_flow("black mass", NI).unwrap();
    assert!((ni_in - ni_out).abs() < 1e-6 * ni_in);
}

#[test]
fn a_shared_estimate_that_reads_high_is_corrected_for_every_unit_alike() {
    // Booked 10 % Ni, black mass says 9 %: the estimate is 10 % high.
    let units = [(100.0, 0.10), (200.0, 0.10), (150.0, 0.10), (50.0, 0.10)];
    check(&units, 500.0 * 0.5, 0.09 * 2.0, 0.9, 0.01);
}

#[test]
fn a_shared_estimate_that_agrees_with_the_assay_keeps_its_factor_at_one() {
    let units = [(100.0, 0.12), (300.0, 0.08)];
    let ni: f64 = 100.0 * 0.12 + 300.0 * 0.08;
    check(&units, 200.0, ni / 200.0, 1.0, 1e-6);
}

#[test]
fn the_measured_balance_reads_the_booked_content() {
    let units = [(100.0, 0.10), (200.0, 0.10)];
    let network = plant(&units, 0.2, 0.01, 150.0, 0.18).build().unwrap();
    let ni = mass_balance(&network)
        .into_iter()
        .find(|b| b.quantity == remine_balance::Quantity::Element(NI))
        .unwrap();
    let c = ni.closure.unwrap();
    assert!((c.inflow - 30.0).abs() < 1e-9, "{}", c.inflow);
}

fn refused(b: &NetworkBuilder) -> BalanceError {
    b.build().unwrap_err()
}

#[test]
fn a_factored_assay_naming_an_unknown_factor_is_refused_by_name() {
    let mut b = plant(&[(100.0, 0.1)], 0.2, 0.01, 50.0, 0.2);
    b.stream(
        "unit x",
        Endpoint::Environment,
        Endpoint::node("shredder"),
        Some(Reading::kg(10.0, 0.1, "weighbridge").unwrap()),
    );
    b.assay(
        "unit x",
        NI,
        Assay::Factored {
            fraction: Reading::fraction(0.1, 0.001, "estimate").unwrap(),
            factor: "LFP estimate Ni".into(),
        },
    );
    assert_eq!(
        refused(&b),
        BalanceError::UnknownFactor {
            factor: "LFP estimate Ni".into(),
            by: "the Ni assay of 'unit x'".into(),
        }
    );
}

#[test]
fn a_factor_declared_twice_is_refused() {
    let mut b = plant(&[(100.0, 0.1)], 0.2, 0.01, 50.0, 0.2);
    b.factor("NMC622 estimate Ni", 0.1, "again");
    assert_eq!(
        refused(&b),
        BalanceError::Duplicate {
            what: "content factor",
            name: "NMC622 estimate Ni".into(),
        }
    );
}

#[test]
fn a_factor_without_a_positive_sigma_is_refused() {
    for sigma in [0.0, -0.1, f64::NAN] {
        let b = plant(&[(100.0, 0.1)], sigma, 0.01, 50.0, 0.2);
        assert!(
            matches!(refused(&b), BalanceError::BadReading { ref instrument, .. } if instrument == "chemistry estimate"),
            "{sigma}"
        );
    }
}

/// A stream blending `units` (kg, booked Ni fraction) booked from the
/// NMC622 estimate (`shares` of it) and from passports, into the shredder.
fn blended(b: &mut NetworkBuilder, kg: f64, ni: f64, shares: Vec<(f64, &str)>) {
    b.factor("passport Ni", 0.05, "passport");
    b.stream(
        "blend",
        Endpoint::Environment,
        Endpoint::node("shredder"),
        Some(Reading::kg_relative(kg, 0.002, "weighbridge").unwrap()),
    );
    b.assay(
        "blend",
        NI,
        Assay::Blended {
            fraction: Reading::fraction_relative(ni, 0.01, "booked content").unwrap(),
            factors: shares.into_iter().map(|(s, f)| (s, f.into())).collect(),
        },
    );
}

#[test]
fn a_blended_content_answers_to_each_of_its_factors_by_its_share() {
    // 100 kg booked 10 % Ni from the estimate and a blend of 200 kg booked
    // 10 % Ni, half from the estimate and half from passports. The black
    // mass (90 kg at 10 % and 200 kg at 9 %) holds 10 % less Ni than booked.
    let mut b = plant(&[(100.0, 0.10)], 0.2, 0.01, 90.0, 0.10);
    blended(
        &mut b,
        200.0,
        0.10,
        vec![(0.5, "NMC622 estimate Ni"), (0.5, "passport Ni")],
    );
    b.stream(
        "black mass 2",
        Endpoint::node("shredder"),
        Endpoint::Environment,
        Some(Reading::kg_relative(200.0, 0.005, "belt weigher").unwrap()),
    );
    b.assay(
        "black mass 2",
        NI,
        Assay::Measured(Reading::fraction_relative(0.09, 0.03, "ICP").unwrap()),
    );
    let network = b.build().unwrap();
    let r = reconcile(&network, &Options::default()).unwrap();
    assert!(r.converged);
    let (parts, own) = r.factors("blend", NI).unwrap();
    assert_eq!(parts.len(), 2);
    assert!((parts[0].0 - 0.05).abs() < 1e-12 && (parts[1].0 - 0.05).abs() < 1e-12);
    // The fraction is the parts times their factors plus the own error.
    let x = r.fraction("blend", NI).unwrap();
    let parts_x: f64 = parts
        .iter()
        .map(|(base, f)| base * f.estimate.unwrap())
        .sum::<f64>()
        + own.estimate.unwrap();
    assert!((x - parts_x).abs() < 1e-12);
    // The estimate (sigma 20 %) takes more of the 10 % than the passports (5 %).
    let (estimate, passport) = (parts[0].1.estimate.unwrap(), parts[1].1.estimate.unwrap());
    assert!(
        estimate < passport && passport < 1.0,
        "{estimate} {passport}"
    );
    // The balance holds.
    let ni_in = r.element_flow("unit 0", NI).unwrap() + r.element_flow("blend", NI).unwrap();
    let ni_out =
        r.element_flow("black mass", NI).unwrap() + r.element_flow("black mass 2", NI).unwrap();
    assert!((ni_in - ni_out).abs() < 1e-6 * ni_in, "{ni_in} vs {ni_out}");
}

#[test]
fn a_blended_content_whose_shares_do_not_sum_to_one_or_name_an_unknown_factor_is_refused() {
    for shares in [
        vec![(0.5, "NMC622 estimate Ni"), (0.4, "passport Ni")],
        vec![(1.5, "NMC622 estimate Ni"), (-0.5, "passport Ni")],
        vec![],
    ] {
        let mut b = plant(&[(100.0, 0.1)], 0.2, 0.01, 50.0, 0.2);
        blended(&mut b, 10.0, 0.1, shares.clone());
        assert!(
            matches!(refused(&b), BalanceError::BadReading { what, .. } if what == "shares of a blended content"),
            "{shares:?}"
        );
    }
    let mut b = plant(&[(100.0, 0.1)], 0.2, 0.01, 50.0, 0.2);
    blended(&mut b, 10.0, 0.1, vec![(1.0, "LFP estimate Ni")]);
    assert_eq!(
        refused(&b),
        BalanceError::UnknownFactor {
            factor: "LFP estimate Ni".into(),
            by: "the Ni assay of 'blend'".into(),
        }
    );
}

#[test]
fn a_stream_view_reads_what_the_by_name_readings_read() {
    let mut b = plant(&[(100.0, 0.10), (50.0, 0.08)], 0.2, 0.01, 90.0, 0.10);
    blended(
        &mut b,
        200.0,
        0.10,
        vec![(0.25, "NMC622 estimate Ni"), (0.75, "passport Ni")],
    );
    let network = b.build().unwrap();
    let r = reconcile(&network, &Options::default()).unwrap();
    for stream in ["unit 0", "unit 1", "blend", "black mass"] {
        let v = r.stream_view(stream).unwrap();
        assert_eq!(Some(v.mass()), r.stream_mass(stream), "{stream}");
        assert_eq!(v.fraction(NI), r.fraction(stream, NI), "{stream}");
        assert_eq!(v.element_flow(NI), r.element_flow(stream, NI), "{stream}");
        assert_eq!(v.assay(NI), r.assay(stream, NI), "{stream}");
        assert_eq!(v.factored(NI), r.factored(stream, NI), "{stream}");
        assert_eq!(v.factors(NI), r.factors(stream, NI), "{stream}");
    }
    // The view of a blend reads its parts; of an assayed stream, its assay.
    assert_eq!(
        r.stream_view("blend").unwrap().factors(NI).unwrap().0.len(),
        2
    );
    assert!(r.stream_view("black mass").unwrap().assay(NI).is_some());
    assert!(r.stream_view("no such stream").is_none());
}
