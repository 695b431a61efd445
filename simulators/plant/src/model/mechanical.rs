//! The mechanical line: a charge of packs shredded under nitrogen, dried and
//! separated into black mass, copper and aluminium foil, steel and plastics.
//!
//! Inerting (domain brief 3.2): the shredder chamber (volume `V` = 12 m3) is
//! an inert vessel, `V dC/dt = Q_N2 (C_in - C) + Q_leak (20.9 - C)` with pure
//! nitrogen (`C_in` = 0). The chamber leaks 2 Nm3/h of air; while material
//! is fed the airlock opens for 5 s every 60 s, a step to 40 Nm3/h. On Start
//! the chamber is purged from air; the PLC interlock feeds material only
//! while O2 is below the alarm limit, and once the purge has reached it the
//! line trips (Aborted) if O2 rises above the trip limit. It also trips at
//! 25 % of the H2 lower explosive limit and at a chamber temperature of 80 C.
//!
//! Shredding releases hydrogen (0.04 Nm3 per tonne fed), diluted by the
//! chamber's gas flow. Yields follow the chemistry (domain brief section 2,
//! "rest of a pack"); outputs plus losses always sum to the mass processed.

use super::unit::{UnitControl, UnknownCommand};
use crate::noise::{Drift, Noise, first_order};
use remine_domain::{Chemistry, Element, Kilograms, UnitCommand, UnitState, UnitType};

/// O2 in air, vol %.
pub const AIR_O2_PCT: f64 = 20.9;
/// The shredder chamber's free volume.
pub const CHAMBER_VOLUME_M3: f64 = 12.0;
const LEAK_NM3H: f64 = 2.0;
const AIRLOCK_OPEN_NM3H: f64 = 40.0;
const AIRLOCK_PERIOD_S: f64 = 60.0;
const AIRLOCK_OPEN_S: f64 = 5.0;
/// Air changes of an idle, open chamber (its doors open for loading).
const IDLE_VENTILATION_NM3H: f64 = 72.0;
const H2_NM3_PER_T: f64 = 0.04;
const H2_LEL_PCT: f64 = 4.0;
const LEL_ALARM_PCT: f64 = 10.0;
const LEL_TRIP_PCT: f64 = 25.0;
const CHAMBER_TEMP_ALARM_C: f64 = 60.0;
const CHAMBER_TEMP_TRIP_C: f64 = 80.0;
const AMBIENT_C: f64 = 25.0;
const ATMOSPHERE_MBAR: f64 = 1013.0;
const DRYER_VACUUM_MBAR: f64 = 70.0;

/// Alarm bit: O2 above the alarm limit after the purge.
pub const ALARM_O2: u16 = 1;
/// Alarm bit: H2 at or above 10 % of the LEL.
pub const ALARM_LEL: u16 = 2;
/// Alarm bit: chamber temperature at or above 60 C.
pub const ALARM_CHAMBER_TEMPERATURE: u16 = 4;
/// Alarm bit: the line tripped (see the trip cause).
pub const ALARM_TRIPPED: u16 = 8;

/// Why the line tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripCause {
    Oxygen,
    Lel,
    ChamberTemperature,
}

impl TripCause {
    /// The code of the trip-cause register (0 = no trip).
    pub fn code(self) -> u16 {
        match self {
            TripCause::Oxygen => 1,
            TripCause::Lel => 2,
            TripCause::ChamberTemperature => 3,
        }
    }
}

/// The inert vessel: O2 in a chamber swept by nitrogen and leaking air.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InertVessel {
    pub volume_m3: f64,
    pub o2_pct: f64,
}

impl InertVessel {
    /// A vessel full of air.
    pub fn in_air(volume_m3: f64) -> InertVessel {
        InertVessel {
            volume_m3,
            o2_pct: AIR_O2_PCT,
        }
    }

