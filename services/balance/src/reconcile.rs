//! Data reconciliation: weighted least squares over the bilinear balances,
//! by successive linearisation, with observability, redundancy and
//! gross-error tests. The method is described in the crate's essay.

use crate::BalanceError;
use crate::balance::{Closure, Flows, Gradient, NodeBalance, closure, flows, measured_balance};
use crate::network::{Network, StreamAssay, Term, VarKind, Variable};
use crate::sparse::{Columns, SparseFactor, SparseFailure};
use crate::sparse::{Merger, merge_in_place};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use remine_domain::Element;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use std::collections::HashMap;
use std::sync::Arc;

/// How to reconcile. `Options::default()` suits plant data.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Give up linearising after this many steps (the result says so).
    pub max_iterations: usize,
    /// Stop when no measured value moves by more than `tolerance` of its
    /// sigma and no unmeasured one by more than `tolerance` of its value
    /// (or when a step below 1e-7 of that is no smaller than the one
    /// before: rounding noise).
    pub tolerance: f64,
    /// Significance of the gross-error tests (0.05: 95 %).
    pub alpha: f64,
    /// The most reduced equations a connected component may have to be
    /// solved densely (nalgebra); a larger one is factorised sparsely (faer).
    pub dense_equations: usize,
    /// The most balance equations that may share unmeasured values (joined
    /// through them): they are eliminated densely, cubic in their number,
    /// so a larger set is refused with an error naming it instead of
    /// running for hours.
    pub max_component_equations: usize,
    /// The most entries the sparse Cholesky factor of one component may
    /// hold (8 bytes each, plus an index); a larger one is refused with an
    /// error naming the component instead of exhausting memory.
    pub max_factor_entries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iterations: 50,
            tolerance: 1e-10,
            alpha: 0.05,
            dense_equations: 400,
            max_component_equations: 4_000,
            max_factor_entries: 60_000_000,
        }
    }
}

/// What the balances say about a value (domain brief section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Measured, and the balances estimate it again: the reconciliation
    /// adjusts it and its sigma shrinks.
    Redundant,
    /// Measured, but no balance checks it: it stays as measured.
    JustDeterminable,
    /// Unmeasured, and the balances fix its value.
    Determinable,
    /// Unmeasured, and the balances do not fix its value.
    NotDeterminable,
}

/// What happened to one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementResult {
    pub instrument: Arc<str>,
    pub measured: f64,
    pub sigma: f64,
    /// `reconciled - measured`.
    pub adjustment: f64,
    /// `|adjustment| / sigma(adjustment)`; `None` when not redundant.
    pub normalised_adjustment: Option<f64>,
    /// Above the component's critical value (a suspected gross error).
    pub suspect: bool,
}

/// The reconciled estimate of one variable, in its unit (kg or mass fraction).
#[derive(Debug, Clone, PartialEq)]
pub struct VarResult {
    pub variable: Variable,
    pub measurement: Option<MeasurementResult>,
    /// `None` when not determinable.
    pub estimate: Option<f64>,
    /// The reconciled standard deviation; `None` when not determinable.
    pub sigma: Option<f64>,
    pub class: Class,
}

/// A factored content's parts, each booked fraction with its content
/// factor, and the stream's own error ([`Reconciliation::factors`]).
pub type FactorParts<'r> = (Vec<(f64, &'r VarResult)>, &'r VarResult);

/// A chi-square test of the weighted sum of squared adjustments.
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquareTest {
    pub chi_square: f64,
    /// Degrees of freedom: the rank of the reduced balance equations.
    pub dof: usize,
    /// The probability of a chi-square this large or larger without gross errors.
    pub p_value: f64,
    pub alpha: f64,
    /// `p_value >= alpha`.
    pub passed: bool,
}

impl ChiSquareTest {
    fn new(chi_square: f64, dof: usize, alpha: f64) -> ChiSquareTest {
        let p_value = if dof == 0 {
            1.0
        } else {
            ChiSquared::new(dof as f64).map_or(f64::NAN, |d| 1.0 - d.cdf(chi_square.max(0.0)))
        };
        ChiSquareTest {
            chi_square,
            dof,
            p_value,
            alpha,
            passed: p_value >= alpha,
        }
    }
}

/// One connected set of balances, reconciled on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    /// The first node of the component, to find it by.
    pub first_node: String,
    pub nodes: usize,
    pub equations: usize,
    pub measured: usize,
    pub unmeasured: usize,
    pub iterations: usize,
    pub converged: bool,
    /// The largest balance residual after reconciliation, relative to the
    /// largest term of its equation.
    pub max_relative_residual: f64,
    pub test: ChiSquareTest,
    /// The normalised adjustment above which a reading is a suspect
    /// (Bonferroni over the component's redundant readings).
    pub critical_z: f64,
}

/// A reading whose normalised adjustment exceeds the critical value.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub variable: Variable,
    pub instrument: String,
    pub normalised_adjustment: f64,
    pub adjustment: f64,
    pub measured: f64,
}

/// The test of one instrument (all readings of one name) for a relative
/// bias: the generalised likelihood ratio test for readings that are all
/// `(1 + bias)` times their true values (Narasimhan and Mah, 1987). For an
/// instrument with one reading it is that reading's normalised adjustment.
/// It finds a weigher that reads high on many streams, where the reading
/// test smears the error over the readings it meets in the balances.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentTest {
    pub instrument: String,
    /// Its redundant readings, the ones the test can use.
    pub readings: usize,
    /// The estimated relative bias (0.08: reads 8 % high) and its sigma.
    pub relative_bias: f64,
    pub bias_sigma: f64,
    /// `|relative_bias| / bias_sigma`, standard normal without bias.
    pub z: f64,
    /// Above the two-sided normal quantile at `alpha`, Bonferroni-corrected
    /// over the instruments tested.
    pub suspect: bool,
}

/// The reconciled network (it borrows the network for its names).
#[derive(Debug, Clone)]
pub struct Reconciliation<'n> {
    /// Every variable, in the network's order.
    pub variables: Vec<VarResult>,
    /// Every node and quantity, before (`measured`) and after reconciliation.
    pub balances: Vec<ReconciledBalance>,
    pub components: Vec<ComponentReport>,
    /// The sum over components (they are independent).
    pub global: ChiSquareTest,
    /// Readings suspected of a gross error, the largest normalised
    /// adjustment first.
    pub suspects: Vec<Suspect>,
    /// The bias test of every instrument, over all its readings in the
    /// network, the largest test statistic first.
    pub instruments: Vec<InstrumentTest>,
    /// The most linearisation steps any component needed.
    pub iterations: usize,
    pub converged: bool,
    pub tolerance: f64,
    network: &'n Network,
}

/// A node's balance of one quantity before and after reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciledBalance {
    pub measured: NodeBalance,
    /// After reconciliation the closure is 100 % within the tolerance; the
    /// sigmas are the reconciled ones.
    pub reconciled: NodeBalance,
}

impl Reconciliation<'_> {
    /// One stream's reconciled values, found by name once: for reading
    /// many values of many streams (a year's inputs) without a look-up each.
    pub fn stream_view(&self, stream: &str) -> Option<StreamView<'_>> {
        let &s = self.network.stream_index.get(stream)?;
        Some(StreamView {
            r: self,
            s: &self.network.streams[s],
        })
    }

    pub fn stream_mass(&self, stream: &str) -> Option<&VarResult> {
        Some(self.stream_view(stream)?.mass())
    }

    /// The assay variable of a stream (`None` if unknown, free of the
    /// element, or factored: see [`Reconciliation::factored`]).
    pub fn assay(&self, stream: &str, element: Element) -> Option<&VarResult> {
        self.stream_view(stream)?.assay(element)
    }

    /// For a stream whose content is factored ([`crate::Assay::Factored`]):
    /// the booked fraction, the content factor and the stream's own error.
    pub fn factored(
        &self,
        stream: &str,
        element: Element,
    ) -> Option<(f64, &VarResult, &VarResult)> {
        self.stream_view(stream)?.factored(element)
    }

    /// The reconciled mass fraction of `element` in `stream`: its assay,
    /// or the booked fraction times the factor plus the stream's own
    /// error; zero for a stream free of it; `None` if not determinable or
    /// the stream declares no such assay.
    pub fn fraction(&self, stream: &str, element: Element) -> Option<f64> {
        self.stream_view(stream)?.fraction(element)
    }

    /// For a stream whose content is factored ([`crate::Assay::Factored`]
    /// or [`crate::Assay::Blended`]): each booked part of the fraction with
    /// its content factor, and the stream's own error.
    pub fn factors(&self, stream: &str, element: Element) -> Option<FactorParts<'_>> {
        self.stream_view(stream)?.factors(element)
    }

    /// The reconciled mass of `element` in `stream` (kg): mass times
    /// fraction, zero for a stream free of it, `None` if either is not
    /// determinable or the stream declares no such assay.
    pub fn element_flow(&self, stream: &str, element: Element) -> Option<f64> {
        self.stream_view(stream)?.element_flow(element)
    }
}

/// One stream of a [`Reconciliation`] ([`Reconciliation::stream_view`]):
/// the same readings as the reconciliation's by-name methods.
#[derive(Debug, Clone, Copy)]
pub struct StreamView<'r> {
    r: &'r Reconciliation<'r>,
    s: &'r crate::network::StreamData,
}

