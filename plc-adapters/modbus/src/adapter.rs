//! The running adapter: per device, a connector task per TCP connection and
//! a poller task per poll group; the reading cache; and the write path.
//!
//! Connectors open the device's `connections` (never blocking `start`) and
//! reopen any that is lost, with capped exponential backoff, forever. Each
//! poll group reads its plan every interval, its requests spread over the
//! open connections and run concurrently (one request in flight per
//! connection, as Modbus TCP devices expect). A transport error or a timeout
//! drops the connection that carried the request and turns that request's
//! tags bad (keeping their values as stale); the other connections carry the
//! next cycles. When no connection is left the device is down: all its tags
//! turn bad and the link health counts a failure. A Modbus exception only
//! marks the tags of the request that drew it. Writes go over one open
//! connection: they are checked before anything reaches the wire, then
//! written, read back and compared.

use crate::ModbusError;
use crate::codec::{self, Raw};
use crate::config::{DeviceConfig, ModbusConfig, Table, TagConfig};
use crate::plan::{Block, plan};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{DeviceStats, DeviceStatsSource, TagError, TagIo};
use remine_domain::{Access, BadReason, TagInfo, TagName, TagReading, TagValue};
use remine_plc_common::{Backoff, Cache, ErrorKind, Link, Workers};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{MissedTickBehavior, timeout};
use tokio_modbus::Slave;
use tokio_modbus::client::{Client, Context, Reader, Writer, tcp};
use tokio_modbus::prelude::ExceptionCode;

/// How long `shutdown` waits for a poller to close its connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The link state of one device, for a comms-loss alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    pub device: String,
    /// The last request was answered (a Modbus exception counts as an answer).
    pub connected: bool,
    /// The most recent connection or request failure, kept after recovery.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Times communication came back after being lost.
    pub reconnects: u64,
    /// Failed attempts since the last answered request.
    pub consecutive_failures: u32,
    /// When the comms-loss alarm was raised, while it is: the moment the
    /// device had been unreachable for its `comms_alarm_delay_ms`. Cleared
    /// when it answers again.
    pub comms_alarm: Option<SystemTime>,
}

/// Modbus TCP behind the [`TagIo`] port. Dropping it stops its pollers;
/// [`ModbusAdapter::shutdown`] also waits for them to close their connections.
pub struct ModbusAdapter {
    inner: Arc<Inner>,
    workers: Workers,
}

struct Inner {
    config: ModbusConfig,
    cache: Cache,
    devices: Vec<Device>,
}

struct Device {
    /// The device's TCP connections; each carries one request at a time.
    conns: Vec<Conn>,
    /// How many connections are open; pollers wait while it is 0.
    open: watch::Sender<usize>,
    health: Link,
    /// The poll groups that have tags: the default group (tags naming none)
    /// first, if it has any.
    groups: Vec<Group>,
    tags: Vec<usize>,
}

/// One TCP connection of a device.
struct Conn {
    /// `None` while closed; its connector reopens it.
    ctx: tokio::sync::Mutex<Option<Context>>,
    /// Wakes the connector when the connection is dropped.
    dropped: Notify,
    /// A request was answered since the connection opened: the next
    /// reconnect starts again at the shortest delay.
    answered: AtomicBool,
}

/// The tags of one poll group and how often they are read.
struct Group {
    name: Option<String>,
    interval: Duration,
    blocks: Vec<Block>,
}

/// Why a device's link was given up.
struct Lost {
    reason: BadReason,
    why: String,
}

