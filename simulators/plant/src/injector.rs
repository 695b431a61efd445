//! Faults of a running plant: the registry of active faults and what each
//! does to the links, the Modbus servers, the sensors and the models.
//!
//! The effects are derived from the set of active faults whenever it
//! changes ([`Injector::apply`]): the link mode of a line is the worst of its
//! faults (dark, then hang, then slow), exceptions and sensor overrides are
//! the union of the line's, process faults add up. Two effects happen once,
//! at injection: a drop closes the open connections, and a power cycle
//! re-creates the line's model (after handing its material to the ledger,
//! so the ground truth still balances).

use crate::faults::{ActiveFault, Fault, FaultError, FaultKind, LineId};
use crate::lines::discharge::DischargeLine;
use crate::lines::hydromet::{HydroVar, HydrometLine};
use crate::lines::mechanical::MechanicalLine;
use crate::lines::{RegisterModel, lock};
use crate::maps::{Access, Placed, RegisterMap, SignalRef, SignalSet};
use crate::modbus::ModbusFaults;
use crate::model::hydromet::HydroUnit;
use crate::model::mechanical::MechanicalFaults;
use crate::nodes::NodeList;
use crate::plant::{
    apply_defaults, apply_node_defaults, exchange_discharge, exchange_hydromet, exchange_mechanical,
};
use crate::proxy::{Link, LinkMode};
use crate::truth::Ledger;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type MapOf<M> = RegisterMap<<M as RegisterModel>::Line, <M as RegisterModel>::Block>;
type FaultsOf<M> = ModbusFaults<<M as RegisterModel>::Line, <M as RegisterModel>::Block>;

/// A Modbus line as the injector reaches it.
#[derive(Debug)]
pub(crate) struct ModbusPart<M: RegisterModel> {
    pub(crate) map: Arc<MapOf<M>>,
    pub(crate) model: Arc<Mutex<M>>,
    pub(crate) faults: Arc<Mutex<FaultsOf<M>>>,
}

impl<M: RegisterModel> ModbusPart<M> {
    /// The placed signal a fault names: a line signal by its name, a block
    /// signal as `<block><n>.<name>` (e.g. `station2.current`).
    fn find(&self, name: &str) -> Result<&Placed<M::Line, M::Block>, FaultError> {
        let block = self.map.block().map(|b| b.name.as_str()).unwrap_or("");
        self.map
            .signals()
            .iter()
            .find(|p| signal_name(block, p.signal) == name)
            .ok_or_else(|| {
                FaultError::new(
                    "signal",
                    name,
                    format!(
                        "is not a signal of {} ({})",
                        self.map.line(),
                        self.map.file()
                    ),
                )
            })
    }

    fn measured(&self, name: &str) -> Result<SignalRef<M::Line, M::Block>, FaultError> {
        let p = self.find(name)?;
        if p.access != Access::R {
            return Err(FaultError::new(
                "signal",
                name,
                "is a setpoint or command, not a measured signal",
            ));
        }
        Ok(p.signal)
    }

    fn value(&self, signal: SignalRef<M::Line, M::Block>) -> f64 {
        lock(&self.model).read(signal)
    }

    /// Apply the line's exception and sensor faults.
    fn apply(&self, line: LineId, active: &BTreeMap<u64, Entry>) {
        let mut exceptions = Vec::new();
        let mut overrides = Vec::new();
        for e in active.values().filter(|e| e.kind.line() == line) {
            match &e.kind {
                FaultKind::Exception { code, signal, .. } => {
                    let span = signal
                        .as_deref()
                        .and_then(|s| self.find(s).ok())
                        .map(|p| (p.table, u32::from(p.address), p.last_address()));
                    if signal.is_none() || span.is_some() {
                        exceptions.push((span, *code));
                    }
                }
                FaultKind::Freeze { signal, .. } | FaultKind::Spike { signal, .. } => {
                    if let (Ok(s), Some(v)) = (self.measured(signal), e.value) {
                        overrides.push((s, v));
                    }
                }
                _ => {}
            }
        }
        let mut f = lock(&self.faults);
        f.exceptions = exceptions;
        f.overrides = overrides;
    }
}

