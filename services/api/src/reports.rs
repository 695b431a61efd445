//! Reports (viewer):
//! - `GET /reports/recovery?year=Y[&format=json|csv|html][&provisional=true]`:
//!   the yearly recovery report by Reg. 2023/1542 and Del. Reg. 2025/606
//!   (JSON as schemas/recycling-report.schema.json, CSV for spreadsheets,
//!   or a self-contained HTML page), rates with the reconciled balance's
//!   uncertainty; warnings are in the report itself;
//! - `GET /lots/{id}/provenance`: an output lot's provenance record with
//!   its Catena-X secondary-material-content instance
//!   (schemas/output-lot-provenance.schema.json).
//!
//! - `GET /reports/recovery/cohorts?year=Y`: recovery by chemistry and
//!   month of receipt, traced to the products so far (recorded contents).
//!
//! The first two need the facility configuration (`[reports] facility` of
//! the serve configuration); without it they answer 503 saying so.

use crate::routes::{ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use remine_domain::{Action, LotId};
use remine_mes::{COHORT_ELEMENTS, RecoveryRequest, Reports};
use remine_reporting::{FacilityConfig, ReportStatus, to_csv, to_html};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The report routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/recovery", get(recovery))
        .route("/reports/recovery/cohorts", get(cohorts))
        .route("/lots/{id}/provenance", get(provenance))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryQuery {
    pub year: i32,
    pub format: Option<String>,
    #[serde(default)]
    pub provisional: bool,
}

fn facility(s: &AppState) -> Result<FacilityConfig, ApiError> {
    s.facility.as_deref().cloned().ok_or_else(|| {
        ApiError::Unavailable(
            "no facility configuration: give [reports] facility in the serve configuration".into(),
        )
    })
}

fn answer(content_type: &'static str, file: Option<String>, body: String) -> Response {
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))];
    if let Some(name) = file
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        headers.push((CONTENT_DISPOSITION, v));
    }
    let mut response = body.into_response();
    response.headers_mut().extend(headers);
    response
}

fn check_year(year: i32) -> Result<(), ApiError> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "year {year} is out of range 2000-2100"
        )))
    }
}

async fn recovery(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<RecoveryQuery>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    check_year(q.year)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(ApiError::BadRequest(format!(
            "format '{format}': expected json, csv or html"
        )));
    }
    let outcome = Reports::new(s.store.clone())
        .recovery(
            RecoveryRequest {
                year: q.year,
                status: if q.provisional {
                    ReportStatus::Provisional
                } else {
                    ReportStatus::Final
                },
                facility: facility(&s)?,
                downstream: Vec::new(),
                generated_at: chrono::Utc::now(),
            },
            &|stage| tracing::debug!(stage, "recovery report"),
        )
        .await?;
    let r = &outcome.report;
    let name = format!("recovery-report-{}", q.year);
    Ok(match format {
        "csv" => answer(
            "text/csv; charset=utf-8",
            Some(format!("{name}.csv")),
            to_csv(r).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        "html" => answer("text/html; charset=utf-8", None, to_html(r)),
        _ => answer(
            "application/json",
            None,
            r.to_json().map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
    })
}

async fn provenance(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    let lot = LotId::parse(&id).map_err(|e| ApiError::BadRequest(format!("lot: {e}")))?;
    let record = Reports::new(s.store.clone())
        .provenance(&lot, facility(&s)?)
        .await?;
    let json = record
        .to_json()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(answer("application/json", None, json))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortQuery {
    pub year: i32,
}

/// One cohort: kg by element symbol, rates in percent (absent without
/// input of the element).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CohortDto {
    month: String,
    chemistry: Option<&'static str>,
    units: usize,
    input_kg: BTreeMap<&'static str, f64>,
    in_products_kg: BTreeMap<&'static str, f64>,
    rate_pct: BTreeMap<&'static str, f64>,
}

async fn cohorts(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<CohortQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    check_year(q.year)?;
    let found = remine_mes::stored_cohorts(s.store.as_ref(), q.year).await?;
    let by_element = |v: &[f64; 4]| -> BTreeMap<&'static str, f64> {
        COHORT_ELEMENTS
            .iter()
            .zip(v)
            .map(|(e, kg)| (e.symbol(), *kg))
            .collect()
    };
    let dto: Vec<CohortDto> = found
        .iter()
        .map(|c| CohortDto {
            month: format!("{}-{:02}", q.year, c.month),
            chemistry: c.chemistry.map(|c| c.name()),
            units: c.units,
            input_kg: by_element(&c.input),
            in_products_kg: by_element(&c.in_products),
            rate_pct: COHORT_ELEMENTS
                .iter()
                .filter_map(|&e| c.rate(e).map(|r| (e.symbol(), r * 100.0)))
                .collect(),
        })
        .collect();
    Ok(Json(json!({
        "year": q.year,
        "basis": "recorded contents of the units received in each month, traced to the lots that recover each element so far (Ni: nickel sulphate, Co: cobalt sulphate, Li: lithium carbonate, Cu: the copper fraction)",
        "cohorts": dto,
    })))
}
