//! Genealogy traces: backward to the input units, forward to the products,
//! and the impact of a recall, by proportional allocation on a compact lot
//! graph.
//!
//! [`LotGraph`] is built once from the lots and the edges: lot ids are
//! interned to `u32` indices, the edges are kept in compressed rows both
//! ways, and every lot is given a global topological rank (which also
//! refuses a cycle). For every edge the build computes, per element, the
//! share of the receiving lot's element mass that the edge's input carries:
//! its element mass entering the blend (edge mass times the input lot's
//! element fraction) over the sum of all inputs' (ISO 22095 proportional
//! allocation, domain brief section 6). Where no input carries an element,
//! the element follows the mass shares; where no input carries mass either,
//! the inputs share equally. The shares of one lot's inputs sum to one, so
//! every trace conserves each element: the sources' allocations add up to
//! the traced lot's content, to floating-point rounding.
//!
//! A trace never enumerates paths. It collects the lots reached (a
//! depth-first walk), sorts them by rank and pushes amounts through each
//! lot once: backward from the traced lot down to its sources, forward from
//! the suspects up to every lot made from them. The buffers of a walk are
//! kept per thread and reused, so a trace allocates only its answer.
//!
//! The graph takes each lot's element masses from a function
//! ([`LotGraph::with_content`]): the recorded ones by default
//! ([`LotGraph::new`]), reconciled ones when a balance has been solved.
//!
//! ```
//! # use remine_domain::*;
//! # let kg = |v| Kilograms::new(v).unwrap();
//! # let lot = |id: &str, kind, mass, ni| Lot::new(LotFields {
//! #     id: LotId::parse(id).unwrap(), kind, mass: kg(mass),
//! #     elements: [(Element::Ni, kg(ni))].into_iter().collect(),
//! #     content_source: ContentSource::Declared, created_at: chrono::DateTime::UNIX_EPOCH,
//! #     passport: None, country_of_collection: None }).unwrap();
//! # let edge = |a: &str, b: &str, m| GenealogyEdge {
//! #     from: LotId::parse(a).unwrap(), to: LotId::parse(b).unwrap(), mass: kg(m) };
//! // Two packs, one with 30 kg Ni and one with 10 kg, go into one leach batch.
//! let lots = [
//!     lot("P1", LotKind::InputUnit, 300.0, 30.0),
//!     lot("P2", LotKind::InputUnit, 300.0, 10.0),
//!     lot("L1", LotKind::LeachBatch, 200.0, 20.0),
//! ];
//! let edges = [edge("P1", "L1", 300.0), edge("P2", "L1", 300.0)];
//! let graph = LotGraph::new(&lots, &edges).unwrap();
//! let trace = graph.backward(&LotId::parse("L1").unwrap()).unwrap();
//! let ni: Vec<f64> = trace.sources.iter().map(|s| s.elements.get(Element::Ni).kg()).collect();
//! assert_eq!(ni, [15.0, 5.0]);
//! ```

use crate::{
    CountryCode, DomainError, Element, ElementMasses, GenealogyEdge, Kilograms, Lot, LotId,
    LotKind, MassFraction, PassportId,
};
use std::cell::RefCell;
use std::collections::HashMap;

/// The elements a graph carries, in [`Element::ALL`] order.
const ELEMENTS: usize = Element::ALL.len();
/// The channels of a walk: one per element, then the lot's bulk mass.
const CHANNELS: usize = ELEMENTS + 1;
const MASS: usize = ELEMENTS;

type Channels = [f64; CHANNELS];

fn slot(e: Element) -> usize {
    e as usize
}

/// Element masses as a fixed array, one entry per [`Element`]: what a trace
/// allocates to a lot, cheap to copy and to sum.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ElementKg([f64; ELEMENTS]);

impl ElementKg {
    fn from_masses(m: &ElementMasses) -> ElementKg {
        let mut out = [0.0; ELEMENTS];
        for (e, kg) in m.iter() {
            out[slot(e)] += kg.kg();
        }
        ElementKg(out)
    }

