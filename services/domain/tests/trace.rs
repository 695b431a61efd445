//! Genealogy traces on the lot graph: every element is conserved through
//! splits and blends, a hand-computed blend comes out as computed, forward
//! traces agree with backward ones, recalls add up, and unknown lots and
//! broken graphs are refused by name.

#![allow(clippy::unwrap_used)]

use chrono::DateTime;
use remine_domain::{
    Chemistry, ContentSource, CountryCode, Element, ElementKg, Genealogy, GenealogyEdge, Kilograms,
    Lot, LotFields, LotGraph, LotId, LotKind, PassportId, ProductKind,
};
use std::collections::HashMap;

fn id(s: &str) -> LotId {
    LotId::parse(s).unwrap()
}

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

fn lot(name: &str, kind: LotKind, mass: f64, els: &[(Element, f64)]) -> Lot {
    Lot::new(LotFields {
        id: id(name),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: ContentSource::Declared,
        created_at: DateTime::UNIX_EPOCH,
        passport: None,
        country_of_collection: None,
    })
    .unwrap()
}

fn unit(name: &str, mass: f64, els: &[(Element, f64)], country: &str) -> Lot {
    Lot::new(LotFields {
        id: id(name),
        kind: LotKind::InputUnit,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: ContentSource::Declared,
        created_at: DateTime::UNIX_EPOCH,
        passport: Some(PassportId::urn(&format!("urn:test:{name}")).unwrap()),
        country_of_collection: Some(CountryCode::parse(country).unwrap()),
    })
    .unwrap()
}

fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
    GenealogyEdge {
        from: id(from),
        to: id(to),
        mass: kg(mass),
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}

/// Checks one allocation: `(lot, element) -> expected kg`.
fn check(got: &[(LotId, ElementKg)], lot: &str, e: Element, expected: f64) {
    let found = got
        .iter()
        .find(|(l, _)| l.as_str() == lot)
        .unwrap_or_else(|| panic!("{lot} is not in the trace"));
    let v = found.1.get(e).kg();
    assert!(
        close(v, expected, 1e-12),
        "{lot} {e}: got {v}, expected {expected}"
    );
}

/// The plant of the hand-computed example: P1 and P2 make black mass BM1,
/// which is split between leach batches L1 and L2; L1 also takes unit P3.
fn small_plant() -> (Vec<Lot>, Vec<GenealogyEdge>) {
    use Element::*;
    let lots = vec![
        unit("P1", 100.0, &[(Ni, 20.0), (Co, 5.0), (Li, 2.0)], "DE"),
        unit("P2", 100.0, &[(Ni, 10.0), (Co, 5.0)], "FR"),
        unit("P3", 50.0, &[(Ni, 5.0), (Li, 1.0)], "PL"),
        lot(
            "BM1",
            LotKind::BlackMass(Chemistry::Nmc811),
            120.0,
            &[(Ni, 27.0), (Co, 9.0), (Li, 1.8)],
        ),
        lot(
            "L1",
            LotKind::LeachBatch,
            110.0,
            &[(Ni, 18.5), (Co, 4.0), (Li, 1.9), (Mn, 1.1)],
        ),
        lot("L2", LotKind::LeachBatch, 60.0, &[(Ni, 13.0)]),
    ];
    let edges = vec![
        edge("P1", "BM1", 100.0),
        edge("P2", "BM1", 100.0),
        edge("BM1", "L1", 60.0),
        edge("P3", "L1", 50.0),
        edge("BM1", "L2", 60.0),
    ];
    (lots, edges)
}

