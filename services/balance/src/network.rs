//! The flowsheet to balance: nodes, streams, readings and the checked builder
//! that turns them into variables and balance equations.
//!
//! A [`Network`] is built once by [`NetworkBuilder::build`], which checks
//! every name and every reading; afterwards it is immutable and holds the
//! variables (stream masses, assays, inventories) and the balance rows the
//! solver works on.

use crate::BalanceError;
use remine_domain::{Element, Kilograms, MassFraction, Uncertain};
use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

/// A measured value with its standard deviation (1 sigma, same unit) and the
/// instrument or sample that produced it ("belt weigher BW-1", "ICP lab A
/// sample S-17"). The sigma is positive: a reading without uncertainty
/// cannot be weighed against others.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<T> {
    value: T,
    sigma: T,
    /// Shared: the many readings of one instrument can share its name.
    instrument: Arc<str>,
}

fn bad(instrument: &str, what: &'static str, rule: &'static str, value: f64) -> BalanceError {
    BalanceError::BadReading {
        instrument: instrument.to_string(),
        what,
        rule,
        value: value.to_string(),
    }
}

fn positive_sigma(instrument: &str, what: &'static str, sigma: f64) -> Result<(), BalanceError> {
    if sigma.is_finite() && sigma > 0.0 {
        Ok(())
    } else {
        Err(bad(instrument, what, "a finite number > 0", sigma))
    }
}

impl Reading<Kilograms> {
    /// A mass reading from a typed value and sigma. The instrument is a
    /// name (`&str`, `String`) or a shared one (`Arc<str>`, cloned cheaply
    /// by callers that make many readings of one instrument).
    pub fn new(
        value: Uncertain<Kilograms>,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        positive_sigma(&instrument, "mass sigma (kg)", value.sigma().kg())?;
        Ok(Reading {
            value: value.value(),
            sigma: value.sigma(),
            instrument,
        })
    }

    /// A mass reading from raw kilograms, as they come from a file or a scale.
    pub fn kg(
        value: f64,
        sigma: f64,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        let v = Kilograms::new(value)
            .map_err(|_| bad(&instrument, "mass (kg)", "a finite number >= 0", value))?;
        positive_sigma(&instrument, "mass sigma (kg)", sigma)?;
        let s = Kilograms::new(sigma)
            .map_err(|_| bad(&instrument, "mass sigma (kg)", "a finite number > 0", sigma))?;
        Self::new(Uncertain::new(v, s), instrument)
    }

    /// A mass reading whose sigma is a share of the value (0.005 = 0.5 %).
    pub fn kg_relative(
        value: f64,
        rel_sigma: f64,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        positive_sigma(&instrument, "relative mass sigma", rel_sigma)?;
        Self::kg(value, value * rel_sigma, instrument)
    }

    pub fn value(&self) -> Kilograms {
        self.value
    }

    pub fn sigma(&self) -> Kilograms {
        self.sigma
    }
}

impl Reading<MassFraction> {
    /// An assay reading from a typed value and sigma (the instrument as
    /// for [`Reading::<Kilograms>::new`]).
    pub fn new(
        value: Uncertain<MassFraction>,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        positive_sigma(&instrument, "assay sigma", value.sigma().value())?;
        Ok(Reading {
            value: value.value(),
            sigma: value.sigma(),
            instrument,
        })
    }

    /// An assay reading from a raw mass fraction (0.25 = 25 %).
    pub fn fraction(
        value: f64,
        sigma: f64,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        let v = MassFraction::new(value).map_err(|_| {
            bad(
                &instrument,
                "assay (mass fraction)",
                "between 0 and 1",
                value,
            )
        })?;
        positive_sigma(&instrument, "assay sigma", sigma)?;
        let s = MassFraction::new(sigma).map_err(|_| {
            bad(
                &instrument,
                "assay sigma",
                "between 0 and 1, above 0",
                sigma,
            )
        })?;
        Self::new(Uncertain::new(v, s), instrument)
    }

    /// An assay reading whose sigma is a share of the value (0.02 = 2 % relative).
    pub fn fraction_relative(
        value: f64,
        rel_sigma: f64,
        instrument: impl Into<Arc<str>>,
    ) -> Result<Self, BalanceError> {
        let instrument = instrument.into();
        positive_sigma(&instrument, "relative assay sigma", rel_sigma)?;
        Self::fraction(value, value * rel_sigma, instrument)
    }