fn signal_name<L: SignalSet, B: SignalSet>(block: &str, signal: SignalRef<L, B>) -> String {
    match signal {
        SignalRef::Line(s) => s.name().to_string(),
        SignalRef::Block(i, s) => format!("{block}{i}.{}", s.name()),
    }
}

/// Everything of the plant the faults act on.
#[derive(Debug)]
pub(crate) struct PlantParts {
    pub(crate) links: BTreeMap<LineId, Link>,
    pub(crate) discharge: ModbusPart<DischargeLine>,
    pub(crate) mechanical: ModbusPart<MechanicalLine>,
    pub(crate) hydromet: Arc<Mutex<HydrometLine>>,
    pub(crate) nodes: Arc<NodeList>,
    pub(crate) hydromet_overrides: Arc<Mutex<Vec<(HydroUnit, HydroVar, f64)>>>,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    pub(crate) stations: u16,
    pub(crate) seed: u64,
}

/// An active fault.
#[derive(Debug)]
struct Entry {
    kind: FaultKind,
    ends: Option<Instant>,
    /// The value a frozen or spiking sensor reads.
    value: Option<f64>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    active: BTreeMap<u64, Entry>,
}

/// The faults of one running plant.
#[derive(Debug)]
pub(crate) struct Injector {
    parts: PlantParts,
    registry: Mutex<Registry>,
}

