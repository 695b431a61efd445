//! Metal accounting: the [`AccountingStore`] port (weighings, lab assays,
//! stock events) and the stock of a lot, which [`LotStore::produce`]
//! also consults so that no lot gives more than it holds.
//!
//! The three tables are append-only: a weighing is recorded once, an assay
//! or a stock event is a new row, and a wrong event is put right by a
//! correction event, never by changing the row. Sequence numbers are
//! assigned inside the audited write transaction, which holds the store's
//! write lock, so they count from 1 without gaps on both backends.
//!
//! [`LotStore::produce`]: remine_domain::ports::LotStore::produce

use crate::db::{Db, WriteTx, db_error};
use crate::rows::{corrupt, get, kilograms};
use async_trait::async_trait;
use remine_domain::ports::{AccountingStore, LotWrite, StoreError};
use remine_domain::{
    Assay, AuditEvent, Element, LotId, MassFraction, MassMethod, MeasuredMass, StockEvent,
    remaining_stock,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::fmt;

/// Absolute slack of the stock checks: rounding of sums of doubles must not
/// refuse a consumption of exactly what is left.
const STOCK_TOLERANCE_KG: f64 = 1e-6;
/// Relative slack of the stock checks, for large stocks.
const STOCK_TOLERANCE_RELATIVE: f64 = 1e-9;

#[async_trait]
impl AccountingStore for Db {
    #[tracing::instrument(skip_all, fields(lot = %lot))]
    async fn record_measurement(
        &self,
        lot: &LotId,
        mass: &MeasuredMass,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = measurement_in(&mut w, lot, mass).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(lot = %lot))]
    async fn measurement(&self, lot: &LotId) -> Result<Option<MeasuredMass>, StoreError> {
        let row = sqlx::query(
            "SELECT wet_kg, moisture, method, instrument, relative_sigma \
             FROM lot_measurements WHERE lot_id = $1",
        )
        .bind(lot.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error(format!("reading the weighing of lot {lot}")))?;
        row.map(|row| measurement_from_row(&row, lot)).transpose()
    }

    #[tracing::instrument(skip_all, fields(lot = %assay.lot(), element = %assay.element()))]
    async fn record_assay(&self, assay: &Assay, audit: AuditEvent) -> Result<i64, StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = assay_in(&mut w, assay).await;
        finish_with(w, outcome, audit).await
    }

    #[tracing::instrument(skip_all, fields(lot = %lot))]
    async fn assays(&self, lot: &LotId) -> Result<Vec<Assay>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, sample, element, fraction, sigma, method, lab \
             FROM lot_assays WHERE lot_id = $1 ORDER BY seq",
        )
        .bind(lot.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(db_error(format!("reading the assays of lot {lot}")))?;
        rows.iter().map(|row| assay_from_row(row, lot)).collect()
    }

    #[tracing::instrument(skip_all, fields(lot = %lot, event = event.name()))]
    async fn record_stock_event(
        &self,
        lot: &LotId,
        event: &StockEvent,
        audit: AuditEvent,
    ) -> Result<i64, StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = stock_event_in(&mut w, lot, event).await;
        finish_with(w, outcome, audit).await
    }

    #[tracing::instrument(skip_all, fields(lot = %lot))]
    async fn stock_events(&self, lot: &LotId) -> Result<Vec<(i64, StockEvent)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, sample, delta_kg, corrects \
             FROM lot_stock_events WHERE lot_id = $1 ORDER BY seq",
        )
        .bind(lot.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(db_error(format!("reading the stock events of lot {lot}")))?;
        rows.iter()
            .map(|row| stock_event_from_row(row, lot))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(writes = writes.len()))]
    async fn record_batch(&self, writes: &[(LotWrite, AuditEvent)]) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        for (n, (write, audit)) in writes.iter().enumerate() {
            let outcome = match write {
                LotWrite::Receive { passport, lot } => {
                    crate::lots::receive_in(&mut w, passport, lot).await
                }
                LotWrite::Produce { lot, inputs } => {
                    crate::lots::produce_in(&mut w, lot, inputs).await
                }
                LotWrite::Measure { lot, mass } => measurement_in(&mut w, lot, mass).await,
                LotWrite::Assay(a) => assay_in(&mut w, a).await.map(drop),
            };
            let sealed = match outcome {
                Ok(()) => w.seal(audit.clone()).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = sealed {
                w.abandon().await;
                return Err(e.within(format!(
                    "write {} of {} ({}), nothing of the batch stored",
                    n + 1,
                    writes.len(),
                    write.describe()
                )));
            }
        }
        w.commit().await
    }

    #[tracing::instrument(skip_all, fields(lot = %lot))]
    async fn stock(&self, lot: &LotId) -> Result<f64, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(db_error(format!("reading the stock of lot {lot}")))?;
        stock_in(&mut conn, lot)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lot {lot}")))
    }
}