#[test]
fn a_blend_is_allocated_in_proportion_to_each_inputs_element_mass() {
    let (lots, edges) = small_plant();
    let g = LotGraph::new(&lots, &edges).unwrap();
    let t = g.backward(&id("L1")).unwrap();
    let sources: Vec<_> = t
        .sources
        .iter()
        .map(|s| (s.lot.id().clone(), s.elements))
        .collect();
    // Ni entering L1: BM1 60 kg x 27/120 = 13.5, P3 50 kg x 5/50 = 5; of
    // BM1's 13.5, P1 brought 20/30 and P2 10/30.
    check(&sources, "P1", Element::Ni, 9.0);
    check(&sources, "P2", Element::Ni, 4.5);
    check(&sources, "P3", Element::Ni, 5.0);
    // No Co enters with P3: all of it comes through BM1, half from each pack.
    check(&sources, "P1", Element::Co, 2.0);
    check(&sources, "P2", Element::Co, 2.0);
    check(&sources, "P3", Element::Co, 0.0);
    // Li: BM1 brings 0.9 (all P1's, P2 has none), P3 brings 1.0.
    check(&sources, "P1", Element::Li, 0.9);
    check(&sources, "P2", Element::Li, 0.0);
    check(&sources, "P3", Element::Li, 1.0);
    // No input declares Mn: it follows the masses (60 + 50 kg; BM1 50/50).
    check(&sources, "P1", Element::Mn, 0.3);
    check(&sources, "P2", Element::Mn, 0.3);
    check(&sources, "P3", Element::Mn, 0.5);
    let p1 = &t.sources[0];
    assert_eq!(p1.lot.passport().unwrap().as_str(), "urn:test:P1");
    assert_eq!(p1.lot.country().unwrap().as_str(), "DE");
    assert!(close(p1.mass.kg(), 30.0, 1e-12), "{}", p1.mass);
    assert_eq!(t.intermediates.len(), 1);
    let bm = &t.intermediates[0];
    assert_eq!(bm.lot.id().as_str(), "BM1");
    assert!(close(bm.elements.get(Element::Ni).kg(), 13.5, 1e-12));
    assert!(close(bm.share.value(), 60.0 / 110.0, 1e-12));
    assert!(close(t.total().get(Element::Ni).kg(), 18.5, 1e-12));
}

#[test]
fn a_lot_without_inputs_is_its_own_source() {
    let (lots, edges) = small_plant();
    let g = LotGraph::new(&lots, &edges).unwrap();
    let t = g.backward(&id("P2")).unwrap();
    assert_eq!(t.sources.len(), 1);
    assert_eq!(t.sources[0].lot.id().as_str(), "P2");
    assert_eq!(t.sources[0].elements.get(Element::Ni).kg(), 10.0);
    assert!(t.intermediates.is_empty());
}

#[test]
fn a_forward_trace_reaches_every_lot_made_from_the_input() {
    let (lots, edges) = small_plant();
    let g = LotGraph::new(&lots, &edges).unwrap();
    let t = g.forward(&id("P1")).unwrap();
    let reached: Vec<_> = t
        .lots
        .iter()
        .map(|a| (a.lot.id().clone(), a.elements))
        .collect();
    assert_eq!(reached.len(), 3);
    // BM1 holds 27 kg Ni, 20/30 of it from P1; L1's 9 kg as traced back.
    check(&reached, "BM1", Element::Ni, 18.0);
    check(&reached, "L1", Element::Ni, 9.0);
    check(&reached, "L2", Element::Ni, 13.0 * 2.0 / 3.0);
    let leach: Vec<_> = t.of_kind(|k| k == LotKind::LeachBatch).collect();
    assert_eq!(leach.len(), 2);
    assert!(close(t.lots[0].share.value(), 0.5, 1e-12));
}

#[test]
fn a_recall_of_black_mass_names_every_lot_made_from_it_with_its_share() {
    let (mut lots, mut edges) = small_plant();
    lots.push(lot(
        "NI1",
        LotKind::Product(ProductKind::NickelSulphate),
        100.0,
        &[(Element::Ni, 22.33)],
    ));
    edges.push(edge("L1", "NI1", 55.0));
    edges.push(edge("L2", "NI1", 60.0));
    let g = LotGraph::new(&lots, &edges).unwrap();
    let r = g.recall(&[id("BM1")]).unwrap();
    assert_eq!(r.suspects.len(), 1);
    let ids: Vec<_> = r.lots.iter().map(|a| a.lot.id().as_str()).collect();
    assert_eq!(ids, ["L1", "L2", "NI1"]);
    let products: Vec<_> = r.products().collect();
    assert_eq!(products.len(), 1);
    // The product's backward trace gives BM1 the same part of its Ni.
    let back = g.backward(&id("NI1")).unwrap();
    let through_bm = back
        .intermediates
        .iter()
        .find(|a| a.lot.id().as_str() == "BM1")
        .unwrap();
    let ni = |x: &ElementKg| x.get(Element::Ni).kg();
    assert!(close(
        ni(&products[0].elements),
        ni(&through_bm.elements),
        1e-12
    ));
    // L2 is made of BM1 only.
    assert!(close(r.lots[1].share.value(), 1.0, 1e-12));
}

