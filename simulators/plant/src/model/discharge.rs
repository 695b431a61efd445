//! The discharge station: a pack discharged at constant current down to an
//! end voltage per cell, held there (constant voltage) for a hold time, then
//! released, after which its voltage rebounds.
//!
//! Electrical model (domain brief 3.1), per equivalent cell of the pack's
//! capacity `Q` (Ah), `Ns` cells in series:
//! `V = OCV(SOC) - I R0 - V1 - V2`, `dSOC/dt = -I / (3600 Q)`,
//! `dVk/dt = -Vk / tau_k + I Rk / tau_k` for the fast pair (`R1`, `tau1`) and
//! the slow pair (`R2`, `tau2`) that gives the rebound after release.
//! `R0 = 0.1 Ohm Ah / Q` (1 mOhm for a 100 Ah cell, 20 mOhm for a 5 Ah
//! 21700), `R1 = 0.5 R0`, `tau1 = 60 s`, `R2 = 12 R0`, `tau2 = 1 h`.
//! Below SOC 0 the cell is over-discharged and its OCV falls linearly to 0 V
//! at SOC -3 %, so an end voltage of 1 V per cell is reachable.
//!
//! Thermal model: `m cp dT/dt = Ns (I^2 R0 + I V1 + I V2) - hA (T - Ta)` with
//! the unit's mass, `cp` 1.0 kJ/kg K, forced-air cooling `hA` 0.5 W/K per kg
//! and `Ta` 25 C. The hottest cell runs 0.4 K per kW of heat above the bulk.
//! Within 5 K of the maximum cell temperature the current is derated (to
//! half at the maximum); above it the station holds by itself. At 60 C
//! (the trip of the domain brief) the station aborts and stays safe.
//!
//! A thermal event (a fault, [`Station::set_internal_heat`]) is a heat
//! source inside the pack, as a failing cell is: the bulk and the hottest
//! cell climb whether or not current flows, through the 50 C alarm to the
//! trip.

use super::unit::{UnitControl, UnknownCommand};
use crate::noise::{Drift, Noise, first_order};
use remine_domain::{Chemistry, UnitCommand, UnitState};

/// OCV (V per cell) against SOC of NMC cells (domain brief 3.1); NCA and LMO use it too.
pub const OCV_NMC: [(f64, f64); 10] = [
    (0.0, 2.51),
    (0.015, 2.90),
    (0.045, 3.15),
    (0.096, 3.32),
    (0.151, 3.42),
    (0.292, 3.57),
    (0.457, 3.70),
    (0.834, 4.06),
    (0.950, 4.10),
    (1.0, 4.19),
];

/// OCV (V per cell) against SOC of LFP cells (domain brief 3.1).
pub const OCV_LFP: [(f64, f64); 10] = [
    (0.0, 2.01),
    (0.003, 2.42),
    (0.012, 2.74),
    (0.027, 2.93),
    (0.053, 3.09),
    (0.089, 3.19),
    (0.297, 3.28),
    (0.983, 3.35),
    (0.995, 3.42),
    (1.0, 3.60),
];

/// The SOC (below 0: over-discharged) at which the OCV reaches 0 V.
pub const SOC_AT_ZERO_VOLT: f64 = -0.03;

const R0_OHM_AH: f64 = 0.1;
const R1_OVER_R0: f64 = 0.5;
const TAU1_S: f64 = 60.0;
const R2_OVER_R0: f64 = 12.0;
const TAU2_S: f64 = 3600.0;
const CP_J_PER_KG_K: f64 = 1000.0;
const HA_W_PER_K_KG: f64 = 0.5;
const AMBIENT_C: f64 = 25.0;
const HOTSPOT_K_PER_W: f64 = 0.0004;
const DERATE_BAND_K: f64 = 5.0;
/// Cell temperature alarm of the domain brief (3.1).
const CELL_TEMP_ALARM_C: f64 = 50.0;
/// Cell temperature trip of the domain brief (3.1): the station aborts.
pub const CELL_TEMP_TRIP_C: f64 = 60.0;
/// Insulation below this is a fault.
const INSULATION_FAULT_MOHM: f64 = 1.0;
/// What the insulation monitor reads with no unit connected (open circuit).
pub const INSULATION_OPEN_MOHM: f64 = 2000.0;

/// Alarm bit: the hottest cell is above the maximum cell temperature setpoint
/// (a running station holds by itself).
pub const ALARM_OVER_TEMPERATURE: u16 = 1;
/// Alarm bit: a cell is at or above the 50 C alarm level.
pub const ALARM_CELL_TEMPERATURE: u16 = 2;
/// Alarm bit: insulation resistance below 1 MOhm.
pub const ALARM_INSULATION: u16 = 4;
/// Alarm bit: the station tripped (Aborted) on a cell at or above 60 C.
pub const ALARM_THERMAL_TRIP: u16 = 8;