/// Commits a write that yields a value (a sequence number) with its audit
/// entry, or rolls it back and returns its error.
async fn finish_with<T>(
    w: WriteTx,
    outcome: Result<T, StoreError>,
    audit: AuditEvent,
) -> Result<T, StoreError> {
    let (done, value) = match outcome {
        Ok(value) => (Ok(()), Some(value)),
        Err(e) => (Err(e), None),
    };
    let entry = w.finish(done, audit).await?;
    value.ok_or_else(|| {
        StoreError::Internal(format!(
            "audit entry {} was committed without the value of its write",
            entry.seq
        ))
    })
}

/// The stock of `lot` as the connection sees it: its mass, less the masses
/// on the genealogy edges out of it, plus its stock events. `None` when
/// the lot is not stored.
pub(crate) async fn stock_in(
    conn: &mut AnyConnection,
    lot: &LotId,
) -> Result<Option<f64>, StoreError> {
    let id = lot.as_str();
    let context = || format!("reading the stock of lot {lot}");
    let Some(row) = sqlx::query("SELECT mass_kg FROM lots WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error(context()))?
    else {
        return Ok(None);
    };
    let what = format!("lots {lot}");
    let made = kilograms(get(&row, "mass_kg", &what)?, &what)?;
    // Summed here rather than in SQL, so both backends add the same doubles
    // the same way and no SUM of no rows needs a typed zero.
    let edges = sqlx::query("SELECT mass_kg FROM lot_edges WHERE from_lot = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(context()))?;
    let edges_what = format!("lot_edges from {lot}");
    let mut consumed = 0.0;
    for row in &edges {
        consumed += get::<f64>(row, "mass_kg", &edges_what)?;
    }
    let events = sqlx::query("SELECT delta_kg FROM lot_stock_events WHERE lot_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(context()))?;
    let events_what = format!("lot_stock_events of {lot}");
    let mut events_kg = 0.0;
    for row in &events {
        events_kg += get::<f64>(row, "delta_kg", &events_what)?;
    }
    let consumed = kilograms(consumed, &edges_what)?;
    Ok(Some(remaining_stock(made, consumed, events_kg)))
}

/// How far below zero rounding may take a stock of `stock` kg before a
/// check refuses it.
fn tolerance(stock: f64) -> f64 {
    (stock.abs() * STOCK_TOLERANCE_RELATIVE).max(STOCK_TOLERANCE_KG)
}

/// Whether taking `asked` kg from a stock of `stock` kg leaves it at or
/// above zero, within rounding.
pub(crate) fn covers(stock: f64, asked: f64) -> bool {
    stock - asked >= -tolerance(stock)
}

async fn lot_exists(conn: &mut AnyConnection, lot: &LotId) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM lots WHERE id = $1")
        .bind(lot.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db_error(format!("looking up lot {lot}")))?;
    Ok(row.is_some())
}

/// The next sequence number of a table (1 for the first row), from `sql`
/// selecting its `MAX(seq) AS last`. The caller holds the write lock, so no
/// other writer takes the same number.
async fn next_seq(
    conn: &mut AnyConnection,
    sql: &'static str,
    table: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(sql)
        .fetch_one(conn)
        .await
        .map_err(db_error(format!("numbering a new row of {table}")))?;
    let last: Option<i64> = get(&row, "last", &table)?;
    Ok(last.unwrap_or(0) + 1)
}

async fn measurement_in(
    w: &mut WriteTx,
    lot: &LotId,
    mass: &MeasuredMass,
) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    if !lot_exists(conn, lot).await? {
        return Err(StoreError::NotFound(format!("lot {lot} (to weigh)")));
    }
    let existing = sqlx::query("SELECT method FROM lot_measurements WHERE lot_id = $1")
        .bind(lot.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error(format!("looking up the weighing of lot {lot}")))?;
    if existing.is_some() {
        return Err(StoreError::Conflict(format!(
            "lot {lot} is weighed already; a different mass is recorded as a stock event"
        )));
    }
    sqlx::query(
        "INSERT INTO lot_measurements (lot_id, wet_kg, moisture, method, instrument, \
         relative_sigma, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(lot.as_str())
    .bind(mass.wet().kg())
    .bind(mass.moisture().value())
    .bind(mass.method().name())
    .bind(mass.instrument())
    .bind(mass.relative_sigma())
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!("recording the weighing of lot {lot}")))?;
    Ok(())
}