#[test]
fn unknown_lots_are_refused_by_name() {
    let (lots, edges) = small_plant();
    let g = LotGraph::new(&lots, &edges).unwrap();
    let message = |e: remine_domain::DomainError| e.to_string();
    assert!(message(g.backward(&id("NOPE-1")).unwrap_err()).contains("NOPE-1"));
    assert!(message(g.forward(&id("NOPE-2")).unwrap_err()).contains("NOPE-2"));
    assert!(message(g.recall(&[id("P1"), id("NOPE-3")]).unwrap_err()).contains("NOPE-3"));
    assert!(!g.contains(&id("NOPE-1")));
    assert!(g.contains(&id("P1")));
}

#[test]
fn broken_graphs_are_refused_naming_the_lot() {
    let (lots, mut edges) = small_plant();
    let mut dangling = edges.clone();
    dangling.push(edge("GHOST", "L1", 1.0));
    let e = LotGraph::new(&lots, &dangling).unwrap_err().to_string();
    assert!(e.contains("GHOST"), "{e}");

    edges.push(edge("L1", "P1", 1.0));
    let e = LotGraph::new(&lots, &edges).unwrap_err().to_string();
    assert!(e.contains("cyclic"), "{e}");

    let mut twice = lots.clone();
    twice.push(lots[0].clone());
    let e = LotGraph::new(&twice, &[]).unwrap_err().to_string();
    assert!(e.contains("P1") && e.contains("twice"), "{e}");
}

#[test]
fn the_graph_can_be_built_on_other_content() {
    let (lots, edges) = small_plant();
    // A reconciliation that doubles L1's nickel.
    let g = LotGraph::with_content(&lots, &edges, |l| {
        if l.id().as_str() == "L1" {
            l.elements().plus(l.elements())
        } else {
            l.elements().clone()
        }
    })
    .unwrap();
    let t = g.backward(&id("L1")).unwrap();
    assert!(close(t.total().get(Element::Ni).kg(), 37.0, 1e-12));
}

// ---- random plants ----------------------------------------------------------

/// A small seeded generator (xorshift64*), so the random plants are the
/// same in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// A layered plant: units at the bottom, then layers of lots each made of
/// 1-4 lots of any lower layer, each lot split among several later lots.
/// Some elements are missing from some lots; edges take at most what their
/// input holds.
fn random_plant(seed: u64, units: usize, layers: usize) -> (Vec<Lot>, Vec<GenealogyEdge>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut lots = Vec::new();
    let mut edges = Vec::new();
    let mut left: Vec<f64> = Vec::new();
    let content = |rng: &mut Rng, mass: f64| -> Vec<(Element, f64)> {
        let mut out = Vec::new();
        for e in Element::ALL {
            if rng.below(4) != 0 {
                out.push((e, mass * 0.1 * rng.unit()));
            }
        }
        out
    };
    for i in 0..units {
        let mass = 10.0 + 500.0 * rng.unit();
        let els = content(&mut rng, mass);
        lots.push(unit(&format!("U{i}"), mass, &els, "DE"));
        left.push(mass);
    }
    for layer in 0..layers {
        let below = lots.len();
        for j in 0..(units / 2).max(2) {
            let name = format!("X{layer}-{j}");
            let n_inputs = 1 + rng.below(4);
            let mut inputs: Vec<usize> = (0..n_inputs).map(|_| rng.below(below)).collect();
            inputs.sort_unstable();
            inputs.dedup();
            let mut mass = 0.0;
            for &k in &inputs {
                let m = left[k] * (0.2 + 0.6 * rng.unit());
                left[k] -= m;
                mass += m;
                edges.push(edge(&lots[k].id().to_string(), &name, m));
            }
            let els = content(&mut rng, mass);
            let kind = if layer + 1 == layers {
                LotKind::Product(ProductKind::NickelSulphate)
            } else {
                LotKind::LeachBatch
            };
            lots.push(lot(&name, kind, mass, &els));
            left.push(mass);
        }
    }
    (lots, edges)
}

