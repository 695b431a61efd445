//! Recovery by chemistry and month of receipt, traced through the
//! genealogy: of the Ni, Co, Li and Cu that the units received in a month
//! held (their booked contents), how much is in the lots that recover each
//! element so far (nickel sulphate for Ni, cobalt sulphate for Co, lithium
//! carbonate for Li, the copper side fraction for Cu), by the backward
//! traces of those lots (proportional allocation through every split and
//! blend).
//!
//! It answers "how well did last March's NMC 811 packs do", which the
//! yearly balance (one figure per element) and the filed report (per input
//! stream) do not. The figures are the recorded contents, not reconciled
//! ones, and a cohort's rate grows while its material is still in process:
//! [`CohortRecovery::in_products`] is what has reached a product so far.

use crate::MesError;
use chrono::{DateTime, Datelike, Utc};
use remine_domain::ports::{LotStore, StoreError};
use remine_domain::{Chemistry, Element, Lot, LotGraph, LotKind};
use std::collections::{BTreeMap, HashMap};

/// The elements the cohorts are reported for.
pub const COHORT_ELEMENTS: [Element; 4] = [Element::Ni, Element::Co, Element::Li, Element::Cu];

/// The units of one chemistry received in one month.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortRecovery {
    /// The month of receipt, 1 to 12.
    pub month: u32,
    /// `None` when the units' passports name no chemistry.
    pub chemistry: Option<Chemistry>,
    pub units: usize,
    /// Booked contents of the units, kg per element of [`COHORT_ELEMENTS`].
    pub input: [f64; 4],
    /// Of `input`, the kg in the lots that recover each element so far.
    pub in_products: [f64; 4],
}

impl CohortRecovery {
    /// `in_products / input` of `el`, as a fraction; `None` without input.
    pub fn rate(&self, el: Element) -> Option<f64> {
        let k = COHORT_ELEMENTS.iter().position(|&e| e == el)?;
        (self.input[k] > 0.0).then(|| self.in_products[k] / self.input[k])
    }
}

/// The cohorts of the units received in `year`, by month then chemistry
/// (unknown chemistry last), from the lots and the genealogy as given.
/// `chemistry` names each input unit's chemistry where known.
pub fn cohorts(
    lots: &[Lot],
    graph: &LotGraph,
    chemistry: &HashMap<remine_domain::LotId, Chemistry>,
    year: i32,
) -> Result<Vec<CohortRecovery>, MesError> {
    type Key = (u32, Option<Chemistry>);
    let in_year = |at: DateTime<Utc>| at.year() == year;
    let mut key_of: HashMap<&remine_domain::LotId, Key> = HashMap::new();
    let mut out: BTreeMap<(u32, u8, Option<Chemistry>), CohortRecovery> = BTreeMap::new();
    let slot = |key: Key| (key.0, u8::from(key.1.is_none()), key.1);
    for l in lots {
        if l.kind() != LotKind::InputUnit || !in_year(l.created_at()) {
            continue;
        }
        let key = (l.created_at().month(), chemistry.get(l.id()).copied());
        key_of.insert(l.id(), key);
        let c = out.entry(slot(key)).or_insert_with(|| CohortRecovery {
            month: key.0,
            chemistry: key.1,
            units: 0,
            input: [0.0; 4],
            in_products: [0.0; 4],
        });
        c.units += 1;
        for (k, el) in COHORT_ELEMENTS.iter().enumerate() {
            c.input[k] += l.elements().get(*el).kg();
        }
    }
    for l in lots {
        let Some(el) = l.kind().recovered_element() else {
            continue;
        };
        let Some(k) = COHORT_ELEMENTS.iter().position(|&e| e == el) else {
            continue;
        };
        let trace = graph
            .backward(l.id())
            .map_err(|e| StoreError::Corrupt(format!("lot {}: {e}", l.id())))?;
        for s in &trace.sources {
            if let Some(c) = key_of
                .get(s.lot.id())
                .and_then(|key| out.get_mut(&slot(*key)))
            {
                c.in_products[k] += s.elements.get(el).kg();
            }
        }
    }
    Ok(out.into_values().collect())
}

/// [`cohorts`] of the stored lots and genealogy, each unit's chemistry from
/// its stored passport.
#[tracing::instrument(skip(store))]
pub async fn stored_cohorts(
    store: &dyn LotStore,
    year: i32,
) -> Result<Vec<CohortRecovery>, MesError> {
    let lots = store.lots().await?;
    let edges = store.edges().await?;
    let graph =
        LotGraph::new(&lots, &edges).map_err(|e| StoreError::Corrupt(format!("lot_edges: {e}")))?;
    let mut chemistry = HashMap::new();
    for l in &lots {
        if l.kind() == LotKind::InputUnit
            && l.created_at().year() == year
            && let Some(p) = l.passport()
            && let Some(c) = store.passport(p).await?.and_then(|p| p.chemistry())
        {
            chemistry.insert(l.id().clone(), c);
        }
    }
    cohorts(&lots, &graph, &chemistry, year)
}
