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
//! gradient of a closure) are read from the selected inverse: the entries
//! of `(L L')^-1` on the pattern of `L`, by Takahashi's recurrence from the
//! last column back, at about the cost of the factorisation. A reading's
//! column lies within the pattern of `M`, hence of `L + L'`; the sets of
//! equations of the closures' gradients that do not are made cliques of
//! the pattern (explicit zeros) in a factorisation for the statistics. A
//! form that the selected inverse still does not hold takes one sparse
//! forward solve `y = L^-1 w` over the elimination-tree ancestors of its
//! rows: `w' M^-1 w = |y|^2`.
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
    /// Shared by [`SparseFactor::with_cliques`] with the factor it extends.
    low_rank: Option<Arc<LowRank>>,
}

/// A reading that enters many equations (a content factor shared by a
/// year of units) would join them all into one dense block of `M`. Such
/// columns are kept out of the sparse factor and added back by the
/// Sherman-Morrison-Woodbury identity:
/// `M^-1 = M0^-1 - Y C^-1 Y'` with `Y = M0^-1 U` and `C = S^-1 + U' Y`.
/// A solve needs only `Y` and `C`; the quadratic forms of the statistics
/// need more ([`LowRankForms`]), made on first use, so the linearisations
/// of the iteration do not pay for them.
#[derive(Debug)]
struct LowRank {
    /// The wide columns: (equation, coefficient).
    u: Vec<Vec<(usize, f64)>>,
    /// `S^-1`: the inverse variance of each wide column.
    s_inv: Vec<f64>,
    /// `Y`, row-major: `y[a * k + f]`, `k = u.len()`.
    y: Vec<f64>,
    c: nalgebra::Cholesky<f64, nalgebra::Dyn>,
    /// The readings of the wide columns, and for each reading its wide
    /// column (`usize::MAX` if narrow).
    wide_of: Vec<usize>,
    /// `None` once made if the capacitance factor is singular.
    forms: std::sync::OnceLock<Option<LowRankForms>>,
}

/// What quadratic forms need of [`LowRank`].
#[derive(Debug)]
struct LowRankForms {
    /// `W = Y G^-T` with `C = G G'`, row-major like `y`: then
    /// `w' Y C^-1 Y' w = |W' w|^2`.
    w: Vec<f64>,
    /// `X = M^-1 U = Y C^-1 S^-1`, row-major like `y`.
    x: Vec<f64>,
    /// `H = U' M^-1 U = S^-1 - S^-1 C^-1 S^-1`.
    h: nalgebra::DMatrix<f64>,
}

impl LowRank {
    /// [`LowRankForms`], made on the first call; `None` if the capacitance
    /// factor is singular (then the forms are not numbers).
    fn forms(&self) -> Option<&LowRankForms> {
        self.forms
            .get_or_init(|| {
                let k = self.u.len();
                let p = self.y.len() / k.max(1);
                // W' = G^-1 Y', one triangular solve for all equations:
                // the row-major `y` is `Y'` column-major (k x p).
                let mut wt = nalgebra::DMatrix::from_column_slice(k, p, &self.y);
                if !self.c.l().solve_lower_triangular_mut(&mut wt) {
                    return None;
                }
                let w = wt.as_slice().to_vec();
                drop(wt);
                // X = Y K with K = C^-1 S^-1, and H = S^-1 - S^-1 K.
                let s_inv = nalgebra::DMatrix::from_diagonal(
                    &nalgebra::DVector::from_column_slice(&self.s_inv),
                );
                let kk = self.c.solve(&s_inv);
                let h = &s_inv - &s_inv * &kk;
                let h = (&h + h.transpose()) * 0.5;
                // X' = K' Y' (k x p, column-major: row-major X).
                let yt = nalgebra::DMatrixView::from_slice(&self.y, k, p);
                let x = (kk.transpose() * yt).as_slice().to_vec();
                Some(LowRankForms { w, x, h })
            })
            .as_ref()
    }
}

/// The entries of `(L L')^-1` on the pattern of `L`, for quadratic forms
/// without a solve (see [`SparseFactor::selected_inverse`]).
#[derive(Debug)]
pub(crate) struct SelectedInverse {
    z: Vec<f64>,
}

/// A quadratic form over more distinct equations than this takes the
/// forward solve (the pairs would cost more than the solve).
pub(crate) const SELECTED_MAX: usize = 48;

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
    /// The equations of a batch of forms, their block of the selected
    /// inverse and one form over them.
    js: Vec<usize>,
    block: Vec<f64>,
    v: Vec<f64>,
    /// One form's (permuted equation, scaled value) pairs.
    pairs: Vec<(usize, f64)>,
    /// One form's projection on the wide columns, and its coefficients
    /// of them.
    z: Vec<f64>,
    alpha: Vec<(usize, f64)>,
}

/// Sparse columns stored flat, one allocation for all of them: column
/// `i` is `entries[ptr[i]..ptr[i + 1]]`, each entry (row, coefficient),
/// repeats allowed. The reduced equations of a component hold millions of
/// short columns, which a `Vec` each would allocate and free on every
/// linearisation.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Columns {
    ptr: Vec<usize>,
    entries: Vec<(usize, f64)>,
}

impl Columns {
    /// `len.len()` columns of `len[i]` entries each (zeros), to be filled
    /// in place through [`Columns::slots_mut`].
    pub(crate) fn with_lengths(len: &[usize]) -> Columns {
        let mut ptr = Vec::with_capacity(len.len() + 1);
        let mut total = 0;
        ptr.push(0);
        for &l in len {
            total += l;
            ptr.push(total);
        }
        Columns {
            ptr,
            entries: vec![(0, 0.0); total],
        }
    }

