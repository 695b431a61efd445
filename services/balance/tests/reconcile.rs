//! Reconciliation on networks small enough to check by hand: the linear
//! closed form of domain brief section 6, and the bilinear leach balance.

use remine_balance::{
    Assay, Balances, Class, Endpoint, Network, NetworkBuilder, Options, Quantity, Reading,
    Reconciliation, reconcile,
};
use remine_domain::Element;

fn kg(v: f64, s: f64, name: &str) -> Option<Reading<remine_domain::Kilograms>> {
    Some(Reading::kg(v, s, name).expect("valid mass"))
}

fn assay(v: f64, s: f64, name: &str) -> Assay {
    Assay::Measured(Reading::fraction(v, s, name).expect("valid assay"))
}

fn build(b: &NetworkBuilder) -> Network {
    b.build().expect("network builds")
}

fn run(net: &Network) -> Reconciliation<'_> {
    let r = reconcile(net, &Options::default()).expect("reconciles");
    assert!(r.converged, "converged");
    r
}

fn mass(r: &Reconciliation, s: &str) -> f64 {
    r.stream_mass(s)
        .and_then(|v| v.estimate)
        .expect("estimated")
}

/// Checks reconciled values and sigmas against the closed form.
fn check(r: &Reconciliation, expected: &[(&str, f64, f64)]) {
    for (s, x, sigma) in expected {
        let v = r.stream_mass(s).expect("stream exists");
        let got = v.estimate.expect("estimate");
        assert!(
            (got - x).abs() < 1e-9 * x.abs().max(1.0),
            "{s}: {got} vs closed form {x}"
        );
        let gs = v.sigma.expect("sigma");
        assert!(
            (gs - sigma).abs() < 1e-9 * sigma.max(1.0),
            "{s}: sigma {gs} vs {sigma}"
        );
    }
}

#[test]
fn a_splitter_reconciles_to_the_closed_form_and_balances_exactly() {
    // y = (100, 61, 42) with sigmas (1, 2, 0.5); A = [1 -1 -1].
    let y = [100.0, 61.0, 42.0];
    let s = [1.0, 2.0, 0.5];
    let mut b = NetworkBuilder::new();
    b.node("splitter", Balances::total_only())
        .stream(
            "feed",
            Endpoint::Environment,
            Endpoint::node("splitter"),
            kg(y[0], s[0], "weighbridge"),
        )
        .stream(
            "a",
            Endpoint::node("splitter"),
            Endpoint::Environment,
            kg(y[1], s[1], "belt weigher BW-1"),
        )
        .stream(
            "b",
            Endpoint::node("splitter"),
            Endpoint::Environment,
            kg(y[2], s[2], "belt weigher BW-2"),
        );
    let net = build(&b);
    let r = run(&net);
    // x = y - V A' (A V A')^-1 A y; cov = V - V A' (A V A')^-1 A V.
    let a = [1.0, -1.0, -1.0];
    let v: Vec<f64> = s.iter().map(|x| x * x).collect();
    let ava: f64 = (0..3).map(|i| a[i] * a[i] * v[i]).sum();
    let ay: f64 = (0..3).map(|i| a[i] * y[i]).sum();
    let x: Vec<f64> = (0..3).map(|i| y[i] - v[i] * a[i] * ay / ava).collect();
    let sd: Vec<f64> = (0..3).map(|i| (v[i] - v[i] * v[i] / ava).sqrt()).collect();
    check(
        &r,
        &[
            ("feed", x[0], sd[0]),
            ("a", x[1], sd[1]),
            ("b", x[2], sd[2]),
        ],
    );
    assert!((mass(&r, "feed") - mass(&r, "a") - mass(&r, "b")).abs() < 1e-9);
    assert_eq!(r.global.dof, 1);
    let chi = ay * ay / ava;
    assert!(
        (r.global.chi_square - chi).abs() < 1e-9,
        "chi-square is r' (A V A')^-1 r"
    );
    for s in ["feed", "a", "b"] {
        assert_eq!(r.stream_mass(s).map(|v| v.class), Some(Class::Redundant));
    }
}

