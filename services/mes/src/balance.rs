//! The plant's metal balance for a period: the recorded lots, edges,
//! weighings and assays laid out as a balance network, reconciled by
//! `remine-balance`, and read back as recovery rates with their
//! uncertainty, suspect instruments and node closures.
//!
//! How the lot graph becomes a network:
//! - a process node is a production step: the lots made from the same set
//!   of input lots (a shredder campaign's black mass and side fractions, a
//!   leach batch's products and residue);
//! - each lot is a stream from the node that made it (or from outside, for
//!   received units) to the node that consumed it (or to outside, for
//!   products and lots still in stock). A lot consumed by several nodes, or
//!   only in part, passes a split node: its portions are weighed charges
//!   and carry the lot's assay;
//! - input units that one step takes whole and that were weighed on the
//!   same scale (or declared) are one stream ("N units from U-.. (scale) >
//!   node"), their booked contents blended under each unit's content
//!   factor: the step's balances see them only through their sums, so the
//!   reconciliation is that of the units apart (exactly for units of one
//!   composition; `UnitGroup`);
//! - a stream's mass is its recorded weighing (dry mass and uncertainty),
//!   else the lot's mass with the uncertainty of how it was known;
//! - an element's fraction is the lots' assays combined by inverse
//!   variance, else (for an input unit) its booked content, else unknown
//!   (intermediates booked from their inputs, residues and losses) or
//!   free of it;
//! - a unit's booked content is factored, because its error is not the
//!   unit's own: a chemistry estimate (domain brief section 2) is wrong
//!   alike for every unit of that chemistry, and a manufacturer's
//!   declarations of one chemistry share their method. Each (chemistry,
//!   content source, element) has one content factor, measured as 1 with
//!   the source's relative sigma ([`ContentSource::relative_sigma`]: 5 %
//!   declared, 20 % estimated); a unit's fraction is its booked fraction
//!   times that factor plus a small independent error of its own
//!   (relative sigma 2 % declared, 5 % estimated).
//!   The assays of black mass, filter dust, side fractions and solutions
//!   downstream then correct the factors, the way a metal accountant
//!   re-rates an estimate from what the plant assays, instead of spreading
//!   the assays' verdict thinly over thousands of independent units;
//! - nodes that make products balance elements only: the sulphate,
//!   carbonate and water in a product come from reagents.

use crate::MesError;
use chrono::{DateTime, Utc};
pub use remine_balance::Closure;
use remine_balance::{
    Assay as BAssay, Balances, Endpoint, NetworkBuilder, Options, Reading, Reconciliation,
    StreamView, reconcile,
};
use remine_domain::ports::Store;
use remine_domain::{
    Chemistry, ContentSource, Element, ElementMasses, GenealogyEdge, Kilograms, Lot, LotId,
    LotKind, MassMethod, MeasuredMass, combine_assays,
};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The elements the plant accounts for.
pub const BALANCED_ELEMENTS: [Element; 6] = [
    Element::Ni,
    Element::Co,
    Element::Li,
    Element::Mn,
    Element::Cu,
    Element::Al,
];

/// The relative sigma of the part of a unit's booked content error that
/// is its own, beside the content factor its source shares with the
/// other units of its chemistry (see the module's doc). A recorded assay
/// of a unit has no shared part: its whole uncertainty is its own.
fn own_content_sigma(source: ContentSource) -> f64 {
    match source {
        ContentSource::Assayed => ContentSource::Assayed.relative_sigma(),
        ContentSource::Declared => 0.02,
        ContentSource::Estimated => 0.05,
    }
}

fn source_label(source: ContentSource) -> &'static str {
    match source {
        ContentSource::Assayed => "recorded assay",
        ContentSource::Declared => "passport",
        ContentSource::Estimated => "chemistry estimate",
    }
}

/// The content factor of units of `chemistry` booked from `source`, for `el`.
fn factor_name(chemistry: Option<Chemistry>, source: ContentSource, el: Element) -> String {
    let chem = chemistry.map_or("chemistry unknown", |c| c.name());
    format!("{chem} {} {el}", source_label(source))
}

/// One element's recovery over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryFigure {
    pub element: Element,
    /// As recorded (unreconciled): product content / input content.
    pub recorded: Option<f64>,
    /// Reconciled, with its standard deviation.
    pub reconciled: Option<f64>,
    pub sigma: Option<f64>,
    pub input_kg: Option<f64>,
    pub output_kg: Option<f64>,
}

/// A suspect: a reading or an instrument the tests single out.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectReading {
    /// What was read ("mass of 'BM-NMC-3'", "Ni assay of 'BM-NMC-3'").
    pub what: String,
    pub instrument: String,
    pub measured: f64,
    pub adjustment: f64,
    pub normalised_adjustment: f64,
}

/// An instrument whose readings are biased, with its estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectInstrument {
    pub instrument: String,
    pub readings: usize,
    pub relative_bias: f64,
    pub bias_sigma: f64,
}

/// One node's balance of one quantity (the total or an element), as
/// measured (closure with its propagated uncertainty) and after
/// reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeClosure {
    pub node: Arc<str>,
    /// "total" or an element symbol.
    pub quantity: String,
    /// The measured balance, `None` where an unmeasured value keeps it open.
    pub measured: Option<Closure>,
    pub reconciled: Option<Closure>,
    /// What keeps the measured balance open.
    pub unknown: Vec<String>,
}

/// The reconciled balance of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodBalance {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub nodes: usize,
    pub streams: usize,
    pub recovery: Vec<RecoveryFigure>,
    pub chi_square: f64,
    pub dof: usize,
    pub p_value: f64,
    /// The global test passed: no gross error at the 5 % level.
    pub passed: bool,
    pub suspect_readings: Vec<SuspectReading>,
    pub suspect_instruments: Vec<SuspectInstrument>,
    pub converged: bool,
    pub iterations: usize,
    /// Every node's balance of the total and of each element.
    pub closures: Vec<NodeClosure>,
}

/// Builds and reconciles the plant's balance from the store.
#[derive(Debug, Clone)]
pub struct PlantBalance {
    store: Arc<dyn Store>,
}

struct Layout {
    builder: NetworkBuilder,
    inputs: Vec<String>,
    products: Vec<(String, Element)>,
    /// The input units' booked contents, by balanced element.
    recorded_in: [f64; BALANCED_ELEMENTS.len()],
    recorded_out: BTreeMap<Element, f64>,
    /// Where asked for: each unit group's stream and its members.
    groups: Vec<GroupMembers>,
}