async fn assay_in(w: &mut WriteTx, assay: &Assay) -> Result<i64, StoreError> {
    let audit_seq = w.seq();
    let conn = w.conn();
    let lot = assay.lot();
    if !lot_exists(conn, lot).await? {
        return Err(StoreError::NotFound(format!(
            "lot {lot} (of the assay of sample {})",
            assay.sample()
        )));
    }
    let seq = next_seq(
        conn,
        "SELECT MAX(seq) AS last FROM lot_assays",
        "lot_assays",
    )
    .await?;
    sqlx::query(
        "INSERT INTO lot_assays (seq, lot_id, sample, element, fraction, sigma, method, lab, \
         audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(lot.as_str())
    .bind(assay.sample())
    .bind(assay.element().symbol())
    .bind(assay.fraction().value())
    .bind(assay.sigma())
    .bind(assay.method())
    .bind(assay.lab())
    .bind(audit_seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!(
        "recording the {} assay of sample {} of lot {lot}",
        assay.element().symbol(),
        assay.sample()
    )))?;
    Ok(seq)
}

async fn stock_event_in(
    w: &mut WriteTx,
    lot: &LotId,
    event: &StockEvent,
) -> Result<i64, StoreError> {
    event
        .check()
        .map_err(|e| StoreError::Conflict(format!("{} for lot {lot}: {e}", event.name())))?;
    let audit_seq = w.seq();
    let conn = w.conn();
    let Some(stock) = stock_in(conn, lot).await? else {
        return Err(StoreError::NotFound(format!(
            "lot {lot} (of a {} event)",
            event.name()
        )));
    };
    if let StockEvent::Correction { corrects, .. } = event {
        let owner = sqlx::query("SELECT lot_id FROM lot_stock_events WHERE seq = $1")
            .bind(*corrects)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error(format!("looking up stock event {corrects}")))?;
        let Some(owner) = owner else {
            return Err(StoreError::NotFound(format!(
                "stock event {corrects} (corrected for lot {lot})"
            )));
        };
        let owner: String = get(&owner, "lot_id", &format!("lot_stock_events {corrects}"))?;
        if owner != lot.as_str() {
            return Err(StoreError::Conflict(format!(
                "stock event {corrects} belongs to lot {owner}, not {lot}; \
                 a correction must be recorded against the event's own lot"
            )));
        }
    }
    let change = event.stock_change_kg();
    if !covers(stock, -change) {
        return Err(StoreError::Conflict(format!(
            "lot {lot} has {stock} kg in stock; {} would take it below zero",
            describe(event)
        )));
    }
    let (sample, corrects) = match event {
        StockEvent::Sample { sample, .. } => (Some(sample.as_str()), None),
        StockEvent::Adjustment { .. } => (None, None),
        StockEvent::Correction { corrects, .. } => (None, Some(*corrects)),
    };
    let seq = next_seq(
        conn,
        "SELECT MAX(seq) AS last FROM lot_stock_events",
        "lot_stock_events",
    )
    .await?;
    sqlx::query(
        "INSERT INTO lot_stock_events (seq, lot_id, kind, sample, delta_kg, corrects, audit_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(lot.as_str())
    .bind(event.name())
    .bind(sample)
    .bind(change)
    .bind(corrects)
    .bind(audit_seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!(
        "recording a {} event of lot {lot}",
        event.name()
    )))?;
    Ok(seq)
}

