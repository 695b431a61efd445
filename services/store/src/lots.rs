//! Lots, passports and genealogy: the [`LotStore`] port.
//!
//! Domain values are written column by column and rebuilt through their
//! constructors, so a stored row that no longer satisfies the domain's rules
//! comes back as [`StoreError::Corrupt`] naming the table and key, never as
//! an invalid value.

use crate::accounting::{covers, stock_in};
use crate::db::{Db, WriteTx, db_error, micros, time_from_micros};
use crate::rows::{corrupt, element_masses, get, kilograms};
use async_trait::async_trait;
use remine_domain::ports::{LotStore, StoreError};
use remine_domain::{
    AuditEvent, Chemistry, ContentSource, CountryCode, DomainError, ElementMasses, GbtCode,
    GenealogyEdge, Lot, LotFields, LotId, LotKind, Passport, PassportFields, PassportForm,
    PassportId, Step, UnitType,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

const LOT_COLUMNS: &str = "SELECT l.id, l.kind, l.mass_kg, l.content_source, l.created_at_us, \
     l.passport_id, p.id_kind AS passport_kind, l.country \
     FROM lots l LEFT JOIN passports p ON p.id = l.passport_id";

#[async_trait]
impl LotStore for Db {
    #[tracing::instrument(skip_all, fields(passport = %passport.id(), lot = %lot.id()))]
    async fn receive(
        &self,
        passport: &Passport,
        lot: &Lot,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = receive_in(&mut w, passport, lot).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(lot = %lot.id(), inputs = inputs.len()))]
    async fn produce(
        &self,
        lot: &Lot,
        inputs: &[GenealogyEdge],
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = produce_in(&mut w, lot, inputs).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(step = step.kind().name(), lots = step.outputs().len()))]
    async fn record_step(&self, step: &Step, audit: AuditEvent) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let mut outcome = Ok(());
        // One after the other in the transaction: each output sees the
        // stock the ones before it took.
        for (lot, inputs) in step.outputs() {
            outcome = produce_in(&mut w, lot, inputs).await;
            if outcome.is_err() {
                break;
            }
        }
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all)]
    async fn genealogy_mark(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT MAX(audit_seq) AS mark FROM lots")
            .fetch_one(self.pool())
            .await
            .map_err(db_error("reading the genealogy's mark"))?;
        let mark: Option<i64> = get(&row, "mark", &"lots")?;
        Ok(mark.unwrap_or(0))
    }

    #[tracing::instrument(skip_all, fields(lot = %id))]
    async fn lot(&self, id: &LotId) -> Result<Option<Lot>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{LOT_COLUMNS} WHERE l.id = $1"));
        let Some(row) = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error(format!("reading lot {id}")))?
        else {
            return Ok(None);
        };
        let elements = sqlx::query("SELECT element, kg FROM lot_elements WHERE lot_id = $1")
            .bind(id.as_str())
            .fetch_all(self.pool())
            .await
            .map_err(db_error(format!("reading the elements of lot {id}")))?;
        let what = format!("lots {id}");
        let masses = element_masses(&elements, &format!("lot_elements {id}"))?;
        lot_from_row(&row, masses, &what).map(Some)
    }

    #[tracing::instrument(skip_all)]
    async fn lots(&self) -> Result<Vec<Lot>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{LOT_COLUMNS} ORDER BY l.created_at_us, l.audit_seq"
        ));
        let rows = sqlx::query(sql)
            .fetch_all(self.pool())
            .await
            .map_err(db_error("reading lots"))?;
        let element_rows = sqlx::query("SELECT lot_id, element, kg FROM lot_elements")
            .fetch_all(self.pool())
            .await
            .map_err(db_error("reading lot elements"))?;
        let mut by_lot: HashMap<String, Vec<AnyRow>> = HashMap::new();
        for row in element_rows {
            let lot: String = get(&row, "lot_id", &"lot_elements")?;
            by_lot.entry(lot).or_default().push(row);
        }
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id", &"lots")?;
                let what = format!("lots {id}");
                let elements = by_lot.get(&id).map(Vec::as_slice).unwrap_or_default();
                let masses = element_masses(elements, &format!("lot_elements {id}"))?;
                lot_from_row(row, masses, &what)
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn edges(&self) -> Result<Vec<GenealogyEdge>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.from_lot, e.to_lot, e.mass_kg FROM lot_edges e \
             JOIN lots l ON l.id = e.to_lot \
             ORDER BY l.created_at_us, l.audit_seq, e.position",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_error("reading lot edges"))?;
        rows.iter().map(edge_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(passport = %id))]
    async fn passport(&self, id: &PassportId) -> Result<Option<Passport>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, id_kind, form, serial, manufacturer, chemistry, unit_type, mass_kg, \
             content_source, state_of_health_pct, country, gbt FROM passports WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error(format!("reading passport {id}")))?
        else {
            return Ok(None);
        };
        let elements =
            sqlx::query("SELECT element, kg FROM passport_elements WHERE passport_id = $1")
                .bind(id.as_str())
                .fetch_all(self.pool())
                .await
                .map_err(db_error(format!("reading the elements of passport {id}")))?;
        let warnings = sqlx::query(
            "SELECT text FROM passport_warnings WHERE passport_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(db_error(format!("reading the warnings of passport {id}")))?;
        let what = format!("passports {id}");
        let masses = element_masses(&elements, &format!("passport_elements {id}"))?;
        let warnings = warnings
            .iter()
            .map(|w| get(w, "text", &format!("passport_warnings {id}")))
            .collect::<Result<Vec<String>, _>>()?;
        passport_from_row(&row, masses, warnings, &what).map(Some)
    }
}

