//! The OPC UA tag map: its TOML form, and the checked types it is parsed into.
//!
//! The file has `[[server]]` tables (endpoint, security, identity, timing)
//! and `[[tag]]` tables (namespace URI plus a node id or a browse path, data
//! type, access, limits, sampling); plc-adapters/README.md documents every
//! field. Whatever can be checked without a server is checked here; what
//! needs one (does the namespace exist, does the browse path resolve) is
//! checked at every connect and reported in the tag's quality and the
//! server's status.

use crate::OpcUaError;
use opcua::types::{Guid, Identifier};
use remine_domain::{Access, TagInfo, TagName};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Message security of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No signing, no encryption.
    None,
    /// Basic256Sha256 with SignAndEncrypt.
    Basic256Sha256,
}

/// A secret that never prints: `Debug` and `Display` show `****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// A user name and its password.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    username: String,
    password: Secret,
}

impl Credentials {
    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn password(&self) -> &Secret {
        &self.password
    }
}

/// One OPC UA server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    name: String,
    endpoint: String,
    security: Security,
    credentials: Option<Credentials>,
    pki_dir: PathBuf,
    trust_server_certs: bool,
    session_timeout: Duration,
    request_timeout: Duration,
    publishing_interval: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl ServerConfig {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `opc.tcp://host:port/path`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn security(&self) -> Security {
        self.security
    }

    /// `None` connects anonymously.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    pub fn trust_server_certs(&self) -> bool {
        self.trust_server_certs
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub fn publishing_interval(&self) -> Duration {
        self.publishing_interval
    }

    pub fn reconnect_min(&self) -> Duration {
        self.reconnect_min
    }

    pub fn reconnect_max(&self) -> Duration {
        self.reconnect_max
    }
}

/// The variable's data type on the server; writes send exactly this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpcDataType {
    F64,
    F32,
    I32,
    U16,
    U32,
    Bool,
}

impl OpcDataType {
    fn parse(s: &str) -> Option<OpcDataType> {
        match s {
            "f64" => Some(OpcDataType::F64),
            "f32" => Some(OpcDataType::F32),
            "i32" => Some(OpcDataType::I32),
            "u16" => Some(OpcDataType::U16),
            "u32" => Some(OpcDataType::U32),
            "bool" => Some(OpcDataType::Bool),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpcDataType::F64 => "f64",
            OpcDataType::F32 => "f32",
            OpcDataType::I32 => "i32",
            OpcDataType::U16 => "u16",
            OpcDataType::U32 => "u32",
            OpcDataType::Bool => "bool",
        }
    }
}

impl fmt::Display for OpcDataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a tag's variable is, within its namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeAddress {
    /// A node id identifier as written: `s=Leach1.Temperature`, `i=1001`, `g=<guid>`.
    NodeId(String),
    /// Browse names from the Objects folder, each in the tag's namespace.
    BrowsePath(Vec<String>),
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddress::NodeId(id) => f.write_str(id),
            NodeAddress::BrowsePath(path) => f.write_str(&path.join("/")),
        }
    }
}

/// Inclusive write limits in engineering units; `min <= max`, both finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteLimits {
    min: f64,
    max: f64,
}

impl WriteLimits {
    pub fn min(self) -> f64 {
        self.min
    }

    pub fn max(self) -> f64 {
        self.max
    }
}

/// One tag: which variable on which server, its type, and who may write it.
#[derive(Debug, Clone, PartialEq)]
pub struct TagConfig {
    name: TagName,
    server: usize,
    namespace_uri: String,
    address: NodeAddress,
    /// The parsed form of a [`NodeAddress::NodeId`].
    identifier: Option<Identifier>,
    data_type: OpcDataType,
    unit: String,
    access: Access,
    limits: Option<WriteLimits>,
    sampling_interval: Duration,
    deadband: Option<f64>,
}

impl TagConfig {
    pub fn name(&self) -> &TagName {
        &self.name
    }

    /// Index of the tag's server in [`OpcUaConfig::servers`].
    pub fn server_index(&self) -> usize {
        self.server
    }

    pub fn namespace_uri(&self) -> &str {
        &self.namespace_uri
    }

    pub fn address(&self) -> &NodeAddress {
        &self.address
    }

    pub(crate) fn identifier(&self) -> Option<&Identifier> {
        self.identifier.as_ref()
    }

    pub fn data_type(&self) -> OpcDataType {
        self.data_type
    }

