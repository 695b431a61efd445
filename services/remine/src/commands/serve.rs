//! `remine serve --config FILE`: the API and HMI for a real plant.
//!
//! The configuration file (TOML) names the site, the listen address, the
//! database and the plant's tag maps (paths relative to the file):
//! ```toml
//! site = "Recycling plant 1"
//! listen = "0.0.0.0:8080"
//! database = "sqlite://remine-data/remine.db"   # optional; --db wins
//! [plant]
//! modbus = ["plant/discharge.toml", "plant/mechanical.toml"]
//! opcua = ["plant/hydromet.toml"]
//! live_period_ms = 200
//! control = "plant/control.toml"   # optional: units, permissives, alarms
//! ```
//! The control file's format is in remine-mes (`ControlConfig`); the demo
//! plant's is services/remine/demo/control.toml.
//! `serve` creates no users: add them with `remine user add`.

use super::{HISTORIAN_SPOOL_DIR, PLANT_DB_FILE};
use crate::cli::{DbArgs, ServeArgs};
use crate::{plant, server, storage};
use anyhow::Context;
use remine_api::AppState;
use remine_domain::ports::HistoryStore;
use remine_mes::{ControlConfig, LiveValues, Recipes, Users};
use remine_modbus::ModbusConfig;
use remine_opcua::OpcUaConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeConfig {
    site: String,
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    database: Option<String>,
    #[serde(default)]
    plant: PlantSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlantSection {
    #[serde(default)]
    modbus: Vec<PathBuf>,
    #[serde(default)]
    opcua: Vec<PathBuf>,
    #[serde(default = "default_live_period")]
    live_period_ms: u64,
    control: Option<PathBuf>,
}

impl Default for PlantSection {
    fn default() -> Self {
        PlantSection {
            modbus: Vec::new(),
            opcua: Vec::new(),
            live_period_ms: default_live_period(),
            control: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_live_period() -> u64 {
    200
}

fn load(path: &Path) -> anyhow::Result<ServeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    let config: ServeConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " ")))?;
    if !(50..=60_000).contains(&config.plant.live_period_ms) {
        anyhow::bail!(
            "{}: plant.live_period_ms {} is outside 50..60000",
            path.display(),
            config.plant.live_period_ms
        );
    }
    Ok(config)
}

/// A configuration with its tag maps and control file, all checked.
struct Loaded {
    config: ServeConfig,
    modbus: Vec<ModbusConfig>,
    opcua: Vec<OpcUaConfig>,
    control: Option<ControlConfig>,
}

/// Loads the configuration, every tag map and the control file it names,
/// checking them all (the control file against the tag maps' tags).
fn load_all(path: &Path) -> anyhow::Result<Loaded> {
    let config = load(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let modbus = config
        .plant
        .modbus
        .iter()
        .map(|p| ModbusConfig::from_file(dir.join(p)))
        .collect::<Result<Vec<_>, _>>()?;
    let opcua = config
        .plant
        .opcua
        .iter()
        .map(|p| OpcUaConfig::from_file(dir.join(p)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = std::collections::HashSet::new();
    for tag in modbus
        .iter()
        .flat_map(|m| m.catalogue())
        .chain(opcua.iter().flat_map(|o| o.catalogue()))
    {
        if !names.insert(tag.name.clone()) {
            anyhow::bail!(
                "{}: tag {} is defined in two tag maps",
                path.display(),
                tag.name
            );
        }
    }
    let control = match &config.plant.control {
        None => None,
        Some(p) => {
            let control = ControlConfig::from_file(&dir.join(p))?;
            let catalogue: Vec<_> = modbus
                .iter()
                .flat_map(|m| m.catalogue())
                .chain(opcua.iter().flat_map(|o| o.catalogue()))
                .collect();
            control.check_against(&catalogue)?;
            Some(control)
        }
    };
    Ok(Loaded {
        config,
        modbus,
        opcua,
        control,
    })
}

/// `remine check FILE`: the configuration linter.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let Loaded {
        config,
        modbus,
        opcua,
        control,
    } = load_all(path)?;
    let tags: usize = modbus.iter().map(|m| m.catalogue().len()).sum::<usize>()
        + opcua.iter().map(|o| o.catalogue().len()).sum::<usize>();
    println!(
        "{}: site '{}', {} Modbus and {} OPC UA tag maps, {tags} tags: OK",
        path.display(),
        config.site,
        modbus.len(),
        opcua.len()
    );
    if let Some(c) = &control {
        println!(
            "{}: {} units, {} permissives, {} alarms, {} derived tags: OK",
            c.source,
            c.units.len(),
            c.permissives.len(),
            c.alarms.len(),
            c.derived.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let Loaded {
        config,
        modbus,
        opcua,
        control,
    } = load_all(&args.config)?;
    let db_args = DbArgs {
        data: args.db.data.clone(),
        db: args.db.db.clone().or(config.database.clone()),
    };
    let db = Arc::new(storage::open(&db_args, PLANT_DB_FILE).await?);
    let store: Arc<dyn remine_domain::ports::Store> = db.clone();
    let listener = server::bind(args.listen.unwrap_or(config.listen)).await?;
    let has_plant = !(modbus.is_empty() && opcua.is_empty());
    let connected = if has_plant {
        Some(plant::connect(
            modbus,
            opcua,
            store.clone(),
            Duration::from_millis(config.plant.live_period_ms),
        )?)
    } else {
        None
    };
    let users = Users::new(store.clone(), chrono::Duration::hours(12));
    let recipes = Recipes::new(
        store.clone(),
        users.clone(),
        remine_recipes::shipped_catalogues(),
    );
    let (control, alarms) = match (control, &connected) {
        (Some(c), Some(p)) => {
            let (control, alarms) = plant::control(c, p, store.clone(), db.clone(), recipes.clone()).await?;
            (Some(control), Some(alarms))
        }
        _ => (None, None),
    };
    let historian_config = remine_historian::HistorianConfig::default();
    let historian = match &connected {
        Some(p) => Some(plant::record_history(
            p,
            db.clone(),
            &db_args.data.join(HISTORIAN_SPOOL_DIR),
            historian_config,
        )?),
        None => None,
    };
    let state = AppState {
        control,
        alarms,
        users,
        recipes,
        store,
        plant: connected
            .as_ref()
            .map(|p| p.io.clone() as Arc<dyn remine_domain::ports::TagIo>),
        writer: connected.as_ref().map(|p| p.writer.clone()),
        live: connected
            .as_ref()
            .map(|p| p.live.clone())
            .unwrap_or_else(LiveValues::none),
        site: config.site,
        stats: connected
            .as_ref()
            .map(|p| p.stats.clone())
            .unwrap_or_default(),
        history: historian.as_ref().map(|_| db.clone() as Arc<dyn HistoryStore>),
    };
    println!(
        "serving {} on http://{}/",
        state.site,
        listener.local_addr()?
    );
    axum::serve(listener, remine_api::app(state))
        .with_graceful_shutdown(server::stop_signal(None))
        .await
        .context("HTTP server failed")?;
    if let Some(h) = historian {
        h.flush().await;
    }
    Ok(ExitCode::SUCCESS)
}
