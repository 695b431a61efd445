//! The one error type of the reporting crate.
//!
//! Every message names what is at fault: the year, the lot, the field of a
//! configuration file or of a downstream facility's document, the store
//! call. Things that leave the report usable but deserve a person's eye are
//! not errors: they are [`crate::Warning`]s printed in the report itself.

use remine_domain::DomainError;
use remine_domain::ports::StoreError;

/// Why a report, a provenance record or a downstream document could not be
/// made or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No input unit was received in the year: there is nothing to report,
    /// and a report of zeros would be a silently wrong one.
    #[error("no data for {year}: no input unit was received in that calendar year")]
    NoData { year: i32 },
    /// Black mass is an intermediate fraction and never an output fraction
    /// (Del. Reg. 2025/606); `what` names the lot and field that said otherwise.
    #[error("black mass is never an output fraction (Del. Reg. 2025/606): {what}")]
    BlackMassAsOutput { what: String },
    /// The facility configuration is wrong; `origin` names the file.
    #[error("facility configuration {origin}, field {field}: {why}")]
    Config {
        origin: String,
        field: String,
        why: String,
    },
    /// A downstream facility's document is wrong; `origin` names the
    /// document (a file name or the sender), `field` the JSON path.
    #[error("downstream facility data {origin}, field {field}: {why}")]
    Downstream {
        origin: String,
        field: String,
        why: String,
    },
    /// The lots and edges do not make a lot graph (a cycle, an edge naming
    /// an unknown lot, a duplicate lot).
    #[error("genealogy: {0}")]
    Genealogy(DomainError),
    /// A lot asked for is not among the lots, or is not what was asked.
    #[error("lot {lot}: {why}")]
    Lot { lot: String, why: String },
    /// The per-step masses do not sum to the report's totals: a bug, never
    /// a report with an inconsistent table.
    #[error("per-step masses do not sum to the totals: {0}")]
    Invariant(String),
    /// A store read failed; `what` names the call.
    #[error("store: {what}: {source}")]
    Store { what: String, source: StoreError },
    /// A document could not be written as JSON or CSV (a bug: every value is
    /// finite and every key a string).
    #[error("writing {what}: {why}")]
    Write { what: &'static str, why: String },
    /// A CSV document could not be read back; `line` is 1-based.
    #[error("CSV line {line}: {why}")]
    Csv { line: u64, why: String },
}

impl ReportError {
    pub(crate) fn config(origin: &str, field: impl Into<String>, why: impl Into<String>) -> Self {
        ReportError::Config {
            origin: origin.to_string(),
            field: field.into(),
            why: why.into(),
        }
    }

    pub(crate) fn downstream(
        origin: &str,
        field: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        ReportError::Downstream {
            origin: origin.to_string(),
            field: field.into(),
            why: why.into(),
        }
    }
}
