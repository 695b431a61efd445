//! Metal-accounting use cases: weighings, lab assays and stock events of
//! lots, and a lot's accounting view (its assays combined by inverse
//! variance, its events, what remains in stock).
//!
//! Every write needs the role to record lot events and a reason where the
//! fact is a judgement (adjustments, corrections); it is audited with the
//! write in one transaction, and a refusal is audited too.

use crate::{Actor, MesError};
use remine_domain::ports::{Store, StoreError};
use remine_domain::{
    Action, Assay, AuditEvent, Element, Kilograms, Lot, LotId, LotKind, MassFraction, MeasuredMass,
    Step, StockEvent, Uncertain, combine_assays,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One element's assays combined.
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedAssay {
    pub element: Element,
    pub fraction: Uncertain<MassFraction>,
    /// How many assays went into it.
    pub count: usize,
}

/// Everything the plant knows of a lot's mass and content.
#[derive(Debug, Clone, PartialEq)]
pub struct LotAccounting {
    pub lot: Lot,
    pub measurement: Option<MeasuredMass>,
    pub assays: Vec<Assay>,
    pub combined: Vec<CombinedAssay>,
    pub events: Vec<(i64, StockEvent)>,
    /// What remains, in kg.
    pub stock_kg: f64,
}

/// The accounting use cases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounting {
    store: Arc<dyn Store>,
}

impl Accounting {
    pub fn new(store: Arc<dyn Store>) -> Accounting {
        Accounting { store }
    }

    async fn authorise(&self, actor: &Actor, action: &str, lot: &LotId) -> Result<(), MesError> {
        if let Err(e) = actor.role.authorise(Action::RecordLot) {
            self.store
                .append(AuditEvent {
                    actor: actor.user.clone(),
                    action: format!("{action}.refused"),
                    target: lot.to_string(),
                    old: None,
                    new: None,
                    reason: e.to_string(),
                })
                .await?;
            return Err(MesError::NotAllowed(e.to_string()));
        }
        Ok(())
    }

