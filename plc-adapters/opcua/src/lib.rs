//! OPC UA adapter: reads, subscribes and writes tag maps through the domain's
//! [`TagIo`](remine_domain::ports::TagIo) port.
//!
//! The services never see OPC UA. A plant engineer describes, in a TOML tag
//! map, the servers (endpoint, security, user, certificates, timing) and, for
//! each tag, its namespace URI and either a node id identifier or a browse
//! path from the Objects folder; plc-adapters/README.md documents the format.
//! [`OpcUaConfig`] parses and checks that map at start-up, naming the file,
//! the tag and the field of every mistake (the password is a [`Secret`] that
//! never prints). [`OpcUaAdapter`] then keeps one session per server: at every
//! connect it looks up namespace indices by URI, resolves browse paths and
//! creates subscriptions per [`SubscriptionGroup`] (each with its
//! publishing interval, at most `max_items_per_subscription` monitored items
//! each) whose monitored items feed a cache, so `read` never waits on the
//! network; [`GroupStatus`] shows the intervals the server granted. Status codes become [`Quality`](remine_domain::Quality)
//! (good, uncertain, bad with a reason); while a server is down its tags read
//! `Bad(NotConnected)` with their last values kept as stale, and the adapter
//! reconnects with capped exponential backoff, restoring the subscription.
//! Every connect and call is bounded by the request timeout, so a wrong
//! password is reported in [`ServerStatus`] instead of hanging; the status
//! also carries the comms-loss alarm, raised after `comms_alarm_delay_ms`
//! without a session, and the adapter is a
//! [`DeviceStatsSource`](remine_domain::ports::DeviceStatsSource) for the
//! metrics. Writes are
//! checked before the wire, sent as the tag's exact variant type, read back
//! and compared; [`OpcUaAdapter::call_method`] calls methods such as
//! Start/Hold/Stop on unit objects.
//!
//! ```no_run
//! use remine_domain::{TagName, TagValue, ports::TagIo};
//! use remine_opcua::{MethodRef, OpcUaAdapter, OpcUaConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = OpcUaConfig::from_toml_str(r#"
//!     [[server]]
//!     name = "hydromet-dcs"
//!     endpoint = "opc.tcp://10.30.0.5:4840/"
//!     pki_dir = "/var/lib/remine/pki"
//!
//!     [[tag]]
//!     name = "Hydromet/Leach1/TemperatureSetpoint"
//!     server = "hydromet-dcs"
//!     namespace_uri = "urn:plant:hydromet"
//!     browse_path = "Leach1/TemperatureSetpoint"
//!     data_type = "f64"
//!     unit = "degC"
//!     access = "read_write"
//!     min = 20.0
//!     max = 90.0
//! "#, "hydromet.toml")?;
//! let adapter = OpcUaAdapter::start(config)?;
//! let tag = TagName::parse("Hydromet/Leach1/TemperatureSetpoint")?;
//! adapter.write(&tag, TagValue::Float(75.0)).await?;
//! println!("{:?}", adapter.read(&[tag]).await[0]);
//! let hold = MethodRef::new("hydromet-dcs", "urn:plant:hydromet", "Leach1", "Hold")?;
//! adapter.call_method(&hold, &[]).await?;
//! adapter.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod adapter;
mod config;
mod connection;
mod convert;
mod error;

pub use adapter::{GroupStatus, MethodRef, OpcUaAdapter, ServerStatus};
pub use config::{
    Credentials, NodeAddress, OpcDataType, OpcUaConfig, Secret, Security, ServerConfig,
    SubscriptionGroup, TagConfig,
};
pub use error::OpcUaError;
pub use remine_plc_common::WriteLimits;