    /// Builds the columns from a `Vec` each.
    #[cfg(test)]
    pub(crate) fn from_vecs(cols: &[Vec<(usize, f64)>]) -> Columns {
        let mut ptr = Vec::with_capacity(cols.len() + 1);
        let mut entries = Vec::with_capacity(cols.iter().map(Vec::len).sum());
        ptr.push(0);
        for c in cols {
            entries.extend_from_slice(c);
            ptr.push(entries.len());
        }
        Columns { ptr, entries }
    }

    /// Where each column starts (`ptr`, one more than there are columns)
    /// and all entries, to fill the columns in place: the caller keeps
    /// each column's fill position, starting at its `ptr`.
    pub(crate) fn slots_mut(&mut self) -> (&[usize], &mut [(usize, f64)]) {
        (&self.ptr, &mut self.entries)
    }

    /// Appends a column.
    pub(crate) fn push(&mut self, col: impl IntoIterator<Item = (usize, f64)>) {
        if self.ptr.is_empty() {
            self.ptr.push(0);
        }
        self.entries.extend(col);
        self.ptr.push(self.entries.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[(usize, f64)]> + '_ {
        self.ptr.windows(2).map(|w| &self.entries[w[0]..w[1]])
    }
}

impl std::ops::Index<usize> for Columns {
    type Output = [(usize, f64)];

    fn index(&self, i: usize) -> &[(usize, f64)] {
        &self.entries[self.ptr[i]..self.ptr[i + 1]]
    }
}

/// The upper triangle of `M = sum_i var_i col_i col_i'` by columns, rows
/// sorted within each column: (col_ptr, row_idx, values). Columns marked
/// in `skip` are left out.
fn assemble(
    cols: &Columns,
    skip: Option<&[bool]>,
    var: &[f64],
    p: usize,
) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    let skipped = |i: usize| skip.is_some_and(|s| s[i]);
    // Rows of A: for each equation, its readings and coefficients.
    let mut count = vec![0usize; p + 1];
    for (i, col) in cols.iter().enumerate() {
        if skipped(i) {
            continue;
        }
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
        if skipped(i) {
            continue;
        }
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
        cols: &Columns,
        var: &[f64],
        p: usize,
        cache: &mut Option<Arc<Symbolic>>,
        max_entries: usize,
    ) -> Result<SparseFactor, SparseFailure> {
        // A column of no variance (a clique of `with_cliques`) only shapes
        // the pattern: never wide.
        let wide: Vec<usize> = (0..cols.len())
            .filter(|&i| cols[i].len() > WIDE && var[i] > 0.0)
            .collect();
        if wide.is_empty() {
            return Self::new_core(cols, None, var, p, cache, max_entries);
        }
        let mut skip = vec![false; cols.len()];
        for &i in &wide {
            skip[i] = true;
        }
        // Without the wide columns, every equation must keep a reading and
        // the equations must stay independent; otherwise factorise whole.
        let mut covered = vec![false; p];
        for (c, _) in cols.iter().zip(&skip).filter(|(_, s)| !**s) {
            for &(a, _) in c {
                covered[a] = true;
            }
        }
        if covered.iter().any(|&c| !c) {
            return Self::new_core(cols, None, var, p, cache, max_entries);
        }
        let mut core = Self::new_core(cols, Some(&skip), var, p, cache, max_entries)?;
        if core.rank < p {
            *cache = None;
            return Self::new_core(cols, None, var, p, cache, max_entries);
        }
        let k = wide.len();
        let u: Vec<Vec<(usize, f64)>> = wide.iter().map(|&i| cols[i].to_vec()).collect();
        // Y = M0^-1 U: all columns in one solve, row-major.
        let mut y = vec![0.0; p * k];
        for (f, col) in u.iter().enumerate() {
            for &(a, c) in col {
                y[a * k + f] += c;
            }
        }
        core.solve_core_rows(&mut y, k);
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
        let mut wide_of = vec![usize::MAX; cols.len()];
        for (f, &i) in wide.iter().enumerate() {
            wide_of[i] = f;
        }
        core.low_rank = Some(Arc::new(LowRank {
            u,
            s_inv: wide.iter().map(|&i| 1.0 / var[i]).collect(),
            y,
            c,
            wide_of,
            forms: std::sync::OnceLock::new(),
        }));
        Ok(core)
    }

    /// This factorisation of `M` (of the columns `cols` with variances
    /// `var`) again, with each set of equations of `cliques` made a
    /// clique of the pattern (explicit zeros: the same `M`), so that the
    /// selected inverse holds every pair of a set. The wide columns' parts
    /// ([`LowRank`]) depend on `M0`, not on its pattern: this factor's
    /// serve (its `M0` gains only zeros), with no solve of their own.
    pub(crate) fn with_cliques(
        &self,
        cols: &Columns,
        var: &[f64],
        cliques: &[Vec<usize>],
        max_entries: usize,
    ) -> Result<SparseFactor, SparseFailure> {
        let p = self.d.len();
        let mut all = cols.clone();
        for c in cliques {
            all.push(c.iter().map(|&a| (a, 1.0)));
        }
        let mut all_var = var.to_vec();
        all_var.resize(all.len(), 0.0);
        if let Some(lr) = &self.low_rank
            && lr.wide_of.len() == cols.len()
        {
            let mut skip = vec![false; all.len()];
            for (s, &f) in skip.iter_mut().zip(&lr.wide_of) {
                *s = f != usize::MAX;
            }
            let mut f = Self::new_core(&all, Some(&skip), &all_var, p, &mut None, max_entries)?;
            if f.rank == p {
                f.low_rank = Some(lr.clone());
                return Ok(f);
            }
        }
        let mut f = Self::new(&all, &all_var, p, &mut None, max_entries)?;
        if let Some(lr) = f.low_rank.as_mut().and_then(Arc::get_mut) {
            lr.wide_of.truncate(cols.len());
        }
        Ok(f)
    }

