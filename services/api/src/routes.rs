//! The routes and their handlers.

use crate::auth::{SESSION_COOKIE, csrf_token};
use crate::dto::*;
use crate::{ApiError, Authenticated};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures::Stream;
use remine_domain::ports::{DeviceStatsSource, Store, TagIo};
use remine_domain::{Action, LotId, TagName, TagValue};
use remine_mes::{GuardedWriter, LiveValues, Recipes, Snapshot, Users};
use serde::Deserialize;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tower_http::trace::TraceLayer;

/// Everything the handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub users: Users,
    /// The plant's tags, when a plant is connected.
    pub plant: Option<Arc<dyn TagIo>>,
    pub writer: Option<GuardedWriter>,
    pub live: LiveValues,
    /// The plant's display name for the HMI header.
    pub site: String,
    /// The PLC adapters, for `GET /metrics` (empty without a plant).
    pub stats: Vec<Arc<dyn DeviceStatsSource>>,
    /// Master recipes, their life cycle, and downloads to units.
    pub recipes: Recipes,
    /// Commands to units, when a control file is configured.
    pub control: Option<remine_mes::LineControl>,
    /// The alarm system, when a control file is configured.
    pub alarms: Option<remine_mes::Alarms>,
    /// The historian's storage, when a plant is connected.
    pub history: Option<Arc<dyn remine_domain::ports::HistoryStore>>,
    /// The facility configuration reports are made with, when configured.
    pub facility: Option<Arc<remine_reporting::FacilityConfig>>,
    /// The lot graph kept between traces until the genealogy changes.
    pub traces: remine_mes::TraceCache,
}

/// A JSON body whose rejection is an [`ApiError`], so malformed bodies get
/// the same error shape as everything else.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub T);

/// A query string whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct ApiQuery<T>(pub T);

// The derive macros need the rejections in scope.
#[allow(dead_code)]
fn _rejections(_: JsonRejection, _: QueryRejection) {}

/// The router of the whole API and the HMI.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/session", get(whoami).post(login).delete(logout))
        .route("/tags", get(tags))
        .route("/tags/{*name}", put(write_tag))
        .route("/stream", get(stream))
        .route("/lots", get(lots))
        .route("/lots/{id}", get(lot))
        .route("/audit", get(audit))
        .route("/audit/verify", get(audit_verify))
        .merge(crate::recipes::routes())
        .merge(crate::accounting::routes())
        .merge(crate::balance::routes())
        .merge(crate::trace::routes())
        .merge(crate::control::routes())
        .merge(crate::history::routes())
        .merge(crate::deliveries::routes())
        .merge(crate::reports::routes())
        .merge(crate::hmi_demo::routes())
        .fallback(|| async { ApiError::NotFound("no such API route".into()) });
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(metrics))
        .route("/", get(hmi_index))
        .route("/assets/{file}", get(hmi_asset))
        .layer(axum::middleware::from_fn(crate::auth::csrf_guard))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(State(s): State<AppState>) -> Json<Value> {
    Json(serde_json::json!({ "status": "ok", "site": s.site, "plant": s.plant.is_some() }))
}

/// `GET /metrics`, no session needed: the PLC links in the Prometheus text
/// format (read-only, no secrets).
async fn metrics(State(s): State<AppState>) -> Response {
    let stats: Vec<_> = s.stats.iter().flat_map(|src| src.device_stats()).collect();
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        crate::metrics::render(&stats),
    )
        .into_response()
}

/// Whether the request reached remine over TLS: remine itself serves plain
/// HTTP, so TLS is a terminating proxy's, which says so in
/// `X-Forwarded-Proto` (or `Forwarded: proto=https`).
fn over_tls(headers: &HeaderMap) -> bool {
    let says_https = |name: &str, needle: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains(needle))
    };
    says_https("x-forwarded-proto", "https") || says_https("forwarded", "proto=https")
}

