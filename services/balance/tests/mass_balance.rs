//! The plain mass balance: closures and their propagated uncertainty from
//! the readings as they are, before any reconciliation.

use remine_balance::{
    Assay, Balances, Endpoint, NetworkBuilder, Options, Quantity, Reading, mass_balance, reconcile,
};
use remine_domain::Element;

fn kg(v: f64, s: f64) -> Option<Reading<remine_domain::Kilograms>> {
    Some(Reading::kg(v, s, "scale").expect("valid"))
}

fn check(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < 1e-9 * expected.abs().max(1.0),
        "{what}: {got} vs {expected}"
    );
}

fn splitter() -> NetworkBuilder {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("N"),
            kg(100.0, 1.0),
        )
        .stream(
            "a",
            Endpoint::node("N"),
            Endpoint::Environment,
            kg(60.0, 1.0),
        )
        .stream(
            "b",
            Endpoint::node("N"),
            Endpoint::Environment,
            kg(39.0, 1.0),
        );
    b
}

#[test]
fn a_node_reports_in_out_imbalance_and_closure_with_sigmas() {
    let net = splitter().build().expect("builds");
    let report = mass_balance(&net);
    assert_eq!(report.len(), 1);
    let c = report[0].closure.clone().expect("all measured");
    check(c.inflow, 100.0, "in");
    check(c.outflow, 99.0, "out");
    check(c.imbalance, 1.0, "imbalance");
    check(c.outflow_sigma, 2f64.sqrt(), "sigma out");
    check(c.imbalance_sigma, 3f64.sqrt(), "sigma imbalance");
    check(c.closure_pct.expect("closure"), 99.0, "closure");
    // d(out/in): 1/100 for each output, -0.99/100 for the input.
    let sigma = 100.0 * (2.0 * 0.01f64.powi(2) + 0.0099f64.powi(2)).sqrt();
    check(c.closure_sigma_pct.expect("sigma"), sigma, "sigma closure");
}

#[test]
fn after_reconciliation_the_closure_is_100_percent_with_smaller_sigmas() {
    let net = splitter().build().expect("builds");
    let r = reconcile(&net, &Options::default()).expect("reconciles");
    let b = &r.balances[0];
    let before = b.measured.closure.clone().expect("before");
    let after = b.reconciled.closure.clone().expect("after");
    check(after.closure_pct.expect("closure"), 100.0, "closure after");
    assert!(after.imbalance.abs() < 1e-9);
    assert!(
        after.imbalance_sigma < 1e-6,
        "the balance holds exactly: {}",
        after.imbalance_sigma
    );
    assert!(after.inflow_sigma < before.inflow_sigma);
}

#[test]
fn element_balances_with_inventory_count_the_stock_change() {
    let mut b = NetworkBuilder::new();
    let frac = |v: f64| Assay::Measured(Reading::fraction(v, 0.002, "ICP lab A").expect("valid"));
    b.node("refinery", Balances::elements_only(&[Element::Ni]))
        .stream(
            "PLS",
            Endpoint::Environment,
            Endpoint::node("refinery"),
            kg(10_000.0, 100.0),
        )
        .stream(
            "NiSO4",
            Endpoint::node("refinery"),
            Endpoint::Environment,
            kg(400.0, 0.4),
        )
        .assay("PLS", Element::Ni, frac(0.01))
        .assay("NiSO4", Element::Ni, frac(0.2233))
        .inventory(
            "refinery",
            Quantity::Element(Element::Ni),
            kg(50.0, 1.0),
            kg(60.0, 1.0),
        );
    let net = b.build().expect("builds");
    let c = mass_balance(&net)[0].closure.clone().expect("measured");
    check(c.inflow, 100.0, "Ni in");
    check(c.outflow, 400.0 * 0.2233, "Ni out");
    check(c.stock_change, 10.0, "Ni stock change");
    check(c.imbalance, 100.0 - 89.32 - 10.0, "Ni imbalance");
    check(c.stock_change_sigma, 2f64.sqrt(), "stock sigma");
}

#[test]
fn a_node_with_an_unmeasured_value_names_it_instead_of_a_closure() {
    let mut b = splitter();
    b.stream("c", Endpoint::node("N"), Endpoint::Environment, None);
    let net = b.build().expect("builds");
    let report = mass_balance(&net);
    assert!(report[0].closure.is_none());
    assert_eq!(report[0].unknown.len(), 1);
    assert_eq!(report[0].unknown[0].to_string(), "mass of 'c'");
}
