//! The line-control routes: units with their states and permissives,
//! commands to units, and the alarms (active list, history with CSV
//! export, acknowledge, shelve, unshelve, out of service, and the stream of
//! alarm events).
//!
//! A unit is named by its path in one URL segment, with the slash encoded
//! (`Discharge%2FStation1`) or written as a dot (`Discharge.Station1`).
//! Refusals (wrong state, a false permissive, a role, a shelve beyond the
//! maximum) answer 403 with the reason; an unknown unit or alarm 404; both
//! are audited by the services.

use crate::dto::time;
use crate::routes::{ApiJson, ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use remine_domain::ports::{AlarmHappening, AlarmQuery, AlarmRecord};
use remine_domain::{
    Action, AlarmStatus, AlarmTransition, Chemistry, Evaluation, LotId, Priority, UnitCommand,
};
use remine_mes::{AlarmView, Alarms, LineControl, Shelve, StartBatch, UnitRequest, UnitView};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::convert::Infallible;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

/// The line-control routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/units", get(units))
        .route("/units/{unit}/commands", post(command))
        .route("/alarms", get(alarms))
        .route("/alarms/history", get(history))
        .route("/alarms/stream", get(stream))
        .route("/alarms/ack", post(acknowledge))
        .route("/alarms/{id}/shelve", post(shelve))
        .route("/alarms/{id}/unshelve", post(unshelve))
        .route("/alarms/{id}/service", post(service))
}

fn control(s: &AppState) -> Result<&LineControl, ApiError> {
    s.control
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("line control is not configured".into()))
}

