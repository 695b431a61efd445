//! The historian's query routes (viewer), for trends:
//! - `GET /history/{tag}?from=&to=&points=N`: the range downsampled by the
//!   database into at most N buckets (default 1000, at most 10,000), each
//!   with min, max, mean, sample count and its worst quality; empty
//!   buckets are left out, so a gap in the data stays a gap in the trend;
//! - `GET /history/{tag}?from=&to=&raw=true&limit=N`: the samples
//!   themselves, oldest first (default and maximum 100,000).
//!
//! Times are RFC 3339; the range is half-open, `from <= t < to`. Without a
//! historian (no plant) the routes answer 503.

use crate::routes::{ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use remine_domain::{Action, SampleQuality, TagName};
use serde::Deserialize;
use serde_json::{Value, json};

/// At most this many buckets per query: more than any screen has pixels.
pub const MAX_POINTS: u32 = 10_000;
/// At most this many raw samples per query.
pub const MAX_RAW: u32 = 100_000;

/// The historian routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/history/{*tag}", get(history))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub from: String,
    pub to: String,
    pub points: Option<u32>,
    #[serde(default)]
    pub raw: bool,
    pub limit: Option<u32>,
}

/// The name a quality has in the API.
pub fn quality_name(q: SampleQuality) -> &'static str {
    match q {
        SampleQuality::Good => "good",
        SampleQuality::Uncertain => "uncertain",
        SampleQuality::BadWaitingForInitialData => "bad_waiting_for_initial_data",
        SampleQuality::BadConfigurationError => "bad_configuration_error",
        SampleQuality::BadDeviceFailure => "bad_device_failure",
        SampleQuality::BadTimeout => "bad_timeout",
        SampleQuality::BadCommunicationError => "bad_communication_error",
        SampleQuality::BadNotConnected => "bad_not_connected",
    }
}

fn range(q: &HistoryQuery) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let from = crate::balance::time("from", &q.from)?;
    let to = crate::balance::time("to", &q.to)?;
    if to <= from {
        return Err(ApiError::BadRequest(format!(
            "to {} must be after from {}",
            q.to, q.from
        )));
    }
    Ok((from, to))
}

fn bounded(field: &str, v: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match v.unwrap_or(default) {
        0 => Err(ApiError::BadRequest(format!("{field} must be at least 1"))),
        n if n > max => Err(ApiError::BadRequest(format!(
            "{field} {n} is more than the maximum {max}"
        ))),
        n => Ok(n),
    }
}

async fn history(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(tag): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let store = s
        .history
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no historian: remine runs without a plant".into()))?;
    let name = TagName::parse(&tag).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (from, to) = range(&q)?;
    if q.raw {
        if q.points.is_some() {
            return Err(ApiError::BadRequest(
                "points= downsamples; with raw=true give limit= instead".into(),
            ));
        }
        let limit = bounded("limit", q.limit, MAX_RAW, MAX_RAW)?;
        let samples = store.samples(&name, from, to, limit).await?;
        let rows: Vec<Value> = samples
            .iter()
            .map(|x| {
                json!({
                    "at": crate::dto::time(x.at()),
                    "value": x.value(),
                    "quality": quality_name(x.quality()),
                })
            })
            .collect();
        return Ok(Json(json!({
            "tag": name.as_str(), "from": crate::dto::time(from), "to": crate::dto::time(to),
            "samples": rows,
        })));
    }
    if q.limit.is_some() {
        return Err(ApiError::BadRequest(
            "limit= is for raw=true; a downsampled query takes points=".into(),
        ));
    }
    let points = bounded("points", q.points, 1000, MAX_POINTS)?;
    let buckets = store.downsample(&name, from, to, points).await?;
    let rows: Vec<Value> = buckets
        .iter()
        .map(|b| {
            json!({
                "start": crate::dto::time(b.start),
                "end": crate::dto::time(b.end),
                "min": b.min, "max": b.max, "mean": b.mean, "count": b.count,
                "worst": quality_name(b.worst),
            })
        })
        .collect();
    Ok(Json(json!({
        "tag": name.as_str(), "from": crate::dto::time(from), "to": crate::dto::time(to),
        "points": points, "buckets": rows,
    })))
}
