//! The crate's one error type: loading a tag map, starting the adapter, calling a method.

use remine_plc_common::TagMapError;

/// Why an OPC UA tag map could not be loaded, the adapter could not start, or
/// a method call failed. Messages name the file, server, tag or field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpcUaError {
    /// The tag-map file could not be read.
    #[error("cannot read OPC UA tag map {path}: {why}")]
    Io { path: String, why: String },
    /// The text is not valid TOML, or a field has the wrong TOML type.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A field holds a value the adapter cannot use.
    #[error("{file}: {item}: field '{field}': {message}")]
    Invalid {
        file: String,
        /// `server 'name'`, `tag 'Line/Unit/Signal'` or `tag #n`.
        item: String,
        field: &'static str,
        message: String,
    },
    /// `OpcUaAdapter::start` was called outside a tokio runtime.
    #[error("the OPC UA adapter needs a tokio runtime: {0}")]
    NoRuntime(String),
    /// The OPC UA client library refused the settings of a server.
    #[error("OPC UA client for server '{server}' cannot be built: {why}")]
    Client { server: String, why: String },
    /// A method call named a server that is not in the tag map.
    #[error("unknown OPC UA server '{0}'")]
    UnknownServer(String),
    /// The server is not connected right now.
    #[error("OPC UA server '{server}' is not connected")]
    NotConnected { server: String },
    /// A method call failed: not found, refused, timed out, or bad arguments.
    #[error("calling {method} on server '{server}' failed: {why}")]
    Call {
        server: String,
        method: String,
        why: String,
    },
}

/// The tag-map checks shared with the Modbus adapter report in their own
/// type; the fields carry over as they are.
impl From<TagMapError> for OpcUaError {
    fn from(e: TagMapError) -> OpcUaError {
        match e {
            TagMapError::Io { path, why } => OpcUaError::Io { path, why },
            TagMapError::Syntax { file, message } => OpcUaError::Syntax { file, message },
            TagMapError::Invalid {
                file,
                item,
                field,
                message,
            } => OpcUaError::Invalid {
                file,
                item,
                field,
                message,
            },
        }
    }
}
