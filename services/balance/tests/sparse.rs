//! The sparse path (faer's Cholesky of `A V A'`, for a component too large
//! to solve densely) gives the dense path's results: the same estimates,
//! adjustments, reconciled sigmas, classes, tests and closures.

#![allow(clippy::unwrap_used)]

mod plant;

use plant::{PlantConfig, generate};
use remine_balance::{
    Assay, Balances, Endpoint, Network, NetworkBuilder, Options, Reading, Reconciliation, reconcile,
};
use remine_domain::Element;

fn close(a: f64, b: f64, what: &str) {
    let tol = 1e-6 * a.abs().max(b.abs()).max(1e-9);
    assert!((a - b).abs() <= tol, "{what}: dense {a}, sparse {b}");
}

fn check(dense: &Reconciliation, sparse: &Reconciliation) {
    assert_eq!(dense.variables.len(), sparse.variables.len());
    for (d, s) in dense.variables.iter().zip(&sparse.variables) {
        let what = d.variable.to_string();
        assert_eq!(d.class, s.class, "{what}");
        assert_eq!(d.estimate.is_some(), s.estimate.is_some(), "{what}");
        if let (Some(a), Some(b)) = (d.estimate, s.estimate) {
            close(a, b, &what);
        }
        if let (Some(a), Some(b)) = (d.sigma, s.sigma) {
            close(a, b, &format!("sigma of {what}"));
        }
        if let (Some(a), Some(b)) = (&d.measurement, &s.measurement) {
            assert_eq!(a.instrument, b.instrument, "{what}");
            assert!(
                (a.adjustment - b.adjustment).abs() <= 1e-6 * a.sigma,
                "{what}"
            );
            assert_eq!(a.suspect, b.suspect, "{what}");
            if let (Some(x), Some(y)) = (a.normalised_adjustment, b.normalised_adjustment) {
                assert!((x - y).abs() < 1e-5, "{what}: {x} vs {y}");
            }
        }
    }
    assert_eq!(dense.global.dof, sparse.global.dof);
    close(
        dense.global.chi_square,
        sparse.global.chi_square,
        "chi-square",
    );
    let names = |r: &Reconciliation| -> Vec<String> {
        r.suspects.iter().map(|s| s.variable.to_string()).collect()
    };
    assert_eq!(names(dense), names(sparse));
    for (d, s) in dense.instruments.iter().zip(&sparse.instruments) {
        assert_eq!(d.instrument, s.instrument);
        close(d.relative_bias, s.relative_bias, &d.instrument);
        close(d.bias_sigma, s.bias_sigma, &d.instrument);
    }
    for (d, s) in dense.balances.iter().zip(&sparse.balances) {
        let what = format!("{} {}", d.reconciled.node, d.reconciled.quantity);
        assert_eq!(d.reconciled.unknown, s.reconciled.unknown, "{what}");
        if let (Some(a), Some(b)) = (&d.reconciled.closure, &s.reconciled.closure) {
            close(a.inflow, b.inflow, &what);
            close(a.outflow, b.outflow, &what);
            let sig = a.inflow_sigma.max(1e-6 * a.inflow.abs());
            assert!(
                (a.inflow_sigma - b.inflow_sigma).abs() <= 1e-5 * sig,
                "{what}"
            );
            assert!(
                (a.outflow_sigma - b.outflow_sigma).abs() <= 1e-5 * sig,
                "{what}"
            );
        }
    }
}

#[test]
fn a_campaign_solved_sparsely_gives_the_dense_results() {
    for seed in [3, 4] {
        let p = generate(&PlantConfig::year(6, seed));
        let dense = reconcile(&p.network, &Options::default()).unwrap();
        let options = Options {
            dense_equations: 0,
            ..Options::default()
        };
        let sparse = reconcile(&p.network, &options).unwrap();
        assert!(dense.converged && sparse.converged);
        check(&dense, &sparse);
    }
}

/// `nodes` shredders, each fed three units whose Ni is booked from one
/// shared estimate (one content factor for all of them, so its column
/// enters every shredder's Ni balance) and making assayed black mass.
fn shared_factor_plant(nodes: usize) -> Network {
    let mut b = NetworkBuilder::new();
    b.factor("estimate Ni", 0.2, "chemistry estimate");
    for n in 0..nodes {
        let node = format!("shredder {n}");
        b.node(&node, Balances::total_and(&[Element::Ni]));
        let mut total = 0.0;
        for u in 0..3 {
            let name = format!("unit {n}-{u}");
            let kg = 100.0 + 10.0 * ((n * 3 + u) % 7) as f64;
            total += kg;
            b.stream(
                &name,
                Endpoint::Environment,
                Endpoint::node(&node),
                Some(Reading::kg_relative(kg, 0.002, "weighbridge").unwrap()),
            );
            b.assay(
                &name,
                Element::Ni,
                Assay::Factored {
                    fraction: Reading::fraction_relative(0.1, 0.05, "estimate").unwrap(),
                    factor: "estimate Ni".into(),
                },
            );
        }
        let bm = format!("black mass {n}");
        let noise = 1.0 + 0.01 * ((n % 5) as f64 - 2.0);
        b.stream(
            &bm,
            Endpoint::node(&node),
            Endpoint::Environment,
            Some(Reading::kg_relative(total * 0.5 * noise, 0.005, "belt").unwrap()),
        );
        b.assay(
            &bm,
            Element::Ni,
            Assay::Measured(Reading::fraction_relative(0.18, 0.03, "ICP").unwrap()),
        );
        let rest = format!("rest {n}");
        b.stream(
            &rest,
            Endpoint::node(&node),
            Endpoint::Environment,
            Some(Reading::kg_relative(total * 0.5, 0.01, "scale").unwrap()),
        );
        b.assay(&rest, Element::Ni, Assay::Free);
    }
    b.build().unwrap()
}

#[test]
fn a_content_factor_shared_by_many_balances_gives_the_dense_results_when_solved_sparsely() {
    // 90 shredders: the factor's column enters 90 equations, more than a
    // column may before it is kept out of the sparse factor.
    let network = shared_factor_plant(90);
    let dense = reconcile(&network, &Options::default()).unwrap();
    let options = Options {
        dense_equations: 0,
        ..Options::default()
    };
    let sparse = reconcile(&network, &options).unwrap();
    assert!(dense.converged && sparse.converged);
    check(&dense, &sparse);
}
