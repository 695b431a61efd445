//! Line control and alarms against the real parts: the simulator behind
//! its Modbus and OPC UA servers, the real adapters with the demo's tag maps
//! and control file, a SQLite store, released recipes.
//!
//! Units are driven through the ISA-88 transitions the simulator has;
//! wrong-state commands are refused and audited; each demo permissive
//! refuses (naming its false check) and then permits; an O2 leak raises the
//! critical O2 alarm and trips the shredder; acknowledge and shelve keep to
//! roles, reasons and maxima; a flood is reported; a stopped unit's process
//! alarms are suppressed by design; the history exports as CSV.

#![allow(clippy::unwrap_used)]

use chrono::Duration as Span;
use remine_domain::ports::{AlarmHappening, AlarmQuery, Store, TagIo};
use remine_domain::recipe::lifecycle::Transition;
use remine_domain::recipe::{RecipeKey, RecipeVersion};
use remine_domain::{
    AlarmStatus, Chemistry, LotId, Priority, Role, TagInfo, TagName, TagValue, UnitCommand,
    UnitState, Username,
};
use remine_mes::{
    Actor, Alarms, CommandOutcome, ControlConfig, GuardedWriter, LineControl, LiveValues, MesError,
    PlantIo, Recipes, Shelve, StartBatch, UnitRequest, Users, history_csv,
};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use remine_sim::{Fault, FaultKind, LineId, RunningPlant, SimConfig};
use std::sync::Arc;
use std::time::Duration;

const DISCHARGE_MAP: &str = include_str!("../../remine/demo/plant-discharge.toml");
const MECHANICAL_MAP: &str = include_str!("../../remine/demo/plant-mechanical.toml");
const HYDROMET_MAP: &str = include_str!("../../remine/demo/plant-hydromet.toml");
const CONTROL: &str = include_str!("../../remine/demo/control.toml");
const PASSWORD: &str = "correct horse battery";
/// Simulated seconds per wall second.
const SPEED: f64 = 600.0;

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        user: Username::parse(name).unwrap(),
        role,
    }
}

fn olga() -> Actor {
    actor("olga", Role::Operator)
}

fn vera() -> Actor {
    actor("vera", Role::Viewer)
}

fn sam() -> Actor {
    actor("sam", Role::Supervisor)
}

fn tag(s: &str) -> TagName {
    TagName::parse(s).unwrap()
}

struct Line {
    sim: RunningPlant,
    _dir: tempfile::TempDir,
    io: Arc<PlantIo>,
    store: Arc<dyn Store>,
    writer: GuardedWriter,
    control: LineControl,
    alarms: Alarms,
    config: Arc<ControlConfig>,
    db: Arc<remine_store::Db>,
    live: LiveValues,
    lots: std::sync::atomic::AtomicUsize,
}

fn fill(template: &str, sim: &RunningPlant, pki: &std::path::Path) -> String {
    template
        .replace("{{DISCHARGE_ADDR}}", &sim.discharge_addr().to_string())
        .replace("{{MECHANICAL_ADDR}}", &sim.mechanical_addr().to_string())
        .replace("{{HYDROMET_ENDPOINT}}", &sim.hydromet_endpoint())
        .replace("{{PKI_DIR}}", &pki.display().to_string())
}

/// The demo tag maps, as `remine check` reads them (no connection).
fn demo_catalogue() -> Vec<TagInfo> {
    let sim_free = |t: &str| {
        t.replace("{{DISCHARGE_ADDR}}", "127.0.0.1:5020")
            .replace("{{MECHANICAL_ADDR}}", "127.0.0.1:5021")
            .replace("{{HYDROMET_ENDPOINT}}", "opc.tcp://127.0.0.1:4855/")
            .replace("{{PKI_DIR}}", "/tmp/pki")
    };
    let mut c = Vec::new();
    for m in [DISCHARGE_MAP, MECHANICAL_MAP] {
        c.extend(
            ModbusConfig::from_toml_str(&sim_free(m), "map")
                .unwrap()
                .catalogue(),
        );
    }
    c.extend(
        OpcUaConfig::from_toml_str(&sim_free(HYDROMET_MAP), "map")
            .unwrap()
            .catalogue(),
    );
    c
}

