//! The domain's one error type: a value that cannot be built, with what was wrong.

/// Why a domain value could not be constructed. The message names the field
/// and the offending value, so it can be shown to a user as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A quantity outside its physical range (negative mass, fraction above one, NaN).
    #[error("{what} must be {rule} (got {value})")]
    OutOfRange {
        what: &'static str,
        rule: &'static str,
        value: String,
    },
    /// A text that does not have the required shape (an id, a code, a name).
    #[error("{what} '{value}' is invalid: {why}")]
    Malformed {
        what: &'static str,
        value: String,
        why: String,
    },
    /// Values that contradict each other (element masses above the battery mass...).
    #[error("{0}")]
    Inconsistent(String),
    /// A transition the state model does not allow.
    #[error("{0}")]
    NotAllowed(String),
}
