//! `GET /balance?year=Y` or `?from=&to=` (viewer): the plant's metal
//! balance for a period, reconciled: recovery per element as recorded and
//! reconciled (with its standard deviation), the global chi-square test,
//! suspect readings and instruments, and every node's closure before and
//! after reconciliation.

use crate::routes::{ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use remine_domain::Action;
use remine_mes::{Closure, PlantBalance};
use serde::Deserialize;
use serde_json::{Value, json};

/// The balance route, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/balance", get(balance))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    pub year: Option<i32>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub(crate) fn time(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::BadRequest(format!("{field} '{s}' is not an RFC 3339 time: {e}")))
}

pub(crate) fn period(q: &PeriodQuery) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    match (q.year, &q.from, &q.to) {
        (Some(y), None, None) => {
            let start = |y: i32| {
                Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0)
                    .single()
                    .ok_or_else(|| ApiError::BadRequest(format!("year {y} is out of range")))
            };
            Ok((start(y)?, start(y + 1)?))
        }
        (None, Some(f), Some(t)) => Ok((time("from", f)?, time("to", t)?)),
        _ => Err(ApiError::BadRequest(
            "give either year=YYYY or both from= and to= (RFC 3339)".into(),
        )),
    }
}

fn closure(c: &Option<Closure>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "inKg": c.inflow, "inSigmaKg": c.inflow_sigma,
            "outKg": c.outflow, "outSigmaKg": c.outflow_sigma,
            "stockChangeKg": c.stock_change, "stockChangeSigmaKg": c.stock_change_sigma,
            "imbalanceKg": c.imbalance, "imbalanceSigmaKg": c.imbalance_sigma,
            "closurePercent": c.closure_pct, "closureSigmaPercent": c.closure_sigma_pct,
        }),
    }
}

async fn balance(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let (from, to) = period(&q)?;
    let b = PlantBalance::new(s.store.clone()).period(from, to).await?;
    Ok(Json(json!({
        "from": crate::dto::time(b.from),
        "to": crate::dto::time(b.to),
        "nodes": b.nodes,
        "streams": b.streams,
        "converged": b.converged,
        "iterations": b.iterations,
        "globalTest": {"chiSquare": b.chi_square, "dof": b.dof, "pValue": b.p_value, "passed": b.passed},
        "recovery": b.recovery.iter().map(|r| json!({
            "element": r.element.symbol(),
            "recorded": r.recorded,
            "reconciled": r.reconciled,
            "sigma": r.sigma,
            "inputKg": r.input_kg,
            "outputKg": r.output_kg,
        })).collect::<Vec<_>>(),
        "suspectReadings": b.suspect_readings.iter().map(|x| json!({
            "what": x.what, "instrument": x.instrument, "measured": x.measured,
            "adjustment": x.adjustment, "normalisedAdjustment": x.normalised_adjustment,
        })).collect::<Vec<_>>(),
        "suspectInstruments": b.suspect_instruments.iter().map(|x| json!({
            "instrument": x.instrument, "readings": x.readings,
            "relativeBias": x.relative_bias, "biasSigma": x.bias_sigma,
        })).collect::<Vec<_>>(),
        "closures": b.closures.iter().map(|c| json!({
            "node": &*c.node, "quantity": c.quantity,
            "measured": closure(&c.measured), "reconciled": closure(&c.reconciled),
            "unknown": c.unknown,
        })).collect::<Vec<_>>(),
    })))
}
