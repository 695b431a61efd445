//! The running adapter: one poller task per device, the reading cache, and the write path.
//!
//! A poller connects (never blocking `start`), reads its device's poll plan
//! every poll interval, and feeds the cache. A transport error or a timeout
//! drops the connection, turns the device's tags bad (keeping their values as
//! stale) and reconnects with capped exponential backoff, forever. A Modbus
//! exception only marks the tags of the request that drew it. Writes share the
//! device's connection: they are checked before anything reaches the wire,
//! then written, read back and compared.

use crate::ModbusError;
use crate::codec::{self, Raw};
use crate::config::{DeviceConfig, ModbusConfig, Table, TagConfig};
use crate::plan::{Block, plan};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{TagError, TagIo};
use remine_domain::{Access, BadReason, TagInfo, TagName, TagReading, TagValue};
use remine_plc_common::{Backoff, Cache, LinkHealth, Workers};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{MissedTickBehavior, timeout};
use tokio_modbus::Slave;
use tokio_modbus::client::{Client, Context, Reader, Writer, tcp};

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
    /// `None` while disconnected; the poller reconnects.
    link: tokio::sync::Mutex<Option<Context>>,
    health: Mutex<LinkHealth>,
    blocks: Vec<Block>,
    tags: Vec<usize>,
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
        let devices = (0..config.devices().len())
            .map(|d| Device {
                link: tokio::sync::Mutex::new(None),
                health: Mutex::new(LinkHealth::default()),
                blocks: plan(&config, d),
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
        let workers = Workers::spawn(&runtime, inner.devices.len(), |d, cancel| {
            let inner = inner.clone();
            async move {
                cancel.run_until_cancelled(run_device(&inner, d)).await;
                inner.close(d).await;
            }
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
                let health = lock(&d.health);
                DeviceStatus {
                    device: cfg.name().to_string(),
                    connected: health.connected(),
                    last_error: health.last_error().map(str::to_string),
                    last_error_at: health.last_error_at(),
                    reconnects: health.reconnects(),
                    consecutive_failures: health.consecutive_failures(),
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

        let mut link = device.link.lock().await;
        let Some(ctx) = link.as_mut() else {
            return Err(TagError::NotConnected { tag: tag.clone() });
        };
        match write_and_verify(ctx, t, &raw, cfg.request_timeout()).await {
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
                inner.lost(inner.tag_device(i), lost);
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Records a lost link: tags bad with stale values, status updated.
    fn lost(&self, d: usize, lost: Lost) {
        let Some(device) = self.devices.get(d) else {
            return;
        };
        self.cache
            .set_bad(device.tags.iter().copied(), &lost.reason);
        let name = self.device_name(d);
        // Warn when the link goes; the retries that follow only repeat it.
        if lock(&device.health).failed(lost.why.clone()) {
            tracing::warn!(device = %name, why = %lost.why, "Modbus link lost");
        } else {
            tracing::debug!(device = %name, why = %lost.why, "Modbus reconnect failed");
        }
    }

    fn answered(&self, d: usize) {
        if let Some(device) = self.devices.get(d)
            && lock(&device.health).answered()
        {
            tracing::info!(device = %self.device_name(d), "Modbus device answering");
        }
    }

    async fn close(&self, d: usize) {
        let Some(device) = self.devices.get(d) else {
            return;
        };
        let ctx = device.link.lock().await.take();
        if let Some(mut ctx) = ctx {
            let _ = timeout(Duration::from_millis(500), ctx.disconnect()).await;
        }
        lock(&device.health).disconnected();
    }
}

/// The poller of one device; runs until cancelled.
#[tracing::instrument(name = "modbus_poller", skip(inner), fields(device = %inner.device_name(d)))]
async fn run_device(inner: &Inner, d: usize) {
    let (Some(cfg), Some(device)) = (inner.config.devices().get(d), inner.devices.get(d)) else {
        return;
    };
    let mut backoff = Backoff::new(cfg.reconnect_min(), cfg.reconnect_max());
    let mut ticker = tokio::time::interval(cfg.poll_interval());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let linked = device.link.lock().await.is_some();
        if !linked {
            match connect(cfg).await {
                Ok(ctx) => *device.link.lock().await = Some(ctx),
                Err(lost) => {
                    inner.lost(d, lost);
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            }
        }
        match poll_cycle(inner, d, cfg, device).await {
            Ok(()) => {
                backoff.reset();
                inner.answered(d);
            }
            Err(lost) => {
                // `None`: a failed write closed the link and reported why.
                if let Some(lost) = lost {
                    *device.link.lock().await = None;
                    inner.lost(d, lost);
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

#[tracing::instrument(name = "modbus_connect", skip(cfg), fields(device = %cfg.name()))]
async fn connect(cfg: &DeviceConfig) -> Result<Context, Lost> {
    let target = format!("{}:{}", cfg.host(), cfg.port());
    match timeout(
        cfg.request_timeout(),
        TcpStream::connect((cfg.host(), cfg.port())),
    )
    .await
    {
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

async fn poll_cycle(
    inner: &Inner,
    d: usize,
    cfg: &DeviceConfig,
    device: &Device,
) -> Result<(), Option<Lost>> {
    let limit = cfg.request_timeout();
    for block in &device.blocks {
        let what = format!(
            "read of {} {}..={}",
            block.table,
            block.start,
            u32::from(block.start) + u32::from(block.count).saturating_sub(1)
        );
        let answer = {
            let mut link = device.link.lock().await;
            let Some(ctx) = link.as_mut() else {
                return Err(None);
            };
            let (start, count) = (block.start, block.count);
            match block.table {
                Table::Holding => request(limit, &what, ctx.read_holding_registers(start, count))
                    .await
                    .map(|r| r.map(Data::Words)),
                Table::Input => request(limit, &what, ctx.read_input_registers(start, count))
                    .await
                    .map(|r| r.map(Data::Words)),
                Table::Coil => request(limit, &what, ctx.read_coils(start, count))
                    .await
                    .map(|r| r.map(Data::Bits)),
                Table::Discrete => request(limit, &what, ctx.read_discrete_inputs(start, count))
                    .await
                    .map(|r| r.map(Data::Bits)),
            }
        };
        match answer.map_err(Some)? {
            Err(exception) => {
                tracing::warn!(request = %what, %exception, "Modbus exception");
                inner.cache.set_bad(
                    block.tags.iter().copied(),
                    &BadReason::DeviceFailure(format!("exception {exception} on {what}")),
                );
            }
            Ok(data) => store(inner, d, block, data),
        }
    }
    Ok(())
}

/// One request with a timeout. The outer error loses the link; the inner
/// error is a Modbus exception, which does not.
async fn request<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<Result<T, String>, Lost> {
    match timeout(limit, call).await {
        Err(_) => Err(Lost {
            reason: BadReason::Timeout,
            why: format!("no answer to {what} within {} ms", limit.as_millis()),
        }),
        Ok(Err(tokio_modbus::Error::Transport(e))) => Err(Lost {
            reason: BadReason::NotConnected,
            why: format!("{what} failed: {e}"),
        }),
        Ok(Err(e)) => Err(Lost {
            reason: BadReason::CommunicationError(format!("{what}: {e}")),
            why: format!("{what} failed: {e}"),
        }),
        Ok(Ok(Err(exception))) => Ok(Err(format!("{exception:?} ({exception})"))),
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
    limit: Duration,
    what: &str,
    call: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<T, WriteFailure> {
    match request(limit, what, call).await {
        Err(lost) => Err(WriteFailure::Link(lost)),
        Ok(Err(exception)) => Err(WriteFailure::Refused(format!(
            "device answered the {what} with exception {exception}"
        ))),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Writes, reads back, and returns the value read back when it matches.
async fn write_and_verify(
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
            step(limit, "coil write", ctx.write_single_coil(addr, *b)).await?;
            let got = step(limit, "coil read-back", ctx.read_coils(addr, 1)).await?;
            let got = *got.first().ok_or_else(short)?;
            if got == *b {
                Ok(TagValue::Bool(got))
            } else {
                Err(WriteFailure::ReadBack(TagValue::Bool(got)))
            }
        }
        Raw::RegisterBit(b) => {
            let bit = t.bit().unwrap_or(0);
            let before = step(limit, "register read", ctx.read_holding_registers(addr, 1)).await?;
            let before = *before.first().ok_or_else(short)?;
            let word = if *b {
                before | (1 << bit)
            } else {
                before & !(1 << bit)
            };
            step(
                limit,
                "register write",
                ctx.write_single_register(addr, word),
            )
            .await?;
            let after = step(
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
                    limit,
                    "register write",
                    ctx.write_single_register(addr, *word),
                )
                .await?;
            } else {
                step(
                    limit,
                    "registers write",
                    ctx.write_multiple_registers(addr, words),
                )
                .await?;
            }
            let count = u16::try_from(words.len()).unwrap_or(2);
            let got = step(
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
