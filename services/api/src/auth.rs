//! Who is calling: the session token from the cookie or the bearer header;
//! and the CSRF guard on state-changing requests made with the cookie.

use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use remine_domain::Action;
use remine_mes::Actor;

/// The cookie the HMI's session lives in.
pub const SESSION_COOKIE: &str = "remine_session";

/// An authenticated caller. Extracting it fails with 401 when there is no
/// valid session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    pub token: String,
}

impl Authenticated {
    /// 403 unless the caller's role allows `action`.
    pub fn require(&self, action: Action) -> Result<&Actor, ApiError> {
        self.actor
            .role
            .authorise(action)
            .map_err(|e| ApiError::Forbidden(e.to_string()))?;
        Ok(&self.actor)
    }
}

/// The token of a request: the bearer header wins over the cookie.
pub(crate) fn token_of(parts: &Parts) -> Option<String> {
    bearer_token(&parts.headers).or_else(|| cookie_token(&parts.headers))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            token_of(parts).ok_or_else(|| ApiError::Unauthenticated("not logged in".into()))?;
        let actor = state.users.authenticate(&token).await?;
        Ok(Authenticated { actor, token })
    }
}

/// The header the HMI sends on every state-changing request made with the
/// session cookie, echoing the token `GET /session` gives it.
pub const CSRF_HEADER: &str = "x-remine-csrf";

/// The keys of the CSRF tokens: random per process (std's `RandomState`
/// draws them from the operating system), so a token says nothing about the
/// session token it is derived from and is worthless after a restart (the
/// HMI then asks `/session` again).
static CSRF_KEYS: std::sync::OnceLock<[std::collections::hash_map::RandomState; 2]> =
    std::sync::OnceLock::new();

/// The CSRF token of a session: two keyed SipHash values of the session
/// token, 128 bits in hex. A page of another site can neither read it nor
/// send a custom header cross-site without CORS, which remine never allows.
pub fn csrf_token(session_token: &str) -> String {
    use std::hash::BuildHasher;
    let keys = CSRF_KEYS.get_or_init(Default::default);
    keys.iter()
        .map(|k| format!("{:016x}", k.hash_one(session_token)))
        .collect()
}

/// Whether a method changes state (everything but GET, HEAD and OPTIONS).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// The CSRF layer: a state-changing request that would be authenticated by
/// the session cookie (no bearer header) must carry [`CSRF_HEADER`] with
/// the session's [`csrf_token`], or it is refused with 403 before any
/// handler runs. Logging in (`POST /api/v1/session`) is exempt: it needs
/// the password, and the browser may still hold an old cookie then.
/// Bearer-token clients are not affected.
pub async fn csrf_guard(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let login = request.method() == Method::POST && request.uri().path() == "/api/v1/session";
    if changes_state(request.method())
        && !login
        && bearer_token(headers).is_none()
        && let Some(session) = cookie_token(headers)
    {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if sent != Some(csrf_token(&session).as_str()) {
            return ApiError::Forbidden(format!(
                "{} {}: a request with the session cookie needs the {CSRF_HEADER} header \
                     with the token GET /api/v1/session gives",
                request.method(),
                request.uri().path()
            ))
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::post;
    use tower::ServiceExt;

    /// What the guard answers to a request (method, path, headers).
    async fn check(method: &str, path: &str, headers: &[(&str, String)], expected: StatusCode) {
        let app = axum::Router::new()
            .route("/api/v1/session", post(|| async { "in" }))
            .route(
                "/api/v1/alarms/ack",
                post(|| async { "done" }).get(|| async { "list" }),
            )
            .layer(axum::middleware::from_fn(csrf_guard));
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), expected, "{method} {path} {headers:?}");
    }

    fn cookie(token: &str) -> (&'static str, String) {
        ("cookie", format!("other=1; {SESSION_COOKIE}={token}"))
    }

    #[tokio::test]
    async fn a_cookie_request_that_changes_state_needs_the_sessions_csrf_token() {
        let t = "session-token-1";
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[cookie(t)],
            StatusCode::FORBIDDEN,
        )
        .await;
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[cookie(t), (CSRF_HEADER, "wrong".into())],
            StatusCode::FORBIDDEN,
        )
        .await;
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[cookie(t), (CSRF_HEADER, csrf_token("another-session"))],
            StatusCode::FORBIDDEN,
        )
        .await;
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[cookie(t), (CSRF_HEADER, csrf_token(t))],
            StatusCode::OK,
        )
        .await;
    }

    #[tokio::test]
    async fn reads_bearer_clients_and_logging_in_need_no_csrf_token() {
        let t = "session-token-2";
        check("GET", "/api/v1/alarms/ack", &[cookie(t)], StatusCode::OK).await;
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[("authorization", format!("Bearer {t}"))],
            StatusCode::OK,
        )
        .await;
        check(
            "POST",
            "/api/v1/alarms/ack",
            &[("authorization", format!("Bearer {t}")), cookie(t)],
            StatusCode::OK,
        )
        .await;
        check("POST", "/api/v1/session", &[cookie(t)], StatusCode::OK).await;
        // No session at all: the handler's own authentication answers.
        check("POST", "/api/v1/alarms/ack", &[], StatusCode::OK).await;
    }

    #[test]
    fn csrf_tokens_are_stable_per_session_and_differ_between_sessions() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 32);
        let session = "0123456789abcdef0123456789abcdef";
        assert!(!csrf_token(session).contains(session));
    }
}