impl<'r> StreamView<'r> {
    fn var(&self, v: usize) -> &'r VarResult {
        &self.r.variables[v]
    }

    /// The stream's reconciled mass.
    pub fn mass(&self) -> &'r VarResult {
        self.var(self.s.mass)
    }

    /// See [`Reconciliation::assay`].
    pub fn assay(&self, element: Element) -> Option<&'r VarResult> {
        match self.s.assays.get(&element)? {
            StreamAssay::Var(v) => Some(self.var(*v)),
            _ => None,
        }
    }

    /// See [`Reconciliation::factored`].
    pub fn factored(&self, element: Element) -> Option<(f64, &'r VarResult, &'r VarResult)> {
        match self.s.assays.get(&element)? {
            StreamAssay::Factored {
                base,
                factor,
                error,
            } => Some((*base, self.var(*factor), self.var(*error))),
            _ => None,
        }
    }

    /// See [`Reconciliation::fraction`].
    pub fn fraction(&self, element: Element) -> Option<f64> {
        match self.s.assays.get(&element)? {
            StreamAssay::Free => Some(0.0),
            StreamAssay::Var(x) => self.var(*x).estimate,
            StreamAssay::Factored {
                base,
                factor,
                error,
            } => Some(base * self.var(*factor).estimate? + self.var(*error).estimate?),
            &StreamAssay::Blended { start, len, error } => {
                let (start, len) = (start as usize, len as usize);
                let mut x = self.var(error).estimate?;
                for &(base, factor) in &self.r.network.blends[start..start + len] {
                    x += base * self.var(factor).estimate?;
                }
                Some(x)
            }
        }
    }

    /// See [`Reconciliation::factors`].
    pub fn factors(&self, element: Element) -> Option<FactorParts<'r>> {
        match *self.s.assays.get(&element)? {
            StreamAssay::Factored {
                base,
                factor,
                error,
            } => Some((vec![(base, self.var(factor))], self.var(error))),
            StreamAssay::Blended { start, len, error } => {
                let (start, len) = (start as usize, len as usize);
                let parts = self.r.network.blends[start..start + len]
                    .iter()
                    .map(|&(base, factor)| (base, self.var(factor)))
                    .collect();
                Some((parts, self.var(error)))
            }
            _ => None,
        }
    }

    /// See [`Reconciliation::element_flow`].
    pub fn element_flow(&self, element: Element) -> Option<f64> {
        if self.s.assays.get(&element)? == &StreamAssay::Free {
            return Some(0.0);
        }
        Some(self.mass().estimate? * self.fraction(element)?)
    }
}

/// Reconciles the network: each connected set of balances on its own, in parallel.
pub fn reconcile<'n>(
    network: &'n Network,
    options: &Options,
) -> Result<Reconciliation<'n>, BalanceError> {
    // Slots are 32-bit (see `Slot`), `u32::MAX` marking none.
    if network.vars.len() >= u32::MAX as usize {
        return Err(BalanceError::Numerical {
            node: network
                .nodes
                .first()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            why: format!(
                "{} values; at most {} are reconciled at once",
                network.vars.len(),
                u32::MAX - 1
            ),
        });
    }
    let comps = components(network);
    let solved: Vec<Result<Solved, BalanceError>> = comps
        .par_iter()
        .map(|c| solve_component(network, c, options))
        .collect();
    let mut variables: Vec<Option<VarResult>> = vec![None; network.vars.len()];
    let mut reconciled: Vec<Option<NodeBalance>> = vec![None; network.rows.len()];
    let mut reports = Vec::with_capacity(solved.len());
    let mut suspects = Vec::new();
    let mut by_instrument: HashMap<String, (f64, f64, usize)> = HashMap::new();
    for s in solved {
        let s = s?;
        for (v, r) in s.vars {
            variables[v] = Some(r);
        }
        for (r, b) in s.balances {
            reconciled[r] = Some(b);
        }
        suspects.extend(s.suspects);
        for (name, num, den, n) in s.instruments {
            let e = by_instrument.entry(name).or_insert((0.0, 0.0, 0));
            e.0 += num;
            e.1 += den;
            e.2 += n;
        }
        reports.push(s.report);
    }
    // Variables in no balance keep their readings. Filled in place, then
    // unwrapped in place (the same size: no second array of results).
    variables
        .par_iter_mut()
        .enumerate()
        .with_min_len(MIN_TASK)
        .filter(|(_, r)| r.is_none())
        .for_each(|(v, r)| *r = Some(alone(network, v)));
    let variables: Vec<VarResult> = variables.into_iter().flatten().collect();
    // Each row's balance as measured is made where it is stored (no array
    // of them besides the reconciled ones).
    let balances = network
        .rows
        .par_iter()
        .zip(reconciled)
        .map(|(row, r)| {
            let m = measured_balance(network, row);
            ReconciledBalance {
                reconciled: r.unwrap_or_else(|| m.clone()),
                measured: m,
            }
        })
        .collect();
    suspects.sort_by(|a: &Suspect, b: &Suspect| {
        b.normalised_adjustment.total_cmp(&a.normalised_adjustment)
    });
    let tested = by_instrument
        .values()
        .filter(|(_, den, _)| *den > 0.0)
        .count();
    let critical = Normal::new(0.0, 1.0).map_or(f64::NAN, |n| {
        n.inverse_cdf(1.0 - options.alpha / (2.0 * tested.max(1) as f64))
    });
    let mut instruments: Vec<InstrumentTest> = by_instrument
        .into_iter()
        .filter(|(_, (_, den, _))| *den > 0.0)
        .map(|(instrument, (num, den, readings))| {
            let z = num.abs() / den.sqrt();
            InstrumentTest {
                instrument,
                readings,
                relative_bias: num / den,
                bias_sigma: 1.0 / den.sqrt(),
                z,
                suspect: z > critical,
            }
        })
        .collect();
    instruments.sort_by(|a, b| {
        b.z.total_cmp(&a.z)
            .then_with(|| a.instrument.cmp(&b.instrument))
    });
    let chi: f64 = reports.iter().map(|r| r.test.chi_square).sum();
    let dof: usize = reports.iter().map(|r| r.test.dof).sum();
    Ok(Reconciliation {
        variables,
        balances,
        iterations: reports.iter().map(|r| r.iterations).max().unwrap_or(0),
        converged: reports.iter().all(|r| r.converged),
        components: reports,
        global: ChiSquareTest::new(chi, dof, options.alpha),
        suspects,
        instruments,
        tolerance: options.tolerance,
        network,
    })
}

fn alone(network: &Network, v: usize) -> VarResult {
    let var = &network.vars[v];
    match &var.measured {
        Some(m) => VarResult {
            variable: var.name.clone(),
            measurement: Some(MeasurementResult {
                instrument: m.instrument.clone(),
                measured: m.value,
                sigma: m.sigma,
                adjustment: 0.0,
                normalised_adjustment: None,
                suspect: false,
            }),
            estimate: Some(m.value),
            sigma: Some(m.sigma),
            class: Class::JustDeterminable,
        },
        None => VarResult {
            variable: var.name.clone(),
            measurement: None,
            estimate: None,
            sigma: None,
            class: Class::NotDeterminable,
        },
    }
}

// ---- decomposition -----------------------------------------------------------

/// The rows of one connected set of balances (rows sharing a variable).
struct Component {
    rows: Vec<usize>,
}