impl PlantBalance {
    pub fn new(store: Arc<dyn Store>) -> PlantBalance {
        PlantBalance { store }
    }

    /// Reconciles the lots made in `[from, to)`: reads them, the edges
    /// into them and their weighings and assays from the store, then
    /// [`reconcile_records`] on a blocking thread (a plant year is seconds
    /// of CPU, which must not hold up the async runtime).
    #[tracing::instrument(skip(self))]
    pub async fn period(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PeriodBalance, MesError> {
        let records = self.records(from, to).await?;
        blocking(move || reconcile_records(from, to, &records)).await
    }

    /// [`PlantBalance::period`] and every lot's reconciled element masses
    /// ([`reconcile_records_with_contents`]), for traces on reconciled values.
    #[tracing::instrument(skip(self))]
    pub async fn period_with_contents(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(PeriodBalance, ReconciledContents), MesError> {
        let records = self.records(from, to).await?;
        blocking(move || reconcile_records_with_contents(from, to, &records)).await
    }

    /// What the store records of the lots made in `[from, to)`.
    async fn records(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BalanceRecords, MesError> {
        if to <= from {
            return Err(period_err(from, to));
        }
        let lots: Vec<Lot> = self
            .store
            .lots()
            .await?
            .into_iter()
            .filter(|l| l.created_at() >= from && l.created_at() < to)
            .collect();
        let ids: BTreeSet<LotId> = lots.iter().map(|l| l.id().clone()).collect();
        let edges: Vec<GenealogyEdge> = self
            .store
            .edges()
            .await?
            .into_iter()
            .filter(|e| ids.contains(&e.to))
            .collect();
        let mut weighings = FxHashMap::default();
        let mut assays = FxHashMap::default();
        let mut chemistries = FxHashMap::default();
        for l in &lots {
            if l.kind() == LotKind::InputUnit
                && let Some(p) = l.passport()
                && let Some(c) = self.store.passport(p).await?.and_then(|p| p.chemistry())
            {
                chemistries.insert(l.id().clone(), c);
            }
            if let Some(m) = self.store.measurement(l.id()).await? {
                weighings.insert(l.id().clone(), m);
            }
            let a = self.store.assays(l.id()).await?;
            if !a.is_empty() {
                assays.insert(l.id().clone(), a);
            }
        }
        Ok(BalanceRecords {
            lots,
            edges,
            weighings,
            assays,
            chemistries,
        })
    }
}

/// Runs `work` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MesError> + Send + 'static,
) -> Result<T, MesError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| MesError::Internal(format!("the reconciliation's thread: {e}")))?
}

fn period_err(from: DateTime<Utc>, to: DateTime<Utc>) -> MesError {
    MesError::Invalid(remine_domain::DomainError::Inconsistent(format!(
        "the period must end after it starts ({from} .. {to})"
    )))
}

/// What the balance of a period is made of, as the store records it: the
/// lots made in the period, the edges into them, their weighings and
/// assays (by lot), and the chemistry of each input unit from its
/// passport (a unit missing here shares the factor of units whose
/// chemistry is unknown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalanceRecords {
    pub lots: Vec<Lot>,
    pub edges: Vec<GenealogyEdge>,
    pub weighings: FxHashMap<LotId, MeasuredMass>,
    pub assays: FxHashMap<LotId, Vec<remine_domain::Assay>>,
    pub chemistries: FxHashMap<LotId, Chemistry>,
}

/// The reconciled balance of `[from, to)` from its records, without the
/// store: lays them out as a network (see the module's doc), reconciles it
/// and reads back recovery, tests and closures. [`PlantBalance::period`]
/// is this on what the store holds; benches feed a synthetic year straight in.
pub fn reconcile_records(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    records: &BalanceRecords,
) -> Result<PeriodBalance, MesError> {
    Ok(reconcile_laid_out(from, to, records, false)?.0)
}

/// [`reconcile_records`], and every lot's reconciled element masses
/// ([`ReconciledContents`]), for traces on reconciled values.
pub fn reconcile_records_with_contents(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    records: &BalanceRecords,
) -> Result<(PeriodBalance, ReconciledContents), MesError> {
    let (balance, contents) = reconcile_laid_out(from, to, records, true)?;
    Ok((balance, contents.unwrap_or_default()))
}

fn reconcile_laid_out(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    records: &BalanceRecords,
    with_contents: bool,
) -> Result<(PeriodBalance, Option<ReconciledContents>), MesError> {
    if to <= from {
        return Err(period_err(from, to));
    }
    let mut layout = layout(records, with_contents)?;
    // The builder's specs are spent once the network is built: dropped
    // before the reconciliation, whose working memory peaks after them.
    let network = std::mem::take(&mut layout.builder)
        .build()
        .map_err(|e| MesError::Internal(format!("balance network: {e}")))?;
    let r = reconcile(&network, &Options::default()).map_err(|e| match e {
        remine_balance::BalanceError::ComponentTooLarge { .. } => MesError::NotAllowed(format!(
            "the balance of {from} .. {to} cannot be reconciled: {e}"
        )),
        other => MesError::Internal(format!("reconciliation: {other}")),
    })?;
    let contents = with_contents.then(|| contents(records, &layout, &r));
    let s = summarise(from, to, &layout, &network, r);
    Ok((s, contents))
}

/// Every lot's reconciled element masses over a period: a lot balanced as
/// its own stream has its stream's reconciled flows; a unit balanced in a
/// group ([`UnitGroup`]) has its mass (its share of the group's mass
/// adjustment by weighing variance) times its booked fraction times its
/// content factor, plus of the rest of the group's flow (the own content
/// errors) the share of its own variance, so a group's units sum to the
/// group's reconciled flow. Elements not balanced, lots outside
/// the balance and values the balance cannot determine keep their
/// recorded masses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconciledContents {
    by_lot: FxHashMap<LotId, [Option<f64>; BALANCED_ELEMENTS.len()]>,
}

impl ReconciledContents {
    /// The element masses of `lot` on reconciled values.
    pub fn content(&self, lot: &Lot) -> ElementMasses {
        let Some(reconciled) = self.by_lot.get(lot.id()) else {
            return lot.elements().clone();
        };
        let recorded = lot
            .elements()
            .iter()
            .filter(|(el, _)| !BALANCED_ELEMENTS.contains(el));
        let balanced = BALANCED_ELEMENTS
            .into_iter()
            .zip(reconciled)
            .map(|(el, kg)| {
                (
                    el,
                    kg.map_or(lot.elements().get(el), kilograms_at_least_zero),
                )
            });
        recorded
            .chain(balanced)
            .filter(|(el, kg)| kg.kg() > 0.0 || lot.elements().contains(*el))
            .collect()
    }

