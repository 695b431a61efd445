//! The sparse factorisation of `M = A V A'` for a large connected set of
//! balances: a plant year whose blends chain every lot of a route into one
//! component of hundreds of thousands of equations.
//!
//! `M` is assembled column by column from the reduced equations (only its
//! upper triangle, in a fill-reducing order from faer's approximate minimum
//! degree), scaled to a unit diagonal and factorised by faer's simplicial
//! Cholesky. The ordering and the symbolic factorisation depend only on
//! the pattern of `M`, which successive linearisations keep, so they are
//! computed once and reused. A pivot that vanishes (an equation that
//! depends on earlier ones) is replaced by a huge one, which drops that
//! equation as the dense path's pseudo-inverse does; the rank is the
//! number of equations less those dropped.
//!
//! Quadratic forms `w' M^-1 w` for a sparse `w` (a reading's column, the
//! gradient of a closure) take one sparse forward solve `y = L^-1 w` over
//! the elimination-tree ancestors of `w`'s rows only: `w' M^-1 w = |y|^2`.
//!
//! A reading that enters very many equations (a content factor shared by
//! every unit of a chemistry over a year) would make those equations one
//! dense block of `M`. Columns of more than [`WIDE`] entries are therefore
//! left out of the sparse factor and added back exactly by the
//! Sherman-Morrison-Woodbury identity (one solve per such column and a
//! small dense Cholesky); if the equations need them to stay independent,
//! `M` is factorised whole.

use faer::Conj;
use faer::Par;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::sparse::linalg::amd;
use faer::sparse::linalg::cholesky::simplicial::{
    self, SimplicialLltRef, SymbolicSimplicialCholesky,
};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use std::sync::Arc;

/// Why a sparse factorisation could not be made.
#[derive(Debug)]
pub(crate) enum SparseFailure {
    /// The factor would hold more entries than allowed.
    TooLarge { entries: usize },
    /// faer refused (out of memory, or a pivot that is not a number).
    Faer(String),
}

/// The ordering and symbolic factorisation of one pattern of `M`, shared by
/// the linearisations that keep that pattern.
#[derive(Debug)]
pub(crate) struct Symbolic {
    /// The upper triangle of `M` by columns, in the equations' own order.
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    /// `perm[new] = old`, `perm_inv[old] = new`.
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    /// The upper triangle of the permuted `M`, and where each entry of the
    /// unpermuted upper triangle lands in it.
    p_col_ptr: Vec<usize>,
    p_row_idx: Vec<usize>,
    to_permuted: Vec<usize>,
    factor: SymbolicSimplicialCholesky<usize>,
    /// The elimination tree: the parent of each column (`usize::MAX` at a root).
    parent: Vec<usize>,
}

/// A numeric factorisation of `D M0 D = L L'` (`D = diag(M0)^-1/2`),
/// where `M = M0 + U S U'` and `U` holds the wide columns (see
/// [`LowRank`]); without wide columns `M0 = M`.
#[derive(Debug)]
pub(crate) struct SparseFactor {
    symbolic: Arc<Symbolic>,
    values: Vec<f64>,
    /// `D`, in the equations' own order.
    d: Vec<f64>,
    rank: usize,
    low_rank: Option<LowRank>,
}

/// A reading that enters many equations (a content factor shared by a
/// year of units) would join them all into one dense block of `M`. Such
/// columns are kept out of the sparse factor and added back by the
/// Sherman-Morrison-Woodbury identity:
/// `M^-1 = M0^-1 - Y C^-1 Y'` with `Y = M0^-1 U` and `C = S^-1 + U' Y`.
#[derive(Debug)]
struct LowRank {
    /// The wide columns: (equation, coefficient), and their variances.
    u: Vec<Vec<(usize, f64)>>,
    /// `Y`, row-major: `y[a * k + f]`, `k = u.len()`.
    y: Vec<f64>,
    c: nalgebra::Cholesky<f64, nalgebra::Dyn>,
    /// `W = Y G^-T` with `C = G G'`, row-major like `y`: then
    /// `w' Y C^-1 Y' w = |W' w|^2`.
    w: Vec<f64>,
}