    pub fn value(&self) -> MassFraction {
        self.value
    }

    pub fn sigma(&self) -> MassFraction {
        self.sigma
    }
}

impl<T> Reading<T> {
    pub fn instrument(&self) -> &str {
        &self.instrument
    }
}

/// Where a stream starts or ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Outside the balanced network (a supplier, a customer, the air).
    Environment,
    /// A declared node, by name (shared: a node's many streams can share it).
    Node(Arc<str>),
}

impl Endpoint {
    pub fn node(name: &str) -> Endpoint {
        Endpoint::Node(Arc::from(name))
    }
}

/// What is known of one element's mass fraction in one stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Assay {
    /// Assayed, with its uncertainty.
    Measured(Reading<MassFraction>),
    /// Present but not assayed: the reconciliation estimates it if it can.
    Unmeasured,
    /// Known to carry none of the element (reagents, steel scrap, plastics).
    Free,
    /// The same material as another stream, so the same assay: a portion of
    /// a lot carries the lot's assay (named by stream).
    SameAs(String),
    /// A booked content whose error is mostly shared with other streams:
    /// the fraction is `fraction.value() * factor + e`, where `factor` is a
    /// content factor declared by [`NetworkBuilder::factor`] (one variable
    /// for every stream booked from the same source, measured as 1) and
    /// `e` is this stream's own, independent error, measured as 0 with
    /// `fraction.sigma()`. Units whose content comes from one chemistry
    /// estimate share that estimate's error; this says so.
    Factored {
        fraction: Reading<MassFraction>,
        factor: Arc<str>,
    },
    /// [`Assay::Factored`] for a stream that blends material booked from
    /// several sources: the fraction is `fraction.value() * sum_k share_k *
    /// factor_k + e`, each content factor `factor_k` declared by
    /// [`NetworkBuilder::factor`] and carrying its `share_k` of the booked
    /// fraction (shares >= 0, summing to 1), and `e` the stream's own error,
    /// measured as 0 with `fraction.sigma()`.
    Blended {
        fraction: Reading<MassFraction>,
        factors: Vec<(f64, Arc<str>)>,
    },
}

/// What a node balances: the total mass and the listed elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balances {
    pub total: bool,
    pub elements: Vec<Element>,
}

impl Balances {
    /// Only the total mass (a discharge batch, the split of a lot).
    pub fn total_only() -> Balances {
        Balances {
            total: true,
            elements: Vec::new(),
        }
    }

    /// The total mass and these elements (a shredder, a leach batch).
    pub fn total_and(elements: &[Element]) -> Balances {
        Balances {
            total: true,
            elements: elements.to_vec(),
        }
    }

    /// These elements but not the total (a refinery fed water and reagents
    /// nobody weighs).
    pub fn elements_only(elements: &[Element]) -> Balances {
        Balances {
            total: false,
            elements: elements.to_vec(),
        }
    }
}

/// A balanced quantity: the total mass or one element's mass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    Total,
    Element(Element),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Total => f.write_str("total"),
            Quantity::Element(e) => write!(f, "{e}"),
        }
    }
}

/// The start or the end of a period's inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    Opening,
    Closing,
}

/// One unknown of the reconciliation, named as a plant engineer would.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Variable {
    /// The dry mass of a stream (kg).
    StreamMass { stream: Arc<str> },
    /// An element's mass fraction in a stream (shared by streams declared
    /// [`Assay::SameAs`] it).
    Assay { stream: Arc<str>, element: Element },
    /// A node's inventory of a quantity at the opening or closing of its period (kg).
    Inventory {
        node: Arc<str>,
        quantity: Quantity,
        end: End,
    },
    /// A content factor shared by the streams booked from one source
    /// (dimensionless, measured as 1).
    Factor { name: Arc<str> },
    /// The independent part of a factored content's error: the element's
    /// mass fraction in the stream less the booked fraction times the
    /// factor (measured as 0).
    ContentError { stream: Arc<str>, element: Element },
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::StreamMass { stream } => write!(f, "mass of '{stream}'"),
            Variable::Assay { stream, element } => write!(f, "{element} assay of '{stream}'"),
            Variable::Inventory {
                node,
                quantity,
                end,
            } => {
                let end = match end {
                    End::Opening => "opening",
                    End::Closing => "closing",
                };
                write!(f, "{end} {quantity} inventory of '{node}'")
            }
            Variable::Factor { name } => write!(f, "content factor '{name}'"),
            Variable::ContentError { stream, element } => {
                write!(f, "own {element} content error of '{stream}'")
            }
        }
    }
}