fn find(parent: &mut [usize], mut a: usize) -> usize {
    while parent[a] != a {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    a
}

fn components(network: &Network) -> Vec<Component> {
    let mut parent: Vec<usize> = (0..network.vars.len()).collect();
    for row in &network.rows {
        let mut vs = row.vars();
        if let Some(first) = vs.next() {
            for v in vs {
                let (a, b) = (find(&mut parent, first), find(&mut parent, v));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut comps: Vec<Component> = Vec::new();
    for (r, row) in network.rows.iter().enumerate() {
        let Some(v) = row.vars().next() else { continue };
        let root = find(&mut parent, v);
        let c = *by_root.entry(root).or_insert_with(|| {
            comps.push(Component { rows: Vec::new() });
            comps.len() - 1
        });
        comps[c].rows.push(r);
    }
    comps
}

// ---- one component -------------------------------------------------------------

struct Solved {
    /// Per instrument: (d' A' M^+ r, d' A' M^+ A d, readings) for the
    /// signature d of a relative bias.
    instruments: Vec<(String, f64, f64, usize)>,
    vars: Vec<(usize, VarResult)>,
    balances: Vec<(usize, NodeBalance)>,
    suspects: Vec<Suspect>,
    report: ComponentReport,
}

/// Where a network variable sits in the component's vectors (32-bit
/// indices: a year's Jacobian holds millions of slots; a component of more
/// than `u32::MAX` values is refused before it is laid out).
#[derive(Clone, Copy)]
enum Slot {
    X(u32),
    U(u32),
}

/// Rows that share unmeasured values (a connected set through them), with
/// those values: the unknowns are eliminated cluster by cluster, since
/// their Jacobian is block diagonal over the clusters.
struct Cluster {
    /// Component-local row indices.
    rows: Vec<usize>,
    /// Slots `U(j)` of the cluster's unknowns.
    us: Vec<usize>,
}

/// The Jacobian of the balance rows, stored flat: row `k` is
/// `entries[ptr[k]..ptr[k + 1]]`, each entry (slot, coefficient), repeats
/// allowed (one allocation instead of one per row, each linearisation).
struct Jacobian {
    ptr: Vec<usize>,
    entries: Vec<(Slot, f64)>,
}

impl std::ops::Index<usize> for Jacobian {
    type Output = [(Slot, f64)];

    fn index(&self, k: usize) -> &[(Slot, f64)] {
        &self.entries[self.ptr[k]..self.ptr[k + 1]]
    }
}

/// One cluster's elimination at a point.
struct Eliminated {
    /// `du = pinv * rhs` over the cluster's rows (|us| x |rows|).
    pinv: DMatrix<f64>,
    /// For each unknown of the cluster: does the balance fix it?
    determinable: Vec<bool>,
    /// The left null space of the cluster's unknown columns (|rows| x q).
    null: DMatrix<f64>,
}

/// The balances linearised at a point and reduced to the measured values.
struct Linear {
    /// Residuals of the balance rows at the point.
    f: Vec<f64>,
    /// Jacobian rows: (slot, coefficient), repeats allowed.
    jac: Jacobian,
    /// Per cluster of [`State::clusters`].
    eliminated: Vec<Eliminated>,
    /// Reduced equations: per measured value, its column (reduced row, coefficient).
    cols: Columns,
    /// The reduced residual `P f`.
    pf: Vec<f64>,
    /// `A V A'`, factorised.
    m: Factor,
}

/// A factorisation of the symmetric positive semi-definite `M = A V A'`,
/// scaled by `d = diag(M)^-1/2`: Cholesky when well conditioned, else an
/// eigen pseudo-inverse (dependent equations); sparse for a large component.
enum Factor {
    Cholesky(nalgebra::Cholesky<f64, nalgebra::Dyn>, Vec<f64>),
    Pseudo(DMatrix<f64>, usize),
    Sparse(SparseFactor),
}

impl Factor {
    fn dense(m: DMatrix<f64>) -> Option<Factor> {
        let p = m.nrows();
        let d: Vec<f64> = (0..p)
            .map(|i| {
                let v = m[(i, i)];
                if v > 0.0 { 1.0 / v.sqrt() } else { 0.0 }
            })
            .collect();
        let ms = DMatrix::from_fn(p, p, |a, b| m[(a, b)] * d[a] * d[b]);
        if d.iter().all(|&x| x > 0.0)
            && let Some(ch) = ms.clone().cholesky()
        {
            let l = ch.l_dirty();
            if (0..p).all(|i| l[(i, i)] * l[(i, i)] > 1e-10) {
                return Some(Factor::Cholesky(ch, d));
            }
        }
        if p == 0 {
            return Some(Factor::Pseudo(DMatrix::zeros(0, 0), 0));
        }
        let eig = SymmetricEigen::try_new(ms, f64::EPSILON, 10_000)?;
        let lmax = eig.eigenvalues.iter().copied().fold(0.0, f64::max);
        let tol = 1e-10 * lmax.max(f64::MIN_POSITIVE);
        let keep: Vec<usize> = (0..p).filter(|&i| eig.eigenvalues[i] > tol).collect();
        let inv = DMatrix::from_fn(p, p, |a, b| {
            d[a] * d[b]
                * keep
                    .iter()
                    .map(|&k| {
                        eig.eigenvectors[(a, k)] * eig.eigenvectors[(b, k)] / eig.eigenvalues[k]
                    })
                    .sum::<f64>()
        });
        Some(Factor::Pseudo(inv, keep.len()))
    }

    fn rank(&self) -> usize {
        match self {
            Factor::Cholesky(_, d) => d.len(),
            Factor::Pseudo(_, r) => *r,
            Factor::Sparse(s) => s.rank(),
        }
    }

    /// `M^+ r`.
    fn solve(&self, r: &[f64]) -> Vec<f64> {
        match self {
            Factor::Cholesky(ch, d) => {
                let b = nalgebra::DVector::from_fn(r.len(), |a, _| r[a] * d[a]);
                let s = ch.solve(&b);
                (0..r.len()).map(|a| s[a] * d[a]).collect()
            }
            Factor::Pseudo(inv, _) => (0..r.len())
                .map(|a| (0..r.len()).map(|b| inv[(a, b)] * r[b]).sum())
                .collect(),
            Factor::Sparse(s) => s.solve(r),
        }
    }

    /// What the statistics need of `M^+`: the explicit inverse of a dense
    /// factorisation, the factor itself for a sparse one.
    fn inverse(&self) -> Inverse<'_> {
        match self {
            Factor::Cholesky(ch, d) => {
                let inv = ch.inverse();
                Inverse::Dense(DMatrix::from_fn(d.len(), d.len(), |a, b| {
                    inv[(a, b)] * d[a] * d[b]
                }))
            }
            Factor::Pseudo(inv, _) => Inverse::Dense(inv.clone()),
            Factor::Sparse(s) => Inverse::Sparse(s, s.selected_inverse()),
        }
    }
}

/// `M^+` for quadratic forms.
enum Inverse<'a> {
    Dense(DMatrix<f64>),
    /// The factor, and its selected inverse for the narrow forms.
    Sparse(&'a SparseFactor, Option<crate::sparse::SelectedInverse>),
}

/// One thread's scratch space for [`Inverse::quad_readings`]: the
/// factor's own, and buffers for the forms, reused form after form (a
/// year's closures would otherwise allocate millions of small vectors).
struct Scratch {
    factor: FactorScratch,
    /// Gradients over the readings, their forms, and each form's narrow
    /// and wide parts.
    gradients: Vec<Vec<(usize, f64)>>,
    forms: Vec<Vec<(usize, f64)>>,
    narrow: Vec<Vec<(usize, f64)>>,
    wide: Vec<Vec<(usize, f64)>>,
    /// A closure's flows and gradients.
    flows: Flows,
    /// Adds up the repeats of long combinations.
    merger: Merger,
}

enum FactorScratch {
    Dense(Vec<f64>),
    Sparse(Box<crate::sparse::Scratch>),
}

/// `buffers[..n]`, each emptied, growing `buffers` as needed.
fn buffers(buffers: &mut Vec<Vec<(usize, f64)>>, n: usize) -> &mut [Vec<(usize, f64)>] {
    if buffers.len() < n {
        buffers.resize_with(n, Vec::new);
    }
    for b in &mut buffers[..n] {
        b.clear();
    }
    &mut buffers[..n]
}

impl Inverse<'_> {
    fn scratch(&self) -> Scratch {
        Scratch {
            factor: match self {
                Inverse::Dense(m) => FactorScratch::Dense(vec![0.0; m.nrows()]),
                Inverse::Sparse(s, _) => FactorScratch::Sparse(Box::new(s.scratch())),
            },
            gradients: Vec::new(),
            forms: Vec::new(),
            narrow: Vec::new(),
            wide: Vec::new(),
            flows: Flows::default(),
            merger: Merger::default(),
        }
    }

    /// `w' M^+ w` for each `w = sum_i b_i A_i`, given as (reading `i`,
    /// coefficient `b_i`) over the readings' reduced columns `cols`.
    fn quad_readings<F: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        cols: &Columns,
        forms: &[F],
    ) -> Vec<f64> {
        self.readings(scratch, cols, forms, false)
    }

    /// The Gram matrix `w_a' M^+ w_b` of the forms of
    /// [`Inverse::quad_readings`] (row-major, `k x k`).
    fn gram_readings<F: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        cols: &Columns,
        forms: &[F],
    ) -> Vec<f64> {
        self.readings(scratch, cols, forms, true)
    }

    /// [`Inverse::quad_readings`], or with `gram` [`Inverse::gram_readings`].
    fn readings<F: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        cols: &Columns,
        forms: &[F],
        gram: bool,
    ) -> Vec<f64> {
        match (self, &mut scratch.factor) {
            (Inverse::Sparse(f, sel), FactorScratch::Sparse(factor)) => {
                // Each form's narrow part with every equation once (the
                // readings of a closure share their node's equations), so
                // the factor columns' correction visits each equation once.
                let k = forms.len();
                let narrow = buffers(&mut scratch.narrow, k);
                let wide = buffers(&mut scratch.wide, k);
                for ((form, n), w) in forms.iter().zip(narrow.iter_mut()).zip(wide.iter_mut()) {
                    for &(i, b) in form.as_ref() {
                        if f.is_wide(i) {
                            w.push((i, b));
                        } else {
                            n.extend(cols[i].iter().map(|&(a, c)| (a, c * b)));
                        }
                    }
                    scratch.merger.merge(n);
                }
                if gram {
                    f.gram_split(sel.as_ref(), factor, narrow, wide)
                } else {
                    f.quad_split(sel.as_ref(), factor, narrow, wide)
                }
            }
            _ => {
                let ws: Vec<Vec<(usize, f64)>> = forms
                    .iter()
                    .map(|form| {
                        form.as_ref()
                            .iter()
                            .flat_map(|&(i, b)| cols[i].iter().map(move |&(a, c)| (a, c * b)))
                            .collect()
                    })
                    .collect();
                if gram {
                    self.gram_many(scratch, ws)
                } else {
                    self.quad_many(scratch, &ws)
                }
            }
        }
    }

    /// The Gram matrix of `ws` (row-major, `k x k`).
    fn gram_many(&self, scratch: &mut Scratch, mut ws: Vec<Vec<(usize, f64)>>) -> Vec<f64> {
        let k = ws.len();
        match (self, &mut scratch.factor) {
            (Inverse::Dense(m_inv), FactorScratch::Dense(_)) => {
                for w in &mut ws {
                    merge_in_place(w);
                }
                let mut g = vec![0.0; k * k];
                for (a, wa) in ws.iter().enumerate() {
                    for (b, wb) in ws.iter().enumerate() {
                        g[a * k + b] = wa
                            .iter()
                            .map(|&(x, cx)| {
                                cx * wb.iter().map(|&(y, cy)| m_inv[(x, y)] * cy).sum::<f64>()
                            })
                            .sum();
                    }
                }
                g
            }
            (Inverse::Sparse(f, sel), FactorScratch::Sparse(scratch)) => {
                let none: Vec<Vec<(usize, f64)>> = vec![Vec::new(); k];
                f.gram_split(sel.as_ref(), scratch, &ws, &none)
            }
            // Scratch is made by the same inverse.
            _ => vec![f64::NAN; k * k],
        }
    }

    /// [`Inverse::quad`] of each of `ws`.
    fn quad_many(&self, scratch: &mut Scratch, ws: &[Vec<(usize, f64)>]) -> Vec<f64> {
        match (self, &mut scratch.factor) {
            (Inverse::Dense(m_inv), FactorScratch::Dense(scratch)) => ws
                .iter()
                .map(|w| {
                    let mut touched: Vec<usize> = Vec::with_capacity(w.len());
                    for &(a, c) in w {
                        touched.push(a);
                        scratch[a] += c;
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    let mut s = 0.0;
                    for &a in &touched {
                        for &b in &touched {
                            s += scratch[a] * m_inv[(a, b)] * scratch[b];
                        }
                    }
                    for &a in &touched {
                        scratch[a] = 0.0;
                    }
                    s
                })
                .collect(),
            (Inverse::Sparse(f, sel), FactorScratch::Sparse(scratch)) => {
                f.quad_many_with(sel.as_ref(), scratch, ws)
            }
            // Scratch is made by the same inverse.
            _ => vec![f64::NAN; ws.len()],
        }
    }
}