    /// Advance `dt` seconds with `n2_nm3h` of nitrogen (O2 content `c_in`)
    /// and `leak_nm3h` of air coming in; exact for constant flows.
    pub fn step(&mut self, n2_nm3h: f64, c_in: f64, leak_nm3h: f64, dt: f64) {
        let total = n2_nm3h + leak_nm3h;
        if total <= 0.0 {
            return;
        }
        let steady = (n2_nm3h * c_in + leak_nm3h * AIR_O2_PCT) / total;
        let tau = 3600.0 * self.volume_m3 / total;
        self.o2_pct = first_order(self.o2_pct, steady, tau, dt);
    }
}

/// The charge the MES writes before Start.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Charge {
    pub mass_kg: f64,
    pub chemistry_code: u16,
}

impl Charge {
    pub fn chemistry(&self) -> Option<Chemistry> {
        super::discharge::chemistry_from_code(self.chemistry_code).filter(|_| self.mass_kg > 0.0)
    }
}

/// The line's setpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MechanicalSetpoints {
    pub feed_rate_tph: f64,
    pub o2_alarm_pct: f64,
    pub o2_trip_pct: f64,
    pub n2_flow_nm3h: f64,
    pub dryer_temp_c: f64,
    pub shredder_speed_rpm: f64,
}

impl Default for MechanicalSetpoints {
    fn default() -> Self {
        MechanicalSetpoints {
            feed_rate_tph: 4.0,
            o2_alarm_pct: 2.5,
            o2_trip_pct: 3.0,
            n2_flow_nm3h: 200.0,
            dryer_temp_c: 100.0,
            shredder_speed_rpm: 40.0,
        }
    }
}

/// The O2 alarm limit must stay below the trip limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmNotBelowTrip {
    pub alarm: f64,
    pub trip: f64,
}

/// Mass fractions of a charge that end in each output; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Yields {
    pub black_mass: f64,
    pub cu_foil: f64,
    pub al_foil: f64,
    pub steel: f64,
    pub plastics: f64,
    pub losses: f64,
}

/// Output masses in kg; `losses` is electrolyte and moisture evaporated.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outputs {
    pub black_mass_kg: f64,
    pub cu_foil_kg: f64,
    pub al_foil_kg: f64,
    pub steel_kg: f64,
    pub plastics_kg: f64,
    pub losses_kg: f64,
}

impl Outputs {
    /// The outputs of `processed_kg` split by `yields`; the losses take the
    /// remainder so the sum is exactly `processed_kg`.
    pub fn split(processed_kg: f64, y: &Yields) -> Outputs {
        let mut o = Outputs {
            black_mass_kg: processed_kg * y.black_mass,
            cu_foil_kg: processed_kg * y.cu_foil,
            al_foil_kg: processed_kg * y.al_foil,
            steel_kg: processed_kg * y.steel,
            plastics_kg: processed_kg * y.plastics,
            losses_kg: 0.0,
        };
        o.losses_kg = processed_kg
            - (o.black_mass_kg + o.cu_foil_kg + o.al_foil_kg + o.steel_kg + o.plastics_kg);
        o
    }

    pub fn total_kg(&self) -> f64 {
        self.black_mass_kg
            + self.cu_foil_kg
            + self.al_foil_kg
            + self.steel_kg
            + self.plastics_kg
            + self.losses_kg
    }
}

