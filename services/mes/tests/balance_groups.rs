//! Input units that one step takes whole, booked from the same content
//! factor and weighed on the same scale, are balanced as one stream: the
//! step's balances see them only through their sum, so the period's
//! figures are those of the units balanced one by one, with fewer streams.
//! Units of several chemistries or content sources are one blended stream,
//! exact for units of one composition and close otherwise. Each unit's
//! reconciled content is its share of the group's, and traces on
//! reconciled values allocate those.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use remine_domain::LotGraph;
use remine_domain::{
    Assay, ContentSource, Element, Kilograms, Lot, LotFields, LotId, LotKind, MassFraction,
    MassMethod, MeasuredMass,
};
use remine_mes::{
    BalanceRecords, PeriodBalance, reconcile_records, reconcile_records_with_contents,
};
use remine_testkit::lots::edge;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn id(s: &str) -> LotId {
    LotId::parse(s).unwrap()
}

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

/// A lot made (or received) `minute` minutes into the period.
fn lot(name: &str, kind: LotKind, mass: f64, els: &[(Element, f64)], minute: i64) -> Lot {
    Lot::new(LotFields {
        id: id(name),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: if kind == LotKind::InputUnit {
            ContentSource::Declared
        } else {
            ContentSource::Assayed
        },
        created_at: t0() + Duration::minutes(minute),
        passport: None,
        country_of_collection: None,
    })
    .unwrap()
}

fn weighing(mass: f64, instrument: &str) -> MeasuredMass {
    MeasuredMass::dry(kg(mass), MassMethod::PlatformScale, instrument).unwrap()
}

fn ni_assay(lot: &str, f: f64) -> Assay {
    Assay::new(
        id(lot),
        "S-1",
        Element::Ni,
        MassFraction::new(f).unwrap(),
        f * 0.02,
        "ICP-OES",
        "lab A",
    )
    .unwrap()
}

/// Two units of one composition (10 % Ni, 5 % Cu), weighed on `scales`,
/// discharged into DB-1 and shredded into assayed black mass and a copper
/// fraction; the records disagree a little, so the balance adjusts.
fn plant(scales: [&str; 2]) -> BalanceRecords {
    let unit = |name, mass: f64, minute| {
        lot(
            name,
            LotKind::InputUnit,
            mass,
            &[(Element::Ni, 0.10 * mass), (Element::Cu, 0.05 * mass)],
            minute,
        )
    };
    let black_mass = LotKind::BlackMass(remine_domain::Chemistry::Nmc811);
    let copper = LotKind::SideFraction(remine_domain::SideFraction::Copper);
    let mut r = BalanceRecords {
        lots: vec![
            unit("U-1", 400.0, 0),
            unit("U-2", 600.0, 1),
            lot(
                "DB-1",
                LotKind::DischargeBatch,
                1000.0,
                &[(Element::Ni, 100.0), (Element::Cu, 50.0)],
                2,
            ),
            lot("BM-1", black_mass, 700.0, &[(Element::Ni, 97.0)], 3),
            lot(
                "CU-1",
                copper,
                300.0,
                &[(Element::Ni, 3.0), (Element::Cu, 50.0)],
                3,
            ),
        ],
        edges: vec![
            edge("U-1", "DB-1", 400.0),
            edge("U-2", "DB-1", 600.0),
            edge("DB-1", "BM-1", 700.0),
            edge("DB-1", "CU-1", 300.0),
        ],
        ..BalanceRecords::default()
    };
    for (lot, mass, scale) in [
        ("U-1", 404.0, scales[0]),
        ("U-2", 597.0, scales[1]),
        ("DB-1", 1008.0, "feed belt"),
        ("BM-1", 689.0, "platform BM"),
        ("CU-1", 303.0, "platform BM"),
    ] {
        r.weighings.insert(id(lot), weighing(mass, scale));
    }
    r.assays.insert(id("BM-1"), vec![ni_assay("BM-1", 0.1350)]);
    r.assays.insert(id("CU-1"), vec![ni_assay("CU-1", 0.0110)]);
    r
}

fn reconciled(r: &BalanceRecords) -> PeriodBalance {
    reconcile_records(t0(), t0() + Duration::hours(1), r).unwrap()
}

/// The reconciled inflow of `quantity` at `node`.
fn inflow(b: &PeriodBalance, node: &str, quantity: &str) -> f64 {
    let c = b
        .closures
        .iter()
        .find(|c| &*c.node == node && c.quantity == quantity)
        .unwrap_or_else(|| panic!("no {quantity} closure at {node}: {:?}", b.closures));
    c.reconciled.as_ref().unwrap().inflow
}

