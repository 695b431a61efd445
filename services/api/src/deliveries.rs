//! Deliveries of documents to the traceability platforms:
//! - `GET /reports/deliveries?state=parked&limit=N` (viewer): counts per
//!   state and the deliveries in one state (default: parked, the ones a
//!   person must look at), each with its attempts, next attempt and last
//!   error;
//! - `POST /reports/deliveries/{document}/{target}/requeue` (supervisor, a
//!   reason): a parked delivery back in the queue, audited;
//! - `GET /reports/cn-deadlines?today=&holidays=&makeUpDays=` (viewer):
//!   the Chinese platform's overdue uploads;
//! - `GET /outbox/documents/{id}` (viewer or an API token): a document as
//!   stored and sent, with its content type (the data address a Catena-X
//!   asset points at).

use crate::routes::{ApiJson, ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use remine_domain::Action;
use remine_domain::outbox::{ConnectorName, Delivery, DeliveryState, DocumentId, StateName};
use remine_mes::Deliveries;
use serde::Deserialize;
use serde_json::{Value, json};

/// The delivery routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/deliveries", get(list))
        .route(
            "/reports/deliveries/{document}/{target}/requeue",
            post(requeue),
        )
        .route("/outbox/documents/{id}", get(document))
        .route("/reports/cn-deadlines", get(cn_deadlines))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeadlineQuery {
    /// The day to judge at (default: today, UTC).
    pub today: Option<String>,
    /// Public holidays, comma-separated YYYY-MM-DD.
    pub holidays: Option<String>,
    /// Weekend days worked instead (make-up days), comma-separated.
    pub make_up_days: Option<String>,
}

fn dates(field: &str, list: &Option<String>) -> Result<Vec<chrono::NaiveDate>, ApiError> {
    list.iter()
        .flat_map(|l| l.split(','))
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|e| {
                ApiError::BadRequest(format!("{field}: '{d}' is not a YYYY-MM-DD date: {e}"))
            })
        })
        .collect()
}

/// `GET /reports/cn-deadlines` (viewer): the uploads to the Chinese
/// national traceability platform that are overdue (30 working days after
/// receipt into stock and after finishing recycling).
async fn cn_deadlines(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<DeadlineQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let today = match &q.today {
        None => chrono::Utc::now().date_naive(),
        Some(_) => *dates("today", &q.today)?
            .first()
            .ok_or_else(|| ApiError::BadRequest("today: empty".into()))?,
    };
    let calendar = remine_domain::deadlines::WorkingCalendar::new(
        dates("holidays", &q.holidays)?,
        dates("makeUpDays", &q.make_up_days)?,
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (obligations, overdue) = deliveries(&s).overdue_cn_uploads(today, &calendar).await?;
    Ok(Json(json!({
        "today": today.to_string(),
        "obligations": obligations,
        "overdue": overdue.iter().map(|o| json!({
            "lot": o.lot.as_str(),
            "trigger": o.trigger.name(),
            "due": o.due.to_string(),
            "workingDaysLate": o.working_days_late,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequeueDto {
    #[serde(default)]
    pub reason: String,
}

fn deliveries(s: &AppState) -> Deliveries {
    Deliveries::new(s.store.clone())
}

fn delivery_json(d: &Delivery) -> Value {
    let mut v = json!({
        "document": d.key.document.as_str(),
        "target": d.key.target.as_str(),
        "idempotencyKey": d.idempotency_key.as_str(),
        "state": d.state.name().name(),
        "attempts": d.attempts,
        "nextAttemptAt": crate::dto::time(d.next_attempt_at),
        "lastError": d.last_error,
    });
    match &d.state {
        DeliveryState::Delivered { at, receipt } => {
            v["deliveredAt"] = json!(crate::dto::time(*at));
            v["receipt"] = json!(receipt);
        }
        DeliveryState::Parked { at, reason, status } => {
            v["parkedAt"] = json!(crate::dto::time(*at));
            v["reason"] = json!(reason);
            v["httpStatus"] = json!(status);
        }
        DeliveryState::InFlight {
            worker,
            lease_until,
        } => {
            v["worker"] = json!(worker);
            v["leaseUntil"] = json!(crate::dto::time(*lease_until));
        }
        DeliveryState::Pending => {}
    }
    v
}

async fn list(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let state = match q.state.as_deref() {
        None => StateName::Parked,
        Some(t) => StateName::parse(t).map_err(|e| ApiError::BadRequest(format!("state: {e}")))?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let d = deliveries(&s);
    let counts = d.counts().await?;
    let list = d.list(state, limit).await?;
    let counts: serde_json::Map<String, Value> = StateName::ALL
        .into_iter()
        .map(|n| (n.name().to_string(), json!(counts.get(n))))
        .collect();
    Ok(Json(json!({
        "counts": counts,
        "state": state.name(),
        "deliveries": list.iter().map(delivery_json).collect::<Vec<_>>(),
    })))
}

async fn requeue(
    State(s): State<AppState>,
    auth: Authenticated,
    Path((document, target)): Path<(String, String)>,
    ApiJson(req): ApiJson<RequeueDto>,
) -> Result<Json<Value>, ApiError> {
    let document =
        DocumentId::parse(&document).map_err(|e| ApiError::BadRequest(format!("document: {e}")))?;
    let target =
        ConnectorName::parse(&target).map_err(|e| ApiError::BadRequest(format!("target: {e}")))?;
    deliveries(&s)
        .requeue(&auth.actor, &document, &target, &req.reason)
        .await?;
    Ok(Json(json!({
        "document": document.as_str(), "target": target.as_str(), "state": "pending",
    })))
}

async fn document(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    let id = DocumentId::parse(&id).map_err(|e| ApiError::BadRequest(format!("document: {e}")))?;
    let doc = deliveries(&s).document(&id).await?;
    let content_type = HeaderValue::from_str(doc.content_type().as_str())
        .map_err(|e| ApiError::Internal(format!("document {id}: content type: {e}")))?;
    Ok((
        [(CONTENT_TYPE, content_type)],
        doc.content().as_bytes().to_vec(),
    )
        .into_response())
}
