//! The running plant: configuration, start-up (maps checked, ports bound,
//! servers built), the one simulation clock that steps every model, the
//! faults, and shutdown.
//!
//! Each line's public port is a relay ([`crate::proxy`]) in front of its
//! server, which listens on a private loopback port: the link faults act
//! there. The OPC UA server still advertises the public address.

use crate::SimError;
use crate::clock::{MAX_STEP_S, SimClock, TICK, substeps};
use crate::control::{ControlState, router};
use crate::faults::{ActiveFault, Fault, FaultError, LineId};
use crate::injector::{Injector, ModbusPart, PlantParts};
use crate::lines::RegisterModel;
use crate::lines::discharge::{DischargeLine, DischargeSignal, StationSignal};
use crate::lines::hydromet::HydrometLine;
use crate::lines::lock;
use crate::lines::mechanical::MechanicalLine;
use crate::maps::{DISCHARGE_MAP, MECHANICAL_MAP, NoBlock, RegisterMap};
use crate::modbus::{LineService, ModbusFaults, serve};
use crate::nodes::{HYDROMET_NODES, NodeList};
use crate::truth::{Ledger, TruthBalance};
use crate::uaserver::HydrometServer;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The most stations a discharge line may have.
pub const MAX_STATIONS: usize = 64;
/// The fastest the simulator runs.
pub const MAX_SPEED: f64 = 100_000.0;

/// Where the plant listens and how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Modbus TCP address of the discharge line (port 0: any free port).
    pub discharge: SocketAddr,
    /// Modbus TCP address of the mechanical line.
    pub mechanical: SocketAddr,
    /// OPC UA address of the hydromet line.
    pub hydromet: SocketAddr,
    /// Simulated time runs this many times faster than wall time.
    pub speed: f64,
    /// Seed of every random draw (arrival states, yields, noise).
    pub seed: u64,
    /// Where the OPC UA server keeps (and on first start creates) its
    /// certificates.
    pub pki_dir: PathBuf,
    /// Number of discharge stations.
    pub stations: usize,
    /// Where the HTTP control endpoint (fault injection, ground truth)
    /// listens; `None`: no endpoint. Loopback addresses only.
    pub control: Option<SocketAddr>,
    /// A JSON-lines file the ground truth is appended to as material moves;
    /// `None`: kept in memory only.
    pub truth: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        SimConfig {
            discharge: SocketAddr::new(local, 5020),
            mechanical: SocketAddr::new(local, 5021),
            hydromet: SocketAddr::new(local, 4855),
            speed: 1.0,
            seed: 1,
            pki_dir: PathBuf::from("./remine-data/sim-pki"),
            stations: 4,
            control: None,
            truth: None,
        }
    }
}

/// A plant running in-process: three servers and the clock that drives
/// their models. Dropping it stops everything too; [`RunningPlant::shutdown`]
/// also waits for the tasks to end.
#[derive(Debug)]
pub struct RunningPlant {
    discharge: SocketAddr,
    mechanical: SocketAddr,
    hydromet: SocketAddr,
    stop: CancellationToken,
    opcua: Arc<HydrometServer>,
    ledger: Arc<Mutex<Ledger>>,
    injector: Arc<Injector>,
    control: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningPlant {
    /// The discharge line's Modbus address, as bound.
    pub fn discharge_addr(&self) -> SocketAddr {
        self.discharge
    }

    /// The mechanical line's Modbus address, as bound.
    pub fn mechanical_addr(&self) -> SocketAddr {
        self.mechanical
    }

    /// The hydromet line's OPC UA endpoint URL, `opc.tcp://IP:PORT/`.
    pub fn hydromet_endpoint(&self) -> String {
        endpoint_url(self.hydromet)
    }

    /// Where all material is now: fed, terminal outputs and inventory, by
    /// true element masses.
    pub fn truth(&self) -> TruthBalance {
        lock(&self.ledger).balance()
    }

    /// The ground truth so far as JSON lines (every material movement, then
    /// the present balance), as the ground-truth file holds it.
    pub fn truth_jsonl(&self) -> String {
        lock(&self.ledger).jsonl()
    }

    /// Where the HTTP control endpoint listens, if it was asked for.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control
    }

