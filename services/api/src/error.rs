//! The API's one error type and its JSON shape.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use remine_domain::ports::{StoreError, TagError};
use remine_mes::MesError;
use serde_json::json;

/// An error answer. Each variant documents its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: not logged in, session expired, or a failed login.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: the role does not allow it, or the state model refuses it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 502: the plant (a PLC) refused or failed.
    #[error("{0}")]
    Plant(String),
    /// 503: a dependency (database, plant link) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the message is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Plant(_) => (StatusCode::BAD_GATEWAY, "plant_error"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error answered with 500");
        }
        let body = json!({ "error": { "code": code, "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Conflict(_) => ApiError::Conflict(e.to_string()),
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            StoreError::Corrupt(_) | StoreError::Internal(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<TagError> for ApiError {
    fn from(e: TagError) -> Self {
        match e {
            TagError::UnknownTag(_) => ApiError::NotFound(e.to_string()),
            TagError::ReadOnly(_) => ApiError::Forbidden(e.to_string()),
            TagError::OutOfLimits { .. } => ApiError::BadRequest(e.to_string()),
            TagError::NotConnected { .. } => ApiError::Unavailable(e.to_string()),
            TagError::Failed { .. } | TagError::ReadBackMismatch { .. } => {
                ApiError::Plant(e.to_string())
            }
        }
    }
}

impl From<MesError> for ApiError {
    fn from(e: MesError) -> Self {
        match e {
            MesError::NotAllowed(m) => ApiError::Forbidden(m),
            MesError::BadCredentials | MesError::Unauthenticated => {
                ApiError::Unauthenticated(e.to_string())
            }
            MesError::Invalid(d) => ApiError::BadRequest(d.to_string()),
            MesError::InvalidRecipe { .. } => ApiError::BadRequest(e.to_string()),
            MesError::Tag(t) => t.into(),
            MesError::Store(s) => s.into(),
            MesError::Plant(m) => ApiError::Plant(m),
            MesError::Report(r) => {
                use remine_reporting::ReportError as R;
                match r {
                    R::NoData { .. } => ApiError::NotFound(r.to_string()),
                    R::Store { source, .. } => source.into(),
                    R::Invariant(_) | R::Write { .. } => ApiError::Internal(r.to_string()),
                    _ => ApiError::BadRequest(r.to_string()),
                }
            }
            MesError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(format!("invalid JSON body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("invalid query: {}", r.body_text()))
    }
}