/// The plant with the demo's control file, or `control` instead.
async fn line_with(control: &str, hydromet: bool) -> Line {
    let dir = tempfile::tempdir().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let sim = remine_sim::start(SimConfig {
        discharge: any,
        mechanical: any,
        hydromet: any,
        speed: SPEED,
        pki_dir: dir.path().join("sim-pki"),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let pki = dir.path().join("client-pki");
    let mut sources: Vec<Arc<dyn TagIo>> = Vec::new();
    for m in [DISCHARGE_MAP, MECHANICAL_MAP] {
        let config = ModbusConfig::from_toml_str(&fill(m, &sim, &pki), "demo map").unwrap();
        sources.push(Arc::new(ModbusAdapter::start(config).unwrap()));
    }
    if hydromet {
        let opcua =
            OpcUaConfig::from_toml_str(&fill(HYDROMET_MAP, &sim, &pki), "demo map").unwrap();
        sources.push(Arc::new(OpcUaAdapter::start(opcua).unwrap()));
    }
    let io = Arc::new(PlantIo::new(sources).unwrap());
    let db = Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
    let store: Arc<dyn Store> = db.clone();
    let users = Users::new(store.clone(), chrono::Duration::hours(1));
    for a in [olga(), vera(), sam(), actor("erin", Role::Engineer)] {
        users
            .add(&Actor::system(), &a.user, a.role, PASSWORD)
            .await
            .unwrap();
    }
    let writer = GuardedWriter::new(io.clone(), store.clone());
    let recipes = Recipes::new(store.clone(), users, remine_recipes::shipped_catalogues());
    for k in ["discharge/NMC811", "mechanical/NMC811", "hydromet/NMC811"] {
        release(&recipes, k).await;
    }
    let mut config = ControlConfig::from_toml_str(control, "control.toml").unwrap();
    if !hydromet {
        // Without the OPC UA link (slow to set up) the hydromet part goes.
        config.units.retain(|u| !u.path.starts_with("Hydromet"));
        config
            .permissives
            .retain(|p| !p.unit.starts_with("Hydromet"));
        config.alarms.retain(|a| a.area != "Hydromet");
        config
            .derived
            .retain(|d| !d.name.as_str().starts_with("Hydromet"));
    }
    config.check_against(&io.catalogue()).unwrap();
    let config = Arc::new(config);
    let live = LiveValues::start(io.clone(), io.names(), Duration::from_millis(100));
    let control = LineControl::new(
        config.clone(),
        io.clone(),
        writer.clone(),
        store.clone(),
        recipes,
    );
    control.watch(&live);
    let alarms = Alarms::start(config.clone(), db.clone(), store.clone(), &live);
    let l = Line {
        sim,
        _dir: dir,
        io,
        store,
        writer,
        control,
        alarms,
        config,
        db,
        live,
        lots: Default::default(),
    };
    let mut wanted = vec!["Discharge/Station1/State", "Mechanical/Shredder/State"];
    if hydromet {
        wanted.push("Hydromet/Leach/State");
    }
    for t in wanted {
        l.until(&format!("{t} to be read"), async || {
            l.read(t).await.is_some()
        })
        .await;
    }
    l
}

async fn line() -> Line {
    line_with(CONTROL, false).await
}

/// Draft, submit (erin), approve and release (sam) the shipped recipe.
async fn release(recipes: &Recipes, k: &str) {
    let key = RecipeKey::parse(k).unwrap();
    let (_, recipe) = remine_recipes::shipped_recipes()
        .into_iter()
        .find(|(_, r)| r.key() == key)
        .unwrap();
    let erin = actor("erin", Role::Engineer);
    let v: RecipeVersion = recipes
        .create_draft(&erin, recipe, "shipped")
        .await
        .unwrap()
        .version;
    for (who, t) in [
        (&erin, Transition::Submit),
        (&sam(), Transition::Approve),
        (&sam(), Transition::Release),
    ] {
        recipes
            .sign(who, key, v, t, PASSWORD, "checked against the SOP")
            .await
            .unwrap();
    }
}

impl Line {
    async fn read(&self, t: &str) -> Option<f64> {
        self.io.read(&[tag(t)]).await[0]
            .good_value()
            .map(TagValue::as_f64)
    }

    async fn state(&self, unit: &str) -> Option<UnitState> {
        let code = self.read(&format!("{unit}/State")).await?;
        UnitState::from_code(code as u16)
    }

    async fn until(&self, what: &str, mut f: impl AsyncFnMut() -> bool) {
        for _ in 0..1200 {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    async fn settles(&self, unit: &str, want: UnitState) {
        self.until(&format!("{unit} to be {want}"), async || {
            self.state(unit).await == Some(want)
        })
        .await;
    }

    async fn set(&self, t: &str, v: TagValue) {
        self.writer
            .write(&olga(), &tag(t), v, "test set-up")
            .await
            .unwrap();
    }

    fn next_lot(&self) -> LotId {
        let n = self.lots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LotId::parse(&format!("B-{n:03}")).unwrap()
    }

    async fn command(
        &self,
        who: &Actor,
        unit: &str,
        command: UnitCommand,
    ) -> Result<CommandOutcome, MesError> {
        let batch = (command == UnitCommand::Start).then(|| StartBatch {
            chemistry: Chemistry::Nmc811,
            lot: self.next_lot(),
        });
        self.control
            .command(
                who,
                UnitRequest {
                    unit: unit.into(),
                    command,
                    reason: format!("test: {command}"),
                    batch,
                },
            )
            .await
    }

    /// Gives a command that must be accepted and lead to `to`.
    async fn accepted(&self, unit: &str, command: UnitCommand, to: UnitState) {
        let out = self.command(&olga(), unit, command).await.unwrap();
        assert_eq!(out.to, to, "{unit} {command}");
    }

    /// Gives a command that must be refused with `fragment` in the reason.
    async fn refused(&self, who: &Actor, unit: &str, command: UnitCommand, fragment: &str) {
        check_refusal(self.command(who, unit, command).await, fragment);
    }

    /// Loads a 12-cell, 100 Ah module on a discharge station (it ends near 12 V).
    async fn load_module(&self, station: &str) {
        for (s, v) in [
            ("Chemistry", TagValue::Int(4)),
            ("CellsInSeries", TagValue::Int(12)),
            ("CapacityAh", TagValue::Float(100.0)),
            ("UnitMass", TagValue::Float(60.0)),
        ] {
            self.set(&format!("{station}/{s}"), v).await;
        }
    }

    /// Loads a 109-cell pack (about 400 V) on a station.
    async fn load_pack(&self, station: &str) {
        for (s, v) in [
            ("Chemistry", TagValue::Int(4)),
            ("CellsInSeries", TagValue::Int(109)),
            ("CapacityAh", TagValue::Float(250.0)),
            ("UnitMass", TagValue::Float(500.0)),
        ] {
            self.set(&format!("{station}/{s}"), v).await;
        }
    }

    async fn charge_shredder(&self, kg: f64) {
        self.set("Mechanical/Shredder/ChargeMass", TagValue::Float(kg))
            .await;
        self.set("Mechanical/Shredder/ChargeChemistry", TagValue::Int(4))
            .await;
    }

    /// Starts the shredder and waits until the purge has made the chamber inert.
    async fn shred(&self) {
        self.charge_shredder(10_000.0).await;
        self.accepted(
            "Mechanical/Shredder",
            UnitCommand::Start,
            UnitState::Running,
        )
        .await;
        self.until("the shredder to feed", async || {
            self.read("Mechanical/Shredder/Feeding").await == Some(1.0)
        })
        .await;
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.store
            .entries(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {}: {}",
                    e.event.actor, e.event.action, e.event.target, e.event.reason
                )
            })
            .collect()
    }

    async fn audited(&self, fragment: &str) {
        let actions = self.audit_actions().await;
        assert!(
            actions.iter().any(|a| a.contains(fragment)),
            "no audit entry with '{fragment}' in {actions:#?}"
        );
    }

    async fn status(&self, alarm: &str) -> AlarmStatus {
        self.alarms
            .list()
            .await
            .into_iter()
            .find(|a| a.id == alarm)
            .unwrap()
            .status
    }

    async fn history_len(&self) -> i64 {
        let h = self
            .alarms
            .history(&AlarmQuery {
                limit: 1,
                ..AlarmQuery::default()
            })
            .await
            .unwrap();
        h.last().map_or(0, |(seq, _)| *seq)
    }

    async fn alarm_becomes(&self, alarm: &str, want: AlarmStatus) {
        self.until(&format!("{alarm} to be {want}"), async || {
            self.status(alarm).await == want
        })
        .await;
    }
}

fn check_refusal<T: std::fmt::Debug>(r: Result<T, MesError>, fragment: &str) {
    let e = r.expect_err("must be refused").to_string();
    assert!(e.contains(fragment), "'{e}' does not say '{fragment}'");
}

// Units and their states ------------------------------------------------------

#[tokio::test]
async fn a_discharge_station_holds_restarts_stops_and_resets_with_wrong_commands_refused() {
    let l = line().await;
    let st = "Discharge/Station1";
    use UnitCommand as C;
    use UnitState as S;
    l.refused(&olga(), st, C::Hold, "hold is not allowed in state Idle")
        .await;
    l.load_module(st).await;
    l.accepted(st, C::Start, S::Running).await;
    l.settles(st, S::Running).await;
    l.refused(
        &olga(),
        st,
        C::Start,
        "start is not allowed in state Running",
    )
    .await;
    l.refused(
        &olga(),
        st,
        C::Reset,
        "reset is not allowed in state Running",
    )
    .await;
    l.accepted(st, C::Hold, S::Holding).await;
    l.settles(st, S::Held).await;
    l.refused(&olga(), st, C::Hold, "hold is not allowed in state Held")
        .await;
    l.accepted(st, C::Restart, S::Restarting).await;
    l.settles(st, S::Running).await;
    l.accepted(st, C::Stop, S::Stopping).await;
    l.settles(st, S::Stopped).await;
    l.refused(
        &olga(),
        st,
        C::Restart,
        "restart is not allowed in state Stopped",
    )
    .await;
    // The release permissive: the module must rest 30 s below 60 V.
    l.until("the rebound rest", async || {
        l.command(&olga(), st, C::Reset).await.is_ok()
    })
    .await;
    l.settles(st, S::Idle).await;
    l.audited("olga unit.command.refused Discharge/Station1: Discharge/Station1: hold is not allowed in state Idle")
        .await;
    l.audited("olga unit.command Discharge/Station1").await;
}

#[tokio::test]
async fn a_discharge_station_completes_and_aborts_and_resets_from_both() {
    let l = line().await;
    use UnitCommand as C;
    use UnitState as S;
    let (a, b) = ("Discharge/Station1", "Discharge/Station2");
    l.load_module(a).await;
    l.load_module(b).await;
    l.accepted(a, C::Start, S::Running).await;
    l.accepted(b, C::Start, S::Running).await;
    l.accepted(b, C::Abort, S::Aborting).await;
    l.settles(b, S::Aborted).await;
    l.refused(
        &olga(),
        b,
        C::Abort,
        "abort is not allowed in state Aborted",
    )
    .await;
    l.settles(a, S::Complete).await;
    for st in [a, b] {
        l.until("the rebound rest", async || {
            l.command(&olga(), st, C::Reset).await.is_ok()
        })
        .await;
        l.settles(st, S::Idle).await;
    }
}

#[tokio::test]
async fn the_shredder_holds_restarts_aborts_stops_and_resets() {
    let l = line().await;
    let sh = "Mechanical/Shredder";
    use UnitCommand as C;
    use UnitState as S;
    l.shred().await;
    l.accepted(sh, C::Hold, S::Holding).await;
    l.settles(sh, S::Held).await;
    l.accepted(sh, C::Restart, S::Restarting).await;
    l.settles(sh, S::Running).await;
    l.accepted(sh, C::Abort, S::Aborting).await;
    l.settles(sh, S::Aborted).await;
    l.refused(
        &olga(),
        sh,
        C::Start,
        "start is not allowed in state Aborted",
    )
    .await;
    l.accepted(sh, C::Reset, S::Resetting).await;
    l.settles(sh, S::Idle).await;
    l.shred().await;
    l.accepted(sh, C::Stop, S::Stopping).await;
    l.settles(sh, S::Stopped).await;
    l.accepted(sh, C::Reset, S::Resetting).await;
    l.settles(sh, S::Idle).await;
}

#[tokio::test]
async fn unknown_units_viewers_missing_reasons_and_unreadable_states_are_refused_and_audited() {
    let l = line().await;
    l.refused(
        &olga(),
        "Discharge/Station9",
        UnitCommand::Stop,
        "unit 'Discharge/Station9'",
    )
    .await;
    l.refused(
        &vera(),
        "Discharge/Station1",
        UnitCommand::Stop,
        "role viewer may not",
    )
    .await;
    let no_reason = l
        .control
        .command(
            &olga(),
            UnitRequest {
                unit: "Mechanical/Shredder".into(),
                command: UnitCommand::Abort,
                reason: " ".into(),
                batch: None,
            },
        )
        .await;
    check_refusal(no_reason, "needs a reason");
    let no_lot = l
        .control
        .command(
            &olga(),
            UnitRequest {
                unit: "Mechanical/Shredder".into(),
                command: UnitCommand::Start,
                reason: "go".into(),
                batch: None,
            },
        )
        .await;
    check_refusal(no_lot, "a start needs the batch's chemistry");
    l.sim
        .inject(
            Fault::new(FaultKind::Drop {
                line: LineId::Discharge,
            })
            .lasting(Duration::from_secs(30)),
        )
        .unwrap();
    l.until("the discharge link to drop", async || {
        l.read("Discharge/Station1/State").await.is_none()
    })
    .await;
    l.refused(
        &olga(),
        "Discharge/Station1",
        UnitCommand::Abort,
        "fail safe",
    )
    .await;
    l.audited("olga unit.command.refused Discharge/Station9")
        .await;
    l.audited("vera unit.command.refused Discharge/Station1: role viewer")
        .await;
    l.audited(
        "unit.command.refused Discharge/Station1: the state of Discharge/Station1 is unknown",
    )
    .await;
}

// Permissives -----------------------------------------------------------------

#[tokio::test]
async fn the_shredder_start_needs_nitrogen_and_its_restart_an_inert_chamber() {
    let l = line().await;
    let sh = "Mechanical/Shredder";
    l.charge_shredder(10_000.0).await;
    l.set("Mechanical/Shredder/N2Flow", TagValue::Float(100.0))
        .await;
    l.refused(
        &olga(),
        sh,
        UnitCommand::Start,
        "permissive shredder-start is false: nitrogen flow setpoint high enough to purge and sweep the chamber: Mechanical/Shredder/N2Flow is 100, needs >= 150",
    )
    .await;
    let view = l.control.permissives(sh).await.unwrap();
    let (_, start) = view.iter().find(|(c, _)| *c == UnitCommand::Start).unwrap();
    assert!(!start.checks[0].holds && start.checks[1].holds, "{start:?}");
    l.set("Mechanical/Shredder/N2Flow", TagValue::Float(200.0))
        .await;
    l.shred().await;

    l.accepted(sh, UnitCommand::Hold, UnitState::Holding).await;
    l.settles(sh, UnitState::Held).await;
    let spike = l
        .sim
        .inject(Fault::new(FaultKind::Spike {
            line: LineId::Mechanical,
            signal: "chamber_o2".into(),
            value: 4.0,
        }))
        .unwrap();
    l.until("O2 to read 4 %", async || {
        l.read("Mechanical/Shredder/O2").await == Some(4.0)
    })
    .await;
    l.refused(
        &olga(),
        sh,
        UnitCommand::Restart,
        "chamber O2 below the O2 alarm limit (still inert): Mechanical/Shredder/O2 is 4, needs < 2",
    )
    .await;
    assert!(l.sim.clear(spike));
    l.until("the restart to be permitted", async || {
        l.command(&olga(), sh, UnitCommand::Restart).await.is_ok()
    })
    .await;
    l.settles(sh, UnitState::Running).await;
    l.audited("unit.command.refused Mechanical/Shredder: start Mechanical/Shredder refused: permissive shredder-start is false")
        .await;
}

#[tokio::test]
async fn a_discharged_unit_is_released_only_after_resting_below_60_volts() {
    let l = line().await;
    let (module, pack) = ("Discharge/Station1", "Discharge/Station2");
    l.load_module(module).await;
    l.load_pack(pack).await;
    l.accepted(module, UnitCommand::Start, UnitState::Running)
        .await;
    l.accepted(pack, UnitCommand::Start, UnitState::Running)
        .await;
    l.settles(module, UnitState::Complete).await;
    l.refused(
        &olga(),
        module,
        UnitCommand::Reset,
        "no current through the rebound rest: has held",
    )
    .await;
    // A pack stopped half full stays far above 60 V: never released.
    l.accepted(pack, UnitCommand::Stop, UnitState::Stopping)
        .await;
    l.settles(pack, UnitState::Stopped).await;
    l.refused(
        &olga(),
        pack,
        UnitCommand::Reset,
        "pack voltage below 60 V DC through the rebound rest: Discharge/Station2/PackVoltage is",
    )
    .await;
    l.until("the module's rest", async || {
        l.command(&olga(), module, UnitCommand::Reset).await.is_ok()
    })
    .await;
    l.settles(module, UnitState::Idle).await;
    l.refused(&olga(), pack, UnitCommand::Reset, "needs < 60")
        .await;
}

#[tokio::test]
async fn the_leach_starts_only_with_the_reactor_within_5_degrees_of_its_setpoint() {
    let l = line_with(CONTROL, true).await;
    let leach = "Hydromet/Leach";
    let cold = l
        .sim
        .inject(Fault::new(FaultKind::Spike {
            line: LineId::Hydromet,
            signal: "Leach.Temperature".into(),
            value: 40.0,
        }))
        .unwrap();
    l.until("the reactor to read 40 degC", async || {
        l.read("Hydromet/Leach/Temperature").await == Some(40.0)
    })
    .await;
    l.refused(
        &olga(),
        leach,
        UnitCommand::Start,
        "reactor temperature within 5 degC of its setpoint: Hydromet/Leach/TemperatureError is",
    )
    .await;
    assert!(l.sim.clear(cold));
    l.set("Hydromet/Leach/ChargeMass", TagValue::Float(1000.0))
        .await;
    for (s, f) in [("ChargeNi", 0.2), ("ChargeCo", 0.05), ("ChargeLi", 0.04)] {
        l.set(&format!("Hydromet/Leach/{s}"), TagValue::Float(f))
            .await;
    }
    l.until("the leach start to be permitted", async || {
        l.command(&olga(), leach, UnitCommand::Start).await.is_ok()
    })
    .await;
    l.settles(leach, UnitState::Running).await;
}

// Alarms ----------------------------------------------------------------------

#[tokio::test]
async fn an_o2_leak_raises_the_critical_o2_alarm_and_trips_the_shredder() {
    let l = line().await;
    let mut stream = l.alarms.subscribe();
    l.shred().await;
    let h = l
        .alarms
        .history(&AlarmQuery {
            alarm: Some("MECH-O2-HI".into()),
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(l.status("MECH-O2-HI").await, AlarmStatus::Normal, "{h:#?}");
    l.sim
        .inject(Fault::new(FaultKind::O2Leak { leak_nm3h: 100.0 }))
        .unwrap();
    l.alarm_becomes("MECH-O2-HI", AlarmStatus::Unacknowledged)
        .await;
    let active = l.alarms.active().await;
    let o2 = active.iter().find(|a| a.id == "MECH-O2-HI").unwrap();
    assert_eq!(o2.priority, Priority::Critical);
    l.settles("Mechanical/Shredder", UnitState::Aborted).await;
    assert_eq!(l.read("Mechanical/Shredder/TripCause").await, Some(1.0));
    l.alarm_becomes("MECH-TRIP", AlarmStatus::Unacknowledged)
        .await;
    assert_eq!(
        l.status("MECH-O2-HI").await,
        AlarmStatus::Unacknowledged,
        "a tripped unit keeps its trip cause in view"
    );
    let mut seen = Vec::new();
    while let Ok((_, r)) = stream.try_recv() {
        seen.push(r.alarm);
    }
    assert!(seen.iter().any(|a| a == "MECH-O2-HI"), "{seen:?}");
}

#[tokio::test]
async fn acknowledge_and_shelve_need_a_role_a_reason_and_keep_to_the_maximum() {
    let l = line().await;
    let id = "DIS-S1-CELL-HI";
    let ids = [id.to_string()];
    l.sim
        .inject(Fault::new(FaultKind::Spike {
            line: LineId::Discharge,
            signal: "station1.max_cell_temperature".into(),
            value: 56.0,
        }))
        .unwrap();
    l.alarm_becomes(id, AlarmStatus::Unacknowledged).await;
    check_refusal(
        l.alarms.acknowledge(&vera(), &ids, "seen").await,
        "role viewer may not",
    );
    check_refusal(
        l.alarms.acknowledge(&olga(), &ids, "").await,
        "needs a reason",
    );
    check_refusal(
        l.alarms
            .acknowledge(&olga(), &["NO-SUCH".to_string()], "seen")
            .await,
        "alarm NO-SUCH not found",
    );
    let ack = l
        .alarms
        .acknowledge(&olga(), &ids, "fan checked")
        .await
        .unwrap();
    assert_eq!(ack.acknowledged[0].to, AlarmStatus::Acknowledged);
    check_refusal(
        l.alarms.acknowledge(&olga(), &ids, "again").await,
        "only an unacknowledged alarm can be acknowledged",
    );
    check_refusal(
        l.alarms
            .shelve(&olga(), id, Shelve::For(Span::minutes(481)), "sensor check")
            .await,
        "at most 480 min",
    );
    check_refusal(
        l.alarms
            .shelve(&vera(), id, Shelve::For(Span::minutes(10)), "sensor check")
            .await,
        "role viewer may not",
    );
    check_refusal(
        l.alarms
            .shelve(&olga(), id, Shelve::For(Span::minutes(-5)), "sensor check")
            .await,
        "must end in the future",
    );
    let t = l
        .alarms
        .shelve(&olga(), id, Shelve::For(Span::minutes(10)), "sensor check")
        .await
        .unwrap();
    assert!(matches!(t.to, AlarmStatus::Shelved { until: Some(_) }));
    assert!(l.alarms.active().await.iter().all(|a| a.id != id));
    l.alarms.unshelve(&olga(), id, "checked").await.unwrap();
    assert_eq!(l.status(id).await, AlarmStatus::Acknowledged);
    l.alarms
        .shelve(&olga(), id, Shelve::OneShot, "until it clears")
        .await
        .unwrap();
    check_refusal(
        l.alarms
            .set_out_of_service(&olga(), id, true, "calibration")
            .await,
        "role operator may not",
    );
    l.alarms
        .set_out_of_service(&sam(), id, true, "calibration")
        .await
        .unwrap();
    assert_eq!(l.status(id).await, AlarmStatus::OutOfService);

    for fragment in [
        "vera alarm.acknowledge.refused DIS-S1-CELL-HI",
        "olga alarm.acknowledge DIS-S1-CELL-HI: fan checked",
        "olga alarm.shelve.refused DIS-S1-CELL-HI: alarm DIS-S1-CELL-HI may be shelved for at most 480 min",
        "olga alarm.shelve DIS-S1-CELL-HI: sensor check",
        "olga alarm.unshelve DIS-S1-CELL-HI: checked",
        "olga alarm.out_of_service.refused DIS-S1-CELL-HI",
        "sam alarm.out_of_service DIS-S1-CELL-HI: calibration",
    ] {
        l.audited(fragment).await;
    }
    // The history has who and why; it filters and exports as CSV.
    let h = l
        .alarms
        .history(&AlarmQuery {
            alarm: Some(id.into()),
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    let by: Vec<String> = h
        .iter()
        .filter_map(|(_, r)| r.by.as_ref().map(|(u, w)| format!("{u}: {w}")))
        .collect();
    assert_eq!(
        by,
        [
            "olga: fan checked",
            "olga: sensor check",
            "olga: checked",
            "olga: until it clears",
            "sam: calibration"
        ]
    );
    let csv = history_csv(&h);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,time,alarm,area,priority,event,from,to,value,user,reason")
    );
    assert!(
        csv.contains(",DIS-S1-CELL-HI,Discharge,high,transition,unacknowledged,acknowledged,56,olga,fan checked"),
        "{csv}"
    );
    let critical = l
        .alarms
        .history(&AlarmQuery {
            min_priority: Some(Priority::Critical),
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    assert!(critical.iter().all(|(_, r)| r.alarm != id), "{critical:?}");
}

#[tokio::test]
async fn after_a_restart_alarms_resume_acknowledged_shelved_and_out_of_service() {
    let l = line().await;
    let hot = "DIS-S1-CELL-HI";
    l.sim
        .inject(Fault::new(FaultKind::Spike {
            line: LineId::Discharge,
            signal: "station1.max_cell_temperature".into(),
            value: 56.0,
        }))
        .unwrap();
    l.alarm_becomes(hot, AlarmStatus::Unacknowledged).await;
    l.alarms
        .acknowledge(&olga(), &[hot.to_string()], "fan checked")
        .await
        .unwrap();
    l.alarms
        .set_out_of_service(&sam(), "MECH-O2-HI", true, "analyser swap")
        .await
        .unwrap();
    l.alarms
        .shelve(
            &olga(),
            "DIS-S2-CELL-HI",
            Shelve::For(Span::minutes(30)),
            "probe loose",
        )
        .await
        .unwrap();

    // remine restarts: a new alarm system on the same history and plant.
    let seq_before = l.history_len().await;
    let restarted = Alarms::resume(l.config.clone(), l.db.clone(), l.store.clone(), &l.live)
        .await
        .unwrap();
    let status = async |id: &str| {
        restarted
            .list()
            .await
            .into_iter()
            .find(|a| a.id == id)
            .unwrap()
            .status
    };
    // Let it see a good many snapshots of the still-hot station.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status(hot).await,
        AlarmStatus::Acknowledged,
        "not annunciated again"
    );
    assert_eq!(status("MECH-O2-HI").await, AlarmStatus::OutOfService);
    assert!(matches!(
        status("DIS-S2-CELL-HI").await,
        AlarmStatus::Shelved { until: Some(_) }
    ));
    let again = l
        .alarms
        .history(&AlarmQuery {
            alarm: Some(hot.into()),
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .filter(|(seq, _)| *seq > seq_before)
            .all(|(_, r)| r.by.is_some()
                || r.happening
                    != AlarmHappening::Transition {
                        from: AlarmStatus::Normal,
                        to: AlarmStatus::Unacknowledged
                    }),
        "the restart raised {hot} again: {again:#?}"
    );

    // What cleared while remine was down returns to normal at the first look.
    l.sim.clear_all();
    l.until(&format!("{hot} to return to normal"), async || {
        status(hot).await == AlarmStatus::Normal
    })
    .await;
}

#[tokio::test]
async fn eleven_alarms_in_ten_minutes_flood_an_area_and_the_flood_is_reported() {
    let mut control = String::from(CONTROL);
    for i in 1..=11 {
        control.push_str(&format!(
            "\n[[alarm]]\nid = \"TEST-{i}\"\ntag = \"Discharge/Station1/Insulation\"\nkind = \"low\"\nlimit = 1e6\npriority = \"low\"\narea = \"Test\"\n"
        ));
    }
    let l = line_with(&control, false).await;
    l.until("the flood to be reported", async || {
        !l.alarms.flooding().await.is_empty()
    })
    .await;
    assert_eq!(l.alarms.flooding().await, [("Test".to_string(), 11)]);
    let h = l
        .alarms
        .history(&AlarmQuery {
            area: Some("Test".into()),
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    let floods: Vec<_> = h
        .iter()
        .filter(|(_, r)| matches!(r.happening, AlarmHappening::FloodStarted { .. }))
        .collect();
    assert_eq!(floods.len(), 1, "{h:?}");
    assert_eq!(
        floods[0].1.happening,
        AlarmHappening::FloodStarted { count: 11 }
    );
}

#[tokio::test]
async fn a_stopped_unit_suppresses_its_process_alarms_by_design_and_running_shows_them() {
    let l = line().await;
    l.alarm_becomes("MECH-O2-HI", AlarmStatus::SuppressedByDesign)
        .await;
    assert_eq!(
        l.status("COMMS-MECHANICAL-PLC").await,
        AlarmStatus::Normal,
        "comms loss is never suppressed by design"
    );
    l.shred().await;
    l.alarm_becomes("MECH-O2-HI", AlarmStatus::Normal).await;
    l.accepted(
        "Mechanical/Shredder",
        UnitCommand::Stop,
        UnitState::Stopping,
    )
    .await;
    l.alarm_becomes("MECH-O2-HI", AlarmStatus::SuppressedByDesign)
        .await;
    // Air leaks into the stopped chamber: the condition is there, unannounced.
    l.sim
        .inject(Fault::new(FaultKind::O2Leak { leak_nm3h: 100.0 }))
        .unwrap();
    l.until("the O2 condition", async || {
        l.alarms
            .list()
            .await
            .iter()
            .any(|a| a.id == "MECH-O2-HI" && a.condition_active)
    })
    .await;
    assert_eq!(
        l.status("MECH-O2-HI").await,
        AlarmStatus::SuppressedByDesign
    );
    assert!(l.alarms.active().await.iter().all(|a| a.id != "MECH-O2-HI"));
}

// The control file --------------------------------------------------------------

fn check_config(text: &str, fragment: &str) {
    let e = ControlConfig::from_toml_str(text, "plant/control.toml")
        .expect_err("must be refused")
        .to_string();
    assert!(e.contains(fragment), "'{e}' does not say '{fragment}'");
}

const UNIT: &str = "[[unit]]\npath = \"Mechanical/Shredder\"\narea = \"Mechanical\"\n";

#[test]
fn the_demo_control_file_fits_the_demo_tag_maps() {
    let c = ControlConfig::from_toml_str(CONTROL, "demo/control.toml").unwrap();
    assert_eq!(c.lint(&demo_catalogue()), Vec::<String>::new());
    assert_eq!(c.units.len(), 6);
    assert_eq!(c.permissives.len(), 7);
    assert!(
        c.alarms
            .iter()
            .any(|a| a.id == "MECH-O2-HI" && a.priority == Priority::Critical)
    );
}

#[test]
fn an_unknown_tag_is_named_with_the_item_and_field() {
    let text = format!(
        "{UNIT}[[alarm]]\nid = \"X\"\ntag = \"Mechanical/Shredder/Oxygen\"\nkind = \"high\"\nlimit = 2\npriority = \"high\"\narea = \"Mechanical\"\n"
    );
    let c = ControlConfig::from_toml_str(&text, "plant/control.toml").unwrap();
    assert_eq!(
        c.lint(&demo_catalogue()),
        [
            "plant/control.toml: alarm 'X': tag: tag Mechanical/Shredder/Oxygen is not in the plant's tag maps"
        ]
    );
}

#[test]
fn malformed_items_are_refused_naming_file_item_and_field() {
    check_config(
        "[[unit]]\npath = \"Shredder\"\narea = \"M\"\n",
        "plant/control.toml: unit 1 ('Shredder'): path: expected Line/Unit",
    );
    check_config(
        &format!(
            "{UNIT}[[permissive]]\nid = \"p\"\nunit = \"Mechanical/Shredder\"\ncommand = \"fly\"\n"
        ),
        "permissive 1 ('p'): command: 'fly' is not one of",
    );
    check_config(
        &format!(
            "{UNIT}[[permissive]]\nid = \"p\"\nunit = \"Mechanical/Shredder\"\ncommand = \"start\"\n[[permissive.check]]\ndescription = \"d\"\ntag = \"A/B/C\"\ncompare = \"=>\"\nvalue = 1\n"
        ),
        "permissive 1 ('p') check 1: compare:",
    );
    check_config(
        &format!(
            "{UNIT}[[permissive]]\nid = \"p\"\nunit = \"Mechanical/Shredder\"\ncommand = \"start\"\n[[permissive.check]]\ndescription = \"d\"\ntag = \"A/B/C\"\ncompare = \"<\"\nvalue = 1\nvalue_of = \"A/B/D\"\n"
        ),
        "value: give exactly one of value and value_of",
    );
    check_config(
        &format!(
            "{UNIT}[[permissive]]\nid = \"p\"\nunit = \"Mechanical/Shredder\"\ncommand = \"start\"\n"
        ),
        "has no checks",
    );
    check_config(
        &format!(
            "{UNIT}[[permissive]]\nid = \"p\"\nunit = \"Mechanical/Mill\"\ncommand = \"start\"\n[[permissive.check]]\ndescription = \"d\"\ntag = \"A/B/C\"\ncompare = \"<\"\nvalue = 1\n"
        ),
        "permissive 'p': unit: Mechanical/Mill is not a declared [[unit]]",
    );
    check_config(
        &format!(
            "{UNIT}[[alarm]]\nid = \"A\"\ntag = \"A/B/C\"\nkind = \"high\"\npriority = \"high\"\narea = \"M\"\n"
        ),
        "alarm 1 ('A'): limit: a high alarm needs limit",
    );
    check_config(
        &format!(
            "{UNIT}[[alarm]]\nid = \"A\"\ntag = \"A/B/C\"\nkind = \"high\"\nlimit = 1\npriority = \"urgent\"\narea = \"M\"\n"
        ),
        "alarm 1 ('A'): priority:",
    );
    check_config(
        &format!(
            "{UNIT}[[alarm]]\nid = \"A\"\ntag = \"A/B/C\"\nkind = \"high\"\nlimit = 1\npriority = \"low\"\narea = \"M\"\non_delay_s = -1\n"
        ),
        "on_delay_s: -1 must be 0 or more seconds",
    );
    check_config(
        &format!(
            "{UNIT}[[alarm]]\nid = \"A\"\ntag = \"A/B/C\"\nkind = \"high\"\nlimit = 1\npriority = \"low\"\narea = \"M\"\nmax_shelve_min = 0\n"
        ),
        "max_shelve_min: 0 must be a positive number of minutes",
    );
    check_config(
        "[[unit]]\npath = \"A/B\"\narea = \"M\"\ncolour = \"red\"\n",
        "unknown field `colour`",
    );
}
