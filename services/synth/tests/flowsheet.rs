//! The year's truth conserves every tracked element through the whole
//! flowsheet, the genealogy never takes more from a lot than it holds, and
//! the year has the issue's shape (splits, blends, sizes in proportion).

#![allow(clippy::unwrap_used)]

use remine_domain::{Element, LotKind};
use remine_synth::{PlantYear, SynthConfig, generate};
use std::collections::HashMap;

fn year(units: usize, seed: u64) -> PlantYear {
    generate(&SynthConfig::new(units, seed).unwrap()).unwrap()
}

fn check_conservation(units: usize, seed: u64) {
    let y = year(units, seed);
    let b = y.truth_balance();
    let accounted = b.accounted();
    for e in Element::ALL {
        let i = e as usize;
        let input = b.inputs[i];
        assert!(input > 0.0, "{e}: nothing received");
        let rel = (accounted[i] - input).abs() / input;
        assert!(
            rel < 1e-9,
            "{e}: received {input} kg, accounted {} kg (rel {rel:e}) in {:?}",
            accounted[i],
            b.fates
        );
    }
}

#[test]
fn every_element_received_ends_in_products_side_fractions_residues_losses_or_stock() {
    check_conservation(300, 1);
    check_conservation(2_000, 2);
    check_conservation(41, 3);
    check_conservation(1, 4);
}

#[test]
fn the_fates_are_the_ones_the_flowsheet_has() {
    let b = year(2_000, 5).truth_balance();
    let fates: Vec<&str> = b.fates.keys().copied().collect();
    assert_eq!(
        fates,
        ["losses", "products", "residues", "side fractions", "stock"]
    );
    let ni = Element::Ni as usize;
    assert!(b.fates["products"][ni] > 0.5 * b.inputs[ni]);
    // Black mass left over at year end is stock, and small.
    assert!(b.fates["stock"][ni] > 0.0 && b.fates["stock"][ni] < 0.05 * b.inputs[ni]);
}

fn check_edges_within_sources(y: &PlantYear) {
    let mut out_booked: HashMap<usize, f64> = HashMap::new();
    let mut out_true: HashMap<usize, f64> = HashMap::new();
    for e in y.edges() {
        assert!(e.booked_kg >= 0.0 && e.true_kg >= 0.0);
        *out_booked.entry(e.from).or_default() += e.booked_kg;
        *out_true.entry(e.from).or_default() += e.true_kg;
    }
    for (from, booked) in out_booked {
        let lot = &y.lots()[from];
        assert!(
            booked <= lot.booked_mass() * (1.0 + 1e-12) + 1e-9,
            "edges out of {} take {booked} kg of its {} kg",
            lot.id(),
            lot.booked_mass()
        );
        assert!(out_true[&from] <= lot.true_mass() * (1.0 + 1e-9) + 1e-9);
    }
}

#[test]
fn edges_never_take_more_from_a_lot_than_it_was_booked_with() {
    check_edges_within_sources(&year(2_000, 6));
    check_edges_within_sources(&year(300, 7));
}

#[test]
fn lots_are_made_after_the_lots_they_are_made_of() {
    let y = year(1_000, 8);
    for e in y.edges() {
        assert!(e.from < e.to, "edge {} -> {}", e.from, e.to);
        assert!(y.lots()[e.from].created_at() < y.lots()[e.to].created_at());
    }
}

fn count(y: &PlantYear, f: impl Fn(LotKind) -> bool) -> usize {
    y.lots().iter().filter(|l| f(l.kind())).count()
}

#[test]
fn sizes_scale_with_the_number_of_units_as_in_the_issue() {
    // 200,000 units: 5,000 black-mass lots, 20,000 leach batches, 5,000 products.
    let y = year(8_000, 9);
    let bm = count(&y, |k| matches!(k, LotKind::BlackMass(_)));
    let lb = count(&y, |k| k == LotKind::LeachBatch);
    let products = count(&y, |k| matches!(k, LotKind::Product(_)));
    assert!((195..=210).contains(&bm), "{bm} black-mass lots");
    assert!((760..=840).contains(&lb), "{lb} leach batches");
    assert!((180..=220).contains(&products), "{products} product lots");
    assert_eq!(count(&y, |k| k == LotKind::InputUnit), 8_000);
}

#[test]
fn black_mass_lots_are_split_and_leach_batches_sometimes_blend_two_lots() {
    let y = year(2_000, 10);
    let into = y.edges_into();
    let mut from_two = 0;
    for (i, lot) in y.lots().iter().enumerate() {
        if lot.kind() == LotKind::LeachBatch {
            let sources = into[i].len();
            assert!((1..=3).contains(&sources));
            if sources > 1 {
                from_two += 1;
            }
        }
        if let LotKind::Product(_) = lot.kind() {
            assert!(into[i].len() > 1, "product {} is no blend", lot.id());
        }
    }
    assert!(from_two > 5, "{from_two} leach batches from two lots");
    let mut splits = HashMap::<usize, usize>::new();
    for e in y.edges() {
        if matches!(y.lots()[e.from].kind(), LotKind::BlackMass(_)) {
            *splits.entry(e.from).or_default() += 1;
        }
    }
    assert!(splits.values().filter(|n| **n >= 3).count() > splits.len() / 2);
}

#[test]
fn layered_oxides_and_lfp_are_shredded_apart() {
    let y = year(1_000, 11);
    let into = y.edges_into();
    let lfp_of_unit = |lot: usize| {
        y.units()[y.lots()[lot].unit().unwrap()].chemistry() == remine_domain::Chemistry::Lfp
    };
    for (i, lot) in y.lots().iter().enumerate() {
        if lot.kind() == LotKind::DischargeBatch {
            let kinds: Vec<bool> = into[i]
                .iter()
                .map(|e| lfp_of_unit(y.edges()[*e].from))
                .collect();
            assert!(
                kinds.iter().all(|k| *k == kinds[0]),
                "{} mixes routes",
                lot.id()
            );
        }
    }
}

#[test]
fn true_recoveries_are_those_of_the_simulators_plant() {
    let y = year(4_000, 12);
    let r = |e| y.true_recovery(e).unwrap();
    // Shredding sends 76-86 % of the active mass to the black mass; the
    // hydromet recovers most of it.
    for e in [Element::Ni, Element::Co] {
        assert!((0.60..0.85).contains(&r(e)), "{e} {}", r(e));
    }
    assert!(
        (0.50..0.85).contains(&r(Element::Li)),
        "Li {}",
        r(Element::Li)
    );
    assert!(
        (0.85..1.0).contains(&r(Element::Cu)),
        "Cu {}",
        r(Element::Cu)
    );
}