    fn new_core(
        cols: &Columns,
        skip: Option<&[bool]>,
        var: &[f64],
        p: usize,
        cache: &mut Option<Arc<Symbolic>>,
        max_entries: usize,
    ) -> Result<SparseFactor, SparseFailure> {
        let (col_ptr, row_idx, values) = assemble(cols, skip, var, p);
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

    /// `M0^-1 R` in place for the `k` columns of `R`, stored row-major
    /// (`r[a * k + f]`): one pass of the triangular solves for all.
    fn solve_core_rows(&self, r: &mut [f64], k: usize) {
        let s = &self.symbolic;
        let p = self.d.len();
        // Column-major in the permuted order, scaled.
        let mut b = vec![0.0; p * k];
        for (n, &a) in s.perm.iter().enumerate() {
            for f in 0..k {
                b[f * p + n] = r[a * k + f] * self.d[a];
            }
        }
        let l = SimplicialLltRef::new(&s.factor, &self.values);
        let mut mem = MemBuffer::new(faer::dyn_stack::StackReq::empty());
        l.solve_in_place_with_conj(
            Conj::No,
            faer::MatMut::from_column_major_slice_mut(&mut b, p, k),
            Par::Seq,
            MemStack::new(&mut mem),
        );
        for (n, &a) in s.perm.iter().enumerate() {
            for f in 0..k {
                r[a * k + f] = b[f * p + n] * self.d[a];
            }
        }
    }

    pub(crate) fn scratch(&self) -> Scratch {
        // Sized on first use: most forms never need the forward solve.
        Scratch {
            y: Vec::new(),
            mark: Vec::new(),
            reach: Vec::new(),
            path: Vec::new(),
            js: Vec::new(),
            block: Vec::new(),
            v: Vec::new(),
            pairs: Vec::new(),
            z: Vec::new(),
            alpha: Vec::new(),
        }
    }

    /// `w' M^-1 w` for each `w` of `ws`, given as (equation, value),
    /// repeats allowed: one forward solve `L^-1 w` per `w` over the
    /// elimination-tree ancestors of all their equations, in topological
    /// order.
    pub(crate) fn quad_many<W: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        ws: &[W],
    ) -> Vec<f64> {
        let mut q = self.quad_many_core(scratch, ws);
        self.low_rank_correction(&mut scratch.z, ws, &mut q);
        q
    }

    /// The selected inverse of the scaled, permuted `M0 = L L'`: the
    /// entries of `(L L')^-1` on the pattern of `L`, stored like `L`'s
    /// values (Takahashi's recurrence, from the last column back). The
    /// pattern of `M0` lies within that of `L + L'`, so every quadratic
    /// form of a narrow reading's column can be read from it. `None` if
    /// faer's rows are not sorted within a column (then no look-up).
    pub(crate) fn selected_inverse(&self) -> Option<SelectedInverse> {
        let s = &self.symbolic;
        let p = self.d.len();
        let cp = s.factor.col_ptr();
        let ri = s.factor.row_idx();
        let lv = &self.values;
        if (0..p).any(|j| ri[cp[j] + 1..cp[j + 1]].windows(2).any(|w| w[0] >= w[1])) {
            return None;
        }
        let mut z = vec![0.0; lv.len()];
        let mut pos = vec![usize::MAX; p];
        let widest = (0..p).map(|j| cp[j + 1] - cp[j]).max().unwrap_or(0);
        let mut acc = vec![0.0; widest];
        for j in (0..p).rev() {
            let start = cp[j];
            let below = &ri[start + 1..cp[j + 1]];
            let lcol = &lv[start + 1..cp[j + 1]];
            for (t, &i) in below.iter().enumerate() {
                pos[i] = t;
                acc[t] = 0.0;
            }
            // acc[t] = sum over k of the column of L[k, j] Z[i_t, k].
            for (tk, &k) in below.iter().enumerate() {
                let lkj = lcol[tk];
                acc[tk] += lkj * z[cp[k]];
                for e in cp[k] + 1..cp[k + 1] {
                    let t = pos[ri[e]];
                    if t != usize::MAX {
                        acc[t] += lkj * z[e];
                        acc[tk] += lcol[t] * z[e];
                    }
                }
            }
            let ljj = lv[start];
            let mut diag = 1.0 / ljj;
            for (t, &l) in lcol.iter().enumerate() {
                let zij = -acc[t] / ljj;
                z[start + 1 + t] = zij;
                diag -= l * zij;
            }
            z[start] = diag / ljj;
            for &i in below {
                pos[i] = usize::MAX;
            }
        }
        Some(SelectedInverse { z })
    }

    /// The selected inverse's block over the sorted permuted equations
    /// `js` into `block` (row-major, `js.len()` squared); `false` when a
    /// pair of them is outside the factor's pattern.
    fn selected_block(&self, sel: &SelectedInverse, js: &[usize], block: &mut Vec<f64>) -> bool {
        let s = &self.symbolic;
        let n = js.len();
        let cp = s.factor.col_ptr();
        let ri = s.factor.row_idx();
        block.clear();
        block.resize(n * n, 0.0);
        for (x, &j) in js.iter().enumerate() {
            let start = cp[j];
            block[x * n + x] = sel.z[start];
            let below = &ri[start + 1..cp[j + 1]];
            let mut from = 0;
            for (y, i) in js.iter().enumerate().skip(x + 1) {
                let Ok(t) = below[from..].binary_search(i) else {
                    return false;
                };
                let t = from + t;
                block[x * n + y] = sel.z[start + 1 + t];
                block[y * n + x] = sel.z[start + 1 + t];
                from = t + 1;
            }
        }
        true
    }