    pub fn unit(&self) -> &str {
        &self.unit
    }

    pub fn access(&self) -> Access {
        self.access
    }

    pub fn limits(&self) -> Option<WriteLimits> {
        self.limits
    }

    pub fn sampling_interval(&self) -> Duration {
        self.sampling_interval
    }

    /// Absolute deadband: smaller changes are not reported.
    pub fn deadband(&self) -> Option<f64> {
        self.deadband
    }

    /// What the services see of this tag.
    pub fn info(&self) -> TagInfo {
        TagInfo {
            name: self.name.clone(),
            unit: self.unit.clone(),
            access: self.access,
            write_limits: self.limits.map(|l| (l.min, l.max)),
        }
    }
}

/// A checked OPC UA tag map: servers and the tags read from them.
#[derive(Debug, Clone, PartialEq)]
pub struct OpcUaConfig {
    servers: Vec<ServerConfig>,
    tags: Vec<TagConfig>,
}

impl OpcUaConfig {
    /// Parses a tag map; `source` names the text in error messages (usually its path).
    /// A `password_env` is read from the environment here.
    pub fn from_toml_str(text: &str, source: &str) -> Result<OpcUaConfig, OpcUaError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| OpcUaError::Syntax {
            file: source.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Checker { file: source }.check(raw)
    }

    /// Reads and parses a tag-map file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<OpcUaConfig, OpcUaError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| OpcUaError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        OpcUaConfig::from_toml_str(&text, &path.display().to_string())
    }

    pub fn servers(&self) -> &[ServerConfig] {
        &self.servers
    }

    pub fn tags(&self) -> &[TagConfig] {
        &self.tags
    }

    /// The tags as the services see them.
    pub fn catalogue(&self) -> Vec<TagInfo> {
        self.tags.iter().map(TagConfig::info).collect()
    }
}

// ---- the TOML form -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: Vec<RawServer>,
    #[serde(default)]
    tag: Vec<RawTag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    endpoint: String,
    security: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    pki_dir: String,
    trust_server_certs: Option<bool>,
    session_timeout_ms: Option<i64>,
    request_timeout_ms: Option<i64>,
    publishing_interval_ms: Option<i64>,
    reconnect_min_ms: Option<i64>,
    reconnect_max_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTag {
    name: String,
    server: String,
    namespace_uri: String,
    node_id: Option<String>,
    browse_path: Option<String>,
    data_type: String,
    unit: Option<String>,
    access: Option<String>,
    min: Option<Number>,
    max: Option<Number>,
    sampling_interval_ms: Option<i64>,
    deadband: Option<Number>,
}

