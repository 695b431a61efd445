//! `remine demo`: the whole thin path on one machine.
//!
//! Starts the plant simulator in-process on loopback, connects to it through
//! the Modbus and OPC UA adapters over real TCP, creates a fresh SQLite
//! database (DATA/demo.db, recreated on every run), receives the demo's own
//! passports, runs the packs through discharge, shredding and the
//! hydrometallurgical train to product lots, prints the recovery rates, and
//! serves the HMI until Ctrl-C or --duration.

use crate::cli::DemoArgs;
use crate::{plant, server};
use anyhow::{Context, bail};
use chrono::Datelike;
use include_dir::{Dir, include_dir};
use remine_api::AppState;
use remine_domain::ports::{LotStore, Store, TagIo};
use remine_domain::recipe::lifecycle::Transition;
use remine_domain::recipe::{Line, RecipeKey};
use remine_domain::{Chemistry, CountryCode, Role, Username};
use remine_mes::production::{Production, RunConfig};
use remine_mes::{Actor, Intake, Recipes, Users, random_password};
use remine_modbus::ModbusConfig;
use remine_opcua::OpcUaConfig;
use remine_sim::SimConfig;
use remine_store::Db;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

static DEMO_PASSPORTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/demo/passports");
const DISCHARGE_MAP: &str = include_str!("../../demo/plant-discharge.toml");
const MECHANICAL_MAP: &str = include_str!("../../demo/plant-mechanical.toml");
const HYDROMET_MAP: &str = include_str!("../../demo/plant-hydromet.toml");
const CONTROL: &str = include_str!("../../demo/control.toml");
use super::HISTORIAN_SPOOL_DIR;
const DEMO_DB_FILE: &str = "demo.db";
/// The demo plant's facility configuration for its reports.
const FACILITY: &str = include_str!("../../demo/facility.toml");
const STATIONS: usize = 4;
/// How often the adapters poll the simulated PLCs: live values reach the
/// HMI within 250 ms of a change (BENCHMARKS.md).
const LIVE_PERIOD: Duration = Duration::from_millis(100);

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // Fail fast on the HTTP port before anything starts.
    let listener = server::bind(args.listen).await?;
    let store: Arc<Db> = Arc::new(open_fresh(&args).await?);
    let dyn_store: Arc<dyn Store> = store.clone();

    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let sim = remine_sim::start(SimConfig {
        discharge: loopback(args.discharge_port),
        mechanical: loopback(args.mechanical_port),
        hydromet: loopback(args.hydromet_port),
        speed: args.speed,
        seed: args.seed,
        pki_dir: args.db.data.join("sim-pki"),
        stations: STATIONS,
        ..SimConfig::default()
    })
    .await
    .context("plant simulator")?;
    let sim = Arc::new(sim);

    let fill = |template: &str| {
        template
            .replace("{{DISCHARGE_ADDR}}", &sim.discharge_addr().to_string())
            .replace("{{MECHANICAL_ADDR}}", &sim.mechanical_addr().to_string())
            .replace("{{HYDROMET_ENDPOINT}}", &sim.hydromet_endpoint())
            .replace(
                "{{PKI_DIR}}",
                &args.db.data.join("client-pki").display().to_string(),
            )
    };
    let modbus = vec![
        ModbusConfig::from_toml_str(&fill(DISCHARGE_MAP), "demo/plant-discharge.toml")?,
        ModbusConfig::from_toml_str(&fill(MECHANICAL_MAP), "demo/plant-mechanical.toml")?,
    ];
    let opcua = vec![OpcUaConfig::from_toml_str(
        &fill(HYDROMET_MAP),
        "demo/plant-hydromet.toml",
    )?];
    let plant = plant::connect(modbus, opcua, dyn_store.clone(), LIVE_PERIOD)?;
    let historian = plant::record_history(
        &plant,
        store.clone(),
        &args.db.data.join(HISTORIAN_SPOOL_DIR),
        remine_historian::HistorianConfig::default(),
    )?;

    let users = Users::new(dyn_store.clone(), chrono::Duration::hours(12));
    let mut credentials = Vec::new();
    for (name, role) in [
        ("operator", Role::Operator),
        ("engineer", Role::Engineer),
        ("supervisor", Role::Supervisor),
    ] {
        let password = random_password();
        users
            .add(&Actor::system(), &Username::parse(name)?, role, &password)
            .await?;
        credentials.push((name, role, password));
    }
    let recipes = Recipes::new(
        dyn_store.clone(),
        users.clone(),
        remine_recipes::shipped_catalogues(),
    );

    let (control, alarms) = plant::control(
        remine_mes::ControlConfig::from_toml_str(CONTROL, "demo/control.toml")?,
        &plant,
        dyn_store.clone(),
        store.clone(),
        recipes.clone(),
    )
    .await?;
    let state = AppState {
        control: Some(control),
        alarms: Some(alarms),
        store: dyn_store.clone(),
        recipes: recipes.clone(),
        users,
        plant: Some(plant.io.clone() as Arc<dyn TagIo>),
        writer: Some(plant.writer.clone()),
        live: plant.live.clone(),
        site: "remine demo plant (simulated)".into(),
        stats: plant.stats.clone(),
        history: Some(store.clone()),
        facility: Some(Arc::new(remine_reporting::FacilityConfig::from_toml(
            FACILITY,
            "demo/facility.toml",
        )?)),
        traces: Default::default(),
    };
    let addr = listener.local_addr()?;
    // The demo alone lets a supervisor inject simulator faults through the API.
    let faults = remine_api::DemoFaults(Arc::new(SimFaults(Arc::downgrade(&sim))));
    let app = remine_api::app(state).layer(axum::Extension(faults));
    let http = tokio::spawn(async move { axum::serve(listener, app).await });

    println!("remine demo: simulated plant at speed x{}", args.speed);
    println!(
        "  discharge line  modbus://{} (unit 1)",
        sim.discharge_addr()
    );
    println!(
        "  mechanical line modbus://{} (unit 2)",
        sim.mechanical_addr()
    );
    println!("  hydromet line   {}", sim.hydromet_endpoint());
    match &args.db.db {
        None => println!(
            "  database        SQLite {}",
            args.db.data.join(DEMO_DB_FILE).display()
        ),
        Some(_) => println!("  database        {store:?}"),
    }
    for (name, role, password) in &credentials {
        println!("  user {name} password {password} role {}", role.name());
    }
    println!("  HMI: http://{addr}/");

    let production = {
        let data = args.db.data.clone();
        let store = dyn_store.clone();
        let plant = plant.clone();
        let recipes = recipes.clone();
        let signers = Signers::from(&credentials);
        tokio::spawn(async move {
            let result = produce(&data, store, plant, recipes, signers).await;
            if let Err(e) = &result {
                eprintln!("error: production run: {e:#}");
            }
            result
        })
    };

    tokio::select! {
        _ = server::stop_signal(args.duration) => {}
        r = http => { r.context("HTTP server task")?.context("HTTP server failed")?; }
    }
    if !production.is_finished() {
        println!("stopping before the production run finished");
        production.abort();
    } else if let Ok(Err(_)) = production.await {
        stop_simulator(sim).await;
        return Ok(ExitCode::FAILURE);
    }
    historian.flush().await;
    stop_simulator(sim).await;
    store.close().await;
    println!("remine demo stopped");
    Ok(ExitCode::SUCCESS)
}