impl ModbusAdapter {
    /// Starts one poller per device and returns at once: an unreachable
    /// device only reads bad until it answers. Must run inside a tokio runtime.
    pub fn start(config: ModbusConfig) -> Result<ModbusAdapter, ModbusError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| ModbusError::NoRuntime(e.to_string()))?;
        let devices = config
            .devices()
            .iter()
            .enumerate()
            .map(|(d, cfg)| Device {
                conns: (0..cfg.connections())
                    .map(|_| Conn {
                        ctx: tokio::sync::Mutex::new(None),
                        dropped: Notify::new(),
                        answered: AtomicBool::new(false),
                    })
                    .collect(),
                open: watch::Sender::new(0),
                health: Link::new("modbus", cfg.name(), cfg.comms_alarm_delay()),
                groups: groups(&config, d, cfg),
                tags: config
                    .tags()
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.device_index() == d)
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect();
        let inner = Arc::new(Inner {
            cache: Cache::new(config.tags().iter().map(|t| t.name().clone())),
            config,
            devices,
        });
        let mut workers = Workers::spawn(&runtime, inner.devices.len(), |d, cancel| {
            let inner = inner.clone();
            async move {
                cancel.run_until_cancelled(run_device(&inner, d)).await;
                inner.close(d).await;
            }
        });
        let watched = inner.clone();
        workers.also(&runtime, |cancel| async move {
            let links: Vec<&Link> = watched.devices.iter().map(|d| &d.health).collect();
            cancel
                .run_until_cancelled(remine_plc_common::watch_alarms(&links))
                .await;
        });
        Ok(ModbusAdapter { inner, workers })
    }

    /// Stops the pollers and closes every connection.
    pub async fn shutdown(self) {
        self.workers
            .shutdown(SHUTDOWN_GRACE, "a Modbus poller")
            .await;
    }

    /// The link state of every device, in tag-map order.
    pub fn status(&self) -> Vec<DeviceStatus> {
        self.inner
            .config
            .devices()
            .iter()
            .zip(&self.inner.devices)
            .map(|(cfg, d)| {
                let health = d.health.health();
                DeviceStatus {
                    device: cfg.name().to_string(),
                    connected: health.connected(),
                    last_error: health.last_error().map(str::to_string),
                    last_error_at: health.last_error_at(),
                    reconnects: health.reconnects(),
                    consecutive_failures: health.consecutive_failures(),
                    comms_alarm: health.comms_alarm(),
                }
            })
            .collect()
    }

    pub fn config(&self) -> &ModbusConfig {
        &self.inner.config
    }

    #[tracing::instrument(name = "modbus_write", skip(self, value), fields(tag = %tag))]
    async fn write_tag(&self, tag: &TagName, value: TagValue) -> Result<(), TagError> {
        let inner = &self.inner;
        let i = inner
            .cache
            .index(tag)
            .ok_or_else(|| TagError::UnknownTag(tag.clone()))?;
        let (Some(t), Some(device), Some(cfg)) = (
            inner.config.tags().get(i),
            inner.devices.get(inner.tag_device(i)),
            inner.config.devices().get(inner.tag_device(i)),
        ) else {
            return Err(TagError::UnknownTag(tag.clone()));
        };
        if t.access() != Access::ReadWrite {
            return Err(TagError::ReadOnly(tag.clone()));
        }
        let raw = codec::encode(t, value)?;

        let d = inner.tag_device(i);
        let Some((k, mut link)) = device.open_conn().await else {
            return Err(TagError::NotConnected { tag: tag.clone() });
        };
        let Some(ctx) = link.as_mut() else {
            return Err(TagError::NotConnected { tag: tag.clone() });
        };
        match write_and_verify(&device.health, ctx, t, &raw, cfg.request_timeout()).await {
            Ok(read) => {
                inner.cache.set_good([(i, read)], Utc::now());
                tracing::info!(value = %value, "written and verified");
                Ok(())
            }
            Err(WriteFailure::ReadBack(read)) => {
                inner.cache.set_good([(i, read)], Utc::now());
                Err(TagError::ReadBackMismatch {
                    tag: tag.clone(),
                    written: value.to_string(),
                    read: read.to_string(),
                })
            }
            Err(WriteFailure::Refused(why)) => Err(TagError::Failed {
                tag: tag.clone(),
                why,
            }),
            Err(WriteFailure::Link(lost)) => {
                *link = None;
                drop(link);
                let why = lost.why.clone();
                inner.dropped(d, k, lost, &[i]);
                Err(TagError::Failed {
                    tag: tag.clone(),
                    why,
                })
            }
        }
    }
}

impl fmt::Debug for ModbusAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let devices: Vec<&str> = self
            .inner
            .config
            .devices()
            .iter()
            .map(DeviceConfig::name)
            .collect();
        f.debug_struct("ModbusAdapter")
            .field("devices", &devices)
            .field("tags", &self.inner.config.tags().len())
            .finish()
    }
}