fn alarm_system(s: &AppState) -> Result<&Alarms, ApiError> {
    s.alarms
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("alarms are not configured".into()))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckDto {
    pub description: String,
    pub holds: bool,
    pub value: Option<f64>,
    pub why: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissiveDto {
    pub id: String,
    pub command: String,
    pub permitted: bool,
    pub checks: Vec<CheckDto>,
}

fn permissive_dto(command: UnitCommand, e: &Evaluation) -> PermissiveDto {
    PermissiveDto {
        id: e.permissive.clone(),
        command: command.name().into(),
        permitted: e.permitted,
        checks: e
            .checks
            .iter()
            .map(|c| CheckDto {
                description: c.description.clone(),
                holds: c.holds,
                value: c.value.filter(|v| v.is_finite()),
                why: c.why.clone(),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitDto {
    pub path: String,
    pub area: String,
    pub state: Option<String>,
    pub quality: String,
    pub allowed: Vec<String>,
    pub permissives: Vec<PermissiveDto>,
}

impl From<&UnitView> for UnitDto {
    fn from(u: &UnitView) -> Self {
        UnitDto {
            path: u.path.clone(),
            area: u.area.clone(),
            state: u.state.map(|s| s.name().into()),
            quality: u.quality.to_string(),
            allowed: u.allowed.iter().map(|c| c.name().into()).collect(),
            permissives: u
                .permissives
                .iter()
                .map(|(c, e)| permissive_dto(*c, e))
                .collect(),
        }
    }
}

async fn units(
    State(s): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<UnitDto>>, ApiError> {
    auth.require(Action::View)?;
    let units = control(&s)?.units().await;
    Ok(Json(units.iter().map(UnitDto::from).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    pub command: String,
    #[serde(default)]
    pub reason: String,
    pub chemistry: Option<String>,
    pub lot: Option<String>,
}

async fn command(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(unit): Path<String>,
    ApiJson(req): ApiJson<CommandRequest>,
) -> Result<Json<Value>, ApiError> {
    let control = control(&s)?;
    let cmd = UnitCommand::from_name(req.command.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "command '{}' is not one of start, hold, restart, stop, abort, reset",
            req.command
        ))
    })?;
    let batch = match (req.chemistry, req.lot) {
        (None, None) => None,
        (Some(c), Some(l)) => Some(StartBatch {
            chemistry: c
                .parse::<Chemistry>()
                .map_err(|e| ApiError::BadRequest(format!("chemistry: {e}")))?,
            lot: LotId::parse(&l).map_err(|e| ApiError::BadRequest(format!("lot: {e}")))?,
        }),
        _ => {
            return Err(ApiError::BadRequest(
                "a start takes both chemistry and lot".into(),
            ));
        }
    };
    let out = control
        .command(
            &auth.actor,
            UnitRequest {
                unit: unit.replace('.', "/"),
                command: cmd,
                reason: req.reason,
                batch,
            },
        )
        .await?;
    Ok(Json(json!({
        "unit": out.unit,
        "command": out.command.name(),
        "from": out.from.name(),
        "to": out.to.name(),
        "auditSeq": out.audit_seq,
    })))
}

/// A status on the wire: its name, and a timed shelve's end.
fn status_json(s: &AlarmStatus) -> Value {
    match s {
        AlarmStatus::Shelved { until } => {
            json!({ "status": s.name(), "until": until.map(time) })
        }
        other => json!({ "status": other.name() }),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDto {
    pub id: String,
    pub description: String,
    pub tag: String,
    pub kind: String,
    pub priority: String,
    pub area: String,
    pub unit: Option<String>,
    pub status: String,
    pub shelved_until: Option<String>,
    pub condition_active: bool,
    pub value: Option<f64>,
    pub since: Option<String>,
}

impl From<&AlarmView> for AlarmDto {
    fn from(a: &AlarmView) -> Self {
        AlarmDto {
            id: a.id.clone(),
            description: a.description.clone(),
            tag: a.tag.clone(),
            kind: a.kind.into(),
            priority: a.priority.name().into(),
            area: a.area.clone(),
            unit: a.unit.clone(),
            status: a.status.name().into(),
            shelved_until: match a.status {
                AlarmStatus::Shelved { until } => until.map(time),
                _ => None,
            },
            condition_active: a.condition_active,
            value: a.value.filter(|v| v.is_finite()),
            since: a.since.map(time),
        }
    }
}

/// `GET /alarms`: the active and unacknowledged alarms (most urgent
/// first), the shelved and out-of-service ones, and the flooding areas.
async fn alarms(State(s): State<AppState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let a = alarm_system(&s)?;
    let all = a.list().await;
    let pick = |f: fn(&AlarmStatus) -> bool| -> Vec<AlarmDto> {
        all.iter()
            .filter(|v| f(&v.status))
            .map(AlarmDto::from)
            .collect()
    };
    let active: Vec<AlarmDto> = a.active().await.iter().map(AlarmDto::from).collect();
    let floods: Vec<Value> = a
        .flooding()
        .await
        .into_iter()
        .map(|(area, n)| json!({ "area": area, "activations": n }))
        .collect();
    Ok(Json(json!({
        "active": active,
        "shelved": pick(|s| matches!(s, AlarmStatus::Shelved { .. })),
        "outOfService": pick(|s| *s == AlarmStatus::OutOfService),
        "suppressedByDesign": pick(|s| *s == AlarmStatus::SuppressedByDesign).len(),
        "floods": floods,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    alarm: Option<String>,
    area: Option<String>,
    priority: Option<String>,
    limit: Option<u32>,
    format: Option<String>,
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "{field} '{s}' is not an RFC 3339 time (2026-03-01T08:00:00Z): {e}"
            ))
        })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryDto {
    pub seq: i64,
    pub at: String,
    pub alarm: String,
    pub area: String,
    pub priority: Option<String>,
    pub event: String,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub count: Option<u32>,
    pub value: Option<f64>,
    pub user: Option<String>,
    pub reason: Option<String>,
}

fn history_dto(seq: i64, r: &AlarmRecord) -> HistoryDto {
    let (event, from, to, count) = match &r.happening {
        AlarmHappening::Transition { from, to } => (
            "transition",
            Some(status_json(from)),
            Some(status_json(to)),
            None,
        ),
        AlarmHappening::FloodStarted { count } => ("flood_started", None, None, Some(*count)),
        AlarmHappening::FloodEnded { count } => ("flood_ended", None, None, Some(*count)),
    };
    HistoryDto {
        seq,
        at: time(r.at),
        alarm: r.alarm.clone(),
        area: r.area.clone(),
        priority: r.priority.map(|p| p.name().into()),
        event: event.into(),
        from,
        to,
        count,
        value: r.value.filter(|v| v.is_finite()),
        user: r.by.as_ref().map(|(u, _)| u.to_string()),
        reason: r.by.as_ref().map(|(_, w)| w.clone()),
    }
}

/// `GET /alarms/history?from&to&alarm&area&priority&limit&format=csv`:
/// `priority` selects that priority and above; at most `limit` (default
/// 1000, at most 100000) of the newest entries, oldest first.
async fn history(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    let a = alarm_system(&s)?;
    let query = AlarmQuery {
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        alarm: q.alarm,
        area: q.area,
        min_priority: q
            .priority
            .as_deref()
            .map(Priority::parse)
            .transpose()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        limit: q.limit.unwrap_or(1000).clamp(1, 100_000),
    };
    let entries = a.history(&query).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(
            entries
                .iter()
                .map(|(seq, r)| history_dto(*seq, r))
                .collect::<Vec<_>>(),
        )
        .into_response()),
        Some("csv") => Ok((
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"alarm-history.csv\""),
                ),
            ],
            remine_mes::history_csv(&entries),
        )
            .into_response()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format '{other}' is not json or csv"
        ))),
    }
}

/// `GET /alarms/stream`: every history entry as it is appended (event
/// `alarm`), as server-sent events; `lagged` when the client fell behind.
/// (`GET /stream?alarms=true` carries the same events beside the live
/// values, so a browser tab needs one connection.)
async fn stream(
    State(s): State<AppState>,
    auth: Authenticated,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    auth.require(Action::View)?;
    let events = alarm_events(alarm_system(&s)?).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The alarm history as it is appended, as server-sent events: `alarm`
/// with the entry, `lagged` when the receiver fell behind (a client then
/// reads `GET /alarms` again).
pub(crate) fn alarm_events(alarms: &Alarms) -> impl Stream<Item = Event> + use<> {
    BroadcastStream::new(alarms.subscribe()).map(|item| match item {
        Ok((seq, r)) => {
            let json = serde_json::to_string(&history_dto(seq, &r)).unwrap_or_else(|_| "{}".into());
            Event::default().event("alarm").data(json)
        }
        Err(e) => Event::default().event("lagged").data(e.to_string()),
    })
}

fn transition_json(t: &AlarmTransition) -> Value {
    json!({
        "alarm": t.alarm,
        "at": time(t.at),
        "from": status_json(&t.from),
        "to": status_json(&t.to),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    ids: Vec<String>,
    #[serde(default)]
    reason: String,
}

async fn acknowledge(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<AckRequest>,
) -> Result<Json<Value>, ApiError> {
    let out = alarm_system(&s)?
        .acknowledge(&auth.actor, &req.ids, &req.reason)
        .await?;
    Ok(Json(json!({
        "acknowledged": out.acknowledged.iter().map(transition_json).collect::<Vec<_>>(),
        "skipped": out.skipped.iter().map(|(id, why)| json!({"alarm": id, "why": why})).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ShelveRequest {
    minutes: Option<f64>,
    #[serde(default)]
    one_shot: bool,
    #[serde(default)]
    reason: String,
}

async fn shelve(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ShelveRequest>,
) -> Result<Json<Value>, ApiError> {
    let how = match (req.minutes, req.one_shot) {
        (None, true) => Shelve::OneShot,
        (Some(m), false) if m.is_finite() && m.abs() < 1e7 => {
            Shelve::For(chrono::Duration::milliseconds((m * 60_000.0).round() as i64))
        }
        (Some(m), false) => {
            return Err(ApiError::BadRequest(format!(
                "minutes {m} is not a number of minutes"
            )));
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either minutes (a timed shelve) or oneShot: true".into(),
            ));
        }
    };
    let t = alarm_system(&s)?
        .shelve(&auth.actor, &id, how, &req.reason)
        .await?;
    Ok(Json(transition_json(&t)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonRequest {
    #[serde(default)]
    reason: String,
}

async fn unshelve(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<Value>, ApiError> {
    let t = alarm_system(&s)?
        .unshelve(&auth.actor, &id, &req.reason)
        .await?;
    Ok(Json(transition_json(&t)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceRequest {
    out_of_service: bool,
    #[serde(default)]
    reason: String,
}

/// `POST /alarms/{id}/service {outOfService, reason}` (supervisor).
async fn service(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ServiceRequest>,
) -> Result<Json<Value>, ApiError> {
    let t = alarm_system(&s)?
        .set_out_of_service(&auth.actor, &id, req.out_of_service, &req.reason)
        .await?;
    Ok(Json(transition_json(&t)))
}