/// Stops the simulator, waiting for its tasks unless a fault request still
/// holds it (then dropping it stops it).
async fn stop_simulator(sim: Arc<remine_sim::RunningPlant>) {
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
}

/// The demo's simulator as the API's fault target. It holds the plant
/// weakly, so stopping the demo is not kept waiting by the HTTP server.
#[derive(Debug)]
struct SimFaults(std::sync::Weak<remine_sim::RunningPlant>);

impl SimFaults {
    fn plant(&self) -> Result<Arc<remine_sim::RunningPlant>, String> {
        self.0
            .upgrade()
            .ok_or_else(|| "the simulator has stopped".to_string())
    }
}

type Answer<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send>>;

impl remine_api::SimulatorFaults for SimFaults {
    fn inject(&self, request: serde_json::Value) -> Answer<serde_json::Value> {
        let result = self.plant().and_then(|sim| {
            let request: remine_sim::FaultRequest =
                serde_json::from_value(request).map_err(|e| format!("fault request: {e}"))?;
            let fault = request.parse().map_err(|e| format!("fault request: {e}"))?;
            let id = sim
                .inject(fault)
                .map_err(|e| format!("fault request: {e}"))?;
            Ok(serde_json::json!({ "id": id }))
        });
        Box::pin(async move { result })
    }

