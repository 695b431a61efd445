//! Modbus TCP adapter: polls tag maps into readings and writes through the
//! domain's [`TagIo`](remine_domain::ports::TagIo) port.
//!
//! The services never see Modbus. A plant engineer describes, in a TOML tag
//! map, which devices exist (address, unit id, poll interval, timeout) and
//! where each tag lives (table, 0-based address, type, word order, scaling,
//! access and write limits); plc-adapters/README.md documents the format.
//! [`ModbusConfig`] parses and checks that map at start-up, naming the file,
//! the tag and the field of every mistake. [`ModbusAdapter`] then runs, per
//! device, one poller per [`PollGroup`] (each at its own interval, the tags
//! naming no group at the device's `poll_interval_ms`), coalescing contiguous
//! registers into reads of at most 125 registers (2000 bits) and spreading
//! each cycle's requests over the device's `connections` (1 to 8, one request
//! in flight on each); `read` is served from a cache, so it never waits on a
//! device. Quality follows the link: `WaitingForInitialData` before the first
//! poll, `NotConnected` or `Timeout` (with the last value kept as stale) for
//! the tags of a request whose connection failed, and for all the device's
//! tags while no connection is open, `DeviceFailure` for the tags of a
//! request the device answered with an exception. Lost connections are
//! retried with capped exponential backoff and jitter, forever. Writes are
//! checked (unknown tag, read-only, limits) before anything reaches the wire,
//! then read back and compared. [`DeviceStatus`] reports each link and its
//! comms-loss alarm (raised after `comms_alarm_delay_ms` down); the adapter
//! is a [`DeviceStatsSource`](remine_domain::ports::DeviceStatsSource) for
//! the metrics (requests, errors by kind, round-trip histogram).
//!
//! ```no_run
//! use remine_domain::{TagName, TagValue, ports::TagIo};
//! use remine_modbus::{ModbusAdapter, ModbusConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ModbusConfig::from_toml_str(r#"
//!     [[device]]
//!     name = "discharge-plc"
//!     address = "10.0.0.10:502"
//!     unit_id = 1
//!
//!     [[tag]]
//!     name = "Discharge/Station1/MaxCurrent"
//!     device = "discharge-plc"
//!     table = "holding"
//!     address = 10
//!     type = "u16"
//!     scale = 0.1
//!     unit = "A"
//!     access = "read_write"
//!     min = 0.0
//!     max = 400.0
//! "#, "discharge.toml")?;
//! let adapter = ModbusAdapter::start(config)?;
//! let tag = TagName::parse("Discharge/Station1/MaxCurrent")?;
//! adapter.write(&tag, TagValue::Float(250.0)).await?;
//! let reading = &adapter.read(&[tag]).await[0];
//! println!("{:?} ({})", reading.value, reading.quality);
//! adapter.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod adapter;
mod codec;
mod config;
mod error;
mod plan;

pub use adapter::{DeviceStatus, ModbusAdapter};
pub use config::{DataType, DeviceConfig, ModbusConfig, PollGroup, Table, TagConfig, WordOrder};
pub use error::ModbusError;
pub use remine_plc_common::WriteLimits;
