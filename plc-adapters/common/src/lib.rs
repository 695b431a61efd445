//! What the PLC adapters share: the logic that is the same whether tags come
//! over Modbus TCP (`remine-modbus`) or OPC UA (`remine-opcua`).
//!
//! Both adapters serve the domain's [`TagIo`](remine_domain::ports::TagIo)
//! port from a [`Cache`] of readings (value, quality, source and server
//! timestamps; a bad quality keeps the last value as stale), keep a [`Link`]
//! per device or server (its [`LinkHealth`], the comms-loss alarm raised
//! after a configurable time down, and the [`LinkStats`] counters and
//! round-trip histogram behind the domain's `DeviceStats`), reconnect
//! with the capped exponential [`Backoff`] with jitter, run one task per link
//! under [`Workers`], and accept only the value kinds [`write_bool`] and
//! [`write_number`] allow. Their tag maps share the checks in [`tagmap`]:
//! reading and parsing the file, link and tag names, integer and millisecond
//! ranges, reconnect delays, `access` and [`WriteLimits`], each mistake a
//! [`TagMapError`] naming the file, the item and the field.
//!
//! Nothing here knows a protocol: what differs between the two (how values
//! arrive, what a link is, the wire types) stays in each adapter. With the
//! `test-support` feature, `test_support` offers the adapters' integration
//! tests a way to wait for a reading.
//!
//! ```
//! use remine_domain::{BadReason, Quality, TagName, TagValue};
//! use remine_plc_common::{Backoff, Cache, Checker};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let check = Checker::new("plant.toml", "device");
//! let (tag, _item) = check.tag_name(1, "Discharge/Station1/PackVoltage")?;
//! let (min, max) = check.reconnect("device 'plc'", None, Some(2000))?;
//! assert_eq!((min, max), (Duration::from_millis(100), Duration::from_secs(2)));
//!
//! let cache = Cache::new([tag.clone()]);
//! cache.set_good([(0, TagValue::Float(398.2))], chrono::Utc::now());
//! cache.set_bad([0], &BadReason::NotConnected);
//! let reading = &cache.readings(&[tag])[0];
//! assert_eq!(reading.value, Some(TagValue::Float(398.2)), "kept, stale");
//! assert_eq!(reading.quality, Quality::Bad(BadReason::NotConnected));
//!
//! let mut backoff = Backoff::new(min, max);
//! assert!(backoff.next_delay() <= min);
//! # Ok(())
//! # }
//! ```

mod backoff;
mod cache;
mod error;
mod health;
mod link;
pub mod stats;
pub mod tagmap;
#[cfg(feature = "test-support")]
pub mod test_support;
mod workers;
mod write;

pub use backoff::Backoff;
pub use cache::Cache;
pub use error::TagMapError;
pub use health::LinkHealth;
pub use link::{Link, watch_alarms};
pub use stats::{ErrorKind, LinkStats};
pub use tagmap::{Checker, Millis, Number, WriteLimits};
pub use workers::Workers;
pub use write::{write_bool, write_number};
