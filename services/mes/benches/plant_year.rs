//! The plant's metal balance of a synthetic plant year, from records
//! straight to the reconciled period ([`remine_mes::reconcile_records`]),
//! without the store: layout, reconciliation (sparse for the year-long
//! components), tests, closures and recovery figures, with the recovery
//! against the synthetic year's truth.
//!
//! Run: `cargo bench -p remine-mes --bench plant_year -- [UNITS] [RUNS] [SEED]`
//! (defaults 20,000 units, 3 runs, seed 7; the scale is 200,000). Prints
//! the median time, the peak memory (VmHWM) of the records, the anchor and
//! the reconciliation (the generator's year is dropped first and the peak
//! reset through `/proc/self/clear_refs`), and the figures.
//!
//! Anchor, in the same run: the bare sparse linear algebra of the same
//! year's lot-level total-mass balances (every lot weighed, every edge a
//! charge weighing; a row per lot for what went in and, for a lot used up,
//! for what came out): `A V A'` assembled, ordered by faer's minimum
//! degree, factorised by faer's simplicial Cholesky and solved once
//! ([`remine_balance::LinearSystem::solve_sparse`]).

#![allow(clippy::unwrap_used)]

use remine_balance::LinearSystem;
use remine_domain::Element;
use remine_mes::{BalanceRecords, reconcile_records};
use remine_synth::{PlantYear, SynthConfig, generate};
use remine_testkit::bench::{peak_rss_mb, rss_mb};
use std::collections::HashMap;
use std::time::Instant;

fn records(y: &PlantYear) -> BalanceRecords {
    let mut r = BalanceRecords::default();
    for l in y.lots() {
        r.lots.push(l.to_lot(y).unwrap());
        if let Some(u) = l.unit() {
            r.chemistries
                .insert(l.id().clone(), y.units()[u].chemistry());
        }
        if let Some(m) = l.measured_mass().unwrap() {
            r.weighings.insert(l.id().clone(), m);
        }
        let a = l.domain_assays().unwrap();
        if !a.is_empty() {
            r.assays.insert(l.id().clone(), a);
        }
    }
    r.edges = y
        .edges()
        .iter()
        .map(|e| y.domain_edge(e).unwrap())
        .collect();
    r
}

/// The lot-level total-mass balances of the year (see the module's doc).
fn anchor_system(r: &BalanceRecords) -> LinearSystem {
    let mut readings = Vec::new();
    let mut variances = Vec::new();
    let mut lot_reading: HashMap<&remine_domain::LotId, usize> = HashMap::new();
    for l in &r.lots {
        let (kg, sigma) = match r.weighings.get(l.id()) {
            Some(m) => (m.dry_mass().value().kg(), m.dry_mass().sigma().kg()),
            None => (l.mass().kg(), 0.01 * l.mass().kg()),
        };
        lot_reading.insert(l.id(), readings.len());
        readings.push(kg);
        variances.push(sigma.max(1e-6).powi(2));
    }
    let mut ins: HashMap<usize, Vec<(usize, f64)>> = HashMap::new();
    let mut outs: HashMap<usize, Vec<(usize, f64)>> = HashMap::new();
    let mut out_kg: HashMap<usize, f64> = HashMap::new();
    for e in &r.edges {
        let i = readings.len();
        readings.push(e.mass.kg());
        variances.push((0.005 * e.mass.kg()).max(1e-6).powi(2));
        if let Some(&to) = lot_reading.get(&e.to) {
            ins.entry(to).or_default().push((i, 1.0));
        }
        if let Some(&from) = lot_reading.get(&e.from) {
            outs.entry(from).or_default().push((i, -1.0));
            *out_kg.entry(from).or_default() += e.mass.kg();
        }
    }
    let mut rows = Vec::new();
    for (lot, mut row) in ins {
        row.push((lot, -1.0));
        rows.push(row);
    }
    for (lot, mut row) in outs {
        if (out_kg[&lot] - readings[lot]).abs() <= 1e-6 * readings[lot].max(1.0) {
            row.push((lot, 1.0));
            rows.push(row);
        }
    }
    LinearSystem {
        rows,
        readings,
        variances,
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let units: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let y = generate(&SynthConfig::new(units, seed).unwrap()).unwrap();
    let r = records(&y);
    let from = r.lots.iter().map(|l| l.created_at()).min().unwrap();
    let to = r.lots.iter().map(|l| l.created_at()).max().unwrap() + chrono::Duration::seconds(1);
    println!(
        "plant year of {units} units: {} lots, {} edges",
        r.lots.len(),
        r.edges.len()
    );
    // The truth, then the generator's year is dropped and the peak reset
    // (`clear_refs` 5), so the peak is that of the records and their
    // reconciliation, not of the generator.
    let truth: HashMap<Element, f64> = [Element::Ni, Element::Co, Element::Li]
        .into_iter()
        .map(|e| (e, 100.0 * y.true_recovery(e).unwrap_or(f64::NAN)))
        .collect();
    println!(
        "peak memory after generating the year: {:.0} MB",
        peak_rss_mb()
    );
    drop(y);
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let system = anchor_system(&r);
    println!(
        "anchor: {} total-mass balances over {} readings",
        system.rows.len(),
        system.readings.len()
    );
    // Before any run: the records, the anchor's system and what the
    // allocator kept of the generator's year.
    let before = rss_mb();
    let mut times = Vec::new();
    let mut anchor = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        std::hint::black_box(system.solve_sparse().unwrap());
        anchor.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        last = Some(reconcile_records(from, to, &r).unwrap());
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    anchor.sort_by(f64::total_cmp);
    let b = last.unwrap();
    let (median, anchor_median) = (times[times.len() / 2], anchor[anchor.len() / 2]);
    println!(
        "reconciliation: median {median:.2} s of {} runs (runs {:?}); anchor median {anchor_median:.3} s \
         (runs {:?}); ratio {:.1}; peak memory {:.0} MB ({}), {before:.0} MB of it resident before the first run",
        times.len(),
        times
            .iter()
            .map(|t| (t * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        anchor
            .iter()
            .map(|t| (t * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        median / anchor_median,
        peak_rss_mb(),
        if reset {
            "records, anchor and reconciliation, the generator's peak reset"
        } else {
            "with the generator's: the peak could not be reset"
        }
    );
    println!(
        "{} nodes, {} streams, {} iterations, chi-square {:.1} on {} dof, passed {}",
        b.nodes, b.streams, b.iterations, b.chi_square, b.dof, b.passed
    );
    for f in &b.recovery {
        if f.element == Element::Cu {
            continue;
        }
        let Some(&truth) = truth.get(&f.element) else {
            continue;
        };
        let rec = 100.0 * f.reconciled.unwrap_or(f64::NAN);
        let raw = 100.0 * f.recorded.unwrap_or(f64::NAN);
        println!(
            "{}: truth {truth:.3} %, reconciled {rec:.3} % ({:+.3} pp), recorded {raw:.3} % ({:+.3} pp)",
            f.element,
            rec - truth,
            raw - truth
        );
    }
}
