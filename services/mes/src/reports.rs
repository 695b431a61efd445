//! The recovery report of a year as the plant files it: the stored lots,
//! genealogy and assays through remine-reporting, with each rate's
//! uncertainty taken from the reconciled balance of the year.
//!
//! The reconciliation can fail (a gross error, a network too large); the
//! report is still made then, its rates with the uncertainty propagated
//! from their content sources, and the reason is printed in the report's
//! warnings (and returned beside it). A run reports its stages through `progress`.

use crate::{MesError, PlantBalance};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use remine_domain::outbox::{
    ConnectorName, Content, ContentType, Document, DocumentFields, DocumentId, DocumentKind,
};
use remine_domain::ports::{Store, StoreError};
use remine_domain::{AuditEvent, LotId, Username};
use remine_reporting::{
    DownstreamData, FacilityConfig, ProvenanceBook, ProvenanceRecord, RecoveryReport, ReportError,
    ReportRequest, ReportStatus, Uncertainties, Warning,
};
use std::sync::Arc;

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct RecoveryRequest {
    pub year: i32,
    pub status: ReportStatus,
    pub facility: FacilityConfig,
    pub downstream: Vec<DownstreamData>,
    pub generated_at: DateTime<Utc>,
}

/// A report, and why its rates lack the reconciliation's uncertainty when
/// they do.
#[derive(Debug, Clone)]
pub struct RecoveryOutcome {
    pub report: RecoveryReport,
    pub uncertainty_note: Option<String>,
}

/// The reports use cases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reports {
    store: Arc<dyn Store>,
}

impl Reports {
    pub fn new(store: Arc<dyn Store>) -> Reports {
        Reports { store }
    }

    /// The recovery report of `request.year`.
    #[tracing::instrument(skip_all, fields(year = request.year))]
    pub async fn recovery(
        &self,
        request: RecoveryRequest,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<RecoveryOutcome, MesError> {
        let year = request.year;
        let start = |y: i32| {
            Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0)
                .single()
                .ok_or_else(|| MesError::NotAllowed(format!("year {y} is out of range")))
        };
        let (from, to) = (start(year)?, start(year + 1)?);
        progress("reconciling the year's balance");
        let (uncertainty, uncertainty_note) =
            match PlantBalance::new(self.store.clone()).period(from, to).await {
                Ok(b) => {
                    let mut u = Uncertainties::new();
                    for f in &b.recovery {
                        if let (Some(r), Some(s)) = (f.reconciled, f.sigma)
                            && r > 0.0
                        {
                            u = u.with(f.element, s / r)?;
                        }
                    }
                    let note = (!b.passed).then(|| {
                        format!(
                            "the reconciliation's global test failed (chi-square {:.1} on {} \
                             degrees of freedom): a gross error is suspected",
                            b.chi_square, b.dof
                        )
                    });
                    (u, note)
                }
                Err(e) => (
                    Uncertainties::new(),
                    Some(format!("no reconciled uncertainty: {e}")),
                ),
            };
        progress("reading lots, genealogy and assays");
        let report = remine_reporting::recovery_report(
            self.store.as_ref(),
            ReportRequest {
                year,
                status: request.status,
                generated_at: request.generated_at,
                facility: request.facility,
                uncertainty,
                downstream: request.downstream,
                origins: Default::default(),
            },
        )
        .await?;
        let mut report = report;
        if let Some(note) = &uncertainty_note {
            report.warnings.push(Warning {
                code: "uncertainty-not-reconciled".into(),
                lot: None,
                field: None,
                message: format!("{note}; rates carry the uncertainty of their content sources"),
            });
        }
        progress("computed");
        Ok(RecoveryOutcome {
            report,
            uncertainty_note,
        })
    }

    /// The provenance record of an output lot (a product or side
    /// fraction): its assays, mass and allocated sources, with the Catena-X
    /// secondary-material-content instance battery makers ask for.
    #[tracing::instrument(skip(self, facility), fields(lot = %lot))]
    pub async fn provenance(
        &self,
        lot: &LotId,
        facility: FacilityConfig,
    ) -> Result<ProvenanceRecord, MesError> {
        let made = self
            .store
            .lot(lot)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lot {lot}")))?;
        let input = remine_reporting::gather(
            self.store.as_ref(),
            ReportRequest {
                year: made.created_at().year(),
                status: ReportStatus::Provisional,
                generated_at: Utc::now(),
                facility,
                uncertainty: Uncertainties::new(),
                downstream: Vec::new(),
                origins: Default::default(),
            },
        )
        .await?;
        Ok(ProvenanceBook::new(&input)?.record(lot)?)
    }

    /// Files the reports the schedule says are due at `now` and are not yet
    /// stored: the provisional report of the current year after each month
    /// (from February on) and the final report of the previous year from
    /// `schedule.final_from` on. Each is saved as a document and queued for
    /// `targets` in one transaction (audited as done by the system); a year
    /// without data is skipped. Returns the documents filed.
    #[tracing::instrument(skip_all)]
    pub async fn file_due(
        &self,
        now: DateTime<Utc>,
        schedule: &ReportSchedule,
        facility: &FacilityConfig,
        targets: &[ConnectorName],
    ) -> Result<Vec<DocumentId>, MesError> {
        let mut due = Vec::new();
        if schedule.monthly_provisional && now.month() > 1 {
            due.push((
                now.year(),
                ReportStatus::Provisional,
                format!("recovery-{}-provisional-{:02}", now.year(), now.month() - 1),
            ));
        }
        if (now.month(), now.day()) >= schedule.final_from {
            due.push((
                now.year() - 1,
                ReportStatus::Final,
                format!("recovery-{}-final", now.year() - 1),
            ));
        }
        let mut filed = Vec::new();
        for (year, status, id) in due {
            let id = DocumentId::parse(&id)?;
            if self.store.document(&id).await?.is_some() {
                continue;
            }
            let request = RecoveryRequest {
                year,
                status,
                facility: facility.clone(),
                downstream: Vec::new(),
                generated_at: now,
            };
            let outcome = match self.recovery(request, &|_| ()).await {
                Ok(o) => o,
                Err(MesError::Report(ReportError::NoData { .. })) => {
                    tracing::info!(%id, "no data for the year: nothing to file");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let document = Document::new(DocumentFields {
                id: id.clone(),
                kind: DocumentKind::parse("recovery-report")?,
                content_type: ContentType::parse("application/json")?,
                content: Content::Text(outcome.report.to_json()?),
                created_at: now,
            })?;
            let audit = AuditEvent {
                actor: Username::system(),
                action: "report.file".into(),
                target: id.to_string(),
                old: None,
                new: Some(format!(
                    "{} recovery report {year}, queued for {}",
                    status.name(),
                    targets
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                reason: "report schedule".into(),
            };
            self.store.enqueue(&document, targets, Some(audit)).await?;
            filed.push(id);
        }
        Ok(filed)
    }
}

/// When reports are filed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSchedule {
    /// A provisional report of the current year after each month.
    pub monthly_provisional: bool,
    /// (month, day) from which the previous year's final report is filed.
    pub final_from: (u32, u32),
}

impl Default for ReportSchedule {
    /// Monthly provisional reports; the final one from 1 February (well
    /// within the six months the regulation allows).
    fn default() -> Self {
        ReportSchedule {
            monthly_provisional: true,
            final_from: (2, 1),
        }
    }
}
