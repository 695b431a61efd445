//! The crate's one error type: what is wrong with a tag map, by file, item and field.

/// Why a tag map could not be loaded. Each adapter turns it into its own
/// error type (`ModbusError`, `OpcUaError`), keeping every field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TagMapError {
    /// The tag-map file could not be read.
    #[error("cannot read tag map {path}: {why}")]
    Io { path: String, why: String },
    /// The text is not valid TOML, or a field has the wrong TOML type.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A field holds a value the adapter cannot use.
    #[error("{file}: {item}: field '{field}': {message}")]
    Invalid {
        file: String,
        /// `device 'name'`, `server 'name'`, `tag 'Line/Unit/Signal'`, or
        /// `tag #n` when the name itself is unusable.
        item: String,
        field: &'static str,
        message: String,
    },
}
