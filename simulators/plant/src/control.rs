//! The simulator's HTTP control endpoint, on loopback only (it has no
//! authentication): faults injected, listed and cleared while the plant
//! runs, and the ground truth so far.
//!
//! - `GET /health`: `{"status":"ok"}`;
//! - `GET /faults`: the active faults, with ids and the seconds left;
//! - `POST /faults`: inject one fault, a JSON [`crate::faults::FaultRequest`]
//!   (`{"kind":"hang","line":"mechanical","duration_s":10}`); 201 with
//!   `{"id": N}`; a malformed request gets 400 `{"error": "..."}` naming the
//!   field, the value and why;
//! - `DELETE /faults/{id}`: clear one (404 if it is not active);
//!   `DELETE /faults`: clear all;
//! - `GET /truth`: the ground-truth record so far, as JSON lines.

use crate::faults::FaultRequest;
use crate::injector::Injector;
use crate::lines::lock;
use crate::truth::Ledger;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What the endpoint's handlers reach.
#[derive(Debug, Clone)]
pub(crate) struct ControlState {
    pub(crate) injector: Arc<Injector>,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
}

/// The endpoint's routes.
pub(crate) fn router(state: ControlState) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route("/faults", get(list).post(inject).delete(clear_all))
        .route("/faults/{id}", axum::routing::delete(clear))
        .route("/truth", get(truth))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn list(State(s): State<ControlState>) -> Response {
    axum::Json(s.injector.list()).into_response()
}

async fn inject(State(s): State<ControlState>, body: Bytes) -> Response {
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("fault request: {e}")),
    };
    let fault = match request.parse() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("fault request: {e}")),
    };
    match s.injector.inject(fault) {
        Ok(id) => (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("fault request: {e}")),
    }
}

async fn clear(State(s): State<ControlState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("fault id {id:?} is not a number"),
        );
    };
    if s.injector.clear(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no active fault {id}"))
    }
}

async fn clear_all(State(s): State<ControlState>) -> Response {
    axum::Json(json!({ "cleared": s.injector.clear_all() })).into_response()
}

async fn truth(State(s): State<ControlState>) -> Response {
    let text = lock(&s.ledger).jsonl();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response()
}
