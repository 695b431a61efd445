//! Data reconciliation: weighted least squares over the bilinear balances,
//! by successive linearisation, with observability, redundancy and
//! gross-error tests. The method is described in the crate's essay.

use crate::BalanceError;
use crate::balance::{Closure, Gradient, NodeBalance, closure, flows};
use crate::network::{Network, Term, Variable};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use remine_domain::Element;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use std::collections::HashMap;

/// How to reconcile. `Options::default()` suits plant data.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Give up linearising after this many steps (the result says so).
    pub max_iterations: usize,
    /// Stop when no measured value moves by more than `tolerance` of its
    /// sigma and no unmeasured one by more than `tolerance` of its value.
    pub tolerance: f64,
    /// Significance of the gross-error tests (0.05: 95 %).
    pub alpha: f64,
    /// The most balance equations one connected component may have: each
    /// is solved densely (cubic in its size), so a larger one is refused
    /// with an error naming it instead of running for hours.
    pub max_component_equations: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iterations: 50,
            tolerance: 1e-10,
            alpha: 0.05,
            max_component_equations: 4_000,
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
    pub instrument: String,
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
    fn stream(&self, stream: &str) -> Option<&crate::network::StreamData> {
        self.network
            .stream_index
            .get(stream)
            .map(|&s| &self.network.streams[s])
    }

    pub fn stream_mass(&self, stream: &str) -> Option<&VarResult> {
        self.stream(stream).map(|s| &self.variables[s.mass])
    }

    /// The assay variable of a stream (`None` if unknown or free of the element).
    pub fn assay(&self, stream: &str, element: Element) -> Option<&VarResult> {
        let v = (*self.stream(stream)?.assays.get(&element)?)?;
        Some(&self.variables[v])
    }

    /// The reconciled mass of `element` in `stream` (kg): mass times assay,
    /// zero for a stream free of it, `None` if either is not determinable
    /// or the stream declares no such assay.
    pub fn element_flow(&self, stream: &str, element: Element) -> Option<f64> {
        let s = self.stream(stream)?;
        match s.assays.get(&element)? {
            None => Some(0.0),
            Some(x) => Some(self.variables[s.mass].estimate? * self.variables[*x].estimate?),
        }
    }
}