/// Draw the yields of a charge of packs of `chemistry`: black mass is the
/// pack's black-mass content (pack Li / black-mass Li, section 2) times a
/// separation efficiency of 80-90 %, kept within the brief's 35-45 %;
/// losses are electrolyte (8-12 %) and moisture (0.5-1.5 %); the rest splits
/// into Cu (~8 %), Al (~20 %), steel (~10 %) and plastics (~7.5 %), each
/// weight varied by +-15 %.
pub fn draw_yields(chemistry: Chemistry, noise: &mut Noise) -> Yields {
    let content = Kilograms::new(1.0)
        .ok()
        .map(|one| {
            chemistry
                .estimate_content(UnitType::Pack, one)
                .get(Element::Li)
                .kg()
        })
        .zip(Some(chemistry.black_mass_fraction(Element::Li).value()))
        .and_then(|(pack, bm)| (bm > 0.0).then(|| pack / bm))
        .unwrap_or(0.47);
    let black_mass = (content * noise.uniform(0.80, 0.90)).clamp(0.35, 0.45);
    let losses = noise.uniform(0.08, 0.12) + noise.uniform(0.005, 0.015);
    let rest = 1.0 - black_mass - losses;
    let w = [8.0, 20.0, 10.0, 7.5].map(|c| c * noise.uniform(0.85, 1.15));
    let total: f64 = w.iter().sum();
    let [cu, al, steel, plastics] = w.map(|x| rest * x / total);
    Yields {
        black_mass,
        cu_foil: cu,
        al_foil: al,
        steel,
        plastics,
        losses: 1.0 - (black_mass + cu + al + steel + plastics),
    }
}

/// What the line's instruments read at the end of the last step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MechanicalReadings {
    pub o2_pct: f64,
    pub h2_lel_pct: f64,
    pub chamber_temp_c: f64,
    pub torque_knm: f64,
    pub speed_rpm: f64,
    pub belt_kgph: f64,
    pub dryer_temp_c: f64,
    pub dryer_pressure_mbar: f64,
    pub processed_kg: f64,
    pub remaining_kg: f64,
    pub outputs: Outputs,
    pub feeding: bool,
    pub alarms: u16,
    pub trip: Option<TripCause>,
}

/// The line refuses a change of the charge unless it is Idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotIdle(pub UnitState);

/// The shredding line with its chamber, dryer and separation.
#[derive(Debug, Clone)]
pub struct ShredderLine {
    control: UnitControl,
    charge: Charge,
    setpoints: MechanicalSetpoints,
    vessel: InertVessel,
    h2_pct: f64,
    chamber_temp_c: f64,
    speed_rpm: f64,
    dryer_temp_c: f64,
    dryer_pressure_mbar: f64,
    processed_kg: f64,
    yields: Yields,
    purged: bool,
    feeding: bool,
    airlock_s: f64,
    trip: Option<TripCause>,
    readings: MechanicalReadings,
    noise: Noise,
    o2_drift: Drift,
    temp_drift: Drift,
}

impl ShredderLine {
    pub fn new(noise: Noise) -> ShredderLine {
        let mut line = ShredderLine {
            control: UnitControl::new(),
            charge: Charge::default(),
            setpoints: MechanicalSetpoints::default(),
            vessel: InertVessel::in_air(CHAMBER_VOLUME_M3),
            h2_pct: 0.0,
            chamber_temp_c: AMBIENT_C,
            speed_rpm: 0.0,
            dryer_temp_c: AMBIENT_C,
            dryer_pressure_mbar: ATMOSPHERE_MBAR,
            processed_kg: 0.0,
            yields: Yields::default(),
            purged: false,
            feeding: false,
            airlock_s: 0.0,
            trip: None,
            readings: MechanicalReadings::default(),
            noise,
            o2_drift: Drift::new(0.04, 300.0),
            temp_drift: Drift::new(0.2, 600.0),
        };
        line.read_instruments();
        line
    }

    pub fn control(&self) -> &UnitControl {
        &self.control
    }

    pub fn state(&self) -> UnitState {
        self.control.state()
    }

    pub fn charge(&self) -> &Charge {
        &self.charge
    }

    /// Describe the charge; only while Idle.
    pub fn set_charge(&mut self, charge: Charge) -> Result<(), NotIdle> {
        if self.state() != UnitState::Idle {
            return Err(NotIdle(self.state()));
        }
        self.charge = charge;
        self.read_instruments();
        Ok(())
    }

    pub fn setpoints(&self) -> &MechanicalSetpoints {
        &self.setpoints
    }