pub(crate) async fn receive_in(
    w: &mut WriteTx,
    passport: &Passport,
    lot: &Lot,
) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    let pid = passport.id();
    if exists(conn, "SELECT 1 FROM passports WHERE id = $1", pid.as_str()).await? {
        return Err(StoreError::Conflict(format!(
            "duplicate passport id {pid} (already imported)"
        )));
    }
    if exists(conn, "SELECT 1 FROM lots WHERE id = $1", lot.id().as_str()).await? {
        return Err(StoreError::Conflict(format!(
            "lot {} already exists",
            lot.id()
        )));
    }
    if let Some(named) = lot.passport()
        && named != pid
    {
        return Err(StoreError::Conflict(format!(
            "lot {} names passport {named} but the received passport is {pid}",
            lot.id()
        )));
    }
    insert_passport(conn, passport, seq).await?;
    insert_lot(conn, lot, seq).await
}

pub(crate) async fn produce_in(
    w: &mut WriteTx,
    lot: &Lot,
    inputs: &[GenealogyEdge],
) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    let id = lot.id();
    if exists(conn, "SELECT 1 FROM lots WHERE id = $1", id.as_str()).await? {
        return Err(StoreError::Conflict(format!("lot {id} already exists")));
    }
    let mut listed = HashSet::new();
    for edge in inputs {
        if &edge.to != id {
            return Err(StoreError::Conflict(format!(
                "edge {} -> {} does not end at the produced lot {id}",
                edge.from, edge.to
            )));
        }
        if !listed.insert(&edge.from) {
            return Err(StoreError::Conflict(format!(
                "input lot {} is listed twice for lot {id}",
                edge.from
            )));
        }
    }
    // The new edges must not close a cycle. Every edge ends at the new lot
    // and lots are only ever added with the edges into them, so no stored
    // lot descends from it: only an edge from the lot itself would.
    if let Some(edge) = inputs.iter().find(|e| &e.from == id) {
        return Err(StoreError::Conflict(format!(
            "edge {} -> {} would make the genealogy cyclic",
            edge.from, edge.to
        )));
    }
    for edge in inputs {
        if !exists(conn, "SELECT 1 FROM lots WHERE id = $1", edge.from.as_str()).await? {
            return Err(StoreError::NotFound(format!("input lot {}", edge.from)));
        }
    }
    // Each input is listed once (refused above), so its one edge is all
    // this production takes from it.
    for edge in inputs {
        let stock = stock_in(conn, &edge.from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("input lot {}", edge.from)))?;
        if !covers(stock, edge.mass.kg()) {
            return Err(StoreError::Conflict(format!(
                "input lot {} has {stock} kg in stock; lot {id} asks for {} kg of it",
                edge.from,
                edge.mass.kg()
            )));
        }
    }
    if let Some(passport) = lot.passport()
        && !exists(
            conn,
            "SELECT 1 FROM passports WHERE id = $1",
            passport.as_str(),
        )
        .await?
    {
        return Err(StoreError::NotFound(format!(
            "passport {passport} (named by lot {id})"
        )));
    }
    insert_lot(conn, lot, seq).await?;
    for (position, edge) in (0_i64..).zip(inputs) {
        sqlx::query(
            "INSERT INTO lot_edges (from_lot, to_lot, mass_kg, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(edge.from.as_str())
        .bind(edge.to.as_str())
        .bind(edge.mass.kg())
        .bind(position)
        .execute(&mut *conn)
        .await
        .map_err(db_error(format!(
            "recording edge {} -> {}",
            edge.from, edge.to
        )))?;
    }
    Ok(())
}

