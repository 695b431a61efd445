//! Intake: a received battery becomes an input lot, with its passport copied.

use crate::{Actor, MesError};
use chrono::{DateTime, Utc};
use remine_domain::ports::Store;
use remine_domain::{
    Action, AuditEvent, ContentSource, CountryCode, ElementMasses, Lot, LotFields, LotId, LotKind,
    Passport, PassportId,
};
use std::sync::Arc;

/// The input lot id of a unit: `U-` and its passport id, with characters a
/// lot id cannot hold replaced by `-`, at most 64 characters.
pub fn unit_lot_id(id: &PassportId) -> Result<LotId, remine_domain::DomainError> {
    let clean: String = id
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(62)
        .collect();
    LotId::parse(&format!("U-{clean}"))
}

/// Receives units into the plant.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Arc<dyn Store>,
}

impl Intake {
    pub fn new(store: Arc<dyn Store>) -> Intake {
        Intake { store }
    }

    /// Records the passport copy and the unit's input lot in one
    /// transaction. `country` is the country of collection from the
    /// delivery note, used where the passport does not state it.
    #[tracing::instrument(skip(self, actor, passport), fields(lot, passport = %passport.id()))]
    pub async fn receive(
        &self,
        actor: &Actor,
        passport: &Passport,
        received_at: DateTime<Utc>,
        country: Option<CountryCode>,
        source: &str,
    ) -> Result<Lot, MesError> {
        actor
            .role
            .authorise(Action::RecordLot)
            .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        let id = unit_lot_id(passport.id())?;
        tracing::Span::current().record("lot", id.as_str());
        let (elements, content_source) = match passport.content() {
            Some(c) => (c.masses.clone(), c.source),
            None => (ElementMasses::new(), ContentSource::Estimated),
        };
        let lot = Lot::new(LotFields {
            id: id.clone(),
            kind: LotKind::InputUnit,
            mass: passport.mass(),
            elements,
            content_source,
            created_at: received_at,
            passport: Some(passport.id().clone()),
            country_of_collection: passport.country_of_collection().cloned().or(country),
        })?;
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "lot.receive".into(),
            target: id.to_string(),
            old: None,
            new: Some(format!(
                "{} {} {} from {}",
                passport.unit_type().name(),
                passport
                    .chemistry()
                    .map(|c| c.name())
                    .unwrap_or("chemistry unknown"),
                passport.mass(),
                passport.form().name()
            )),
            reason: format!("received; passport {} from {source}", passport.id()),
        };
        self.store.receive(passport, &lot, audit).await?;
        Ok(lot)
    }
}
