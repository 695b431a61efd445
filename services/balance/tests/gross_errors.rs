//! Gross-error detection on a plant campaign with the uncertainties of
//! domain brief section 6: a biased weigher is found and named; without
//! bias the global test raises false alarms at its nominal rate.

mod plant;

use plant::{PlantConfig, generate};
use remine_balance::{Options, reconcile};

fn campaign(seed: u64, bias: Option<(&str, f64)>) -> PlantConfig {
    let mut c = PlantConfig::year(3, seed);
    c.bias = bias.map(|(i, f)| (i.to_string(), f));
    c
}

/// What the tests say about one campaign.
struct Verdict {
    passed: bool,
    first_reading: Option<String>,
    first_instrument: Option<(String, f64, bool)>,
}

fn check(cfg: &PlantConfig) -> Verdict {
    let p = generate(cfg);
    let r = reconcile(&p.network, &Options::default()).expect("reconciles");
    assert!(r.converged);
    Verdict {
        passed: r.global.passed,
        first_reading: r.suspects.first().map(|s| s.instrument.clone()),
        first_instrument: r
            .instruments
            .first()
            .map(|i| (i.instrument.clone(), i.relative_bias, i.suspect)),
    }
}

/// A campaign whose `instrument` reads 8 % high: the global test fails and
/// the instrument test names it first, with its bias.
fn check_biased(instrument: &str, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let v = check(&campaign(seed, Some((instrument, 1.08))));
        assert!(!v.passed, "seed {seed}: the global test should fail");
        let (name, bias, suspect) = v.first_instrument.expect("an instrument test");
        assert_eq!(name, instrument, "seed {seed}");
        assert!(suspect, "seed {seed}");
        assert!(
            (bias - 0.08).abs() < 0.02,
            "seed {seed}: estimated bias {bias}"
        );
    }
}

#[test]
fn a_leach_feed_belt_weigher_reading_8_percent_high_is_named_by_the_instrument_test() {
    check_biased("belt weigher BW-3", 0..10);
}

#[test]
fn the_reading_test_smears_a_bias_over_many_readings_onto_the_few_they_meet() {
    // BW-3 weighs the four charges of each lot; the lot's one weighbridge
    // reading meets all four in the split balance, so its normalised
    // adjustment is as large: the reading test points at the split, the
    // instrument test at the weigher.
    let v = check(&campaign(0, Some(("belt weigher BW-3", 1.08))));
    let first = v.first_reading.expect("a suspect reading");
    assert!(
        first == "weighbridge WB-1" || first == "belt weigher BW-3",
        "{first}"
    );
}

#[test]
fn a_weighbridge_reading_8_percent_high_is_named_by_the_instrument_test() {
    check_biased("weighbridge WB-1", 0..10);
}

#[test]
fn an_icp_lab_reading_8_percent_high_is_named_by_the_instrument_test() {
    check_biased("ICP lab A", 0..5);
}

#[test]
fn a_shredder_feed_weigher_reading_8_percent_high_is_named_first_by_both_tests() {
    // BW-1 meets two balances (the discharge batch and the shredder), so
    // the reading test can tell it from the readings it shares them with.
    check_biased("belt weigher BW-1", 0..10);
    for seed in 0..10 {
        let v = check(&campaign(seed, Some(("belt weigher BW-1", 1.08))));
        assert_eq!(
            v.first_reading.as_deref(),
            Some("belt weigher BW-1"),
            "seed {seed}"
        );
    }
}

#[test]
fn a_black_mass_assay_biased_high_is_named_first() {
    let p = generate(&campaign(3, None));
    let r0 = reconcile(&p.network, &Options::default()).expect("reconciles");
    assert!(r0.global.passed, "the unbiased campaign passes");
    let v = check(&campaign(3, Some(("BM lab sample BM1", 1.15))));
    assert!(!v.passed);
    assert_eq!(v.first_reading.as_deref(), Some("BM lab sample BM1"));
}

#[test]
fn without_bias_the_global_test_fails_about_five_percent_of_the_time() {
    let draws = 200;
    let mut alarms = 0;
    let mut suspects = 0;
    let mut instruments = 0;
    for seed in 1000..1000 + draws {
        let v = check(&campaign(seed, None));
        alarms += usize::from(!v.passed);
        suspects += usize::from(v.first_reading.is_some());
        instruments += usize::from(v.first_instrument.is_some_and(|(_, _, s)| s));
    }
    let rate = alarms as f64 / draws as f64;
    println!(
        "false alarms in {draws} unbiased campaigns: global test {alarms} ({:.1} %), \
         a suspect reading {suspects}, a suspect instrument {instruments}",
        100.0 * rate
    );
    // Binomial(200, 0.05): mean 10, sd 3.1.
    assert!((2..=19).contains(&alarms), "false-alarm rate {rate}");
    assert!(
        suspects <= 20,
        "Bonferroni keeps the reading test near alpha: {suspects}"
    );
    assert!(
        instruments <= 20,
        "Bonferroni keeps the instrument test near alpha: {instruments}"
    );
}