impl DeviceStatsSource for ModbusAdapter {
    fn device_stats(&self) -> Vec<DeviceStats> {
        self.inner
            .devices
            .iter()
            .map(|d| d.health.device_stats())
            .collect()
    }
}

#[async_trait]
impl TagIo for ModbusAdapter {
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
    fn tag_device(&self, tag: usize) -> usize {
        self.config
            .tags()
            .get(tag)
            .map_or(0, TagConfig::device_index)
    }

    fn device_name(&self, d: usize) -> &str {
        self.config.devices().get(d).map_or("?", DeviceConfig::name)
    }

    /// The device is down (no connection open, and opening one failed, or
    /// the last one was dropped): tags bad with stale values, health updated.
    fn lost(&self, d: usize, lost: Lost) {
        let Some(device) = self.devices.get(d) else {
            return;
        };
        self.cache
            .set_bad(device.tags.iter().copied(), &lost.reason);
        let name = self.device_name(d);
        // Warn when the link goes; the retries that follow only repeat it.
        if device.health.failed(lost.why.clone()) {
            tracing::warn!(device = %name, why = %lost.why, "Modbus link lost");
        } else {
            tracing::debug!(device = %name, why = %lost.why, "Modbus reconnect failed");
        }
    }

    /// Connection `k` of device `d` was dropped after a failed request
    /// serving `tags`: those tags turn bad; if it was the last open
    /// connection the device is down; its connector reopens it.
    fn dropped(&self, d: usize, k: usize, lost: Lost, tags: &[usize]) {
        let Some(device) = self.devices.get(d) else {
            return;
        };
        self.cache.set_bad(tags.iter().copied(), &lost.reason);
        let mut left = 0;
        device.open.send_modify(|n| {
            *n = n.saturating_sub(1);
            left = *n;
        });
        if let Some(conn) = device.conns.get(k) {
            conn.dropped.notify_one();
        }
        if left == 0 {
            self.lost(d, lost);
        } else {
            tracing::warn!(
                device = %self.device_name(d),
                connection = k + 1,
                open = left,
                why = %lost.why,
                "Modbus connection lost; the others carry on"
            );
        }
    }

    fn answered(&self, d: usize) {
        if let Some(device) = self.devices.get(d)
            && device.health.answered()
        {
            tracing::info!(device = %self.device_name(d), "Modbus device answering");
        }
    }

    async fn close(&self, d: usize) {
        let Some(device) = self.devices.get(d) else {
            return;
        };
        for conn in &device.conns {
            let ctx = conn.ctx.lock().await.take();
            if let Some(mut ctx) = ctx {
                let _ = timeout(Duration::from_millis(500), ctx.disconnect()).await;
            }
        }
        device.open.send_replace(0);
        device.health.disconnected();
    }
}

impl Device {
    /// An open connection for a write: the first one free, else the first
    /// open one (waiting for its request in flight). `None`: none is open.
    async fn open_conn(&self) -> Option<(usize, tokio::sync::MutexGuard<'_, Option<Context>>)> {
        for (k, conn) in self.conns.iter().enumerate() {
            if let Ok(guard) = conn.ctx.try_lock()
                && guard.is_some()
            {
                return Some((k, guard));
            }
        }
        for (k, conn) in self.conns.iter().enumerate() {
            let guard = conn.ctx.lock().await;
            if guard.is_some() {
                return Some((k, guard));
            }
        }
        None
    }
}

/// The poll groups of device `d` that have tags, the default group first.
/// A device without tags keeps an empty default group, so that it is still
/// seen answering (an open connection is all there is to see).
fn groups(config: &ModbusConfig, d: usize, cfg: &DeviceConfig) -> Vec<Group> {
    let default = Group {
        name: None,
        interval: cfg.poll_interval(),
        blocks: plan(config, d, None),
    };
    let named = cfg
        .poll_groups()
        .iter()
        .enumerate()
        .map(|(g, group)| Group {
            name: Some(group.name().to_string()),
            interval: group.interval(),
            blocks: plan(config, d, Some(g)),
        });
    let mut groups: Vec<Group> = std::iter::once(default)
        .chain(named)
        .filter(|g| !g.blocks.is_empty())
        .collect();
    if groups.is_empty() {
        groups.push(Group {
            name: None,
            interval: cfg.poll_interval(),
            blocks: Vec::new(),
        });
    }
    groups
}

