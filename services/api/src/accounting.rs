//! The metal-accounting routes of a lot: its weighing, lab assays (and
//! their inverse-variance combination), stock events and stock.
//!
//! `GET /lots/{id}/accounting` (viewer); `POST /lots/{id}/measurement`,
//! `POST /lots/{id}/assays` and `POST /lots/{id}/stock-events` (operator:
//! the role that records lot events). Values are parsed at this edge into
//! domain types; a bad one is a 400 naming the field.

use crate::routes::{ApiJson, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use remine_domain::{
    Action, Assay, Element, Kilograms, LotId, LotKind, MassFraction, MassMethod, MeasuredMass,
    Step, StockEvent,
};
use remine_mes::{Accounting, LotAccounting};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The accounting routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/lots/{id}/accounting", get(view))
        .route("/lots/{id}/measurement", post(weigh))
        .route("/lots/{id}/assays", post(assay))
        .route("/lots/{id}/stock-events", post(stock_event))
        .route("/lots/{id}/split", post(split))
        .route("/lots/blend", post(blend))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortionDto {
    /// The new lot's id (split) or the lot a portion is taken from (blend).
    pub lot: String,
    pub mass_kg: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitDto {
    pub parts: Vec<PortionDto>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlendDto {
    /// The new lot's id and kind (a lot kind code, as `GET /lots` shows).
    pub id: String,
    pub kind: String,
    pub portions: Vec<PortionDto>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasurementDto {
    pub wet_kg: f64,
    #[serde(default)]
    pub moisture_percent: f64,
    pub method: String,
    pub instrument: String,
    pub relative_sigma: Option<f64>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssayDto {
    pub sample: String,
    /// Element symbol: Ni, Co, Li, Mn, Cu, Al...
    pub element: String,
    /// Mass fraction in percent.
    pub percent: f64,
    /// Standard deviation in percentage points.
    pub sigma_percent: f64,
    pub method: String,
    pub lab: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StockEventDto {
    /// "sample", "adjustment" or "correction".
    pub kind: String,
    pub sample: Option<String>,
    /// A sample's mass.
    pub mass_kg: Option<f64>,
    /// An adjustment's or correction's change of stock (negative: less).
    pub delta_kg: Option<f64>,
    /// The event a correction corrects.
    pub corrects: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub lot: String,
    pub seq: Option<i64>,
}

fn bad(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{field}: {e}"))
}

fn lot_id(s: &str) -> Result<LotId, ApiError> {
    LotId::parse(s).map_err(|e| bad("lot", e))
}

fn accounting(s: &AppState) -> Accounting {
    Accounting::new(s.store.clone())
}

async fn view(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let a = accounting(&s).lot(&lot_id(&id)?).await?;
    Ok(Json(view_json(&a)))
}

fn view_json(a: &LotAccounting) -> Value {
    json!({
        "lot": a.lot.id().as_str(),
        "kind": a.lot.kind().label(),
        "massKg": a.lot.mass().kg(),
        "stockKg": a.stock_kg,
        "measurement": a.measurement.as_ref().map(|m| {
            let dry = m.dry_mass();
            json!({
                "wetKg": m.wet().kg(),
                "moisturePercent": m.moisture().percent(),
                "method": m.method().name(),
                "instrument": m.instrument(),
                "relativeSigma": m.relative_sigma(),
                "dryKg": dry.value().kg(),
                "drySigmaKg": dry.sigma().kg(),
            })
        }),
        "assays": a.assays.iter().map(|x| json!({
            "sample": x.sample(),
            "element": x.element().symbol(),
            "percent": x.fraction().percent(),
            "sigmaPercent": x.sigma() * 100.0,
            "method": x.method(),
            "lab": x.lab(),
        })).collect::<Vec<_>>(),
        "combined": a.combined.iter().map(|c| json!({
            "element": c.element.symbol(),
            "percent": c.fraction.value().percent(),
            "sigmaPercent": c.fraction.sigma().percent(),
            "assays": c.count,
        })).collect::<Vec<_>>(),
        "events": a.events.iter().map(|(seq, e)| {
            let mut v = json!({"seq": seq, "kind": e.name(), "stockChangeKg": e.stock_change_kg()});
            match e {
                StockEvent::Sample { sample, .. } => v["sample"] = json!(sample),
                StockEvent::Correction { corrects, .. } => v["corrects"] = json!(corrects),
                StockEvent::Adjustment { .. } => {}
            }
            v
        }).collect::<Vec<_>>(),
    })
}

async fn weigh(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MeasurementDto>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let lot = lot_id(&id)?;
    let mass = MeasuredMass::new(
        Kilograms::new(req.wet_kg).map_err(|e| bad("wetKg", e))?,
        MassFraction::from_percent(req.moisture_percent).map_err(|e| bad("moisturePercent", e))?,
        MassMethod::parse(&req.method).map_err(|e| bad("method", e))?,
        &req.instrument,
        req.relative_sigma,
    )
    .map_err(|e| bad("measurement", e))?;
    accounting(&s)
        .record_measurement(&auth.actor, &lot, &mass, &req.reason)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            lot: lot.to_string(),
            seq: None,
        }),
    ))
}

async fn assay(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssayDto>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let lot = lot_id(&id)?;
    let element = Element::ALL
        .into_iter()
        .find(|e| e.symbol().eq_ignore_ascii_case(req.element.trim()))
        .ok_or_else(|| {
            bad(
                "element",
                format!("'{}' is not an element remine accounts for", req.element),
            )
        })?;
    let assay = Assay::new(
        lot.clone(),
        &req.sample,
        element,
        MassFraction::from_percent(req.percent).map_err(|e| bad("percent", e))?,
        req.sigma_percent / 100.0,
        &req.method,
        &req.lab,
    )
    .map_err(|e| bad("assay", e))?;
    let seq = accounting(&s)
        .record_assay(&auth.actor, &assay, &req.reason)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            lot: lot.to_string(),
            seq: Some(seq),
        }),
    ))
}

