//! One server's connection task: connect, resolve, subscribe, watch, reconnect.
//!
//! async-opcua can reconnect by itself, but a rejected password makes it
//! retry forever behind `wait_for_connection`. So the adapter drives the
//! session event loop itself with the library's retries turned off: every
//! attempt is a fresh session, each step is bounded by the request timeout,
//! and a lost or refused connection is retried here with capped exponential
//! backoff (straight to the cap for a rejection). After each connect the
//! namespace indices are looked up by URI, browse paths are translated, and
//! new subscriptions are created (one per group of tags, each with its own
//! publishing interval), so a restarted server gets its monitored items back.

use crate::adapter::{Inner, Live, timed};
use crate::config::{NodeAddress, Security, ServerConfig, TagConfig};
use crate::convert::{self, Rejection};
use futures::StreamExt;
use opcua::client::{
    Client, ClientBuilder, DataChangeCallback, IdentityToken, MonitoredItem, Password, Session,
    SessionEventLoop, SessionPollResult, transport::TcpConnector,
};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    AttributeId, BrowsePath, DataChangeFilter, DataChangeTrigger, DataValue, DeadbandType,
    EndpointDescription, ExtensionObject, MessageSecurityMode, MonitoredItemCreateRequest,
    MonitoringMode, MonitoringParameters, NodeId, ObjectId, QualifiedName, ReadValueId,
    ReferenceTypeId, RelativePath, RelativePathElement, StatusCode, TimestampsToReturn,
};
use remine_domain::BadReason;
use remine_plc_common::{Backoff, ErrorKind, Link};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Runs until `cancel`: keeps server `s` connected and its tags fed.
#[tracing::instrument(name = "opcua_server", skip(inner, cancel), fields(server = %inner.server_name(s)))]
pub(crate) async fn run_server(inner: Arc<Inner>, s: usize, cancel: CancellationToken) {
    let Some(cfg) = inner.config.servers().get(s).cloned() else {
        return;
    };
    let Some(built) = cancellable(&cancel, build_client(&cfg)).await else {
        return;
    };
    let mut client = match built {
        Ok(client) => client,
        Err(why) => {
            // Without a client nothing can be retried: the tags say why.
            let why = format!(
                "cannot set up the OPC UA client for server '{}' (pki_dir {}): {why}",
                cfg.name(),
                cfg.pki_dir().display()
            );
            inner.failed(s, why.clone(), BadReason::ConfigurationError(why));
            return;
        }
    };
    let mut backoff = Backoff::new(cfg.reconnect_min(), cfg.reconnect_max());
    loop {
        let Some(link) = inner.link(s) else {
            return;
        };
        let Some(attempt) = cancellable(&cancel, connect(&mut client, &cfg, link)).await else {
            return;
        };
        match attempt {
            Err(failure) => {
                if failure.rejected {
                    backoff.slow_down();
                }
                inner.failed(s, failure.why, BadReason::NotConnected);
            }
            Ok(mut conn) => {
                let weak = Arc::downgrade(&inner);
                let Some(setup) =
                    cancellable(&cancel, setup(&inner, weak, s, &cfg, &conn.session)).await
                else {
                    conn.close(cfg.request_timeout()).await;
                    return;
                };
                match setup {
                    Err(why) => inner.failed(s, why, BadReason::NotConnected),
                    Ok(live) => {
                        inner.up(s, live);
                        backoff.reset();
                        tokio::select! {
                            why = conn.lost(&cfg) => {
                                inner.down(s);
                                inner.failed(s, why, BadReason::NotConnected);
                            }
                            () = cancel.cancelled() => {
                                inner.down(s);
                                conn.close(cfg.request_timeout()).await;
                                return;
                            }
                        }
                    }
                }
                conn.close(cfg.request_timeout()).await;
            }
        }
        if cancellable(&cancel, tokio::time::sleep(backoff.next_delay()))
            .await
            .is_none()
        {
            return;
        }
    }
}

async fn cancellable<T>(cancel: &CancellationToken, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        () = cancel.cancelled() => None,
    }
}

/// Monitored items created per call: servers limit items per call (1000 by
/// default in async-opcua, often less elsewhere) and the message size
/// (about 320 kB by default), which 10,000 items in one request exceed.
const ITEMS_PER_CALL: usize = 500;
/// Browse paths translated per call (servers often allow only 100).
const PATHS_PER_CALL: usize = 100;