/// The open-circuit voltage of one cell of `chemistry` at `soc` (0..1;
/// below 0 is over-discharge), by linear interpolation of the brief's table.
pub fn ocv_per_cell(chemistry: Chemistry, soc: f64) -> f64 {
    let table: &[(f64, f64)] = match chemistry {
        Chemistry::Lfp => &OCV_LFP,
        _ => &OCV_NMC,
    };
    interpolate(table, soc)
}

fn interpolate(table: &[(f64, f64)], soc: f64) -> f64 {
    let Some(&(s0, v0)) = table.first() else {
        return 0.0;
    };
    if soc <= s0 {
        // Over-discharge: linear from the table's first point to 0 V.
        let span = s0 - SOC_AT_ZERO_VOLT;
        return (v0 * (soc - SOC_AT_ZERO_VOLT) / span).max(0.0);
    }
    for pair in table.windows(2) {
        let ((sa, va), (sb, vb)) = (pair[0], pair[1]);
        if soc <= sb {
            return va + (vb - va) * (soc - sa) / (sb - sa);
        }
    }
    table.last().map(|p| p.1).unwrap_or(0.0)
}

/// The chemistry code of the load block: 1 NMC111, 2 NMC532, 3 NMC622,
/// 4 NMC811, 5 NCA, 6 LFP, 7 LMO.
pub fn chemistry_from_code(code: u16) -> Option<Chemistry> {
    match code {
        1 => Some(Chemistry::Nmc111),
        2 => Some(Chemistry::Nmc532),
        3 => Some(Chemistry::Nmc622),
        4 => Some(Chemistry::Nmc811),
        5 => Some(Chemistry::Nca),
        6 => Some(Chemistry::Lfp),
        7 => Some(Chemistry::Lmo),
        _ => None,
    }
}

/// What the MES writes about the unit on the station before Start.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadedUnit {
    pub chemistry_code: u16,
    pub cells_in_series: u16,
    pub capacity_ah: f64,
    pub unit_mass_kg: f64,
}

impl LoadedUnit {
    /// The chemistry, when the block describes a unit the station can discharge.
    pub fn chemistry(&self) -> Option<Chemistry> {
        let ok = self.cells_in_series > 0 && self.capacity_ah > 0.0 && self.unit_mass_kg > 0.0;
        chemistry_from_code(self.chemistry_code).filter(|_| ok)
    }
}

/// The station's setpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DischargeSetpoints {
    pub end_voltage_per_cell: f64,
    pub max_current_a: f64,
    pub max_cell_temp_c: f64,
    pub hold_time_min: f64,
}

impl Default for DischargeSetpoints {
    fn default() -> Self {
        DischargeSetpoints {
            end_voltage_per_cell: 1.0,
            max_current_a: 300.0,
            max_cell_temp_c: 55.0,
            hold_time_min: 5.0,
        }
    }
}

/// What the station's instruments read at the end of the last step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StationReadings {
    pub pack_voltage_v: f64,
    pub cell_voltage_v: f64,
    pub current_a: f64,
    pub soc_pct: f64,
    pub energy_kwh: f64,
    pub max_cell_temp_c: f64,
    pub insulation_mohm: f64,
    pub alarms: u16,
}

/// The station refuses a change of the loaded unit unless it is Idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotIdle(pub UnitState);

/// How a pack arrives: its state of charge, temperature and insulation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Arrival {
    soc: f64,
    temp_c: f64,
    insulation_mohm: f64,
}

/// One discharge station and the pack on it.
#[derive(Debug, Clone)]
pub struct Station {
    control: UnitControl,
    unit: LoadedUnit,
    setpoints: DischargeSetpoints,
    arrival: Arrival,
    /// The stream of the arriving packs' draws, apart from the readings'
    /// noise so that the same seed brings the same packs.
    arrivals: Noise,
    soc: f64,
    v1: f64,
    v2: f64,
    temp_c: f64,
    current_a: f64,
    energy_kwh: f64,
    hold_elapsed_s: f64,
    /// A batch began on a unit the plant has not yet been told of.
    started: Option<(Chemistry, f64)>,
    /// The unit left the station and the plant has not yet been told.
    released: bool,
    /// Heat of a thermal event inside the pack (a fault), W.
    internal_heat_w: f64,
    /// The station tripped on cell temperature; cleared by Reset.
    thermal_trip: bool,
    readings: StationReadings,
    noise: Noise,
    temp_drift: Drift,
    insulation_drift: Drift,
}

