//! An in-process simulator of a battery-recycling plant, behind real
//! protocol servers, for the MES to drive and for engineers to test against.
//!
//! Three lines, each a pure model stepped by one simulation clock
//! ([`model`]), each behind the server its kind of PLC would have:
//! - the **discharge line** (N stations discharging packs to an end voltage
//!   per cell, holding there, then rebounding): Modbus TCP, unit id 1;
//! - the **mechanical line** (a charge shredded under nitrogen, with purge,
//!   O2/LEL interlocks and trips, and yields by chemistry): Modbus TCP, unit id 2;
//! - the **hydrometallurgy train** (leach, Fe/Al removal, Co and Ni SX,
//!   crystallisers, Li2CO3): OPC UA, namespace [`HYDROMET_NAMESPACE_URI`].
//!
//! The register maps and the OPC UA node list are data, TOML files under
//! `maps/` ([`maps`], [`nodes`]), checked at start-up and documented in full
//! in simulators/README.md. Every unit follows the ISA-88 state model of
//! [`remine_domain::UnitState`]: a command register reads back the last code
//! written and a "command rejected" status tells when the state model (or an
//! interlock) refused it.
//!
//! Main types: [`SimConfig`] (addresses, speed, seed, certificates,
//! stations), [`start`] and the [`RunningPlant`] it returns, [`SimError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), remine_sim::SimError> {
//! use remine_sim::{SimConfig, start};
//! let plant = start(SimConfig {
//!     discharge: "127.0.0.1:0".parse().unwrap(),
//!     mechanical: "127.0.0.1:0".parse().unwrap(),
//!     hydromet: "127.0.0.1:0".parse().unwrap(),
//!     speed: 60.0, // one simulated minute per second
//!     ..SimConfig::default()
//! })
//! .await?;
//! println!("discharge on {}", plant.discharge_addr());
//! println!("hydromet at {}", plant.hydromet_endpoint());
//! plant.shutdown().await;
//! # Ok(()) }
//! ```

mod clock;
mod control;
mod error;
pub mod faults;
mod injector;
pub mod lines;
pub mod maps;
mod modbus;
pub mod model;
pub mod nodes;
mod noise;
mod plant;
mod proxy;
pub mod truth;
mod uaserver;

pub use clock::{MAX_STEP_S, SimClock, TICK};
pub use error::SimError;
pub use faults::{ActiveFault, Fault, FaultError, FaultKind, FaultRequest, LineId};
pub use noise::Noise;
pub use plant::{MAX_SPEED, MAX_STATIONS, RunningPlant, SimConfig, start};
pub use uaserver::{DEMO_PASSWORD, DEMO_USER};

/// The namespace of the hydromet line's OPC UA nodes. Clients look its index
/// up at run time (it is not fixed).
pub const HYDROMET_NAMESPACE_URI: &str = "urn:remine:sim:hydromet";