/// A column with more entries than this is wide (see [`LowRank`]).
const WIDE: usize = 64;

/// Scratch space of one thread for [`SparseFactor::quad_many`].
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    /// `k` right-hand sides interleaved: `y[j * k + c]`.
    y: Vec<f64>,
    mark: Vec<bool>,
    reach: Vec<usize>,
    path: Vec<usize>,
}

/// The upper triangle of `M = sum_i var_i col_i col_i'` by columns, rows
/// sorted within each column: (col_ptr, row_idx, values).
fn assemble(
    cols: &[Vec<(usize, f64)>],
    var: &[f64],
    p: usize,
) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    // Rows of A: for each equation, its readings and coefficients.
    let mut count = vec![0usize; p + 1];
    for col in cols {
        for &(a, _) in col {
            count[a + 1] += 1;
        }
    }
    for a in 0..p {
        count[a + 1] += count[a];
    }
    let mut fill = count.clone();
    let mut rows_i = vec![0usize; count[p]];
    let mut rows_c = vec![0.0; count[p]];
    for (i, col) in cols.iter().enumerate() {
        for &(a, c) in col {
            rows_i[fill[a]] = i;
            rows_c[fill[a]] = c;
            fill[a] += 1;
        }
    }
    let mut col_ptr = Vec::with_capacity(p + 1);
    let mut row_idx = Vec::new();
    let mut values = Vec::new();
    let mut acc = vec![0.0; p];
    let mut seen = vec![false; p];
    let mut touched: Vec<usize> = Vec::new();
    col_ptr.push(0);
    for a in 0..p {
        // Column a of the upper triangle: rows b <= a.
        seen[a] = true;
        touched.push(a);
        for e in count[a]..count[a + 1] {
            let (i, ca) = (rows_i[e], rows_c[e]);
            for &(b, cb) in &cols[i] {
                if b <= a {
                    if !seen[b] {
                        seen[b] = true;
                        touched.push(b);
                    }
                    acc[b] += var[i] * ca * cb;
                }
            }
        }
        touched.sort_unstable();
        for &b in &touched {
            row_idx.push(b);
            values.push(acc[b]);
            acc[b] = 0.0;
            seen[b] = false;
        }
        touched.clear();
        col_ptr.push(row_idx.len());
    }
    (col_ptr, row_idx, values)
}

fn faer_err(e: impl std::fmt::Debug) -> SparseFailure {
    SparseFailure::Faer(format!("{e:?}"))
}