/// A balance term with its variables resolved to slots.
#[derive(Clone, Copy)]
enum LocalTerm {
    Linear { v: Slot, sign: f64 },
    Product { m: Slot, x: Slot, sign: f64 },
}

struct State<'a> {
    network: &'a Network,
    options: &'a Options,
    rows: &'a [usize],
    /// The component's variables and their slots.
    slots: Slots,
    terms: Vec<Vec<LocalTerm>>,
    /// The number of entries of the Jacobian of `terms`.
    jacobian_entries: usize,
    /// Local rows that are solved: all but those another row implies.
    free_rows: Vec<usize>,
    clusters: Vec<Cluster>,
    xs: Vec<usize>,
    us: Vec<usize>,
    y: Vec<f64>,
    var: Vec<f64>,
    x: Vec<f64>,
    u: Vec<f64>,
    /// The symbolic part of a sparse factorisation, kept while the pattern is.
    symbolic: Option<Arc<crate::sparse::Symbolic>>,
}

/// Where each variable of a component sits in its vectors: measured ones
/// `X(0..)` and unmeasured ones `U(0..)`, each in the variables' order.
enum Slots {
    /// For a component that spans much of the network: per network
    /// variable, `2 i` for `X(i)`, `2 j + 1` for `U(j)`, `usize::MAX` if
    /// not in the component (one look-up instead of a binary search).
    Dense(Vec<usize>),
    /// The component's variables, sorted, and their slots.
    Sorted(Vec<usize>, Vec<Slot>),
}

impl Slots {
    /// The component's variables, sorted, and their slots.
    fn new(network: &Network, comp: &Component) -> (Vec<usize>, Slots) {
        let terms: usize = comp.rows.iter().map(|&r| network.rows[r].terms.len()).sum();
        let dense = terms.saturating_mul(4) >= network.vars.len();
        let vars: Vec<usize> = if dense {
            let mut seen = vec![false; network.vars.len()];
            for &r in &comp.rows {
                for v in network.rows[r].vars() {
                    seen[v] = true;
                }
            }
            (0..seen.len()).filter(|&v| seen[v]).collect()
        } else {
            let mut vars: Vec<usize> = comp
                .rows
                .iter()
                .flat_map(|&r| network.rows[r].vars())
                .collect();
            vars.sort_unstable();
            vars.dedup();
            vars
        };
        let (mut nx, mut nu) = (0u32, 0u32);
        let mut next = |v: usize| {
            if network.vars[v].measured.is_some() {
                nx += 1;
                Slot::X(nx - 1)
            } else {
                nu += 1;
                Slot::U(nu - 1)
            }
        };
        let slots = if dense {
            let mut at = vec![usize::MAX; network.vars.len()];
            for &v in &vars {
                at[v] = match next(v) {
                    Slot::X(i) => 2 * i as usize,
                    Slot::U(j) => 2 * j as usize + 1,
                };
            }
            Slots::Dense(at)
        } else {
            let slots = vars.iter().map(|&v| next(v)).collect();
            Slots::Sorted(vars.clone(), slots)
        };
        (vars, slots)
    }

    fn get(&self, v: usize) -> Slot {
        match self {
            Slots::Dense(at) => match at.get(v) {
                Some(&k) if k != usize::MAX => {
                    // At most u32::MAX values (see `reconcile`).
                    let i = (k / 2) as u32;
                    if k % 2 == 0 { Slot::X(i) } else { Slot::U(i) }
                }
                // Every variable of the component's rows has a slot.
                _ => Slot::U(u32::MAX),
            },
            Slots::Sorted(vars, slots) => match vars.binary_search(&v) {
                Ok(k) => slots[k],
                Err(_) => Slot::U(u32::MAX),
            },
        }
    }
}

/// Rows of the component implied by another: an element balance whose
/// streams all carry one assay (the split of a lot into portions) is that
/// assay times the node's total balance over the same streams, so it
/// holds whenever the total does. Solving it too would make `A V A'`
/// singular at the solution; its closure is still reported.
fn implied_rows(network: &Network, rows: &[usize]) -> Vec<bool> {
    let mut total_of: HashMap<usize, usize> = HashMap::new();
    for &r in rows {
        let row = &network.rows[r];
        if row.quantity == crate::Quantity::Total {
            total_of.insert(row.node, r);
        }
    }
    rows.iter()
        .map(|&r| {
            let row = &network.rows[r];
            if row.quantity == crate::Quantity::Total {
                return false;
            }
            let Some(&t) = total_of.get(&row.node) else {
                return false;
            };
            let mut assay = None;
            let mut masses: Vec<(usize, bool)> = Vec::with_capacity(row.terms.len());
            for &(term, _) in &row.terms {
                match term {
                    Term::Product { m, x, sign } if assay.is_none_or(|a| a == x) => {
                        assay = Some(x);
                        masses.push((m, sign > 0.0));
                    }
                    _ => return false,
                }
            }
            let mut total: Vec<(usize, bool)> = Vec::with_capacity(masses.len());
            for &(term, _) in &network.rows[t].terms {
                match term {
                    Term::Linear { v, sign } => total.push((v, sign > 0.0)),
                    Term::Product { .. } => return false,
                }
            }
            masses.sort_unstable();
            total.sort_unstable();
            masses == total
        })
        .collect()
}

