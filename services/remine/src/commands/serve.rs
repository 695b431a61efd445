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
//! [reports]                          # optional
//! facility = "plant/facility.toml"   # steps, efficiencies: reports need it
//! delivery = "plant/delivery.toml"   # connectors to the platforms
//! send_to = ["catenax"]              # connectors reports are filed with
//! monthly_provisional = true         # a provisional report after each month
//! final_from = "02-01"               # the previous year's final one from MM-DD
//! ```
//! The control file's format is in remine-mes (`ControlConfig`); the demo
//! plant's is services/remine/demo/control.toml. The facility file's is in
//! remine-reporting (services/reporting/facility.example.toml), the delivery
//! file's in remine-delivery (`DeliveryConfig`). With both and `send_to`,
//! serve files the scheduled reports (checked at start and hourly) through
//! the outbox, and its worker delivers them.
//! `serve` creates no users: add them with `remine user add`.

use super::{HISTORIAN_SPOOL_DIR, PLANT_DB_FILE};
use crate::cli::{DbArgs, ServeArgs};
use crate::{plant, server, storage};
use anyhow::Context;
use remine_api::AppState;
use remine_domain::outbox::ConnectorName;
use remine_domain::ports::HistoryStore;
use remine_mes::{ControlConfig, LiveValues, Recipes, ReportSchedule, Reports, Users};
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
    #[serde(default)]
    reports: ReportsSection,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReportsSection {
    facility: Option<PathBuf>,
    delivery: Option<PathBuf>,
    #[serde(default)]
    send_to: Vec<String>,
    monthly_provisional: Option<bool>,
    final_from: Option<String>,
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
    reports: Reporting,
}

/// The reports part of a configuration, loaded and checked.
#[derive(Debug, Default)]
struct Reporting {
    facility: Option<remine_reporting::FacilityConfig>,
    delivery: Option<remine_delivery::DeliveryConfig>,
    send_to: Vec<ConnectorName>,
    schedule: ReportSchedule,
}

/// Loads the `[reports]` files and checks that every `send_to` names a
/// connector of the delivery file.
fn load_reports(path: &Path, dir: &Path, r: &ReportsSection) -> anyhow::Result<Reporting> {
    let facility = match &r.facility {
        None => None,
        Some(p) => {
            let file = dir.join(p);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read facility file {}", file.display()))?;
            Some(remine_reporting::FacilityConfig::from_toml(
                &text,
                &file.display().to_string(),
            )?)
        }
    };
    let delivery = match &r.delivery {
        None => None,
        Some(p) => Some(remine_delivery::DeliveryConfig::load(&dir.join(p))?),
    };
    let mut send_to = Vec::new();
    for name in &r.send_to {
        let name = ConnectorName::parse(name)
            .map_err(|e| anyhow::anyhow!("{}: reports.send_to: {e}", path.display()))?;
        let known = delivery
            .as_ref()
            .is_some_and(|d| d.connectors.iter().any(|c| c.name() == &name));
        if !known {
            anyhow::bail!(
                "{}: reports.send_to names connector {name}, which reports.delivery does not define",
                path.display()
            );
        }
        send_to.push(name);
    }
    if !send_to.is_empty() && facility.is_none() {
        anyhow::bail!(
            "{}: reports.send_to needs reports.facility (reports are made with it)",
            path.display()
        );
    }
    let mut schedule = ReportSchedule::default();
    if let Some(m) = r.monthly_provisional {
        schedule.monthly_provisional = m;
    }
    if let Some(text) = &r.final_from {
        let parsed = text
            .split_once('-')
            .and_then(|(m, d)| Some((m.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
            .filter(|(m, d)| (1..=12).contains(m) && (1..=31).contains(d));
        schedule.final_from = parsed.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: reports.final_from '{text}' is not a MM-DD date",
                path.display()
            )
        })?;
    }
    Ok(Reporting {
        facility,
        delivery,
        send_to,
        schedule,
    })
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
    let reports = load_reports(path, dir, &config.reports)?;
    Ok(Loaded {
        config,
        modbus,
        opcua,
        control,
        reports,
    })
}

/// `remine check FILE`: the configuration linter.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let Loaded {
        config,
        modbus,
        opcua,
        control,
        reports,
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
    if let Some(f) = &reports.facility {
        println!(
            "reports: facility '{}', {} process steps: OK",
            f.facility().name,
            f.steps().len()
        );
    }
    if let Some(d) = &reports.delivery {
        println!(
            "reports: {} delivery connectors, reports sent to [{}]: OK",
            d.connectors.len(),
            reports
                .send_to
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
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
        reports,
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
            let (control, alarms) =
                plant::control(c, p, store.clone(), db.clone(), recipes.clone()).await?;
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
        history: historian
            .as_ref()
            .map(|_| db.clone() as Arc<dyn HistoryStore>),
        facility: reports.facility.clone().map(Arc::new),
        traces: Default::default(),
    };
    let delivery = match &reports.delivery {
        Some(d) => Some(remine_delivery::start(d, db.clone())?),
        None => None,
    };
    let filing = match (&reports.facility, reports.send_to.is_empty()) {
        (Some(facility), false) => Some(tokio::spawn(file_reports(
            Reports::new(state.store.clone()),
            reports.schedule.clone(),
            facility.clone(),
            reports.send_to.clone(),
        ))),
        _ => None,
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
    if let Some(f) = filing {
        f.abort();
    }
    if let Some(d) = delivery {
        d.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Files the reports the schedule makes due, at start and then hourly.
async fn file_reports(
    reports: Reports,
    schedule: ReportSchedule,
    facility: remine_reporting::FacilityConfig,
    targets: Vec<ConnectorName>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match reports
            .file_due(chrono::Utc::now(), &schedule, &facility, &targets)
            .await
        {
            Ok(filed) => {
                for id in filed {
                    tracing::info!(document = %id, "report filed and queued for delivery");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled report not filed"),
        }
    }
}