#[derive(Debug, Clone)]
struct NodeSpec {
    name: String,
    balances: Balances,
}

#[derive(Debug, Clone)]
struct StreamSpec {
    name: String,
    from: Endpoint,
    to: Endpoint,
    mass: Option<Reading<Kilograms>>,
    /// Declared with the stream ([`NetworkBuilder::stream_with_assays`]).
    assays: Vec<(Element, Assay)>,
}

#[derive(Debug, Clone)]
struct InventorySpec {
    node: String,
    quantity: Quantity,
    opening: Option<Reading<Kilograms>>,
    closing: Option<Reading<Kilograms>>,
}

/// Collects nodes, streams, assays and inventories; [`NetworkBuilder::build`]
/// checks them all and reports the first fault by name.
#[derive(Debug, Clone, Default)]
pub struct NetworkBuilder {
    nodes: Vec<NodeSpec>,
    streams: Vec<StreamSpec>,
    assays: Vec<(String, Element, Assay)>,
    inventories: Vec<InventorySpec>,
    /// (name, relative sigma, source).
    factors: Vec<(String, f64, Arc<str>)>,
}

impl NetworkBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A process node for a period ("shredder 2026-03", "leach batch L-17").
    pub fn node(&mut self, name: &str, balances: Balances) -> &mut Self {
        self.nodes.push(NodeSpec {
            name: name.to_string(),
            balances,
        });
        self
    }

    /// A stream from one node (or the environment) to another, with its
    /// measured dry mass or `None` when nobody weighed it.
    pub fn stream(
        &mut self,
        name: &str,
        from: Endpoint,
        to: Endpoint,
        mass: Option<Reading<Kilograms>>,
    ) -> &mut Self {
        self.stream_with_assays(name, from, to, mass, Vec::new())
    }

    /// [`NetworkBuilder::stream`] and what is known of each of its
    /// elements in one call: the same as declaring each by
    /// [`NetworkBuilder::assay`], without naming the stream again.
    pub fn stream_with_assays(
        &mut self,
        name: &str,
        from: Endpoint,
        to: Endpoint,
        mass: Option<Reading<Kilograms>>,
        assays: Vec<(Element, Assay)>,
    ) -> &mut Self {
        self.streams.push(StreamSpec {
            name: name.to_string(),
            from,
            to,
            mass,
            assays,
        });
        self
    }

    /// A content factor: one variable, measured as 1 with `relative_sigma`,
    /// that the contents of streams declared [`Assay::Factored`] with it
    /// are multiplied by. `source` names what the contents were booked
    /// from ("chemistry estimate NMC622 Ni"), as an instrument names a reading.
    pub fn factor(&mut self, name: &str, relative_sigma: f64, source: &str) -> &mut Self {
        self.factors
            .push((name.to_string(), relative_sigma, Arc::from(source)));
        self
    }

    /// What is known of `element` in `stream`.
    pub fn assay(&mut self, stream: &str, element: Element, assay: Assay) -> &mut Self {
        self.assays.push((stream.to_string(), element, assay));
        self
    }

    /// A node's inventory of `quantity` at the opening and closing of its
    /// period (`None`: not surveyed). The stock change is closing minus opening.
    pub fn inventory(
        &mut self,
        node: &str,
        quantity: Quantity,
        opening: Option<Reading<Kilograms>>,
        closing: Option<Reading<Kilograms>>,
    ) -> &mut Self {
        self.inventories.push(InventorySpec {
            node: node.to_string(),
            quantity,
            opening,
            closing,
        });
        self
    }

    /// Checks everything and lays out the variables and balance rows.
    pub fn build(&self) -> Result<Network, BalanceError> {
        Network::from_specs(self)
    }
}

/// A measured value inside the network (plain numbers in the variable's unit).
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub value: f64,
    pub sigma: f64,
    /// Interned: the many readings of one instrument share its name.
    pub instrument: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub name: Variable,
    pub measured: Option<Measured>,
    pub kind: VarKind,
}