impl<'a> State<'a> {
    fn new(network: &'a Network, comp: &'a Component, options: &'a Options) -> State<'a> {
        let (vars, slots) = Slots::new(network, comp);
        let (mut xs, mut us) = (Vec::new(), Vec::new());
        for &v in &vars {
            if network.vars[v].measured.is_some() {
                xs.push(v);
            } else {
                us.push(v);
            }
        }
        drop(vars);
        let slot = |v: usize| slots.get(v);
        let reading = |v: usize| {
            network.vars[v]
                .measured
                .as_ref()
                .map_or((0.0, 1.0), |m| (m.value, m.sigma))
        };
        let y: Vec<f64> = xs.iter().map(|&v| reading(v).0).collect();
        let var: Vec<f64> = xs.iter().map(|&v| reading(v).1.powi(2)).collect();
        // Starting values for the unknowns: typical magnitudes of their kind, so
        // no product term starts with a zero derivative.
        let mean = |kind: VarKind, default: f64| {
            let (s, n) = xs
                .iter()
                .filter(|&&v| network.vars[v].kind == kind)
                .fold((0.0, 0usize), |(s, n), &v| (s + reading(v).0, n + 1));
            if n > 0 && s > 0.0 {
                s / n as f64
            } else {
                default
            }
        };
        let (mass0, frac0) = (mean(VarKind::Mass, 1000.0), mean(VarKind::Fraction, 0.1));
        let u: Vec<f64> = us
            .iter()
            .map(|&v| match network.vars[v].kind {
                VarKind::Mass => mass0,
                VarKind::Fraction => frac0,
                VarKind::Correction => 1.0,
            })
            .collect();
        let terms: Vec<Vec<LocalTerm>> = comp
            .rows
            .iter()
            .map(|&r| {
                network.rows[r]
                    .terms
                    .iter()
                    .map(|&(t, _)| match t {
                        Term::Linear { v, sign } => LocalTerm::Linear { v: slot(v), sign },
                        Term::Product { m, x, sign } => LocalTerm::Product {
                            m: slot(m),
                            x: slot(x),
                            sign,
                        },
                    })
                    .collect()
            })
            .collect();
        let implied = implied_rows(network, &comp.rows);
        let free_rows: Vec<usize> = (0..comp.rows.len()).filter(|&k| !implied[k]).collect();
        // Clusters: the free rows that hold unknowns, joined through them.
        let mut parent: Vec<usize> = (0..us.len()).collect();
        let unknowns_of = |k: usize| {
            terms[k]
                .iter()
                .flat_map(|t| match *t {
                    LocalTerm::Linear { v, .. } => [Some(v), None],
                    LocalTerm::Product { m, x, .. } => [Some(m), Some(x)],
                })
                .flatten()
                .filter_map(|s| match s {
                    Slot::U(j) => Some(j as usize),
                    Slot::X(_) => None,
                })
        };
        for &k in &free_rows {
            let mut js = unknowns_of(k);
            if let Some(first) = js.next() {
                for j in js {
                    let (a, b) = (find(&mut parent, first), find(&mut parent, j));
                    if a != b {
                        parent[a] = b;
                    }
                }
            }
        }
        let mut by_root: HashMap<usize, usize> = HashMap::new();
        let mut clusters: Vec<Cluster> = Vec::new();
        for &k in &free_rows {
            let Some(j) = unknowns_of(k).next() else {
                continue;
            };
            let root = find(&mut parent, j);
            let c = *by_root.entry(root).or_insert_with(|| {
                clusters.push(Cluster {
                    rows: Vec::new(),
                    us: Vec::new(),
                });
                clusters.len() - 1
            });
            clusters[c].rows.push(k);
        }
        for j in 0..us.len() {
            if let Some(&c) = by_root.get(&find(&mut parent, j)) {
                clusters[c].us.push(j);
            }
        }
        let jacobian_entries = terms
            .iter()
            .flatten()
            .map(|t| match t {
                LocalTerm::Linear { .. } => 1,
                LocalTerm::Product { .. } => 2,
            })
            .sum();
        State {
            network,
            options,
            rows: &comp.rows,
            slots,
            terms,
            jacobian_entries,
            free_rows,
            clusters,
            xs,
            us,
            y,
            var,
            x: Vec::new(),
            u,
            symbolic: None,
        }
    }

    fn slot(&self, v: usize) -> Slot {
        self.slots.get(v)
    }

    fn value(&self, v: usize) -> f64 {
        self.at(self.slot(v))
    }

    fn at(&self, s: Slot) -> f64 {
        match s {
            Slot::X(i) => self.x[i as usize],
            Slot::U(j) => self.u.get(j as usize).copied().unwrap_or(0.0),
        }
    }

    fn first_node(&self) -> String {
        self.rows
            .first()
            .map(|&r| self.network.nodes[self.network.rows[r].node].to_string())
            .unwrap_or_default()
    }

    fn numerical(&self, why: &str) -> BalanceError {
        BalanceError::Numerical {
            node: self.first_node(),
            why: why.to_string(),
        }
    }

    /// The unknowns of one cluster: a left inverse of their columns `Js`
    /// and the left null space of `Js`.
    ///
    /// A row that holds one unknown alone (a discharge batch's element
    /// balance, whose assay is unmeasured) fixes that unknown: with such
    /// pivot rows `P` and the rest `R`, `Js = [D 0; B C]` with `D`
    /// diagonal, so `u_P = D^-1 rhs_P`, `u_R = C^+ (rhs_R - B D^-1 rhs_P)`
    /// and the null space is `[-D^-1 B' N_C; N_C]` for the null space
    /// `N_C` of `C'`. Only the small `C` (a campaign's own row: 1 x 0
    /// instead of 51 x 50) takes the eigen-decomposition. Any left inverse
    /// gives the same step, since the right-hand side lies in the range of
    /// `Js` once the measured values obey the reduced equations, and any
    /// basis of the null space the same reduced problem. A cluster whose
    /// `C` leaves an unknown undetermined is decomposed whole.
    fn eliminate(&self, c: &Cluster, jac: &Jacobian) -> Result<Eliminated, BalanceError> {
        let (nr, nu) = (c.rows.len(), c.us.len());
        let mut js = DMatrix::<f64>::zeros(nr, nu);
        for (kk, &k) in c.rows.iter().enumerate() {
            for &(v, coef) in &jac[k] {
                if let Slot::U(j) = v
                    && let Ok(jj) = c.us.binary_search(&(j as usize))
                {
                    js[(kk, jj)] += coef;
                }
            }
        }
        let norms: Vec<f64> = (0..nu).map(|j| js.column(j).norm()).collect();
        let mut pivot_of = vec![usize::MAX; nu];
        let mut is_pivot = vec![false; nr];
        for kk in 0..nr {
            let mut held = (0..nu).filter(|&jj| js[(kk, jj)] != 0.0);
            if let (Some(jj), None) = (held.next(), held.next())
                && pivot_of[jj] == usize::MAX
                && js[(kk, jj)].abs() >= PIVOT_MIN * norms[jj]
            {
                pivot_of[jj] = kk;
                is_pivot[kk] = true;
            }
        }
        let rest_u: Vec<usize> = (0..nu).filter(|&j| pivot_of[j] == usize::MAX).collect();
        if rest_u.len() == nu {
            return self.eliminate_whole(js);
        }
        let rest_r: Vec<usize> = (0..nr).filter(|&k| !is_pivot[k]).collect();
        let (nrr, nur) = (rest_r.len(), rest_u.len());
        let (pinv_c, null_c) = if nur == 0 {
            (DMatrix::zeros(0, nrr), DMatrix::identity(nrr, nrr))
        } else if nrr == 0 {
            // Unknowns left without a row: not determinable.
            return self.eliminate_whole(js);
        } else {
            let cm = DMatrix::from_fn(nrr, nur, |a, b| js[(rest_r[a], rest_u[b])]);
            let e = self.eliminate_whole(cm)?;
            if !e.determinable.iter().all(|&d| d) {
                return self.eliminate_whole(js);
            }
            (e.pinv, e.null)
        };
        let q = null_c.ncols();
        // B D^-1 over the pivot unknowns: bd[(a, j)] = B[a, j] / d_j.
        let inv_d: Vec<f64> = (0..nu)
            .map(|j| {
                let kk = pivot_of[j];
                if kk == usize::MAX {
                    0.0
                } else {
                    1.0 / js[(kk, j)]
                }
            })
            .collect();
        let mut pinv = DMatrix::<f64>::zeros(nu, nr);
        let mut null = DMatrix::<f64>::zeros(nr, q);
        for (a, &kk) in rest_r.iter().enumerate() {
            for t in 0..q {
                null[(kk, t)] = null_c[(a, t)];
            }
            for (b, &j) in rest_u.iter().enumerate() {
                pinv[(j, kk)] = pinv_c[(b, a)];
            }
        }
        for (j, &kk) in pivot_of.iter().enumerate() {
            if kk == usize::MAX {
                continue;
            }
            pinv[(j, kk)] = inv_d[j];
            for (a, &ka) in rest_r.iter().enumerate() {
                let bd = js[(ka, j)] * inv_d[j];
                if bd == 0.0 {
                    continue;
                }
                for t in 0..q {
                    null[(kk, t)] -= bd * null_c[(a, t)];
                }
                for (b, &jr) in rest_u.iter().enumerate() {
                    pinv[(jr, kk)] -= pinv_c[(b, a)] * bd;
                }
            }
        }
        Ok(Eliminated {
            pinv,
            determinable: vec![true; nu],
            null,
        })
    }

    /// [`State::eliminate`] of the columns `js` (rows x unknowns) from one
    /// symmetric eigen-decomposition of `Js Js'` (columns scaled to unit
    /// length): the pseudo-inverse, and the null space as eigenvectors.
    fn eliminate_whole(&self, mut js: DMatrix<f64>) -> Result<Eliminated, BalanceError> {
        let (nr, nu) = js.shape();
        let scale: Vec<f64> = (0..nu)
            .map(|j| {
                let n = js.column(j).norm();
                if n > 0.0 { 1.0 / n } else { 0.0 }
            })
            .collect();
        for (j, &s) in scale.iter().enumerate() {
            js.column_mut(j).scale_mut(s);
        }
        let g = &js * js.transpose();
        let eig = SymmetricEigen::try_new(g, f64::EPSILON, 10_000).ok_or_else(|| {
            self.numerical("the eigen-decomposition of the unmeasured part did not converge")
        })?;
        let lmax = eig.eigenvalues.iter().copied().fold(0.0, f64::max);
        let tol = 1e-12 * lmax.max(f64::MIN_POSITIVE);
        let (range, null): (Vec<usize>, Vec<usize>) =
            (0..nr).partition(|&i| eig.eigenvalues[i] > tol);
        let null = DMatrix::from_fn(nr, null.len(), |i, k| eig.eigenvectors[(i, null[k])]);
        // Js^+ = Js' U1 L1^-1 U1'.
        let u1 = DMatrix::from_fn(nr, range.len(), |i, k| eig.eigenvectors[(i, range[k])]);
        let u1_scaled = DMatrix::from_fn(nr, range.len(), |i, k| {
            u1[(i, k)] / eig.eigenvalues[range[k]]
        });
        let mut pinv = js.transpose() * (&u1_scaled * u1.transpose());
        // An unknown is determinable when the projection `Js^+ Js` keeps
        // its unit vector: only that projection's diagonal is needed.
        let mut determinable = vec![false; nu];
        for (j, &s) in scale.iter().enumerate() {
            let proj_jj = pinv.row(j).transpose().dot(&js.column(j));
            determinable[j] = s > 0.0 && proj_jj > 1.0 - 1e-8;
            pinv.row_mut(j).scale_mut(s);
        }
        Ok(Eliminated {
            pinv,
            determinable,
            null,
        })
    }

    /// The residuals of the balance rows at the present point.
    fn residuals(&self) -> Vec<f64> {
        self.terms
            .iter()
            .map(|terms| {
                terms
                    .iter()
                    .map(|&t| match t {
                        LocalTerm::Linear { v, sign } => sign * self.at(v),
                        LocalTerm::Product { m, x, sign } => sign * self.at(m) * self.at(x),
                    })
                    .sum()
            })
            .collect()
    }

    /// The reduced residual `P f` of the residuals `f`: the free rows
    /// without unmeasured values as they are, then each cluster's
    /// null-space combinations (the order of [`State::linearise`]'s
    /// reduced equations).
    fn reduce(&self, f: &[f64], eliminated: &[Eliminated]) -> Vec<f64> {
        let mut pf: Vec<f64> = self
            .free_rows
            .iter()
            .filter(|&&k| self.unmeasured_free(k))
            .map(|&k| f[k])
            .collect();
        for (c, e) in self.clusters.iter().zip(eliminated) {
            for q in 0..e.null.ncols() {
                pf.push(
                    c.rows
                        .iter()
                        .enumerate()
                        .map(|(kk, &k)| e.null[(kk, q)] * f[k])
                        .sum(),
                );
            }
        }
        pf
    }

    /// Whether local row `k` holds no unmeasured value.
    fn unmeasured_free(&self, k: usize) -> bool {
        self.terms[k].iter().all(|t| match *t {
            LocalTerm::Linear { v, .. } => matches!(v, Slot::X(_)),
            LocalTerm::Product { m, x, .. } => matches!((m, x), (Slot::X(_), Slot::X(_))),
        })
    }

    fn linearise(&mut self) -> Result<Linear, BalanceError> {
        let mut f = Vec::with_capacity(self.rows.len());
        let mut jac = Jacobian {
            ptr: Vec::with_capacity(self.terms.len() + 1),
            entries: Vec::with_capacity(self.jacobian_entries),
        };
        jac.ptr.push(0);
        for terms in &self.terms {
            let mut fr = 0.0;
            for &t in terms {
                match t {
                    LocalTerm::Linear { v, sign } => {
                        fr += sign * self.at(v);
                        jac.entries.push((v, sign));
                    }
                    LocalTerm::Product { m, x, sign } => {
                        let (vm, vx) = (self.at(m), self.at(x));
                        fr += sign * vm * vx;
                        jac.entries.push((m, sign * vx));
                        jac.entries.push((x, sign * vm));
                    }
                }
            }
            f.push(fr);
            jac.ptr.push(jac.entries.len());
        }
        let eliminated = self
            .clusters
            .par_iter()
            .map(|c| self.eliminate(c, &jac))
            .collect::<Result<Vec<_>, _>>()?;

        // Reduced equations on the measured values: the free rows without
        // unmeasured values as they are, and the null-space combinations
        // of each cluster's rows.
        // Two passes over the same entries: their count per measured
        // value, then the entries into one flat array. A value that enters
        // one reduced equation more than once (a unit's mass times its
        // content factor and its content error; a batch in several rows
        // of its cluster) gets one entry for it, the coefficients summed:
        // the entries of one equation arrive together.
        let has_u = |k: usize| jac[k].iter().any(|(v, _)| matches!(v, Slot::U(_)));
        let direct: Vec<usize> = self
            .free_rows
            .iter()
            .copied()
            .filter(|&k| !has_u(k))
            .collect();
        let mut len = vec![0usize; self.xs.len()];
        {
            let mut last = vec![usize::MAX; self.xs.len()];
            let mut count_row = |k: usize, rr: usize| {
                for &(v, _) in &jac[k] {
                    if let Slot::X(i) = v
                        && last[i as usize] != rr
                    {
                        last[i as usize] = rr;
                        len[i as usize] += 1;
                    }
                }
            };
            let mut rr = 0;
            for &k in &direct {
                count_row(k, rr);
                rr += 1;
            }
            for (c, e) in self.clusters.iter().zip(&eliminated) {
                for _ in 0..e.null.ncols() {
                    for &k in &c.rows {
                        count_row(k, rr);
                    }
                    rr += 1;
                }
            }
        }
        let mut cols = Columns::with_lengths(&len);
        drop(len);
        let mut pf = Vec::with_capacity(direct.len() + self.clusters.len());
        {
            let (ptr, entries) = cols.slots_mut();
            let mut next: Vec<usize> = ptr[..self.xs.len()].to_vec();
            let mut put = |i: usize, rr: usize, c: f64| {
                let n = next[i];
                if n > ptr[i] && entries[n - 1].0 == rr {
                    entries[n - 1].1 += c;
                } else {
                    entries[n] = (rr, c);
                    next[i] = n + 1;
                }
            };
            for &k in &direct {
                let rr = pf.len();
                pf.push(f[k]);
                for &(v, c) in &jac[k] {
                    if let Slot::X(i) = v {
                        put(i as usize, rr, c);
                    }
                }
            }
            for (c, e) in self.clusters.iter().zip(&eliminated) {
                for q in 0..e.null.ncols() {
                    let rr = pf.len();
                    let mut fr = 0.0;
                    for (kk, &k) in c.rows.iter().enumerate() {
                        let w = e.null[(kk, q)];
                        fr += w * f[k];
                        for &(v, coef) in &jac[k] {
                            if let Slot::X(i) = v {
                                put(i as usize, rr, w * coef);
                            }
                        }
                    }
                    pf.push(fr);
                }
            }
        }
        let p = pf.len();
        let m = if p <= self.options.dense_equations {
            let mut m = DMatrix::<f64>::zeros(p, p);
            for (i, col) in cols.iter().enumerate() {
                let vi = self.var[i];
                for &(a, ca) in col {
                    for &(b, cb) in col {
                        m[(a, b)] += vi * ca * cb;
                    }
                }
            }
            Factor::dense(m).ok_or_else(|| {
                self.numerical("the eigen-decomposition of the reduced balances did not converge")
            })?
        } else {
            let max = self.options.max_factor_entries;
            match SparseFactor::new(&cols, &self.var, p, &mut self.symbolic, max) {
                Ok(s) => Factor::Sparse(s),
                Err(SparseFailure::TooLarge { entries }) => {
                    return Err(BalanceError::FactorTooLarge {
                        node: self.first_node(),
                        equations: p,
                        entries,
                        max,
                    });
                }
                Err(SparseFailure::Faer(why)) => {
                    return Err(self.numerical(&format!("sparse Cholesky factorisation: {why}")));
                }
            }
        };
        Ok(Linear {
            f,
            jac,
            eliminated,
            cols,
            pf,
            m,
        })
    }

    /// One Gauss-Newton step; returns the largest scaled change.
    fn step(&mut self, lin: &Linear) -> f64 {
        // Linearised residual of the raw readings: A (y - x) + P f.
        let mut r = lin.pf.clone();
        for (i, col) in lin.cols.iter().enumerate() {
            let d = self.y[i] - self.x[i];
            for &(a, c) in col {
                r[a] += c * d;
            }
        }
        let lambda = lin.m.solve(&r);
        let (y, x, var) = (&self.y, &self.x, &self.var);
        let dx: Vec<f64> = (0..self.xs.len())
            .into_par_iter()
            .with_min_len(4 * MIN_TASK)
            .map(|i| {
                let adj: f64 =
                    -var[i] * lin.cols[i].iter().map(|&(a, c)| c * lambda[a]).sum::<f64>();
                (y[i] + adj) - x[i]
            })
            .collect();
        let mut change: f64 = dx
            .par_iter()
            .zip(var)
            .with_min_len(4 * MIN_TASK)
            .map(|(d, v)| d.abs() / v.sqrt())
            .reduce(|| 0.0, f64::max);
        // Each cluster's unknowns from its rows, the clusters in parallel.
        let dus: Vec<Vec<f64>> = self
            .clusters
            .par_iter()
            .zip(&lin.eliminated)
            .with_min_len(64)
            .map(|(c, e)| {
                let rhs: Vec<f64> = c
                    .rows
                    .iter()
                    .map(|&k| {
                        let lin_x: f64 = lin.jac[k]
                            .iter()
                            .map(|&(v, coef)| match v {
                                Slot::X(i) => coef * dx[i as usize],
                                Slot::U(_) => 0.0,
                            })
                            .sum();
                        -(lin.f[k] + lin_x)
                    })
                    .collect();
                (0..c.us.len())
                    .map(|jj| (0..rhs.len()).map(|kk| e.pinv[(jj, kk)] * rhs[kk]).sum())
                    .collect()
            })
            .collect();
        for (c, du) in self.clusters.iter().zip(dus) {
            for (&j, du) in c.us.iter().zip(du) {
                self.u[j] += du;
                change = change.max(du.abs() / (self.u[j].abs() + 1e-9));
            }
        }
        for (x, d) in self.x.iter_mut().zip(&dx) {
            *x += d;
        }
        change
    }
}

/// A row that holds one unknown alone pivots on it (see
/// [`State::eliminate`]) when its coefficient is at least this part of the
/// unknown's column norm: then `Js` keeps full column rank.
const PIVOT_MIN: f64 = 1e-3;

/// A step smaller than this (in sigmas, or relative for an unknown) that
/// is no smaller than the step before it is rounding noise, not progress:
/// the iteration stops there as converged. A year-long component's steps
/// level off near 1e-10 and would otherwise run to `max_iterations`.
const NOISE_FLOOR: f64 = 1e-7;

fn solve_component(
    network: &Network,
    comp: &Component,
    options: &Options,
) -> Result<Solved, BalanceError> {
    let mut st = State::new(network, comp, options);
    if let Some(big) = st
        .clusters
        .iter()
        .find(|c| c.rows.len() > options.max_component_equations)
    {
        let node = big
            .rows
            .first()
            .map(|&k| network.nodes[network.rows[comp.rows[k]].node].clone())
            .unwrap_or_default();
        return Err(BalanceError::ComponentTooLarge {
            node: node.to_string(),
            equations: big.rows.len(),
            max: options.max_component_equations,
        });
    }
    st.x = st.y.clone();
    let mut iterations = 0;
    let mut converged = false;
    let mut previous = f64::INFINITY;
    // The last linearisation, kept when its step moved no value by more
    // than the tolerance.
    let mut last = None;
    while iterations < options.max_iterations {
        let lin = st.linearise()?;
        let change = st.step(&lin);
        iterations += 1;
        if !change.is_finite() {
            return Err(st.numerical("the estimates diverged (not finite)"));
        }
        // Below the floor, a step that no longer shrinks is rounding
        // noise: the point is as exact as floating point makes it.
        let stalled = change < NOISE_FLOOR && change >= previous;
        if change < options.tolerance {
            converged = true;
            last = Some(lin);
            break;
        }
        if stalled {
            converged = true;
            break;
        }
        previous = change;
    }
    // The statistics take the Jacobian at the final point. When the last
    // step moved no value by more than the tolerance (1e-10 of a sigma, or
    // of an unknown's value), the Jacobian it was taken from differs from
    // the final point's by that much relatively, below what any statistic
    // shows: that linearisation serves, with the residuals (which the
    // step drove to second order in it) recomputed at the final point.
    let lin = match last {
        Some(mut lin) => {
            lin.f = st.residuals();
            lin.pf = st.reduce(&lin.f, &lin.eliminated);
            lin
        }
        None => st.linearise()?,
    };
    let out = statistics(&st, lin, comp, iterations, converged, options);
    Ok(out)
}

/// The variances of linear combinations `gs` of measured values
/// (component index, coefficient; repeats allowed) under the reconciled
/// covariance `V - V A' M^+ A V`.
fn variances_x<G: AsRef<[(usize, f64)]>>(
    st: &State<'_>,
    lin: &Linear,
    m_inv: &Inverse<'_>,
    scratch: &mut Scratch,
    gs: &[G],
) -> Vec<f64> {
    let mut all = std::mem::take(&mut scratch.forms);
    let forms = buffers(&mut all, gs.len());
    let mut direct = Vec::with_capacity(gs.len());
    for (g, form) in gs.iter().zip(forms.iter_mut()) {
        form.extend_from_slice(g.as_ref());
        // The closures' gradients come merged already.
        if !form.windows(2).all(|w| w[0].0 < w[1].0) {
            scratch.merger.merge(form);
        }
        let mut d = 0.0;
        for e in form.iter_mut() {
            let (i, c) = *e;
            d += c * c * st.var[i];
            e.1 = st.var[i] * c;
        }
        direct.push(d);
    }
    let q = m_inv.quad_readings(scratch, &lin.cols, forms);
    scratch.forms = all;
    direct.iter().zip(q).map(|(d, q)| d - q).collect()
}

/// The covariance matrix (row-major, `k x k`) of the linear combinations
/// `gs` of measured values (component index, coefficient; each merged:
/// every index once, in order) under the reconciled covariance
/// `V - V A' M^+ A V`.
fn covariances_x(
    st: &State<'_>,
    lin: &Linear,
    m_inv: &Inverse<'_>,
    scratch: &mut Scratch,
    gs: &[Vec<(usize, f64)>],
) -> Vec<f64> {
    let k = gs.len();
    let mut all = std::mem::take(&mut scratch.forms);
    let forms = buffers(&mut all, k);
    for (g, form) in gs.iter().zip(forms.iter_mut()) {
        form.extend(g.iter().map(|&(i, c)| (i, st.var[i] * c)));
    }
    let mut cov = m_inv.gram_readings(scratch, &lin.cols, forms);
    scratch.forms = all;
    // Minus the Gram matrix, plus `g_a' V g_b` over the indices the two share.
    for x in cov.iter_mut() {
        *x = -*x;
    }
    for (a, ga) in gs.iter().enumerate() {
        for (b, gb) in gs.iter().enumerate() {
            let (mut s, mut t, mut d) = (0, 0, 0.0);
            while s < ga.len() && t < gb.len() {
                match ga[s].0.cmp(&gb[t].0) {
                    std::cmp::Ordering::Less => s += 1,
                    std::cmp::Ordering::Greater => t += 1,
                    std::cmp::Ordering::Equal => {
                        d += ga[s].1 * gb[t].1 * st.var[ga[s].0];
                        s += 1;
                        t += 1;
                    }
                }
            }
            if let Some(c) = cov.get_mut(a * k + b) {
                *c += d;
            }
        }
    }
    cov
}

/// The sets of reduced equations that the closures' and the unknowns'
/// quadratic forms span (the narrow columns of their readings), each of
/// at most [`crate::sparse::SELECTED_MAX`] equations and more than one,
/// that the present factor's selected inverse does not hold whole.
fn form_cliques(
    st: &State<'_>,
    lin: &Linear,
    comp: &Component,
    h_of: &[Option<Vec<(usize, f64)>>],
    f: &SparseFactor,
) -> Vec<Vec<usize>> {
    // Per thread: the readings of a form, its equations, and the
    // factor's buffer.
    type Buffers = (Vec<usize>, Vec<usize>, Vec<usize>);
    let equations = |(readings, eqs, js): &mut Buffers| -> Option<Vec<usize>> {
        eqs.clear();
        for &i in readings.iter() {
            if !f.is_wide(i) {
                eqs.extend(lin.cols[i].iter().map(|&(a, _)| a));
            }
        }
        eqs.sort_unstable();
        eqs.dedup();
        (eqs.len() > 1 && eqs.len() <= crate::sparse::SELECTED_MAX && !f.serves_with(eqs, js))
            .then(|| eqs.clone())
    };
    let mut cliques: Vec<Vec<usize>> = h_of
        .par_iter()
        .with_min_len(MIN_TASK)
        .map_init(Buffers::default, |buffers, h| {
            let h = h.as_ref()?;
            buffers.0.clear();
            buffers.0.extend(h.iter().map(|&(i, _)| i));
            equations(buffers)
        })
        .flatten()
        .collect();
    let by_rows: Vec<Vec<usize>> = comp
        .rows
        .par_iter()
        .with_min_len(MIN_TASK)
        .map_init(Buffers::default, |buffers, &r| {
            buffers.0.clear();
            for v in st.network.rows[r].vars() {
                match st.slot(v) {
                    Slot::X(i) => buffers.0.push(i as usize),
                    Slot::U(j) => match h_of.get(j as usize).and_then(|h| h.as_ref()) {
                        Some(h) => buffers.0.extend(h.iter().map(|&(i, _)| i)),
                        None => return None,
                    },
                }
            }
            equations(buffers)
        })
        .flatten()
        .collect();
    cliques.extend(by_rows);
    cliques.sort_unstable();
    cliques.dedup();
    cliques
}

/// A linear combination of measured values: (index, coefficient).
type Combination = Vec<(usize, f64)>;

/// A sparse combination with each index once, in index order.
fn merge(mut g: Vec<(usize, f64)>) -> Vec<(usize, f64)> {
    merge_in_place(&mut g);
    g
}

/// Parallel work below this many items per task is not worth a thread.
const MIN_TASK: usize = 512;

fn statistics(
    st: &State<'_>,
    mut lin: Linear,
    comp: &Component,
    iterations: usize,
    converged: bool,
    options: &Options,
) -> Solved {
    let net = st.network;
    // Unmeasured values: each determinable one is a linear function of the
    // measured ones, du = -Ju^+ Jx dx over its cluster's rows. Any other
    // left inverse gives the same variance, since the two differ by a
    // combination of the balances, which the reconciled values obey; so
    // where one row fixes the unknown alone (a lot made of measured
    // inputs), that row is used: a few terms instead of the cluster's
    // hundreds.
    let alone_in = |k: usize, j: usize| -> Option<f64> {
        let mut c = 0.0;
        let mut scale: f64 = 0.0;
        for &(vv, coef) in &lin.jac[k] {
            match vv {
                Slot::U(other) if other as usize == j => c += coef,
                Slot::U(_) => return None,
                Slot::X(_) => {}
            }
            scale = scale.max(coef.abs());
        }
        (c.abs() > 1e-9 * scale).then_some(c)
    };
    let h_cluster = |c: &Cluster, e: &Eliminated| -> Vec<(usize, Combination)> {
        let mut out = Vec::with_capacity(c.us.len());
        for (jj, &j) in c.us.iter().enumerate() {
            if !e.determinable[jj] {
                continue;
            }
            let mut h = Vec::new();
            if let Some((k, cj)) = c
                .rows
                .iter()
                .find_map(|&k| alone_in(k, j).map(|cj| (k, cj)))
            {
                for &(vv, coef) in &lin.jac[k] {
                    if let Slot::X(i) = vv {
                        h.push((i as usize, -coef / cj));
                    }
                }
                out.push((j, merge(h)));
                continue;
            }
            for (kk, &k) in c.rows.iter().enumerate() {
                let w = e.pinv[(jj, kk)];
                if w == 0.0 {
                    continue;
                }
                for &(vv, coef) in &lin.jac[k] {
                    if let Slot::X(i) = vv {
                        h.push((i as usize, -w * coef));
                    }
                }
            }
            out.push((j, merge(h)));
        }
        out
    };
    let mut h_of: Vec<Option<Vec<(usize, f64)>>> = vec![None; st.us.len()];
    let hs: Vec<Vec<(usize, Combination)>> = st
        .clusters
        .par_iter()
        .zip(&lin.eliminated)
        .with_min_len(64)
        .map(|(c, e)| h_cluster(c, e))
        .collect();
    for (j, h) in hs.into_iter().flatten() {
        h_of[j] = Some(h);
    }
    // The clusters' eliminations served the unknowns' combinations and
    // are not needed again: their memory goes before the statistics' own.
    lin.eliminated = Vec::new();
    let lin = &lin;
    let extended;
    let m_inv = match &lin.m {
        Factor::Sparse(f) => {
            // The closures' and unknowns' forms span equations that need
            // not share an entry of `M`: a factorisation whose pattern
            // holds each such set as a clique (explicit zeros, the same
            // values) lets the selected inverse serve them too.
            let cliques = form_cliques(st, lin, comp, &h_of, f);
            if cliques.is_empty() {
                Inverse::Sparse(f, f.selected_inverse())
            } else {
                match f.with_cliques(&lin.cols, &st.var, &cliques, st.options.max_factor_entries) {
                    Ok(e) => {
                        extended = e;
                        Inverse::Sparse(&extended, extended.selected_inverse())
                    }
                    Err(_) => lin.m.inverse(),
                }
            }
        }
        _ => lin.m.inverse(),
    };
    // Measured values.
    let z_of: Vec<Option<(f64, f64)>> = (0..st.xs.len())
        .into_par_iter()
        .with_min_len(MIN_TASK)
        .map_init(
            || m_inv.scratch(),
            |scratch, i| {
                let q = m_inv
                    .quad_readings(scratch, &lin.cols, &[[(i, 1.0)]])
                    .first()
                    .copied()
                    .unwrap_or(f64::NAN);
                let var_adj = st.var[i] * st.var[i] * q;
                (var_adj > 1e-9 * st.var[i])
                    .then(|| ((st.x[i] - st.y[i]).abs() / var_adj.sqrt(), var_adj))
            },
        )
        .collect();
    let redundant = z_of.iter().filter(|z| z.is_some()).count();
    let critical_z = Normal::new(0.0, 1.0).map_or(f64::NAN, |n| {
        n.inverse_cdf(1.0 - options.alpha / (2.0 * redundant.max(1) as f64))
    });
    let chi: f64 = (0..st.xs.len())
        .map(|i| {
            let adjustment = st.x[i] - st.y[i];
            adjustment * adjustment / st.var[i]
        })
        .sum();
    let mut results: Vec<(usize, VarResult)> = Vec::with_capacity(st.xs.len() + st.us.len());
    results.par_extend(
        st.xs
            .par_iter()
            .enumerate()
            .with_min_len(MIN_TASK)
            .map(|(i, &v)| {
                let m = net.vars[v].measured.as_ref();
                let (instrument, measured, sigma) = m
                    .map_or((Arc::from(""), st.y[i], st.var[i].sqrt()), |m| {
                        (m.instrument.clone(), m.value, m.sigma)
                    });
                let adjustment = st.x[i] - st.y[i];
                let (z, class, rec_sigma) = match z_of[i] {
                    Some((z, var_adj)) => (
                        Some(z),
                        Class::Redundant,
                        (st.var[i] - var_adj).max(0.0).sqrt(),
                    ),
                    None => (None, Class::JustDeterminable, sigma),
                };
                let suspect = z.is_some_and(|z| z > critical_z);
                (
                    v,
                    VarResult {
                        variable: net.vars[v].name.clone(),
                        measurement: Some(MeasurementResult {
                            instrument,
                            measured,
                            sigma,
                            adjustment,
                            normalised_adjustment: z,
                            suspect,
                        }),
                        estimate: Some(st.x[i]),
                        sigma: Some(rec_sigma),
                        class,
                    },
                )
            }),
    );
    let suspects: Vec<Suspect> = results
        .iter()
        .filter_map(|(_, r)| {
            let m = r.measurement.as_ref().filter(|m| m.suspect)?;
            Some(Suspect {
                variable: r.variable.clone(),
                instrument: m.instrument.to_string(),
                normalised_adjustment: m.normalised_adjustment?,
                adjustment: m.adjustment,
                measured: m.measured,
            })
        })
        .collect();

    // Instrument bias tests: the signature of a relative bias is d_i = y_i
    // on the instrument's readings; with lambda = M^+ r,
    // num = d' A' lambda and den = d' A' M^+ A d.
    let mut r = lin.pf.clone();
    for (i, col) in lin.cols.iter().enumerate() {
        let d = st.y[i] - st.x[i];
        for &(a, c) in col {
            r[a] += c * d;
        }
    }
    let lambda = lin.m.solve(&r);
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, &v) in st.xs.iter().enumerate() {
        if let (Some(m), Some(_)) = (net.vars[v].measured.as_ref(), z_of[i]) {
            groups.entry(&*m.instrument).or_default().push(i);
        }
    }
    let groups: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    let instruments: Vec<(String, f64, f64, usize)> = groups
        .par_iter()
        .map_init(
            || m_inv.scratch(),
            |scratch, (name, readings)| {
                let mut num = 0.0;
                for &i in readings {
                    for &(a, c) in &lin.cols[i] {
                        num += c * st.y[i] * lambda[a];
                    }
                }
                let form: Vec<(usize, f64)> = readings.iter().map(|&i| (i, st.y[i])).collect();
                let den = m_inv
                    .quad_readings(scratch, &lin.cols, &[form])
                    .first()
                    .copied()
                    .unwrap_or(f64::NAN);
                (name.to_string(), num, den, readings.len())
            },
        )
        .collect();

