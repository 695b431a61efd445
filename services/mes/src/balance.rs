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
    reconcile,
};
use remine_domain::ports::Store;
use remine_domain::{
    Chemistry, ContentSource, Element, GenealogyEdge, Kilograms, Lot, LotId, LotKind, MassMethod,
    MeasuredMass, combine_assays,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    pub node: String,
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
    recorded_in: BTreeMap<Element, f64>,
    recorded_out: BTreeMap<Element, f64>,
}

impl PlantBalance {
    pub fn new(store: Arc<dyn Store>) -> PlantBalance {
        PlantBalance { store }
    }

    /// Reconciles the lots made in `[from, to)`: reads them, the edges
    /// into them and their weighings and assays from the store, then
    /// [`reconcile_records`].
    #[tracing::instrument(skip(self))]
    pub async fn period(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PeriodBalance, MesError> {
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
        let mut weighings = HashMap::new();
        let mut assays = HashMap::new();
        let mut chemistries = HashMap::new();
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
        let records = BalanceRecords {
            lots,
            edges,
            weighings,
            assays,
            chemistries,
        };
        reconcile_records(from, to, &records)
    }
}

fn period_err(from: DateTime<Utc>, to: DateTime<Utc>) -> MesError {
    MesError::NotAllowed(format!(
        "the period must end after it starts ({from} .. {to})"
    ))
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
    pub weighings: HashMap<LotId, MeasuredMass>,
    pub assays: HashMap<LotId, Vec<remine_domain::Assay>>,
    pub chemistries: HashMap<LotId, Chemistry>,
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
    if to <= from {
        return Err(period_err(from, to));
    }
    let mut layout = layout(records)?;
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
    Ok(summarise(from, to, &layout, &network, &r))
}

fn reading_err(e: remine_balance::BalanceError) -> MesError {
    MesError::Internal(format!("balance reading: {e}"))
}

fn layout(records: &BalanceRecords) -> Result<Layout, MesError> {
    let BalanceRecords {
        lots,
        edges,
        weighings,
        assays,
        chemistries,
    } = records;
    let by_id: HashMap<&LotId, &Lot> = lots.iter().map(|l| (l.id(), l)).collect();
    // Inputs of each lot made in the period.
    let mut inputs_of: BTreeMap<&LotId, BTreeSet<&LotId>> = BTreeMap::new();
    for e in edges {
        inputs_of.entry(&e.to).or_default().insert(&e.from);
    }
    // A production step per distinct input set. A lot that several steps
    // take from is either split into portions of one material (the steps
    // make lots of the same kinds, as leach batches from one black-mass
    // lot) or separated into different materials (a shredder's black mass
    // and side fractions, a leach's solution and residue): separating
    // steps are one process node.
    let mut step_of_key: BTreeMap<Vec<&LotId>, usize> = BTreeMap::new();
    let mut step_outputs: Vec<Vec<&LotId>> = Vec::new();
    for (out, ins) in &inputs_of {
        let key: Vec<&LotId> = ins.iter().copied().collect();
        let step = *step_of_key.entry(key).or_insert_with(|| {
            step_outputs.push(Vec::new());
            step_outputs.len() - 1
        });
        step_outputs[step].push(*out);
    }
    let kinds_of = |step: usize| -> BTreeSet<String> {
        step_outputs[step]
            .iter()
            .filter_map(|o| by_id.get(o))
            .map(|l| kind_class(l.kind()))
            .collect()
    };
    let step_kinds: Vec<BTreeSet<String>> = (0..step_outputs.len()).map(kinds_of).collect();
    let mut steps_taking: HashMap<&LotId, BTreeSet<usize>> = HashMap::new();
    for (key, &step) in &step_of_key {
        for input in key {
            steps_taking.entry(*input).or_default().insert(step);
        }
    }
    let mut parent: Vec<usize> = (0..step_outputs.len()).collect();
    fn root(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for steps in steps_taking.values() {
        let first = steps.iter().next().copied();
        let separated = steps
            .iter()
            .any(|&s| first.is_some_and(|f| step_kinds[s] != step_kinds[f]));
        if let (true, Some(f)) = (separated, first) {
            for &s in steps {
                let (a, b) = (root(&mut parent, f), root(&mut parent, s));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    // A node per group of steps; its name from its first output. Nodes that
    // make products or solutions balance elements only: reagents bring the
    // sulphate, carbonate and water nobody weighs in.
    let mut node_name: BTreeMap<usize, String> = BTreeMap::new();
    let mut elements_only: BTreeSet<usize> = BTreeSet::new();
    for (step, outs) in step_outputs.iter().enumerate() {
        let group = root(&mut parent, step);
        if let Some(first) = outs.iter().min() {
            let candidate = format!("make {first}");
            match node_name.get_mut(&group) {
                Some(name) if candidate < *name => *name = candidate,
                Some(_) => {}
                None => {
                    node_name.insert(group, candidate);
                }
            }
        }
        if outs
            .iter()
            .filter_map(|o| by_id.get(o))
            .any(|l| matches!(l.kind(), LotKind::Product(_) | LotKind::Solution))
        {
            elements_only.insert(group);
        }
    }
    // Nodes by rank of name, so that a lot's uses below run in name order.
    let mut names: Vec<&str> = node_name.values().map(String::as_str).collect();
    names.sort_unstable();
    let rank_of = |name: &str| names.binary_search(&name).ok();
    let mut node_of_lot: HashMap<&LotId, usize> = HashMap::new();
    for (step, outs) in step_outputs.iter().enumerate() {
        let group = root(&mut parent, step);
        if let Some(rank) = node_name.get(&group).and_then(|n| rank_of(n)) {
            for o in outs {
                node_of_lot.insert(*o, rank);
            }
        }
    }
    let mut builder = NetworkBuilder::new();
    for (group, name) in &node_name {
        let b = if elements_only.contains(group) {
            Balances::elements_only(&BALANCED_ELEMENTS)
        } else {
            Balances::total_and(&BALANCED_ELEMENTS)
        };
        builder.node(name, b);
    }
    // What each lot gives to each consuming node (by rank of name).
    let mut consumed: HashMap<&LotId, BTreeMap<usize, f64>> = HashMap::new();
    for e in edges {
        let Some(&node) = node_of_lot.get(&e.to) else {
            continue;
        };
        *consumed
            .entry(&e.from)
            .or_default()
            .entry(node)
            .or_insert(0.0) += e.mass.kg();
    }

    let mut out = Layout {
        builder,
        inputs: Vec::new(),
        products: Vec::new(),
        recorded_in: BTreeMap::new(),
        recorded_out: BTreeMap::new(),
    };
    let mut factors: BTreeSet<String> = BTreeSet::new();
    let mut factor_names = FactorNames::default();
    // Lots from before the period that feed it enter from outside, by
    // their edge masses.
    let mut entered = BTreeSet::new();
    for e in edges {
        if by_id.contains_key(&e.from) {
            continue;
        }
        let Some(node) = node_of_lot.get(&e.to).map(|&r| names[r]) else {
            continue;
        };
        let name = format!("{} > {node}", e.from);
        if !entered.insert(name.clone()) {
            continue;
        }
        let r = Reading::kg_relative(
            e.mass.kg(),
            MassMethod::BeltWeigher.typical_relative_sigma(),
            "charge weigher",
        )
        .map_err(reading_err)?;
        out.builder
            .stream(&name, Endpoint::Environment, Endpoint::node(node), Some(r));
        for el in BALANCED_ELEMENTS {
            out.builder.assay(&name, el, BAssay::Unmeasured);
        }
    }
    for l in lots {
        let id = l.id();
        let name = id.to_string();
        let from = node_of_lot
            .get(id)
            .map_or(Endpoint::Environment, |&r| Endpoint::node(names[r]));
        let no_uses = BTreeMap::new();
        let uses = consumed.get(id).unwrap_or(&no_uses);
        let total_used: f64 = uses.values().sum();
        let whole =
            uses.len() == 1 && (total_used - l.mass().kg()).abs() <= 1e-6 * l.mass().kg().max(1.0);
        let mass_reading = match weighings.get(id) {
            Some(m) => {
                Reading::<Kilograms>::new(m.dry_mass(), m.instrument()).map_err(reading_err)?
            }
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
                Reading::kg_relative(l.mass().kg().max(1e-9), rel, what).map_err(reading_err)?
            }
        };
        let to = if uses.is_empty() {
            Endpoint::Environment
        } else if whole {
            Endpoint::node(uses.keys().next().map(|&r| names[r]).unwrap_or_default())
        } else {
            let split = format!("split {id}");
            let b = Balances::total_and(&BALANCED_ELEMENTS);
            out.builder.node(&split, b);
            for (&rank, kg) in uses {
                let node = names[rank];
                let portion = format!("{id} > {node}");
                let r = Reading::kg_relative(
                    kg.max(1e-9),
                    MassMethod::BeltWeigher.typical_relative_sigma(),
                    "charge weigher",
                )
                .map_err(reading_err)?;
                out.builder.stream(
                    &portion,
                    Endpoint::node(&split),
                    Endpoint::node(node),
                    Some(r),
                );
                for el in BALANCED_ELEMENTS {
                    out.builder
                        .assay(&portion, el, BAssay::SameAs(name.clone()));
                }
            }
            let rest = l.mass().kg() - total_used;
            if rest > 1e-6 * l.mass().kg().max(1.0) {
                let stock = format!("{id} in stock");
                let rel = mass_reading.sigma().kg() / mass_reading.value().kg().max(1e-9);
                let r = Reading::kg_relative(rest, rel.max(1e-6), "stock").map_err(reading_err)?;
                out.builder.stream(
                    &stock,
                    Endpoint::node(&split),
                    Endpoint::Environment,
                    Some(r),
                );
                for el in BALANCED_ELEMENTS {
                    out.builder.assay(&stock, el, BAssay::SameAs(name.clone()));
                }
            }
            Endpoint::node(&split)
        };
        if from == Endpoint::Environment && to == Endpoint::Environment {
            // Not made nor used in the period (a unit still in stock): no
            // node balances it.
            continue;
        }
        out.builder.stream(&name, from, to, Some(mass_reading));
        for el in BALANCED_ELEMENTS {
            let assay = stream_assay(
                l,
                el,
                assays.get(id),
                chemistries.get(id).copied(),
                &mut factor_names,
            )?;
            if let BAssay::Factored { factor, .. } = &assay
                && !factors.contains(factor)
                && factors.insert(factor.clone())
            {
                let source = l.content_source();
                let what = format!("{} content factor", source_label(source));
                out.builder.factor(factor, source.relative_sigma(), &what);
            }
            out.builder.assay(&name, el, assay);
        }
        match l.kind() {
            LotKind::InputUnit => {
                out.inputs.push(name.clone());
                for el in BALANCED_ELEMENTS {
                    *out.recorded_in.entry(el).or_insert(0.0) += l.elements().get(el).kg();
                }
            }
            // Products and the copper fraction: the lots that recover an
            // element, where the recovery rates count it.
            kind => {
                if let Some(el) = kind.recovered_element() {
                    out.products.push((name.clone(), el));
                    *out.recorded_out.entry(el).or_insert(0.0) += l.elements().get(el).kg();
                }
            }
        }
    }
    Ok(out)
}

/// A lot kind without its chemistry or product: what a step makes.
fn kind_class(kind: LotKind) -> String {
    match kind {
        LotKind::BlackMass(_) => "black mass".into(),
        LotKind::Product(_) => "product".into(),
        LotKind::SideFraction(_) => "side fraction".into(),
        other => other.code(),
    }
}

/// The content factors' names, each formatted once ([`factor_name`]).
#[derive(Default)]
struct FactorNames(HashMap<(Option<Chemistry>, &'static str, Element), String>);

impl FactorNames {
    fn get(&mut self, chemistry: Option<Chemistry>, source: ContentSource, el: Element) -> String {
        self.0
            .entry((chemistry, source_label(source), el))
            .or_insert_with(|| factor_name(chemistry, source, el))
            .clone()
    }
}

fn stream_assay(
    l: &Lot,
    el: Element,
    assays: Option<&Vec<remine_domain::Assay>>,
    chemistry: Option<Chemistry>,
    factor_names: &mut FactorNames,
) -> Result<BAssay, MesError> {
    let of_el: Vec<remine_domain::Assay> = assays
        .map(|v| v.iter().filter(|a| a.element() == el).cloned().collect())
        .unwrap_or_default();
    if let Some(c) = combine_assays(&of_el)? {
        let lab = of_el.first().map_or("lab", |a| a.lab());
        let r = Reading::fraction(
            c.value().value(),
            c.sigma().value(),
            &format!("assay {lab}"),
        )
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
        let r =
            Reading::fraction_relative(fraction, own_content_sigma(source), source_label(source))
                .map_err(reading_err)?;
        return Ok(if source == ContentSource::Assayed {
            BAssay::Measured(r)
        } else {
            BAssay::Factored {
                fraction: r,
                factor: factor_names.get(chemistry, source, el),
            }
        });
    }
    Ok(match l.kind() {
        LotKind::Residue | LotKind::Loss => BAssay::Unmeasured,
        _ => BAssay::Free,
    })
}

/// A stream's reconciled element flow, the variance of its own part and,
/// for a factored content, the factor (name, reconciled sigma, the booked
/// element mass it multiplies): that part of the variance is shared by all
/// the factor's streams, so it is summed before it is squared.
struct FlowPart<'r> {
    flow: f64,
    own_variance: f64,
    shared: Option<(&'r remine_balance::Variable, f64, f64)>,
}

fn summarise(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    layout: &Layout,
    network: &remine_balance::Network,
    r: &Reconciliation<'_>,
) -> PeriodBalance {
    let flow_sigma = |stream: &str, el: Element| -> Option<FlowPart> {
        let m = r.stream_mass(stream)?;
        let flow = r.element_flow(stream, el)?;
        let (mv, ms) = (m.estimate?, m.sigma.unwrap_or(0.0));
        let xv = r.fraction(stream, el)?;
        if let Some((base, factor, own)) = r.factored(stream, el) {
            let os = own.sigma.unwrap_or(0.0);
            return Some(FlowPart {
                flow,
                own_variance: (xv * ms).powi(2) + (mv * os).powi(2),
                shared: Some((&factor.variable, factor.sigma.unwrap_or(0.0), mv * base)),
            });
        }
        let xs = r.assay(stream, el).and_then(|x| x.sigma).unwrap_or(0.0);
        Some(FlowPart {
            flow,
            own_variance: (xv * ms).powi(2) + (mv * xs).powi(2),
            shared: None,
        })
    };
    let total = |parts: Vec<FlowPart>| -> (f64, f64) {
        let mut value = 0.0;
        let mut var = 0.0;
        let mut shared: HashMap<&remine_balance::Variable, (f64, f64)> = HashMap::new();
        for p in parts {
            value += p.flow;
            var += p.own_variance;
            if let Some((factor, sigma, booked)) = p.shared {
                shared.entry(factor).or_insert((sigma, 0.0)).1 += booked;
            }
        }
        // Summed in the order of the factors' names, as ever.
        let mut shared: Vec<(String, (f64, f64))> = shared
            .into_iter()
            .map(|(f, sb)| (f.to_string(), sb))
            .collect();
        shared.sort_by(|a, b| a.0.cmp(&b.0));
        var += shared
            .iter()
            .map(|(_, (s, b))| (s * b).powi(2))
            .sum::<f64>();
        (value, var)
    };
    let mut recovery = Vec::new();
    for el in [Element::Ni, Element::Co, Element::Li, Element::Cu] {
        let ins: Option<Vec<_>> = layout.inputs.iter().map(|s| flow_sigma(s, el)).collect();
        let outs: Option<Vec<_>> = layout
            .products
            .iter()
            .filter(|(_, pe)| *pe == el)
            .map(|(s, _)| flow_sigma(s, el))
            .collect();
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
        let rin = layout.recorded_in.get(&el).copied().unwrap_or(0.0);
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
        closures: r
            .balances
            .iter()
            .map(|b| NodeClosure {
                node: b.measured.node.clone(),
                quantity: b.measured.quantity.to_string(),
                measured: b.measured.closure.clone(),
                reconciled: b.reconciled.closure.clone(),
                unknown: b.measured.unknown.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }
}