impl Station {
    /// An Idle station with nothing loaded; the next pack's arrival state
    /// is drawn from `noise`.
    pub fn new(mut noise: Noise) -> Station {
        let mut arrivals = noise.fork();
        let arrival = draw_arrival(&mut arrivals);
        let mut s = Station {
            control: UnitControl::new(),
            unit: LoadedUnit::default(),
            setpoints: DischargeSetpoints::default(),
            arrival,
            arrivals,
            soc: arrival.soc,
            v1: 0.0,
            v2: 0.0,
            temp_c: arrival.temp_c,
            current_a: 0.0,
            energy_kwh: 0.0,
            hold_elapsed_s: 0.0,
            started: None,
            released: false,
            internal_heat_w: 0.0,
            thermal_trip: false,
            readings: StationReadings::default(),
            noise,
            temp_drift: Drift::new(0.15, 600.0),
            insulation_drift: Drift::new(0.02, 900.0),
        };
        s.read_instruments(0.0);
        s
    }

    pub fn control(&self) -> &UnitControl {
        &self.control
    }

    pub fn state(&self) -> UnitState {
        self.control.state()
    }

    pub fn unit(&self) -> &LoadedUnit {
        &self.unit
    }

    /// Describe the unit on the station; only while Idle.
    pub fn set_unit(&mut self, unit: LoadedUnit) -> Result<(), NotIdle> {
        if self.state() != UnitState::Idle {
            return Err(NotIdle(self.state()));
        }
        self.unit = unit;
        self.read_instruments(0.0);
        Ok(())
    }

    pub fn setpoints(&self) -> &DischargeSetpoints {
        &self.setpoints
    }

    pub fn set_setpoints(&mut self, setpoints: DischargeSetpoints) {
        self.setpoints = setpoints;
    }

    /// A heat source inside the loaded pack (a thermal event), in W; 0
    /// ends it. It heats only a loaded unit.
    pub fn set_internal_heat(&mut self, watts: f64) {
        self.internal_heat_w = watts.max(0.0);
    }

    /// The true state of charge (negative when over-discharged).
    pub fn soc(&self) -> f64 {
        self.soc
    }

    pub fn readings(&self) -> &StationReadings {
        &self.readings
    }

    /// A command code written to the station. Start needs a described unit.
    pub fn command(&mut self, code: u16) -> Result<(), UnknownCommand> {
        let cmd = UnitControl::parse(code)?;
        self.control.record(code);
        let Some(cmd) = cmd else {
            return Ok(());
        };
        if cmd == UnitCommand::Start && self.unit.chemistry().is_none() {
            self.control.refuse(cmd);
            return Ok(());
        }
        let was_idle = self.state() == UnitState::Idle;
        if self.control.apply(cmd) == Some(UnitState::Running) && cmd == UnitCommand::Start {
            self.energy_kwh = 0.0;
            self.hold_elapsed_s = 0.0;
            if was_idle {
                self.started = self.unit.chemistry().map(|c| (c, self.unit.unit_mass_kg));
            }
        }
        Ok(())
    }

    /// Advance `dt` simulated seconds (at most about a second per call:
    /// the caller sub-steps).
    pub fn step(&mut self, dt: f64) {
        if self.control.step(dt) == Some(UnitState::Idle) {
            self.unload();
        }
        if self.state() == UnitState::Resetting {
            self.thermal_trip = false;
        }
        self.temp_drift.step(dt, &mut self.noise);
        self.insulation_drift.step(dt, &mut self.noise);
        let Some(chemistry) = self.unit.chemistry() else {
            self.current_a = 0.0;
            self.temp_c = first_order(self.temp_c, AMBIENT_C, 3600.0, dt);
            self.read_instruments(0.0);
            return;
        };
        let ns = f64::from(self.unit.cells_in_series);
        let q = self.unit.capacity_ah;
        let r0 = R0_OHM_AH / q;
        let (r1, r2) = (R1_OVER_R0 * r0, R2_OVER_R0 * r0);
        let ocv = ocv_per_cell(chemistry, self.soc);
        let hotspot = self.readings.max_cell_temp_c - self.temp_c;
        let mut current = 0.0;
        if self.state() == UnitState::Running {
            let sp = self.setpoints;
            let headroom = sp.max_cell_temp_c - (self.temp_c + hotspot.max(0.0));
            let derate = (0.5 + 0.5 * headroom / DERATE_BAND_K).clamp(0.5, 1.0);
            let i_cc = sp.max_current_a * derate;
            let i_cv = ((ocv - self.v1 - self.v2 - sp.end_voltage_per_cell) / r0).max(0.0);
            current = i_cc.min(i_cv);
            if i_cv <= i_cc {
                self.hold_elapsed_s += dt;
            }
            if self.hold_elapsed_s >= sp.hold_time_min * 60.0 {
                self.control.complete();
                current = 0.0;
            }
        }
        self.current_a = current;
        self.soc -= current * dt / (3600.0 * q);
        self.v1 = first_order(self.v1, current * r1, TAU1_S, dt);
        self.v2 = first_order(self.v2, current * r2, TAU2_S, dt);
        let heat_w = ns * (current * current * r0 + current * self.v1 + current * self.v2)
            + self.internal_heat_w;
        let mass = self.unit.unit_mass_kg;
        let ha = HA_W_PER_K_KG * mass;
        let tau = mass * CP_J_PER_KG_K / ha;
        self.temp_c = first_order(self.temp_c, AMBIENT_C + heat_w / ha, tau, dt);
        let cell_v = ocv_per_cell(chemistry, self.soc) - current * r0 - self.v1 - self.v2;
        self.energy_kwh += ns * cell_v.max(0.0) * current * dt / 3.6e6;
        self.read_instruments(heat_w);
        if self.state() == UnitState::Running
            && self.readings.max_cell_temp_c > self.setpoints.max_cell_temp_c
        {
            self.control.force(UnitCommand::Hold);
        }
        if self.readings.max_cell_temp_c >= CELL_TEMP_TRIP_C
            && !self.thermal_trip
            && self.control.force(UnitCommand::Abort)
        {
            self.thermal_trip = true;
            self.readings.alarms |= ALARM_THERMAL_TRIP;
        }
    }