    /// Whether the selected inverse holds every pair of the equations
    /// `eqs` (sorted, distinct, in the equations' own order).
    #[cfg(test)]
    pub(crate) fn serves(&self, eqs: &[usize]) -> bool {
        self.serves_with(eqs, &mut Vec::new())
    }

    /// [`SparseFactor::serves`] with a buffer for the permuted equations.
    pub(crate) fn serves_with(&self, eqs: &[usize], js: &mut Vec<usize>) -> bool {
        let s = &self.symbolic;
        js.clear();
        js.extend(eqs.iter().map(|&a| s.perm_inv[a]));
        js.sort_unstable();
        let cp = s.factor.col_ptr();
        let ri = s.factor.row_idx();
        js.iter().enumerate().all(|(n, &j)| {
            let below = &ri[cp[j] + 1..cp[j + 1]];
            js[n + 1..].iter().all(|i| below.binary_search(i).is_ok())
        })
    }

    /// The equations the forms `ws` hold, each once, in the factor's
    /// order, into `js`.
    fn permuted_equations<W: AsRef<[(usize, f64)]>>(&self, ws: &[W], js: &mut Vec<usize>) {
        let perm_inv = &self.symbolic.perm_inv;
        js.clear();
        js.extend(
            ws.iter()
                .flat_map(|w| w.as_ref().iter().map(|&(a, _)| perm_inv[a])),
        );
        js.sort_unstable();
        js.dedup();
    }

    /// [`SparseFactor::quad_selected`] of a batch of forms (the gradients
    /// of one closure): the block of the selected inverse over all their
    /// equations is gathered once, if it is held whole; else each form
    /// on its own.
    fn quad_selected_many<W: AsRef<[(usize, f64)]>>(
        &self,
        sel: &SelectedInverse,
        scratch: &mut Scratch,
        ws: &[W],
    ) -> Vec<Option<f64>> {
        let s = &self.symbolic;
        let Scratch {
            js,
            block,
            v,
            pairs,
            ..
        } = scratch;
        self.permuted_equations(ws, js);
        if ws.len() < 2 || js.len() > SELECTED_MAX {
            return ws
                .iter()
                .map(|w| self.quad_selected(sel, pairs, w.as_ref()))
                .collect();
        }
        let n = js.len();
        if !self.selected_block(sel, js, block) {
            return ws
                .iter()
                .map(|w| self.quad_selected(sel, pairs, w.as_ref()))
                .collect();
        }
        v.clear();
        v.resize(n, 0.0);
        ws.iter()
            .map(|w| {
                v.iter_mut().for_each(|v| *v = 0.0);
                for &(a, c) in w.as_ref() {
                    if let Ok(x) = js.binary_search(&s.perm_inv[a]) {
                        v[x] += c * self.d[a];
                    }
                }
                let mut sum = 0.0;
                for x in 0..n {
                    if v[x] != 0.0 {
                        let row = &block[x * n..(x + 1) * n];
                        sum += v[x] * row.iter().zip(v.iter()).map(|(z, v)| z * v).sum::<f64>();
                    }
                }
                Some(sum)
            })
            .collect()
    }

    /// `w' M0^-1 w` from the selected inverse, if every pair of `w`'s
    /// equations lies within the pattern of `L + L'` and `w` has at most
    /// [`SELECTED_MAX`] distinct equations; `None` otherwise.
    fn quad_selected(
        &self,
        sel: &SelectedInverse,
        v: &mut Vec<(usize, f64)>,
        w: &[(usize, f64)],
    ) -> Option<f64> {
        let s = &self.symbolic;
        if w.len() > 4 * SELECTED_MAX {
            return None;
        }
        v.clear();
        v.extend(w.iter().map(|&(a, c)| (s.perm_inv[a], c * self.d[a])));
        merge_in_place(v);
        if v.len() > SELECTED_MAX {
            return None;
        }
        let cp = s.factor.col_ptr();
        let ri = s.factor.row_idx();
        let mut sum = 0.0;
        for (n, &(j, vj)) in v.iter().enumerate() {
            let start = cp[j];
            sum += vj * vj * sel.z[start];
            let below = &ri[start + 1..cp[j + 1]];
            let mut from = 0;
            for &(i, vi) in &v[n + 1..] {
                let t = from + below[from..].binary_search(&i).ok()?;
                sum += 2.0 * vj * vi * sel.z[start + 1 + t];
                from = t + 1;
            }
        }
        Some(sum)
    }

    /// [`SparseFactor::quad_many`] with the selected inverse where it
    /// serves, the forward solves for the rest.
    pub(crate) fn quad_many_with<W: AsRef<[(usize, f64)]>>(
        &self,
        sel: Option<&SelectedInverse>,
        scratch: &mut Scratch,
        ws: &[W],
    ) -> Vec<f64> {
        let Some(sel) = sel else {
            return self.quad_many(scratch, ws);
        };
        let mut q = self.quad_selected_many(sel, scratch, ws);
        let rest: Vec<usize> = (0..ws.len()).filter(|&n| q[n].is_none()).collect();
        if !rest.is_empty() {
            let rws: Vec<&[(usize, f64)]> = rest.iter().map(|&n| ws[n].as_ref()).collect();
            for (&n, v) in rest.iter().zip(self.quad_many_core(scratch, &rws)) {
                q[n] = Some(v);
            }
        }
        let mut q: Vec<f64> = q.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        self.low_rank_correction(&mut scratch.z, ws, &mut q);
        q
    }

    /// Whether reading `i`'s column is kept out of the sparse factor (see
    /// [`LowRank`]); quadratic forms take such a column by its
    /// coefficient (see [`SparseFactor::quad_split`]).
    pub(crate) fn is_wide(&self, i: usize) -> bool {
        self.low_rank
            .as_ref()
            .is_some_and(|lr| lr.wide_of.get(i).is_some_and(|&f| f != usize::MAX))
    }