impl Var {
    /// The own error of a stream's factored content of `element`,
    /// measured as 0 with `sigma`.
    fn content_error(stream: &Arc<str>, element: Element, sigma: f64, instrument: Arc<str>) -> Var {
        Var {
            name: Variable::ContentError {
                stream: stream.clone(),
                element,
            },
            measured: Some(Measured {
                value: 0.0,
                sigma,
                instrument,
            }),
            kind: VarKind::Correction,
        }
    }
}

/// What a variable measures, for starting values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarKind {
    /// Masses and inventories (kg).
    Mass,
    /// Mass fractions.
    Fraction,
    /// Content factors and content errors (around 1 and 0).
    Correction,
}

/// One term of a balance row, signed: + for what enters, - for what leaves
/// or accumulates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Term {
    /// `sign * z[v]` (a stream mass in a total balance, an inventory).
    Linear { v: usize, sign: f64 },
    /// `sign * z[m] * z[x]` (a stream's element mass: mass times assay).
    /// `sign` is +-1, or +- the booked fraction when `x` is a content factor.
    Product { m: usize, x: usize, sign: f64 },
}

/// Which of a node's flows a term belongs to, for closure reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    In,
    Out,
    Stock,
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub node: usize,
    pub quantity: Quantity,
    pub terms: Vec<(Term, Flow)>,
}

impl Row {
    /// The row's vars (with repeats).
    pub fn vars(&self) -> impl Iterator<Item = usize> + '_ {
        self.terms
            .iter()
            .flat_map(|(t, _)| match *t {
                Term::Linear { v, .. } => [Some(v), None],
                Term::Product { m, x, .. } => [Some(m), Some(x)],
            })
            .flatten()
    }
}

/// How a stream's element fraction is made of variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StreamAssay {
    /// Free of the element.
    Free,
    /// One assay variable.
    Var(usize),
    /// `base * z[factor] + z[error]`.
    Factored {
        base: f64,
        factor: usize,
        error: usize,
    },
    /// `sum_k base_k * z[factor_k] + z[error]`, the (base, factor) pairs
    /// `Network::blends[start..start + len]`.
    Blended { start: u32, len: u32, error: usize },
}

#[derive(Debug, Clone)]
pub(crate) struct StreamData {
    pub name: Arc<str>,
    pub mass: usize,
    pub assays: ElementAssays,
}

/// A stream's assays by element, in place (a network has many streams).
#[derive(Debug, Clone, Default)]
pub(crate) struct ElementAssays([Option<StreamAssay>; Element::ALL.len()]);

impl ElementAssays {
    /// `Element` is a field-less enum listed in `Element::ALL` order.
    fn slot(e: Element) -> usize {
        e as usize
    }

    pub fn get(&self, e: &Element) -> Option<&StreamAssay> {
        self.0.get(Self::slot(*e)).and_then(Option::as_ref)
    }

    fn insert(&mut self, e: Element, a: StreamAssay) {
        if let Some(slot) = self.0.get_mut(Self::slot(e)) {
            *slot = Some(a);
        }
    }
}

/// A checked flowsheet, ready to balance or reconcile.
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) nodes: Vec<Arc<str>>,
    pub(crate) streams: Vec<StreamData>,
    pub(crate) vars: Vec<Var>,
    pub(crate) rows: Vec<Row>,
    pub(crate) stream_index: FxHashMap<Arc<str>, usize>,
    /// The (base, factor variable) parts of blended assays.
    pub(crate) blends: Vec<(f64, usize)>,
}

impl Network {
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Number of balance equations (total and element rows over all nodes).
    pub fn equation_count(&self) -> usize {
        self.rows.len()
    }

    /// Number of unknowns, measured or not.
    pub fn variable_count(&self) -> usize {
        self.vars.len()
    }

