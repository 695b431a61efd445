//! Small lot graphs written through the store's ports, for tests of
//! genealogy, traces and balances: lots with declared contents, edges,
//! received units with a declared passport.
//!
//! Values here are the test's own and known good, so the builders panic on
//! a bad one (a mistake in the test, not input under test).

#![allow(clippy::unwrap_used)]

use remine_domain::ports::LotStore;
use remine_domain::{
    AuditEvent, Chemistry, ContentSource, CountryCode, Element, GenealogyEdge, Kilograms, Lot,
    LotFields, LotId, LotKind, Passport, PassportFields, PassportForm, PassportId, UnitType,
    Username,
};

pub fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

/// The audit event of a test's write to `target`.
pub fn audit(target: &str) -> AuditEvent {
    AuditEvent {
        actor: Username::system(),
        action: "lot.produce".into(),
        target: target.into(),
        old: None,
        new: None,
        reason: "test".into(),
    }
}

/// A lot of `mass` kg with declared element contents (kg), made now.
pub fn lot(id: &str, kind: LotKind, mass: f64, els: &[(Element, f64)]) -> Lot {
    lot_with(id, kind, mass, els, None, None)
}

/// [`lot`] with a passport and a country of collection.
pub fn lot_with(
    id: &str,
    kind: LotKind,
    mass: f64,
    els: &[(Element, f64)],
    passport: Option<PassportId>,
    country: Option<CountryCode>,
) -> Lot {
    Lot::new(LotFields {
        id: LotId::parse(id).unwrap(),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: ContentSource::Declared,
        created_at: chrono::Utc::now(),
        passport,
        country_of_collection: country,
    })
    .unwrap()
}

/// `mass` kg of `from` went into `to`.
pub fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
    GenealogyEdge {
        from: LotId::parse(from).unwrap(),
        to: LotId::parse(to).unwrap(),
        mass: kg(mass),
    }
}

/// Receives an NMC811 pack `id` of `mass` kg with a declared passport
/// `urn:test:<id>` (the same contents) collected in `country`.
pub async fn receive(
    store: &dyn LotStore,
    id: &str,
    mass: f64,
    els: &[(Element, f64)],
    country: &str,
) {
    let pid = PassportId::urn(&format!("urn:test:{id}")).unwrap();
    let country = CountryCode::parse(country).unwrap();
    let passport = Passport::new(PassportFields {
        id: pid.clone(),
        form: PassportForm::Declared,
        serial: None,
        manufacturer: None,
        chemistry: Some(Chemistry::Nmc811),
        unit_type: UnitType::Pack,
        mass: kg(mass),
        declared: Some(els.iter().map(|(e, m)| (*e, kg(*m))).collect()),
        state_of_health_pct: None,
        country_of_collection: Some(country.clone()),
        gbt: None,
        warnings: Vec::new(),
    })
    .unwrap();
    let unit = lot_with(id, LotKind::InputUnit, mass, els, Some(pid), Some(country));
    store.receive(&passport, &unit, audit(id)).await.unwrap();
}