    /// How many lots have reconciled element masses.
    pub fn len(&self) -> usize {
        self.by_lot.len()
    }

    /// Whether `lot` has reconciled element masses.
    pub fn holds(&self, lot: &LotId) -> bool {
        self.by_lot.contains_key(lot)
    }

    /// No lot has reconciled element masses.
    pub fn is_empty(&self) -> bool {
        self.by_lot.is_empty()
    }
}

fn kilograms_at_least_zero(kg: f64) -> Kilograms {
    Kilograms::new(kg.max(0.0)).unwrap_or(Kilograms::ZERO)
}

fn contents(
    records: &BalanceRecords,
    layout: &Layout,
    r: &Reconciliation<'_>,
) -> ReconciledContents {
    let mut by_lot = FxHashMap::default();
    let mut grouped = vec![false; records.lots.len()];
    for group in &layout.groups {
        for m in &group.members {
            grouped[m.lot] = true;
        }
        let name = group.stream.as_str();
        let Some(mass) = r.stream_mass(name).and_then(|v| v.estimate) else {
            continue;
        };
        // The group's mass adjustment shared by the units' weighing
        // variances, as the step's total balance would share it among them.
        let booked_mass: f64 = group.members.iter().map(|m| m.kg).sum();
        let mass_variance: f64 = group.members.iter().map(|m| m.kg_variance).sum();
        let masses: Vec<f64> = group
            .members
            .iter()
            .map(|m| {
                let share = if mass_variance > 0.0 {
                    m.kg_variance / mass_variance
                } else {
                    m.kg / booked_mass.max(f64::MIN_POSITIVE)
                };
                m.kg + (mass - booked_mass) * share
            })
            .collect();
        let mut shares = vec![[None; BALANCED_ELEMENTS.len()]; group.members.len()];
        for (k, el) in BALANCED_ELEMENTS.into_iter().enumerate() {
            // Each unit: its reconciled mass times its booked fraction
            // times its content factor; what the group's flow holds beyond
            // those (its own error) shared by the units' own variances.
            let (Some(flow), Some((parts, _))) = (r.element_flow(name, el), r.factors(name, el))
            else {
                continue;
            };
            let Some(factors) = parts
                .iter()
                .map(|(_, f)| f.estimate)
                .collect::<Option<Vec<f64>>>()
            else {
                continue;
            };
            let factored: Vec<f64> = group
                .members
                .iter()
                .zip(&masses)
                .map(|(m, kg)| {
                    let factor = group.parts[m.source][k].and_then(|p| factors.get(p).copied());
                    factor.map_or(0.0, |f| kg * m.booked[k].unwrap_or(0.0) * f)
                })
                .collect();
            let rest = flow - factored.iter().sum::<f64>();
            let own_variance: f64 = group.members.iter().map(|m| m.own_variance[k]).sum();
            for ((share, m), kg) in shares.iter_mut().zip(&group.members).zip(factored) {
                let own = if own_variance > 0.0 {
                    rest * m.own_variance[k] / own_variance
                } else {
                    rest / group.members.len() as f64
                };
                share[k] = Some(kg + own);
            }
        }
        for (share, m) in shares.into_iter().zip(&group.members) {
            by_lot.insert(records.lots[m.lot].id().clone(), share);
        }
    }
    for (l, _) in records.lots.iter().zip(&grouped).filter(|(_, g)| !**g) {
        let flows = BALANCED_ELEMENTS.map(|el| r.element_flow(l.id().as_str(), el));
        if flows.iter().any(Option::is_some) {
            by_lot.insert(l.id().clone(), flows);
        }
    }
    ReconciledContents { by_lot }
}

fn reading_err(e: remine_balance::BalanceError) -> MesError {
    MesError::Internal(format!("balance reading: {e}"))
}

/// The lot graph of the records as process nodes: which node made each
/// lot, what each lot gives to each node, and the nodes declared to a
/// network builder (see the module's doc).
struct LotGraph<'r> {
    /// Every lot the records name: the period's lots first, then lots
    /// from before the period that its edges name.
    ids: Vec<&'r LotId>,
    /// The node (by rank of name) that made each lot.
    node_of: Vec<Option<usize>>,
    /// The nodes' names by rank.
    names: Vec<String>,
    /// What each lot gives to each consuming node (by rank), summed.
    consumed: Grouped<(usize, f64)>,
    builder: NetworkBuilder,
}