    /// `w' M^-1 w` for `w = n + sum_i a_i u_i`, each form given as its
    /// narrow part `n` (equation, value; repeats allowed) in `narrow` and
    /// the coefficients `a_i` of wide readings' columns `u_i` (reading,
    /// coefficient) in `wide`, alike indexed:
    /// `n' M^-1 n + 2 a' X' n + a' H a`, so a form that holds a content
    /// factor costs no more than one without. Only the factors a form
    /// holds are visited (a closure holds one or two of the wide columns).
    pub(crate) fn quad_split<N: AsRef<[(usize, f64)]>, W: AsRef<[(usize, f64)]>>(
        &self,
        sel: Option<&SelectedInverse>,
        scratch: &mut Scratch,
        narrow: &[N],
        wide: &[W],
    ) -> Vec<f64> {
        let mut q = self.quad_many_with(sel, scratch, narrow);
        let Some(lr) = &self.low_rank else {
            return q;
        };
        let Some(forms) = lr.forms() else {
            return vec![f64::NAN; q.len()];
        };
        let k = lr.u.len();
        let alpha = &mut scratch.alpha;
        for ((n, wide), q) in narrow.iter().zip(wide).zip(q.iter_mut()) {
            let (n, wide) = (n.as_ref(), wide.as_ref());
            if wide.is_empty() {
                continue;
            }
            alpha.clear();
            for &(i, a) in wide {
                if let Some(&f) = lr.wide_of.get(i)
                    && f != usize::MAX
                {
                    match alpha.iter_mut().find(|(g, _)| *g == f) {
                        Some(entry) => entry.1 += a,
                        None => alpha.push((f, a)),
                    }
                }
            }
            let mut cross = 0.0;
            for &(e, v) in n {
                let row = &forms.x[e * k..(e + 1) * k];
                cross += v * alpha.iter().map(|&(f, a)| row[f] * a).sum::<f64>();
            }
            let mut quad = 0.0;
            for &(f, af) in alpha.iter() {
                for &(g, ag) in alpha.iter() {
                    quad += af * forms.h[(f, g)] * ag;
                }
            }
            *q += 2.0 * cross + quad;
        }
        q
    }

    /// [`SparseFactor::quad_split`] as a Gram matrix: `w_a' M^-1 w_b`
    /// for every pair of the forms (row-major, `k x k`), so that any
    /// combination of them has its form without a pass of its own (the
    /// imbalance and closure of a node's in, out and stock flows).
    pub(crate) fn gram_split<N: AsRef<[(usize, f64)]>, W: AsRef<[(usize, f64)]>>(
        &self,
        sel: Option<&SelectedInverse>,
        scratch: &mut Scratch,
        narrow: &[N],
        wide: &[W],
    ) -> Vec<f64> {
        let k = narrow.len();
        let mut g = match sel.and_then(|sel| self.gram_selected(sel, scratch, narrow)) {
            Some(g) => g,
            None => self.gram_core(scratch, narrow),
        };
        let Some(lr) = &self.low_rank else {
            return g;
        };
        let Some(forms) = lr.forms() else {
            return vec![f64::NAN; k * k];
        };
        let kk = lr.u.len();
        // `W' n` of each narrow part, subtracted pair by pair.
        let z = &mut scratch.z;
        z.clear();
        z.resize(k * kk, 0.0);
        for (n, za) in narrow.iter().zip(z.chunks_exact_mut(kk.max(1))) {
            for &(a, v) in n.as_ref() {
                for (z, wa) in za.iter_mut().zip(&forms.w[a * kk..(a + 1) * kk]) {
                    *z += v * wa;
                }
            }
        }
        for a in 0..k {
            for b in 0..k {
                let (za, zb) = (&z[a * kk..(a + 1) * kk], &z[b * kk..(b + 1) * kk]);
                g[a * k + b] -= za.iter().zip(zb).map(|(x, y)| x * y).sum::<f64>();
            }
        }
        // The wide columns by their coefficients: `n_a' X alpha_b` both
        // ways, and `alpha_a' H alpha_b`.
        let alphas: Vec<Vec<(usize, f64)>> = wide
            .iter()
            .map(|w| {
                let mut alpha: Vec<(usize, f64)> = Vec::new();
                for &(i, a) in w.as_ref() {
                    if let Some(&f) = lr.wide_of.get(i)
                        && f != usize::MAX
                    {
                        match alpha.iter_mut().find(|(g, _)| *g == f) {
                            Some(entry) => entry.1 += a,
                            None => alpha.push((f, a)),
                        }
                    }
                }
                alpha
            })
            .collect();
        if alphas.iter().all(|a| a.is_empty()) {
            return g;
        }
        let mut cross = vec![0.0; k * k];
        for (a, n) in narrow.iter().enumerate() {
            for (b, alpha) in alphas.iter().enumerate() {
                if alpha.is_empty() {
                    continue;
                }
                for &(e, v) in n.as_ref() {
                    let row = &forms.x[e * kk..(e + 1) * kk];
                    cross[a * k + b] += v * alpha.iter().map(|&(f, c)| row[f] * c).sum::<f64>();
                }
            }
        }
        for (a, alpha_a) in alphas.iter().enumerate() {
            for (b, alpha_b) in alphas.iter().enumerate() {
                let mut quad = 0.0;
                for &(f, af) in alpha_a {
                    for &(h, bh) in alpha_b {
                        quad += af * forms.h[(f, h)] * bh;
                    }
                }
                g[a * k + b] += cross[a * k + b] + cross[b * k + a] + quad;
            }
        }
        g
    }

