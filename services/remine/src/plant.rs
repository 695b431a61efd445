//! Connecting to a plant: adapters from tag maps, routed behind one PlantIo,
//! with the guarded writer and the live-value publisher on top.

use remine_domain::ports::{Store, TagIo};
use remine_mes::{GuardedWriter, LiveValues, PlantIo};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use std::sync::Arc;
use std::time::Duration;

/// A connected plant.
#[derive(Debug, Clone)]
pub struct Plant {
    pub io: Arc<PlantIo>,
    pub writer: GuardedWriter,
    pub live: LiveValues,
}

/// Starts the adapters (they connect in the background: an unreachable
/// device reads bad quality, it does not stop start-up).
pub fn connect(
    modbus: Vec<ModbusConfig>,
    opcua: Vec<OpcUaConfig>,
    store: Arc<dyn Store>,
    live_period: Duration,
) -> anyhow::Result<Plant> {
    let mut sources: Vec<Arc<dyn TagIo>> = Vec::new();
    for config in modbus {
        sources.push(Arc::new(ModbusAdapter::start(config)?));
    }
    for config in opcua {
        sources.push(Arc::new(OpcUaAdapter::start(config)?));
    }
    let io = Arc::new(PlantIo::new(sources)?);
    let writer = GuardedWriter::new(io.clone(), store);
    let live = LiveValues::start(io.clone(), io.names(), live_period);
    Ok(Plant { io, writer, live })
}