/// TOML keeps integers and floats apart; a limit of `90` is as good as `90.0`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn get(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn err(&self, item: &str, field: &'static str, message: impl Into<String>) -> OpcUaError {
        OpcUaError::Invalid {
            file: self.file.to_string(),
            item: item.to_string(),
            field,
            message: message.into(),
        }
    }

    fn check(&self, raw: RawFile) -> Result<OpcUaConfig, OpcUaError> {
        let mut servers: Vec<ServerConfig> = Vec::with_capacity(raw.server.len());
        for s in raw.server {
            let server = self.server(s)?;
            if servers.iter().any(|known| known.name == server.name) {
                return Err(self.err(
                    &format!("server '{}'", server.name),
                    "name",
                    "duplicate server name",
                ));
            }
            servers.push(server);
        }
        let mut tags: Vec<TagConfig> = Vec::with_capacity(raw.tag.len());
        let mut seen: HashMap<TagName, usize> = HashMap::new();
        for (i, t) in raw.tag.into_iter().enumerate() {
            let tag = self.tag(i + 1, t, &servers)?;
            if let Some(first) = seen.get(&tag.name) {
                return Err(self.err(
                    &format!("tag '{}'", tag.name),
                    "name",
                    format!("duplicate tag name (first defined as tag #{first})"),
                ));
            }
            seen.insert(tag.name.clone(), i + 1);
            tags.push(tag);
        }
        Ok(OpcUaConfig { servers, tags })
    }

    fn int_in(
        &self,
        item: &str,
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    ) -> Result<Duration, OpcUaError> {
        if (min..=max).contains(&value) {
            Ok(Duration::from_millis(value.unsigned_abs()))
        } else {
            Err(self.err(item, field, format!("{value} is outside {min}..={max}")))
        }
    }

    fn server(&self, s: RawServer) -> Result<ServerConfig, OpcUaError> {
        let item = format!("server '{}'", s.name);
        let item = item.as_str();
        let valid_name = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(self.err(
                item,
                "name",
                "a server name is letters, digits, '_', '-' and '.', not empty",
            ));
        }
        let host = s
            .endpoint
            .strip_prefix("opc.tcp://")
            .map(|rest| rest.split('/').next().unwrap_or_default())
            .unwrap_or_default();
        if host.is_empty() || s.endpoint.contains(char::is_whitespace) {
            return Err(self.err(
                item,
                "endpoint",
                format!("'{}' is not opc.tcp://host:port/path", s.endpoint),
            ));
        }
        let security = match s.security.as_deref() {
            None | Some("none") => Security::None,
            Some("basic256sha256") => Security::Basic256Sha256,
            Some(other) => {
                return Err(self.err(
                    item,
                    "security",
                    format!("unknown security '{other}' (expected none or basic256sha256)"),
                ));
            }
        };
        let password = match (s.password, s.password_env) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    item,
                    "password_env",
                    "give either 'password' or 'password_env', not both",
                ));
            }
            (Some(p), None) => Some(Secret(p)),
            (None, Some(var)) => Some(Secret(std::env::var(&var).map_err(|_| {
                self.err(
                    item,
                    "password_env",
                    format!("environment variable '{var}' is not set"),
                )
            })?)),
            (None, None) => None,
        };
        let credentials = match (s.username, password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Some(Credentials { username, password })
            }
            (Some(_), Some(_)) => return Err(self.err(item, "username", "is empty")),
            (Some(_), None) => {
                return Err(self.err(item, "password", "'username' is given without a password"));
            }
            (None, Some(_)) => {
                return Err(self.err(item, "username", "a password is given without 'username'"));
            }
            (None, None) => None,
        };
        if s.pki_dir.trim().is_empty() {
            return Err(self.err(item, "pki_dir", "is empty"));
        }
        let session_timeout = self.int_in(
            item,
            "session_timeout_ms",
            s.session_timeout_ms.unwrap_or(60_000),
            1_000,
            3_600_000,
        )?;
        let request_timeout = self.int_in(
            item,
            "request_timeout_ms",
            s.request_timeout_ms.unwrap_or(5_000),
            100,
            120_000,
        )?;
        let publishing_interval = self.int_in(
            item,
            "publishing_interval_ms",
            s.publishing_interval_ms.unwrap_or(500),
            10,
            3_600_000,
        )?;
        let reconnect_min = self.int_in(
            item,
            "reconnect_min_ms",
            s.reconnect_min_ms.unwrap_or(100),
            10,
            600_000,
        )?;
        let reconnect_max = self.int_in(
            item,
            "reconnect_max_ms",
            s.reconnect_max_ms.unwrap_or(10_000),
            10,
            600_000,
        )?;
        if reconnect_min > reconnect_max {
            return Err(self.err(
                item,
                "reconnect_min_ms",
                format!(
                    "{} is above reconnect_max_ms {}",
                    reconnect_min.as_millis(),
                    reconnect_max.as_millis()
                ),
            ));
        }
        Ok(ServerConfig {
            name: s.name,
            endpoint: s.endpoint,
            security,
            credentials,
            pki_dir: PathBuf::from(s.pki_dir),
            trust_server_certs: s.trust_server_certs.unwrap_or(false),
            session_timeout,
            request_timeout,
            publishing_interval,
            reconnect_min,
            reconnect_max,
        })
    }

    fn tag(
        &self,
        number: usize,
        t: RawTag,
        servers: &[ServerConfig],
    ) -> Result<TagConfig, OpcUaError> {
        let name = TagName::parse(&t.name)
            .map_err(|e| self.err(&format!("tag #{number}"), "name", e.to_string()))?;
        let item = format!("tag '{name}'");
        let item = item.as_str();
        let server = servers
            .iter()
            .position(|s| s.name == t.server)
            .ok_or_else(|| {
                let known: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                self.err(
                    item,
                    "server",
                    format!(
                        "unknown server '{}' (servers: {})",
                        t.server,
                        if known.is_empty() {
                            "none defined".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
        if t.namespace_uri.trim().is_empty() {
            return Err(self.err(item, "namespace_uri", "is empty"));
        }
        let (address, identifier) = match (t.node_id.clone(), t.browse_path.clone()) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    item,
                    "browse_path",
                    "give either 'node_id' or 'browse_path', not both",
                ));
            }
            (None, None) => {
                return Err(self.err(item, "node_id", "give 'node_id' or 'browse_path'"));
            }
            (Some(id), None) => {
                let identifier = self.identifier(item, &id)?;
                (NodeAddress::NodeId(id), Some(identifier))
            }
            (None, Some(path)) => (
                NodeAddress::BrowsePath(self.browse_path(item, &path)?),
                None,
            ),
        };
        let data_type = OpcDataType::parse(&t.data_type).ok_or_else(|| {
            self.err(
                item,
                "data_type",
                format!(
                    "unknown data type '{}' (expected f64, f32, i32, u16, u32 or bool)",
                    t.data_type
                ),
            )
        })?;
        let access = match t.access.as_deref() {
            None | Some("read") => Access::Read,
            Some("read_write") => Access::ReadWrite,
            Some(other) => {
                return Err(self.err(
                    item,
                    "access",
                    format!("unknown access '{other}' (expected read or read_write)"),
                ));
            }
        };
        let limits = self.limits(item, &t, access, data_type)?;
        let sampling_interval = self.int_in(
            item,
            "sampling_interval_ms",
            t.sampling_interval_ms.unwrap_or(250),
            0,
            3_600_000,
        )?;
        let deadband = match t.deadband.map(Number::get) {
            None => None,
            Some(_) if data_type == OpcDataType::Bool => {
                return Err(self.err(item, "deadband", "a bool has no deadband"));
            }
            Some(d) if d.is_finite() && d >= 0.0 => Some(d),
            Some(d) => {
                return Err(self.err(item, "deadband", format!("{d} is not a finite number >= 0")));
            }
        };
        Ok(TagConfig {
            name,
            server,
            namespace_uri: t.namespace_uri,
            address,
            identifier,
            data_type,
            unit: t.unit.unwrap_or_default(),
            access,
            limits,
            sampling_interval,
            deadband,
        })
    }

    fn identifier(&self, item: &str, id: &str) -> Result<Identifier, OpcUaError> {
        let bad = |why: &str| self.err(item, "node_id", format!("'{id}' {why}"));
        if id.starts_with("ns=") || id.contains(";s=") || id.contains(";i=") {
            return Err(bad(
                "carries a namespace index; give the identifier only (the index comes from namespace_uri)",
            ));
        }
        match id.split_once('=') {
            Some(("i", n)) => n
                .parse::<u32>()
                .map(Identifier::Numeric)
                .map_err(|_| bad("is not i=<number>")),
            Some(("s", s)) if !s.is_empty() => Ok(Identifier::from(s)),
            Some(("g", g)) => Guid::from_str(g)
                .map(Identifier::Guid)
                .map_err(|_| bad("is not g=<guid>")),
            _ => Err(bad("is not s=<string>, i=<number> or g=<guid>")),
        }
    }

    fn browse_path(&self, item: &str, path: &str) -> Result<Vec<String>, OpcUaError> {
        let segments: Vec<String> = path.split('/').map(str::to_string).collect();
        if segments.iter().any(|s| s.trim().is_empty()) {
            return Err(self.err(
                item,
                "browse_path",
                format!("'{path}' has an empty segment (expected Folder/Variable)"),
            ));
        }
        Ok(segments)
    }

    fn limits(
        &self,
        item: &str,
        t: &RawTag,
        access: Access,
        data_type: OpcDataType,
    ) -> Result<Option<WriteLimits>, OpcUaError> {
        let (min, max) = match (t.min, t.max) {
            (None, None) => return Ok(None),
            (Some(min), Some(max)) => (min.get(), max.get()),
            (Some(_), None) => return Err(self.err(item, "max", "'min' is given without 'max'")),
            (None, Some(_)) => return Err(self.err(item, "min", "'max' is given without 'min'")),
        };
        if access == Access::Read {
            return Err(self.err(
                item,
                "min",
                "a write limit on a read-only tag: set access = \"read_write\" or remove min/max",
            ));
        }
        if data_type == OpcDataType::Bool {
            return Err(self.err(item, "min", "a bool has no write limits"));
        }
        if !min.is_finite() || !max.is_finite() {
            return Err(self.err(item, "min", "write limits must be finite numbers"));
        }
        if min > max {
            return Err(self.err(item, "min", format!("min {min} is above max {max}")));
        }
        Ok(Some(WriteLimits { min, max }))
    }
}