    /// Inject a fault (see simulators/README.md, "Faults"); it clears
    /// itself after its duration. Returns its id. A signal or station the
    /// plant does not have is refused, naming it.
    pub fn inject(&self, fault: Fault) -> Result<u64, FaultError> {
        self.injector.inject(fault)
    }

    /// Clear an active fault; false if there is none with that id.
    pub fn clear(&self, id: u64) -> bool {
        self.injector.clear(id)
    }

    /// Clear every active fault; returns how many there were.
    pub fn clear_all(&self) -> usize {
        self.injector.clear_all()
    }

    /// The active faults.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.injector.list()
    }

    /// Stop the servers and the clock and wait for them to end.
    #[tracing::instrument(skip_all)]
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        self.opcua.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a simulator task did not stop in time; aborting it");
                abort.abort();
            }
        }
        tracing::info!("plant simulator stopped");
    }
}

impl Drop for RunningPlant {
    fn drop(&mut self) {
        self.stop.cancel();
        self.opcua.cancel();
    }
}

fn endpoint_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("opc.tcp://{}/", SocketAddr::new(ip, addr.port()))
}

fn check_config(config: &SimConfig) -> Result<u16, SimError> {
    if !(config.speed.is_finite() && config.speed > 0.0 && config.speed <= MAX_SPEED) {
        return Err(SimError::Config {
            field: "speed",
            value: config.speed.to_string(),
            reason: "must be above 0 and at most 100000",
        });
    }
    if let Some(addr) = config.control
        && !addr.ip().is_loopback()
    {
        return Err(SimError::Config {
            field: "control",
            value: addr.to_string(),
            reason: "the control endpoint has no authentication: loopback addresses only",
        });
    }
    match u16::try_from(config.stations) {
        Ok(n) if (1..=MAX_STATIONS).contains(&config.stations) => Ok(n),
        _ => Err(SimError::Config {
            field: "stations",
            value: config.stations.to_string(),
            reason: "must be between 1 and 64",
        }),
    }
}

async fn bind(line: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), SimError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| SimError::listen(line, addr, &e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| SimError::listen(line, addr, &e))?;
    Ok((listener, bound))
}

/// Write the map's defaults (all RW signals that have one) in one batch.
pub(crate) fn apply_defaults<M: RegisterModel>(
    map: &RegisterMap<M::Line, M::Block>,
    model: &mut M,
) -> Result<(), SimError> {
    let batch: Vec<_> = map
        .signals()
        .iter()
        .filter_map(|p| p.default.map(|d| (p.signal, d)))
        .collect();
    model
        .write(&batch)
        .map_err(|e| SimError::map(map.file(), format!("a default was refused: {e}")))
}