    results.par_extend(
        st.us
            .par_iter()
            .enumerate()
            .with_min_len(MIN_TASK)
            .map_init(
                || m_inv.scratch(),
                |scratch, (j, &v)| {
                    let (estimate, sigma, class) = match &h_of[j] {
                        Some(h) => {
                            let s = variances_x(st, lin, &m_inv, scratch, std::slice::from_ref(h))
                                .first()
                                .copied()
                                .unwrap_or(f64::NAN)
                                .max(0.0)
                                .sqrt();
                            (Some(st.u[j]), Some(s), Class::Determinable)
                        }
                        None => (None, None, Class::NotDeterminable),
                    };
                    (
                        v,
                        VarResult {
                            variable: net.vars[v].name.clone(),
                            measurement: None,
                            estimate,
                            sigma,
                            class,
                        },
                    )
                },
            ),
    );

    // Node balances after reconciliation.
    let balances: Vec<(usize, NodeBalance, f64)> = comp
        .rows
        .par_iter()
        .enumerate()
        .with_min_len(MIN_TASK)
        .map_init(
            || m_inv.scratch(),
            |scratch, (k, &r)| {
                let row = &net.rows[r];
                let scale = lin.jac[k]
                    .iter()
                    .map(|&(v, c)| (c * st.at(v)).abs())
                    .fold(0.0, f64::max);
                let res = if scale > 0.0 {
                    lin.f[k].abs() / scale
                } else {
                    0.0
                };
                let mut unknown: Vec<usize> = row
                    .vars()
                    .filter(|&v| matches!(st.slot(v), Slot::U(j) if h_of[j as usize].is_none()))
                    .collect();
                unknown.sort_unstable();
                unknown.dedup();
                let closure: Option<Closure> = if unknown.is_empty() {
                    let mut fl = std::mem::take(&mut scratch.flows);
                    flows(row, |v| st.value(v), &mut fl);
                    let c = closure(&fl, |gs: &[Gradient]| {
                        let mut all = std::mem::take(&mut scratch.gradients);
                        let gxs = buffers(&mut all, gs.len());
                        for (g, gx) in gs.iter().zip(gxs.iter_mut()) {
                            for &(v, c) in g {
                                match st.slot(v) {
                                    Slot::X(i) => gx.push((i as usize, c)),
                                    Slot::U(j) => {
                                        if let Some(h) = &h_of[j as usize] {
                                            gx.extend(h.iter().map(|&(i, hc)| (i, c * hc)));
                                        }
                                    }
                                }
                            }
                            scratch.merger.merge(gx);
                        }
                        let v = covariances_x(st, lin, &m_inv, scratch, gxs);
                        scratch.gradients = all;
                        v
                    });
                    scratch.flows = fl;
                    Some(c)
                } else {
                    None
                };
                (
                    r,
                    NodeBalance {
                        node: net.nodes[row.node].clone(),
                        quantity: row.quantity,
                        closure,
                        unknown: unknown.iter().map(|&v| net.vars[v].name.clone()).collect(),
                    },
                    res,
                )
            },
        )
        .collect();
    let max_res = balances.iter().map(|b| b.2).fold(0.0, f64::max);
    let balances = balances.into_iter().map(|(r, b, _)| (r, b)).collect();