/// Reconciles the network: each connected set of balances on its own, in parallel.
pub fn reconcile<'n>(
    network: &'n Network,
    options: &Options,
) -> Result<Reconciliation<'n>, BalanceError> {
    let comps = components(network);
    if let Some(big) = comps
        .iter()
        .find(|c| c.rows.len() > options.max_component_equations)
    {
        let node = big
            .rows
            .first()
            .map(|&r| network.nodes[network.rows[r].node].clone())
            .unwrap_or_default();
        return Err(BalanceError::ComponentTooLarge {
            node,
            equations: big.rows.len(),
            max: options.max_component_equations,
        });
    }
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
    // Variables in no balance keep their readings.
    let variables: Vec<VarResult> = variables
        .into_par_iter()
        .enumerate()
        .map(|(v, r)| r.unwrap_or_else(|| alone(network, v)))
        .collect();
    let measured = crate::mass_balance(network);
    let balances = measured
        .into_par_iter()
        .zip(reconciled)
        .map(|(m, r)| ReconciledBalance {
            reconciled: r.unwrap_or_else(|| m.clone()),
            measured: m,
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

/// Where a network variable sits in the component's vectors.
#[derive(Clone, Copy)]
enum Slot {
    X(usize),
    U(usize),
}

/// The balances linearised at a point and reduced to the measured values.
struct Linear {
    /// Residuals of the balance rows at the point.
    f: Vec<f64>,
    /// Jacobian rows: (slot, coefficient), repeats allowed.
    jac: Vec<Vec<(Slot, f64)>>,
    /// Component-local indices of the rows that hold an unmeasured value.
    ru: Vec<usize>,
    /// `du = ju_pinv * rhs` solves the unmeasured part (n_u x |ru|).
    ju_pinv: DMatrix<f64>,
    /// For each unmeasured value: does the balance fix it?
    determinable: Vec<bool>,
    /// Reduced equations: per measured value, its column (reduced row, coefficient).
    cols: Vec<Vec<(usize, f64)>>,
    /// The reduced residual `P f`.
    pf: Vec<f64>,
    /// `A V A'`, factorised.
    m: Factor,
}

/// A factorisation of the symmetric positive semi-definite `M = A V A'`,
/// scaled by `d = diag(M)^-1/2`: Cholesky when well conditioned, else an
/// eigen pseudo-inverse (dependent equations).
enum Factor {
    Cholesky(nalgebra::Cholesky<f64, nalgebra::Dyn>, Vec<f64>),
    Pseudo(DMatrix<f64>, usize),
}

impl Factor {
    fn new(m: DMatrix<f64>) -> Option<Factor> {
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
        }
    }

    /// `M^+` itself, for the statistics.
    fn inverse(&self) -> DMatrix<f64> {
        match self {
            Factor::Cholesky(ch, d) => {
                let inv = ch.inverse();
                DMatrix::from_fn(d.len(), d.len(), |a, b| inv[(a, b)] * d[a] * d[b])
            }
            Factor::Pseudo(inv, _) => inv.clone(),
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
    rows: &'a [usize],
    /// The component's variables, sorted, and their slots.
    vars: Vec<usize>,
    slots: Vec<Slot>,
    terms: Vec<Vec<LocalTerm>>,
    xs: Vec<usize>,
    us: Vec<usize>,
    y: Vec<f64>,
    var: Vec<f64>,
    x: Vec<f64>,
    u: Vec<f64>,
}

impl State<'_> {
    fn slot(&self, v: usize) -> Slot {
        match self.vars.binary_search(&v) {
            Ok(k) => self.slots[k],
            // Every variable of the component's rows is in `vars`.
            Err(_) => Slot::U(usize::MAX),
        }
    }

    fn value(&self, v: usize) -> f64 {
        self.at(self.slot(v))
    }

    fn at(&self, s: Slot) -> f64 {
        match s {
            Slot::X(i) => self.x[i],
            Slot::U(j) => self.u[j],
        }
    }

    fn numerical(&self, why: &str) -> BalanceError {
        let node = self
            .rows
            .first()
            .map(|&r| self.network.nodes[self.network.rows[r].node].clone())
            .unwrap_or_default();
        BalanceError::Numerical {
            node,
            why: why.to_string(),
        }
    }

    fn linearise(&self) -> Result<Linear, BalanceError> {
        let mut f = Vec::with_capacity(self.rows.len());
        let mut jac = Vec::with_capacity(self.rows.len());
        for terms in &self.terms {
            let mut fr = 0.0;
            let mut jr = Vec::with_capacity(terms.len() * 2);
            for &t in terms {
                match t {
                    LocalTerm::Linear { v, sign } => {
                        fr += sign * self.at(v);
                        jr.push((v, sign));
                    }
                    LocalTerm::Product { m, x, sign } => {
                        let (vm, vx) = (self.at(m), self.at(x));
                        fr += sign * vm * vx;
                        jr.push((m, sign * vx));
                        jr.push((x, sign * vm));
                    }
                }
            }
            f.push(fr);
            jac.push(jr);
        }
        let has_u = |k: usize| jac[k].iter().any(|(v, _)| matches!(v, Slot::U(_)));
        let (ru, r0): (Vec<usize>, Vec<usize>) = (0..self.rows.len()).partition(|&k| has_u(k));
        let nu = self.us.len();

        // Unmeasured values: the range and the left null space of their
        // columns (scaled to unit length), from one symmetric eigen-decomposition.
        let mut ju_pinv = DMatrix::zeros(nu, ru.len());
        let mut determinable = vec![false; nu];
        let mut null_basis = DMatrix::zeros(ru.len(), 0);
        if !ru.is_empty() {
            let mut js = DMatrix::<f64>::zeros(ru.len(), nu);
            for (kk, &k) in ru.iter().enumerate() {
                for &(v, c) in &jac[k] {
                    if let Slot::U(j) = v {
                        js[(kk, j)] += c;
                    }
                }
            }
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
                (0..ru.len()).partition(|&i| eig.eigenvalues[i] > tol);
            null_basis =
                DMatrix::from_fn(ru.len(), null.len(), |i, k| eig.eigenvectors[(i, null[k])]);
            // Js^+ = Js' U1 L1^-1 U1'.
            let u1 = DMatrix::from_fn(ru.len(), range.len(), |i, k| {
                eig.eigenvectors[(i, range[k])]
            });
            let u1_scaled = DMatrix::from_fn(ru.len(), range.len(), |i, k| {
                u1[(i, k)] / eig.eigenvalues[range[k]]
            });
            let pinv_s = js.transpose() * (&u1_scaled * u1.transpose());
            let proj = &pinv_s * &js;
            ju_pinv = pinv_s;
            for (j, &s) in scale.iter().enumerate() {
                determinable[j] = s > 0.0 && proj[(j, j)] > 1.0 - 1e-8;
                ju_pinv.row_mut(j).scale_mut(s);
            }
        }

        // Reduced equations on the measured values: the rows free of
        // unmeasured values as they are, and the null-space combinations
        // of the others.
        let p = r0.len() + null_basis.ncols();
        let mut cols: Vec<Vec<(usize, f64)>> = vec![Vec::new(); self.xs.len()];
        let mut pf = vec![0.0; p];
        for (rr, &k) in r0.iter().enumerate() {
            pf[rr] = f[k];
            for &(v, c) in &jac[k] {
                if let Slot::X(i) = v {
                    cols[i].push((rr, c));
                }
            }
        }
        for q in 0..null_basis.ncols() {
            let rr = r0.len() + q;
            for (kk, &k) in ru.iter().enumerate() {
                let w = null_basis[(kk, q)];
                pf[rr] += w * f[k];
                for &(v, c) in &jac[k] {
                    if let Slot::X(i) = v {
                        cols[i].push((rr, w * c));
                    }
                }
            }
        }
        let mut m = DMatrix::<f64>::zeros(p, p);
        for (i, col) in cols.iter().enumerate() {
            let vi = self.var[i];
            for &(a, ca) in col {
                for &(b, cb) in col {
                    m[(a, b)] += vi * ca * cb;
                }
            }
        }
        let m = Factor::new(m).ok_or_else(|| {
            self.numerical("the eigen-decomposition of the reduced balances did not converge")
        })?;
        Ok(Linear {
            f,
            jac,
            ru,
            ju_pinv,
            determinable,
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
        let mut change: f64 = 0.0;
        let mut dx = vec![0.0; self.xs.len()];
        for (i, col) in lin.cols.iter().enumerate() {
            let adj: f64 = -self.var[i] * col.iter().map(|&(a, c)| c * lambda[a]).sum::<f64>();
            let new = self.y[i] + adj;
            dx[i] = new - self.x[i];
            change = change.max(dx[i].abs() / self.var[i].sqrt());
        }
        if !lin.ru.is_empty() {
            let rhs: Vec<f64> = lin
                .ru
                .iter()
                .map(|&k| {
                    let lin_x: f64 = lin.jac[k]
                        .iter()
                        .map(|&(v, c)| match v {
                            Slot::X(i) => c * dx[i],
                            Slot::U(_) => 0.0,
                        })
                        .sum();
                    -(lin.f[k] + lin_x)
                })
                .collect();
            for j in 0..self.us.len() {
                let du: f64 = (0..rhs.len()).map(|k| lin.ju_pinv[(j, k)] * rhs[k]).sum();
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

fn solve_component(
    network: &Network,
    comp: &Component,
    options: &Options,
) -> Result<Solved, BalanceError> {
    let mut vars: Vec<usize> = comp
        .rows
        .iter()
        .flat_map(|&r| network.rows[r].vars())
        .collect();
    vars.sort_unstable();
    vars.dedup();
    let mut slots = Vec::with_capacity(vars.len());
    let (mut xs, mut us) = (Vec::new(), Vec::new());
    for &v in &vars {
        if network.vars[v].measured.is_some() {
            slots.push(Slot::X(xs.len()));
            xs.push(v);
        } else {
            slots.push(Slot::U(us.len()));
            us.push(v);
        }
    }
    let slot = |v: usize| match vars.binary_search(&v) {
        Ok(k) => slots[k],
        Err(_) => Slot::U(usize::MAX),
    };
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
    let mean = |mass: bool, default: f64| {
        let (s, n) = xs
            .iter()
            .filter(|&&v| network.vars[v].is_mass == mass)
            .fold((0.0, 0usize), |(s, n), &v| (s + reading(v).0, n + 1));
        if n > 0 && s > 0.0 {
            s / n as f64
        } else {
            default
        }
    };
    let (mass0, frac0) = (mean(true, 1000.0), mean(false, 0.1));
    let u: Vec<f64> = us
        .iter()
        .map(|&v| {
            if network.vars[v].is_mass {
                mass0
            } else {
                frac0
            }
        })
        .collect();
    let terms = comp
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
    let mut st = State {
        network,
        rows: &comp.rows,
        vars,
        slots,
        terms,
        x: y.clone(),
        xs,
        us,
        y,
        var,
        u,
    };

    let mut iterations = 0;
    let mut converged = false;
    while iterations < options.max_iterations {
        let lin = st.linearise()?;
        let change = st.step(&lin);
        iterations += 1;
        if !change.is_finite() {
            return Err(st.numerical("the estimates diverged (not finite)"));
        }
        if change < options.tolerance {
            converged = true;
            break;
        }
    }
    let lin = st.linearise()?;
    Ok(statistics(&st, &lin, comp, iterations, converged, options))
}

/// The quadratic form `w' M^+ w` for a sparse `w` given as (reduced row,
/// value) with repeats; `scratch` is a zeroed vector of the reduced size.
fn quad(m_inv: &DMatrix<f64>, scratch: &mut [f64], w: &[(usize, f64)]) -> f64 {
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
}

/// The variance of a linear combination `g` of measured values (component
/// index, coefficient; repeats allowed) under the reconciled covariance
/// `V - V A' M^+ A V`.
fn variance_x(
    st: &State<'_>,
    lin: &Linear,
    m_inv: &DMatrix<f64>,
    scratch: &mut [f64],
    g: &[(usize, f64)],
) -> f64 {
    let mut merged: Vec<(usize, f64)> = g.to_vec();
    merged.sort_unstable_by_key(|&(i, _)| i);
    let mut w = Vec::new();
    let mut direct = 0.0;
    let mut k = 0;
    while k < merged.len() {
        let i = merged[k].0;
        let mut c = 0.0;
        while k < merged.len() && merged[k].0 == i {
            c += merged[k].1;
            k += 1;
        }
        direct += c * c * st.var[i];
        for &(a, ca) in &lin.cols[i] {
            w.push((a, ca * st.var[i] * c));
        }
    }
    direct - quad(m_inv, scratch, &w)
}

fn statistics(
    st: &State<'_>,
    lin: &Linear,
    comp: &Component,
    iterations: usize,
    converged: bool,
    options: &Options,
) -> Solved {
    let net = st.network;
    let p = lin.pf.len();
    let mut scratch = vec![0.0; p];
    let m_inv = lin.m.inverse();
    // Measured values.
    let mut results: Vec<(usize, VarResult)> = Vec::with_capacity(st.xs.len() + st.us.len());
    let mut redundant = 0usize;
    let mut z_of = vec![None; st.xs.len()];
    for (i, z) in z_of.iter_mut().enumerate() {
        let q = quad(&m_inv, &mut scratch, &lin.cols[i]);
        let var_adj = st.var[i] * st.var[i] * q;
        if var_adj > 1e-9 * st.var[i] {
            redundant += 1;
            *z = Some(((st.x[i] - st.y[i]).abs() / var_adj.sqrt(), var_adj));
        }
    }
    let critical_z = Normal::new(0.0, 1.0).map_or(f64::NAN, |n| {
        n.inverse_cdf(1.0 - options.alpha / (2.0 * redundant.max(1) as f64))
    });
    let mut suspects = Vec::new();
    let mut chi = 0.0;
    for (i, &v) in st.xs.iter().enumerate() {
        let m = net.vars[v].measured.as_ref();
        let (instrument, measured, sigma) = m
            .map_or((String::new(), st.y[i], st.var[i].sqrt()), |m| {
                (m.instrument.clone(), m.value, m.sigma)
            });
        let adjustment = st.x[i] - st.y[i];
        chi += adjustment * adjustment / st.var[i];
        let (z, class, rec_sigma) = match z_of[i] {
            Some((z, var_adj)) => (
                Some(z),
                Class::Redundant,
                (st.var[i] - var_adj).max(0.0).sqrt(),
            ),
            None => (None, Class::JustDeterminable, sigma),
        };
        let suspect = z.is_some_and(|z| z > critical_z);
        if let (true, Some(z)) = (suspect, z) {
            suspects.push(Suspect {
                variable: net.vars[v].name.clone(),
                instrument: instrument.clone(),
                normalised_adjustment: z,
                adjustment,
                measured,
            });
        }
        results.push((
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
        ));
    }

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
            groups.entry(m.instrument.as_str()).or_default().push(i);
        }
    }
    let mut instruments = Vec::with_capacity(groups.len());
    for (name, readings) in groups {
        let mut ad = Vec::new();
        let mut num = 0.0;
        for &i in &readings {
            for &(a, c) in &lin.cols[i] {
                ad.push((a, c * st.y[i]));
                num += c * st.y[i] * lambda[a];
            }
        }
        let den = quad(&m_inv, &mut scratch, &ad);
        instruments.push((name.to_string(), num, den, readings.len()));
    }

    // Unmeasured values: each determinable one is a linear function of the
    // measured ones, du = -Ju^+ Jx dx over the rows that hold unknowns.
    let mut h_of: Vec<Option<Vec<(usize, f64)>>> = vec![None; st.us.len()];
    for (j, &v) in st.us.iter().enumerate() {
        let det = lin.determinable[j];
        let (estimate, sigma, class) = if det {
            let mut h = Vec::new();
            for (kk, &k) in lin.ru.iter().enumerate() {
                let w = lin.ju_pinv[(j, kk)];
                if w == 0.0 {
                    continue;
                }
                for &(vv, c) in &lin.jac[k] {
                    if let Slot::X(i) = vv {
                        h.push((i, -w * c));
                    }
                }
            }
            let s = variance_x(st, lin, &m_inv, &mut scratch, &h)
                .max(0.0)
                .sqrt();
            h_of[j] = Some(h);
            (Some(st.u[j]), Some(s), Class::Determinable)
        } else {
            (None, None, Class::NotDeterminable)
        };
        results.push((
            v,
            VarResult {
                variable: net.vars[v].name.clone(),
                measurement: None,
                estimate,
                sigma,
                class,
            },
        ));
    }

    // Node balances after reconciliation.
    let mut balances = Vec::with_capacity(comp.rows.len());
    let mut max_res: f64 = 0.0;
    for (k, &r) in comp.rows.iter().enumerate() {
        let row = &net.rows[r];
        let scale = lin.jac[k]
            .iter()
            .map(|&(v, c)| (c * st.at(v)).abs())
            .fold(0.0, f64::max);
        if scale > 0.0 {
            max_res = max_res.max(lin.f[k].abs() / scale);
        }
        let mut unknown: Vec<usize> = row
            .vars()
            .filter(|&v| matches!(st.slot(v), Slot::U(j) if h_of[j].is_none()))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let closure: Option<Closure> = if unknown.is_empty() {
            let fl = flows(row, |v| st.value(v));
            Some(closure(&fl, |g: &Gradient| {
                let mut gx = Vec::with_capacity(g.len());
                for &(v, c) in g {
                    match st.slot(v) {
                        Slot::X(i) => gx.push((i, c)),
                        Slot::U(j) => {
                            if let Some(h) = &h_of[j] {
                                gx.extend(h.iter().map(|&(i, hc)| (i, c * hc)));
                            }
                        }
                    }
                }
                variance_x(st, lin, &m_inv, &mut scratch, &gx)
            }))
        } else {
            None
        };
        balances.push((
            r,
            NodeBalance {
                node: net.nodes[row.node].clone(),
                quantity: row.quantity,
                closure,
                unknown: unknown.iter().map(|&v| net.vars[v].name.clone()).collect(),
            },
        ));
    }

    let mut nodes: Vec<usize> = comp.rows.iter().map(|&r| net.rows[r].node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let report = ComponentReport {
        first_node: nodes
            .first()
            .map(|&n| net.nodes[n].clone())
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