    fn from_specs<'b>(b: &'b NetworkBuilder) -> Result<Network, BalanceError> {
        let mut node_index: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, n) in b.nodes.iter().enumerate() {
            if n.name.trim().is_empty() {
                return Err(BalanceError::BadNode {
                    node: n.name.clone(),
                    why: "a node needs a name".into(),
                });
            }
            if node_index.insert(n.name.as_str(), i).is_some() {
                return Err(BalanceError::Duplicate {
                    what: "node",
                    name: n.name.clone(),
                });
            }
        }
        let mut stream_index: FxHashMap<Arc<str>, usize> = FxHashMap::default();
        stream_index.reserve(b.streams.len());
        let mut instruments: FxHashMap<&str, Arc<str>> = FxHashMap::default();
        let mut intern = |name: &'b Arc<str>| -> Arc<str> {
            instruments
                .entry(name)
                .or_insert_with(|| name.clone())
                .clone()
        };
        // A mass per stream, a factor each, at most an assay and an own
        // content error per declared assay.
        let inline_assays: usize = b.streams.iter().map(|s| s.assays.len()).sum();
        let mut vars: Vec<Var> = Vec::with_capacity(
            b.streams.len() + b.factors.len() + 2 * (inline_assays + b.assays.len()),
        );
        let mut streams: Vec<StreamData> = Vec::with_capacity(b.streams.len());
        let mut ends: Vec<(Option<usize>, Option<usize>)> = Vec::with_capacity(b.streams.len());
        for s in &b.streams {
            if s.name.trim().is_empty() {
                return Err(BalanceError::BadStream {
                    stream: s.name.clone(),
                    why: "a stream needs a name".into(),
                });
            }
            let name: Arc<str> = Arc::from(s.name.as_str());
            if stream_index.insert(name.clone(), streams.len()).is_some() {
                return Err(BalanceError::Duplicate {
                    what: "stream",
                    name: s.name.clone(),
                });
            }
            let resolve = |e: &Endpoint,
                           end: &'static str|
             -> Result<Option<usize>, BalanceError> {
                match e {
                    Endpoint::Environment => Ok(None),
                    Endpoint::Node(n) => node_index.get(&**n).copied().map(Some).ok_or_else(|| {
                        BalanceError::UnknownNode {
                            stream: s.name.clone(),
                            end,
                            node: n.to_string(),
                        }
                    }),
                }
            };
            let from = resolve(&s.from, "comes from")?;
            let to = resolve(&s.to, "goes to")?;
            match (from, to) {
                (None, None) => {
                    return Err(BalanceError::BadStream {
                        stream: s.name.clone(),
                        why: "runs from the environment to the environment".into(),
                    });
                }
                (Some(a), Some(c)) if a == c => {
                    return Err(BalanceError::BadStream {
                        stream: s.name.clone(),
                        why: format!("starts and ends at node '{}'", b.nodes[a].name),
                    });
                }
                _ => {}
            }
            let mass = vars.len();
            vars.push(Var {
                name: Variable::StreamMass {
                    stream: name.clone(),
                },
                measured: s.mass.as_ref().map(|r| Measured {
                    value: r.value.kg(),
                    sigma: r.sigma.kg(),
                    instrument: intern(&r.instrument),
                }),
                kind: VarKind::Mass,
            });
            streams.push(StreamData {
                name,
                mass,
                assays: ElementAssays::default(),
            });
            ends.push((from, to));
        }

        // Content factors.
        let mut factor_index: FxHashMap<&str, usize> = FxHashMap::default();
        for (name, rel, source) in &b.factors {
            positive_sigma(source, "relative sigma of a content factor", *rel)?;
            if name.trim().is_empty() {
                return Err(BalanceError::BadReading {
                    instrument: source.to_string(),
                    what: "content factor name",
                    rule: "not empty",
                    value: format!("'{name}'"),
                });
            }
            if factor_index.insert(name.as_str(), vars.len()).is_some() {
                return Err(BalanceError::Duplicate {
                    what: "content factor",
                    name: name.clone(),
                });
            }
            vars.push(Var {
                name: Variable::Factor {
                    name: Arc::from(name.as_str()),
                },
                measured: Some(Measured {
                    value: 1.0,
                    sigma: *rel,
                    instrument: intern(source),
                }),
                kind: VarKind::Correction,
            });
        }

        // Assays: first the streams' own (measured, unmeasured, free), then
        // the same-as links, followed to their end.
        let mut blends: Vec<(f64, usize)> = Vec::new();
        // Every declared (stream, element, assay), in stream and element order.
        let inline = b
            .streams
            .iter()
            .enumerate()
            .flat_map(|(s, spec)| spec.assays.iter().map(move |(e, a)| (Ok(s), e, a)));
        let named = b.assays.iter().map(|(stream, e, a)| {
            let s = stream_index.get(stream.as_str()).copied().ok_or_else(|| {
                BalanceError::UnknownStream {
                    stream: stream.clone(),
                    by: format!("the {e} assay"),
                }
            });
            (s, e, a)
        });
        let mut declared: Vec<(usize, Element, &Assay)> =
            Vec::with_capacity(inline_assays + b.assays.len());
        for (s, element, assay) in inline.chain(named) {
            declared.push((s?, *element, assay));
        }
        if b.assays.is_empty() {
            // Declared with their streams, in stream order: only each
            // stream's few elements need sorting.
            let mut start = 0;
            while start < declared.len() {
                let s = declared[start].0;
                let end = start + declared[start..].partition_point(|d| d.0 == s);
                declared[start..end].sort_unstable_by_key(|&(_, e, _)| e);
                start = end;
            }
        } else {
            declared.sort_unstable_by_key(|&(s, e, _)| (s, e));
        }
        if let Some(w) = declared
            .windows(2)
            .find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
        {
            return Err(BalanceError::Duplicate {
                what: "assay",
                name: format!("{} of {}", w[0].1, streams[w[0].0].name),
            });
        }
        let declared_of = |s: usize, e: Element| -> Option<&Assay> {
            declared
                .binary_search_by_key(&(s, e), |&(s, e, _)| (s, e))
                .ok()
                .map(|i| declared[i].2)
        };
        for &(s, e, assay) in &declared {
            match assay {
                Assay::Measured(r) => {
                    let v = vars.len();
                    vars.push(Var {
                        name: Variable::Assay {
                            stream: streams[s].name.clone(),
                            element: e,
                        },
                        measured: Some(Measured {
                            value: r.value.value(),
                            sigma: r.sigma.value(),
                            instrument: intern(&r.instrument),
                        }),
                        kind: VarKind::Fraction,
                    });
                    streams[s].assays.insert(e, StreamAssay::Var(v));
                }
                Assay::Unmeasured => {
                    let v = vars.len();
                    vars.push(Var {
                        name: Variable::Assay {
                            stream: streams[s].name.clone(),
                            element: e,
                        },
                        measured: None,
                        kind: VarKind::Fraction,
                    });
                    streams[s].assays.insert(e, StreamAssay::Var(v));
                }
                Assay::Free => {
                    streams[s].assays.insert(e, StreamAssay::Free);
                }
                Assay::Blended { fraction, factors } => {
                    let total: f64 = factors.iter().map(|(share, _)| share).sum();
                    if factors.is_empty()
                        || factors
                            .iter()
                            .any(|(share, _)| share.is_nan() || *share < 0.0)
                        || (total - 1.0).abs() > 1e-6
                    {
                        return Err(BalanceError::BadReading {
                            instrument: fraction.instrument.to_string(),
                            what: "shares of a blended content",
                            rule: "at least one, each >= 0, summing to 1",
                            value: format!("{factors:?} in the {e} assay of '{}'", streams[s].name),
                        });
                    }
                    let start = blends.len();
                    for (share, factor) in factors {
                        let f = *factor_index.get(&**factor).ok_or_else(|| {
                            BalanceError::UnknownFactor {
                                factor: factor.to_string(),
                                by: format!("the {e} assay of '{}'", streams[s].name),
                            }
                        })?;
                        blends.push((share * fraction.value.value(), f));
                    }
                    let error = vars.len();
                    vars.push(Var::content_error(
                        &streams[s].name,
                        e,
                        fraction.sigma.value(),
                        intern(&fraction.instrument),
                    ));
                    let too_many = |_| BalanceError::BadStream {
                        stream: streams[s].name.to_string(),
                        why: "the network holds more blended parts than it can index".into(),
                    };
                    let assay = StreamAssay::Blended {
                        start: u32::try_from(start).map_err(too_many)?,
                        len: u32::try_from(factors.len()).map_err(too_many)?,
                        error,
                    };
                    streams[s].assays.insert(e, assay);
                }
                Assay::Factored { fraction, factor } => {
                    let f = *factor_index.get(&**factor).ok_or_else(|| {
                        BalanceError::UnknownFactor {
                            factor: factor.to_string(),
                            by: format!("the {e} assay of '{}'", streams[s].name),
                        }
                    })?;
                    let error = vars.len();
                    vars.push(Var::content_error(
                        &streams[s].name,
                        e,
                        fraction.sigma.value(),
                        intern(&fraction.instrument),
                    ));
                    streams[s].assays.insert(
                        e,
                        StreamAssay::Factored {
                            base: fraction.value.value(),
                            factor: f,
                            error,
                        },
                    );
                }
                Assay::SameAs(_) => {}
            }
        }
        let same_as = declared
            .iter()
            .filter(|(_, _, a)| matches!(a, Assay::SameAs(_)));
        for &(s, e, _) in same_as {
            let mut at = s;
            let mut hops = 0;
            while let Some(Assay::SameAs(other)) = declared_of(at, e) {
                let o = *stream_index.get(other.as_str()).ok_or_else(|| {
                    BalanceError::UnknownStream {
                        stream: other.clone(),
                        by: format!("the {e} assay of '{}'", streams[s].name),
                    }
                })?;
                if declared_of(o, e).is_none() {
                    return Err(BalanceError::BadStream {
                        stream: streams[s].name.to_string(),
                        why: format!(
                            "its {e} assay is the same as that of '{other}', which declares no {e} assay"
                        ),
                    });
                }
                hops += 1;
                if hops > declared.len() {
                    return Err(BalanceError::BadStream {
                        stream: streams[s].name.to_string(),
                        why: format!("its {e} assay refers back to itself through 'same as' links"),
                    });
                }
                at = o;
            }
            if at != s
                && let Some(target) = streams[at].assays.get(&e).copied()
            {
                streams[s].assays.insert(e, target);
            }
        }

        // Inventories.
        let mut stock: FxHashMap<(usize, Quantity), (usize, usize)> = FxHashMap::default();
        for inv in &b.inventories {
            let n = *node_index
                .get(inv.node.as_str())
                .ok_or_else(|| BalanceError::BadNode {
                    node: inv.node.clone(),
                    why: format!(
                        "its {} inventory is declared but the node is not",
                        inv.quantity
                    ),
                })?;
            let spec = &b.nodes[n];
            let balanced = match inv.quantity {
                Quantity::Total => spec.balances.total,
                Quantity::Element(e) => spec.balances.elements.contains(&e),
            };
            if !balanced {
                return Err(BalanceError::BadNode {
                    node: inv.node.clone(),
                    why: format!(
                        "has a {} inventory but does not balance {}",
                        inv.quantity, inv.quantity
                    ),
                });
            }
            let mut var_of = |end: End, r: &'b Option<Reading<Kilograms>>| {
                vars.push(Var {
                    name: Variable::Inventory {
                        node: Arc::from(inv.node.as_str()),
                        quantity: inv.quantity,
                        end,
                    },
                    measured: r.as_ref().map(|r| Measured {
                        value: r.value.kg(),
                        sigma: r.sigma.kg(),
                        instrument: intern(&r.instrument),
                    }),
                    kind: VarKind::Mass,
                });
                vars.len() - 1
            };
            let o = var_of(End::Opening, &inv.opening);
            let c = var_of(End::Closing, &inv.closing);
            if stock.insert((n, inv.quantity), (o, c)).is_some() {
                return Err(BalanceError::Duplicate {
                    what: "inventory",
                    name: format!("{} of {}", inv.quantity, inv.node),
                });
            }
        }

        // Balance rows.
        let mut at_node: Vec<Vec<(usize, f64)>> = vec![Vec::new(); b.nodes.len()];
        for (s, (from, to)) in ends.iter().enumerate() {
            if let Some(f) = from {
                at_node[*f].push((s, -1.0));
            }
            if let Some(t) = to {
                at_node[*t].push((s, 1.0));
            }
        }
        // Each node's rows on its own (in parallel: a year has tens of
        // thousands of nodes), then in node order; the first fault in node
        // order is the one reported.
        use rayon::prelude::*;
        let node_rows: Vec<Result<Vec<Row>, BalanceError>> = b
            .nodes
            .par_iter()
            .enumerate()
            .with_min_len(256)
            .map(|(n, spec)| node_rows(n, spec, &at_node[n], &streams, &blends, &stock))
            .collect();
        let row_count: usize = node_rows
            .iter()
            .map(|r| r.as_ref().map_or(0, Vec::len))
            .sum();
        let mut rows = Vec::with_capacity(row_count);
        for r in node_rows {
            rows.extend(r?);
        }
        Ok(Network {
            nodes: b.nodes.iter().map(|n| Arc::from(n.name.as_str())).collect(),
            streams,
            vars,
            rows,
            stream_index,
            blends,
        })
    }
}