async fn stock_event(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StockEventDto>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let lot = lot_id(&id)?;
    let need = |v: Option<f64>, field: &str| {
        v.ok_or_else(|| bad(field, format!("required for a {}", req.kind)))
    };
    let event = match req.kind.as_str() {
        "sample" => StockEvent::Sample {
            sample: req.sample.clone().unwrap_or_default(),
            mass: Kilograms::new(need(req.mass_kg, "massKg")?).map_err(|e| bad("massKg", e))?,
        },
        "adjustment" => StockEvent::Adjustment {
            delta_kg: need(req.delta_kg, "deltaKg")?,
        },
        "correction" => StockEvent::Correction {
            corrects: req
                .corrects
                .ok_or_else(|| bad("corrects", "required for a correction"))?,
            delta_kg: need(req.delta_kg, "deltaKg")?,
        },
        other => {
            return Err(bad(
                "kind",
                format!("'{other}': expected sample, adjustment or correction"),
            ));
        }
    };
    let seq = accounting(&s)
        .record_stock_event(&auth.actor, &lot, &event, &req.reason)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            lot: lot.to_string(),
            seq: Some(seq),
        }),
    ))
}

/// Parses `[{lot, massKg}]`, naming the entry at fault.
fn portions(list: &[PortionDto], field: &str) -> Result<Vec<(LotId, Kilograms)>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let id = LotId::parse(&p.lot).map_err(|e| bad(&format!("{field}[{i}].lot"), e))?;
            let mass =
                Kilograms::new(p.mass_kg).map_err(|e| bad(&format!("{field}[{i}].massKg"), e))?;
            Ok((id, mass))
        })
        .collect()
}

/// The lots a step made, as `GET /lots/{id}` shows them.
fn made(step: &Step) -> Json<Value> {
    let lots: Vec<Value> = step
        .outputs()
        .iter()
        .map(|(lot, edges)| {
            json!({
                "lot": crate::dto::LotDto::from(lot),
                "inputs": edges.iter().map(|e| json!({"lot": e.from.as_str(), "massKg": e.mass.kg()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "step": step.kind().name(), "lots": lots }))
}

/// `POST /lots/{id}/split` (operator, a reason): the parts are new lots of
/// the same kind, each with its share of the lot's element masses.
async fn split(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SplitDto>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let source = lot_id(&id)?;
    let parts = portions(&req.parts, "parts")?;
    let step = accounting(&s)
        .split(&auth.actor, &source, &parts, &req.reason)
        .await?;
    Ok((StatusCode::CREATED, made(&step)))
}

/// `POST /lots/blend` (operator, a reason): a new lot from portions of
/// others, carrying the sum of their element masses.
async fn blend(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<BlendDto>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = LotId::parse(&req.id).map_err(|e| bad("id", e))?;
    let kind = LotKind::parse_code(&req.kind).map_err(|e| bad("kind", e))?;
    let portions = portions(&req.portions, "portions")?;
    let step = accounting(&s)
        .blend(&auth.actor, &id, kind, &portions, &req.reason)
        .await?;
    Ok((StatusCode::CREATED, made(&step)))
}
