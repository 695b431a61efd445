//! The running adapter: a connection task per server, the reading cache, writes and method calls.
//!
//! `read` serves from the cache that the subscriptions fill. `write` checks
//! the tag (unknown, read-only, limits, type) before anything reaches the
//! wire, writes the tag's exact variant type, reads the value back and
//! compares. `call_method` finds an object and its method by browse path and
//! calls it.

use crate::OpcUaError;
use crate::config::{OpcUaConfig, ServerConfig};
use crate::connection::{browse_path, run_server};
use crate::convert;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opcua::client::Session;
use opcua::types::{
    AttributeId, CallMethodRequest, DataValue, NamespaceMap, NodeId, NumericRange, ReadValueId,
    StatusCode, TimestampsToReturn, Variant, WriteValue,
};
use remine_domain::ports::{DeviceStats, DeviceStatsSource, TagError, TagIo};
use remine_domain::{Access, BadReason, Quality, TagInfo, TagName, TagReading, TagValue};
use remine_plc_common::{Cache, ErrorKind, Link, Workers};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::time::timeout;

/// How long `shutdown` waits for a connection task to close its session.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The link state of one server, for a comms-loss alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    pub server: String,
    /// A session is open and the subscription is set up.
    pub connected: bool,
    /// The most recent connection failure, kept after recovery. A rejected
    /// password or certificate says so here.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Times the connection came back after being lost.
    pub reconnects: u64,
    /// Failed attempts since the last successful connect.
    pub consecutive_failures: u32,
    /// What the last connect could not resolve: namespace URIs missing on the
    /// server, browse paths that lead nowhere, nodes that cannot be monitored.
    pub config_problems: Vec<String>,
    /// When the comms-loss alarm was raised, while it is: the moment the
    /// server had been unreachable for its `comms_alarm_delay_ms`. Cleared
    /// when a session is up again.
    pub comms_alarm: Option<SystemTime>,
    /// Every subscription group of the server that has tags (the default
    /// group first, then the `[[server.group]]`s in file order): what was
    /// asked for and what the server granted.
    pub groups: Vec<GroupStatus>,
}

/// One subscription group of a server: the intervals it asked for, the
/// intervals the server granted on the current session, and the data
/// changes it delivered. A server that cannot sample or publish as fast as
/// asked revises the intervals upwards; the revised figures show it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    /// The `[[server.group]]` name; `None` for the server's default group
    /// (the tags that name no group).
    pub group: Option<String>,
    /// Tags in the group.
    pub tags: usize,
    /// Subscriptions the group holds on the current session (its monitored
    /// items split by `max_items_per_subscription`); 0 while not subscribed.
    pub subscriptions: usize,
    /// The publishing interval asked for.
    pub requested_publishing_interval: Duration,
    /// The publishing interval the server granted (the slowest over the
    /// group's subscriptions); `None` while not subscribed.
    pub revised_publishing_interval: Option<Duration>,
    /// The sampling intervals asked for, fastest and slowest over the
    /// group's tags.
    pub requested_sampling_interval: (Duration, Duration),
    /// The sampling intervals the server granted, fastest and slowest over
    /// the group's monitored items; `None` while not subscribed.
    pub revised_sampling_interval: Option<(Duration, Duration)>,
    /// Data changes received since the adapter started.
    pub changes: u64,
}

/// An object's method, found by browse path from the Objects folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodRef {
    server: String,
    namespace_uri: String,
    object_path: Vec<String>,
    method: String,
}