#[test]
fn two_nodes_in_series_reconcile_to_the_closed_form() {
    // feed -> A -> (p1, mid); mid -> B -> (p2, p3).
    let y = [1000.0, 402.0, 590.0, 305.0, 280.0];
    let s = [5.0, 4.0, 8.0, 3.0, 3.0];
    let names = ["feed", "p1", "mid", "p2", "p3"];
    let mut b = NetworkBuilder::new();
    b.node("A", Balances::total_only())
        .node("B", Balances::total_only());
    let ends = [
        (Endpoint::Environment, Endpoint::node("A")),
        (Endpoint::node("A"), Endpoint::Environment),
        (Endpoint::node("A"), Endpoint::node("B")),
        (Endpoint::node("B"), Endpoint::Environment),
        (Endpoint::node("B"), Endpoint::Environment),
    ];
    for (i, (from, to)) in ends.into_iter().enumerate() {
        b.stream(names[i], from, to, kg(y[i], s[i], "scale"));
    }
    let net = build(&b);
    let r = run(&net);
    let a = [[1.0, -1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0, -1.0]];
    let v: Vec<f64> = s.iter().map(|x| x * x).collect();
    // M = A V A' (2 x 2) and its inverse by hand.
    let m = |p: usize, q: usize| (0..5).map(|i| a[p][i] * v[i] * a[q][i]).sum::<f64>();
    let (m00, m01, m11) = (m(0, 0), m(0, 1), m(1, 1));
    let det = m00 * m11 - m01 * m01;
    let inv = [[m11 / det, -m01 / det], [-m01 / det, m00 / det]];
    let ay = [0, 1].map(|p| (0..5).map(|i| a[p][i] * y[i]).sum::<f64>());
    let lambda = [0, 1].map(|p| inv[p][0] * ay[0] + inv[p][1] * ay[1]);
    let expected: Vec<(&str, f64, f64)> = (0..5)
        .map(|i| {
            let x = y[i] - v[i] * (a[0][i] * lambda[0] + a[1][i] * lambda[1]);
            let q: f64 = (0..2)
                .flat_map(|p| (0..2).map(move |q| (p, q)))
                .map(|(p, q)| a[p][i] * inv[p][q] * a[q][i])
                .sum();
            (names[i], x, (v[i] - v[i] * v[i] * q).sqrt())
        })
        .collect();
    check(&r, &expected);
    assert_eq!(r.global.dof, 2);
}

/// A leach batch: black mass and acid in, solution and residue out, with
/// Ni, Co, Li assays that disagree by a few per cent.
fn leach() -> NetworkBuilder {
    let mut b = NetworkBuilder::new();
    let leach = Endpoint::node("leach L-1");
    b.node(
        "leach L-1",
        Balances::total_and(&[Element::Ni, Element::Co, Element::Li]),
    )
    .stream(
        "black mass",
        Endpoint::Environment,
        leach.clone(),
        kg(1000.0, 5.0, "belt weigher BW-3"),
    )
    .stream(
        "acid",
        Endpoint::Environment,
        leach.clone(),
        kg(7000.0, 35.0, "flow meter FM-1"),
    )
    .stream(
        "PLS",
        leach.clone(),
        Endpoint::Environment,
        kg(7580.0, 110.0, "tank volume T-1"),
    )
    .stream(
        "residue",
        leach,
        Endpoint::Environment,
        kg(495.0, 5.0, "filter press scale S-3"),
    );
    let assays = [
        (Element::Ni, 0.250, 0.0324, 0.0042),
        (Element::Co, 0.070, 0.0089, 0.0012),
        (Element::Li, 0.042, 0.0052, 0.0006),
    ];
    for (e, bm, pls, res) in assays {
        b.assay("black mass", e, assay(bm, 0.04 * bm, "BM lab sample S-17"))
            .assay("acid", e, Assay::Free)
            .assay("PLS", e, assay(pls, 0.02 * pls, "ICP lab A"))
            .assay("residue", e, assay(res, 0.05 * res, "residue lab"));
    }
    b
}