pub(crate) fn apply_node_defaults(
    nodes: &NodeList,
    line: &mut HydrometLine,
) -> Result<(), SimError> {
    for u in &nodes.units {
        for spec in &u.variables {
            if let Some(d) = spec.default {
                line.write(u.unit, spec.var, d).map_err(|e| {
                    SimError::map(
                        "maps/hydromet.toml",
                        format!(
                            "{}.{}: the default was refused: {e}",
                            u.unit.name(),
                            spec.var.name()
                        ),
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Start the plant: check the maps, bind the three servers, build the models
/// and start the clock. A port already in use is an error naming the line
/// and the address.
#[tracing::instrument(skip_all, fields(discharge = %config.discharge, mechanical = %config.mechanical, hydromet = %config.hydromet, speed = config.speed))]
pub async fn start(config: SimConfig) -> Result<RunningPlant, SimError> {
    let stations = check_config(&config)?;
    let discharge_map = Arc::new(RegisterMap::<DischargeSignal, StationSignal>::parse(
        "maps/discharge.toml",
        DISCHARGE_MAP,
        stations,
    )?);
    let mechanical_map = Arc::new(RegisterMap::<
        crate::lines::mechanical::MechanicalSignal,
        NoBlock,
    >::parse("maps/mechanical.toml", MECHANICAL_MAP, 0)?);
    let nodes = Arc::new(NodeList::parse("maps/hydromet.toml", HYDROMET_NODES)?);

    let (discharge_public, discharge) = bind("discharge line", config.discharge).await?;
    let (mechanical_public, mechanical) = bind("mechanical line", config.mechanical).await?;
    let (hydromet_public, hydromet) = bind("hydromet line", config.hydromet).await?;
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let (discharge_listener, discharge_private) = bind("discharge line", private).await?;
    let (mechanical_listener, mechanical_private) = bind("mechanical line", private).await?;
    let (hydromet_listener, hydromet_private) = bind("hydromet line", private).await?;
    let control = match config.control {
        Some(addr) => Some(bind("control endpoint", addr).await?),
        None => None,
    };

    let mut discharge_line = DischargeLine::new(stations, config.seed);
    apply_defaults(&discharge_map, &mut discharge_line)?;
    let mut mechanical_line = MechanicalLine::new(config.seed);
    apply_defaults(&mechanical_map, &mut mechanical_line)?;
    let mut hydromet_line = HydrometLine::new(config.seed);
    apply_node_defaults(&nodes, &mut hydromet_line)?;
    let ledger =
        Ledger::new(config.seed, config.truth.as_deref()).map_err(|e| SimError::Truth {
            path: config.truth.clone().unwrap_or_default(),
            reason: e.to_string(),
        })?;
    let ledger = Arc::new(Mutex::new(ledger));
    let discharge_line = Arc::new(Mutex::new(discharge_line));
    let mechanical_line = Arc::new(Mutex::new(mechanical_line));
    let hydromet_line = Arc::new(Mutex::new(hydromet_line));
    let discharge_faults = Arc::new(Mutex::new(ModbusFaults::default()));
    let mechanical_faults = Arc::new(Mutex::new(ModbusFaults::default()));
    let hydromet_overrides = Arc::new(Mutex::new(Vec::new()));

    // Creating the certificates takes a while on first start: off the runtime.
    let pki_dir = config.pki_dir.clone();
    let ua_line = Arc::clone(&hydromet_line);
    let ua_nodes = Arc::clone(&nodes);
    let ua_overrides = Arc::clone(&hydromet_overrides);
    let ua_addr = SocketAddr::new(
        if hydromet.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            hydromet.ip()
        },
        hydromet.port(),
    );
    let (ua_server, opcua) = tokio::task::spawn_blocking(move || {
        HydrometServer::build(ua_addr, &pki_dir, &ua_nodes, ua_line, ua_overrides)
    })
    .await
    .map_err(|e| SimError::OpcUa(format!("building the server failed: {e}")))??;
    let opcua = Arc::new(opcua);

    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(serve(
        "discharge line",
        discharge_private,
        discharge_listener,
        LineService::new(
            Arc::clone(&discharge_map),
            Arc::clone(&discharge_line),
            Arc::clone(&discharge_faults),
        ),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(serve(
        "mechanical line",
        mechanical_private,
        mechanical_listener,
        LineService::new(
            Arc::clone(&mechanical_map),
            Arc::clone(&mechanical_line),
            Arc::clone(&mechanical_faults),
        ),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(async move {
        if let Err(err) = ua_server.run_with(hydromet_listener).await {
            tracing::error!(%err, "hydromet OPC UA server failed");
        }
    }));
    // The server takes its advertised port from the listener it is given:
    // tell it the public one, before any client gets through the relay.
    opcua
        .advertise_port(hydromet_private.port(), hydromet.port())
        .await?;
    let mut links = std::collections::BTreeMap::new();
    for (line, public, addr, upstream) in [
        (
            LineId::Discharge,
            discharge_public,
            discharge,
            discharge_private,
        ),
        (
            LineId::Mechanical,
            mechanical_public,
            mechanical,
            mechanical_private,
        ),
        (
            LineId::Hydromet,
            hydromet_public,
            hydromet,
            hydromet_private,
        ),
    ] {
        let (link, task) = crate::proxy::start(line.name(), public, addr, upstream, stop.clone());
        links.insert(line, link);
        tasks.push(task);
    }
    let injector = Arc::new(Injector::new(PlantParts {
        links,
        discharge: ModbusPart {
            map: discharge_map,
            model: Arc::clone(&discharge_line),
            faults: discharge_faults,
        },
        mechanical: ModbusPart {
            map: mechanical_map,
            model: Arc::clone(&mechanical_line),
            faults: mechanical_faults,
        },
        hydromet: Arc::clone(&hydromet_line),
        nodes,
        hydromet_overrides,
        ledger: Arc::clone(&ledger),
        stations,
        seed: config.seed,
    }));
    let control = match control {
        Some((listener, addr)) => {
            let app = router(ControlState {
                injector: Arc::clone(&injector),
                ledger: Arc::clone(&ledger),
            });
            let until = stop.clone();
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { until.cancelled().await })
                    .await;
                if let Err(err) = served {
                    tracing::error!(%err, "control endpoint failed");
                }
            }));
            tracing::info!(%addr, "control endpoint listening");
            Some(addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(run_clock(
        config.speed,
        discharge_line,
        mechanical_line,
        hydromet_line,
        Arc::clone(&ledger),
        Arc::clone(&opcua),
        stop.clone(),
    )));
    tracing::info!(%discharge, %mechanical, endpoint = %endpoint_url(hydromet), "plant simulator started");
    Ok(RunningPlant {
        discharge,
        mechanical,
        hydromet,
        stop,
        opcua,
        ledger,
        injector,
        control,
        tasks,
    })
}

/// The one clock: every wall tick, every model advances by the same
/// simulated time, in sub-steps short enough for stable integration.
async fn run_clock(
    speed: f64,
    discharge: Arc<Mutex<DischargeLine>>,
    mechanical: Arc<Mutex<MechanicalLine>>,
    hydromet: Arc<Mutex<HydrometLine>>,
    ledger: Arc<Mutex<Ledger>>,
    opcua: Arc<HydrometServer>,
    stop: CancellationToken,
) {
    let mut clock = SimClock::new(speed);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let dt = clock.tick();
        let mut truth = lock(&ledger);
        truth.set_time(clock.now_s());
        {
            let mut line = lock(&discharge);
            substeps(dt, MAX_STEP_S).for_each(|h| line.step(h));
            exchange_discharge(&mut line, &mut truth);
        }
        {
            let mut line = lock(&mechanical);
            substeps(dt, MAX_STEP_S).for_each(|h| line.step(h));
            exchange_mechanical(&mut line, &mut truth);
        }
        {
            let mut line = lock(&hydromet);
            substeps(dt, MAX_STEP_S).for_each(|h| line.step(h));
            exchange_hydromet(&mut line, &mut truth);
        }
        drop(truth);
        opcua.push();
    }
}

/// Tell the ledger which units entered and left the stations.
pub(crate) fn exchange_discharge(line: &mut DischargeLine, truth: &mut Ledger) {
    let mut index = 1;
    while let Some(station) = line.station_mut(index) {
        if station.take_released() {
            truth.discharge_released(index);
        }
        if let Some((chemistry, declared_kg)) = station.take_started() {
            truth.discharge_started(index, chemistry, declared_kg);
        }
        index += 1;
    }
}

/// Hand the shredder's cleared batch to the ledger and supply a started one.
pub(crate) fn exchange_mechanical(line: &mut MechanicalLine, truth: &mut Ledger) {
    let shredder = line.line_mut();
    if let Some(end) = shredder.take_batch_end() {
        truth.shred_ended(end);
    }
    if let Some(request) = shredder.take_feed_request() {
        let feed = truth.shred_started(request);
        shredder.supply(feed);
    }
}

/// Hand the train's cleared batch to the ledger and supply a started one.
pub(crate) fn exchange_hydromet(line: &mut HydrometLine, truth: &mut Ledger) {
    let train = line.train_mut();
    if let Some(end) = train.take_batch_end() {
        truth.leach_ended(end);
    }
    if let Some(request) = train.take_feed_request() {
        let material = truth.leach_started(request);
        train.supply(material);
    }
}