#[test]
fn every_element_is_conserved_through_random_splits_and_blends() {
    for seed in 1..=20 {
        let (lots, edges) = random_plant(seed, 40, 4);
        let g = LotGraph::new(&lots, &edges).unwrap();
        for l in &lots {
            let t = g.backward(l.id()).unwrap();
            let total = t.total();
            for e in Element::ALL {
                let (got, want) = (total.get(e).kg(), l.elements().get(e).kg());
                assert!(
                    close(got, want, 1e-9),
                    "seed {seed}, lot {}, {e}: sources sum to {got}, content {want}",
                    l.id()
                );
            }
            let mass: f64 = t.sources.iter().map(|s| s.mass.kg()).sum();
            assert!(close(mass, l.mass().kg(), 1e-9), "seed {seed}, {}", l.id());
        }
    }
}

#[test]
fn the_engine_agrees_with_the_recursive_allocation() {
    for seed in 1..=5 {
        let (lots, edges) = random_plant(seed, 12, 3);
        let g = LotGraph::new(&lots, &edges).unwrap();
        let genealogy = Genealogy::from_edges(edges.clone()).unwrap();
        let by_id: HashMap<_, _> = lots.iter().map(|l| (l.id().clone(), l.clone())).collect();
        for l in lots
            .iter()
            .filter(|l| !genealogy.inputs_of(l.id()).is_empty())
        {
            let t = g.backward(l.id()).unwrap();
            for e in [Element::Ni, Element::Co, Element::Li] {
                let want = genealogy.sources(l.id(), e, l.elements().get(e), &by_id);
                for s in &t.sources {
                    let w = want.get(s.lot.id()).map_or(0.0, |m| m.kg());
                    let got = s.elements.get(e).kg();
                    assert!(
                        (got - w).abs() <= 1e-9 * l.elements().get(e).kg().max(1e-9),
                        "seed {seed}, {} {e} from {}: {got} vs {w}",
                        l.id(),
                        s.lot.id()
                    );
                }
            }
        }
    }
}

#[test]
fn forward_shares_match_what_backward_traces_allocate() {
    for seed in 1..=10 {
        let (lots, edges) = random_plant(seed, 30, 4);
        let g = LotGraph::new(&lots, &edges).unwrap();
        for input in lots.iter().step_by(3) {
            let fwd = g.forward(input.id()).unwrap();
            for reached in &fwd.lots {
                let back = g.backward(reached.lot.id()).unwrap();
                let via = back
                    .sources
                    .iter()
                    .chain(&back.intermediates)
                    .find(|a| a.lot.id() == input.id())
                    .unwrap_or_else(|| panic!("{} not behind {}", input.id(), reached.lot.id()));
                for e in Element::ALL {
                    let (f, b) = (reached.elements.get(e).kg(), via.elements.get(e).kg());
                    assert!(
                        close(f, b, 1e-9),
                        "seed {seed}: {e} of {} from {}: forward {f}, backward {b}",
                        reached.lot.id(),
                        input.id()
                    );
                }
            }
        }
    }
}

#[test]
fn a_recall_of_two_unrelated_units_adds_their_forward_traces() {
    let (lots, edges) = random_plant(7, 30, 4);
    let g = LotGraph::new(&lots, &edges).unwrap();
    let (a, b) = (id("U3"), id("U17"));
    let r = g.recall(&[a.clone(), b.clone()]).unwrap();
    let mut sum: HashMap<LotId, ElementKg> = HashMap::new();
    for t in [g.forward(&a).unwrap(), g.forward(&b).unwrap()] {
        for x in &t.lots {
            let entry = sum.entry(x.lot.id().clone()).or_default();
            *entry = entry.plus(&x.elements);
        }
    }
    assert_eq!(r.lots.len(), sum.len());
    for x in &r.lots {
        for e in Element::ALL {
            let want = sum[x.lot.id()].get(e).kg();
            assert!(
                close(x.elements.get(e).kg(), want, 1e-9),
                "{} {e}",
                x.lot.id()
            );
        }
    }
}