impl<'r> LotGraph<'r> {
    fn new(lots: &'r [Lot], edges: &'r [GenealogyEdge]) -> LotGraph<'r> {
        // Every lot the records name, by index: the period's lots first, then
        // lots from before the period that its edges name.
        let mut ids: Vec<&LotId> = lots.iter().map(Lot::id).collect();
        let mut index: FxHashMap<&LotId, usize> = FxHashMap::default();
        index.reserve(lots.len());
        for (i, l) in lots.iter().enumerate() {
            index.insert(l.id(), i);
        }
        let mut ends: Vec<(usize, usize)> = Vec::with_capacity(edges.len());
        for e in edges {
            let mut index_of = |id| match index.get(id) {
                Some(&i) => i,
                None => {
                    ids.push(id);
                    index.insert(id, ids.len() - 1);
                    ids.len() - 1
                }
            };
            ends.push((index_of(&e.from), index_of(&e.to)));
        }
        drop(index);
        // The period's lots are the first ids.
        let lot_at = |i: usize| lots.get(i);
        // Inputs of each lot made in the period, each once.
        let mut inputs_of = Grouped::new(ids.len(), ends.iter().map(|&(from, to)| (to, from)));
        inputs_of.sort_dedup();
        // A production step per distinct input set. A lot that several steps
        // take from is either split into portions of one material (the steps
        // make lots of the same kinds, as leach batches from one black-mass
        // lot) or separated into different materials (a shredder's black mass
        // and side fractions, a leach's solution and residue): separating
        // steps are one process node.
        let mut step_of_key: FxHashMap<&[usize], usize> = FxHashMap::default();
        let mut step_outputs: Vec<Vec<usize>> = Vec::new();
        for (out, ins) in inputs_of.iter().enumerate() {
            if ins.is_empty() {
                continue;
            }
            let step = *step_of_key.entry(ins).or_insert_with(|| {
                step_outputs.push(Vec::new());
                step_outputs.len() - 1
            });
            step_outputs[step].push(out);
        }
        let step_kinds: Vec<u16> = step_outputs
            .iter()
            .map(|outs| {
                outs.iter()
                    .filter_map(|&o| lot_at(o))
                    .fold(0, |m, l| m | 1 << kind_class(l.kind()))
            })
            .collect();
        let steps_taking = Grouped::new(
            ids.len(),
            step_of_key
                .iter()
                .flat_map(|(key, &step)| key.iter().map(move |&input| (input, step))),
        );
        let mut parent: Vec<usize> = (0..step_outputs.len()).collect();
        fn root(parent: &mut [usize], mut a: usize) -> usize {
            while parent[a] != a {
                parent[a] = parent[parent[a]];
                a = parent[a];
            }
            a
        }
        for steps in steps_taking.iter() {
            let Some(&first) = steps.first() else {
                continue;
            };
            if steps.iter().any(|&s| step_kinds[s] != step_kinds[first]) {
                for &s in steps {
                    let (a, b) = (root(&mut parent, first), root(&mut parent, s));
                    if a != b {
                        parent[a] = b;
                    }
                }
            }
        }
        // A node per group of steps, named from its first output. Nodes that
        // make products or solutions balance elements only: reagents bring the
        // sulphate, carbonate and water nobody weighs in.
        let mut first_out: FxHashMap<usize, &LotId> = FxHashMap::default();
        let mut elements_only: FxHashMap<usize, bool> = FxHashMap::default();
        for (step, outs) in step_outputs.iter().enumerate() {
            let group = root(&mut parent, step);
            for &o in outs {
                let first = first_out.entry(group).or_insert(ids[o]);
                if ids[o] < *first {
                    *first = ids[o];
                }
            }
            let makes_product = outs
                .iter()
                .filter_map(|&o| lot_at(o))
                .any(|l| matches!(l.kind(), LotKind::Product(_) | LotKind::Solution));
            *elements_only.entry(group).or_default() |= makes_product;
        }
        // Nodes by rank of name, so that a lot's uses below run in name order.
        let mut groups_by_name: Vec<(String, usize)> = first_out
            .iter()
            .map(|(&group, first)| (format!("make {first}"), group))
            .collect();
        groups_by_name.sort_unstable();
        let rank_of_group: FxHashMap<usize, usize> = groups_by_name
            .iter()
            .enumerate()
            .map(|(rank, &(_, group))| (group, rank))
            .collect();
        let mut node_of: Vec<Option<usize>> = vec![None; ids.len()];
        for (step, outs) in step_outputs.iter().enumerate() {
            let rank = rank_of_group.get(&root(&mut parent, step)).copied();
            for &o in outs {
                node_of[o] = rank;
            }
        }
        let mut builder = NetworkBuilder::new();
        for (name, group) in &groups_by_name {
            let b = if elements_only.get(group).copied().unwrap_or(false) {
                Balances::elements_only(&BALANCED_ELEMENTS)
            } else {
                Balances::total_and(&BALANCED_ELEMENTS)
            };
            builder.node(name, b);
        }
        // What each lot gives to each consuming node, by rank of name.
        let mut consumed = Grouped::new(
            ids.len(),
            edges
                .iter()
                .zip(&ends)
                .filter_map(|(e, &(from, to))| Some((from, (node_of[to]?, e.mass.kg())))),
        );
        consumed.sum_by_node();
        LotGraph {
            ids,
            node_of,
            names: groups_by_name.into_iter().map(|(n, _)| n).collect(),
            consumed,
            builder,
        }
    }
}

/// Values grouped by a lot index, flat: the values of lot `a` are
/// `items[offsets[a]..offsets[a + 1]]` (one allocation for a year's lots
/// instead of one each).
struct Grouped<T> {
    offsets: Vec<usize>,
    items: Vec<T>,
}

impl<T: Copy + Default> Grouped<T> {
    /// Groups `(lot, value)` pairs over `n` lots, each lot's values in the
    /// pairs' order.
    fn new(n: usize, pairs: impl Iterator<Item = (usize, T)> + Clone) -> Grouped<T> {
        let mut offsets = vec![0usize; n + 1];
        for (a, _) in pairs.clone() {
            offsets[a + 1] += 1;
        }
        for a in 0..n {
            offsets[a + 1] += offsets[a];
        }
        let mut next = offsets.clone();
        let mut items: Vec<T> = vec![T::default(); offsets[n]];
        for (a, v) in pairs {
            items[next[a]] = v;
            next[a] += 1;
        }
        Grouped { offsets, items }
    }

    fn get(&self, a: usize) -> &[T] {
        &self.items[self.offsets[a]..self.offsets[a + 1]]
    }

    fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.offsets.windows(2).map(|w| &self.items[w[0]..w[1]])
    }

    /// Keeps of each lot's values those `keep` maps to `Some`, in order,
    /// given the values kept so far in its group.
    fn compact(&mut self, mut keep: impl FnMut(&mut [T], T) -> Option<T>) {
        let mut at = 0;
        for a in 0..self.offsets.len() - 1 {
            let (start, end) = (self.offsets[a], self.offsets[a + 1]);
            self.offsets[a] = at;
            let group_start = at;
            for k in start..end {
                let v = self.items[k];
                if let Some(v) = keep(&mut self.items[group_start..at], v) {
                    self.items[at] = v;
                    at += 1;
                }
            }
        }
        if let Some(last) = self.offsets.last_mut() {
            *last = at;
        }
        self.items.truncate(at);
    }
}

impl Grouped<usize> {
    /// Each lot's values sorted, each once.
    fn sort_dedup(&mut self) {
        for w in self.offsets.windows(2) {
            self.items[w[0]..w[1]].sort_unstable();
        }
        self.compact(|kept, v| (kept.last() != Some(&v)).then_some(v));
    }
}

impl Grouped<(usize, f64)> {
    /// Each lot's (node, kg) sorted by node, the kilograms of one node summed.
    fn sum_by_node(&mut self) {
        for w in self.offsets.windows(2) {
            self.items[w[0]..w[1]].sort_by_key(|&(node, _)| node);
        }
        self.compact(|kept, (node, kg)| match kept.last_mut() {
            Some(last) if last.0 == node => {
                last.1 += kg;
                None
            }
            _ => Some((node, kg)),
        });
    }
}

/// What a lot's own records say of it (its weighing, assays, chemistry),
/// read apart from the graph: the two are read side by side.
struct LotFacts<'r> {
    mass: MassRead<'r>,
    assays: Option<&'r Vec<remine_domain::Assay>>,
    chemistry: Option<Chemistry>,
}

