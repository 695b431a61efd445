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
//! publishing interval, or several for a group larger than
//! `max_items_per_subscription`), so a restarted server gets its monitored
//! items back. A subscription the server reports lost starts a reconnect.
//!
//! Throughput: each subscription asks for at most
//! [`NOTIFICATIONS_PER_PUBLISH`] data changes per publish response, the most
//! the client decodes in one array, so a large group arrives as several
//! responses (the server sets MoreNotifications and async-opcua asks again
//! at once) instead of one response the client cannot decode. Publish and
//! keep-alive failures, lost connections and lost subscriptions count as
//! errors in the server's link stats.

use crate::adapter::{Granted, Inner, Live, group_slot, timed};
use crate::config::{NodeAddress, Security, ServerConfig, TagConfig};
use crate::convert::{self, Rejection};
use futures::StreamExt;
use opcua::client::{
    Client, ClientBuilder, IdentityToken, MonitoredItemMap, OnSubscriptionNotificationCore,
    Password, Session, SessionActivity, SessionEventLoop, SessionPollResult, SubscriptionActivity,
    transport::TcpConnector,
};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    AttributeId, BrowsePath, DataChangeFilter, DataChangeNotification, DataChangeTrigger,
    DeadbandType, EndpointDescription, ExtensionObject, MessageSecurityMode,
    MonitoredItemCreateRequest, MonitoringMode, MonitoringParameters, NodeId, NotificationMessage,
    ObjectId, QualifiedName, ReadValueId, ReferenceTypeId, RelativePath, RelativePathElement,
    StatusChangeNotification, StatusCode, TimestampsToReturn,
};
use remine_domain::BadReason;
use remine_plc_common::{Backoff, ErrorKind, Link};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
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
        let weak = Arc::downgrade(&inner);
        let Some(attempt) = cancellable(&cancel, connect(&mut client, &cfg, link, weak, s)).await
        else {
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
                let (lost_tx, mut lost) = mpsc::unbounded_channel();
                let Some(setup) = cancellable(
                    &cancel,
                    setup(&inner, weak, s, &cfg, &conn.session, lost_tx),
                )
                .await
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
                            Some(why) = lost.recv() => {
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
/// The most data changes a subscription asks the server to put in one
/// publish response. It is the client's array limit (async-opcua's
/// default `max_array_length`, set explicitly below): a server left to its
/// own limit may send all of a cycle's changes in one response, and one
/// array of more than 1000 fails to decode (`BadDecodingError`), losing the
/// whole response. 1000 changes of a double take about 30 kB, well within
/// the default message size.
pub(crate) const NOTIFICATIONS_PER_PUBLISH: u32 = 1000;

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
        .max_array_length(NOTIFICATIONS_PER_PUBLISH as usize)
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
    /// Set before closing on purpose: the pump then counts no error.
    closing: Arc<AtomicBool>,
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
        self.closing.store(true, Ordering::Relaxed);
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

/// How one event of the session's loop counts in the link stats: whether it
/// was a request (a publish or a keep-alive read that completed), and the
/// kind of error it was, if any. A server's publish flow control
/// (BadTooManyPublishRequests, BadNoSubscription) is no error.
pub(crate) fn counts(event: &Result<SessionPollResult, StatusCode>) -> (bool, Option<ErrorKind>) {
    let failed = |code: &StatusCode| Some(convert::error_kind(*code));
    match event {
        Ok(SessionPollResult::Subscription(activity)) => match activity {
            SubscriptionActivity::Publish => (true, None),
            SubscriptionActivity::PublishFailed(code)
                if matches!(
                    *code,
                    StatusCode::BadTooManyPublishRequests | StatusCode::BadNoSubscription
                ) =>
            {
                (true, None)
            }
            SubscriptionActivity::PublishFailed(code)
            | SubscriptionActivity::FatalFailure(code) => (true, failed(code)),
        },
        Ok(SessionPollResult::SessionActivity(SessionActivity::KeepAliveSucceeded)) => (true, None),
        Ok(SessionPollResult::SessionActivity(SessionActivity::KeepAliveFailed(code))) => {
            (true, failed(code))
        }
        Ok(SessionPollResult::ConnectionLost(code) | SessionPollResult::ReconnectFailed(code))
        | Err(code) => (false, Some(ErrorKind::Transport).filter(|_| code.is_bad())),
        Ok(_) => (false, None),
    }
}

/// Drives the session's event loop, counts publishes, keep-alives and their
/// failures in the link stats of server `s`, and reports what matters. It
/// stops at the first loss or failure: reconnecting is [`run_server`]'s job.
async fn pump(
    event_loop: SessionEventLoop<TcpConnector>,
    events: mpsc::UnboundedSender<Event>,
    inner: Weak<Inner>,
    s: usize,
    closing: Arc<AtomicBool>,
) {
    let stream = event_loop.enter();
    tokio::pin!(stream);
    while let Some(item) = stream.next().await {
        let (request, error) = counts(&item);
        if (request || error.is_some())
            && !closing.load(Ordering::Relaxed)
            && let Some(inner) = inner.upgrade()
            && let Some(link) = inner.link(s)
        {
            if request {
                link.stats().request();
            }
            if let Some(kind) = error {
                tracing::debug!(server = %inner.server_name(s), event = ?item, "OPC UA session error");
                link.stats().error(kind);
            }
        }
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

#[tracing::instrument(name = "opcua_connect", skip(client, cfg, link, inner), fields(server = %cfg.name()))]
async fn connect(
    client: &mut Client,
    cfg: &ServerConfig,
    link: &Link,
    inner: Weak<Inner>,
    s: usize,
) -> Result<Connection, Failure> {
    link.stats().request();
    let attempt = open(client, cfg, inner, s).await;
    if let Err(failure) = &attempt {
        link.stats().error(failure.kind);
    }
    attempt
}

/// Opens a session: endpoints, secure channel, activation.
async fn open(
    client: &mut Client,
    cfg: &ServerConfig,
    inner: Weak<Inner>,
    s: usize,
) -> Result<Connection, Failure> {
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
    let closing = Arc::new(AtomicBool::new(false));
    let pump = tokio::spawn(pump(event_loop, tx, inner, s, closing.clone()));
    let mut conn = Connection {
        session,
        events,
        pump,
        closing,
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
/// one subscription per group (several for a group larger than
/// `max_items_per_subscription`), and records what the server granted.
/// A subscription that reports itself lost sends why on `lost`.
/// Tags that do not resolve turn bad with the reason; the rest of the server
/// still works.
async fn setup(
    inner: &Inner,
    weak: Weak<Inner>,
    s: usize,
    cfg: &ServerConfig,
    session: &Arc<Session>,
    lost: mpsc::UnboundedSender<String>,
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

    // Subscriptions per group that has tags (the server's default group,
    // tags naming none, first; then the named groups in file order), each of
    // at most `max_items_per_subscription` monitored items.
    let mut problems: Vec<(usize, String)> = nodes
        .iter()
        .filter_map(|(&i, node)| node.as_ref().err().map(|why| (i, why.clone())))
        .collect();
    let groups = std::iter::once(cfg.publishing_interval())
        .chain(cfg.groups().iter().map(|g| g.publishing_interval()));
    for (slot, publishing_interval) in groups.enumerate() {
        let mut item_tags = Vec::new();
        let mut items = Vec::new();
        for &i in tags {
            let (Some(Ok(node)), Some(t)) = (nodes.get(&i), inner.config.tags().get(i)) else {
                continue;
            };
            if group_slot(t.group_index()) != slot {
                continue;
            }
            items.push(monitored_item(i, t, node));
            item_tags.push(i);
        }
        let mut granted: Option<Granted> = None;
        let mut created = Vec::with_capacity(items.len());
        let per_subscription = cfg.max_items_per_subscription().max(1);
        let mut items = items;
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(per_subscription));
            let feed = Feed {
                inner: weak.clone(),
                server: s,
                slot,
                lost: lost.clone(),
            };
            let subscription = call(
                link,
                cfg,
                "creating a subscription",
                session.create_subscription(
                    publishing_interval,
                    60,
                    10,
                    NOTIFICATIONS_PER_PUBLISH,
                    0,
                    true,
                    feed,
                ),
            )
            .await?;
            let revised = session
                .subscription_state()
                .lock()
                .get(subscription)
                .map_or(publishing_interval, |sub| sub.publishing_interval());
            granted = Some(match granted {
                None => Granted {
                    subscriptions: 1,
                    publishing_interval: revised,
                    sampling_interval: None,
                },
                Some(g) => Granted {
                    subscriptions: g.subscriptions + 1,
                    publishing_interval: g.publishing_interval.max(revised),
                    ..g
                },
            });
            let mut batch = items;
            while !batch.is_empty() {
                let later = batch.split_off(batch.len().min(ITEMS_PER_CALL));
                created.extend(
                    call(
                        link,
                        cfg,
                        "creating monitored items",
                        session.create_monitored_items(
                            subscription,
                            TimestampsToReturn::Both,
                            batch,
                        ),
                    )
                    .await?,
                );
                batch = later;
            }
            items = rest;
        }
        let mut sampling: Option<(Duration, Duration)> = None;
        for (k, &i) in item_tags.iter().enumerate() {
            let result = created.get(k).map(|c| &c.result);
            let status = result.map_or(StatusCode::BadUnexpectedError, |r| r.status_code);
            if status.is_good() {
                let revised = result.and_then(|r| {
                    Duration::try_from_secs_f64(r.revised_sampling_interval / 1000.0).ok()
                });
                if let Some(revised) = revised {
                    sampling = Some(sampling.map_or((revised, revised), |(lo, hi)| {
                        (lo.min(revised), hi.max(revised))
                    }));
                }
                continue;
            }
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
        inner.granted(
            s,
            slot,
            granted.map(|g| Granted {
                sampling_interval: sampling,
                ..g
            }),
        );
    }
    problems.sort();
    Ok(Live {
        session: session.clone(),
        namespaces,
        nodes,
        problems,
    })
}

/// Feeds one subscription's data changes into the cache (one lock per
/// publish response) and counts them for its group; reports the
/// subscription lost when the server says so in a status change.
struct Feed {
    inner: Weak<Inner>,
    server: usize,
    /// The group slot (0: the default group, g + 1: group g).
    slot: usize,
    lost: mpsc::UnboundedSender<String>,
}

impl OnSubscriptionNotificationCore for Feed {
    fn on_subscription_notification(
        &mut self,
        notification: NotificationMessage,
        _items: MonitoredItemMap<'_>,
    ) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        for data in notification.notification_data.iter().flatten() {
            if let Some(changes) = data.inner_as::<DataChangeNotification>() {
                let changes = changes.monitored_items.as_deref().unwrap_or_default();
                // Client handles are tag index + 1: async-opcua replaces a 0.
                inner.received_all(
                    changes
                        .iter()
                        .map(|n| ((n.client_handle as usize).wrapping_sub(1), &n.value)),
                );
                inner.count_changes(self.server, self.slot, changes.len() as u64);
            } else if let Some(change) = data.inner_as::<StatusChangeNotification>()
                && change.status.is_bad()
            {
                let why = format!(
                    "a subscription on server '{}' was lost: {}",
                    inner.server_name(self.server),
                    change.status
                );
                tracing::warn!(why = %why, "OPC UA subscription lost");
                if let Some(link) = inner.link(self.server) {
                    link.stats().error(convert::error_kind(change.status));
                }
                let _ = self.lost.send(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How `event` counts: (a request, the error kind).
    fn check(event: Result<SessionPollResult, StatusCode>, expected: (bool, Option<ErrorKind>)) {
        let label = format!("{event:?}");
        assert_eq!(counts(&event), expected, "{label}");
    }

    fn publish(activity: SubscriptionActivity) -> Result<SessionPollResult, StatusCode> {
        Ok(SessionPollResult::Subscription(activity))
    }

    fn keep_alive(activity: SessionActivity) -> Result<SessionPollResult, StatusCode> {
        Ok(SessionPollResult::SessionActivity(activity))
    }

    #[test]
    fn an_answered_publish_or_keep_alive_is_a_request_without_error() {
        check(publish(SubscriptionActivity::Publish), (true, None));
        check(
            keep_alive(SessionActivity::KeepAliveSucceeded),
            (true, None),
        );
    }

    #[test]
    fn failed_publishes_and_keep_alives_count_as_errors_by_kind() {
        use SubscriptionActivity::{FatalFailure, PublishFailed};
        let timeout = Some(ErrorKind::Timeout);
        check(
            publish(PublishFailed(StatusCode::BadTimeout)),
            (true, timeout),
        );
        check(
            publish(PublishFailed(StatusCode::BadDecodingError)),
            (true, Some(ErrorKind::Protocol)),
        );
        check(
            publish(FatalFailure(StatusCode::BadSessionIdInvalid)),
            (true, Some(ErrorKind::Transport)),
        );
        check(
            keep_alive(SessionActivity::KeepAliveFailed(StatusCode::BadTimeout)),
            (true, timeout),
        );
    }

    #[test]
    fn the_servers_publish_flow_control_is_no_error() {
        use SubscriptionActivity::PublishFailed;
        check(
            publish(PublishFailed(StatusCode::BadTooManyPublishRequests)),
            (true, None),
        );
        check(
            publish(PublishFailed(StatusCode::BadNoSubscription)),
            (true, None),
        );
    }

    #[test]
    fn a_lost_connection_is_a_transport_error_and_other_events_do_not_count() {
        let transport = (false, Some(ErrorKind::Transport));
        check(
            Ok(SessionPollResult::ConnectionLost(
                StatusCode::BadConnectionClosed,
            )),
            transport,
        );
        check(
            Ok(SessionPollResult::ReconnectFailed(StatusCode::BadTimeout)),
            transport,
        );
        check(Err(StatusCode::BadCommunicationError), transport);
        check(Ok(SessionPollResult::BeginConnect), (false, None));
    }
}