impl MethodRef {
    /// `object_path` is `Folder/Object` (browse names in `namespace_uri`),
    /// `method` the method's browse name in the same namespace.
    pub fn new(
        server: &str,
        namespace_uri: &str,
        object_path: &str,
        method: &str,
    ) -> Result<MethodRef, OpcUaError> {
        let object_path: Vec<String> = object_path.split('/').map(str::to_string).collect();
        let bad = |why: String| OpcUaError::Call {
            server: server.to_string(),
            method: method.to_string(),
            why,
        };
        if object_path.iter().any(|s| s.trim().is_empty()) {
            return Err(bad(format!(
                "object path '{}' has an empty segment",
                object_path.join("/")
            )));
        }
        if method.trim().is_empty() || namespace_uri.trim().is_empty() {
            return Err(bad(
                "the method name and namespace URI must not be empty".into()
            ));
        }
        Ok(MethodRef {
            server: server.to_string(),
            namespace_uri: namespace_uri.to_string(),
            object_path,
            method: method.to_string(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }
}

impl fmt::Display for MethodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.object_path.join("/"), self.method)
    }
}

/// OPC UA behind the [`TagIo`] port. Dropping it stops its connection tasks;
/// [`OpcUaAdapter::shutdown`] also closes the sessions politely.
pub struct OpcUaAdapter {
    inner: Arc<Inner>,
    workers: Workers,
}

pub(crate) struct Inner {
    pub(crate) config: OpcUaConfig,
    cache: Cache,
    servers: Vec<ServerRuntime>,
}

struct ServerRuntime {
    pub(crate) link: Link,
    /// What the last connect could not resolve.
    config_problems: Mutex<Vec<String>>,
    live: RwLock<Option<Arc<Live>>>,
    tags: Vec<usize>,
    /// Slot 0: the default group; slot g + 1: `[[server.group]]` g.
    groups: Vec<GroupRuntime>,
}

/// The running state of one subscription group of a server.
#[derive(Default)]
struct GroupRuntime {
    /// Data changes received since start.
    changes: AtomicU64,
    /// What the server granted on the current session.
    granted: Mutex<Option<Granted>>,
}

/// What a server granted a group on one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Granted {
    pub(crate) subscriptions: usize,
    /// The slowest revised publishing interval of the group's subscriptions.
    pub(crate) publishing_interval: Duration,
    /// Fastest and slowest revised sampling interval of its monitored items.
    pub(crate) sampling_interval: Option<(Duration, Duration)>,
}

/// The group slot of a tag: 0 for the default group, g + 1 for group g.
pub(crate) fn group_slot(group: Option<usize>) -> usize {
    group.map_or(0, |g| g + 1)
}

