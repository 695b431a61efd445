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
use remine_plc_common::TagMapError;
use remine_plc_common::tagmap::{self, Checker, Millis, Number, WriteLimits};
use serde::Deserialize;
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
    comms_alarm_delay: Duration,
    max_items_per_subscription: usize,
    groups: Vec<SubscriptionGroup>,
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

    /// The named subscription groups, in file order; tags name them by index.
    pub fn groups(&self) -> &[SubscriptionGroup] {
        &self.groups
    }

    /// How long the server must be unreachable before the comms-loss alarm
    /// is raised (zero: at the first failure).
    pub fn comms_alarm_delay(&self) -> Duration {
        self.comms_alarm_delay
    }

    /// The most monitored items one subscription holds: a group with more
    /// tags gets several subscriptions of this size.
    pub fn max_items_per_subscription(&self) -> usize {
        self.max_items_per_subscription
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

/// A named set of a server's tags with a subscription of their own.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionGroup {
    name: String,
    publishing_interval: Duration,
    sampling_interval: Option<Duration>,
}

impl SubscriptionGroup {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requested publishing interval of the group's subscription.
    pub fn publishing_interval(&self) -> Duration {
        self.publishing_interval
    }

    /// The sampling interval of the group's tags that give none of their own.
    pub fn sampling_interval(&self) -> Option<Duration> {
        self.sampling_interval
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
    group: Option<usize>,
}

impl TagConfig {
    pub fn name(&self) -> &TagName {
        &self.name
    }

    /// Index of the tag's server in [`OpcUaConfig::servers`].
    pub fn server_index(&self) -> usize {
        self.server
    }

    /// Index of the tag's group in its server's [`ServerConfig::groups`];
    /// `None`: the server's default subscription.
    pub fn group_index(&self) -> Option<usize> {
        self.group
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
            write_limits: self.limits.map(|l| (l.min(), l.max())),
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
        let raw: RawFile = tagmap::parse_toml(text, source)?;
        Ok(check(&Checker::new(source, "server"), raw)?)
    }

