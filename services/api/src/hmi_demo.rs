//! Demo-only routes: faults injected into the simulated plant through the
//! API, so the HMI's browser tests (and a person trying the demo) can raise
//! a real alarm the way a real plant would: a sensor spikes, the adapter
//! reads it, the alarm system sees it.
//!
//! - `GET /demo/faults` (viewer): the active faults;
//! - `POST /demo/faults` (supervisor) with the simulator's fault request
//!   (`{"kind": "spike", "line": "discharge", "signal": "...", "value": 75,
//!   "duration_s": 60}`, see simulators/README.md) and a `reason`: injects
//!   it and answers its id;
//! - `DELETE /demo/faults/{id}` (supervisor): clears one.
//!
//! The routes exist in every build but answer 404 unless the router was
//! given a [`DemoFaults`] extension, which only `remine demo` does: a real
//! plant has no simulator to break. Every injection and clearing is
//! audited (`demo.fault.inject`, `demo.fault.clear`).

use crate::routes::{ApiJson, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use futures::future::BoxFuture;
use remine_domain::{Action, AuditEvent};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A simulator that takes faults: the demo's in-process plant. Errors are
/// the simulator's own messages (they name the field at fault).
pub trait SimulatorFaults: Send + Sync + std::fmt::Debug {
    /// Injects a fault given as the simulator's JSON fault request; returns
    /// the simulator's answer (with the fault's `id`).
    fn inject(&self, request: Value) -> BoxFuture<'static, Result<Value, String>>;
    /// The active faults, as the simulator lists them.
    fn list(&self) -> BoxFuture<'static, Result<Value, String>>;
    /// Clears fault `id`; false when there is none.
    fn clear(&self, id: u64) -> BoxFuture<'static, Result<bool, String>>;
}

/// The extension that switches the demo routes on.
#[derive(Debug, Clone)]
pub struct DemoFaults(pub Arc<dyn SimulatorFaults>);

/// The demo routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo/faults", get(list).post(inject))
        .route("/demo/faults/{id}", delete(clear))
}

fn simulator(ext: Option<Extension<DemoFaults>>) -> Result<Arc<dyn SimulatorFaults>, ApiError> {
    ext.map(|Extension(d)| d.0).ok_or_else(|| {
        ApiError::NotFound("fault injection exists only in remine demo (a simulated plant)".into())
    })
}

#[derive(Debug, Deserialize)]
struct InjectRequest {
    #[serde(default)]
    reason: String,
    #[serde(flatten)]
    fault: serde_json::Map<String, Value>,
}

async fn list(
    auth: Authenticated,
    ext: Option<Extension<DemoFaults>>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let faults = simulator(ext)?
        .list()
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(faults))
}

async fn audit(
    s: &AppState,
    auth: &Authenticated,
    action: &str,
    target: String,
    new: String,
    reason: &str,
) -> Result<(), ApiError> {
    s.store
        .append(AuditEvent {
            actor: auth.actor.user.clone(),
            action: action.into(),
            target,
            old: None,
            new: Some(new),
            reason: reason.into(),
        })
        .await?;
    Ok(())
}

async fn inject(
    State(s): State<AppState>,
    auth: Authenticated,
    ext: Option<Extension<DemoFaults>>,
    ApiJson(req): ApiJson<InjectRequest>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::Approve)?;
    let sim = simulator(ext)?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "reason: say why the fault is injected (it is audited)".into(),
        ));
    }
    let fault = Value::Object(req.fault);
    let kind = fault["kind"].as_str().unwrap_or("(no kind)").to_string();
    let answer = sim
        .inject(fault.clone())
        .await
        .map_err(ApiError::BadRequest)?;
    audit(
        &s,
        &auth,
        "demo.fault.inject",
        format!("simulator/{kind}"),
        fault.to_string(),
        &req.reason,
    )
    .await?;
    Ok(Json(answer))
}

async fn clear(
    State(s): State<AppState>,
    auth: Authenticated,
    ext: Option<Extension<DemoFaults>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::Approve)?;
    let sim = simulator(ext)?;
    if !sim.clear(id).await.map_err(ApiError::Unavailable)? {
        return Err(ApiError::NotFound(format!("no active fault {id}")));
    }
    audit(
        &s,
        &auth,
        "demo.fault.clear",
        format!("simulator/fault/{id}"),
        "cleared".into(),
        "",
    )
    .await?;
    Ok(Json(json!({ "cleared": id })))
}