impl Symbolic {
    fn new(
        col_ptr: Vec<usize>,
        row_idx: Vec<usize>,
        max_entries: usize,
    ) -> Result<Symbolic, SparseFailure> {
        let p = col_ptr.len() - 1;
        let nnz = row_idx.len();
        let upper = SymbolicSparseColMatRef::new_checked(p, p, &col_ptr, None, &row_idx);
        let mut perm = vec![0usize; p];
        let mut perm_inv = vec![0usize; p];
        let mut mem = MemBuffer::try_new(amd::order_scratch::<usize>(p, nnz)).map_err(faer_err)?;
        amd::order(
            &mut perm,
            &mut perm_inv,
            upper,
            amd::Control::default(),
            MemStack::new(&mut mem),
        )
        .map_err(faer_err)?;
        // The permuted upper triangle: entry (b, a) with b <= a lands at
        // (min, max) of (perm_inv[b], perm_inv[a]).
        let mut count = vec![0usize; p + 1];
        for a in 0..p {
            for &b in &row_idx[col_ptr[a]..col_ptr[a + 1]] {
                let (x, y) = (perm_inv[a], perm_inv[b]);
                count[x.max(y) + 1] += 1;
            }
        }
        for c in 0..p {
            count[c + 1] += count[c];
        }
        let mut fill = count.clone();
        let mut p_row_idx = vec![0usize; nnz];
        let mut to_permuted = vec![0usize; nnz];
        for a in 0..p {
            for (e, &b) in row_idx
                .iter()
                .enumerate()
                .take(col_ptr[a + 1])
                .skip(col_ptr[a])
            {
                let (x, y) = (perm_inv[a], perm_inv[b]);
                let c = x.max(y);
                p_row_idx[fill[c]] = x.min(y);
                to_permuted[e] = fill[c];
                fill[c] += 1;
            }
        }
        let p_col_ptr = count;
        // Sorted rows within each column, keeping where each entry came from.
        let mut from = vec![0usize; nnz];
        for (e, &t) in to_permuted.iter().enumerate() {
            from[t] = e;
        }
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for c in 0..p {
            let range = p_col_ptr[c]..p_col_ptr[c + 1];
            pairs.clear();
            pairs.extend(range.clone().map(|t| (p_row_idx[t], from[t])));
            pairs.sort_unstable();
            for (t, &(row, e)) in range.zip(&pairs) {
                p_row_idx[t] = row;
                to_permuted[e] = t;
            }
        }
        let permuted = SymbolicSparseColMatRef::new_checked(p, p, &p_col_ptr, None, &p_row_idx);
        let mut etree = vec![0isize; p];
        let mut col_counts = vec![0usize; p];
        let mut mem = MemBuffer::try_new(
            simplicial::prefactorize_symbolic_cholesky_scratch::<usize>(p, nnz),
        )
        .map_err(faer_err)?;
        let tree = simplicial::prefactorize_symbolic_cholesky(
            &mut etree,
            &mut col_counts,
            permuted,
            MemStack::new(&mut mem),
        );
        let entries: usize = col_counts.iter().sum();
        if entries > max_entries {
            return Err(SparseFailure::TooLarge { entries });
        }
        let mut mem = MemBuffer::try_new(
            simplicial::factorize_simplicial_symbolic_cholesky_scratch::<usize>(p),
        )
        .map_err(faer_err)?;
        let factor = simplicial::factorize_simplicial_symbolic_cholesky(
            permuted,
            tree,
            &col_counts,
            MemStack::new(&mut mem),
        )
        .map_err(faer_err)?;
        let parent = etree
            .iter()
            .map(|&e| usize::try_from(e).unwrap_or(usize::MAX))
            .collect();
        Ok(Symbolic {
            col_ptr,
            row_idx,
            perm,
            perm_inv,
            p_col_ptr,
            p_row_idx,
            to_permuted,
            factor,
            parent,
        })
    }
}

impl SparseFactor {
    /// Assembles and factorises `M` for the reduced equations `cols` (per
    /// reading: equation, coefficient) with reading variances `var`.
    /// `cache` holds the symbolic part of an earlier call; it is reused
    /// when the pattern is the same and replaced otherwise.
    pub(crate) fn new(
        cols: &[Vec<(usize, f64)>],
        var: &[f64],
        p: usize,
        cache: &mut Option<Arc<Symbolic>>,
        max_entries: usize,
    ) -> Result<SparseFactor, SparseFailure> {
        let wide: Vec<usize> = (0..cols.len()).filter(|&i| cols[i].len() > WIDE).collect();
        if wide.is_empty() {
            return Self::new_core(cols, var, p, cache, max_entries);
        }
        let empty: Vec<(usize, f64)> = Vec::new();
        let narrow: Vec<Vec<(usize, f64)>> = cols
            .iter()
            .map(|c| {
                if c.len() > WIDE {
                    empty.clone()
                } else {
                    c.clone()
                }
            })
            .collect();
        // Without the wide columns, every equation must keep a reading and
        // the equations must stay independent; otherwise factorise whole.
        let mut covered = vec![false; p];
        for c in &narrow {
            for &(a, _) in c {
                covered[a] = true;
            }
        }
        if covered.iter().any(|&c| !c) {
            return Self::new_core(cols, var, p, cache, max_entries);
        }
        let mut core = Self::new_core(&narrow, var, p, cache, max_entries)?;
        if core.rank < p {
            *cache = None;
            return Self::new_core(cols, var, p, cache, max_entries);
        }
        let k = wide.len();
        let u: Vec<Vec<(usize, f64)>> = wide.iter().map(|&i| cols[i].clone()).collect();
        let mut y = vec![0.0; p * k];
        let solved: Vec<Vec<f64>> = {
            use rayon::prelude::*;
            u.par_iter()
                .map(|col| {
                    let mut r = vec![0.0; p];
                    for &(a, c) in col {
                        r[a] += c;
                    }
                    core.solve(&r)
                })
                .collect()
        };
        for (f, col) in solved.iter().enumerate() {
            for (a, v) in col.iter().enumerate() {
                y[a * k + f] = *v;
            }
        }
        let mut c = nalgebra::DMatrix::<f64>::zeros(k, k);
        for (f, col) in u.iter().enumerate() {
            c[(f, f)] += 1.0 / var[wide[f]];
            for &(a, coef) in col {
                for g in 0..k {
                    c[(f, g)] += coef * y[a * k + g];
                }
            }
        }
        let c = (&c + c.transpose()) * 0.5;
        let c = c.cholesky().ok_or_else(|| {
            SparseFailure::Faer(
                "the wide columns' capacitance matrix is not positive definite".into(),
            )
        })?;
        // W' = G^-1 Y', one triangular solve per equation.
        let mut w = vec![0.0; p * k];
        let g = c.l();
        for a in 0..p {
            let mut row = nalgebra::DVector::from_column_slice(&y[a * k..(a + 1) * k]);
            if !g.solve_lower_triangular_mut(&mut row) {
                return Err(SparseFailure::Faer(
                    "the wide columns' capacitance factor is singular".into(),
                ));
            }
            w[a * k..(a + 1) * k].copy_from_slice(row.as_slice());
        }
        core.low_rank = Some(LowRank { u, y, c, w });
        Ok(core)
    }

