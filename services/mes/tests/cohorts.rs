//! Recovery by chemistry and month of receipt: what the units of each
//! cohort held, and how much of it the backward traces of the recovering
//! lots allocate to them.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use remine_domain::{
    Chemistry, ContentSource, Element, GenealogyEdge, Kilograms, Lot, LotFields, LotGraph, LotId,
    LotKind, ProductKind, SideFraction,
};
use remine_mes::{CohortRecovery, cohorts};
use std::collections::HashMap;

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

fn lot(id: &str, kind: LotKind, month: u32, year: i32, mass: f64, els: &[(Element, f64)]) -> Lot {
    Lot::new(LotFields {
        id: LotId::parse(id).unwrap(),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: ContentSource::Declared,
        created_at: Utc.with_ymd_and_hms(year, month, 10, 8, 0, 0).unwrap(),
        passport: None,
        country_of_collection: None,
    })
    .unwrap()
}

fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
    GenealogyEdge {
        from: LotId::parse(from).unwrap(),
        to: LotId::parse(to).unwrap(),
        mass: kg(mass),
    }
}

/// Units: U-1 (NMC 811, March, 40 kg Ni, 5 kg Cu), U-2 (NMC 811, March,
/// 60 kg Ni), U-3 (LFP, April, 4 kg Li), U-0 (NMC 811, received the year
/// before, 50 kg Ni). U-1 and U-2 go whole into BM-1 (100 kg Ni), which
/// gives half its mass to NI-1 (45 kg Ni: the trace allocates it 40:60).
/// U-0 goes into NI-0. U-3 makes LI-1 with 3 kg Li; U-1's copper foil CU-1
/// holds 4 kg Cu.
fn plant() -> (Vec<Lot>, Vec<GenealogyEdge>, HashMap<LotId, Chemistry>) {
    let lots = vec![
        lot(
            "U-0",
            LotKind::InputUnit,
            12,
            2025,
            400.0,
            &[(Element::Ni, 50.0)],
        ),
        lot(
            "NI-0",
            LotKind::Product(ProductKind::NickelSulphate),
            1,
            2026,
            200.0,
            &[(Element::Ni, 44.0)],
        ),
        lot(
            "U-1",
            LotKind::InputUnit,
            3,
            2026,
            300.0,
            &[(Element::Ni, 40.0), (Element::Cu, 5.0)],
        ),
        lot(
            "U-2",
            LotKind::InputUnit,
            3,
            2026,
            450.0,
            &[(Element::Ni, 60.0)],
        ),
        lot(
            "U-3",
            LotKind::InputUnit,
            4,
            2026,
            200.0,
            &[(Element::Li, 4.0)],
        ),
        lot(
            "CU-1",
            LotKind::SideFraction(SideFraction::Copper),
            4,
            2026,
            6.0,
            &[(Element::Cu, 4.0)],
        ),
        lot(
            "BM-1",
            LotKind::BlackMass(Chemistry::Nmc811),
            4,
            2026,
            400.0,
            &[(Element::Ni, 95.0)],
        ),
        lot(
            "NI-1",
            LotKind::Product(ProductKind::NickelSulphate),
            5,
            2026,
            205.0,
            &[(Element::Ni, 45.0)],
        ),
        lot(
            "LI-1",
            LotKind::Product(ProductKind::LithiumCarbonate),
            5,
            2026,
            16.0,
            &[(Element::Li, 3.0)],
        ),
    ];
    let edges = vec![
        edge("U-0", "NI-0", 400.0),
        edge("U-1", "CU-1", 6.0),
        edge("U-1", "BM-1", 160.0),
        edge("U-2", "BM-1", 240.0),
        edge("BM-1", "NI-1", 200.0),
        edge("U-3", "LI-1", 200.0),
    ];
    let chem = [
        ("U-0", Chemistry::Nmc811),
        ("U-1", Chemistry::Nmc811),
        ("U-2", Chemistry::Nmc811),
        ("U-3", Chemistry::Lfp),
    ]
    .into_iter()
    .map(|(l, c)| (LotId::parse(l).unwrap(), c))
    .collect();
    (lots, edges, chem)
}

fn check(
    c: &CohortRecovery,
    month: u32,
    chem: Chemistry,
    units: usize,
    el: Element,
    input: f64,
    in_products: f64,
) {
    let k = remine_mes::COHORT_ELEMENTS
        .iter()
        .position(|&e| e == el)
        .unwrap();
    assert_eq!(
        (c.month, c.chemistry, c.units),
        (month, Some(chem), units),
        "{c:?}"
    );
    assert!((c.input[k] - input).abs() < 1e-9, "{el:?} input {c:?}");
    assert!(
        (c.in_products[k] - in_products).abs() < 1e-9,
        "{el:?} in products {c:?}"
    );
}

#[test]
fn each_cohort_gets_what_the_traces_of_the_recovering_lots_allocate_to_its_units() {
    let (lots, edges, chem) = plant();
    let graph = LotGraph::new(&lots, &edges).unwrap();
    let got = cohorts(&lots, &graph, &chem, 2026).unwrap();
    assert_eq!(got.len(), 2, "{got:#?}");
    // NI-1's 45 kg Ni, allocated by BM-1's inputs' Ni (40:60).
    check(&got[0], 3, Chemistry::Nmc811, 2, Element::Ni, 100.0, 45.0);
    assert!((got[0].rate(Element::Ni).unwrap() - 0.45).abs() < 1e-12);
    // The copper side fraction recovers Cu; sulphate does not count for it.
    check(&got[0], 3, Chemistry::Nmc811, 2, Element::Cu, 5.0, 4.0);
    check(&got[1], 4, Chemistry::Lfp, 1, Element::Li, 4.0, 3.0);
    assert_eq!(got[1].rate(Element::Ni), None, "no Ni input, no rate");
}

#[test]
fn units_of_another_year_and_unknown_chemistries_are_kept_apart() {
    let (lots, edges, mut chem) = plant();
    chem.remove(&LotId::parse("U-3").unwrap());
    let graph = LotGraph::new(&lots, &edges).unwrap();
    let got = cohorts(&lots, &graph, &chem, 2025).unwrap();
    assert_eq!(got.len(), 1, "{got:#?}");
    check(&got[0], 12, Chemistry::Nmc811, 1, Element::Ni, 50.0, 44.0);
    let got = cohorts(&lots, &graph, &chem, 2026).unwrap();
    assert_eq!((got[1].month, got[1].chemistry, got[1].units), (4, None, 1));
    assert!(cohorts(&lots, &graph, &chem, 2024).unwrap().is_empty());
}
