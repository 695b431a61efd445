//! Bad input gives the crate's error, naming the node, stream, element,
//! instrument or value at fault; never a panic.

use remine_balance::{Assay, BalanceError, Balances, Endpoint, NetworkBuilder, Quantity, Reading};
use remine_domain::Element;

fn check<T: std::fmt::Debug>(result: Result<T, BalanceError>, expected: &str) {
    let e = result.expect_err("should be refused").to_string();
    assert!(
        e.contains(expected),
        "error '{e}' does not mention '{expected}'"
    );
}

fn ok_mass() -> Option<Reading<remine_domain::Kilograms>> {
    Some(Reading::kg(100.0, 1.0, "scale").expect("valid"))
}

#[test]
fn readings_refuse_impossible_values() {
    check(
        Reading::kg(-5.0, 1.0, "belt weigher BW-1"),
        "belt weigher BW-1: mass (kg) must be a finite number >= 0 (got -5)",
    );
    check(Reading::kg(f64::NAN, 1.0, "scale"), "got NaN");
    check(
        Reading::kg(10.0, 0.0, "scale S-2"),
        "scale S-2: mass sigma (kg) must be a finite number > 0 (got 0)",
    );
    check(Reading::kg(10.0, -1.0, "scale"), "got -1");
    check(Reading::kg(10.0, f64::INFINITY, "scale"), "got inf");
    check(
        Reading::kg_relative(10.0, 0.0, "scale"),
        "relative mass sigma",
    );
    check(
        Reading::fraction(1.2, 0.01, "ICP lab A"),
        "ICP lab A: assay (mass fraction) must be between 0 and 1 (got 1.2)",
    );
    check(Reading::fraction(-0.1, 0.01, "ICP lab A"), "got -0.1");
    check(Reading::fraction(0.2, 0.0, "ICP lab A"), "assay sigma");
    check(Reading::fraction(f64::NAN, 0.01, "ICP lab A"), "got NaN");
    // A relative sigma of a zero value is a zero sigma.
    check(
        Reading::fraction_relative(0.0, 0.02, "ICP lab A"),
        "assay sigma",
    );
}

#[test]
fn a_stream_to_an_unknown_node_is_named() {
    let mut b = NetworkBuilder::new();
    b.node("leach L-1", Balances::total_only())
        .stream(
            "charge",
            Endpoint::Environment,
            Endpoint::node("leach L-1"),
            ok_mass(),
        )
        .stream(
            "PLS",
            Endpoint::node("leach L-1"),
            Endpoint::node("refinery"),
            ok_mass(),
        );
    check(b.build(), "stream 'PLS' goes to unknown node 'refinery'");
}

#[test]
fn a_stream_from_an_unknown_node_is_named() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only()).stream(
        "x",
        Endpoint::node("nowhere"),
        Endpoint::node("N"),
        ok_mass(),
    );
    check(b.build(), "stream 'x' comes from unknown node 'nowhere'");
}

#[test]
fn duplicate_names_are_refused() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .node("N", Balances::total_only());
    check(b.build(), "node 'N' is declared twice");
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .stream("x", Endpoint::node("N"), Endpoint::Environment, ok_mass());
    check(b.build(), "stream 'x' is declared twice");
}

#[test]
fn streams_that_go_nowhere_are_refused() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only()).stream(
        "loop",
        Endpoint::node("N"),
        Endpoint::node("N"),
        ok_mass(),
    );
    check(b.build(), "stream 'loop': starts and ends at node 'N'");
    let mut b = NetworkBuilder::new();
    b.stream(
        "air",
        Endpoint::Environment,
        Endpoint::Environment,
        ok_mass(),
    );
    check(
        b.build(),
        "stream 'air': runs from the environment to the environment",
    );
}