    fn new_core(
        cols: &[Vec<(usize, f64)>],
        var: &[f64],
        p: usize,
        cache: &mut Option<Arc<Symbolic>>,
        max_entries: usize,
    ) -> Result<SparseFactor, SparseFailure> {
        let (col_ptr, row_idx, values) = assemble(cols, var, p);
        let symbolic = match cache {
            Some(s) if s.col_ptr == col_ptr && s.row_idx == row_idx => s.clone(),
            _ => {
                let s = Arc::new(Symbolic::new(col_ptr.clone(), row_idx, max_entries)?);
                *cache = Some(s.clone());
                s
            }
        };
        // Scale to a unit diagonal (the diagonal is the last entry of each
        // column of the upper triangle).
        let d: Vec<f64> = (0..p)
            .map(|a| {
                let v = values[col_ptr[a + 1] - 1];
                if v > 0.0 { 1.0 / v.sqrt() } else { 0.0 }
            })
            .collect();
        let mut p_values = vec![0.0; values.len()];
        for a in 0..p {
            for e in col_ptr[a]..col_ptr[a + 1] {
                let b = symbolic.row_idx[e];
                let v = if a == b && d[a] == 0.0 {
                    // An equation with no reading left in it.
                    0.0
                } else {
                    values[e] * d[a] * d[b]
                };
                p_values[symbolic.to_permuted[e]] = v;
            }
        }
        let s = &symbolic;
        let upper = SparseColMatRef::new(
            SymbolicSparseColMatRef::new_checked(p, p, &s.p_col_ptr, None, &s.p_row_idx),
            &p_values,
        );
        let mut l_values = vec![0.0; s.factor.len_val()];
        let mut mem = MemBuffer::try_new(simplicial::factorize_simplicial_numeric_llt_scratch::<
            usize,
            f64,
        >(p))
        .map_err(faer_err)?;
        let info = simplicial::factorize_simplicial_numeric_llt(
            &mut l_values,
            upper,
            LltRegularization {
                dynamic_regularization_delta: 1e24,
                dynamic_regularization_epsilon: 1e-10,
            },
            &s.factor,
            MemStack::new(&mut mem),
        )
        .map_err(faer_err)?;
        Ok(SparseFactor {
            rank: p - info.dynamic_regularization_count,
            symbolic,
            values: l_values,
            d,
            low_rank: None,
        })
    }

    pub(crate) fn rank(&self) -> usize {
        self.rank
    }

