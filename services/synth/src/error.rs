//! The one error type of the generator and its writers.

use remine_domain::DomainError;
use remine_domain::ports::StoreError;
use std::path::PathBuf;

/// Why a plant year could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A setting is out of range (the number of units...).
    #[error("{setting}: {why}")]
    Config { setting: &'static str, why: String },
    /// A `--bias` specification does not parse or names no instrument.
    #[error("bias '{spec}': {why}")]
    Bias { spec: String, why: String },
    /// A file or folder could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The output folder holds files already; nothing is overwritten.
    #[error("output folder {0} is not empty: give a new or empty folder")]
    NotEmpty(PathBuf),
    /// A generated value did not pass the domain's checks (a bug here,
    /// named with the lot or unit it concerns).
    #[error("{what}: {source}")]
    Domain { what: String, source: DomainError },
    /// The simulator's hydromet model refused a batch.
    #[error("hydromet model, leach batch {batch}: {why}")]
    Model { batch: String, why: String },
    /// The store refused a write.
    #[error("store refused {what}: {source}")]
    Store { what: String, source: StoreError },
}

impl SynthError {
    pub(crate) fn domain(what: impl Into<String>) -> impl FnOnce(DomainError) -> SynthError {
        let what = what.into();
        move |source| SynthError::Domain { what, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SynthError {
        let path = path.into();
        move |source| SynthError::Io { path, source }
    }
}