    /// The Gram matrix of `ws` over `M0^-1` from the selected inverse, if
    /// it holds the block over all their equations whole and they are at
    /// most [`SELECTED_MAX`]; `None` otherwise.
    fn gram_selected<W: AsRef<[(usize, f64)]>>(
        &self,
        sel: &SelectedInverse,
        scratch: &mut Scratch,
        ws: &[W],
    ) -> Option<Vec<f64>> {
        let s = &self.symbolic;
        let Scratch { js, block, v, .. } = scratch;
        self.permuted_equations(ws, js);
        let n = js.len();
        if n > SELECTED_MAX {
            return None;
        }
        if !self.selected_block(sel, js, block) {
            return None;
        }
        // Each form over the block's equations, then `B v_a`.
        let k = ws.len();
        v.clear();
        v.resize(2 * k * n, 0.0);
        let (vs, bvs) = v.split_at_mut(k * n);
        for (w, va) in ws.iter().zip(vs.chunks_exact_mut(n.max(1))) {
            for &(a, c) in w.as_ref() {
                if let Ok(x) = js.binary_search(&s.perm_inv[a]) {
                    va[x] += c * self.d[a];
                }
            }
        }
        for (va, bva) in vs
            .chunks_exact(n.max(1))
            .zip(bvs.chunks_exact_mut(n.max(1)))
        {
            for (x, &vx) in va.iter().enumerate() {
                if vx != 0.0 {
                    for (b, z) in bva.iter_mut().zip(&block[x * n..(x + 1) * n]) {
                        *b += vx * z;
                    }
                }
            }
        }
        let mut g = vec![0.0; k * k];
        for a in 0..k {
            for b in 0..k {
                g[a * k + b] = vs[a * n..(a + 1) * n]
                    .iter()
                    .zip(&bvs[b * n..(b + 1) * n])
                    .map(|(x, y)| x * y)
                    .sum();
            }
        }
        Some(g)
    }

    fn low_rank_correction<W: AsRef<[(usize, f64)]>>(
        &self,
        z: &mut Vec<f64>,
        ws: &[W],
        q: &mut [f64],
    ) {
        if let Some(lr) = &self.low_rank {
            let Some(forms) = lr.forms() else {
                q.iter_mut().for_each(|q| *q = f64::NAN);
                return;
            };
            let k = lr.u.len();
            z.clear();
            z.resize(k, 0.0);
            for (w, q) in ws.iter().zip(q.iter_mut()) {
                z.iter_mut().for_each(|z| *z = 0.0);
                for &(a, v) in w.as_ref() {
                    for (z, wa) in z.iter_mut().zip(&forms.w[a * k..(a + 1) * k]) {
                        *z += v * wa;
                    }
                }
                *q -= z.iter().map(|z| z * z).sum::<f64>();
            }
        }
    }

    fn quad_many_core<W: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        ws: &[W],
    ) -> Vec<f64> {
        let mut sums = vec![0.0; ws.len()];
        self.forward(scratch, ws, |v| {
            for (sum, vc) in sums.iter_mut().zip(v) {
                *sum += vc * vc;
            }
        });
        sums
    }

    /// The Gram matrix `w_a' M0^-1 w_b` of `ws` (row-major, `k x k`) by
    /// one forward solve of them all.
    fn gram_core<W: AsRef<[(usize, f64)]>>(&self, scratch: &mut Scratch, ws: &[W]) -> Vec<f64> {
        let k = ws.len();
        let mut g = vec![0.0; k * k];
        self.forward(scratch, ws, |v| {
            for (a, &va) in v.iter().enumerate() {
                if va != 0.0 {
                    for (gab, vb) in g[a * k..(a + 1) * k].iter_mut().zip(v) {
                        *gab += va * vb;
                    }
                }
            }
        });
        g
    }

    /// The forward solve `L^-1 w` of each of `ws` over the elimination-tree
    /// ancestors of their equations, in topological order, handing `row`
    /// `visit` the solution's values at each column of `L` where any of
    /// them is not zero (one value per form).
    fn forward<W: AsRef<[(usize, f64)]>>(
        &self,
        scratch: &mut Scratch,
        ws: &[W],
        mut visit: impl FnMut(&[f64]),
    ) {
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
            v,
            ..
        } = scratch;
        if y.len() < p * k {
            y.resize(p * k, 0.0);
        }
        if mark.len() < p {
            mark.resize(p, false);
            reach.resize(p, 0);
        }
        // The reach: each new stretch of a path up the tree goes before
        // the stretches found earlier, which lie above it.
        let mut top = p;
        for (c, w) in ws.iter().enumerate() {
            for &(a, v) in w.as_ref() {
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
        // Column by column of `L`, all right-hand sides at once: each
        // entry of the column updates the `k` contiguous values of its row.
        v.clear();
        v.resize(k, 0.0);
        for &j in &reach[top..] {
            let start = col_ptr[j];
            let ljj = self.values[start];
            let mut any = false;
            for (yc, vc) in y[j * k..(j + 1) * k].iter_mut().zip(v.iter_mut()) {
                *vc = *yc / ljj;
                *yc = 0.0;
                if *vc != 0.0 {
                    any = true;
                }
            }
            if any {
                visit(v);
                let column = start + 1..col_ptr[j + 1];
                for (&row, &l) in row_idx[column.clone()].iter().zip(&self.values[column]) {
                    let r = row * k;
                    for (yc, vc) in y[r..r + k].iter_mut().zip(v.iter()) {
                        *yc -= l * vc;
                    }
                }
            }
            mark[j] = false;
        }
    }
}

/// One thread's dense accumulator for [`Merger::merge`]: a value and a
/// mark per index, and the indices touched, all left clean between uses.
#[derive(Debug, Default)]
pub(crate) struct Merger {
    values: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<usize>,
}

/// Below this many pairs, sorting them is cheaper than the accumulator.
const MERGE_DENSE: usize = 24;