    /// The chemistry and declared mass of a unit whose discharge just began
    /// (the unit is physically on the station from then on); taken once.
    pub fn take_started(&mut self) -> Option<(Chemistry, f64)> {
        self.started.take()
    }

    /// Whether a unit left the station since the last call.
    pub fn take_released(&mut self) -> bool {
        std::mem::take(&mut self.released)
    }

    /// Reset took the unit off the station: the next pack arrives.
    fn unload(&mut self) {
        self.released = self.unit.chemistry().is_some();
        self.unit = LoadedUnit::default();
        self.arrival = draw_arrival(&mut self.arrivals);
        self.soc = self.arrival.soc;
        self.v1 = 0.0;
        self.v2 = 0.0;
        self.temp_c = self.arrival.temp_c;
        self.current_a = 0.0;
        self.energy_kwh = 0.0;
        self.hold_elapsed_s = 0.0;
    }

    fn read_instruments(&mut self, heat_w: f64) {
        let n = &mut self.noise;
        let mut r = StationReadings {
            energy_kwh: self.energy_kwh,
            ..StationReadings::default()
        };
        let bulk = self.temp_c + self.temp_drift.value();
        r.max_cell_temp_c = bulk + HOTSPOT_K_PER_W * heat_w + n.gauss(0.03);
        match self.unit.chemistry() {
            Some(chemistry) => {
                let ns = f64::from(self.unit.cells_in_series);
                let r0 = R0_OHM_AH / self.unit.capacity_ah;
                let cell =
                    ocv_per_cell(chemistry, self.soc) - self.current_a * r0 - self.v1 - self.v2;
                let cell = cell.max(0.0);
                r.cell_voltage_v = cell + n.gauss(0.0005);
                r.pack_voltage_v = (ns * cell + n.gauss(0.02 + 0.0002 * ns * cell)).max(0.0);
                r.current_a = if self.current_a > 0.0 {
                    self.current_a + n.gauss(0.05 + 0.001 * self.current_a)
                } else {
                    n.gauss(0.02)
                };
                r.soc_pct = (self.soc * 100.0).clamp(0.0, 100.0);
                let iso = self.arrival.insulation_mohm * (-0.03 * (bulk - AMBIENT_C)).exp();
                r.insulation_mohm = (iso * (1.0 + self.insulation_drift.value())).max(0.0);
            }
            None => {
                r.pack_voltage_v = n.gauss(0.01).abs();
                r.current_a = n.gauss(0.02);
                r.insulation_mohm = INSULATION_OPEN_MOHM;
            }
        }
        if r.max_cell_temp_c > self.setpoints.max_cell_temp_c {
            r.alarms |= ALARM_OVER_TEMPERATURE;
        }
        if r.max_cell_temp_c >= CELL_TEMP_ALARM_C {
            r.alarms |= ALARM_CELL_TEMPERATURE;
        }
        if r.insulation_mohm < INSULATION_FAULT_MOHM {
            r.alarms |= ALARM_INSULATION;
        }
        if self.thermal_trip {
            r.alarms |= ALARM_THERMAL_TRIP;
        }
        self.readings = r;
    }
}

fn draw_arrival(noise: &mut Noise) -> Arrival {
    Arrival {
        soc: noise.uniform(0.10, 0.40),
        temp_c: AMBIENT_C + noise.gauss(2.0).clamp(-5.0, 5.0),
        insulation_mohm: noise.uniform(200.0, 800.0),
    }
}
