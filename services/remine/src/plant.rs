//! Connecting to a plant: adapters from tag maps, routed behind one PlantIo,
//! with the guarded writer and the live-value publisher on top.

use remine_domain::ports::{DeviceStatsSource, HistoryStore, Store, TagIo};
use remine_historian::{Historian, HistorianConfig};
use remine_mes::{GuardedWriter, LiveValues, PlantIo};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A connected plant.
#[derive(Debug, Clone)]
pub struct Plant {
    pub io: Arc<PlantIo>,
    pub writer: GuardedWriter,
    pub live: LiveValues,
    /// The adapters again, for the link metrics (`GET /metrics`).
    pub stats: Vec<Arc<dyn DeviceStatsSource>>,
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
    let mut stats: Vec<Arc<dyn DeviceStatsSource>> = Vec::new();
    for config in modbus {
        let adapter = Arc::new(ModbusAdapter::start(config)?);
        stats.push(adapter.clone());
        sources.push(adapter);
    }
    for config in opcua {
        let adapter = Arc::new(OpcUaAdapter::start(config)?);
        stats.push(adapter.clone());
        sources.push(adapter);
    }
    let io = Arc::new(PlantIo::new(sources)?);
    let writer = GuardedWriter::new(io.clone(), store);
    let live = LiveValues::start(io.clone(), io.names(), live_period);
    Ok(Plant {
        io,
        writer,
        live,
        stats,
    })
}

/// Line control and the alarm system of a connected plant, from its
/// control file (checked against the plant's tags first): permissive
/// timers and alarms follow the live values from now on.
pub async fn control(
    config: remine_mes::ControlConfig,
    plant: &Plant,
    store: Arc<dyn Store>,
    log: Arc<dyn remine_domain::ports::AlarmLog>,
    recipes: remine_mes::Recipes,
) -> anyhow::Result<(remine_mes::LineControl, remine_mes::Alarms)> {
    config.check_against(&plant.io.catalogue())?;
    let config = Arc::new(config);
    let control = remine_mes::LineControl::new(
        config.clone(),
        plant.io.clone(),
        plant.writer.clone(),
        store.clone(),
        recipes,
    );
    control.watch(&plant.live);
    let alarms = remine_mes::Alarms::resume(config, log, store, &plant.live).await?;
    Ok((control, alarms))
}

/// Starts the historian on `store` with its spool in `spool_dir`, recording
/// every snapshot of the plant's live values (the same scan the HMI sees;
/// the historian's per-tag deadband and maximum interval decide what is
/// kept). Batches left in the spool by an earlier run are written first.
pub fn record_history(
    plant: &Plant,
    store: Arc<dyn HistoryStore>,
    spool_dir: &Path,
    config: HistorianConfig,
) -> anyhow::Result<Historian> {
    let historian = Historian::start(store, spool_dir, config)?;
    let recorder = historian.clone();
    let mut rx = plant.live.subscribe();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let snapshot = rx.borrow_and_update().clone();
            recorder.record(&snapshot.readings).await;
        }
    });
    Ok(historian)
}
