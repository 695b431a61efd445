//! Observability and redundancy (domain brief section 6): which values the
//! balances check, which they fix, and which they cannot.

use remine_balance::{
    Assay, Balances, Class, Endpoint, Network, NetworkBuilder, Options, Reading, Reconciliation,
    reconcile,
};
use remine_domain::Element;

fn kg(v: f64) -> Option<Reading<remine_domain::Kilograms>> {
    Some(Reading::kg(v, v * 0.005, "belt weigher BW-1").expect("valid mass"))
}

fn assay(v: f64) -> Assay {
    Assay::Measured(Reading::fraction(v, v * 0.02, "ICP lab A").expect("valid assay"))
}

fn build(b: &NetworkBuilder) -> Network {
    b.build().expect("builds")
}

fn run(net: &Network) -> Reconciliation<'_> {
    reconcile(net, &Options::default()).expect("reconciles")
}

fn check(r: &Reconciliation, stream: &str, expected: Class) {
    let v = r.stream_mass(stream).expect("stream");
    assert_eq!(v.class, expected, "mass of {stream}");
    match expected {
        Class::NotDeterminable => assert!(v.estimate.is_none() && v.sigma.is_none()),
        Class::JustDeterminable => {
            let m = v.measurement.as_ref().expect("measured");
            assert!(
                m.adjustment.abs() < 1e-9 * m.measured,
                "{stream} moved by {}",
                m.adjustment
            );
            assert!(m.normalised_adjustment.is_none());
            assert_eq!(v.sigma, Some(m.sigma));
        }
        _ => assert!(v.estimate.is_some() && v.sigma.is_some()),
    }
}

/// A node fed by `feed` with outputs `a` and `b`; `None` is unmeasured.
fn node(feed: Option<f64>, a: Option<f64>, b: Option<f64>) -> NetworkBuilder {
    let mut n = NetworkBuilder::new();
    n.node("N", Balances::total_only())
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("N"),
            feed.and_then(kg),
        )
        .stream(
            "a",
            Endpoint::node("N"),
            Endpoint::Environment,
            a.and_then(kg),
        )
        .stream(
            "b",
            Endpoint::node("N"),
            Endpoint::Environment,
            b.and_then(kg),
        );
    n
}

#[test]
fn every_reading_of_a_fully_measured_node_is_redundant() {
    let net = build(&node(Some(100.0), Some(60.0), Some(41.0)));
    let r = run(&net);
    for s in ["feed", "a", "b"] {
        check(&r, s, Class::Redundant);
    }
}

#[test]
fn one_unmeasured_stream_is_determinable_and_the_others_just_determinable() {
    let net = build(&node(Some(100.0), Some(60.0), None));
    let r = run(&net);
    check(&r, "b", Class::Determinable);
    check(&r, "feed", Class::JustDeterminable);
    check(&r, "a", Class::JustDeterminable);
    let b = r.stream_mass("b").expect("b");
    assert!((b.estimate.expect("estimate") - 40.0).abs() < 1e-9);
    // sigma(b)^2 = sigma(feed)^2 + sigma(a)^2.
    let expected = (0.5f64.powi(2) + 0.3f64.powi(2)).sqrt();
    assert!((b.sigma.expect("sigma") - expected).abs() < 1e-9);
}

#[test]
fn two_unmeasured_streams_in_one_total_balance_are_not_determinable() {
    let net = build(&node(Some(100.0), None, None));
    let r = run(&net);
    check(&r, "a", Class::NotDeterminable);
    check(&r, "b", Class::NotDeterminable);
    check(&r, "feed", Class::JustDeterminable);
    assert_eq!(r.global.dof, 0);
    assert!(r.global.passed);
}

#[test]
fn two_unmeasured_streams_are_determinable_from_their_assays() {
    // The two-product formula: total and Ni balances fix both masses.
    let mut b2 = NetworkBuilder::new();
    b2.node("N", Balances::total_and(&[Element::Ni]))
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("N"),
            kg(100.0),
        )
        .stream("a", Endpoint::node("N"), Endpoint::Environment, None)
        .stream("b", Endpoint::node("N"), Endpoint::Environment, None)
        .assay("feed", Element::Ni, assay(0.10))
        .assay("a", Element::Ni, assay(0.20))
        .assay("b", Element::Ni, assay(0.02));
    let net = build(&b2);
    let r = run(&net);
    check(&r, "a", Class::Determinable);
    check(&r, "b", Class::Determinable);
    let a = r.stream_mass("a").and_then(|v| v.estimate).expect("a");
    // a = feed (x_f - x_b) / (x_a - x_b) = 100 * 0.08 / 0.18.
    assert!((a - 100.0 * 0.08 / 0.18).abs() < 1e-6, "{a}");
}

#[test]
fn a_reading_is_redundant_when_any_of_its_balances_is() {
    // Node A is fully measured; node B has an unmeasured output. `mid`
    // leaves A (redundant there) and enters B.
    let mut b = NetworkBuilder::new();
    b.node("A", Balances::total_only())
        .node("B", Balances::total_only())
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("A"),
            kg(100.0),
        )
        .stream("p", Endpoint::node("A"), Endpoint::Environment, kg(30.0))
        .stream("mid", Endpoint::node("A"), Endpoint::node("B"), kg(71.0))
        .stream("q", Endpoint::node("B"), Endpoint::Environment, kg(50.0))
        .stream("rest", Endpoint::node("B"), Endpoint::Environment, None);
    let net = build(&b);
    let r = run(&net);
    check(&r, "feed", Class::Redundant);
    check(&r, "mid", Class::Redundant);
    check(&r, "q", Class::JustDeterminable);
    check(&r, "rest", Class::Determinable);
}

#[test]
fn an_assay_no_node_balances_is_just_determinable() {
    let mut b = node(Some(100.0), Some(60.0), Some(41.0));
    b.assay("feed", Element::Co, assay(0.05));
    let net = build(&b);
    let r = run(&net);
    let v = r.assay("feed", Element::Co).expect("assay");
    assert_eq!(v.class, Class::JustDeterminable);
}

#[test]
fn an_unmeasured_assay_with_no_balance_is_not_determinable() {
    let mut b = node(Some(100.0), Some(60.0), Some(41.0));
    b.assay("feed", Element::Co, Assay::Unmeasured);
    let net = build(&b);
    let r = run(&net);
    assert_eq!(
        r.assay("feed", Element::Co).map(|v| v.class),
        Some(Class::NotDeterminable)
    );
    assert_eq!(r.element_flow("feed", Element::Co), None);
}
