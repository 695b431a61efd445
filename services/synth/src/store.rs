//! Writing a plant year through the store's ports: each unit received with
//! its passport, each lot produced with its edges, each weighing and assay
//! recorded, every write audited as the ports require.

use crate::{PlantYear, SynthError};
use remine_domain::ports::{AccountingStore, LotStore};
use remine_domain::{AuditEvent, Username};

/// What went into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreReport {
    pub lots: usize,
    pub edges: usize,
    pub measurements: usize,
    pub assays: usize,
}

impl StoreReport {
    /// Store writes (each one transaction with its audit entry).
    pub fn writes(&self) -> usize {
        self.lots + self.measurements + self.assays
    }
}

impl PlantYear {
    fn audit(&self, action: &str, target: &str, new: String) -> AuditEvent {
        AuditEvent {
            actor: Username::system(),
            action: action.into(),
            target: target.into(),
            old: None,
            new: Some(new),
            reason: format!(
                "synthetic plant year {}, seed {}",
                self.config.year(),
                self.config.seed()
            ),
        }
    }

    /// Writes every lot (in the order made), its edges, weighing and
    /// assays; `progress(lots done, lots)` is called after each lot.
    #[tracing::instrument(skip_all, fields(lots = self.lots.len()))]
    pub async fn write_store<S>(
        &self,
        store: &S,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<StoreReport, SynthError>
    where
        S: LotStore + AccountingStore + ?Sized,
    {
        let refused = |what: String| move |source| SynthError::Store { what, source };
        let into = self.edges_into();
        let mut report = StoreReport::default();
        for (i, synth) in self.lots.iter().enumerate() {
            let lot = synth.to_lot(self)?;
            let id = lot.id().as_str().to_string();
            match synth.unit {
                Some(u) => {
                    let passport = self.units[u].passport()?;
                    let audit = self.audit(
                        "synth.receive",
                        &id,
                        format!(
                            "{} {} {} from {}",
                            passport.unit_type().name(),
                            passport
                                .chemistry()
                                .map_or("chemistry unknown", |c| c.name()),
                            passport.mass(),
                            passport.form().name()
                        ),
                    );
                    store
                        .receive(&passport, &lot, audit)
                        .await
                        .map_err(refused(format!("unit {id}")))?;
                }
                None => {
                    let edges = into[i]
                        .iter()
                        .map(|e| self.domain_edge(&self.edges[*e]))
                        .collect::<Result<Vec<_>, _>>()?;
                    let audit = self.audit(
                        "synth.produce",
                        &id,
                        format!("{} {}", lot.kind().label(), lot.mass()),
                    );
                    store
                        .produce(&lot, &edges, audit)
                        .await
                        .map_err(refused(format!("lot {id}")))?;
                    report.edges += edges.len();
                }
            }
            report.lots += 1;
            if let Some(m) = synth.measured_mass()? {
                let audit = self.audit(
                    "synth.measure",
                    &id,
                    format!(
                        "{} wet, moisture {:.2} % by {}",
                        m.wet(),
                        m.moisture().percent(),
                        m.instrument()
                    ),
                );
                store
                    .record_measurement(lot.id(), &m, audit)
                    .await
                    .map_err(refused(format!("the weighing of {id}")))?;
                report.measurements += 1;
            }
            for a in synth.domain_assays()? {
                let audit = self.audit(
                    "synth.assay",
                    &id,
                    format!(
                        "{} {:.4} % by {}",
                        a.element(),
                        a.fraction().percent(),
                        a.method()
                    ),
                );
                store
                    .record_assay(&a, audit)
                    .await
                    .map_err(refused(format!("an assay of {id}")))?;
                report.assays += 1;
            }
            progress(i + 1, self.lots.len());
        }
        Ok(report)
    }
}
