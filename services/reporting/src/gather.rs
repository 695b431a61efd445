//! Gathering a report's input from the store, and the one call the CLI and
//! the API make.

use crate::{
    DownstreamData, FacilityConfig, RecoveryReport, ReportError, ReportInput, ReportStatus,
    Uncertainties, WasteOrigin, compute,
};
use chrono::{DateTime, Datelike, Utc};
use remine_domain::ports::Store;
use remine_domain::{LotId, LotKind};
use std::collections::BTreeMap;

/// What a report is asked for, besides what the store holds.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub year: i32,
    pub status: ReportStatus,
    pub generated_at: DateTime<Utc>,
    pub facility: FacilityConfig,
    /// From the reconciled balance of the year (relative sigma per element).
    pub uncertainty: Uncertainties,
    /// Documents from downstream facilities ([`crate::import_downstream`]).
    pub downstream: Vec<DownstreamData>,
    /// Input units that are not post-consumer waste.
    pub origins: BTreeMap<LotId, WasteOrigin>,
}

/// Reads every lot and edge, and the assays of the output lots made from
/// the start of `year` to the end of year + 2 (the lots a report of
/// `year` may credit).
#[tracing::instrument(skip_all, fields(year = request.year))]
pub async fn gather(store: &dyn Store, request: ReportRequest) -> Result<ReportInput, ReportError> {
    let read = |what: &str| {
        let what = what.to_string();
        move |source| ReportError::Store { what, source }
    };
    let lots = store.lots().await.map_err(read("lots()"))?;
    let edges = store.edges().await.map_err(read("edges()"))?;
    let mut assays = BTreeMap::new();
    let year = request.year;
    for lot in &lots {
        let y = lot.created_at().year();
        let wanted = matches!(lot.kind(), LotKind::Product(_) | LotKind::SideFraction(_))
            && (year..=year + 2).contains(&y);
        if wanted {
            let a = store
                .assays(lot.id())
                .await
                .map_err(read(&format!("assays({})", lot.id())))?;
            if !a.is_empty() {
                assays.insert(lot.id().clone(), a);
            }
        }
    }
    tracing::debug!(
        lots = lots.len(),
        edges = edges.len(),
        assayed = assays.len(),
        "gathered"
    );
    Ok(ReportInput {
        year,
        status: request.status,
        generated_at: request.generated_at,
        facility: request.facility,
        lots,
        edges,
        assays,
        origins: request.origins,
        uncertainty: request.uncertainty,
        downstream: request.downstream,
    })
}

/// The yearly recovery report from the store: [`gather`] then [`compute`].
#[tracing::instrument(skip_all, fields(year = request.year))]
pub async fn recovery_report(
    store: &dyn Store,
    request: ReportRequest,
) -> Result<RecoveryReport, ReportError> {
    let input = gather(store, request).await?;
    compute(&input)
}