/// Everything device `d` runs: a connector per connection and a poller per
/// group; runs until cancelled.
#[tracing::instrument(name = "modbus_device", skip(inner), fields(device = %inner.device_name(d)))]
async fn run_device(inner: &Inner, d: usize) {
    let (Some(cfg), Some(device)) = (inner.config.devices().get(d), inner.devices.get(d)) else {
        return;
    };
    let connectors = (0..device.conns.len()).map(|k| run_connection(inner, d, k, cfg, device));
    let pollers = device
        .groups
        .iter()
        .map(|group| run_group(inner, d, cfg, device, group));
    futures::future::join(
        futures::future::join_all(connectors),
        futures::future::join_all(pollers),
    )
    .await;
}

/// Keeps connection `k` open: opens it, waits until it is dropped, waits
/// the backoff delay, opens it again.
async fn run_connection(inner: &Inner, d: usize, k: usize, cfg: &DeviceConfig, device: &Device) {
    let Some(conn) = device.conns.get(k) else {
        return;
    };
    let mut backoff = Backoff::new(cfg.reconnect_min(), cfg.reconnect_max());
    loop {
        match connect(cfg, &device.health).await {
            Ok(ctx) => {
                conn.answered.store(false, Ordering::Relaxed);
                *conn.ctx.lock().await = Some(ctx);
                device.open.send_modify(|n| *n += 1);
                conn.dropped.notified().await;
                if conn.answered.load(Ordering::Relaxed) {
                    backoff.reset();
                }
            }
            Err(lost) => {
                if *device.open.borrow() == 0 {
                    inner.lost(d, lost);
                } else {
                    tracing::debug!(connection = k + 1, why = %lost.why, "Modbus connect failed");
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Reads one poll group every interval, while a connection is open.
#[tracing::instrument(name = "modbus_poller", skip_all, fields(device = %cfg.name(), group = group.name.as_deref().unwrap_or("default")))]
async fn run_group(inner: &Inner, d: usize, cfg: &DeviceConfig, device: &Device, group: &Group) {
    let mut open = device.open.subscribe();
    let mut ticker = tokio::time::interval(group.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if *open.borrow_and_update() == 0 {
            if open.wait_for(|n| *n > 0).await.is_err() {
                return;
            }
            ticker.reset();
        }
        poll_cycle(inner, d, cfg, device, group).await;
    }
}

#[tracing::instrument(name = "modbus_connect", skip(cfg, link), fields(device = %cfg.name()))]
async fn connect(cfg: &DeviceConfig, link: &Link) -> Result<Context, Lost> {
    let target = format!("{}:{}", cfg.host(), cfg.port());
    link.stats().request();
    let connected = timeout(
        cfg.request_timeout(),
        TcpStream::connect((cfg.host(), cfg.port())),
    )
    .await;
    match &connected {
        Err(_) => link.stats().error(ErrorKind::Timeout),
        Ok(Err(_)) => link.stats().error(ErrorKind::Transport),
        Ok(Ok(_)) => {}
    }
    match connected {
        Err(_) => Err(Lost {
            reason: BadReason::NotConnected,
            why: format!(
                "connecting to {target} timed out after {} ms",
                cfg.request_timeout().as_millis()
            ),
        }),
        Ok(Err(e)) => Err(Lost {
            reason: BadReason::NotConnected,
            why: format!("cannot connect to {target}: {e}"),
        }),
        Ok(Ok(stream)) => {
            // Small request/response frames: do not wait to fill a segment.
            let _ = stream.set_nodelay(true);
            Ok(tcp::attach_slave(stream, Slave(cfg.unit_id())))
        }
    }
}

enum Data {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

/// One cycle of a poll group: its requests taken in turn by one lane per
/// open connection, the lanes running concurrently.
async fn poll_cycle(inner: &Inner, d: usize, cfg: &DeviceConfig, device: &Device, group: &Group) {
    if group.blocks.is_empty() {
        inner.answered(d);
        return;
    }
    let next = AtomicUsize::new(0);
    let lanes = (0..device.conns.len()).map(|k| lane(inner, d, k, cfg, device, group, &next));
    futures::future::join_all(lanes).await;
}

/// Takes the group's next request and sends it over connection `k`, until
/// none is left or the connection is closed or dropped.
async fn lane(
    inner: &Inner,
    d: usize,
    k: usize,
    cfg: &DeviceConfig,
    device: &Device,
    group: &Group,
    next: &AtomicUsize,
) {
    let Some(conn) = device.conns.get(k) else {
        return;
    };
    let limit = cfg.request_timeout();
    loop {
        let mut link = conn.ctx.lock().await;
        let Some(ctx) = link.as_mut() else {
            return;
        };
        let Some(block) = group.blocks.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let what = format!(
            "read of {} {}..={}",
            block.table,
            block.start,
            u32::from(block.start) + u32::from(block.count).saturating_sub(1)
        );
        let (start, count) = (block.start, block.count);
        let health = &device.health;
        let answer = match block.table {
            Table::Holding => request(
                health,
                limit,
                &what,
                ctx.read_holding_registers(start, count),
            )
            .await
            .map(|r| r.map(Data::Words)),
            Table::Input => request(health, limit, &what, ctx.read_input_registers(start, count))
                .await
                .map(|r| r.map(Data::Words)),
            Table::Coil => request(health, limit, &what, ctx.read_coils(start, count))
                .await
                .map(|r| r.map(Data::Bits)),
            Table::Discrete => {
                request(health, limit, &what, ctx.read_discrete_inputs(start, count))
                    .await
                    .map(|r| r.map(Data::Bits))
            }
        };
        match answer {
            Err(lost) => {
                *link = None;
                drop(link);
                inner.dropped(d, k, lost, &block.tags);
                return;
            }
            Ok(Err(
                exception @ (ExceptionCode::GatewayPathUnavailable
                | ExceptionCode::GatewayTargetDevice),
            )) => {
                // The gateway answers, the device behind it does not: that
                // is a lost link to the device (its tags bad, the comms
                // alarm), though the connection to the gateway stays open.
                drop(link);
                conn.answered.store(true, Ordering::Relaxed);
                inner.lost(
                    d,
                    Lost {
                        reason: BadReason::DeviceFailure(format!(
                            "exception {exception:?} ({exception}) on {what}"
                        )),
                        why: format!(
                            "the gateway cannot reach the device: exception {exception:?} on {what}"
                        ),
                    },
                );
                return;
            }
            Ok(Err(exception)) => {
                drop(link);
                conn.answered.store(true, Ordering::Relaxed);
                inner.answered(d);
                let exception = format!("{exception:?} ({exception})");
                tracing::warn!(request = %what, %exception, "Modbus exception");
                inner.cache.set_bad(
                    block.tags.iter().copied(),
                    &BadReason::DeviceFailure(format!("exception {exception} on {what}")),
                );
            }
            Ok(Ok(data)) => {
                drop(link);
                conn.answered.store(true, Ordering::Relaxed);
                inner.answered(d);
                store(inner, d, block, data);
            }
        }
    }
}

/// One request with a timeout, counted in the link's stats. The outer error
/// loses the link; the inner error is a Modbus exception, which does not.
async fn request<T>(
    link: &Link,
    limit: Duration,
    what: &str,
    call: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<Result<T, ExceptionCode>, Lost> {
    let stats = link.stats();
    stats.request();
    let sent = Instant::now();
    let outcome = timeout(limit, call).await;
    if outcome.is_ok() {
        stats.answered(sent.elapsed());
    }
    match outcome {
        Err(_) => {
            stats.error(ErrorKind::Timeout);
            Err(Lost {
                reason: BadReason::Timeout,
                why: format!("no answer to {what} within {} ms", limit.as_millis()),
            })
        }
        Ok(Err(tokio_modbus::Error::Transport(e))) => {
            stats.error(ErrorKind::Transport);
            Err(Lost {
                reason: BadReason::NotConnected,
                why: format!("{what} failed: {e}"),
            })
        }
        Ok(Err(e)) => {
            stats.error(ErrorKind::Protocol);
            Err(Lost {
                reason: BadReason::CommunicationError(format!("{what}: {e}")),
                why: format!("{what} failed: {e}"),
            })
        }
        Ok(Ok(Err(exception))) => {
            stats.error(ErrorKind::Exception);
            Ok(Err(exception))
        }
        Ok(Ok(Ok(v))) => Ok(Ok(v)),
    }
}

fn store(inner: &Inner, d: usize, block: &Block, data: Data) {
    let now = Utc::now();
    let mut good = Vec::with_capacity(block.tags.len());
    let mut short = Vec::new();
    for &i in &block.tags {
        let Some(t) = inner.config.tags().get(i) else {
            continue;
        };
        let offset = usize::from(t.address() - block.start);
        let value = match &data {
            Data::Words(w) => w.get(offset..).and_then(|w| codec::decode_registers(t, w)),
            Data::Bits(b) => b.get(offset).map(|&b| TagValue::Bool(b)),
        };
        match value {
            Some(v) => good.push((i, v)),
            None => short.push(i),
        }
    }
    inner.cache.set_good(good, now);
    if !short.is_empty() {
        let device = inner.device_name(d);
        inner.cache.set_bad(
            short,
            &BadReason::CommunicationError(format!(
                "device '{device}' answered {} {}+{} with too few values",
                block.table, block.start, block.count
            )),
        );
    }
}

enum WriteFailure {
    /// The link failed; the poller reconnects.
    Link(Lost),
    /// The device refused the write with an exception.
    Refused(String),
    /// The value read back differs from the one written.
    ReadBack(TagValue),
}

async fn step<T>(
    link: &Link,
    limit: Duration,
    what: &str,
    call: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<T, WriteFailure> {
    match request(link, limit, what, call).await {
        Err(lost) => Err(WriteFailure::Link(lost)),
        Ok(Err(exception)) => Err(WriteFailure::Refused(format!(
            "device answered the {what} with exception {exception:?} ({exception})"
        ))),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Writes, reads back, and returns the value read back when it matches.
async fn write_and_verify(
    link: &Link,
    ctx: &mut Context,
    t: &TagConfig,
    raw: &Raw,
    limit: Duration,
) -> Result<TagValue, WriteFailure> {
    let addr = t.address();
    let short = || {
        WriteFailure::Link(Lost {
            reason: BadReason::CommunicationError("short read-back".to_string()),
            why: format!("read-back of {} gave too few values", t.name()),
        })
    };
    match raw {
        Raw::Bit(b) => {
            step(link, limit, "coil write", ctx.write_single_coil(addr, *b)).await?;
            let got = step(link, limit, "coil read-back", ctx.read_coils(addr, 1)).await?;
            let got = *got.first().ok_or_else(short)?;
            if got == *b {
                Ok(TagValue::Bool(got))
            } else {
                Err(WriteFailure::ReadBack(TagValue::Bool(got)))
            }
        }
        Raw::RegisterBit(b) => {
            let bit = t.bit().unwrap_or(0);
            let before = step(
                link,
                limit,
                "register read",
                ctx.read_holding_registers(addr, 1),
            )
            .await?;
            let before = *before.first().ok_or_else(short)?;
            let word = if *b {
                before | (1 << bit)
            } else {
                before & !(1 << bit)
            };
            step(
                link,
                limit,
                "register write",
                ctx.write_single_register(addr, word),
            )
            .await?;
            let after = step(
                link,
                limit,
                "register read-back",
                ctx.read_holding_registers(addr, 1),
            )
            .await?;
            let after = *after.first().ok_or_else(short)?;
            let got = after & (1 << bit) != 0;
            if got == *b {
                Ok(TagValue::Bool(got))
            } else {
                Err(WriteFailure::ReadBack(TagValue::Bool(got)))
            }
        }
        Raw::Words(words) => {
            if let [word] = words.as_slice() {
                step(
                    link,
                    limit,
                    "register write",
                    ctx.write_single_register(addr, *word),
                )
                .await?;
            } else {
                step(
                    link,
                    limit,
                    "registers write",
                    ctx.write_multiple_registers(addr, words),
                )
                .await?;
            }
            let count = u16::try_from(words.len()).unwrap_or(2);
            let got = step(
                link,
                limit,
                "register read-back",
                ctx.read_holding_registers(addr, count),
            )
            .await?;
            let value = codec::decode_registers(t, &got).ok_or_else(short)?;
            if got.get(..words.len()) == Some(words.as_slice()) {
                Ok(value)
            } else {
                Err(WriteFailure::ReadBack(value))
            }
        }
    }
}