#[test]
fn the_bilinear_leach_balance_converges_and_every_element_closes() {
    let net = build(&leach());
    let r = run(&net);
    assert!(
        r.iterations > 1 && r.iterations < 20,
        "took {} steps",
        r.iterations
    );
    for e in [Element::Ni, Element::Co, Element::Li] {
        let flow = |s: &str| r.element_flow(s, e).expect("element flow");
        let input = flow("black mass") + flow("acid");
        let output = flow("PLS") + flow("residue");
        assert!(
            ((input - output) / input).abs() < 1e-9,
            "{e}: in {input} out {output}"
        );
        let after = r
            .balances
            .iter()
            .find(|b| b.reconciled.quantity == Quantity::Element(e))
            .and_then(|b| b.reconciled.closure.clone())
            .expect("closure after reconciliation");
        assert!((after.closure_pct.expect("closure") - 100.0).abs() < 1e-7);
    }
    let total = mass(&r, "black mass") + mass(&r, "acid") - mass(&r, "PLS") - mass(&r, "residue");
    assert!(total.abs() < 1e-9 * 8000.0);
    assert!(r.components[0].max_relative_residual < 1e-9);
    // Four balances, all on measured values: four degrees of freedom.
    assert_eq!(r.global.dof, 4);
}

#[test]
fn reconciliation_moves_the_least_certain_readings_most() {
    let net = build(&leach());
    let r = run(&net);
    let rel = |s: &str, e: Element| {
        let v = r
            .assay(s, e)
            .and_then(|v| v.measurement.clone())
            .expect("measured");
        (v.adjustment / v.sigma).abs()
    };
    // The solution's Ni is 3 % short of the black mass's: the 4 % black-mass
    // assay and the 1.5 % tank volume absorb most of it, not the 0.5 % weigher.
    let bm = r
        .stream_mass("black mass")
        .and_then(|v| v.measurement.clone())
        .expect("measured");
    assert!((bm.adjustment / bm.measured).abs() < 0.005);
    assert!(rel("black mass", Element::Ni) > 0.1);
    for v in &r.variables {
        if let (Some(m), Some(s)) = (&v.measurement, v.sigma) {
            assert!(
                s <= m.sigma * (1.0 + 1e-12),
                "{}: reconciled sigma above the reading's",
                v.variable
            );
        }
    }
}

#[test]
fn a_shared_lot_assay_is_one_variable_for_all_its_portions() {
    // A lot split into two charges, each leached; the charges carry the lot's assay.
    let mut b = NetworkBuilder::new();
    b.node("store", Balances::total_only())
        .stream(
            "lot",
            Endpoint::Environment,
            Endpoint::node("store"),
            kg(2000.0, 4.0, "weighbridge WB-1"),
        )
        .assay("lot", Element::Ni, assay(0.25, 0.01, "BM lab"));
    for k in 0..2 {
        let leach = format!("leach {k}");
        let charge = format!("charge {k}");
        let pls = format!("PLS {k}");
        b.node(&leach, Balances::total_and(&[Element::Ni]))
            .stream(
                &charge,
                Endpoint::node("store"),
                Endpoint::node(&leach),
                kg(1000.0, 5.0, "belt weigher BW-3"),
            )
            .assay(&charge, Element::Ni, Assay::SameAs("lot".into()))
            .stream(
                &pls,
                Endpoint::node(&leach),
                Endpoint::Environment,
                kg(1000.0, 15.0, "tank volume"),
            )
            .assay(&pls, Element::Ni, assay(0.24, 0.005, "ICP lab A"));
    }
    let net = build(&b);
    let r = run(&net);
    let lot = r
        .assay("lot", Element::Ni)
        .and_then(|v| v.estimate)
        .expect("lot assay");
    let charge = r
        .assay("charge 0", Element::Ni)
        .and_then(|v| v.estimate)
        .expect("charge assay");
    assert_eq!(lot, charge);
    assert!(
        lot < 0.25 && lot > 0.24,
        "the solution pulls the lot assay down: {lot}"
    );
}