fn lot_facts(records: &BalanceRecords) -> Vec<LotFacts<'_>> {
    records
        .lots
        .iter()
        .map(|l| {
            let id = l.id();
            let mass = match records.weighings.get(id) {
                Some(m) => MassRead {
                    kg: m.dry_mass().value().kg(),
                    sigma: m.dry_mass().sigma().kg(),
                    instrument: m.instrument(),
                },
                None => {
                    let (rel, what) = match l.kind() {
                        LotKind::InputUnit => (
                            MassMethod::Declared.typical_relative_sigma(),
                            "declared mass",
                        ),
                        _ => (
                            MassMethod::Estimated.typical_relative_sigma(),
                            "recorded mass",
                        ),
                    };
                    let kg = l.mass().kg().max(1e-9);
                    MassRead {
                        kg,
                        sigma: kg * rel,
                        instrument: what,
                    }
                }
            };
            LotFacts {
                mass,
                assays: records.assays.get(id),
                chemistry: records.chemistries.get(id).copied(),
            }
        })
        .collect()
}

fn layout(records: &BalanceRecords, keep_members: bool) -> Result<Layout, MesError> {
    let lots = &records.lots;
    // The graph and each lot's own records, side by side.
    // Where no thread can be had, one after the other.
    let (graph, facts) = std::thread::scope(|s| {
        let facts = std::thread::Builder::new()
            .name("balance-lot-facts".into())
            .spawn_scoped(s, || lot_facts(records));
        let graph = LotGraph::new(lots, &records.edges);
        let facts = match facts {
            Ok(handle) => handle.join(),
            Err(_) => Ok(lot_facts(records)),
        };
        (graph, facts)
    });
    let facts = facts.map_err(|_| MesError::Internal("reading the lots' records failed".into()))?;
    let LotGraph {
        ids,
        node_of,
        names,
        consumed,
        builder,
    } = graph;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Each node's endpoint, its name shared by the node's streams.
    let ends_at: Vec<Endpoint> = names.iter().map(|n| Endpoint::node(n)).collect();
    let mut out = Layout {
        builder,
        inputs: Vec::new(),
        products: Vec::new(),
        recorded_in: [0.0; BALANCED_ELEMENTS.len()],
        recorded_out: BTreeMap::new(),
        groups: Vec::new(),
    };
    let mut factors = Factors::default();
    let mut inst = Instruments::default();
    let mut groups: FxHashMap<GroupKey<'_>, UnitGroup> = FxHashMap::default();
    // Lots from before the period that feed it enter from outside, by
    // their edge masses into each node.
    for (from, uses) in consumed.iter().enumerate().skip(lots.len()) {
        for &(rank, kg) in uses {
            let node = names[rank];
            let r = charge(kg, &mut inst)?;
            let unmeasured = BALANCED_ELEMENTS.map(|el| (el, BAssay::Unmeasured));
            out.builder.stream_with_assays(
                &format!("{} > {node}", ids[from]),
                Endpoint::Environment,
                ends_at[rank].clone(),
                Some(r),
                unmeasured.to_vec(),
            );
        }
    }
    for (i, l) in lots.iter().enumerate() {
        let id = l.id();
        let from = node_of[i].map_or(Endpoint::Environment, |r| ends_at[r].clone());
        let uses = consumed.get(i);
        let total_used: f64 = uses.iter().map(|u| u.1).sum();
        let whole =
            uses.len() == 1 && (total_used - l.mass().kg()).abs() <= 1e-6 * l.mass().kg().max(1.0);
        let LotFacts {
            ref mass,
            assays,
            chemistry,
        } = facts[i];
        if let (Endpoint::Environment, true) = (&from, whole)
            && l.kind() == LotKind::InputUnit
            && assays.is_none()
            && l.content_source() != ContentSource::Assayed
        {
            // A unit fed whole to a step joins its batch-mates of the same
            // content factor and scale (see `UnitGroup`).
            mass.reading(&mut inst)?;
            let source = l.content_source();
            let booked = BALANCED_ELEMENTS.map(|el| {
                let kg = l.elements().get(el).kg();
                (kg > 0.0 && l.mass().kg() > 0.0).then(|| (kg / l.mass().kg()).min(1.0))
            });
            let key = GroupKey {
                node: uses[0].0,
                instrument: mass.instrument,
            };
            groups
                .entry(key)
                .or_insert_with(|| UnitGroup::new(id, keep_members))
                .add(i, mass, chemistry, source, &booked);
            out.record_input(l);
            continue;
        }
        let name = id.to_string();
        let mass_reading = mass.reading(&mut inst)?;
        let to = if uses.is_empty() {
            Endpoint::Environment
        } else if whole {
            ends_at[uses[0].0].clone()
        } else {
            let split = format!("split {id}");
            let b = Balances::total_and(&BALANCED_ELEMENTS);
            out.builder.node(&split, b);
            let split = Endpoint::node(&split);
            let same = BALANCED_ELEMENTS.map(|el| (el, BAssay::SameAs(name.clone())));
            for &(rank, kg) in uses {
                let node = names[rank];
                let r = charge(kg, &mut inst)?;
                out.builder.stream_with_assays(
                    &format!("{id} > {node}"),
                    split.clone(),
                    ends_at[rank].clone(),
                    Some(r),
                    same.to_vec(),
                );
            }
            let rest = l.mass().kg() - total_used;
            if rest > 1e-6 * l.mass().kg().max(1.0) {
                let rel = mass.sigma / mass.kg.max(1e-9);
                let r = Reading::kg_relative(rest, rel.max(1e-6), inst.get("stock"))
                    .map_err(reading_err)?;
                out.builder.stream_with_assays(
                    &format!("{id} in stock"),
                    split.clone(),
                    Endpoint::Environment,
                    Some(r),
                    same.to_vec(),
                );
            }
            split
        };
        if from == Endpoint::Environment && to == Endpoint::Environment {
            // Not made nor used in the period (a unit still in stock): no
            // node balances it.
            continue;
        }
        let mut stream_assays = Vec::with_capacity(BALANCED_ELEMENTS.len());
        for el in BALANCED_ELEMENTS {
            let assay = stream_assay(
                l,
                el,
                assays,
                chemistry,
                &mut factors,
                &mut inst,
                &mut out.builder,
            )?;
            stream_assays.push((el, assay));
        }
        out.builder
            .stream_with_assays(&name, from, to, Some(mass_reading), stream_assays);
        match l.kind() {
            LotKind::InputUnit => {
                out.record_input(l);
                out.inputs.push(name);
            }
            // Products and the copper fraction: the lots that recover an
            // element, where the recovery rates count it.
            kind => {
                if let Some(el) = kind.recovered_element() {
                    *out.recorded_out.entry(el).or_insert(0.0) += l.elements().get(el).kg();
                    out.products.push((name, el));
                }
            }
        }
    }
    let mut groups: Vec<(GroupKey<'_>, UnitGroup)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, group) in groups {
        let node = names[key.node];
        let name = group.stream_name(node);
        let mut stream_assays = Vec::with_capacity(BALANCED_ELEMENTS.len());
        for (k, el) in BALANCED_ELEMENTS.into_iter().enumerate() {
            let assay = group.assay(k, el, &mut factors, &mut inst, &mut out.builder)?;
            stream_assays.push((el, assay));
        }
        out.builder.stream_with_assays(
            &name,
            Endpoint::Environment,
            ends_at[key.node].clone(),
            Some(group.mass_reading(&mut inst)?),
            stream_assays,
        );
        let parts = group.parts();
        if let Some(members) = group.members {
            out.groups.push(GroupMembers {
                stream: name.clone(),
                parts,
                members,
            });
        }
        out.inputs.push(name);
    }
    Ok(out)
}