    fn from_channels(c: &Channels, scale: &ElementKg) -> ElementKg {
        let mut out = [0.0; ELEMENTS];
        for (i, o) in out.iter_mut().enumerate() {
            *o = c[i] * scale.0[i];
        }
        ElementKg(out)
    }

    fn from_amounts(c: &Channels) -> ElementKg {
        let mut out = [0.0; ELEMENTS];
        out.copy_from_slice(&c[..ELEMENTS]);
        ElementKg(out)
    }

    pub fn get(&self, e: Element) -> Kilograms {
        kilograms(self.0[slot(e)])
    }

    /// Every element with its mass, zeros included, in [`Element::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Element, Kilograms)> + '_ {
        Element::ALL.into_iter().map(|e| (e, self.get(e)))
    }

    /// The element-wise sum.
    pub fn plus(&self, other: &ElementKg) -> ElementKg {
        let mut out = self.0;
        for (o, x) in out.iter_mut().zip(other.0) {
            *o += x;
        }
        ElementKg(out)
    }

    /// The elements with a mass above zero.
    pub fn to_masses(&self) -> ElementMasses {
        self.iter().filter(|(_, m)| m.kg() > 0.0).collect()
    }
}

/// A traced value is a product of non-negative finite numbers; should it
/// ever fall outside (it cannot), zero is shown rather than a panic.
fn kilograms(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap_or(Kilograms::ZERO)
}

/// A share, clamped into [0, 1] against rounding.
fn fraction(v: f64) -> MassFraction {
    MassFraction::new(v.clamp(0.0, 1.0)).unwrap_or(MassFraction::ZERO)
}

/// What the graph knows of one lot.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceLot {
    id: LotId,
    kind: LotKind,
    mass: Kilograms,
    content: ElementKg,
    passport: Option<PassportId>,
    country: Option<CountryCode>,
}

impl TraceLot {
    pub fn id(&self) -> &LotId {
        &self.id
    }
    pub fn kind(&self) -> LotKind {
        self.kind
    }
    pub fn mass(&self) -> Kilograms {
        self.mass
    }
    /// The element masses the graph was built with (recorded or reconciled).
    pub fn content(&self) -> &ElementKg {
        &self.content
    }
    pub fn passport(&self) -> Option<&PassportId> {
        self.passport.as_ref()
    }
    pub fn country(&self) -> Option<&CountryCode> {
        self.country.as_ref()
    }
}

/// One lot of a trace with what is allocated to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocated<'g> {
    pub lot: &'g TraceLot,
    /// Backward: the part of the traced lot's mass that came through or from
    /// this lot (by mass proportion). Forward and recall: the part of this
    /// lot's mass attributed to the traced lot or the suspects.
    pub mass: Kilograms,
    /// As `mass`, per element, by proportional allocation of each element.
    pub elements: ElementKg,
    /// `mass` as a fraction of the traced lot's mass (backward) or of this
    /// lot's mass (forward, recall).
    pub share: MassFraction,
}

/// The ancestry of one lot.
#[derive(Debug, Clone, PartialEq)]
pub struct BackwardTrace<'g> {
    pub lot: &'g TraceLot,
    /// The lots without inputs (received units) the traced lot came from,
    /// oldest first. Per element their allocations sum to the traced lot's
    /// content.
    pub sources: Vec<Allocated<'g>>,
    /// The lots in between (discharge batches, black mass, leach batches...),
    /// oldest first, with what of the traced lot passed through each.
    pub intermediates: Vec<Allocated<'g>>,
}

impl BackwardTrace<'_> {
    /// The sum of the sources' allocations: the traced lot's content, to
    /// rounding.
    pub fn total(&self) -> ElementKg {
        self.sources
            .iter()
            .fold(ElementKg::default(), |acc, s| acc.plus(&s.elements))
    }
}

