//! The genealogy trace routes, and the JSON shape of a trace (the CLI's
//! `remine trace --json` prints the same).
//!
//! - `GET /lots/{id}/trace?direction=backward` (the default): the input
//!   units the lot came from, each with its passport, country and the kg of
//!   every element allocated to it, the lots in between, the sources' total
//!   and the lot's own content, so a client can see that they match;
//! - `GET /lots/{id}/trace?direction=forward`: every lot made from the lot,
//!   with the kg of each element attributed to it, and totals per lot kind;
//! - `?basis=reconciled&year=Y` (or `&from=&to=`, RFC 3339) on either:
//!   the element masses the balance of that period reconciled, instead of
//!   the recorded ones (the period is reconciled first: seconds for a
//!   plant year; lots outside it keep their recorded masses). Every
//!   backward and forward trace says its `basis`, and whether the traced
//!   lot's own masses are reconciled (`lotReconciled`);
//! - `POST /trace/recall` with `{"lots": ["BM-7", ...]}`: every lot made
//!   from the suspects, with the part of it attributable to them.
//!
//! Element masses are objects keyed by element symbol; Ni, Co and Li are
//! always present, other elements when not zero. All routes need the
//! viewer role. Each request traces the genealogy as stored at that moment
//! (the graph is kept between requests until a lot is added).

use crate::balance::PeriodQuery;
use crate::routes::{ApiJson, ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use remine_domain::{
    Action, Allocated, BackwardTrace, Element, ElementKg, ForwardTrace, LotId, RecallImpact,
    TraceLot,
};
use remine_mes::{PlantBalance, Tracer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The trace routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/lots/{id}/trace", get(trace))
        .route("/trace/recall", post(recall))
}

/// Element masses in kg by symbol.
pub type ElementsKg = BTreeMap<&'static str, f64>;

fn elements(e: &ElementKg) -> ElementsKg {
    e.iter()
        .filter(|(el, m)| matches!(el, Element::Ni | Element::Co | Element::Li) || m.kg() > 0.0)
        .map(|(el, m)| (el.symbol(), m.kg()))
        .collect()
}

/// The lot a trace starts from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedLotDto {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub mass_kg: f64,
    /// The lot's element masses, as the trace allocates them.
    pub content_kg: ElementsKg,
}

impl From<&TraceLot> for TracedLotDto {
    fn from(l: &TraceLot) -> Self {
        TracedLotDto {
            id: l.id().to_string(),
            kind: l.kind().code(),
            label: l.kind().label(),
            mass_kg: l.mass().kg(),
            content_kg: elements(l.content()),
        }
    }
}

/// One lot of a trace and what is allocated to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedDto {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub passport: Option<String>,
    pub country: Option<String>,
    /// The lot's own mass.
    pub lot_mass_kg: f64,
    /// Backward: the part of the traced lot's mass from or through this
    /// lot. Forward and recall: the part of this lot's mass attributed to
    /// the traced lot or the suspects.
    pub mass_kg: f64,
    /// `massKg` over the traced lot's mass (backward) or this lot's (forward).
    pub share: f64,
    /// As `massKg`, per element.
    pub allocated_kg: ElementsKg,
}

impl From<&Allocated<'_>> for AllocatedDto {
    fn from(a: &Allocated<'_>) -> Self {
        AllocatedDto {
            id: a.lot.id().to_string(),
            kind: a.lot.kind().code(),
            label: a.lot.kind().label(),
            passport: a.lot.passport().map(|p| p.to_string()),
            country: a.lot.country().map(|c| c.as_str().to_string()),
            lot_mass_kg: a.lot.mass().kg(),
            mass_kg: a.mass.kg(),
            share: a.share.value(),
            allocated_kg: elements(&a.elements),
        }
    }
}

/// A backward trace.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackwardDto {
    /// Always `"backward"`.
    pub direction: &'static str,
    pub lot: TracedLotDto,
    /// The input units (lots without inputs), oldest first.
    pub sources: Vec<AllocatedDto>,
    /// The lots in between, oldest first.
    pub intermediates: Vec<AllocatedDto>,
    /// The sum of the sources' allocations: equals `lot.contentKg`.
    pub total_kg: ElementsKg,
    /// The sum of the sources' masses: equals `lot.massKg`.
    pub total_mass_kg: f64,
}

impl From<&BackwardTrace<'_>> for BackwardDto {
    fn from(t: &BackwardTrace<'_>) -> Self {
        BackwardDto {
            direction: "backward",
            lot: TracedLotDto::from(t.lot),
            sources: t.sources.iter().map(AllocatedDto::from).collect(),
            intermediates: t.intermediates.iter().map(AllocatedDto::from).collect(),
            total_kg: elements(&t.total()),
            total_mass_kg: t.sources.iter().map(|s| s.mass.kg()).sum(),
        }
    }
}

/// The sums of the lots of one kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindTotalDto {
    pub kind: String,
    pub lots: usize,
    pub mass_kg: f64,
    pub allocated_kg: ElementsKg,
}