    /// `M^-1 r`.
    pub(crate) fn solve(&self, r: &[f64]) -> Vec<f64> {
        let mut out = self.solve_core(r);
        if let Some(lr) = &self.low_rank {
            let k = lr.u.len();
            let t = nalgebra::DVector::from_fn(k, |f, _| {
                lr.u[f].iter().map(|&(a, c)| c * out[a]).sum::<f64>()
            });
            let z = lr.c.solve(&t);
            for (a, o) in out.iter_mut().enumerate() {
                let row = &lr.y[a * k..(a + 1) * k];
                *o -= row.iter().zip(z.iter()).map(|(y, z)| y * z).sum::<f64>();
            }
        }
        out
    }

    /// `M0^-1 r`.
    fn solve_core(&self, r: &[f64]) -> Vec<f64> {
        let s = &self.symbolic;
        let p = self.d.len();
        let mut b: Vec<f64> = (0..p).map(|k| r[s.perm[k]] * self.d[s.perm[k]]).collect();
        let l = SimplicialLltRef::new(&s.factor, &self.values);
        let mut mem = MemBuffer::new(faer::dyn_stack::StackReq::empty());
        l.solve_in_place_with_conj(
            Conj::No,
            faer::MatMut::from_column_major_slice_mut(&mut b, p, 1),
            Par::Seq,
            MemStack::new(&mut mem),
        );
        let mut out = vec![0.0; p];
        for (k, v) in b.iter().enumerate() {
            let a = s.perm[k];
            out[a] = v * self.d[a];
        }
        out
    }

    pub(crate) fn scratch(&self) -> Scratch {
        let p = self.d.len();
        Scratch {
            y: Vec::new(),
            mark: vec![false; p],
            reach: vec![0; p],
            path: Vec::new(),
        }
    }

    /// `w' M^-1 w` for each `w` of `ws`, given as (equation, value),
    /// repeats allowed: one forward solve `L^-1 w` per `w` over the
    /// elimination-tree ancestors of all their equations, in topological
    /// order.
    pub(crate) fn quad_many(&self, scratch: &mut Scratch, ws: &[Vec<(usize, f64)>]) -> Vec<f64> {
        let mut q = self.quad_many_core(scratch, ws);
        if let Some(lr) = &self.low_rank {
            let k = lr.u.len();
            let mut z = vec![0.0; k];
            for (w, q) in ws.iter().zip(q.iter_mut()) {
                z.iter_mut().for_each(|z| *z = 0.0);
                for &(a, v) in w {
                    for (z, wa) in z.iter_mut().zip(&lr.w[a * k..(a + 1) * k]) {
                        *z += v * wa;
                    }
                }
                *q -= z.iter().map(|z| z * z).sum::<f64>();
            }
        }
        q
    }

    fn quad_many_core(&self, scratch: &mut Scratch, ws: &[Vec<(usize, f64)>]) -> Vec<f64> {
        let s = &self.symbolic;
        let p = self.d.len();
        let k = ws.len();
        let col_ptr = s.factor.col_ptr();
        let row_idx = s.factor.row_idx();
        let Scratch {
            y,
            mark,
            reach,
            path,
        } = scratch;
        if y.len() < p * k {
            y.resize(p * k, 0.0);
        }
        // The reach: each new stretch of a path up the tree goes before
        // the stretches found earlier, which lie above it.
        let mut top = p;
        for (c, w) in ws.iter().enumerate() {
            for &(a, v) in w {
                let mut j = s.perm_inv[a];
                y[j * k + c] += v * self.d[a];
                while j != usize::MAX && !mark[j] {
                    mark[j] = true;
                    path.push(j);
                    j = s.parent[j];
                }
                while let Some(j) = path.pop() {
                    top -= 1;
                    reach[top] = j;
                }
            }
        }
        let mut sums = vec![0.0; k];
        for &j in &reach[top..] {
            let start = col_ptr[j];
            let ljj = self.values[start];
            for (c, sum) in sums.iter_mut().enumerate() {
                let yj = y[j * k + c] / ljj;
                y[j * k + c] = 0.0;
                if yj != 0.0 {
                    for e in start + 1..col_ptr[j + 1] {
                        y[row_idx[e] * k + c] -= self.values[e] * yj;
                    }
                    *sum += yj * yj;
                }
            }
            mark[j] = false;
        }
        sums
    }
}