    /// Reads and parses a tag-map file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<OpcUaConfig, OpcUaError> {
        let path = path.as_ref();
        let text = tagmap::read_file(path)?;
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
    comms_alarm_delay_ms: Option<i64>,
    max_items_per_subscription: Option<i64>,
    #[serde(default)]
    group: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    publishing_interval_ms: i64,
    sampling_interval_ms: Option<i64>,
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
    group: Option<String>,
}

// ---- checking ---------------------------------------------------------------
// Names, access, write limits and reconnect delays are checked as in every
// tag map (remine_plc_common::tagmap); endpoints, security, identities, node
// ids, browse paths and deadbands are OPC UA's own.

/// `session_timeout_ms`: the requested session timeout.
const SESSION_MS: Millis = Millis::new(60_000, 1_000..=3_600_000);
/// `request_timeout_ms`: the limit for connecting and for every service call.
const TIMEOUT_MS: Millis = Millis::new(5_000, 100..=120_000);
/// `publishing_interval_ms`: the subscription's publishing interval.
const PUBLISHING_MS: Millis = Millis::new(500, 10..=3_600_000);
/// `sampling_interval_ms`: the monitored item's requested sampling interval.
const SAMPLING_MS: Millis = Millis::new(250, 0..=3_600_000);
/// `max_items_per_subscription`: default and bounds. The default keeps a
/// subscription's data changes of one publishing cycle within one publish
/// response the client can decode (see `connection::NOTIFICATIONS_PER_PUBLISH`)
/// and within the 1000 items per subscription many servers allow.
const ITEMS_PER_SUBSCRIPTION: (i64, i64, i64) = (1000, 1, 100_000);

fn check(c: &Checker<'_>, raw: RawFile) -> Result<OpcUaConfig, TagMapError> {
    let servers = c.links(raw.server, |s| server(c, s), ServerConfig::name)?;
    let tags = c.tags(raw.tag, |n, t| tag(c, n, t, &servers), TagConfig::name)?;
    Ok(OpcUaConfig { servers, tags })
}

fn server(c: &Checker<'_>, s: RawServer) -> Result<ServerConfig, TagMapError> {
    let item = c.link_item(&s.name)?;
    let item = item.as_str();
    let host = s
        .endpoint
        .strip_prefix("opc.tcp://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    if host.is_empty() || s.endpoint.contains(char::is_whitespace) {
        return Err(c.err(
            item,
            "endpoint",
            format!("'{}' is not opc.tcp://host:port/path", s.endpoint),
        ));
    }
    let security = match s.security.as_deref() {
        None | Some("none") => Security::None,
        Some("basic256sha256") => Security::Basic256Sha256,
        Some(other) => {
            return Err(c.err(
                item,
                "security",
                format!("unknown security '{other}' (expected none or basic256sha256)"),
            ));
        }
    };
    let password = match (s.password, s.password_env) {
        (Some(_), Some(_)) => {
            return Err(c.err(
                item,
                "password_env",
                "give either 'password' or 'password_env', not both",
            ));
        }
        (Some(p), None) => Some(Secret(p)),
        (None, Some(var)) => Some(Secret(std::env::var(&var).map_err(|_| {
            c.err(
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
        (Some(_), Some(_)) => return Err(c.err(item, "username", "is empty")),
        (Some(_), None) => {
            return Err(c.err(item, "password", "'username' is given without a password"));
        }
        (None, Some(_)) => {
            return Err(c.err(item, "username", "a password is given without 'username'"));
        }
        (None, None) => None,
    };
    if s.pki_dir.trim().is_empty() {
        return Err(c.err(item, "pki_dir", "is empty"));
    }
    let session_timeout = c.millis(item, "session_timeout_ms", s.session_timeout_ms, SESSION_MS)?;
    let request_timeout = c.millis(item, "request_timeout_ms", s.request_timeout_ms, TIMEOUT_MS)?;
    let publishing_interval = c.millis(
        item,
        "publishing_interval_ms",
        s.publishing_interval_ms,
        PUBLISHING_MS,
    )?;
    let (reconnect_min, reconnect_max) =
        c.reconnect(item, s.reconnect_min_ms, s.reconnect_max_ms)?;
    let comms_alarm_delay = c.comms_alarm_delay(item, s.comms_alarm_delay_ms)?;
    let (default_items, min_items, max_items) = ITEMS_PER_SUBSCRIPTION;
    let max_items_per_subscription = c.int_in(
        item,
        "max_items_per_subscription",
        s.max_items_per_subscription.unwrap_or(default_items),
        min_items,
        max_items,
    )?;
    let max_items_per_subscription =
        usize::try_from(max_items_per_subscription).unwrap_or(usize::MAX);
    let mut groups: Vec<SubscriptionGroup> = Vec::with_capacity(s.group.len());
    for g in s.group {
        let group_item = format!("{item} group '{}'", g.name);
        if !tagmap::is_link_name(&g.name) {
            return Err(c.err(
                &group_item,
                "name",
                "a group name is letters, digits, '_', '-' and '.', not empty",
            ));
        }
        if groups.iter().any(|known| known.name == g.name) {
            return Err(c.err(
                &group_item,
                "name",
                format!("duplicate group name on {item}"),
            ));
        }
        let publishing_interval = c.millis(
            &group_item,
            "publishing_interval_ms",
            Some(g.publishing_interval_ms),
            PUBLISHING_MS,
        )?;
        let sampling_interval = g
            .sampling_interval_ms
            .map(|ms| c.millis(&group_item, "sampling_interval_ms", Some(ms), SAMPLING_MS))
            .transpose()?;
        groups.push(SubscriptionGroup {
            name: g.name,
            publishing_interval,
            sampling_interval,
        });
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
        comms_alarm_delay,
        max_items_per_subscription,
        groups,
    })
}

fn tag(
    c: &Checker<'_>,
    number: usize,
    t: RawTag,
    servers: &[ServerConfig],
) -> Result<TagConfig, TagMapError> {
    let (name, item) = c.tag_name(number, &t.name)?;
    let item = item.as_str();
    let server = c.link_of(item, &t.server, servers.iter().map(ServerConfig::name))?;
    let group = match (&t.group, servers.get(server)) {
        (None, _) | (_, None) => None,
        (Some(wanted), Some(s)) => Some(
            s.groups
                .iter()
                .position(|g| g.name == *wanted)
                .ok_or_else(|| {
                    let known: Vec<&str> = s.groups.iter().map(SubscriptionGroup::name).collect();
                    c.err(
                        item,
                        "group",
                        format!(
                            "unknown group '{wanted}' of server '{}' ({})",
                            s.name,
                            if known.is_empty() {
                                "it has none: add a [[server.group]] or remove 'group'".to_string()
                            } else {
                                format!("groups: {}", known.join(", "))
                            }
                        ),
                    )
                })?,
        ),
    };
    if t.namespace_uri.trim().is_empty() {
        return Err(c.err(item, "namespace_uri", "is empty"));
    }
    let (address, identifier) = match (t.node_id, t.browse_path) {
        (Some(_), Some(_)) => {
            return Err(c.err(
                item,
                "browse_path",
                "give either 'node_id' or 'browse_path', not both",
            ));
        }
        (None, None) => {
            return Err(c.err(item, "node_id", "give 'node_id' or 'browse_path'"));
        }
        (Some(id), None) => {
            let identifier = identifier(c, item, &id)?;
            (NodeAddress::NodeId(id), Some(identifier))
        }
        (None, Some(path)) => (NodeAddress::BrowsePath(browse_path(c, item, &path)?), None),
    };
    let data_type = OpcDataType::parse(&t.data_type).ok_or_else(|| {
        c.err(
            item,
            "data_type",
            format!(
                "unknown data type '{}' (expected f64, f32, i32, u16, u32 or bool)",
                t.data_type
            ),
        )
    })?;
    let access = c.access(item, t.access.as_deref())?;
    let limits = c.limits(item, t.min, t.max, access, data_type == OpcDataType::Bool)?;
    let group_sampling = group.and_then(|g| servers.get(server)?.groups.get(g)?.sampling_interval);
    let sampling_interval = match (t.sampling_interval_ms, group_sampling) {
        (None, Some(from_group)) => from_group,
        (ms, _) => c.millis(item, "sampling_interval_ms", ms, SAMPLING_MS)?,
    };
    let deadband = match t.deadband.map(Number::get) {
        None => None,
        Some(_) if data_type == OpcDataType::Bool => {
            return Err(c.err(item, "deadband", "a bool has no deadband"));
        }
        Some(d) if d.is_finite() && d >= 0.0 => Some(d),
        Some(d) => {
            return Err(c.err(item, "deadband", format!("{d} is not a finite number >= 0")));
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
        group,
    })
}

fn identifier(c: &Checker<'_>, item: &str, id: &str) -> Result<Identifier, TagMapError> {
    let bad = |why: &str| c.err(item, "node_id", format!("'{id}' {why}"));
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

fn browse_path(c: &Checker<'_>, item: &str, path: &str) -> Result<Vec<String>, TagMapError> {
    let segments: Vec<String> = path.split('/').map(str::to_string).collect();
    if segments.iter().any(|s| s.trim().is_empty()) {
        return Err(c.err(
            item,
            "browse_path",
            format!("'{path}' has an empty segment (expected Folder/Variable)"),
        ));
    }
    Ok(segments)
}