/// The session cookie: never readable by scripts (HttpOnly), never sent
/// with a request another site starts (SameSite=Strict), and only over
/// TLS when the page was served over TLS (Secure).
fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A session's answer with the CSRF token the HMI echoes in
/// `X-Remine-CSRF` on state-changing requests.
fn with_csrf(dto: SessionDto, session_token: &str) -> Result<Json<Value>, ApiError> {
    let mut body = serde_json::to_value(dto).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Value::Object(map) = &mut body {
        map.insert("csrfToken".into(), Value::from(csrf_token(session_token)));
    }
    Ok(Json(body))
}

async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = s.users.login(&req.user, &req.password).await?;
    let ttl = (session.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    let cookie = session_cookie(&session.token, ttl, over_tls(&headers))?;
    let token = session.token.clone();
    let body = SessionDto {
        user: session.actor.user.to_string(),
        role: session.actor.role.name().into(),
        token: Some(session.token),
        expires_at: Some(time(session.expires_at)),
    };
    Ok(([(SET_COOKIE, cookie)], with_csrf(body, &token)?).into_response())
}

/// `GET /session`: who is calling; a cookie session (the HMI) also gets its
/// CSRF token, a bearer client needs none.
async fn whoami(headers: HeaderMap, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    let body = SessionDto {
        user: auth.actor.user.to_string(),
        role: auth.actor.role.name().into(),
        token: None,
        expires_at: None,
    };
    if crate::auth::bearer_token(&headers).is_some() {
        return serde_json::to_value(body)
            .map(Json)
            .map_err(|e| ApiError::Internal(e.to_string()));
    }
    with_csrf(body, &auth.token)
}