/// Everything made from one lot.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardTrace<'g> {
    pub lot: &'g TraceLot,
    /// Every downstream lot, in production order, with the part of its
    /// content attributed to the traced lot (what the downstream lot's
    /// backward trace allocates to it).
    pub lots: Vec<Allocated<'g>>,
}

impl<'g> ForwardTrace<'g> {
    /// The downstream lots of the kinds `keep` accepts.
    pub fn of_kind(&self, keep: impl Fn(LotKind) -> bool) -> impl Iterator<Item = &Allocated<'g>> {
        self.lots.iter().filter(move |a| keep(a.lot.kind()))
    }
}

/// What a recall of suspect lots reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallImpact<'g> {
    pub suspects: Vec<&'g TraceLot>,
    /// Every lot made from the suspects (suspects themselves excluded), in
    /// production order, with the part of it attributable to them.
    pub lots: Vec<Allocated<'g>>,
}

impl<'g> RecallImpact<'g> {
    /// The product lots affected.
    pub fn products(&self) -> impl Iterator<Item = &Allocated<'g>> {
        self.lots
            .iter()
            .filter(|a| matches!(a.lot.kind(), LotKind::Product(_)))
    }
}

/// The lot graph of a plant, ready for traces. See the module documentation.
#[derive(Debug, Clone)]
pub struct LotGraph {
    lots: Vec<TraceLot>,
    index: HashMap<LotId, u32>,
    /// Topological rank: every edge goes from a lower rank to a higher one.
    rank: Vec<u32>,
    /// Edges into lot `v` are `in_start[v]..in_start[v + 1]` of `in_from`
    /// and `in_share`.
    in_start: Vec<u32>,
    in_from: Vec<u32>,
    in_share: Vec<Channels>,
    /// Lots made from lot `v` are `out_start[v]..out_start[v + 1]` of `out_to`.
    out_start: Vec<u32>,
    out_to: Vec<u32>,
}

impl LotGraph {
    /// The graph with each lot's recorded element masses.
    pub fn new(lots: &[Lot], edges: &[GenealogyEdge]) -> Result<LotGraph, DomainError> {
        LotGraph::with_content(lots, edges, |l| l.elements().clone())
    }

    /// The graph with each lot's element masses given by `content` (the seam
    /// for reconciled values). Refuses duplicate lot ids, edges naming a lot
    /// that is not given, and cycles.
    pub fn with_content(
        lots: &[Lot],
        edges: &[GenealogyEdge],
        content: impl Fn(&Lot) -> ElementMasses,
    ) -> Result<LotGraph, DomainError> {
        let n = lots.len();
        if u32::try_from(n).is_err() || u32::try_from(edges.len()).is_err() {
            return Err(DomainError::Inconsistent(format!(
                "{n} lots and {} edges are more than a lot graph holds",
                edges.len()
            )));
        }
        let mut index = HashMap::with_capacity(n);
        let mut nodes = Vec::with_capacity(n);
        for (i, lot) in (0_u32..).zip(lots) {
            if index.insert(lot.id().clone(), i).is_some() {
                return Err(DomainError::Inconsistent(format!(
                    "lot {} is listed twice",
                    lot.id()
                )));
            }
            nodes.push(TraceLot {
                id: lot.id().clone(),
                kind: lot.kind(),
                mass: lot.mass(),
                content: ElementKg::from_masses(&content(lot)),
                passport: lot.passport().cloned(),
                country: lot.country_of_collection().cloned(),
            });
        }
        let lookup = |id: &LotId, e: &GenealogyEdge| {
            index.get(id).copied().ok_or_else(|| {
                DomainError::Inconsistent(format!(
                    "edge {} -> {} names lot {id}, which is not among the lots",
                    e.from, e.to
                ))
            })
        };
        let mut pairs = Vec::with_capacity(edges.len());
        for e in edges {
            pairs.push((lookup(&e.from, e)?, lookup(&e.to, e)?, e.mass.kg()));
        }

        let in_start = offsets(n, pairs.iter().map(|p| p.1));
        let out_start = offsets(n, pairs.iter().map(|p| p.0));
        let mut in_from = vec![0_u32; pairs.len()];
        let mut in_mass = vec![0.0_f64; pairs.len()];
        let mut out_to = vec![0_u32; pairs.len()];
        let mut in_fill: Vec<u32> = in_start[..n].to_vec();
        let mut out_fill: Vec<u32> = out_start[..n].to_vec();
        for &(from, to, mass) in &pairs {
            let at = &mut in_fill[to as usize];
            in_from[*at as usize] = from;
            in_mass[*at as usize] = mass;
            *at += 1;
            let at = &mut out_fill[from as usize];
            out_to[*at as usize] = to;
            *at += 1;
        }

        let rank = topological_rank(&nodes, &in_start, &out_start, &out_to)?;
        let in_share = shares(&nodes, &in_start, &in_from, &in_mass);
        Ok(LotGraph {
            lots: nodes,
            index,
            rank,
            in_start,
            in_from,
            in_share,
            out_start,
            out_to,
        })
    }