fn check_same(grouped: &PeriodBalance, apart: &PeriodBalance) {
    let rel = (grouped.chi_square - apart.chi_square).abs() / apart.chi_square;
    assert!(
        rel < 1e-6,
        "chi-square {} grouped, {} apart",
        grouped.chi_square,
        apart.chi_square
    );
    assert_eq!(grouped.dof, apart.dof);
    let (g, a) = (&grouped.recovery, &apart.recovery);
    for (g, a) in g.iter().zip(a) {
        let (gi, ai) = (g.input_kg.unwrap(), a.input_kg.unwrap());
        assert!(
            (gi - ai).abs() < 1e-6 * ai.max(1.0),
            "{} input {gi} grouped, {ai} apart",
            g.element
        );
        assert_eq!(g.reconciled.is_some(), a.reconciled.is_some());
        if let (Some(gr), Some(ar)) = (g.reconciled, a.reconciled) {
            assert!(
                (gr - ar).abs() < 1e-9,
                "{} rate {gr} grouped, {ar} apart",
                g.element
            );
        }
        // The rate's sigma sums the input streams' own variances as if
        // independent, so two streams apart differ from their sum in the
        // (small) reconciled covariance between them.
        if let (Some(gs), Some(as_)) = (g.sigma, a.sigma) {
            assert!(
                (gs - as_).abs() <= 1e-4 * as_,
                "{} sigma {gs} grouped, {as_} apart",
                g.element
            );
        }
    }
    for q in ["total", "Ni", "Cu"] {
        let (gc, ac) = (
            inflow(grouped, "make DB-1", q),
            inflow(apart, "make DB-1", q),
        );
        assert!(
            (gc - ac).abs() < 1e-6 * ac,
            "{q} into DB-1: {gc} grouped, {ac} apart"
        );
    }
}

#[test]
fn units_fed_together_from_one_scale_are_one_stream_with_the_figures_of_units_apart() {
    // The same readings, once with both units on one scale (one group) and
    // once on two scales of the same accuracy (two streams).
    let together = plant(["receiving scale", "receiving scale"]);
    let separate = plant(["receiving scale", "receiving scale 2"]);
    let grouped = reconciled(&together);
    let apart = reconciled(&separate);
    assert_eq!(grouped.streams + 1, apart.streams);
    assert!(grouped.chi_square > 0.1, "the records disagree");
    check_same(&grouped, &apart);
    // Each unit's reconciled content, shared back from the group, is what
    // it reconciles to as a stream of its own (to 1e-5: the share of the
    // own errors is by variance, not by the element rows' solution).
    let span = t0() + Duration::hours(1);
    let (_, grouped) = reconcile_records_with_contents(t0(), span, &together).unwrap();
    let (_, apart) = reconcile_records_with_contents(t0(), span, &separate).unwrap();
    for (l, el) in together.lots[..2]
        .iter()
        .flat_map(|l| [(l, Element::Ni), (l, Element::Cu)])
    {
        let (g, a) = (
            grouped.content(l).get(el).kg(),
            apart.content(l).get(el).kg(),
        );
        assert!(
            (g - a).abs() < 1e-5 * a,
            "{} {el}: {g} grouped, {a} apart",
            l.id()
        );
    }
}

#[test]
fn a_groups_units_share_its_reconciled_flow_and_traces_allocate_the_reconciled_contents() {
    let records = plant(["receiving scale", "receiving scale"]);
    let (balance, contents) =
        reconcile_records_with_contents(t0(), t0() + Duration::hours(1), &records).unwrap();
    let lot = |name: &str| {
        records
            .lots
            .iter()
            .find(|l| l.id().as_str() == name)
            .unwrap()
    };
    let ni = |name: &str| contents.content(lot(name)).get(Element::Ni).kg();
    // The two units' reconciled Ni is what the balance let into DB-1,
    // which is not what was booked (100 kg).
    let into_db = inflow(&balance, "make DB-1", "Ni");
    let units = ni("U-1") + ni("U-2");
    assert!(
        (units - into_db).abs() < 1e-9 * into_db,
        "units {units} kg, into DB-1 {into_db} kg"
    );
    assert!(
        (units - 100.0).abs() > 0.1,
        "reconciled {units} kg, booked 100"
    );
    // Units of one composition on one scale keep the ratio of their
    // weighings (404 and 597 kg), to the small share of each in the
    // adjustment.
    let ratio = ni("U-1") / ni("U-2");
    assert!((ratio - 404.0 / 597.0).abs() < 1e-3, "U-1/U-2 Ni {ratio}");
    // A backward trace of BM-1 on reconciled values: its sources' Ni sums
    // to BM-1's reconciled Ni and is split as the units' reconciled Ni.
    let graph =
        LotGraph::with_content(&records.lots, &records.edges, |l| contents.content(l)).unwrap();
    let trace = graph.backward(&id("BM-1")).unwrap();
    let bm = ni("BM-1");
    assert!(
        (bm - 97.0).abs() > 0.01,
        "BM-1 Ni reconciled {bm}, recorded 97"
    );
    let total = trace.total().get(Element::Ni).kg();
    assert!(
        (total - bm).abs() < 1e-9 * bm,
        "sources {total} kg, BM-1 {bm} kg"
    );
    let allocated = |name: &str| {
        trace
            .sources
            .iter()
            .find(|s| s.lot.id().as_str() == name)
            .unwrap()
            .elements
            .get(Element::Ni)
            .kg()
    };
    let split = allocated("U-1") / allocated("U-2");
    assert!(
        (split - ratio).abs() < 1e-9,
        "trace splits {split}, contents {ratio}"
    );
    // Elements the balance does not hold keep their recorded masses.
    assert_eq!(contents.content(lot("U-1")).get(Element::Fe).kg(), 0.0);
}