/// The event in words, for a refusal: "a sample of 20 kg".
fn describe(event: &StockEvent) -> String {
    match event {
        StockEvent::Sample { mass, .. } => format!("a sample of {} kg", mass.kg()),
        StockEvent::Adjustment { delta_kg } => format!("a stock adjustment of {delta_kg} kg"),
        StockEvent::Correction { corrects, delta_kg } => {
            format!("a correction of {delta_kg} kg to stock event {corrects}")
        }
    }
}

fn measurement_from_row(row: &AnyRow, lot: &LotId) -> Result<MeasuredMass, StoreError> {
    let what = format!("lot_measurements {lot}");
    let what: &dyn fmt::Display = &what;
    let method: String = get(row, "method", what)?;
    let instrument: String = get(row, "instrument", what)?;
    MeasuredMass::new(
        kilograms(get(row, "wet_kg", what)?, what)?,
        MassFraction::new(get(row, "moisture", what)?).map_err(|e| corrupt(what, e))?,
        MassMethod::parse(&method).map_err(|e| corrupt(what, e))?,
        &instrument,
        Some(get(row, "relative_sigma", what)?),
    )
    .map_err(|e| corrupt(what, e))
}

fn assay_from_row(row: &AnyRow, lot: &LotId) -> Result<Assay, StoreError> {
    let seq: i64 = get(row, "seq", &"lot_assays")?;
    let what = format!("lot_assays {seq}");
    let what: &dyn fmt::Display = &what;
    let sample: String = get(row, "sample", what)?;
    let symbol: String = get(row, "element", what)?;
    let method: String = get(row, "method", what)?;
    let lab: String = get(row, "lab", what)?;
    let element: Element = symbol.parse().map_err(|e| corrupt(what, e))?;
    Assay::new(
        lot.clone(),
        &sample,
        element,
        MassFraction::new(get(row, "fraction", what)?).map_err(|e| corrupt(what, e))?,
        get(row, "sigma", what)?,
        &method,
        &lab,
    )
    .map_err(|e| corrupt(what, e))
}

fn stock_event_from_row(row: &AnyRow, lot: &LotId) -> Result<(i64, StockEvent), StoreError> {
    let seq: i64 = get(row, "seq", &format!("lot_stock_events of {lot}"))?;
    let what = format!("lot_stock_events {seq}");
    let what: &dyn fmt::Display = &what;
    let kind: String = get(row, "kind", what)?;
    let sample: Option<String> = get(row, "sample", what)?;
    let delta_kg: f64 = get(row, "delta_kg", what)?;
    let corrects: Option<i64> = get(row, "corrects", what)?;
    let event = match (kind.as_str(), sample, corrects) {
        ("sample", Some(sample), None) => StockEvent::Sample {
            sample,
            mass: kilograms(-delta_kg, what)?,
        },
        ("stock_adjustment", None, None) => StockEvent::Adjustment { delta_kg },
        ("correction", None, Some(corrects)) => StockEvent::Correction { corrects, delta_kg },
        (kind, sample, corrects) => {
            return Err(StoreError::Corrupt(format!(
                "{what}: a '{kind}' event with sample {sample:?} and corrects {corrects:?} \
                 is not a sample (with a sample name), stock_adjustment or correction \
                 (of an event)"
            )));
        }
    };
    event.check().map_err(|e| corrupt(what, e))?;
    Ok((seq, event))
}

#[cfg(test)]
mod tests {
    use super::covers;

    fn check(stock: f64, asked: f64, expected: bool) {
        assert_eq!(covers(stock, asked), expected, "{asked} kg of {stock} kg");
    }

    #[test]
    fn a_stock_covers_what_it_holds_within_rounding_and_no_more() {
        check(12.5, 12.5, true);
        check(12.5, 12.5 + 1e-7, true);
        check(12.5, 12.5 + 1e-5, false);
        check(12.5, 20.0, false);
        check(0.1 + 0.2, 0.3, true);
        check(1e7, 1e7 + 5e-3, true);
        check(1e7, 1e7 + 0.1, false);
        check(0.0, -5.0, true);
    }
}