async fn exists(
    conn: &mut AnyConnection,
    sql: &'static str,
    key: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query(sql)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db_error(format!("looking up {key}")))?;
    Ok(row.is_some())
}

async fn insert_passport(
    conn: &mut AnyConnection,
    p: &Passport,
    seq: i64,
) -> Result<(), StoreError> {
    let id = p.id().as_str();
    let context = || format!("recording passport {id}");
    sqlx::query(
        "INSERT INTO passports (id, id_kind, form, serial, manufacturer, chemistry, unit_type, \
         mass_kg, content_source, state_of_health_pct, country, gbt, audit_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(id_kind(p.id()))
    .bind(p.form().name())
    .bind(p.serial())
    .bind(p.manufacturer())
    .bind(p.chemistry().map(Chemistry::name))
    .bind(p.unit_type().name())
    .bind(p.mass().kg())
    .bind(p.content().map(|c| c.source.name()))
    .bind(p.state_of_health_pct())
    .bind(p.country_of_collection().map(CountryCode::as_str))
    .bind(p.gbt().map(GbtCode::as_str))
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    if let Some(content) = p.content() {
        for (element, kg) in content.masses.iter() {
            sqlx::query(
                "INSERT INTO passport_elements (passport_id, element, kg) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(element.symbol())
            .bind(kg.kg())
            .execute(&mut *conn)
            .await
            .map_err(db_error(context()))?;
        }
    }
    for (position, text) in (0_i64..).zip(p.warnings()) {
        sqlx::query(
            "INSERT INTO passport_warnings (passport_id, position, text) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(position)
        .bind(text.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_error(context()))?;
    }
    Ok(())
}

async fn insert_lot(conn: &mut AnyConnection, lot: &Lot, seq: i64) -> Result<(), StoreError> {
    let id = lot.id().as_str();
    let context = || format!("recording lot {id}");
    sqlx::query(
        "INSERT INTO lots (id, kind, mass_kg, content_source, created_at_us, passport_id, country, audit_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(lot.kind().code())
    .bind(lot.mass().kg())
    .bind(lot.content_source().name())
    .bind(micros(lot.created_at()))
    .bind(lot.passport().map(PassportId::as_str))
    .bind(lot.country_of_collection().map(CountryCode::as_str))
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    for (element, kg) in lot.elements().iter() {
        sqlx::query("INSERT INTO lot_elements (lot_id, element, kg) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(element.symbol())
            .bind(kg.kg())
            .execute(&mut *conn)
            .await
            .map_err(db_error(context()))?;
    }
    Ok(())
}

/// The stored name of a passport id's kind, so the same constructor
/// rebuilds it.
fn id_kind(id: &PassportId) -> &'static str {
    match id {
        PassportId::Urn(_) => "urn",
        PassportId::Uuid(_) => "uuid",
        PassportId::Gbt(_) => "gbt",
        PassportId::Uri(_) => "uri",
        PassportId::Plant(_) => "plant",
    }
}

fn passport_id(kind: &str, text: &str) -> Result<PassportId, DomainError> {
    match kind {
        "urn" => PassportId::urn(text),
        "uuid" => PassportId::uuid(text),
        "gbt" => GbtCode::parse(text).map(PassportId::Gbt),
        "uri" => PassportId::uri(text),
        "plant" if !text.is_empty() => Ok(PassportId::Plant(text.to_string())),
        _ => Err(DomainError::Malformed {
            what: "passport id kind",
            value: kind.to_string(),
            why: "expected urn, uuid, gbt or plant with a non-empty id".into(),
        }),
    }
}

fn lot_from_row(row: &AnyRow, elements: ElementMasses, what: &str) -> Result<Lot, StoreError> {
    let what: &dyn std::fmt::Display = &what;
    let id: String = get(row, "id", what)?;
    let kind: String = get(row, "kind", what)?;
    let source: String = get(row, "content_source", what)?;
    let passport: Option<String> = get(row, "passport_id", what)?;
    let passport_kind: Option<String> = get(row, "passport_kind", what)?;
    let country: Option<String> = get(row, "country", what)?;
    let passport = match (passport, passport_kind) {
        (None, _) => None,
        (Some(p), Some(kind)) => Some(passport_id(&kind, &p).map_err(|e| corrupt(what, e))?),
        (Some(p), None) => {
            return Err(StoreError::Corrupt(format!(
                "{what}: passport {p} is not stored"
            )));
        }
    };
    Lot::new(LotFields {
        id: LotId::parse(&id).map_err(|e| corrupt(what, e))?,
        kind: LotKind::parse_code(&kind).map_err(|e| corrupt(what, e))?,
        mass: kilograms(get(row, "mass_kg", what)?, what)?,
        elements,
        content_source: content_source(&source, what)?,
        created_at: time_from_micros(
            get(row, "created_at_us", what)?,
            &format!("{what} created_at_us"),
        )?,
        passport,
        country_of_collection: country
            .map(|c| CountryCode::parse(&c))
            .transpose()
            .map_err(|e| corrupt(what, e))?,
    })
    .map_err(|e| corrupt(what, e))
}

fn passport_from_row(
    row: &AnyRow,
    masses: ElementMasses,
    stored_warnings: Vec<String>,
    what: &str,
) -> Result<Passport, StoreError> {
    let what: &dyn std::fmt::Display = &what;
    let bad = |e: DomainError| corrupt(what, e);
    let id: String = get(row, "id", what)?;
    let kind: String = get(row, "id_kind", what)?;
    let form: String = get(row, "form", what)?;
    let chemistry: Option<String> = get(row, "chemistry", what)?;
    let unit_type: String = get(row, "unit_type", what)?;
    let source: Option<String> = get(row, "content_source", what)?;
    let country: Option<String> = get(row, "country", what)?;
    let gbt: Option<String> = get(row, "gbt", what)?;
    let source = source.map(|s| content_source(&s, what)).transpose()?;
    let fields = PassportFields {
        id: passport_id(&kind, &id).map_err(bad)?,
        form: PassportForm::from_name(&form).ok_or_else(|| {
            StoreError::Corrupt(format!("{what}: unknown passport form '{form}'"))
        })?,
        serial: get(row, "serial", what)?,
        manufacturer: get(row, "manufacturer", what)?,
        chemistry: chemistry
            .map(|c| c.parse::<Chemistry>())
            .transpose()
            .map_err(bad)?,
        unit_type: UnitType::from_name(&unit_type).ok_or_else(|| {
            StoreError::Corrupt(format!("{what}: unknown unit type '{unit_type}'"))
        })?,
        mass: kilograms(get(row, "mass_kg", what)?, what)?,
        // An estimate is recomputed from the chemistry, as at import.
        declared: (source == Some(ContentSource::Declared)).then_some(masses),
        state_of_health_pct: get(row, "state_of_health_pct", what)?,
        country_of_collection: country
            .map(|c| CountryCode::parse(&c))
            .transpose()
            .map_err(bad)?,
        gbt: gbt.map(|g| GbtCode::parse(&g)).transpose().map_err(bad)?,
        warnings: vec![],
    };
    // The constructor appends warnings of its own (no content at all); the
    // stored list already ends with them, so they are passed back without.
    let own = Passport::new(fields.clone()).map_err(bad)?;
    let own = own.warnings();
    let given = match stored_warnings.strip_suffix(own) {
        Some(given) => given.to_vec(),
        None => stored_warnings.clone(),
    };
    let passport = Passport::new(PassportFields {
        warnings: given,
        ..fields
    })
    .map_err(bad)?;
    let rebuilt = passport.content().map(|c| c.source);
    if rebuilt != source {
        return Err(StoreError::Corrupt(format!(
            "{what}: content source {} does not rebuild (got {})",
            source.map_or("none", ContentSource::name),
            rebuilt.map_or("none", ContentSource::name)
        )));
    }
    Ok(passport)
}

fn content_source(name: &str, what: &dyn std::fmt::Display) -> Result<ContentSource, StoreError> {
    ContentSource::from_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: unknown content source '{name}'")))
}

fn edge_from_row(row: &AnyRow) -> Result<GenealogyEdge, StoreError> {
    let from: String = get(row, "from_lot", &"lot_edges")?;
    let to: String = get(row, "to_lot", &"lot_edges")?;
    let what = format!("lot_edges {from} -> {to}");
    let what: &dyn std::fmt::Display = &what;
    Ok(GenealogyEdge {
        from: LotId::parse(&from).map_err(|e| corrupt(what, e))?,
        to: LotId::parse(&to).map_err(|e| corrupt(what, e))?,
        mass: kilograms(get(row, "mass_kg", what)?, what)?,
    })
}