async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    s.users.logout(&auth.token).await?;
    Ok((
        [(SET_COOKIE, session_cookie("", 0, over_tls(&headers))?)],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

fn snapshot_dto(s: &Snapshot) -> SnapshotDto {
    SnapshotDto {
        seq: s.seq,
        at: s.at.map(time),
        readings: s.readings.iter().map(ReadingDto::from).collect(),
    }
}

async fn tags(State(s): State<AppState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    auth.require(Action::View)?;
    let catalogue: Vec<TagInfoDto> = s
        .plant
        .as_ref()
        .map(|p| p.catalogue().iter().map(TagInfoDto::from).collect())
        .unwrap_or_default();
    let snap = snapshot_dto(&s.live.latest());
    Ok(Json(
        serde_json::json!({ "tags": catalogue, "snapshot": snap }),
    ))
}

fn tag_value(v: &Value) -> Result<TagValue, ApiError> {
    match v {
        Value::Bool(b) => Ok(TagValue::Bool(*b)),
        Value::Number(n) if n.is_i64() => Ok(TagValue::Int(n.as_i64().unwrap_or_default())),
        Value::Number(n) => n
            .as_f64()
            .map(TagValue::Float)
            .ok_or_else(|| ApiError::BadRequest(format!("value {n} is not a finite number"))),
        other => Err(ApiError::BadRequest(format!(
            "value must be a number or a boolean, got {other}"
        ))),
    }
}

async fn write_tag(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<WriteRequest>,
) -> Result<Json<WriteResult>, ApiError> {
    let tag = TagName::parse(&name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let writer = s
        .writer
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no plant is connected".into()))?;
    let value = tag_value(&req.value)?;
    let out = writer.write(&auth.actor, &tag, value, &req.reason).await?;
    Ok(Json(WriteResult {
        tag: out.tag.to_string(),
        old: out.old.map(value_json),
        new: value_json(out.new),
        audit_seq: out.audit_seq,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Also the alarm history's events (`alarm`, `lagged`), when alarms are
    /// configured: one connection per browser tab instead of two, since a
    /// browser opens at most six to one server over HTTP/1.1.
    #[serde(default)]
    alarms: bool,
}

/// `GET /stream[?alarms=true]`: every live snapshot (event `snapshot`), and
/// with `alarms=true` the alarm events of `GET /alarms/stream` beside them.
async fn stream(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    auth.require(Action::View)?;
    let snapshots = WatchStream::new(s.live.subscribe()).map(|snap| {
        let json = serde_json::to_string(&snapshot_dto(&snap)).unwrap_or_else(|_| "{}".into());
        Event::default().event("snapshot").data(json)
    });
    let alarms = s
        .alarms
        .as_ref()
        .filter(|_| q.alarms)
        .map(crate::control::alarm_events);
    let alarms = futures::StreamExt::flatten(futures::stream::iter(alarms));
    let events = snapshots.merge(alarms).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LotsQuery {
    /// Words that must all occur (case-insensitive) in the lot's id,
    /// passport id (a GB/T 34014 code is the passport id of a GB/T unit),
    /// label, kind or country of collection.
    q: Option<String>,
    /// At most this many lots, the newest; `X-Total-Count` says how many
    /// matched.
    limit: Option<usize>,
}

/// `GET /lots[?q=WORDS][&limit=N]`: the lots, oldest first (with `limit`,
/// the newest N of those matching, still oldest first).
async fn lots(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<LotsQuery>,
) -> Result<Response, ApiError> {
    auth.require(Action::View)?;
    if q.limit == Some(0) {
        return Err(ApiError::BadRequest("limit: must be at least 1".into()));
    }
    let words: Vec<String> =
        q.q.as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    let lots = s.store.lots().await?;
    let found: Vec<LotDto> = lots
        .iter()
        .map(LotDto::from)
        .filter(|l| words.is_empty() || lot_matches(l, &words))
        .collect();
    let total = found.len();
    let skip = q.limit.map_or(0, |n| total.saturating_sub(n));
    let mut res = Json(found.into_iter().skip(skip).collect::<Vec<_>>()).into_response();
    res.headers_mut().insert(
        HeaderName::from_static("x-total-count"),
        HeaderValue::from(total),
    );
    Ok(res)
}

fn lot_matches(l: &LotDto, words: &[String]) -> bool {
    let hay = [
        Some(l.id.as_str()),
        l.passport.as_deref(),
        Some(l.label.as_str()),
        Some(l.kind.as_str()),
        l.country_of_collection.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_lowercase();
    words.iter().all(|w| hay.contains(w.as_str()))
}

async fn lot(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<LotDetailDto>, ApiError> {
    auth.require(Action::View)?;
    let id = LotId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let lot = s
        .store
        .lot(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("lot {id} not found")))?;
    let edges = s.store.edges().await?;
    let edge = |e: &remine_domain::GenealogyEdge| EdgeDto {
        from: e.from.to_string(),
        to: e.to.to_string(),
        mass_kg: e.mass.kg(),
    };
    Ok(Json(LotDetailDto {
        lot: LotDto::from(&lot),
        inputs: edges.iter().filter(|e| e.to == id).map(edge).collect(),
        outputs: edges.iter().filter(|e| e.from == id).map(edge).collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

async fn audit(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditDto>>, ApiError> {
    auth.require(Action::Approve)?;
    let entries = s.store.entries(q.after, q.limit.min(1000)).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditDto {
                seq: e.seq,
                at: time(e.at),
                actor: e.event.actor.to_string(),
                action: e.event.action,
                target: e.event.target,
                old: e.event.old,
                new: e.event.new,
                reason: e.event.reason,
                hash: e.hash.to_hex(),
            })
            .collect(),
    ))
}

async fn audit_verify(
    State(s): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require(Action::Approve)?;
    let body = match s.store.verify().await? {
        Ok(n) => serde_json::json!({ "intact": true, "entries": n }),
        Err(b) => serde_json::json!({ "intact": false, "brokenAt": b.seq, "why": b.why }),
    };
    Ok(Json(body))
}

async fn hmi_index() -> Response {
    hmi_asset(Path("index.html".into())).await
}

/// The HMI's content security policy: its own scripts, styles, images and
/// API only (no inline script, no other origin: the plant is offline), and
/// no framing by other pages (clickjacking).
const HMI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async fn hmi_asset(Path(file): Path<String>) -> Response {
    match remine_hmi::asset(&file) {
        Some(a) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    HeaderName::from_static("content-security-policy"),
                    HeaderValue::from_static(HMI_CSP),
                ),
                (
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    HeaderName::from_static("referrer-policy"),
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
            a.bytes,
        )
            .into_response(),
        None => ApiError::NotFound(format!("no asset {file}")).into_response(),
    }
}