/// The balance rows of node `n`: its total (if balanced) and each of its
/// elements, over the streams `at` that enter (+1) or leave (-1) it.
fn node_rows(
    n: usize,
    spec: &NodeSpec,
    at: &[(usize, f64)],
    streams: &[StreamData],
    blends: &[(f64, usize)],
    stock: &FxHashMap<(usize, Quantity), (usize, usize)>,
) -> Result<Vec<Row>, BalanceError> {
    if at.is_empty() {
        return Err(BalanceError::BadNode {
            node: spec.name.clone(),
            why: "no stream enters or leaves it".into(),
        });
    }
    if !spec.balances.total && spec.balances.elements.is_empty() {
        return Err(BalanceError::BadNode {
            node: spec.name.clone(),
            why: "balances neither the total mass nor any element".into(),
        });
    }
    let flow = |sign: f64| if sign > 0.0 { Flow::In } else { Flow::Out };
    let stock_terms = |q: Quantity| -> Vec<(Term, Flow)> {
        match stock.get(&(n, q)) {
            Some(&(o, c)) => vec![
                (Term::Linear { v: c, sign: -1.0 }, Flow::Stock),
                (Term::Linear { v: o, sign: 1.0 }, Flow::Stock),
            ],
            None => Vec::new(),
        }
    };
    let mut rows = Vec::with_capacity(1 + spec.balances.elements.len());
    if spec.balances.total {
        let mut terms: Vec<(Term, Flow)> = Vec::with_capacity(at.len() + 2);
        terms.extend(at.iter().map(|&(s, sign)| {
            (
                Term::Linear {
                    v: streams[s].mass,
                    sign,
                },
                flow(sign),
            )
        }));
        terms.extend(stock_terms(Quantity::Total));
        rows.push(Row {
            node: n,
            quantity: Quantity::Total,
            terms,
        });
    }
    let mut elements = spec.balances.elements.clone();
    elements.sort();
    elements.dedup();
    for e in elements {
        let mut terms = Vec::with_capacity(2 * at.len());
        for &(s, sign) in at {
            let m = streams[s].mass;
            match streams[s].assays.get(&e) {
                None => {
                    return Err(BalanceError::MissingAssay {
                        node: spec.name.clone(),
                        stream: streams[s].name.to_string(),
                        element: e.to_string(),
                    });
                }
                Some(StreamAssay::Free) => {}
                Some(&StreamAssay::Var(x)) => {
                    terms.push((Term::Product { m, x, sign }, flow(sign)));
                }
                Some(&StreamAssay::Factored {
                    base,
                    factor,
                    error,
                }) => {
                    if base > 0.0 {
                        let sign = sign * base;
                        terms.push((Term::Product { m, x: factor, sign }, flow(sign)));
                    }
                    terms.push((Term::Product { m, x: error, sign }, flow(sign)));
                }
                Some(&StreamAssay::Blended { start, len, error }) => {
                    let (start, len) = (start as usize, len as usize);
                    for &(base, factor) in &blends[start..start + len] {
                        if base > 0.0 {
                            let sign = sign * base;
                            terms.push((Term::Product { m, x: factor, sign }, flow(sign)));
                        }
                    }
                    terms.push((Term::Product { m, x: error, sign }, flow(sign)));
                }
            }
        }
        terms.extend(stock_terms(Quantity::Element(e)));
        if !terms.is_empty() {
            rows.push(Row {
                node: n,
                quantity: Quantity::Element(e),
                terms,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streams_assay_slots_follow_the_elements_listed_order() {
        for (i, e) in Element::ALL.into_iter().enumerate() {
            assert_eq!(ElementAssays::slot(e), i, "{e}");
        }
        let mut a = ElementAssays::default();
        a.insert(Element::Graphite, StreamAssay::Free);
        assert_eq!(a.get(&Element::Graphite), Some(&StreamAssay::Free));
        assert_eq!(a.get(&Element::Li), None);
    }
}