/// The names of the layout's instruments, each allocated once and shared
/// by its readings (a year holds hundreds of thousands of readings of a few
/// dozen instruments).
#[derive(Default)]
struct Instruments {
    names: FxHashMap<String, Arc<str>>,
    /// By lab: "assay <lab>".
    labs: FxHashMap<String, Arc<str>>,
}

fn interned(
    map: &mut FxHashMap<String, Arc<str>>,
    key: &str,
    name: impl FnOnce() -> String,
) -> Arc<str> {
    if let Some(a) = map.get(key) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(name());
    map.insert(key.to_string(), a.clone());
    a
}

impl Instruments {
    fn get(&mut self, name: &str) -> Arc<str> {
        interned(&mut self.names, name, || name.to_string())
    }

    /// A lab's assays as an instrument.
    fn lab(&mut self, lab: &str) -> Arc<str> {
        interned(&mut self.labs, lab, || format!("assay {lab}"))
    }
}

/// A portion of a lot charged to a step, as the charge weigher reads it.
fn charge(kg: f64, names: &mut Instruments) -> Result<Reading<Kilograms>, MesError> {
    Reading::kg_relative(
        kg.max(1e-9),
        MassMethod::BeltWeigher.typical_relative_sigma(),
        names.get("charge weigher"),
    )
    .map_err(reading_err)
}

/// A lot's mass as the balance reads it: its weighing, else its recorded
/// mass with the uncertainty of how that was known.
struct MassRead<'a> {
    kg: f64,
    sigma: f64,
    instrument: &'a str,
}

impl MassRead<'_> {
    fn reading(&self, inst: &mut Instruments) -> Result<Reading<Kilograms>, MesError> {
        Reading::kg(self.kg, self.sigma, inst.get(self.instrument)).map_err(reading_err)
    }
}

/// What units share to be balanced as one stream (see [`UnitGroup`]): the
/// node (by rank) that takes them and the scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct GroupKey<'a> {
    node: usize,
    instrument: &'a str,
}

impl Layout {
    /// Counts an input unit's booked contents into the recorded input.
    fn record_input(&mut self, l: &Lot) {
        for (sum, el) in self.recorded_in.iter_mut().zip(BALANCED_ELEMENTS) {
            *sum += l.elements().get(el).kg();
        }
    }
}

/// Input units that one step takes whole and that were weighed on the same
/// scale (or declared), balanced as one stream.
///
/// The step's balances see these units only through their sums, so the sum
/// loses no redundancy: for balances linear in the readings, reconciling
/// the sum gives the balance, the chi-square and the tests that reconciling
/// the units apart would (units fed together cannot be told apart by any
/// balance); [`ReconciledContents`] shares the sum's adjustment back. The sum's mass is
/// the units' masses summed, variances summed. Its fraction of an element
/// is the mass-weighted booked fraction, each unit's part under its own
/// content factor (a blend where the units come from several chemistries
/// or sources), with the variance that makes the booked element flow's own
/// variance the sum of the units' own (mass and content error). It differs
/// from the units apart only in the covariance of mass and element flow
/// where the units differ in composition.
struct UnitGroup<'a> {
    /// The first unit's id: a group of one keeps its unit's name.
    first: &'a LotId,
    units: usize,
    instrument: &'a str,
    kg: f64,
    kg_variance: f64,
    /// The content factors' sources, in order of first use.
    sources: Vec<BookedFrom>,
    /// Per balanced element, where any unit books it: the variance of the
    /// booked flow's own part from the masses, and from the content errors.
    variances: [Option<(f64, f64)>; BALANCED_ELEMENTS.len()],
    /// The units, where their reconciled contents are asked for.
    members: Option<Vec<Member>>,
}

/// The units of a [`UnitGroup`] booked from one content source for one
/// chemistry (one content factor per element): each element's booked flow
/// (sum of mass times fraction).
struct BookedFrom {
    chemistry: Option<Chemistry>,
    source: ContentSource,
    flows: [f64; BALANCED_ELEMENTS.len()],
}

/// A [`UnitGroup`]'s stream and units, to share its reconciled flows back.
struct GroupMembers {
    stream: String,
    /// Per content source of the group, per balanced element: which part
    /// of the stream's factored content it is (see [`UnitGroup::parts`]).
    parts: Vec<[Option<usize>; BALANCED_ELEMENTS.len()]>,
    members: Vec<Member>,
}

/// A unit of a [`UnitGroup`], to share the group's reconciled flows back.
#[derive(Debug, Clone)]
struct Member {
    /// Index in the records' lots.
    lot: usize,
    kg: f64,
    kg_variance: f64,
    /// Its content factors' index in the group's `sources`.
    source: usize,
    /// Booked fraction of each balanced element.
    booked: [Option<f64>; BALANCED_ELEMENTS.len()],
    /// The variance of each element flow's own part (mass and content).
    own_variance: [f64; BALANCED_ELEMENTS.len()],
}

impl<'a> UnitGroup<'a> {
    fn new(first: &'a LotId, keep_members: bool) -> Self {
        UnitGroup {
            first,
            units: 0,
            instrument: "",
            kg: 0.0,
            kg_variance: 0.0,
            sources: Vec::new(),
            variances: [None; BALANCED_ELEMENTS.len()],
            members: keep_members.then(Vec::new),
        }
    }

