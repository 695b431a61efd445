//! The noise of every instrument is the one configured (domain brief
//! section 6), and a biased instrument shows its bias.

#![allow(clippy::unwrap_used)]

use remine_synth::{Bias, Instrument, PlantYear, SynthConfig, generate};
use std::collections::BTreeMap;

/// measured / true - 1 of every reading, by instrument.
fn errors(y: &PlantYear) -> BTreeMap<Instrument, Vec<f64>> {
    let mut out: BTreeMap<Instrument, Vec<f64>> = BTreeMap::new();
    for lot in y.lots() {
        if let Some(w) = lot.weighing() {
            let wet = lot.true_mass() / (1.0 - lot.true_moisture());
            out.entry(w.instrument)
                .or_default()
                .push(w.wet_kg / wet - 1.0);
        }
        if let Some(by) = lot.assay_instrument() {
            for a in lot.assays() {
                let f = lot.true_element(a.element) / lot.true_mass();
                out.entry(by).or_default().push(a.fraction / f - 1.0);
            }
        }
    }
    out
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The sample's standard deviation is the configured one within three
/// standard errors of a standard deviation (and within 10 %), its mean is
/// `bias` within three standard errors of a mean.
fn check(instrument: Instrument, v: &[f64], bias: f64) {
    let sigma = instrument.relative_sigma();
    let n = v.len() as f64;
    let (mean, sd) = mean_sd(v);
    let sd_tol = (3.0 / (2.0 * n).sqrt()).min(0.10);
    assert!(
        (sd / sigma - 1.0).abs() < sd_tol,
        "{}: sd {sd:.5} vs configured {sigma} over {n} readings",
        instrument.name()
    );
    assert!(
        (mean - bias).abs() < 3.0 * sigma / n.sqrt() + 1e-12,
        "{}: mean error {mean:.5} vs bias {bias} over {n} readings",
        instrument.name()
    );
}

#[test]
fn each_instrument_reads_with_its_configured_noise() {
    let y = generate(&SynthConfig::new(40_000, 31).unwrap()).unwrap();
    let errors = errors(&y);
    assert_eq!(errors.len(), Instrument::ALL.len(), "{:?}", errors.keys());
    for (instrument, v) in &errors {
        assert!(v.len() >= 100, "{}: only {}", instrument.name(), v.len());
        check(*instrument, v, 0.0);
    }
}

#[test]
fn a_biased_instrument_shows_its_bias_and_the_others_do_not() {
    let config = SynthConfig::new(10_000, 32)
        .unwrap()
        .with_bias(Bias::parse("ICP-bm=+8%").unwrap())
        .with_bias(Bias::parse("WB-1=-2.5%").unwrap());
    let errors = errors(&generate(&config).unwrap());
    check(
        Instrument::BlackMassAssay,
        &errors[&Instrument::BlackMassAssay],
        0.08,
    );
    check(
        Instrument::Weighbridge,
        &errors[&Instrument::Weighbridge],
        -0.025,
    );
    check(
        Instrument::SolutionAssay,
        &errors[&Instrument::SolutionAssay],
        0.0,
    );
}

#[test]
fn moisture_is_determined_within_its_absolute_error() {
    let y = generate(&SynthConfig::new(20_000, 33).unwrap()).unwrap();
    let d: Vec<f64> = y
        .lots()
        .iter()
        .filter_map(|l| l.weighing().map(|w| (w.moisture, l.true_moisture())))
        .filter(|(_, m)| *m > 0.0)
        .map(|(measured, m)| measured - m)
        .collect();
    let (mean, sd) = mean_sd(&d);
    assert!(d.len() > 1_000);
    assert!(
        (sd / remine_domain::MOISTURE_SIGMA - 1.0).abs() < 0.1,
        "sd {sd}"
    );
    assert!(
        mean.abs() < 3.0 * sd / (d.len() as f64).sqrt(),
        "mean {mean}"
    );
}

fn check_bias(spec: &str, expected: Result<(&str, f64), &str>) {
    match (Bias::parse(spec), expected) {
        (Ok(b), Ok((name, rel))) => {
            assert_eq!(b.instrument.name(), name);
            assert!((b.relative - rel).abs() < 1e-12, "{spec}");
        }
        (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{spec}: {e}"),
        (got, want) => panic!("{spec}: got {got:?}, expected {want:?}"),
    }
}

#[test]
fn biases_parse_as_instrument_equals_signed_percentage() {
    check_bias("WB-1=+8%", Ok(("WB-1", 0.08)));
    check_bias("BW-bm=-2.5%", Ok(("BW-bm", -0.025)));
    check_bias("ICP-pls=3%", Ok(("ICP-pls", 0.03)));
    check_bias(
        "WB-9=+8%",
        Err("unknown instrument 'WB-9'; one of WB-1, PS-intake"),
    );
    check_bias("WB-1", Err("expected INSTRUMENT=+N%"));
    check_bias("WB-1=8", Err("'8' is not a percentage like +8%"));
    check_bias("WB-1=+80%", Err("80 % is outside -50..50 %"));
}
