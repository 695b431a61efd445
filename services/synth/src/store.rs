//! Writing a plant year through the store's ports: each unit received with
//! its passport, each lot produced with its edges, each weighing and assay
//! recorded, every write audited as the ports require, in batches of
//! writes that commit together.

use crate::{PlantYear, SynthError};
use remine_domain::ports::{AccountingStore, LotStore, LotWrite};
use remine_domain::{AuditEvent, Username};

/// Writes per transaction: large enough that the commit (an fsync) is
/// cheap beside the writes, small enough that a refused write loses
/// little work and the progress moves.
pub const BATCH_WRITES: usize = 2_000;

/// What went into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreReport {
    pub lots: usize,
    pub edges: usize,
    pub measurements: usize,
    pub assays: usize,
}

impl StoreReport {
    /// Store writes (each with its audit entry).
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
    /// assays, each with its audit entry, in transactions of
    /// [`BATCH_WRITES`] writes ([`AccountingStore::record_batch`]: a
    /// refused write stores nothing of its batch, and the batches before
    /// it stay); `progress(lots done, lots)` is called after each batch.
    #[tracing::instrument(skip_all, fields(lots = self.lots.len()))]
    pub async fn write_store<S>(
        &self,
        store: &S,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<StoreReport, SynthError>
    where
        S: LotStore + AccountingStore + ?Sized,
    {
        let into = self.edges_into();
        let mut report = StoreReport::default();
        let mut batch: Vec<(LotWrite, AuditEvent)> = Vec::with_capacity(BATCH_WRITES + 16);
        let flush = |batch: &mut Vec<(LotWrite, AuditEvent)>| {
            let writes = std::mem::take(batch);
            async move {
                store
                    .record_batch(&writes)
                    .await
                    .map_err(|source| SynthError::Store {
                        what: format!("a batch of {} writes", writes.len()),
                        source,
                    })
            }
        };
        for (i, synth) in self.lots.iter().enumerate() {
            let lot = synth.to_lot(self)?;
            let id = lot.id().as_str().to_string();
            let lot_id = lot.id().clone();
            let measured = synth.measured_mass()?;
            let assays = synth.domain_assays()?;
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
                    batch.push((LotWrite::Receive { passport, lot }, audit));
                }
                None => {
                    let inputs = into[i]
                        .iter()
                        .map(|e| self.domain_edge(&self.edges[*e]))
                        .collect::<Result<Vec<_>, _>>()?;
                    let audit = self.audit(
                        "synth.produce",
                        &id,
                        format!("{} {}", lot.kind().label(), lot.mass()),
                    );
                    report.edges += inputs.len();
                    batch.push((LotWrite::Produce { lot, inputs }, audit));
                }
            }
            report.lots += 1;
            if let Some(m) = measured {
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
                batch.push((
                    LotWrite::Measure {
                        lot: lot_id,
                        mass: m,
                    },
                    audit,
                ));
                report.measurements += 1;
            }
            for a in assays {
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
                batch.push((LotWrite::Assay(a), audit));
                report.assays += 1;
            }
            if batch.len() >= BATCH_WRITES || i + 1 == self.lots.len() {
                flush(&mut batch).await?;
                progress(i + 1, self.lots.len());
            }
        }
        Ok(report)
    }
}