    /// Change the setpoints; the O2 alarm limit must stay below the trip limit.
    pub fn set_setpoints(&mut self, sp: MechanicalSetpoints) -> Result<(), AlarmNotBelowTrip> {
        if sp.o2_alarm_pct >= sp.o2_trip_pct {
            return Err(AlarmNotBelowTrip {
                alarm: sp.o2_alarm_pct,
                trip: sp.o2_trip_pct,
            });
        }
        self.setpoints = sp;
        Ok(())
    }

    pub fn readings(&self) -> &MechanicalReadings {
        &self.readings
    }

    /// The yields drawn for the running batch (zero before the first Start).
    pub fn yields(&self) -> &Yields {
        &self.yields
    }

    /// A command code written to the line. Start needs a described charge.
    pub fn command(&mut self, code: u16) -> Result<(), UnknownCommand> {
        let cmd = UnitControl::parse(code)?;
        self.control.record(code);
        let Some(cmd) = cmd else {
            return Ok(());
        };
        let chemistry = self.charge.chemistry();
        if cmd == UnitCommand::Start && chemistry.is_none() {
            self.control.refuse(cmd);
            return Ok(());
        }
        if self.control.apply(cmd) == Some(UnitState::Running)
            && cmd == UnitCommand::Start
            && let Some(chemistry) = chemistry
        {
            self.yields = draw_yields(chemistry, &mut self.noise);
            self.processed_kg = 0.0;
            self.purged = false;
            self.airlock_s = 0.0;
        }
        Ok(())
    }

    /// Advance `dt` simulated seconds (the caller sub-steps to about a second).
    pub fn step(&mut self, dt: f64) {
        if self.control.step(dt) == Some(UnitState::Idle) {
            self.clear_batch();
        }
        self.o2_drift.step(dt, &mut self.noise);
        self.temp_drift.step(dt, &mut self.noise);
        let state = self.state();
        let sp = self.setpoints;
        let inerted = matches!(
            state,
            UnitState::Running
                | UnitState::Holding
                | UnitState::Held
                | UnitState::Restarting
                | UnitState::Stopping
                | UnitState::Aborting
        );
        let running = state == UnitState::Running;
        if inerted && self.vessel.o2_pct < sp.o2_alarm_pct {
            self.purged = true;
        }
        let remaining = (self.charge.mass_kg - self.processed_kg).max(0.0);
        self.feeding =
            running && self.purged && self.vessel.o2_pct < sp.o2_alarm_pct && remaining > 0.0;
        let feed_tph = if self.feeding { sp.feed_rate_tph } else { 0.0 };

        let mut leak = LEAK_NM3H;
        if self.feeding {
            self.airlock_s = (self.airlock_s + dt) % AIRLOCK_PERIOD_S;
            if self.airlock_s < AIRLOCK_OPEN_S {
                leak = AIRLOCK_OPEN_NM3H;
            }
        }
        let (n2, leak) = match state {
            _ if inerted => (sp.n2_flow_nm3h, leak),
            UnitState::Idle => (0.0, IDLE_VENTILATION_NM3H),
            _ => (0.0, LEAK_NM3H),
        };
        self.vessel.step(n2, 0.0, leak, dt);
        let gas = n2 + leak;
        let h2_steady = 100.0 * H2_NM3_PER_T * feed_tph / gas.max(1e-9);
        self.h2_pct = first_order(
            self.h2_pct,
            h2_steady,
            3600.0 * CHAMBER_VOLUME_M3 / gas.max(1e-9),
            dt,
        );

        self.chamber_temp_c =
            first_order(self.chamber_temp_c, AMBIENT_C + 2.5 * feed_tph, 300.0, dt);
        let spinning = running && self.purged;
        let speed_target = if spinning { sp.shredder_speed_rpm } else { 0.0 };
        self.speed_rpm = first_order(self.speed_rpm, speed_target, 10.0, dt);
        let dryer_target = if inerted { sp.dryer_temp_c } else { AMBIENT_C };
        self.dryer_temp_c = first_order(self.dryer_temp_c, dryer_target, 480.0, dt);
        let pressure_target = if inerted {
            DRYER_VACUUM_MBAR
        } else {
            ATMOSPHERE_MBAR
        };
        self.dryer_pressure_mbar =
            first_order(self.dryer_pressure_mbar, pressure_target, 120.0, dt);

        if self.feeding {
            self.processed_kg =
                (self.processed_kg + feed_tph * 1000.0 * dt / 3600.0).min(self.charge.mass_kg);
            if self.processed_kg >= self.charge.mass_kg {
                self.control.complete();
            }
        }
        self.check_trips(inerted);
        self.read_instruments();
    }