/// The OPC UA client: our certificate (created in `pki_dir` if missing), trust
/// settings, timeouts, and no reconnects of its own.
fn client_builder(cfg: &ServerConfig) -> ClientBuilder {
    let keep_alive = cfg.request_timeout().max(Duration::from_secs(1));
    ClientBuilder::new()
        .application_name("remine")
        .application_uri("urn:remine:plc-adapter")
        .product_uri("urn:remine")
        .create_sample_keypair(true)
        .pki_dir(cfg.pki_dir())
        .trust_server_certs(cfg.trust_server_certs())
        .session_retry_limit(0)
        .session_timeout(u32::try_from(cfg.session_timeout().as_millis()).unwrap_or(u32::MAX))
        .request_timeout(cfg.request_timeout())
        .keep_alive_interval(keep_alive)
        .max_failed_keep_alive_count(3)
        .recreate_subscriptions(false)
        .session_name(format!("remine {}", cfg.name()))
}

/// Builds the client off the async threads: it may generate an RSA key.
async fn build_client(cfg: &ServerConfig) -> Result<Client, String> {
    let builder = client_builder(cfg);
    match tokio::task::spawn_blocking(move || builder.client()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(errors)) => Err(errors.join("; ")),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a connection attempt failed.
struct Failure {
    why: String,
    /// The server refused us; retrying soon will not help.
    rejected: bool,
    /// How it counts in the link's stats.
    kind: ErrorKind,
}

impl Failure {
    fn status(cfg: &ServerConfig, step: &str, status: StatusCode, detail: &str) -> Failure {
        let rejection = convert::rejection(status);
        let why = match rejection {
            Some(Rejection::Identity) => {
                let who = cfg
                    .credentials()
                    .map_or("anonymous access".to_string(), |c| {
                        format!("user '{}'", c.username())
                    });
                format!(
                    "server '{}' rejected {who} ({status}) while {step}: check the user name and password",
                    cfg.name()
                )
            }
            Some(Rejection::Security) => format!(
                "server '{}' rejected the secure channel ({status}) while {step}: check that each \
                 side trusts the other's certificate (ours is in {pki}/own; an untrusted server \
                 certificate lands in {pki}/rejected and is trusted by moving it to {pki}/trusted)",
                cfg.name(),
                pki = cfg.pki_dir().display()
            ),
            None if detail.is_empty() => {
                format!("{step} on server '{}' failed: {status}", cfg.name())
            }
            None => format!("{step} on server '{}' failed: {detail}", cfg.name()),
        };
        Failure {
            why,
            rejected: rejection.is_some(),
            kind: convert::error_kind(status),
        }
    }

    fn timeout(cfg: &ServerConfig, step: &str) -> Failure {
        Failure {
            why: format!(
                "{step} on server '{}' ({}) got no answer within {} ms",
                cfg.name(),
                cfg.endpoint(),
                cfg.request_timeout().as_millis()
            ),
            rejected: false,
            kind: ErrorKind::Timeout,
        }
    }
}

enum Event {
    Connected,
    Lost(StatusCode),
    Failed(StatusCode),
    Ended,
}

/// A session and the task that drives its event loop.
struct Connection {
    session: Arc<Session>,
    events: mpsc::UnboundedReceiver<Event>,
    pump: JoinHandle<()>,
}

impl Connection {
    /// Waits until the connection is lost and says why.
    async fn lost(&mut self, cfg: &ServerConfig) -> String {
        loop {
            match self.events.recv().await {
                Some(Event::Connected) => continue,
                Some(Event::Lost(code) | Event::Failed(code)) => {
                    return format!("connection to server '{}' lost: {code}", cfg.name());
                }
                Some(Event::Ended) | None => {
                    return format!("connection to server '{}' closed", cfg.name());
                }
            }
        }
    }

    /// Closes the session politely, within `limit`.
    async fn close(self, limit: Duration) {
        if !self.pump.is_finished() {
            let _ = timeout(limit, self.session.disconnect()).await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Drives the session's event loop and reports what matters. It stops at the
/// first loss or failure: reconnecting is [`run_server`]'s job.
async fn pump(event_loop: SessionEventLoop<TcpConnector>, events: mpsc::UnboundedSender<Event>) {
    let stream = event_loop.enter();
    tokio::pin!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(SessionPollResult::Reconnected(_)) => Event::Connected,
            Ok(SessionPollResult::ConnectionLost(code)) => {
                let _ = events.send(Event::Lost(code));
                return;
            }
            Ok(SessionPollResult::ReconnectFailed(code)) | Err(code) => {
                let _ = events.send(Event::Failed(code));
                return;
            }
            Ok(_) => continue,
        };
        if events.send(event).is_err() {
            return;
        }
    }
    let _ = events.send(Event::Ended);
}

#[tracing::instrument(name = "opcua_connect", skip(client, cfg, link), fields(server = %cfg.name()))]
async fn connect(
    client: &mut Client,
    cfg: &ServerConfig,
    link: &Link,
) -> Result<Connection, Failure> {
    link.stats().request();
    let attempt = open(client, cfg).await;
    if let Err(failure) = &attempt {
        link.stats().error(failure.kind);
    }
    attempt
}

/// Opens a session: endpoints, secure channel, activation.
async fn open(client: &mut Client, cfg: &ServerConfig) -> Result<Connection, Failure> {
    let limit = cfg.request_timeout();
    let (policy, mode) = match cfg.security() {
        Security::None => (SecurityPolicy::None, MessageSecurityMode::None),
        Security::Basic256Sha256 => (
            SecurityPolicy::Basic256Sha256,
            MessageSecurityMode::SignAndEncrypt,
        ),
    };
    let identity = match cfg.credentials() {
        Some(c) => IdentityToken::UserName(
            c.username().to_string(),
            Password::new(c.password().expose()),
        ),
        None => IdentityToken::Anonymous,
    };
    let endpoint: EndpointDescription = (cfg.endpoint(), policy.to_str(), mode).into();
    let step = "getting the endpoints";
    let (session, event_loop) = match timeout(
        limit,
        client.connect_to_matching_endpoint(endpoint, identity),
    )
    .await
    {
        Err(_) => return Err(Failure::timeout(cfg, step)),
        Ok(Err(e)) => return Err(Failure::status(cfg, step, e.status(), &e.to_string())),
        Ok(Ok(pair)) => pair,
    };
    let (tx, events) = mpsc::unbounded_channel();
    let pump = tokio::spawn(pump(event_loop, tx));
    let mut conn = Connection {
        session,
        events,
        pump,
    };
    let step = "opening a session";
    match timeout(limit, conn.events.recv()).await {
        Err(_) => Err(Failure::timeout(cfg, step)),
        Ok(Some(Event::Connected)) => {
            tracing::info!("OPC UA session open");
            Ok(conn)
        }
        Ok(Some(Event::Lost(code) | Event::Failed(code))) => {
            Err(Failure::status(cfg, step, code, ""))
        }
        Ok(Some(Event::Ended) | None) => Err(Failure::status(
            cfg,
            step,
            StatusCode::BadConnectionClosed,
            "",
        )),
    }
}

/// One bounded, counted service call; the error names the step and the server.
async fn call<T>(
    link: &Link,
    cfg: &ServerConfig,
    step: &str,
    fut: impl Future<Output = Result<T, opcua::types::Error>>,
) -> Result<T, String> {
    match timed(link, cfg.request_timeout(), fut).await {
        None => Err(format!(
            "{step} on server '{}' got no answer within {} ms",
            cfg.name(),
            cfg.request_timeout().as_millis()
        )),
        Some(Err(e)) => Err(format!("{step} on server '{}' failed: {e}", cfg.name())),
        Some(Ok(v)) => Ok(v),
    }
}

/// A browse path from the Objects folder, each name in namespace `ns`.
pub(crate) fn browse_path(ns: u16, segments: &[String]) -> BrowsePath {
    BrowsePath {
        starting_node: ObjectId::ObjectsFolder.into(),
        relative_path: RelativePath {
            elements: Some(
                segments
                    .iter()
                    .map(|name| RelativePathElement {
                        reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
                        is_inverse: false,
                        include_subtypes: true,
                        target_name: QualifiedName::new(ns, name.as_str()),
                    })
                    .collect(),
            ),
        },
    }
}

/// The monitored item of tag `i`: reporting, its sampling interval, queue
/// size 1, and its absolute deadband if it has one.
fn monitored_item(i: usize, t: &TagConfig, node: &NodeId) -> MonitoredItemCreateRequest {
    let filter = t.deadband().map_or_else(ExtensionObject::null, |d| {
        ExtensionObject::from_message(DataChangeFilter {
            trigger: DataChangeTrigger::StatusValue,
            deadband_type: DeadbandType::Absolute as u32,
            deadband_value: d,
        })
    });
    MonitoredItemCreateRequest {
        item_to_monitor: ReadValueId {
            node_id: node.clone(),
            attribute_id: AttributeId::Value as u32,
            ..Default::default()
        },
        monitoring_mode: MonitoringMode::Reporting,
        requested_parameters: MonitoringParameters {
            client_handle: u32::try_from(i + 1).unwrap_or(0),
            sampling_interval: t.sampling_interval().as_secs_f64() * 1000.0,
            filter,
            queue_size: 1,
            discard_oldest: true,
        },
    }
}

/// Resolves every tag of the server, then subscribes to the resolved ones,
/// one subscription per group.
/// Tags that do not resolve turn bad with the reason; the rest of the server
/// still works.
async fn setup(
    inner: &Inner,
    weak: Weak<Inner>,
    s: usize,
    cfg: &ServerConfig,
    session: &Arc<Session>,
) -> Result<Live, String> {
    let link = inner
        .link(s)
        .ok_or_else(|| format!("server #{s} is not in the tag map"))?;
    let namespaces = call(
        link,
        cfg,
        "reading the namespace array",
        session.read_namespace_array(),
    )
    .await?;
    let tags = inner.server_tags(s);
    let mut nodes: HashMap<usize, Result<NodeId, String>> = HashMap::new();
    let mut paths = Vec::new();
    let mut path_tags = Vec::new();
    for &i in tags {
        let Some(t) = inner.config.tags().get(i) else {
            continue;
        };
        let Some(ns) = namespaces.get_index(t.namespace_uri()) else {
            nodes.insert(
                i,
                Err(format!(
                    "namespace '{}' of tag {} is not on server '{}'",
                    t.namespace_uri(),
                    t.name(),
                    cfg.name()
                )),
            );
            continue;
        };
        match (t.address(), t.identifier()) {
            (NodeAddress::BrowsePath(segments), _) => {
                paths.push(browse_path(ns, segments));
                path_tags.push(i);
            }
            (NodeAddress::NodeId(_), Some(id)) => {
                nodes.insert(i, Ok(NodeId::new(ns, id.clone())));
            }
            (NodeAddress::NodeId(id), None) => {
                nodes.insert(
                    i,
                    Err(format!("node id '{id}' of tag {} was not parsed", t.name())),
                );
            }
        }
    }
    if !paths.is_empty() {
        let mut results = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(PATHS_PER_CALL) {
            results.extend(
                call(
                    link,
                    cfg,
                    "translating browse paths",
                    session.translate_browse_paths_to_node_ids(chunk),
                )
                .await?,
            );
        }
        for (k, &i) in path_tags.iter().enumerate() {
            let result = results.get(k);
            let node = result
                .filter(|r| r.status_code.is_good())
                .and_then(|r| r.targets.as_ref())
                .and_then(|targets| targets.first())
                .and_then(|target| target.target_id.try_resolve(&namespaces))
                .map(|node| node.into_owned());
            let status = result.map_or(StatusCode::BadNoMatch, |r| r.status_code);
            let describe = || {
                let t = inner.config.tags().get(i);
                format!(
                    "browse path '{}' of tag {} (namespace '{}') does not resolve on server '{}': {status}",
                    t.map(|t| t.address().to_string()).unwrap_or_default(),
                    t.map(|t| t.name().to_string()).unwrap_or_default(),
                    t.map(|t| t.namespace_uri()).unwrap_or_default(),
                    cfg.name()
                )
            };
            nodes.insert(i, node.ok_or_else(describe));
        }
    }

    // One subscription per group that has tags: the server's default group
    // (tags naming none) first, then the named groups in file order.
    let mut problems: Vec<(usize, String)> = nodes
        .iter()
        .filter_map(|(&i, node)| node.as_ref().err().map(|why| (i, why.clone())))
        .collect();
    let groups = std::iter::once((None, cfg.publishing_interval())).chain(
        cfg.groups()
            .iter()
            .enumerate()
            .map(|(g, group)| (Some(g), group.publishing_interval())),
    );
    for (group, publishing_interval) in groups {
        let mut item_tags = Vec::new();
        let mut items = Vec::new();
        for &i in tags {
            let (Some(Ok(node)), Some(t)) = (nodes.get(&i), inner.config.tags().get(i)) else {
                continue;
            };
            if t.group_index() != group {
                continue;
            }
            items.push(monitored_item(i, t, node));
            item_tags.push(i);
        }
        if items.is_empty() {
            continue;
        }
        let weak = weak.clone();
        let callback = DataChangeCallback::new(move |value: DataValue, item: &MonitoredItem| {
            if let Some(inner) = weak.upgrade() {
                // Client handles are tag index + 1: async-opcua replaces a 0.
                let handle = item.client_handle() as usize;
                inner.received(handle.wrapping_sub(1), value);
            }
        });
        let subscription = call(
            link,
            cfg,
            "creating a subscription",
            session.create_subscription(publishing_interval, 60, 10, 0, 0, true, callback),
        )
        .await?;
        let mut created = Vec::with_capacity(items.len());
        let mut items = items;
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(ITEMS_PER_CALL));
            created.extend(
                call(
                    link,
                    cfg,
                    "creating monitored items",
                    session.create_monitored_items(subscription, TimestampsToReturn::Both, items),
                )
                .await?,
            );
            items = rest;
        }
        for (k, &i) in item_tags.iter().enumerate() {
            let status = created
                .get(k)
                .map_or(StatusCode::BadUnexpectedError, |c| c.result.status_code);
            if !status.is_good() {
                let name = inner
                    .config
                    .tags()
                    .get(i)
                    .map(|t| t.name().to_string())
                    .unwrap_or_default();
                problems.push((
                    i,
                    format!(
                        "tag {name} cannot be monitored on server '{}': {status}",
                        cfg.name()
                    ),
                ));
            }
        }
    }
    problems.sort();
    Ok(Live {
        session: session.clone(),
        namespaces,
        nodes,
        problems,
    })
}