#[test]
fn units_of_two_chemistries_fed_together_are_one_blended_stream_close_to_the_units_apart() {
    // U-1 is an NMC 811 unit, U-2 of unknown chemistry: their contents
    // answer to different content factors, blended in the one stream.
    let mixed = |scales| {
        let mut r = plant(scales);
        r.chemistries
            .insert(id("U-1"), remine_domain::Chemistry::Nmc811);
        r
    };
    let together = mixed(["receiving scale", "receiving scale"]);
    let (grouped, contents) =
        reconcile_records_with_contents(t0(), t0() + Duration::hours(1), &together).unwrap();
    let apart = reconciled(&mixed(["receiving scale", "receiving scale 2"]));
    assert_eq!(grouped.streams + 1, apart.streams);
    // Of one composition, the blend is the units' balance exactly.
    check_same(&grouped, &apart);
    // Of different compositions (U-2 now 6 % Ni), it differs only in the
    // covariance of mass and element flow: a little.
    let poorer = |scales| {
        let mut r = mixed(scales);
        r.lots[1] = lot(
            "U-2",
            LotKind::InputUnit,
            600.0,
            &[(Element::Ni, 36.0), (Element::Cu, 30.0)],
            1,
        );
        r
    };
    let g = reconciled(&poorer(["receiving scale", "receiving scale"]));
    let a = reconciled(&poorer(["receiving scale", "receiving scale 2"]));
    let (gi, ai) = (inflow(&g, "make DB-1", "Ni"), inflow(&a, "make DB-1", "Ni"));
    assert!(
        (gi - ai).abs() < 1e-4 * ai,
        "Ni into DB-1 {gi} grouped, {ai} apart"
    );
    assert!(
        (g.chi_square - a.chi_square).abs() < 1e-3 * a.chi_square,
        "chi-square {} grouped, {} apart",
        g.chi_square,
        a.chi_square
    );
    // The units' reconciled Ni is the blend's.
    let ni = |name: &str| {
        let lot = together
            .lots
            .iter()
            .find(|l| l.id().as_str() == name)
            .unwrap();
        contents.content(lot).get(Element::Ni).kg()
    };
    let into_db = inflow(&grouped, "make DB-1", "Ni");
    assert!(
        (ni("U-1") + ni("U-2") - into_db).abs() < 1e-9 * into_db,
        "{} + {} vs {into_db}",
        ni("U-1"),
        ni("U-2")
    );
}

#[test]
fn an_assayed_unit_and_a_unit_taken_in_part_keep_streams_of_their_own() {
    let streams = |scales, change: &dyn Fn(&mut BalanceRecords)| {
        let mut r = plant(scales);
        change(&mut r);
        reconciled(&r).streams
    };
    let same = ["receiving scale", "receiving scale"];
    let other = ["receiving scale", "receiving scale 2"];
    let assayed = |r: &mut BalanceRecords| {
        r.assays.insert(id("U-2"), vec![ni_assay("U-2", 0.10)]);
    };
    assert_eq!(streams(same, &assayed), streams(other, &assayed));
    let in_part = |r: &mut BalanceRecords| {
        r.edges[1] = edge("U-2", "DB-1", 500.0);
    };
    assert_eq!(streams(same, &in_part), streams(other, &in_part));
    // Without either, the same scale makes one stream of two.
    assert_eq!(streams(same, &|_| ()) + 1, streams(other, &|_| ()));
}

#[test]
fn a_blend_whose_first_unit_books_no_copper_shares_the_copper_to_the_unit_that_does() {
    // U-1 (NMC 811) books Ni only; U-2 (chemistry unknown) Ni and Cu: the
    // Cu of the blend has one part, U-2's, while Ni has two.
    let mut r = plant(["receiving scale", "receiving scale"]);
    r.lots[0] = lot("U-1", LotKind::InputUnit, 400.0, &[(Element::Ni, 40.0)], 0);
    r.chemistries
        .insert(id("U-1"), remine_domain::Chemistry::Nmc811);
    let (balance, contents) =
        reconcile_records_with_contents(t0(), t0() + Duration::hours(1), &r).unwrap();
    let kg = |lot: usize, el| contents.content(&r.lots[lot]).get(el).kg();
    assert_eq!(kg(0, Element::Cu), 0.0);
    for (el, q) in [(Element::Ni, "Ni"), (Element::Cu, "Cu")] {
        let into_db = inflow(&balance, "make DB-1", q);
        let units = kg(0, el) + kg(1, el);
        assert!(
            (units - into_db).abs() < 1e-9 * into_db,
            "{q}: units {units}, into DB-1 {into_db}"
        );
    }
    assert!(kg(1, Element::Cu) > 25.0, "U-2 Cu {}", kg(1, Element::Cu));
}