/// An open, set-up session and what was resolved on it.
pub(crate) struct Live {
    pub(crate) session: Arc<Session>,
    pub(crate) namespaces: NamespaceMap,
    /// The node of each tag of the server, or why it has none.
    pub(crate) nodes: HashMap<usize, Result<NodeId, String>>,
    /// (tag index, problem) found while setting up.
    pub(crate) problems: Vec<(usize, String)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OpcUaAdapter {
    /// Starts one connection task per server and returns at once: an
    /// unreachable server only reads bad until it answers. Must run inside a
    /// tokio runtime.
    pub fn start(config: OpcUaConfig) -> Result<OpcUaAdapter, OpcUaError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| OpcUaError::NoRuntime(e.to_string()))?;
        let servers = config
            .servers()
            .iter()
            .enumerate()
            .map(|(s, cfg)| ServerRuntime {
                link: Link::new("opcua", cfg.name(), cfg.comms_alarm_delay()),
                config_problems: Mutex::new(Vec::new()),
                live: RwLock::new(None),
                tags: config
                    .tags()
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.server_index() == s)
                    .map(|(i, _)| i)
                    .collect(),
                groups: (0..=cfg.groups().len())
                    .map(|_| GroupRuntime::default())
                    .collect(),
            })
            .collect();
        let inner = Arc::new(Inner {
            cache: Cache::new(config.tags().iter().map(|t| t.name().clone())),
            config,
            servers,
        });
        let mut workers = Workers::spawn(&runtime, inner.servers.len(), |s, cancel| {
            run_server(inner.clone(), s, cancel)
        });
        let watched = inner.clone();
        workers.also(&runtime, |cancel| async move {
            let links: Vec<&Link> = watched.servers.iter().map(|s| &s.link).collect();
            cancel
                .run_until_cancelled(remine_plc_common::watch_alarms(&links))
                .await;
        });
        Ok(OpcUaAdapter { inner, workers })
    }

    /// Stops the connection tasks and closes every session.
    pub async fn shutdown(self) {
        self.workers
            .shutdown(SHUTDOWN_GRACE, "an OPC UA connection task")
            .await;
    }

    /// The link state of every server, in tag-map order.
    pub fn status(&self) -> Vec<ServerStatus> {
        self.inner
            .config
            .servers()
            .iter()
            .zip(&self.inner.servers)
            .map(|(cfg, s)| {
                let link = s.link.health();
                ServerStatus {
                    server: cfg.name().to_string(),
                    connected: link.connected(),
                    last_error: link.last_error().map(str::to_string),
                    last_error_at: link.last_error_at(),
                    reconnects: link.reconnects(),
                    consecutive_failures: link.consecutive_failures(),
                    config_problems: lock(&s.config_problems).clone(),
                    comms_alarm: link.comms_alarm(),
                    groups: self.group_status(cfg, s),
                }
            })
            .collect()
    }

    /// The status of every group of a server that has tags.
    fn group_status(&self, cfg: &ServerConfig, server: &ServerRuntime) -> Vec<GroupStatus> {
        let tags = self.inner.config.tags();
        server
            .groups
            .iter()
            .enumerate()
            .filter_map(|(slot, group)| {
                let (name, publishing) = match slot.checked_sub(1) {
                    None => (None, cfg.publishing_interval()),
                    Some(g) => {
                        let named = cfg.groups().get(g)?;
                        (Some(named.name().to_string()), named.publishing_interval())
                    }
                };
                let sampling: Vec<Duration> = server
                    .tags
                    .iter()
                    .filter_map(|&i| tags.get(i))
                    .filter(|t| group_slot(t.group_index()) == slot)
                    .map(|t| t.sampling_interval())
                    .collect();
                let fastest = sampling.iter().min().copied()?;
                let slowest = sampling.iter().max().copied().unwrap_or(fastest);
                let granted = *lock(&group.granted);
                Some(GroupStatus {
                    group: name,
                    tags: sampling.len(),
                    subscriptions: granted.map_or(0, |g| g.subscriptions),
                    requested_publishing_interval: publishing,
                    revised_publishing_interval: granted.map(|g| g.publishing_interval),
                    requested_sampling_interval: (fastest, slowest),
                    revised_sampling_interval: granted.and_then(|g| g.sampling_interval),
                    changes: group.changes.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    pub fn config(&self) -> &OpcUaConfig {
        &self.inner.config
    }

    /// Calls a method with `args` (floats as Double, integers as Int32 or
    /// Int64, bools as Boolean) and returns its outputs.
    #[tracing::instrument(name = "opcua_call", skip(self, args), fields(server = %method.server, method = %method))]
    pub async fn call_method(
        &self,
        method: &MethodRef,
        args: &[TagValue],
    ) -> Result<Vec<TagValue>, OpcUaError> {
        let s = self
            .inner
            .config
            .servers()
            .iter()
            .position(|s| s.name() == method.server)
            .ok_or_else(|| OpcUaError::UnknownServer(method.server.clone()))?;
        let (Some(cfg), Some(live), Some(link)) = (
            self.inner.config.servers().get(s),
            self.inner.live(s),
            self.inner.link(s),
        ) else {
            return Err(OpcUaError::NotConnected {
                server: method.server.clone(),
            });
        };
        let fail = |why: String| OpcUaError::Call {
            server: method.server.clone(),
            method: method.to_string(),
            why,
        };
        let ns = live
            .namespaces
            .get_index(&method.namespace_uri)
            .ok_or_else(|| {
                fail(format!(
                    "namespace '{}' is not on the server",
                    method.namespace_uri
                ))
            })?;
        let mut method_path = method.object_path.clone();
        method_path.push(method.method.clone());
        let paths = [
            browse_path(ns, &method.object_path),
            browse_path(ns, &method_path),
        ];
        let results = bounded(
            link,
            cfg,
            live.session.translate_browse_paths_to_node_ids(&paths),
        )
        .await
        .map_err(&fail)?;
        let resolve = |k: usize| {
            let r = results.get(k)?;
            if !r.status_code.is_good() {
                return None;
            }
            let target = r.targets.as_ref()?.first()?;
            target
                .target_id
                .try_resolve(&live.namespaces)
                .map(|n| n.into_owned())
        };
        let object_id = resolve(0).ok_or_else(|| {
            fail(format!(
                "object '{}' not found",
                method.object_path.join("/")
            ))
        })?;
        let method_id = resolve(1).ok_or_else(|| fail("method not found on the object".into()))?;
        let request = CallMethodRequest {
            object_id,
            method_id,
            input_arguments: Some(args.iter().map(|a| convert::argument(*a)).collect()),
        };
        let result = bounded(link, cfg, live.session.call_one(request))
            .await
            .map_err(&fail)?;
        if !result.status_code.is_good() {
            let args: Vec<String> = result
                .input_argument_results
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(fail(if args.is_empty() {
                format!("the server answered {}", result.status_code)
            } else {
                format!(
                    "the server answered {} (arguments: {})",
                    result.status_code,
                    args.join(", ")
                )
            }));
        }
        result
            .output_arguments
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(k, v)| {
                convert::tag_value(v).ok_or_else(|| {
                    fail(format!(
                        "output #{} is {}, not a number or bool",
                        k + 1,
                        convert::variant_kind(v)
                    ))
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "opcua_write", skip(self, value), fields(tag = %tag))]
    async fn write_tag(&self, tag: &TagName, value: TagValue) -> Result<(), TagError> {
        let inner = &self.inner;
        let unknown = || TagError::UnknownTag(tag.clone());
        let i = inner.cache.index(tag).ok_or_else(unknown)?;
        let t = inner.config.tags().get(i).ok_or_else(unknown)?;
        if t.access() != Access::ReadWrite {
            return Err(TagError::ReadOnly(tag.clone()));
        }
        let variant = convert::write_variant(t, value)?;
        let failed = |why: String| TagError::Failed {
            tag: tag.clone(),
            why,
        };
        let written = convert::read_value(t, &variant).map_err(&failed)?;
        let s = t.server_index();
        let (Some(cfg), Some(live), Some(link)) =
            (inner.config.servers().get(s), inner.live(s), inner.link(s))
        else {
            return Err(TagError::NotConnected { tag: tag.clone() });
        };
        let node = match live.nodes.get(&i) {
            Some(Ok(node)) => node.clone(),
            Some(Err(why)) => return Err(failed(why.clone())),
            None => return Err(failed(format!("{tag} has no node on its server"))),
        };
        let write = WriteValue {
            node_id: node.clone(),
            attribute_id: AttributeId::Value as u32,
            index_range: NumericRange::None,
            value: DataValue {
                value: Some(variant),
                ..Default::default()
            },
        };
        let results = bounded(link, cfg, live.session.write(&[write]))
            .await
            .map_err(&failed)?;
        let status = results
            .first()
            .copied()
            .unwrap_or(StatusCode::BadUnexpectedError);
        if !status.is_good() {
            return Err(failed(format!("the server refused the write: {status}")));
        }
        let read = bounded(
            link,
            cfg,
            live.session
                .read(&[ReadValueId::from(node)], TimestampsToReturn::Both, 0.0),
        )
        .await
        .map_err(&failed)?;
        let Some(back) = read.into_iter().next() else {
            return Err(failed("the read-back returned nothing".into()));
        };
        let read_value = back
            .value
            .as_ref()
            .map(|v| convert::read_value(t, v))
            .transpose()
            .map_err(&failed)?;
        inner.received(i, &back);
        match read_value {
            Some(v) if v == written => {
                tracing::info!(value = %value, "written and verified");
                Ok(())
            }
            other => Err(TagError::ReadBackMismatch {
                tag: tag.clone(),
                written: value.to_string(),
                read: other.map_or("no value".to_string(), |v| v.to_string()),
            }),
        }
    }
}

/// One service call bounded by `limit` and counted in the link's stats
/// (request, round trip, error by kind). `None`: no answer in time.
pub(crate) async fn timed<T>(
    link: &Link,
    limit: Duration,
    fut: impl Future<Output = Result<T, opcua::types::Error>>,
) -> Option<Result<T, opcua::types::Error>> {
    let stats = link.stats();
    stats.request();
    let sent = Instant::now();
    match timeout(limit, fut).await {
        Err(_) => {
            stats.error(ErrorKind::Timeout);
            None
        }
        Ok(result) => {
            match &result {
                Ok(_) => stats.answered(sent.elapsed()),
                Err(e) => {
                    let kind = convert::error_kind(e.status());
                    if kind != ErrorKind::Timeout {
                        stats.answered(sent.elapsed());
                    }
                    stats.error(kind);
                }
            }
            Some(result)
        }
    }
}

/// One service call bounded by the server's request timeout.
async fn bounded<T>(
    link: &Link,
    cfg: &ServerConfig,
    fut: impl Future<Output = Result<T, opcua::types::Error>>,
) -> Result<T, String> {
    match timed(link, cfg.request_timeout(), fut).await {
        None => Err(format!(
            "no answer from server '{}' within {} ms",
            cfg.name(),
            cfg.request_timeout().as_millis()
        )),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(v)) => Ok(v),
    }
}

/// A cache update: tag index, value (`None` keeps the last), quality, source time.
type Update = (usize, Option<TagValue>, Quality, Option<DateTime<Utc>>);

/// What a data value from the server means for tag `t`: its value (`None`
/// keeps the last one), quality and source timestamp.
fn reading(
    t: &crate::TagConfig,
    dv: &DataValue,
) -> (Option<TagValue>, Quality, Option<DateTime<Utc>>) {
    let status = dv.status.unwrap_or(StatusCode::Good);
    let source = dv
        .source_timestamp
        .as_ref()
        .or(dv.server_timestamp.as_ref())
        .map(convert::time);
    match dv.value.as_ref().filter(|v| !matches!(v, Variant::Empty)) {
        Some(v) => match convert::read_value(t, v) {
            Ok(value) => (Some(value), convert::quality(status), source),
            Err(why) => (None, Quality::Bad(BadReason::ConfigurationError(why)), None),
        },
        None if status.is_good() => (
            None,
            Quality::Bad(BadReason::DeviceFailure("the server sent no value".into())),
            None,
        ),
        None => (None, convert::quality(status), None),
    }
}

impl fmt::Debug for OpcUaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<&str> = self
            .inner
            .config
            .servers()
            .iter()
            .map(ServerConfig::name)
            .collect();
        f.debug_struct("OpcUaAdapter")
            .field("servers", &servers)
            .field("tags", &self.inner.config.tags().len())
            .finish()
    }
}

impl DeviceStatsSource for OpcUaAdapter {
    fn device_stats(&self) -> Vec<DeviceStats> {
        self.inner
            .servers
            .iter()
            .map(|s| s.link.device_stats())
            .collect()
    }
}

#[async_trait]
impl TagIo for OpcUaAdapter {
    fn catalogue(&self) -> Vec<TagInfo> {
        self.inner.config.catalogue()
    }

    async fn read(&self, tags: &[TagName]) -> Vec<TagReading> {
        self.inner.cache.readings(tags)
    }

    async fn write(&self, tag: &TagName, value: TagValue) -> Result<(), TagError> {
        self.write_tag(tag, value).await
    }
}

impl Inner {
    pub(crate) fn server_name(&self, s: usize) -> &str {
        self.config.servers().get(s).map_or("?", ServerConfig::name)
    }

    /// The link of server `s`; `None` only for an index out of range.
    pub(crate) fn link(&self, s: usize) -> Option<&Link> {
        self.servers.get(s).map(|r| &r.link)
    }

    pub(crate) fn server_tags(&self, s: usize) -> &[usize] {
        self.servers.get(s).map_or(&[], |r| r.tags.as_slice())
    }

    fn live(&self, s: usize) -> Option<Arc<Live>> {
        let server = self.servers.get(s)?;
        server
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A read-back.
    pub(crate) fn received(&self, i: usize, dv: &DataValue) {
        self.received_all(std::iter::once((i, dv)));
    }

    /// Data changes of one publish response: converted first, then put in
    /// the cache under one lock.
    pub(crate) fn received_all<'a>(&self, changes: impl Iterator<Item = (usize, &'a DataValue)>) {
        let updates: Vec<Update> = changes
            .filter_map(|(i, dv)| Some((i, reading(self.config.tags().get(i)?, dv))))
            .map(|(i, (value, quality, source))| (i, value, quality, source))
            .collect();
        self.cache.update_all(updates);
    }

    /// Counts `n` data changes received by group `slot` of server `s`.
    pub(crate) fn count_changes(&self, s: usize, slot: usize, n: u64) {
        if let Some(group) = self.servers.get(s).and_then(|r| r.groups.get(slot)) {
            group.changes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records what the server granted group `slot` of server `s` on this session.
    pub(crate) fn granted(&self, s: usize, slot: usize, granted: Option<Granted>) {
        if let Some(group) = self.servers.get(s).and_then(|r| r.groups.get(slot)) {
            *lock(&group.granted) = granted;
        }
    }

    /// A session is up: publish it for writes, report what did not resolve.
    pub(crate) fn up(&self, s: usize, live: Live) {
        let Some(server) = self.servers.get(s) else {
            return;
        };
        for (i, why) in &live.problems {
            self.cache
                .set_bad([*i], &BadReason::ConfigurationError(why.clone()));
        }
        let problems: Vec<String> = live.problems.iter().map(|(_, why)| why.clone()).collect();
        for why in &problems {
            tracing::warn!(problem = %why, "OPC UA tag map problem");
        }
        *server.live.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(live));
        *lock(&server.config_problems) = problems;
        server.link.answered();
        tracing::info!(server = %self.server_name(s), "OPC UA server connected");
    }

    /// The session is gone: no more writes, tags bad with stale values.
    pub(crate) fn down(&self, s: usize) {
        let Some(server) = self.servers.get(s) else {
            return;
        };
        *server.live.write().unwrap_or_else(|e| e.into_inner()) = None;
        for group in &server.groups {
            *lock(&group.granted) = None;
        }
        self.cache
            .set_bad(server.tags.iter().copied(), &BadReason::NotConnected);
        server.link.disconnected();
    }

    /// A failed connection attempt or a lost connection.
    pub(crate) fn failed(&self, s: usize, why: String, reason: BadReason) {
        let Some(server) = self.servers.get(s) else {
            return;
        };
        self.cache.set_bad(server.tags.iter().copied(), &reason);
        let name = self.server_name(s);
        let new_reason = server.link.health().last_error() != Some(why.as_str());
        // Warn when the connection goes (or a new reason appears); the
        // retries that follow only repeat it.
        if server.link.failed(why.clone()) || new_reason {
            tracing::warn!(server = %name, why = %why, "OPC UA connection failed");
        } else {
            tracing::debug!(server = %name, why = %why, "OPC UA reconnect failed");
        }
    }
}
