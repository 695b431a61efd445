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

/// The values and first-order gradients of a row's three flows at a point.
pub(crate) struct Flows {
    pub inflow: (f64, Gradient),
    pub outflow: (f64, Gradient),
    pub stock: (f64, Gradient),
}

pub(crate) fn flows(row: &Row, value: impl Fn(usize) -> f64) -> Flows {
    let mut f = Flows {
        inflow: (0.0, Vec::new()),
        outflow: (0.0, Vec::new()),
        stock: (0.0, Vec::new()),
    };
    for &(term, flow) in &row.terms {
        // In flows count positive; out flows and stock changes enter the
        // row with a minus sign, so flip it to report them as amounts.
        let side = if flow == Flow::In { 1.0 } else { -1.0 };
        let slot = match flow {
            Flow::In => &mut f.inflow,
            Flow::Out => &mut f.outflow,
            Flow::Stock => &mut f.stock,
        };
        match term {
            Term::Linear { v, sign } => {
                slot.0 += side * sign * value(v);
                slot.1.push((v, side * sign));
            }
            Term::Product { m, x, sign } => {
                let (vm, vx) = (value(m), value(x));
                slot.0 += side * sign * vm * vx;
                slot.1.push((m, side * sign * vx));
                slot.1.push((x, side * sign * vm));
            }
        }
    }
    f
}

/// Builds a closure from the flows and a function that gives the
/// variances of gradients (all of one closure at once).
pub(crate) fn closure(f: Flows, variances: impl FnOnce(&[Gradient]) -> Vec<f64>) -> Closure {
    let (i, o, s) = (f.inflow.0, f.outflow.0, f.stock.0);
    let (gi, go, gs) = (f.inflow.1, f.outflow.1, f.stock.1);
    let mut imb = Vec::with_capacity(gi.len() + go.len() + gs.len());
    imb.extend_from_slice(&gi);
    imb.extend(go.iter().map(|&(v, c)| (v, -c)));
    imb.extend(gs.iter().map(|&(v, c)| (v, -c)));
    let pct = (i > 0.0).then(|| {
        let c = (o + s) / i;
        let mut g: Gradient = Vec::with_capacity(imb.len());
        g.extend(go.iter().map(|&(v, k)| (v, k / i)));
        g.extend(gs.iter().map(|&(v, k)| (v, k / i)));
        g.extend(gi.iter().map(|&(v, k)| (v, -c * k / i)));
        (100.0 * c, g)
    });
    let mut gradients = vec![gi, go, gs, imb];
    let pct = pct.map(|(c, g)| {
        gradients.push(g);
        c
    });
    let sd: Vec<f64> = variances(&gradients)
        .into_iter()
        .map(|v| v.max(0.0).sqrt())
        .collect();
    let at = |k: usize| sd.get(k).copied().unwrap_or(f64::NAN);
    Closure {
        inflow: i,
        inflow_sigma: at(0),
        outflow: o,
        outflow_sigma: at(1),
        stock_change: s,
        stock_change_sigma: at(2),
        imbalance: i - o - s,
        imbalance_sigma: at(3),
        closure_pct: pct,
        closure_sigma_pct: pct.map(|_| 100.0 * at(4)),
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
        .map(|row| {
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
                let f = flows(row, value);
                Some(closure(f, |gs| {
                    gs.iter()
                        .map(|g| {
                            // Independent readings: merge repeats of a variable
                            // (a shared assay) before squaring.
                            let mut merged: Vec<(usize, f64)> = g.clone();
                            merged.sort_by_key(|&(v, _)| v);
                            let mut total = 0.0;
                            let mut k = 0;
                            while k < merged.len() {
                                let v = merged[k].0;
                                let mut c = 0.0;
                                while k < merged.len() && merged[k].0 == v {
                                    c += merged[k].1;
                                    k += 1;
                                }
                                let s = network.vars[v].measured.as_ref().map_or(0.0, |m| m.sigma);
                                total += (c * s).powi(2);
                            }
                            total
                        })
                        .collect()
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
        })
        .collect()
}
