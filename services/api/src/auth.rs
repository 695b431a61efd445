//! Who is calling: the session token from the cookie or the bearer header.

use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
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
    if let Some(v) = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
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