    let mut nodes: Vec<usize> = comp.rows.iter().map(|&r| net.rows[r].node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let report = ComponentReport {
        first_node: nodes
            .first()
            .map(|&n| net.nodes[n].to_string())
            .unwrap_or_default(),
        nodes: nodes.len(),
        equations: comp.rows.len(),
        measured: st.xs.len(),
        unmeasured: st.us.len(),
        iterations,
        converged,
        max_relative_residual: max_res,
        test: ChiSquareTest::new(chi, lin.m.rank(), options.alpha),
        critical_z,
    };
    Solved {
        instruments,
        vars: results,
        balances,
        suspects,
        report,
    }
}

/// One component's balances that hold no unknown, linearised at the
/// readings: `rows[k]` lists (reading index, coefficient); `readings` and
/// `variances` are indexed alike. The plain linear WLS problem under the
/// reconciliation, for diagnostics and for timing the bare linear algebra.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSystem {
    pub rows: Vec<Vec<(usize, f64)>>,
    pub readings: Vec<f64>,
    pub variances: Vec<f64>,
}

impl LinearSystem {
    /// The bare sparse linear algebra of one weighted least-squares step,
    /// as a yardstick: assembles `M = A V A'`, orders it (faer's
    /// approximate minimum degree), factorises it (faer's simplicial
    /// Cholesky) and solves `M lambda = A y` once; returns `lambda`.
    pub fn solve_sparse(&self) -> Result<Vec<f64>, BalanceError> {
        let p = self.rows.len();
        let n = self.readings.len();
        let mut len = vec![0usize; n];
        for &(i, _) in self.rows.iter().flatten() {
            if let Some(l) = len.get_mut(i) {
                *l += 1;
            }
        }
        let mut cols = Columns::with_lengths(&len);
        let mut r = vec![0.0; p];
        {
            let (ptr, entries) = cols.slots_mut();
            let mut next: Vec<usize> = ptr[..n].to_vec();
            for (k, row) in self.rows.iter().enumerate() {
                for &(i, c) in row {
                    if let Some(y) = self.readings.get(i) {
                        entries[next[i]] = (k, c);
                        next[i] += 1;
                        r[k] += c * y;
                    }
                }
            }
        }
        let numerical = |why: String| BalanceError::Numerical {
            node: "(a linear system)".into(),
            why,
        };
        let f = SparseFactor::new(&cols, &self.variances, p, &mut None, usize::MAX).map_err(
            |e| match e {
                SparseFailure::TooLarge { entries } => numerical(format!("{entries} entries")),
                SparseFailure::Faer(why) => numerical(why),
            },
        )?;
        Ok(f.solve(&r))
    }
}