    /// Adds the unit at `lot` (its index in the records), booked from
    /// `source` for `chemistry`.
    fn add(
        &mut self,
        lot: usize,
        mass: &MassRead<'a>,
        chemistry: Option<Chemistry>,
        source: ContentSource,
        booked: &[Option<f64>; BALANCED_ELEMENTS.len()],
    ) {
        let (m, sm) = (mass.kg, mass.sigma);
        let own = own_content_sigma(source);
        self.instrument = mass.instrument;
        self.units += 1;
        self.kg += m;
        self.kg_variance += sm * sm;
        let at = match self
            .sources
            .iter()
            .position(|s| (s.chemistry, s.source) == (chemistry, source))
        {
            Some(at) => at,
            None => {
                self.sources.push(BookedFrom {
                    chemistry,
                    source,
                    flows: [0.0; BALANCED_ELEMENTS.len()],
                });
                self.sources.len() - 1
            }
        };
        let mass_part = booked.map(|x| x.map_or(0.0, |x| (x * sm).powi(2)));
        let content_part = booked.map(|x| x.map_or(0.0, |x| (m * own * x).powi(2)));
        for k in 0..BALANCED_ELEMENTS.len() {
            if let Some(x) = booked[k] {
                self.sources[at].flows[k] += m * x;
                let (vm, vc) = self.variances[k].get_or_insert((0.0, 0.0));
                *vm += mass_part[k];
                *vc += content_part[k];
            }
        }
        if let Some(members) = &mut self.members {
            members.push(Member {
                lot,
                kg: m,
                kg_variance: sm * sm,
                source: at,
                booked: *booked,
                own_variance: std::array::from_fn(|k| mass_part[k] + content_part[k]),
            });
        }
    }

    /// Per source, per element: its index among the parts of the
    /// element's factored content ([`UnitGroup::assay`] lists the sources
    /// that book the element, in order).
    fn parts(&self) -> Vec<[Option<usize>; BALANCED_ELEMENTS.len()]> {
        let mut next = [0; BALANCED_ELEMENTS.len()];
        self.sources
            .iter()
            .map(|s| {
                std::array::from_fn(|k| {
                    (s.flows[k] > 0.0).then(|| {
                        next[k] += 1;
                        next[k] - 1
                    })
                })
            })
            .collect()
    }

    fn stream_name(&self, node: &str) -> String {
        if self.units == 1 {
            return self.first.to_string();
        }
        format!(
            "{} units from {} ({}) > {node}",
            self.units, self.first, self.instrument
        )
    }

    fn mass_reading(&self, inst: &mut Instruments) -> Result<Reading<Kilograms>, MesError> {
        Reading::kg(self.kg, self.kg_variance.sqrt(), inst.get(self.instrument))
            .map_err(reading_err)
    }

    /// What is known of balanced element `k` (`el`): free where no unit
    /// books it, else the booked fraction under the units' content
    /// factors, with the own error's sigma.
    fn assay(
        &self,
        k: usize,
        el: Element,
        factors: &mut Factors,
        inst: &mut Instruments,
        builder: &mut NetworkBuilder,
    ) -> Result<BAssay, MesError> {
        let Some((mass_part, content_part)) = self.variances[k] else {
            return Ok(BAssay::Free);
        };
        let flow: f64 = self.sources.iter().map(|s| s.flows[k]).sum();
        if flow <= 0.0 {
            // Booked, but by units of no dry mass: nothing to balance.
            return Ok(BAssay::Free);
        }
        let x = (flow / self.kg.max(1e-9)).min(1.0);
        // What the mass reading already carries of the flow's variance is
        // not counted twice; the units' own content errors stay at least.
        let kg2 = self.kg * self.kg;
        let variance =
            ((mass_part + content_part - x * x * self.kg_variance) / kg2).max(content_part / kg2);
        let booked: Vec<(f64, ContentSource, Option<Chemistry>)> = self
            .sources
            .iter()
            .filter(|s| s.flows[k] > 0.0)
            .map(|s| (s.flows[k] / flow, s.source, s.chemistry))
            .collect();
        let label = match booked.as_slice() {
            [(_, s, _), rest @ ..] if rest.iter().all(|(_, r, _)| r == s) => source_label(*s),
            _ => "booked content",
        };
        let fraction =
            Reading::fraction(x, variance.sqrt(), inst.get(label)).map_err(reading_err)?;
        let mut parts: Vec<(f64, Arc<str>)> = booked
            .into_iter()
            .map(|(share, s, c)| (share, factors.get(builder, c, s, el)))
            .collect();
        Ok(match parts.len() {
            1 => BAssay::Factored {
                fraction,
                factor: parts.remove(0).1,
            },
            _ => BAssay::Blended {
                fraction,
                factors: parts,
            },
        })
    }
}

/// A lot kind without its chemistry or product: what a step makes, as a
/// bit position of a step's set of kinds.
fn kind_class(kind: LotKind) -> u16 {
    match kind {
        LotKind::InputUnit => 0,
        LotKind::DischargeBatch => 1,
        LotKind::BlackMass(_) => 2,
        LotKind::SideFraction(_) => 3,
        LotKind::LeachBatch => 4,
        LotKind::Solution => 5,
        LotKind::Product(_) => 6,
        LotKind::Residue => 7,
        LotKind::Loss => 8,
    }
}