    fn check_trips(&mut self, inerted: bool) {
        if !inerted || self.trip.is_some() {
            return;
        }
        let lel = self.h2_pct / H2_LEL_PCT * 100.0;
        let cause = if self.purged && self.vessel.o2_pct > self.setpoints.o2_trip_pct {
            Some(TripCause::Oxygen)
        } else if lel >= LEL_TRIP_PCT {
            Some(TripCause::Lel)
        } else if self.chamber_temp_c >= CHAMBER_TEMP_TRIP_C {
            Some(TripCause::ChamberTemperature)
        } else {
            None
        };
        if let Some(cause) = cause
            && self.control.force(UnitCommand::Abort)
        {
            self.trip = Some(cause);
            self.feeding = false;
        }
    }

    fn clear_batch(&mut self) {
        self.charge = Charge::default();
        self.processed_kg = 0.0;
        self.yields = Yields::default();
        self.purged = false;
        self.trip = None;
    }

    fn read_instruments(&mut self) {
        let remaining = (self.charge.mass_kg - self.processed_kg).max(0.0);
        let feed_tph = if self.feeding {
            self.setpoints.feed_rate_tph
        } else {
            0.0
        };
        let o2 = self.vessel.o2_pct
            + if self.state() == UnitState::Idle {
                self.o2_drift.value()
            } else {
                0.0
            };
        let n = &mut self.noise;
        let lel = self.h2_pct / H2_LEL_PCT * 100.0;
        let torque = if self.speed_rpm > 1.0 {
            1.5 + 8.0 * (feed_tph / 4.0) * (40.0 / self.speed_rpm).min(3.0)
        } else {
            0.0
        };
        let mut r = MechanicalReadings {
            o2_pct: (o2 + n.gauss(0.01)).clamp(0.0, 25.0),
            h2_lel_pct: (lel + n.gauss(0.02)).abs(),
            chamber_temp_c: self.chamber_temp_c + self.temp_drift.value() + n.gauss(0.05),
            torque_knm: (torque * (1.0 + n.gauss(0.03))).max(0.0),
            speed_rpm: (self.speed_rpm + n.gauss(0.1)).max(0.0),
            belt_kgph: if self.feeding {
                feed_tph * 1000.0 * (1.0 + n.gauss(0.004))
            } else {
                n.gauss(2.0).abs()
            },
            dryer_temp_c: self.dryer_temp_c + n.gauss(0.1),
            dryer_pressure_mbar: (self.dryer_pressure_mbar + n.gauss(0.5)).max(0.0),
            processed_kg: self.processed_kg,
            remaining_kg: remaining,
            outputs: Outputs::split(self.processed_kg, &self.yields),
            feeding: self.feeding,
            alarms: 0,
            trip: self.trip,
        };
        if self.purged && self.vessel.o2_pct >= self.setpoints.o2_alarm_pct {
            r.alarms |= ALARM_O2;
        }
        if lel >= LEL_ALARM_PCT {
            r.alarms |= ALARM_LEL;
        }
        if self.chamber_temp_c >= CHAMBER_TEMP_ALARM_C {
            r.alarms |= ALARM_CHAMBER_TEMPERATURE;
        }
        if self.trip.is_some() {
            r.alarms |= ALARM_TRIPPED;
        }
        self.readings = r;
    }
}
