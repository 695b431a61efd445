//! Accuracy on synthetic plant years: the reconciled yearly recovery of Ni
//! and Co is within 0.3 percentage points of the truth and Li within 0.5,
//! and closer to the truth than the figure from the readings as they are.

mod plant;

use plant::{PlantConfig, REPORTED, generate};
use remine_balance::{Options, reconcile};

const TOLERANCE_PP: [f64; 3] = [0.3, 0.3, 0.5];

/// Errors (percentage points) of the reconciled and the raw recovery of
/// Ni, Co, Li in one year.
type Errors = ([f64; 3], [f64; 3]);

/// Errors (percentage points) of the reconciled and the raw recovery of one year.
fn year(lots: usize, seed: u64) -> Errors {
    let p = generate(&PlantConfig::year(lots, seed));
    let r = reconcile(&p.network, &Options::default()).expect("reconciles");
    assert!(r.converged, "seed {seed}");
    let rec = p.reconciled_recovery(&r);
    let mut reconciled = [0.0; 3];
    let mut raw = [0.0; 3];
    for k in 0..3 {
        reconciled[k] = 100.0 * (rec[k] - p.true_recovery[k]);
        raw[k] = 100.0 * (p.measured_recovery[k] - p.true_recovery[k]);
        println!(
            "seed {seed} {}: truth {:.3} %, reconciled {:.3} % ({:+.3} pp), unreconciled {:.3} % ({:+.3} pp)",
            REPORTED[k],
            100.0 * p.true_recovery[k],
            100.0 * rec[k],
            reconciled[k],
            100.0 * p.measured_recovery[k],
            raw[k]
        );
    }
    (reconciled, raw)
}

#[test]
fn reconciled_yearly_recoveries_are_within_tolerance_and_closer_than_the_raw_figures() {
    // Ten small years of 60 black-mass lots (2,400 input units, 240 leach
    // batches, 80 product lots each; few lots make the raw figure noisy):
    // every year within tolerance, and over the years the reconciled
    // figure's RMS error is below the raw one's.
    let years: Vec<Errors> = (0..10).map(|s| year(60, 7 + s)).collect();
    for k in 0..3 {
        let rms = |f: &dyn Fn(&Errors) -> f64| {
            (years.iter().map(|y| f(y).powi(2)).sum::<f64>() / years.len() as f64).sqrt()
        };
        let rec = rms(&|y| y.0[k]);
        let raw = rms(&|y| y.1[k]);
        let closer = years.iter().filter(|y| y.0[k].abs() < y.1[k].abs()).count();
        println!(
            "{}: RMS error reconciled {rec:.3} pp, unreconciled {raw:.3} pp; reconciled closer in {closer} of {} years",
            REPORTED[k],
            years.len()
        );
        for (i, y) in years.iter().enumerate() {
            assert!(
                y.0[k].abs() < TOLERANCE_PP[k],
                "year {i} {}: {:+.3} pp",
                REPORTED[k],
                y.0[k]
            );
        }
        assert!(
            rec < raw,
            "{}: reconciled RMS {rec} not below raw {raw}",
            REPORTED[k]
        );
    }
}

#[test]
fn a_larger_year_is_within_tolerance_and_closer_than_raw() {
    // 300 lots (12,000 units, 1,200 leach batches, 400 product lots): one
    // year, both figures shown.
    let (rec, raw) = year(300, 2026);
    for k in 0..3 {
        assert!(
            rec[k].abs() < TOLERANCE_PP[k],
            "{}: {:+.3} pp",
            REPORTED[k],
            rec[k]
        );
        assert!(
            rec[k].abs() < raw[k].abs(),
            "{}: reconciled {:+.4} pp, raw {:+.4} pp",
            REPORTED[k],
            rec[k],
            raw[k]
        );
    }
}