/// The content factors, each named once ([`factor_name`]) and declared
/// to the network where first used.
#[derive(Default)]
struct Factors(FxHashMap<(Option<Chemistry>, &'static str, Element), Arc<str>>);

impl Factors {
    fn get(
        &mut self,
        builder: &mut NetworkBuilder,
        chemistry: Option<Chemistry>,
        source: ContentSource,
        el: Element,
    ) -> Arc<str> {
        self.0
            .entry((chemistry, source_label(source), el))
            .or_insert_with(|| {
                let name: Arc<str> = factor_name(chemistry, source, el).into();
                let what = format!("{} content factor", source_label(source));
                builder.factor(&name, source.relative_sigma(), &what);
                name
            })
            .clone()
    }
}

fn stream_assay(
    l: &Lot,
    el: Element,
    assays: Option<&Vec<remine_domain::Assay>>,
    chemistry: Option<Chemistry>,
    factors: &mut Factors,
    inst: &mut Instruments,
    builder: &mut NetworkBuilder,
) -> Result<BAssay, MesError> {
    let of_el = || assays.into_iter().flatten().filter(|a| a.element() == el);
    if let Some(c) = combine_assays(of_el())? {
        let lab = of_el().next().map_or("lab", |a| a.lab());
        let r = Reading::fraction(c.value().value(), c.sigma().value(), inst.lab(lab))
            .map_err(reading_err)?;
        return Ok(BAssay::Measured(r));
    }
    let kg = l.elements().get(el).kg();
    if kg > 0.0 && l.kind() != LotKind::InputUnit {
        // Booked from its inputs, not measured: the balances estimate it.
        return Ok(BAssay::Unmeasured);
    }
    if kg > 0.0 && l.mass().kg() > 0.0 {
        let source = l.content_source();
        let fraction = (kg / l.mass().kg()).min(1.0);
        let r = Reading::fraction_relative(
            fraction,
            own_content_sigma(source),
            inst.get(source_label(source)),
        )
        .map_err(reading_err)?;
        return Ok(if source == ContentSource::Assayed {
            BAssay::Measured(r)
        } else {
            BAssay::Factored {
                fraction: r,
                factor: factors.get(builder, chemistry, source, el),
            }
        });
    }
    Ok(match l.kind() {
        LotKind::Residue | LotKind::Loss => BAssay::Unmeasured,
        _ => BAssay::Free,
    })
}

/// A stream's reconciled element flow, the variance of its own part and,
/// for a factored content, each factor (name, reconciled sigma, the booked
/// element mass it multiplies): that part of the variance is shared by all
/// the factor's streams, so it is summed before it is squared.
struct FlowPart<'r> {
    flow: f64,
    own_variance: f64,
    shared: Vec<(&'r remine_balance::Variable, f64, f64)>,
}

fn summarise(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    layout: &Layout,
    network: &remine_balance::Network,
    mut r: Reconciliation<'_>,
) -> PeriodBalance {
    fn flow_sigma<'r>(stream: &StreamView<'r>, el: Element) -> Option<FlowPart<'r>> {
        let m = stream.mass();
        let flow = stream.element_flow(el)?;
        let (mv, ms) = (m.estimate?, m.sigma.unwrap_or(0.0));
        let xv = stream.fraction(el)?;
        if let Some((parts, own)) = stream.factors(el) {
            let os = own.sigma.unwrap_or(0.0);
            return Some(FlowPart {
                flow,
                own_variance: (xv * ms).powi(2) + (mv * os).powi(2),
                shared: parts
                    .into_iter()
                    .map(|(base, f)| (&f.variable, f.sigma.unwrap_or(0.0), mv * base))
                    .collect(),
            });
        }
        let xs = stream.assay(el).and_then(|x| x.sigma).unwrap_or(0.0);
        Some(FlowPart {
            flow,
            own_variance: (xv * ms).powi(2) + (mv * xs).powi(2),
            shared: Vec::new(),
        })
    }
    let total = |parts: Vec<FlowPart>| -> (f64, f64) {
        let mut value = 0.0;
        let mut var = 0.0;
        // By the factor's address: each variable is one value of the
        // reconciliation (cheaper than hashing its name per stream).
        let mut shared: FxHashMap<usize, (&remine_balance::Variable, f64, f64)> =
            FxHashMap::default();
        for p in parts {
            value += p.flow;
            var += p.own_variance;
            for (factor, sigma, booked) in p.shared {
                let key = std::ptr::from_ref(factor) as usize;
                shared.entry(key).or_insert((factor, sigma, 0.0)).2 += booked;
            }
        }
        // Summed in the order of the factors' names, as ever.
        let mut shared: Vec<(String, (f64, f64))> = shared
            .into_values()
            .map(|(f, s, b)| (f.to_string(), (s, b)))
            .collect();
        shared.sort_by(|a, b| a.0.cmp(&b.0));
        var += shared
            .iter()
            .map(|(_, (s, b))| (s * b).powi(2))
            .sum::<f64>();
        (value, var)
    };
    let mut recovery = Vec::new();
    // Each stream found by name once, for all four elements.
    let inputs: Option<Vec<StreamView<'_>>> =
        layout.inputs.iter().map(|s| r.stream_view(s)).collect();
    let products: Option<Vec<(StreamView<'_>, Element)>> = layout
        .products
        .iter()
        .map(|(s, el)| Some((r.stream_view(s)?, *el)))
        .collect();
    for el in [Element::Ni, Element::Co, Element::Li, Element::Cu] {
        let ins: Option<Vec<_>> = inputs
            .as_ref()
            .and_then(|v| v.iter().map(|s| flow_sigma(s, el)).collect());
        let outs: Option<Vec<_>> = products.as_ref().and_then(|v| {
            v.iter()
                .filter(|(_, pe)| *pe == el)
                .map(|(s, _)| flow_sigma(s, el))
                .collect()
        });
        let (reconciled, sigma, input_kg, output_kg) = match (ins, outs) {
            (Some(i), Some(o)) => {
                let (iv, is2) = total(i);
                let (ov, os2) = total(o);
                if iv > 0.0 {
                    let rate = ov / iv;
                    let rel = (os2 / ov.max(1e-12).powi(2) + is2 / iv.powi(2)).sqrt();
                    (Some(rate), Some(rate * rel), Some(iv), Some(ov))
                } else {
                    (None, None, Some(iv), Some(ov))
                }
            }
            _ => (None, None, None, None),
        };
        let rin = BALANCED_ELEMENTS
            .iter()
            .position(|&b| b == el)
            .map_or(0.0, |k| layout.recorded_in[k]);
        let rout = layout.recorded_out.get(&el).copied().unwrap_or(0.0);
        recovery.push(RecoveryFigure {
            element: el,
            recorded: (rin > 0.0).then(|| rout / rin),
            reconciled,
            sigma,
            input_kg,
            output_kg,
        });
    }
    PeriodBalance {
        from,
        to,
        nodes: network.node_count(),
        streams: network.stream_count(),
        recovery,
        chi_square: r.global.chi_square,
        dof: r.global.dof,
        p_value: r.global.p_value,
        passed: r.global.passed,
        suspect_readings: r
            .suspects
            .iter()
            .map(|s| SuspectReading {
                what: s.variable.to_string(),
                instrument: s.instrument.clone(),
                measured: s.measured,
                adjustment: s.adjustment,
                normalised_adjustment: s.normalised_adjustment,
            })
            .collect(),
        suspect_instruments: r
            .instruments
            .iter()
            .filter(|i| i.suspect)
            .map(|i| SuspectInstrument {
                instrument: i.instrument.clone(),
                readings: i.readings,
                relative_bias: i.relative_bias,
                bias_sigma: i.bias_sigma,
            })
            .collect(),
        converged: r.converged,
        iterations: r.iterations,
        // Moved out of the reconciliation, which is spent here.
        closures: std::mem::take(&mut r.balances)
            .into_iter()
            .map(|b| NodeClosure {
                quantity: b.measured.quantity.to_string(),
                unknown: b.measured.unknown.iter().map(ToString::to_string).collect(),
                node: b.measured.node,
                measured: b.measured.closure,
                reconciled: b.reconciled.closure,
            })
            .collect(),
    }
}