impl Merger {
    /// [`merge_in_place`], for a long combination with many repeats (a
    /// closure's gradient expanded through its unknowns): the pairs are
    /// added up by index in the accumulator and only the distinct
    /// indices are sorted.
    pub(crate) fn merge(&mut self, g: &mut Vec<(usize, f64)>) {
        if g.len() < MERGE_DENSE {
            merge_in_place(g);
            return;
        }
        let Merger {
            values,
            seen,
            touched,
        } = self;
        for &(i, c) in g.iter() {
            if i >= seen.len() {
                seen.resize(i + 1, false);
                values.resize(i + 1, 0.0);
            }
            if seen[i] {
                values[i] += c;
            } else {
                seen[i] = true;
                values[i] = c;
                touched.push(i);
            }
        }
        touched.sort_unstable();
        g.clear();
        for &i in touched.iter() {
            g.push((i, values[i]));
            seen[i] = false;
        }
        touched.clear();
    }
}

/// Sorts `(index, coefficient)` pairs by index and adds the coefficients
/// of repeated indices, keeping the allocation.
pub(crate) fn merge_in_place(g: &mut Vec<(usize, f64)>) {
    g.sort_unstable_by_key(|&(i, _)| i);
    g.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The selected inverse against the forward solves it replaces.

    use super::*;

    /// A chain of `p` equations, each reading in one or two neighbouring
    /// ones (a year of lots), plus `wide` readings in every equation.
    fn chain(p: usize, wide: usize) -> (Vec<Vec<(usize, f64)>>, Vec<f64>) {
        let mut cols = Vec::new();
        let mut var = Vec::new();
        for a in 0..p {
            cols.push(vec![(a, 1.0)]);
            var.push(1.0 + (a % 7) as f64);
            if a + 1 < p {
                cols.push(vec![(a, -0.5 - (a % 3) as f64), (a + 1, 1.0)]);
                var.push(0.3 + (a % 5) as f64 * 0.1);
            }
            if a + 5 < p && a % 4 == 0 {
                cols.push(vec![(a, 0.7), (a + 5, -1.1), (a + 2, 0.2)]);
                var.push(2.0);
            }
        }
        for f in 0..wide {
            cols.push(
                (0..p)
                    .map(|a| (a, 0.01 * (1 + (a + f) % 9) as f64))
                    .collect(),
            );
            var.push(0.5);
        }
        (cols, var)
    }

    /// `(A V A')^-1` of the columns, dense.
    fn dense_inverse(cols: &[Vec<(usize, f64)>], var: &[f64], p: usize) -> nalgebra::DMatrix<f64> {
        let mut m = nalgebra::DMatrix::<f64>::zeros(p, p);
        for (col, v) in cols.iter().zip(var) {
            for &(a, ca) in col {
                for &(b, cb) in col {
                    m[(a, b)] += v * ca * cb;
                }
            }
        }
        m.try_inverse().unwrap()
    }

    /// A form's narrow part `n` plus the columns `w` by coefficient, dense.
    fn dense_form(
        n: &[(usize, f64)],
        w: &[(usize, f64)],
        cols: &[Vec<(usize, f64)>],
        p: usize,
    ) -> nalgebra::DVector<f64> {
        let mut full = nalgebra::DVector::<f64>::zeros(p);
        for &(a, c) in n {
            full[a] += c;
        }
        for &(i, b) in w {
            for &(a, c) in &cols[i] {
                full[a] += b * c;
            }
        }
        full
    }

    fn check(p: usize, wide: usize, forms: &[Vec<(usize, f64)>]) {
        let (cols, var) = chain(p, wide);
        let f =
            SparseFactor::new(&Columns::from_vecs(&cols), &var, p, &mut None, usize::MAX).unwrap();
        let sel = f.selected_inverse().unwrap();
        let mut scratch = f.scratch();
        let by_solve = f.quad_many(&mut scratch, forms);
        let by_selected = f.quad_many_with(Some(&sel), &mut scratch, forms);
        for (n, (a, b)) in by_solve.iter().zip(&by_selected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-10 * a.abs().max(1e-12),
                "form {n}: solve {a}, selected {b}"
            );
        }
        let m = dense_inverse(&cols, &var, p);
        for (w, q) in forms.iter().zip(&by_selected) {
            let mut dense = 0.0;
            for &(a, ca) in w {
                for &(b, cb) in w {
                    dense += ca * m[(a, b)] * cb;
                }
            }
            assert!(
                (dense - q).abs() <= 1e-8 * dense.abs(),
                "dense {dense}, selected {q}"
            );
        }
    }

    #[test]
    fn the_selected_inverse_gives_every_reading_s_quadratic_form() {
        let (cols, _) = chain(60, 0);
        check(60, 0, &cols);
    }

    #[test]
    fn forms_beyond_the_pattern_fall_back_to_the_forward_solve() {
        check(
            60,
            0,
            &[
                vec![(0, 1.0), (59, 2.0)],
                vec![(3, 1.0), (30, -1.0), (31, 0.5)],
            ],
        );
    }

    #[test]
    fn the_wide_columns_correction_applies_to_selected_forms() {
        let (cols, _) = chain(120, 3);
        let narrow: Vec<Vec<(usize, f64)>> = cols.into_iter().filter(|c| c.len() <= WIDE).collect();
        check(120, 3, &narrow);
    }

    #[test]
    fn a_form_holding_factor_columns_by_coefficient_matches_the_dense_form() {
        let (p, wide) = (90, 4);
        let (cols, var) = chain(p, wide);
        let f =
            SparseFactor::new(&Columns::from_vecs(&cols), &var, p, &mut None, usize::MAX).unwrap();
        let sel = f.selected_inverse().unwrap();
        let first_wide = cols.len() - wide;
        // Repeated equations and a factor column named twice.
        let narrow = vec![
            vec![(3, 1.0), (4, -0.5), (3, 0.25)],
            vec![(10, 2.0), (11, 1.0)],
        ];
        let by_coefficient = vec![
            vec![(first_wide, 0.7), (first_wide + 2, -1.2), (first_wide, 0.3)],
            vec![],
        ];
        let q = f.quad_split(Some(&sel), &mut f.scratch(), &narrow, &by_coefficient);
        let m_inv = dense_inverse(&cols, &var, p);
        for ((n, w), q) in narrow.iter().zip(&by_coefficient).zip(q) {
            let full = dense_form(n, w, &cols, p);
            let dense = full.dot(&(&m_inv * &full));
            assert!(
                (dense - q).abs() <= 1e-8 * dense.abs(),
                "dense {dense}, by coefficient {q}"
            );
        }
    }

    /// The Gram matrix of `narrow` forms plus wide columns by coefficient,
    /// from the selected inverse if `sel`, else by the forward solve,
    /// against the dense inverse.
    fn check_gram(
        narrow: &[Vec<(usize, f64)>],
        by_coefficient: &[Vec<(usize, f64)>],
        selected: bool,
    ) {
        let (p, wide) = (90, 4);
        let (cols, var) = chain(p, wide);
        let first_wide = cols.len() - wide;
        let f =
            SparseFactor::new(&Columns::from_vecs(&cols), &var, p, &mut None, usize::MAX).unwrap();
        let sel = f.selected_inverse().unwrap();
        let by_coefficient: Vec<Vec<(usize, f64)>> = by_coefficient
            .iter()
            .map(|w| w.iter().map(|&(i, b)| (first_wide + i, b)).collect())
            .collect();
        let g = f.gram_split(
            selected.then_some(&sel),
            &mut f.scratch(),
            narrow,
            &by_coefficient,
        );
        let m_inv = dense_inverse(&cols, &var, p);
        let full: Vec<nalgebra::DVector<f64>> = narrow
            .iter()
            .zip(&by_coefficient)
            .map(|(n, w)| dense_form(n, w, &cols, p))
            .collect();
        let k = narrow.len();
        for a in 0..k {
            for b in 0..k {
                let dense = full[a].dot(&(&m_inv * &full[b]));
                let scale = full[a]
                    .dot(&(&m_inv * &full[a]))
                    .max(full[b].dot(&(&m_inv * &full[b])));
                assert!(
                    (dense - g[a * k + b]).abs() <= 1e-8 * scale,
                    "({a}, {b}): dense {dense}, gram {}",
                    g[a * k + b]
                );
            }
        }
    }

    #[test]
    fn the_gram_matrix_from_the_selected_inverse_matches_the_dense_one() {
        check_gram(
            &[
                vec![(3, 1.0), (4, -0.5), (3, 0.25)],
                vec![(4, 2.0), (5, 1.0)],
                vec![],
            ],
            &[vec![(0, 0.7), (2, -1.2), (0, 0.3)], vec![], vec![(1, 0.4)]],
            true,
        );
    }

    #[test]
    fn the_gram_matrix_beyond_the_pattern_takes_the_forward_solve() {
        check_gram(
            &[
                vec![(3, 1.0), (80, -0.5)],
                vec![(40, 2.0), (5, 1.0)],
                vec![(60, 1.0)],
            ],
            &[vec![], vec![(3, 1.1)], vec![]],
            true,
        );
        check_gram(
            &[vec![(3, 1.0), (4, -0.5)], vec![(4, 2.0), (5, 1.0)]],
            &[vec![(0, 1.0)], vec![]],
            false,
        );
    }

    #[test]
    fn a_clique_added_beside_wide_columns_keeps_the_values() {
        let (p, wide) = (90, 4);
        let (cols, var) = chain(p, wide);
        let cols = Columns::from_vecs(&cols);
        let plain = SparseFactor::new(&cols, &var, p, &mut None, usize::MAX).unwrap();
        let f = plain
            .with_cliques(&cols, &var, &[vec![3, 70, 40]], usize::MAX)
            .unwrap();
        assert!(f.serves(&[3, 40, 70]));
        let sel = f.selected_inverse().unwrap();
        let w = vec![vec![(3, 1.0), (70, 2.0), (40, -0.5)], vec![(10, 1.0)]];
        let a = plain.quad_many(&mut plain.scratch(), &w);
        let b = f.quad_many_with(Some(&sel), &mut f.scratch(), &w);
        for (a, b) in a.iter().zip(&b) {
            assert!(
                (a - b).abs() <= 1e-10 * a.abs(),
                "plain {a}, with the clique {b}"
            );
        }
        let r: Vec<f64> = (0..p).map(|a| (a % 5) as f64 - 2.0).collect();
        for (a, b) in plain.solve(&r).iter().zip(f.solve(&r)) {
            assert!((a - b).abs() <= 1e-10 * a.abs().max(1.0), "solve {a}, {b}");
        }
    }

    #[test]
    fn a_clique_added_to_the_pattern_keeps_the_values() {
        let (cols, var) = chain(60, 0);
        let plain =
            SparseFactor::new(&Columns::from_vecs(&cols), &var, 60, &mut None, usize::MAX).unwrap();
        let f = plain
            .with_cliques(
                &Columns::from_vecs(&cols),
                &var,
                &[vec![0, 59, 30]],
                usize::MAX,
            )
            .unwrap();
        assert!(f.serves(&[0, 30, 59]));
        let sel = f.selected_inverse().unwrap();
        let w = vec![vec![(0, 1.0), (59, 2.0), (30, -0.5)]];
        let a = plain.quad_many(&mut plain.scratch(), &w)[0];
        let b = f.quad_many_with(Some(&sel), &mut f.scratch(), &w)[0];
        assert!(
            (a - b).abs() <= 1e-10 * a.abs(),
            "plain {a}, with the clique {b}"
        );
    }
}
