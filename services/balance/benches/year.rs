//! The plant year of issue 7 reconciled end to end, beside its anchor in
//! the same run.
//!
//! Figure: [`remine_balance::reconcile`] on a plant year of 200,000 input
//! units in 5,000 discharge batches, 5,000 black-mass lots, 20,000 leach
//! batches (four per lot) and 5,001 product lots (a NiSO4, CoSO4, Li2CO3
//! lot per refinery campaign of three lots), with
//! the noise of domain brief section 6: linearisation to convergence,
//! classification, reconciled sigmas, node closures, reading and instrument
//! tests. Target: under 2 s. Also the peak memory (VmHWM) of the process.
//!
//! Anchor: the bare linear algebra of the same system: for each campaign,
//! the balances free of unknowns linearised at the readings
//! ([`remine_balance::linear_systems`]), `M = A V A'` built densely, its
//! Cholesky factorisation (nalgebra) and the closed-form WLS step
//! `x = y - V A' M^-1 A y`, once, in parallel likewise: no iterations, no
//! elimination of unknowns, no classification, sigmas or tests.
//!
//! Run: `cargo bench -p remine-balance --bench year` (optional argument:
//! repeats, default 5).

#[path = "../tests/plant/mod.rs"]
mod plant;

use nalgebra::{DMatrix, DVector};
use plant::{PlantConfig, generate};
use remine_balance::{LinearSystem, Options, linear_systems, reconcile};
use remine_testkit::bench::peak_rss_mb;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn anchor(blocks: &[LinearSystem]) -> f64 {
    use rayon::prelude::*;
    blocks
        .par_iter()
        .map(|b| {
            let p = b.rows.len();
            let n = b.readings.len();
            let mut m = DMatrix::<f64>::zeros(p, p);
            // M = A V A' by rows (dense over the block's few readings).
            let mut a = DMatrix::<f64>::zeros(p, n);
            for (k, row) in b.rows.iter().enumerate() {
                for &(i, c) in row {
                    a[(k, i)] += c;
                }
            }
            for i in 0..n {
                for k in 0..p {
                    let aki = a[(k, i)];
                    if aki != 0.0 {
                        for l in 0..p {
                            m[(k, l)] += aki * b.variances[i] * a[(l, i)];
                        }
                    }
                }
            }
            let y = DVector::from_column_slice(&b.readings);
            let r = &a * &y;
            let Some(ch) = m.cholesky() else { return 0.0 };
            let lambda = ch.solve(&r);
            let adj = a.transpose() * lambda;
            (0..n).map(|i| y[i] - b.variances[i] * adj[i]).sum::<f64>()
        })
        .sum()
}

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let t = Instant::now();
    let cfg = PlantConfig::year(5000, 2026);
    let plant = generate(&cfg);
    let gen_s = t.elapsed().as_secs_f64();
    let c = plant.counts;
    println!(
        "plant year: {} input units, {} discharge batches, {} black-mass lots, {} leach batches, {} product lots, {} campaigns",
        c.units, c.lots, c.lots, c.leach_batches, c.product_lots, c.campaigns
    );
    println!(
        "network: {} nodes, {} streams, {} variables, {} equations (generated and built in {gen_s:.2} s)",
        plant.network.node_count(),
        plant.network.stream_count(),
        plant.network.variable_count(),
        plant.network.equation_count()
    );
    let blocks = linear_systems(&plant.network);
    let opts = Options::default();
    let mut figure = Vec::new();
    let mut anchor_t = Vec::new();
    let mut last = None;
    for run in 0..repeats {
        let t = Instant::now();
        let r = reconcile(&plant.network, &opts).expect("the year reconciles");
        let s = t.elapsed().as_secs_f64();
        figure.push(s);
        let t = Instant::now();
        let check = anchor(&blocks);
        let a = t.elapsed().as_secs_f64();
        anchor_t.push(a);
        println!("run {run}: reconcile {s:.3} s, anchor {a:.3} s (checksum {check:.3e})");
        last = Some(r);
    }
    if let Some(r) = last {
        let rec = plant.reconciled_recovery(&r);
        println!(
            "components {}, iterations (max) {}, converged {}, chi2 {:.1} on {} dof (p = {:.3})",
            r.components.len(),
            r.iterations,
            r.converged,
            r.global.chi_square,
            r.global.dof,
            r.global.p_value
        );
        for (k, reconciled) in rec.iter().enumerate() {
            println!(
                "{}: recovery truth {:.3} %, reconciled {:.3} %, unreconciled {:.3} %",
                plant::REPORTED[k],
                100.0 * plant.true_recovery[k],
                100.0 * reconciled,
                100.0 * plant.measured_recovery[k]
            );
        }
    }
    let (f, a) = (median(figure), median(anchor_t));
    println!(
        "MEDIAN reconcile {f:.3} s (target < 2 s), anchor {a:.3} s, ratio {:.1}x; peak memory (VmHWM) {:.0} MB; threads {}",
        f / a,
        peak_rss_mb(),
        rayon::current_num_threads()
    );
}
