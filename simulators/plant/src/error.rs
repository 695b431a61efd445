//! The one error type of the simulator: what went wrong at start-up, and where.

use std::net::SocketAddr;

/// Why the simulator could not start. Every message names the line, file,
/// field or address at fault.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A server could not bind its listening socket.
    #[error("{line}: cannot listen on {addr}: {reason}")]
    Listen {
        line: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    /// A register map or node list (a TOML file under `maps/`) is malformed
    /// or inconsistent.
    #[error("{file}: {reason}")]
    Map { file: String, reason: String },
    /// A field of [`crate::SimConfig`] holds a value the simulator cannot use.
    #[error("sim config: {field} = {value}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The OPC UA server of the hydromet line could not be built (its
    /// certificates, its namespace).
    #[error("hydromet line: OPC UA server: {0}")]
    OpcUa(String),
    /// The ground-truth file could not be created.
    #[error("ground-truth file {path}: cannot create it: {reason}")]
    Truth {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl SimError {
    pub(crate) fn listen(line: &'static str, addr: SocketAddr, err: &std::io::Error) -> SimError {
        let reason = match err.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_string(),
            std::io::ErrorKind::AddrNotAvailable => "address not available".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        SimError::Listen { line, addr, reason }
    }

    pub(crate) fn map(file: &str, reason: impl Into<String>) -> SimError {
        SimError::Map {
            file: file.to_string(),
            reason: reason.into(),
        }
    }
}
