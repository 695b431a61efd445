//! Recovery reports from the stored lots and genealogy.

use crate::MesError;
use remine_domain::ports::LotStore;
use remine_domain::{Genealogy, RecoveryReport};
use std::collections::HashMap;

/// rRM per element for `year`, from every stored lot and edge.
#[tracing::instrument(skip(store))]
pub async fn recovery_report(store: &dyn LotStore, year: i32) -> Result<RecoveryReport, MesError> {
    let lots = store.lots().await?;
    let edges = store.edges().await?;
    let genealogy = Genealogy::from_edges(edges)?;
    let lots: HashMap<_, _> = lots.into_iter().map(|l| (l.id().clone(), l)).collect();
    Ok(RecoveryReport::compute(year, &lots, &genealogy))
}