    /// The number of lots.
    pub fn len(&self) -> usize {
        self.lots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lots.is_empty()
    }

    /// The number of edges.
    pub fn edge_count(&self) -> usize {
        self.in_from.len()
    }

    pub fn contains(&self, id: &LotId) -> bool {
        self.index.contains_key(id)
    }

    pub fn lot(&self, id: &LotId) -> Option<&TraceLot> {
        self.index.get(id).map(|&i| &self.lots[i as usize])
    }

    fn node(&self, id: &LotId) -> Result<u32, DomainError> {
        self.index.get(id).copied().ok_or_else(|| {
            DomainError::Inconsistent(format!("unknown lot {id}: not in the genealogy"))
        })
    }

    fn inputs(&self, v: u32) -> std::ops::Range<usize> {
        self.in_start[v as usize] as usize..self.in_start[v as usize + 1] as usize
    }

    fn outputs(&self, v: u32) -> &[u32] {
        let r = self.out_start[v as usize] as usize..self.out_start[v as usize + 1] as usize;
        &self.out_to[r]
    }

    /// Allocates the lot's content (each element, and its mass) to every lot
    /// it came from. Refuses a lot that is not in the graph.
    pub fn backward(&self, lot: &LotId) -> Result<BackwardTrace<'_>, DomainError> {
        let start = self.node(lot)?;
        let traced = &self.lots[start as usize];
        Ok(with_scratch(self.len(), |s| {
            s.collect(&[start], |v, out| {
                out.extend(self.inputs(v).map(|e| self.in_from[e]))
            });
            s.order_by(&self.rank);
            let mut seed = [0.0; CHANNELS];
            seed[..ELEMENTS].copy_from_slice(&traced.content.0);
            seed[MASS] = traced.mass.kg();
            s.values[s.slot[start as usize] as usize] = seed;
            // Highest rank first: a lot has received everything from the
            // lots made from it before it passes its amount on.
            for p in (0..s.nodes.len()).rev() {
                let v = s.nodes[p];
                let amount = s.values[p];
                for e in self.inputs(v) {
                    let q = s.slot[self.in_from[e] as usize] as usize;
                    let share = &self.in_share[e];
                    for ((into, a), sh) in s.values[q].iter_mut().zip(amount).zip(share) {
                        *into += a * sh;
                    }
                }
            }
            let mut sources = Vec::new();
            let mut intermediates = Vec::new();
            for (&v, a) in s.nodes.iter().zip(&s.values) {
                if v == start {
                    continue;
                }
                let allocated = Allocated {
                    lot: &self.lots[v as usize],
                    mass: kilograms(a[MASS]),
                    elements: ElementKg::from_amounts(a),
                    share: fraction(ratio(a[MASS], traced.mass.kg())),
                };
                if self.inputs(v).is_empty() {
                    sources.push((v, allocated));
                } else {
                    intermediates.push((v, allocated));
                }
            }
            if sources.is_empty() {
                // The lot has no inputs: it is its own source.
                sources.push((
                    start,
                    Allocated {
                        lot: traced,
                        mass: traced.mass,
                        elements: traced.content,
                        share: fraction(1.0),
                    },
                ));
            }
            BackwardTrace {
                lot: traced,
                sources: in_lot_order(sources),
                intermediates: in_lot_order(intermediates),
            }
        }))
    }

    /// Every lot made from `lot`, with the part of its content attributed to
    /// `lot`. Refuses a lot that is not in the graph.
    pub fn forward(&self, lot: &LotId) -> Result<ForwardTrace<'_>, DomainError> {
        let start = self.node(lot)?;
        let lots = self.downstream(&[start]);
        Ok(ForwardTrace {
            lot: &self.lots[start as usize],
            lots,
        })
    }

    /// Every lot made from any of `suspects`, with the part of it
    /// attributable to them together. Refuses a suspect not in the graph.
    pub fn recall(&self, suspects: &[LotId]) -> Result<RecallImpact<'_>, DomainError> {
        let starts = suspects
            .iter()
            .map(|id| self.node(id))
            .collect::<Result<Vec<_>, _>>()?;
        let lots = self.downstream(&starts);
        Ok(RecallImpact {
            suspects: starts.iter().map(|&i| &self.lots[i as usize]).collect(),
            lots,
        })
    }

    /// The fraction of each downstream lot (per channel) that its backward
    /// trace attributes to the starts, pushed up in rank order.
    fn downstream(&self, starts: &[u32]) -> Vec<Allocated<'_>> {
        with_scratch(self.len(), |s| {
            s.collect(starts, |v, out| out.extend_from_slice(self.outputs(v)));
            s.order_by(&self.rank);
            for &v in starts {
                let p = s.slot[v as usize] as usize;
                s.values[p] = [1.0; CHANNELS];
                s.fixed[p] = true;
            }
            let mut lots = Vec::with_capacity(s.nodes.len());
            for p in 0..s.nodes.len() {
                if s.fixed[p] {
                    continue;
                }
                let v = s.nodes[p];
                let mut f = [0.0; CHANNELS];
                for e in self.inputs(v) {
                    let u = self.in_from[e] as usize;
                    if s.stamp[u] != s.generation {
                        continue;
                    }
                    let from = &s.values[s.slot[u] as usize];
                    let share = &self.in_share[e];
                    for ((into, a), sh) in f.iter_mut().zip(from).zip(share) {
                        *into += a * sh;
                    }
                }
                s.values[p] = f;
                let lot = &self.lots[v as usize];
                lots.push((
                    v,
                    Allocated {
                        lot,
                        mass: kilograms(f[MASS] * lot.mass.kg()),
                        elements: ElementKg::from_channels(&f, &lot.content),
                        share: fraction(f[MASS]),
                    },
                ));
            }
            in_lot_order(lots)
        })
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// The order the lots were given in (oldest first, as the store lists them).
fn in_lot_order(mut list: Vec<(u32, Allocated<'_>)>) -> Vec<Allocated<'_>> {
    list.sort_unstable_by_key(|(v, _)| *v);
    list.into_iter().map(|(_, a)| a).collect()
}

/// Compressed-row offsets: entry `v` is where the items keyed `v` start.
fn offsets(n: usize, keys: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut start = vec![0_u32; n + 1];
    for k in keys {
        start[k as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    start
}

/// Kahn's algorithm; a lot left over sits on a cycle.
fn topological_rank(
    lots: &[TraceLot],
    in_start: &[u32],
    out_start: &[u32],
    out_to: &[u32],
) -> Result<Vec<u32>, DomainError> {
    let n = lots.len();
    let mut waiting: Vec<u32> = (0..n).map(|v| in_start[v + 1] - in_start[v]).collect();
    let mut ready: Vec<u32> = (0_u32..)
        .zip(&waiting)
        .filter(|(_, w)| **w == 0)
        .map(|(v, _)| v)
        .collect();
    let mut rank = vec![u32::MAX; n];
    let mut next = 0_u32;
    while let Some(v) = ready.pop() {
        rank[v as usize] = next;
        next += 1;
        for &w in &out_to[out_start[v as usize] as usize..out_start[v as usize + 1] as usize] {
            waiting[w as usize] -= 1;
            if waiting[w as usize] == 0 {
                ready.push(w);
            }
        }
    }
    match rank.iter().position(|r| *r == u32::MAX) {
        Some(v) => Err(DomainError::NotAllowed(format!(
            "the genealogy is cyclic: lot {} is made, directly or not, from itself",
            lots[v].id
        ))),
        None => Ok(rank),
    }
}

/// Per edge and channel, the share of the receiving lot that the edge's
/// input carries. See the module documentation for the fallbacks.
fn shares(lots: &[TraceLot], in_start: &[u32], in_from: &[u32], in_mass: &[f64]) -> Vec<Channels> {
    let mut out = vec![[0.0; CHANNELS]; in_from.len()];
    for v in 0..lots.len() {
        let range = in_start[v] as usize..in_start[v + 1] as usize;
        if range.is_empty() {
            continue;
        }
        let mut total = [0.0; CHANNELS];
        for e in range.clone() {
            let input = &lots[in_from[e] as usize];
            let carried = &mut out[e];
            let per_kg = ratio(in_mass[e], input.mass.kg());
            for (c, m) in input.content.0.iter().enumerate() {
                carried[c] = m * per_kg;
            }
            carried[MASS] = in_mass[e];
            for (t, c) in total.iter_mut().zip(carried.iter()) {
                *t += c;
            }
        }
        let equal = 1.0 / range.len() as f64;
        for c in (0..CHANNELS).rev() {
            for e in range.clone() {
                out[e][c] = if total[c] > 0.0 {
                    out[e][c] / total[c]
                } else if c != MASS {
                    // The mass shares are final already: the loop runs the
                    // mass channel first.
                    out[e][MASS]
                } else {
                    equal
                };
            }
        }
    }
    out
}

/// The buffers of one walk, kept per thread and reused: a generation stamp
/// per lot marks the lots reached without clearing anything.
#[derive(Debug, Default)]
struct Scratch {
    generation: u32,
    stamp: Vec<u32>,
    /// Position of a reached lot in `nodes`.
    slot: Vec<u32>,
    nodes: Vec<u32>,
    values: Vec<Channels>,
    /// The starts of a forward walk, whose values are not computed.
    fixed: Vec<bool>,
    stack: Vec<u32>,
}

impl Scratch {
    fn begin(&mut self, n: usize) {
        if self.stamp.len() < n {
            self.stamp.resize(n, 0);
            self.slot.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.nodes.clear();
        self.values.clear();
        self.fixed.clear();
        self.stack.clear();
    }

    /// Every lot reachable from `starts` through `next`, starts included.
    fn collect(&mut self, starts: &[u32], next: impl Fn(u32, &mut Vec<u32>)) {
        self.stack.extend_from_slice(starts);
        while let Some(v) = self.stack.pop() {
            if self.stamp[v as usize] == self.generation {
                continue;
            }
            self.stamp[v as usize] = self.generation;
            self.nodes.push(v);
            next(v, &mut self.stack);
        }
    }

    /// Sorts the reached lots by rank and gives each a zeroed value.
    fn order_by(&mut self, rank: &[u32]) {
        self.nodes.sort_unstable_by_key(|&v| rank[v as usize]);
        for (p, &v) in (0_u32..).zip(&self.nodes) {
            self.slot[v as usize] = p;
        }
        self.values.resize(self.nodes.len(), [0.0; CHANNELS]);
        self.fixed.resize(self.nodes.len(), false);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<T>(n: usize, f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            s.begin(n);
            f(&mut s)
        }
        Err(_) => {
            let mut s = Scratch::default();
            s.begin(n);
            f(&mut s)
        }
    })
}
