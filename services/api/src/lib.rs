//! The HTTP API of remine, and the server of the HMI's assets.
//!
//! Only this crate knows HTTP. [`app`] builds the router from an
//! [`AppState`]; starting a server is the binary's job, so tests call the
//! router directly or bind port 0. Every handler returns [`ApiError`] on
//! failure: one JSON shape `{"error": {"code", "message"}}`, with 5xx
//! answers carrying no internals (they are logged).
//!
//! Authentication: `POST /api/v1/session` opens a session; its token works
//! as the `remine_session` cookie (the HMI) and as `Authorization: Bearer`
//! (machines). Each route states the role it needs. `GET /metrics` (outside
//! `/api/v1`) needs none: it serves the PLC links' connection state,
//! comms-loss alarms, request and error counters and round-trip histograms
//! in the Prometheus text format, read-only and without secrets, from the
//! [`DeviceStatsSource`](remine_domain::ports::DeviceStatsSource)s in
//! [`AppState::stats`].
//!
//! Recipes (`/api/v1/recipes...`): list, get (with findings), validate,
//! create draft and edit (engineer), sign submit/approve/reject/release/
//! obsolete with the password re-entered (two persons), diff, the equipment
//! catalogue for the editor; `/api/v1/batches/{lot}/recipe` downloads a
//! released recipe to an Idle unit (operator) and reads a batch's control
//! recipe.
//!
//! Line control (`/api/v1/units...`, `/api/v1/alarms...`): units with their
//! ISA-88 states and permissives (each check with why it is false),
//! commands checked against the state model, role and permissives; alarms
//! by the ISA-18.2 life cycle (active list, history as JSON or CSV,
//! acknowledge, shelve, unshelve, out of service, an SSE stream).
//!
//! Genealogy traces (`/api/v1/lots/{id}/trace`, `/api/v1/trace/recall`):
//! backward to the input units and their passports, forward to the lots made
//! from a lot, and the impact of a recall, with the kg of every element
//! allocated to each lot; a lot's trace also on the element masses a
//! period's balance reconciled (`?basis=reconciled&year=Y`).
//!
//! ```no_run
//! # async fn f(state: remine_api::AppState) {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(listener, remine_api::app(state)).await.unwrap();
//! # }
//! ```

mod accounting;
mod auth;
mod balance;
mod control;
mod deliveries;
mod dto;
mod error;
mod history;
mod hmi_demo;
mod metrics;
mod recipes;
mod reports;
mod routes;
mod trace;

pub use auth::Authenticated;
pub use error::ApiError;
pub use hmi_demo::{DemoFaults, SimulatorFaults};
pub use routes::{AppState, app};
pub use trace::{
    AllocatedDto, BackwardDto, ElementsKg, ForwardDto, KindTotalDto, RecallDto, TracedLotDto,
};