/// The [`LinearSystem`] of every component of the network.
pub fn linear_systems(network: &Network) -> Vec<LinearSystem> {
    components(network)
        .iter()
        .map(|c| {
            let mut index: HashMap<usize, usize> = HashMap::new();
            let mut readings = Vec::new();
            let mut variances = Vec::new();
            let mut rows = Vec::new();
            for &r in &c.rows {
                let row = &network.rows[r];
                if row.vars().any(|v| network.vars[v].measured.is_none()) {
                    continue;
                }
                let value = |v: usize| network.vars[v].measured.as_ref().map_or(0.0, |m| m.value);
                let mut out = Vec::new();
                let mut push = |v: usize, coef: f64| {
                    let i = *index.entry(v).or_insert_with(|| {
                        let m = network.vars[v].measured.as_ref();
                        readings.push(m.map_or(0.0, |m| m.value));
                        variances.push(m.map_or(1.0, |m| m.sigma * m.sigma));
                        readings.len() - 1
                    });
                    out.push((i, coef));
                };
                for &(t, _) in &row.terms {
                    match t {
                        Term::Linear { v, sign } => push(v, sign),
                        Term::Product { m, x, sign } => {
                            push(m, sign * value(x));
                            push(x, sign * value(m));
                        }
                    }
                }
                rows.push(out);
            }
            LinearSystem {
                rows,
                readings,
                variances,
            }
        })
        .collect()
}