    /// Records the weighing a lot was made with.
    #[tracing::instrument(skip(self, actor, mass), fields(user = %actor.user, lot = %lot))]
    pub async fn record_measurement(
        &self,
        actor: &Actor,
        lot: &LotId,
        mass: &MeasuredMass,
        reason: &str,
    ) -> Result<(), MesError> {
        self.authorise(actor, "lot.weigh", lot).await?;
        let dry = mass.dry_mass();
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "lot.weigh".into(),
            target: lot.to_string(),
            old: None,
            new: Some(format!(
                "{} wet, {:.2} % moisture, {} dry +- {} ({} {})",
                mass.wet(),
                mass.moisture().percent(),
                dry.value(),
                dry.sigma(),
                mass.method(),
                mass.instrument()
            )),
            reason: or_default(reason, "weighed"),
        };
        self.store.record_measurement(lot, mass, audit).await?;
        Ok(())
    }

    /// Records a lab result.
    #[tracing::instrument(skip(self, actor, assay), fields(user = %actor.user, lot = %assay.lot()))]
    pub async fn record_assay(
        &self,
        actor: &Actor,
        assay: &Assay,
        reason: &str,
    ) -> Result<i64, MesError> {
        self.authorise(actor, "lot.assay", assay.lot()).await?;
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "lot.assay".into(),
            target: assay.lot().to_string(),
            old: None,
            new: Some(format!(
                "{} {:.4} +- {:.4} ({}, {}, sample {})",
                assay.element().symbol(),
                assay.fraction().value(),
                assay.sigma(),
                assay.method(),
                assay.lab(),
                assay.sample()
            )),
            reason: or_default(reason, "lab result"),
        };
        Ok(self.store.record_assay(assay, audit).await?)
    }

    /// Records a sample taken, a stock adjustment or a correction. An
    /// adjustment or a correction needs a reason.
    #[tracing::instrument(skip(self, actor, event), fields(user = %actor.user, lot = %lot))]
    pub async fn record_stock_event(
        &self,
        actor: &Actor,
        lot: &LotId,
        event: &StockEvent,
        reason: &str,
    ) -> Result<i64, MesError> {
        let action = format!("lot.{}", event.name());
        self.authorise(actor, &action, lot).await?;
        event.check()?;
        if !matches!(event, StockEvent::Sample { .. }) && reason.trim().is_empty() {
            return Err(MesError::NotAllowed(format!(
                "a {} needs a reason",
                event.name().replace('_', " ")
            )));
        }
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action,
            target: lot.to_string(),
            old: None,
            new: Some(match event {
                StockEvent::Sample { sample, mass } => format!("sample {sample}: {mass}"),
                StockEvent::Adjustment { delta_kg } => format!("{delta_kg:+} kg"),
                StockEvent::Correction { corrects, delta_kg } => {
                    format!("corrects event {corrects}: {delta_kg:+} kg")
                }
            }),
            reason: or_default(reason, "sample for the lab"),
        };
        Ok(self.store.record_stock_event(lot, event, audit).await?)
    }

    /// A lot and what it has left in stock.
    async fn with_stock(&self, id: &LotId) -> Result<(Lot, Kilograms), MesError> {
        let lot = self
            .store
            .lot(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lot {id}")))?;
        let stock = Kilograms::new(self.store.stock(id).await?.max(0.0))?;
        Ok((lot, stock))
    }

    async fn record(
        &self,
        actor: &Actor,
        step: Step,
        target: &str,
        reason: &str,
    ) -> Result<Step, MesError> {
        let new = step
            .outputs()
            .iter()
            .map(|(lot, edges)| {
                let from: Vec<String> = edges
                    .iter()
                    .map(|e| format!("{} {}", e.from, e.mass))
                    .collect();
                format!("{} {} from {}", lot.id(), lot.mass(), from.join(" + "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: format!("lot.{}", step.kind().name()),
            target: target.to_string(),
            old: None,
            new: Some(new),
            reason: reason.trim().to_string(),
        };
        self.store.record_step(&step, audit).await?;
        Ok(step)
    }

    /// Splits lot `source` into new lots of the given ids and masses, each
    /// carrying its share of the lot's element masses; the rest stays in
    /// stock. All parts are stored or none. Needs a reason.
    #[tracing::instrument(skip(self, actor, parts, reason), fields(user = %actor.user, lot = %source))]
    pub async fn split(
        &self,
        actor: &Actor,
        source: &LotId,
        parts: &[(LotId, Kilograms)],
        reason: &str,
    ) -> Result<Step, MesError> {
        self.authorise(actor, "lot.split", source).await?;
        needs_reason(reason, "a split")?;
        let (lot, stock) = self.with_stock(source).await?;
        let step = remine_domain::split(&lot, stock, parts, chrono::Utc::now())?;
        self.record(actor, step, source.as_str(), reason).await
    }

    /// Blends portions of lots (a lot id and the kg taken) into a new lot
    /// `id` of `kind`, which carries the sum of the portions' element
    /// masses. Needs a reason.
    #[tracing::instrument(skip(self, actor, portions, reason), fields(user = %actor.user, lot = %id))]
    pub async fn blend(
        &self,
        actor: &Actor,
        id: &LotId,
        kind: LotKind,
        portions: &[(LotId, Kilograms)],
        reason: &str,
    ) -> Result<Step, MesError> {
        self.authorise(actor, "lot.blend", id).await?;
        needs_reason(reason, "a blend")?;
        let mut known = Vec::with_capacity(portions.len());
        for (lot, take) in portions {
            let (lot, stock) = self.with_stock(lot).await?;
            known.push((lot, *take, stock));
        }
        let refs: Vec<(&Lot, Kilograms, Kilograms)> =
            known.iter().map(|(l, t, s)| (l, *t, *s)).collect();
        let step = remine_domain::blend(id.clone(), kind, &refs, chrono::Utc::now())?;
        self.record(actor, step, id.as_str(), reason).await
    }

    /// The lot with its weighing, assays (and their combination per
    /// element), stock events and stock.
    pub async fn lot(&self, id: &LotId) -> Result<LotAccounting, MesError> {
        let lot = self
            .store
            .lot(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lot {id}")))?;
        let assays = self.store.assays(id).await?;
        let mut by: BTreeMap<Element, Vec<Assay>> = BTreeMap::new();
        for a in &assays {
            by.entry(a.element()).or_default().push(a.clone());
        }
        let mut combined = Vec::new();
        for (element, list) in by {
            if let Some(fraction) = combine_assays(&list)? {
                combined.push(CombinedAssay {
                    element,
                    fraction,
                    count: list.len(),
                });
            }
        }
        Ok(LotAccounting {
            measurement: self.store.measurement(id).await?,
            events: self.store.stock_events(id).await?,
            stock_kg: self.store.stock(id).await?,
            lot,
            assays,
            combined,
        })
    }
}

fn needs_reason(reason: &str, what: &str) -> Result<(), MesError> {
    if reason.trim().is_empty() {
        return Err(MesError::NotAllowed(format!("{what} needs a reason")));
    }
    Ok(())
}

fn or_default(reason: &str, default: &str) -> String {
    if reason.trim().is_empty() {
        default.to_string()
    } else {
        reason.trim().to_string()
    }
}
