//! The crate's one error type: what went wrong while loading a tag map or starting the adapter.

use remine_plc_common::TagMapError;

/// Why a Modbus tag map could not be loaded or the adapter could not start.
///
/// Every message names the file it came from and, for a mapping mistake, the
/// device or tag and the field at fault, so it can be shown to the plant
/// engineer as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModbusError {
    /// The tag-map file could not be read.
    #[error("cannot read Modbus tag map {path}: {why}")]
    Io { path: String, why: String },
    /// The text is not valid TOML, or a field has the wrong TOML type.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A field holds a value the adapter cannot use.
    #[error("{file}: {item}: field '{field}': {message}")]
    Invalid {
        file: String,
        /// `device 'name'`, `tag 'Line/Unit/Signal'` or `tag #n` when the
        /// name itself is unusable.
        item: String,
        field: &'static str,
        message: String,
    },
    /// `ModbusAdapter::start` was called outside a tokio runtime.
    #[error("the Modbus adapter needs a tokio runtime: {0}")]
    NoRuntime(String),
}

/// The tag-map checks shared with the OPC UA adapter report in their own
/// type; the fields carry over as they are.
impl From<TagMapError> for ModbusError {
    fn from(e: TagMapError) -> ModbusError {
        match e {
            TagMapError::Io { path, why } => ModbusError::Io { path, why },
            TagMapError::Syntax { file, message } => ModbusError::Syntax { file, message },
            TagMapError::Invalid {
                file,
                item,
                field,
                message,
            } => ModbusError::Invalid {
                file,
                item,
                field,
                message,
            },
        }
    }
}
