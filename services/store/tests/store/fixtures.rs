//! Domain values the tests store: passports, lots, edges, users, events.

use chrono::{DateTime, TimeZone, Utc};
use remine_domain::ports::UserRecord;
use remine_domain::{
    AuditEvent, Chemistry, ContentSource, CountryCode, Element, ElementMasses, GenealogyEdge,
    Kilograms, Lot, LotFields, LotId, LotKind, Passport, PassportFields, PassportForm, PassportId,
    Role, UnitType, Username,
};

/// `secs` seconds and 123 456 microseconds after 2025-01-01T00:00:00Z (a
/// time with microseconds, which the store keeps exactly).
pub fn at(secs: i64) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    base + chrono::Duration::seconds(secs) + chrono::Duration::microseconds(123_456)
}

pub fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

pub fn id(s: &str) -> LotId {
    LotId::parse(s).unwrap()
}

pub fn urn(s: &str) -> PassportId {
    PassportId::urn(s).unwrap()
}

pub fn user_name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

/// An event by `op1` with a new value and no old one.
pub fn event(action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        actor: user_name("op1"),
        action: action.into(),
        target: target.into(),
        old: None,
        new: Some(format!("{target} recorded")),
        reason: "test".into(),
    }
}

/// Element masses with awkward decimals, to show doubles round-trip.
pub fn declared() -> ElementMasses {
    [
        (Element::Ni, kg(61.237_5)),
        (Element::Co, kg(7.812_3)),
        (Element::Li, kg(9.1)),
        (Element::Graphite, kg(0.1 + 0.2)),
    ]
    .into_iter()
    .collect()
}

/// The fields of a 500 kg NMC811 pack passport from Germany with declared
/// content and one warning.
pub fn passport_fields(id: PassportId) -> PassportFields {
    PassportFields {
        id,
        form: PassportForm::BatteryPass120,
        serial: Some("RZB21P0012345".into()),
        manufacturer: Some("Rheinzelle GmbH".into()),
        chemistry: Some(Chemistry::Nmc811),
        unit_type: UnitType::Pack,
        mass: kg(500.0),
        declared: Some(declared()),
        state_of_health_pct: Some(81.5),
        country_of_collection: Some(CountryCode::parse("DE").unwrap()),
        gbt: None,
        warnings: vec!["cycle count missing".into()],
    }
}

pub fn passport(id: &str) -> Passport {
    Passport::new(passport_fields(urn(id))).unwrap()
}

/// The input lot of a received unit, carrying its passport's content.
pub fn input_lot(lot: &str, passport: &Passport, created: DateTime<Utc>) -> Lot {
    let content = passport.content();
    Lot::new(LotFields {
        id: id(lot),
        kind: LotKind::InputUnit,
        mass: passport.mass(),
        elements: content.map(|c| c.masses.clone()).unwrap_or_default(),
        content_source: content.map_or(ContentSource::Estimated, |c| c.source),
        created_at: created,
        passport: Some(passport.id().clone()),
        country_of_collection: passport.country_of_collection().cloned(),
    })
    .unwrap()
}

/// A lot of `kind` with some nickel, made at `created`.
pub fn lot(lot: &str, kind: LotKind, mass: f64, created: DateTime<Utc>) -> Lot {
    Lot::new(LotFields {
        id: id(lot),
        kind,
        mass: kg(mass),
        elements: [(Element::Ni, kg(mass * 0.1))].into_iter().collect(),
        content_source: ContentSource::Assayed,
        created_at: created,
        passport: None,
        country_of_collection: None,
    })
    .unwrap()
}

pub fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
    GenealogyEdge {
        from: id(from),
        to: id(to),
        mass: kg(mass),
    }
}

pub fn user(name: &str, role: Role) -> UserRecord {
    UserRecord {
        name: user_name(name),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: at(0),
    }
}
