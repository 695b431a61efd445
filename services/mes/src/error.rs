//! The one error type of the application services.

use remine_domain::DomainError;
use remine_domain::ports::{StoreError, TagError};

/// Why a use case failed. Each variant maps to one kind of answer at the
/// API (not allowed, bad input, conflict, unavailable).
#[derive(Debug, thiserror::Error)]
pub enum MesError {
    /// The user's role does not allow the action, or the state model refuses it.
    #[error("{0}")]
    NotAllowed(String),
    /// The login failed (unknown user or wrong password: never said which).
    #[error("unknown user or wrong password")]
    BadCredentials,
    /// The session is missing or expired.
    #[error("not logged in or session expired")]
    Unauthenticated,
    /// Input that does not make a valid domain value.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A recipe that breaks the equipment's limits or the process rules;
    /// each finding names the parameter.
    #[error("recipe {recipe} is not valid: {}", findings.join("; "))]
    InvalidRecipe {
        recipe: String,
        findings: Vec<String>,
    },
    /// A report that cannot be made as asked (no data for the year, black
    /// mass as an output, a bad facility file...).
    #[error(transparent)]
    Report(#[from] remine_reporting::ReportError),
    /// The plant did not do what was asked in time.
    #[error("{0}")]
    Plant(String),
    #[error("internal error: {0}")]
    Internal(String),
}
