//! The plain mass balance: per node and quantity, what enters, what leaves,
//! the stock change, the imbalance and the closure, with their uncertainties
//! propagated from the readings (first order, readings independent).

use crate::Quantity;
use crate::network::{Flow, Network, Row, Term, Variable};
use std::sync::Arc;

/// The balance of one quantity over one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    /// Sum over entering streams (kg), and its sigma.
    pub inflow: f64,
    pub inflow_sigma: f64,
    /// Sum over leaving streams (kg), and its sigma.
    pub outflow: f64,
    pub outflow_sigma: f64,
    /// Closing minus opening inventory (kg; zero without inventory), and its sigma.
    pub stock_change: f64,
    pub stock_change_sigma: f64,
    /// `inflow - outflow - stock_change` (kg), and its sigma.
    pub imbalance: f64,
    pub imbalance_sigma: f64,
    /// `100 * (outflow + stock_change) / inflow`; `None` when nothing enters.
    pub closure_pct: Option<f64>,
    pub closure_sigma_pct: Option<f64>,
}

/// One node's balance of one quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBalance {
    pub node: Arc<str>,
    pub quantity: Quantity,
    /// `None` when a value it needs is unknown (see `unknown`).
    pub closure: Option<Closure>,
    /// The unmeasured (or, after reconciliation, not determinable) values
    /// that keep the closure from being computed.
    pub unknown: Vec<Variable>,
}

/// A linear combination of variables: `(variable, coefficient)`, repeats allowed.
pub(crate) type Gradient = Vec<(usize, f64)>;

/// The values and first-order gradients of a row's three flows at a
/// point ([`closure`]): the buffers are kept from row to row (a year's
/// closures would otherwise allocate millions of small vectors).
#[derive(Default)]
pub(crate) struct Flows {
    pub inflow: f64,
    pub outflow: f64,
    pub stock: f64,
    /// In, out, stock.
    gradients: [Gradient; 3],
}

/// Fills `f` with the flows of `row` at the point `value`.
pub(crate) fn flows(row: &Row, value: impl Fn(usize) -> f64, f: &mut Flows) {
    f.inflow = 0.0;
    f.outflow = 0.0;
    f.stock = 0.0;
    for g in &mut f.gradients {
        g.clear();
    }
    let [gi, go, gs] = &mut f.gradients;
    for &(term, flow) in &row.terms {
        // In flows count positive; out flows and stock changes enter the
        // row with a minus sign, so flip it to report them as amounts.
        let side = if flow == Flow::In { 1.0 } else { -1.0 };
        let (total, gradient) = match flow {
            Flow::In => (&mut f.inflow, &mut *gi),
            Flow::Out => (&mut f.outflow, &mut *go),
            Flow::Stock => (&mut f.stock, &mut *gs),
        };
        match term {
            Term::Linear { v, sign } => {
                *total += side * sign * value(v);
                gradient.push((v, side * sign));
            }
            Term::Product { m, x, sign } => {
                let (vm, vx) = (value(m), value(x));
                *total += side * sign * vm * vx;
                gradient.push((m, side * sign * vx));
                gradient.push((x, side * sign * vm));
            }
        }
    }
}

/// Builds a closure from the flows and a function that gives the
/// covariance matrix of the in, out and stock gradients (row-major,
/// 3 x 3): the imbalance and the closure are combinations of the three,
/// so their variances follow from it.
pub(crate) fn closure(f: &Flows, covariance: impl FnOnce(&[Gradient]) -> Vec<f64>) -> Closure {
    let (i, o, s) = (f.inflow, f.outflow, f.stock);
    let q = covariance(&f.gradients);
    // `var(sum_a c_a g_a) = c' Q c`.
    let var = |c: [f64; 3]| -> f64 {
        if q.len() != 9 {
            return f64::NAN;
        }
        let mut v = 0.0;
        for a in 0..3 {
            for b in 0..3 {
                v += c[a] * q[a * 3 + b] * c[b];
            }
        }
        v
    };
    let sd = |c: [f64; 3]| var(c).max(0.0).sqrt();
    let pct = (i > 0.0).then(|| 100.0 * ((o + s) / i));
    Closure {
        inflow: i,
        inflow_sigma: sd([1.0, 0.0, 0.0]),
        outflow: o,
        outflow_sigma: sd([0.0, 1.0, 0.0]),
        stock_change: s,
        stock_change_sigma: sd([0.0, 0.0, 1.0]),
        imbalance: i - o - s,
        imbalance_sigma: sd([1.0, -1.0, -1.0]),
        closure_pct: pct,
        // d((o + s) / i) = (do + ds - c di) / i with c = (o + s) / i.
        closure_sigma_pct: pct.map(|_| 100.0 * sd([-(o + s) / (i * i), 1.0 / i, 1.0 / i])),
    }
}

/// The balance of every node and balanced quantity from the readings as
/// they are, without reconciliation. A node whose balance needs an
/// unmeasured value gets no closure and names the values it lacks.
pub fn mass_balance(network: &Network) -> Vec<NodeBalance> {
    use rayon::prelude::*;
    network
        .rows
        .par_iter()
        .map(|row| measured_balance(network, row))
        .collect()
}

/// One row's balance from the readings as they are (see [`mass_balance`]).
pub(crate) fn measured_balance(network: &Network, row: &Row) -> NodeBalance {
    let mut missing: Vec<usize> = row
        .vars()
        .filter(|&v| network.vars[v].measured.is_none())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let unknown: Vec<Variable> = missing
        .iter()
        .map(|&v| network.vars[v].name.clone())
        .collect();
    let closure = if unknown.is_empty() {
        let value = |v: usize| network.vars[v].measured.as_ref().map_or(0.0, |m| m.value);
        let mut f = Flows::default();
        flows(row, value, &mut f);
        Some(closure(&f, |gs| {
            // Independent readings: each variable's coefficients in the
            // three gradients (repeats, a shared assay, added up).
            let mut merged: Vec<(usize, [f64; 3])> = Vec::new();
            for (a, g) in gs.iter().enumerate() {
                for &(v, c) in g {
                    let mut e = [0.0; 3];
                    e[a] = c;
                    merged.push((v, e));
                }
            }
            merged.sort_by_key(|&(v, _)| v);
            let mut q = vec![0.0; 9];
            let mut k = 0;
            while k < merged.len() {
                let v = merged[k].0;
                let mut c = [0.0; 3];
                while k < merged.len() && merged[k].0 == v {
                    for (c, m) in c.iter_mut().zip(merged[k].1) {
                        *c += m;
                    }
                    k += 1;
                }
                let s = network.vars[v].measured.as_ref().map_or(0.0, |m| m.sigma);
                for a in 0..3 {
                    for b in 0..3 {
                        q[a * 3 + b] += (c[a] * s) * (c[b] * s);
                    }
                }
            }
            q
        }))
    } else {
        None
    };
    NodeBalance {
        node: network.nodes[row.node].clone(),
        quantity: row.quantity,
        closure,
        unknown,
    }
}
