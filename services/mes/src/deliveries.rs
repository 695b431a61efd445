//! Deliveries of documents (recovery reports, provenance records) to the
//! traceability platforms, as people see and steer them: counts per state,
//! the deliveries in a state with their last error, a document as stored,
//! and requeueing a parked delivery once its cause is fixed.
//!
//! Sending is the delivery worker's job (remine-delivery); this is the
//! person's side. Requeueing needs the supervisor's role (Approve) and a
//! reason, and is audited in the store's transaction; a refusal is audited
//! too. The Chinese platform's upload deadlines are listed from the lots
//! and what was delivered.

use crate::{Actor, MesError};
use chrono::{NaiveDate, Utc};
use remine_domain::deadlines::{
    OverdueUpload, UploadObligation, UploadTrigger, WorkingCalendar, overdue_uploads,
};
use remine_domain::outbox::{
    ConnectorName, Delivery, DeliveryCounts, DeliveryKey, DeliveryState, Document, DocumentId,
    StateName,
};
use remine_domain::ports::{Store, StoreError};
use remine_domain::{Action, AuditEvent};
use remine_domain::{GenealogyEdge, Lot, LotId, LotKind};
use std::collections::HashMap;
use std::sync::Arc;

/// The deliveries use cases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliveries {
    store: Arc<dyn Store>,
}

impl Deliveries {
    pub fn new(store: Arc<dyn Store>) -> Deliveries {
        Deliveries { store }
    }

    pub async fn counts(&self) -> Result<DeliveryCounts, MesError> {
        Ok(self.store.delivery_counts().await?)
    }

    /// The deliveries in `state`, at most `limit`.
    pub async fn list(&self, state: StateName, limit: u32) -> Result<Vec<Delivery>, MesError> {
        Ok(self.store.deliveries(state, limit).await?)
    }

    /// A stored document; `NotFound` naming it when there is none.
    pub async fn document(&self, id: &DocumentId) -> Result<Document, MesError> {
        Ok(self
            .store
            .document(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("document {id}")))?)
    }

    /// Puts a parked delivery back in the queue, due now.
    #[tracing::instrument(skip(self, actor, reason), fields(user = %actor.user, document = %document, target = %target))]
    pub async fn requeue(
        &self,
        actor: &Actor,
        document: &DocumentId,
        target: &ConnectorName,
        reason: &str,
    ) -> Result<(), MesError> {
        let what = format!("{document} to {target}");
        let refuse = |why: String| AuditEvent {
            actor: actor.user.clone(),
            action: "delivery.requeue.refused".into(),
            target: what.clone(),
            old: None,
            new: None,
            reason: why,
        };
        if let Err(e) = actor.role.authorise(Action::Approve) {
            self.store.append(refuse(e.to_string())).await?;
            return Err(MesError::NotAllowed(e.to_string()));
        }
        if reason.trim().is_empty() {
            let why = "requeueing a delivery needs a reason (what was fixed)".to_string();
            self.store.append(refuse(why.clone())).await?;
            return Err(MesError::NotAllowed(why));
        }
        let key = DeliveryKey {
            document: document.clone(),
            target: target.clone(),
        };
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "delivery.requeue".into(),
            target: what,
            old: Some("parked".into()),
            new: Some("pending".into()),
            reason: reason.trim().to_string(),
        };
        self.store.requeue(&key, Utc::now(), audit).await?;
        Ok(())
    }

    /// The uploads the Chinese national traceability platform expects of
    /// every received unit and that are late at `today`: one within 30
    /// working days of receipt into stock, one within 30 working days of
    /// finishing its recycling (the day the first output fraction made
    /// from it was produced). An upload counts as made when a document
    /// `cn-received-<lot>` or `cn-finished-<lot>` was delivered.
    #[tracing::instrument(skip_all, fields(%today))]
    pub async fn overdue_cn_uploads(
        &self,
        today: NaiveDate,
        calendar: &WorkingCalendar,
    ) -> Result<(usize, Vec<OverdueUpload>), MesError> {
        let lots = self.store.lots().await?;
        let edges = self.store.edges().await?;
        let delivered: HashMap<String, NaiveDate> = self
            .store
            .deliveries(StateName::Delivered, u32::MAX)
            .await?
            .into_iter()
            .filter_map(|d| match d.state {
                DeliveryState::Delivered { at, .. } => {
                    Some((d.key.document.as_str().to_string(), at.date_naive()))
                }
                _ => None,
            })
            .collect();
        let finished = first_output_day(&lots, &edges);
        let mut obligations = Vec::new();
        for lot in lots.iter().filter(|l| l.kind() == LotKind::InputUnit) {
            let id = lot.id();
            obligations.push(UploadObligation {
                lot: id.clone(),
                trigger: UploadTrigger::ReceivedIntoStock,
                on: lot.created_at().date_naive(),
                uploaded: delivered.get(&format!("cn-received-{id}")).copied(),
            });
            if let Some(day) = finished.get(id) {
                obligations.push(UploadObligation {
                    lot: id.clone(),
                    trigger: UploadTrigger::FinishedRecycling,
                    on: *day,
                    uploaded: delivered.get(&format!("cn-finished-{id}")).copied(),
                });
            }
        }
        Ok((
            obligations.len(),
            overdue_uploads(&obligations, calendar, today),
        ))
    }
}

/// For every lot, the first day an output fraction was made from it (or
/// it was one), over the genealogy's edges; lots without one are absent.
fn first_output_day(lots: &[Lot], edges: &[GenealogyEdge]) -> HashMap<LotId, NaiveDate> {
    let mut children: HashMap<&LotId, Vec<&LotId>> = HashMap::new();
    for e in edges {
        children.entry(&e.from).or_default().push(&e.to);
    }
    let by_id: HashMap<&LotId, &Lot> = lots.iter().map(|l| (l.id(), l)).collect();
    let mut memo: HashMap<LotId, Option<NaiveDate>> = HashMap::new();
    // Depth first without recursion: a lot is done once its children are.
    for root in lots {
        let mut stack = vec![(root.id(), false)];
        while let Some((id, expanded)) = stack.pop() {
            if memo.contains_key(id) {
                continue;
            }
            let kids = children.get(id).map(Vec::as_slice).unwrap_or_default();
            if !expanded {
                stack.push((id, true));
                stack.extend(
                    kids.iter()
                        .filter(|k| !memo.contains_key(**k))
                        .map(|k| (*k, false)),
                );
                continue;
            }
            let own = by_id
                .get(id)
                .filter(|l| l.kind().is_output_fraction())
                .map(|l| l.created_at().date_naive());
            let first = kids
                .iter()
                .filter_map(|k| memo.get(*k).copied().flatten())
                .chain(own)
                .min();
            memo.insert(id.clone(), first);
        }
    }
    memo.into_iter()
        .filter_map(|(id, d)| d.map(|d| (id, d)))
        .collect()
}