impl Injector {
    pub(crate) fn new(parts: PlantParts) -> Injector {
        Injector {
            parts,
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Inject a fault; it clears itself after its duration (a power cycle
    /// after its off time). Returns its id.
    pub(crate) fn inject(self: &Arc<Self>, fault: Fault) -> Result<u64, FaultError> {
        let value = self.check(&fault.kind)?;
        let line = fault.kind.line();
        let duration = match fault.kind {
            FaultKind::PowerCycle { off_s, .. } => Some(Duration::from_secs_f64(off_s)),
            _ => fault.duration,
        };
        let link = self.parts.links.get(&line);
        match &fault.kind {
            FaultKind::Drop { .. } => {
                if let Some(link) = link {
                    link.drop_connections();
                }
            }
            FaultKind::PowerCycle { .. } => {
                if let Some(link) = link {
                    link.drop_connections();
                }
                self.power_cycle(line);
            }
            _ => {}
        }
        tracing::info!(
            fault = fault.kind.name(),
            line = line.name(),
            ?duration,
            "fault injected"
        );
        let id = {
            let mut reg = lock(&self.registry);
            reg.next_id += 1;
            let id = reg.next_id;
            // A drop without a duration is over once the connections are closed.
            let lasting = !matches!(fault.kind, FaultKind::Drop { .. }) || duration.is_some();
            if lasting {
                reg.active.insert(
                    id,
                    Entry {
                        kind: fault.kind,
                        ends: duration.map(|d| Instant::now() + d),
                        value,
                    },
                );
            }
            self.apply(&reg.active);
            id
        };
        if let Some(d) = duration {
            let me = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if let Some(me) = me.upgrade() {
                    me.clear(id);
                }
            });
        }
        Ok(id)
    }

    /// Clear one fault; false if it is not active.
    pub(crate) fn clear(&self, id: u64) -> bool {
        let mut reg = lock(&self.registry);
        let Some(entry) = reg.active.remove(&id) else {
            return false;
        };
        tracing::info!(
            id,
            fault = entry.kind.name(),
            line = entry.kind.line().name(),
            "fault cleared"
        );
        self.apply(&reg.active);
        true
    }

    /// Clear every fault; returns how many were active.
    pub(crate) fn clear_all(&self) -> usize {
        let mut reg = lock(&self.registry);
        let n = reg.active.len();
        reg.active.clear();
        self.apply(&reg.active);
        if n > 0 {
            tracing::info!(count = n, "all faults cleared");
        }
        n
    }

    /// The active faults, oldest first.
    pub(crate) fn list(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        lock(&self.registry)
            .active
            .iter()
            .map(|(id, e)| ActiveFault {
                id: *id,
                kind: e.kind.clone(),
                remaining_s: e
                    .ends
                    .map(|t| t.saturating_duration_since(now).as_secs_f64()),
            })
            .collect()
    }

    /// Check the fault against the plant (signals, stations); for a
    /// freeze or a spike, the value the sensor will read.
    fn check(&self, kind: &FaultKind) -> Result<Option<f64>, FaultError> {
        let p = &self.parts;
        Ok(match kind {
            FaultKind::Exception {
                line,
                signal: Some(signal),
                ..
            } => {
                match line {
                    LineId::Discharge => p.discharge.find(signal).map(|_| ())?,
                    _ => p.mechanical.find(signal).map(|_| ())?,
                }
                None
            }
            FaultKind::Freeze { line, signal } => Some(match line {
                LineId::Discharge => p.discharge.value(p.discharge.measured(signal)?),
                LineId::Mechanical => p.mechanical.value(p.mechanical.measured(signal)?),
                LineId::Hydromet => {
                    let (unit, var) = self.hydromet_signal(signal)?;
                    lock(&p.hydromet).read(unit, var).unwrap_or(0.0)
                }
            }),
            FaultKind::Spike {
                line,
                signal,
                value,
            } => {
                match line {
                    LineId::Discharge => p.discharge.measured(signal).map(|_| ())?,
                    LineId::Mechanical => p.mechanical.measured(signal).map(|_| ())?,
                    LineId::Hydromet => self.hydromet_signal(signal).map(|_| ())?,
                }
                Some(*value)
            }
            FaultKind::ThermalEvent { station, .. } => {
                if !(1..=p.stations).contains(station) {
                    return Err(FaultError::new(
                        "station",
                        station,
                        format!("the discharge line has stations 1 to {}", p.stations),
                    ));
                }
                None
            }
            _ => None,
        })
    }

    /// A measured hydromet variable named `Unit.Variable`.
    fn hydromet_signal(&self, name: &str) -> Result<(HydroUnit, HydroVar), FaultError> {
        let unknown = || {
            FaultError::new(
                "signal",
                name,
                "is not a measured hydromet variable (Unit.Variable as in maps/hydromet.toml, e.g. Leach.Temperature)",
            )
        };
        let (unit, var) = name.split_once('.').ok_or_else(unknown)?;
        let u = self
            .parts
            .nodes
            .units
            .iter()
            .find(|u| u.unit.name() == unit)
            .ok_or_else(unknown)?;
        let spec = u
            .variables
            .iter()
            .find(|v| v.var.name() == var)
            .ok_or_else(unknown)?;
        if spec.access != Access::R || spec.var.is_code() {
            return Err(FaultError::new(
                "signal",
                name,
                "is a setpoint, command or state, not a measured variable",
            ));
        }
        Ok((u.unit, spec.var))
    }

    /// Derive every effect from the active faults.
    fn apply(&self, active: &BTreeMap<u64, Entry>) {
        let p = &self.parts;
        for (line, link) in &p.links {
            let mut mode = LinkMode::Pass;
            for e in active.values().filter(|e| e.kind.line() == *line) {
                let m = match e.kind {
                    FaultKind::PowerCycle { .. } | FaultKind::Drop { .. } => LinkMode::Dark,
                    FaultKind::Hang { .. } => LinkMode::Hang,
                    FaultKind::Slow { delay_ms, .. } => {
                        LinkMode::Slow(Duration::from_millis(delay_ms))
                    }
                    _ => continue,
                };
                mode = worse(mode, m);
            }
            link.set_mode(mode);
        }
        p.discharge.apply(LineId::Discharge, active);
        p.mechanical.apply(LineId::Mechanical, active);
        let overrides = active
            .values()
            .filter_map(|e| match &e.kind {
                FaultKind::Freeze {
                    line: LineId::Hydromet,
                    signal,
                }
                | FaultKind::Spike {
                    line: LineId::Hydromet,
                    signal,
                    ..
                } => {
                    let (u, v) = self.hydromet_signal(signal).ok()?;
                    Some((u, v, e.value?))
                }
                _ => None,
            })
            .collect();
        *lock(&p.hydromet_overrides) = overrides;

        let mut heat_w = vec![0.0; usize::from(p.stations)];
        let mut mech = MechanicalFaults::default();
        for e in active.values() {
            match e.kind {
                FaultKind::ThermalEvent { station, heat_kw } => {
                    if let Some(h) = heat_w.get_mut(usize::from(station).saturating_sub(1)) {
                        *h += heat_kw * 1000.0;
                    }
                }
                FaultKind::O2Leak { leak_nm3h } => mech.air_leak_nm3h += leak_nm3h,
                FaultKind::BlockedFilter { rate_mbar_per_min } => {
                    mech.filter_fouling_mbar_per_min += rate_mbar_per_min;
                }
                _ => {}
            }
        }
        {
            let mut line = lock(&p.discharge.model);
            for (i, h) in (1u16..).zip(heat_w) {
                if let Some(st) = line.station_mut(i) {
                    st.set_internal_heat(h);
                }
            }
        }
        let mut line = lock(&p.mechanical.model);
        if line.line().faults() != mech {
            line.line_mut().set_faults(mech);
        }
    }

    /// Re-create a line's model as a reboot leaves it, after handing the
    /// material under way to the ledger.
    fn power_cycle(&self, line: LineId) {
        let p = &self.parts;
        let mut truth = lock(&p.ledger);
        match line {
            LineId::Discharge => {
                let mut model = lock(&p.discharge.model);
                exchange_discharge(&mut model, &mut truth);
                let mut fresh = DischargeLine::new(p.stations, p.seed);
                reset(apply_defaults(&p.discharge.map, &mut fresh), line);
                *model = fresh;
            }
            LineId::Mechanical => {
                let mut model = lock(&p.mechanical.model);
                exchange_mechanical(&mut model, &mut truth);
                model.line_mut().power_lost();
                exchange_mechanical(&mut model, &mut truth);
                let mut fresh = MechanicalLine::new(p.seed);
                reset(apply_defaults(&p.mechanical.map, &mut fresh), line);
                *model = fresh;
            }
            LineId::Hydromet => {
                let mut model = lock(&p.hydromet);
                exchange_hydromet(&mut model, &mut truth);
                model.train_mut().power_lost();
                exchange_hydromet(&mut model, &mut truth);
                let mut fresh = HydrometLine::new(p.seed);
                reset(apply_node_defaults(&p.nodes, &mut fresh), line);
                *model = fresh;
            }
        }
    }
}

fn reset(defaults: Result<(), crate::SimError>, line: LineId) {
    if let Err(err) = defaults {
        tracing::error!(%err, line = line.name(), "the defaults were refused after a power cycle");
    }
}

fn worse(a: LinkMode, b: LinkMode) -> LinkMode {
    let rank = |m: LinkMode| match m {
        LinkMode::Pass => 0,
        LinkMode::Slow(_) => 1,
        LinkMode::Hang => 2,
        LinkMode::Dark => 3,
    };
    match (a, b) {
        (LinkMode::Slow(x), LinkMode::Slow(y)) => LinkMode::Slow(x.max(y)),
        _ if rank(b) > rank(a) => b,
        _ => a,
    }
}