fn totals_by_kind(lots: &[Allocated<'_>]) -> Vec<KindTotalDto> {
    let mut by_kind: BTreeMap<String, (usize, f64, ElementKg)> = BTreeMap::new();
    for a in lots {
        let entry = by_kind.entry(a.lot.kind().code()).or_default();
        entry.0 += 1;
        entry.1 += a.mass.kg();
        entry.2 = entry.2.plus(&a.elements);
    }
    by_kind
        .into_iter()
        .map(|(kind, (lots, mass, els))| KindTotalDto {
            kind,
            lots,
            mass_kg: mass,
            allocated_kg: elements(&els),
        })
        .collect()
}

/// A forward trace.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardDto {
    /// Always `"forward"`.
    pub direction: &'static str,
    pub lot: TracedLotDto,
    /// Every lot made from the traced lot, in production order.
    pub lots: Vec<AllocatedDto>,
    /// Per lot kind (black mass, leach batches, each product), the sums.
    pub totals: Vec<KindTotalDto>,
}

impl From<&ForwardTrace<'_>> for ForwardDto {
    fn from(t: &ForwardTrace<'_>) -> Self {
        ForwardDto {
            direction: "forward",
            lot: TracedLotDto::from(t.lot),
            lots: t.lots.iter().map(AllocatedDto::from).collect(),
            totals: totals_by_kind(&t.lots),
        }
    }
}

/// The impact of a recall.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallDto {
    pub suspects: Vec<TracedLotDto>,
    /// Every lot made from the suspects, in production order.
    pub lots: Vec<AllocatedDto>,
    /// The product lots among them.
    pub products: Vec<AllocatedDto>,
    pub totals: Vec<KindTotalDto>,
}

impl From<&RecallImpact<'_>> for RecallDto {
    fn from(r: &RecallImpact<'_>) -> Self {
        RecallDto {
            suspects: r.suspects.iter().map(|l| TracedLotDto::from(*l)).collect(),
            lots: r.lots.iter().map(AllocatedDto::from).collect(),
            products: r.products().map(AllocatedDto::from).collect(),
            totals: totals_by_kind(&r.lots),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Direction {
    #[default]
    Backward,
    Forward,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceQuery {
    #[serde(default)]
    direction: Direction,
    /// `recorded` (the default) or `reconciled`, which needs `year` or
    /// `from` and `to`.
    #[serde(default)]
    basis: Basis,
    year: Option<i32>,
    from: Option<String>,
    to: Option<String>,
}

/// Which element masses a trace allocates.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Basis {
    #[default]
    Recorded,
    Reconciled,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallRequest {
    lots: Vec<String>,
}

fn lot_id(s: &str) -> Result<LotId, ApiError> {
    LotId::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn trace(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TraceQuery>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    let id = lot_id(&id)?;
    let (tracer, basis) = match q.basis {
        Basis::Recorded => {
            if q.year.is_some() || q.from.is_some() || q.to.is_some() {
                return Err(ApiError::BadRequest(
                    "year, from and to choose the period of basis=reconciled".into(),
                ));
            }
            let tracer = s.traces.tracer(s.store.as_ref()).await?;
            (tracer, json!({"kind": "recorded"}))
        }
        Basis::Reconciled => {
            let (from, to) = crate::balance::period(&PeriodQuery {
                year: q.year,
                from: q.from,
                to: q.to,
            })?;
            // An unknown lot is refused before seconds of reconciliation.
            if s.store.lot(&id).await?.is_none() {
                return Err(ApiError::NotFound(format!("lot {id}")));
            }
            let (balance, contents) = PlantBalance::new(s.store.clone())
                .period_with_contents(from, to)
                .await?;
            let tracer = Tracer::load_reconciled(s.store.as_ref(), &contents).await?;
            let basis = json!({
                "kind": "reconciled",
                "from": crate::dto::time(from),
                "to": crate::dto::time(to),
                "reconciledLots": contents.len(),
                // The traced lot's own masses: reconciled, or recorded
                // where the period's balance does not hold the lot.
                "lotReconciled": contents.holds(&id),
                "chiSquare": balance.chi_square,
                "dof": balance.dof,
                "passed": balance.passed,
            });
            (Arc::new(tracer), basis)
        }
    };
    let mut body = match q.direction {
        Direction::Backward => serde_json::to_value(BackwardDto::from(&tracer.backward(&id)?)),
        Direction::Forward => serde_json::to_value(ForwardDto::from(&tracer.forward(&id)?)),
    }
    .map_err(|e| ApiError::Internal(format!("trace JSON: {e}")))?;
    if let Some(o) = body.as_object_mut() {
        o.insert("basis".into(), basis);
    }
    Ok(Json(body).into_response())
}

async fn recall(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<RecallRequest>,
) -> Result<Json<RecallDto>, ApiError> {
    auth.require(Action::View)?;
    if req.lots.is_empty() {
        return Err(ApiError::BadRequest(
            "lots: name at least one suspect lot".into(),
        ));
    }
    let suspects = req
        .lots
        .iter()
        .map(|l| lot_id(l))
        .collect::<Result<Vec<_>, _>>()?;
    let tracer = s.traces.tracer(s.store.as_ref()).await?;
    Ok(Json(RecallDto::from(&tracer.recall(&suspects)?)))
}
