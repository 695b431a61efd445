//! Splits and blends carry element masses with the mass: a split that takes
//! a whole lot hands out exactly its content, a blend carries exactly the
//! sum of its portions' shares, and impossible steps are refused by name.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use remine_domain::{
    Chemistry, ContentSource, CountryCode, DomainError, Element, GenealogyEdge, Kilograms, Lot,
    LotFields, LotId, LotKind, Step, StepKind, blend, split,
};

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

fn id(s: &str) -> LotId {
    LotId::parse(s).unwrap()
}

/// Black mass with awkward decimals, so rounding would show.
fn black_mass(name: &str, mass: f64, ni: f64, source: ContentSource, country: &str) -> Lot {
    Lot::new(LotFields {
        id: id(name),
        kind: LotKind::BlackMass(Chemistry::Nmc811),
        mass: kg(mass),
        elements: [
            (Element::Ni, kg(ni)),
            (Element::Co, kg(ni / 8.0 + 0.1)),
            (Element::Li, kg(mass * 0.035_7)),
        ]
        .into_iter()
        .collect(),
        content_source: source,
        created_at: Utc::now(),
        passport: None,
        country_of_collection: Some(CountryCode::parse(country).unwrap()),
    })
    .unwrap()
}

fn sum_of(step: &Step, e: Element) -> f64 {
    step.outputs()
        .iter()
        .map(|(l, _)| l.elements().get(e).kg())
        .sum()
}

#[test]
fn a_split_of_a_whole_lot_hands_out_exactly_its_content() {
    let bm = black_mass("BM-7", 1000.0, 217.333_3, ContentSource::Assayed, "DE");
    let parts = [
        (id("BM-7a"), kg(333.3)),
        (id("BM-7b"), kg(333.3)),
        (id("BM-7c"), kg(333.4)),
    ];
    let step = split(&bm, bm.mass(), &parts, Utc::now()).unwrap();
    assert_eq!(step.kind(), StepKind::Split);
    for e in [Element::Ni, Element::Co, Element::Li] {
        assert_eq!(sum_of(&step, e), bm.elements().get(e).kg(), "{e:?}");
    }
    let (a, edges) = &step.outputs()[0];
    assert_eq!(a.kind(), bm.kind());
    assert_eq!(a.content_source(), ContentSource::Assayed);
    assert_eq!(a.country_of_collection(), bm.country_of_collection());
    assert_eq!(
        edges,
        &[GenealogyEdge {
            from: id("BM-7"),
            to: id("BM-7a"),
            mass: kg(333.3)
        }]
    );
    assert!((a.elements().get(Element::Ni).kg() - 217.333_3 * 0.3333).abs() < 1e-9);
}

#[test]
fn a_split_that_leaves_stock_gives_each_part_its_share() {
    let bm = black_mass("BM-8", 800.0, 160.0, ContentSource::Declared, "FR");
    let step = split(
        &bm,
        kg(800.0),
        &[(id("X"), kg(200.0)), (id("Y"), kg(100.0))],
        Utc::now(),
    )
    .unwrap();
    assert_eq!(step.outputs()[0].0.elements().get(Element::Ni).kg(), 40.0);
    assert_eq!(step.outputs()[1].0.elements().get(Element::Ni).kg(), 20.0);
    assert_eq!(step.takes(), [(id("BM-8"), kg(300.0))]);
}

#[test]
fn a_blend_carries_exactly_the_sum_of_its_portions_shares() {
    let a = black_mass("BM-1", 600.0, 130.2, ContentSource::Assayed, "DE");
    let b = black_mass("BM-2", 400.0, 71.9, ContentSource::Estimated, "PL");
    let step = blend(
        id("BLEND-1"),
        LotKind::BlackMass(Chemistry::Nmc811),
        &[(&a, kg(600.0), kg(600.0)), (&b, kg(100.0), kg(400.0))],
        Utc::now(),
    )
    .unwrap();
    let (lot, edges) = &step.outputs()[0];
    assert_eq!(lot.mass(), kg(700.0));
    let expected =
        a.elements().get(Element::Ni).kg() + b.elements().scaled(0.25).get(Element::Ni).kg();
    assert_eq!(lot.elements().get(Element::Ni).kg(), expected);
    assert_eq!(
        lot.content_source(),
        ContentSource::Estimated,
        "as poor as its worst input"
    );
    assert_eq!(lot.country_of_collection(), None, "two countries: none");
    assert_eq!(edges.len(), 2);
    assert_eq!(
        step.takes(),
        [(id("BM-1"), kg(600.0)), (id("BM-2"), kg(100.0))]
    );
}

fn check(result: Result<Step, DomainError>, fragment: &str) {
    let e = result.expect_err("must be refused").to_string();
    assert!(e.contains(fragment), "'{e}' does not say '{fragment}'");
}

#[test]
fn impossible_steps_are_refused_naming_the_lot() {
    let bm = black_mass("BM-9", 500.0, 100.0, ContentSource::Assayed, "DE");
    check(
        split(&bm, kg(500.0), &[(id("P"), kg(10.0))], Utc::now()),
        "a split of lot BM-9 needs at least two parts (got 1)",
    );
    check(
        split(
            &bm,
            kg(300.0),
            &[(id("P"), kg(200.0)), (id("Q"), kg(200.0))],
            Utc::now(),
        ),
        "the parts of lot BM-9 weigh 400 kg; it has 300 kg in stock",
    );
    check(
        split(
            &bm,
            kg(500.0),
            &[(id("P"), kg(0.0)), (id("Q"), kg(200.0))],
            Utc::now(),
        ),
        "mass of a part or portion must be > 0 kg (got 0 kg for P)",
    );
    check(
        split(
            &bm,
            kg(500.0),
            &[(id("P"), kg(10.0)), (id("P"), kg(20.0))],
            Utc::now(),
        ),
        "lists one new lot twice",
    );
    let other = black_mass("BM-10", 100.0, 20.0, ContentSource::Assayed, "DE");
    check(
        blend(
            id("BL"),
            LotKind::LeachBatch,
            &[(&bm, kg(10.0), kg(500.0)), (&other, kg(150.0), kg(100.0))],
            Utc::now(),
        ),
        "the blend into lot BL takes 150 kg of lot BM-10; it has 100 kg in stock",
    );
    check(
        blend(
            id("BL"),
            LotKind::LeachBatch,
            &[(&bm, kg(10.0), kg(500.0))],
            Utc::now(),
        ),
        "needs portions of at least two lots (got 1)",
    );
    let own = black_mass("SELF", 10.0, 1.0, ContentSource::Assayed, "DE");
    check(
        Step::new(
            StepKind::Produce,
            vec![(
                own,
                vec![GenealogyEdge {
                    from: id("SELF"),
                    to: id("SELF"),
                    mass: kg(1.0),
                }],
            )],
        ),
        "lot SELF is made by this step and cannot be its input",
    );
}