    fn list(&self) -> Answer<serde_json::Value> {
        let result = self.plant().and_then(|sim| {
            serde_json::to_value(sim.faults()).map_err(|e| format!("fault list: {e}"))
        });
        Box::pin(async move { result })
    }

    fn clear(&self, id: u64) -> Answer<bool> {
        let result = self.plant().map(|sim| sim.clear(id));
        Box::pin(async move { result })
    }
}

/// The demo's own database: DATA/demo.db recreated, or an empty --db.
async fn open_fresh(args: &DemoArgs) -> anyhow::Result<Db> {
    if let Some(url) = &args.db.db {
        let db = Db::open(url).await?;
        if !db.lots().await?.is_empty() {
            bail!("database {db:?} already holds lots; the demo needs an empty database");
        }
        return Ok(db);
    }
    let dir = &args.db.data;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    // For `remine report recovery --data DIR` on the demo's database.
    let facility = dir.join(super::report::FACILITY_FILE);
    std::fs::write(&facility, FACILITY)
        .with_context(|| format!("cannot write {}", facility.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.join(format!("{DEMO_DB_FILE}{suffix}"));
        if p.exists() {
            std::fs::remove_file(&p)
                .with_context(|| format!("cannot remove the old demo database {}", p.display()))?;
        }
    }
    Ok(Db::open(&crate::storage::sqlite_url(&dir.join(DEMO_DB_FILE))).await?)
}

/// The demo's engineer and supervisor, who sign the recipes it runs on.
struct Signers {
    engineer: (Actor, String),
    supervisor: (Actor, String),
}

impl Signers {
    fn from(credentials: &[(&str, Role, String)]) -> Signers {
        let find = |role: Role| {
            credentials
                .iter()
                .find(|(_, r, _)| *r == role)
                .and_then(|(name, r, pw)| {
                    Username::parse(name)
                        .ok()
                        .map(|user| (Actor { user, role: *r }, pw.clone()))
                })
                .unwrap_or_else(|| (Actor::system(), String::new()))
        };
        Signers {
            engineer: find(Role::Engineer),
            supervisor: find(Role::Supervisor),
        }
    }
}

/// Releases the shipped recipe of each key the run needs, through the
/// whole signed life cycle: the engineer drafts and submits, the supervisor
/// approves and releases (both re-entering their passwords).
async fn release_recipes(
    recipes: &Recipes,
    signers: &Signers,
    keys: &BTreeSet<RecipeKey>,
) -> anyhow::Result<()> {
    let shipped = remine_recipes::shipped_recipes();
    let (engineer, eng_pw) = &signers.engineer;
    let (supervisor, sup_pw) = &signers.supervisor;
    for key in keys {
        let (_, recipe) = shipped
            .iter()
            .find(|(_, r)| r.key() == *key)
            .with_context(|| format!("no shipped recipe for {key}"))?;
        let draft = recipes
            .create_draft(engineer, recipe.clone(), "shipped default recipe")
            .await?;
        let v = draft.version;
        for (who, pw, step, why) in [
            (
                engineer,
                eng_pw,
                Transition::Submit,
                "shipped defaults, domain brief section 3",
            ),
            (
                supervisor,
                sup_pw,
                Transition::Approve,
                "reviewed for the demo plant",
            ),
            (
                supervisor,
                sup_pw,
                Transition::Release,
                "released for the demo run",
            ),
        ] {
            recipes.sign(who, *key, v, step, pw, why).await?;
        }
    }
    println!(
        "  released {} recipes (drafted by engineer, approved and released by supervisor)",
        keys.len()
    );
    Ok(())
}

/// Receives the demo passports and runs them through the plant; prints the report.
async fn produce(
    data: &Path,
    store: Arc<dyn Store>,
    plant: plant::Plant,
    recipes: Recipes,
    signers: Signers,
) -> anyhow::Result<()> {
    let dir = data.join("demo-passports");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    DEMO_PASSPORTS
        .extract(&dir)
        .with_context(|| format!("cannot write the demo passports to {}", dir.display()))?;
    let countries = delivery_notes(&dir.join("collection.toml"))?;

    let summary = remine_passports::import_paths(std::slice::from_ref(&dir));
    for refusal in &summary.refused {
        println!("  refused {}", refusal.error);
    }
    let intake = Intake::new(store.clone());
    let actor = Actor {
        user: Username::parse("operator")?,
        role: Role::Operator,
    };
    let mut units = Vec::new();
    for unit in &summary.accepted {
        let p = &unit.passport;
        let country = countries.get(p.id().as_str()).cloned();
        let lot = intake
            .receive(
                &actor,
                p,
                chrono::Utc::now(),
                country,
                &unit.source.display().to_string(),
            )
            .await?;
        println!(
            "  received {} ({} {}, {})",
            lot.id(),
            p.chemistry().map(Chemistry::name).unwrap_or("?"),
            p.unit_type().name(),
            p.mass()
        );
        if let Some(c) = p.chemistry() {
            units.push((lot, c, p.unit_type()));
        }
    }
    let keys: BTreeSet<RecipeKey> = units
        .iter()
        .flat_map(|(_, c, _)| {
            Line::ALL.map(|line| RecipeKey {
                line,
                chemistry: *c,
            })
        })
        .collect();
    release_recipes(&recipes, &signers, &keys).await?;
    let production = Production::new(
        plant.io.clone(),
        plant.writer.clone(),
        store.clone(),
        recipes,
        Actor::system(),
        RunConfig {
            stations: STATIONS,
            poll: Duration::from_millis(250),
            step_timeout: Duration::from_secs(600),
        },
    );
    let campaign = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    println!(
        "  production run {campaign}: {} units to discharge",
        units.len()
    );
    let result = production.run(&campaign, &units).await?;
    println!(
        "  made {} from black mass lot {} ({} setpoint and command writes, all audited)",
        result
            .products
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        result.black_mass,
        result.setpoint_writes
    );
    let year = chrono::Utc::now().year();
    let outcome = remine_mes::Reports::new(store.clone())
        .recovery(
            remine_mes::RecoveryRequest {
                year,
                status: remine_reporting::ReportStatus::Provisional,
                facility: remine_reporting::FacilityConfig::from_toml(
                    FACILITY,
                    "demo/facility.toml",
                )?,
                downstream: Vec::new(),
                generated_at: chrono::Utc::now(),
            },
            &|_| (),
        )
        .await?;
    let Some(stream) = outcome.report.streams.first() else {
        println!("recovery rates {year}: no input stream");
        return Ok(());
    };
    println!(
        "recovery rates {year} (rRM, Reg. 2023/1542 Annex XII, provisional), from {} input units, {:.3} t:",
        stream.total.input_units, stream.total.m_input_tonnes
    );
    for row in &stream.total.rows {
        match row.r_rm {
            Some(r) => println!(
                "  {:<2} {:>6.1} % +- {:.1} ({}){}",
                row.element,
                r,
                row.r_rm_sigma.unwrap_or(0.0),
                row.uncertainty_basis,
                row.targets
                    .iter()
                    .map(|t| format!(
                        "  {} target {} %: {}",
                        t.by_end_of,
                        t.target_pct,
                        if t.met { "met" } else { "not met" }
                    ))
                    .collect::<String>()
            ),
            None => println!("  {:<2}      -    (none in the input)", row.element),
        }
    }
    Ok(())
}

/// Countries of collection from the demo's delivery notes.
fn delivery_notes(path: &Path) -> anyhow::Result<HashMap<String, CountryCode>> {
    #[derive(serde::Deserialize)]
    struct Notes {
        country_of_collection: HashMap<String, String>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let notes: Notes =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    notes
        .country_of_collection
        .into_iter()
        .map(|(id, c)| Ok((id, CountryCode::parse(&c)?)))
        .collect()
}