#[test]
fn a_balanced_element_needs_an_assay_on_every_stream() {
    let mut b = NetworkBuilder::new();
    b.node("leach", Balances::total_and(&[Element::Ni]))
        .stream(
            "in",
            Endpoint::Environment,
            Endpoint::node("leach"),
            ok_mass(),
        )
        .stream(
            "out",
            Endpoint::node("leach"),
            Endpoint::Environment,
            ok_mass(),
        )
        .assay("in", Element::Ni, Assay::Unmeasured);
    check(
        b.build(),
        "node 'leach' balances Ni but stream 'out' declares no Ni assay",
    );
}

#[test]
fn assays_must_name_known_streams() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .assay("y", Element::Co, Assay::Unmeasured);
    check(b.build(), "the Co assay names unknown stream 'y'");
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .assay("x", Element::Co, Assay::SameAs("lot".into()));
    check(b.build(), "the Co assay of 'x' names unknown stream 'lot'");
}

#[test]
fn same_as_links_must_end_at_a_declared_assay() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .stream("y", Endpoint::node("N"), Endpoint::Environment, ok_mass())
        .assay("x", Element::Ni, Assay::SameAs("y".into()))
        .assay("y", Element::Ni, Assay::SameAs("x".into()));
    check(b.build(), "refers back to itself");
}

#[test]
fn an_inventory_needs_a_node_that_balances_its_quantity() {
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .inventory("N", Quantity::Element(Element::Li), ok_mass(), None);
    check(
        b.build(),
        "node 'N': has a Li inventory but does not balance Li",
    );
    let mut b = NetworkBuilder::new();
    b.node("N", Balances::total_only())
        .stream("x", Endpoint::Environment, Endpoint::node("N"), ok_mass())
        .inventory("M", Quantity::Total, ok_mass(), None);
    check(b.build(), "node 'M'");
}

#[test]
fn a_node_without_streams_is_refused() {
    let mut b = NetworkBuilder::new();
    b.node("idle", Balances::total_only());
    check(b.build(), "node 'idle': no stream enters or leaves it");
}

#[allow(clippy::unwrap_used)]
fn two_nodes(shred: Option<f64>) -> remine_balance::Network {
    use remine_balance::{Balances, Endpoint, NetworkBuilder, Reading};
    let kg = |v: f64| Some(Reading::kg(v, 1.0, "WB-1").unwrap());
    let mut b = NetworkBuilder::new();
    b.node("shredder", Balances::total_only())
        .node("dryer", Balances::total_only())
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("shredder"),
            kg(100.0),
        )
        .stream(
            "shred",
            Endpoint::node("shredder"),
            Endpoint::node("dryer"),
            shred.and_then(kg),
        )
        .stream(
            "dry",
            Endpoint::node("dryer"),
            Endpoint::Environment,
            kg(98.0),
        );
    b.build().unwrap()
}

#[test]
fn too_many_balances_sharing_unmeasured_values_are_refused_naming_a_node() {
    use remine_balance::{Options, reconcile};
    // The unweighed stream joins both balances: two equations to eliminate it from.
    let network = two_nodes(None);
    let options = Options {
        max_component_equations: 1,
        ..Options::default()
    };
    let e = reconcile(&network, &options).err().unwrap().to_string();
    assert!(e.contains("2 equations") && e.contains("at most 1"), "{e}");
    assert!(e.contains("shredder") || e.contains("dryer"), "{e}");
    assert!(reconcile(&network, &Options::default()).is_ok());
}

#[test]
fn a_sparse_factor_larger_than_allowed_is_refused_naming_a_node() {
    use remine_balance::{Options, reconcile};
    let network = two_nodes(Some(99.0));
    let options = Options {
        dense_equations: 0,
        max_factor_entries: 2,
        ..Options::default()
    };
    let e = reconcile(&network, &options).err().unwrap().to_string();
    assert!(
        e.contains("2 reduced equations") && e.contains("3 entries") && e.contains("at most 2"),
        "{e}"
    );
    assert!(e.contains("shredder") || e.contains("dryer"), "{e}");
    let sparse = Options {
        dense_equations: 0,
        ..Options::default()
    };
    assert!(reconcile(&network, &sparse).is_ok());
}
