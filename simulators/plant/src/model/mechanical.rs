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
//! chamber's gas flow.
//!
//! The off-gas leaves through a dust filter: clean, it shows 8 mbar at the
//! full 200 Nm3/h (dP grows with the square of the flow). Two faults act on
//! the physics ([`ShredderLine::set_faults`]): an extra air leak into the
//! chamber (Nm3/h, an O2 leak) and a blocking filter whose fouling adds dP
//! at a rate; the fouled filter throttles the nitrogen sweep, to half at
//! 40 mbar of fouling, and sets an alarm at 25 mbar dP. Clearing the
//! blocked-filter fault stands for a filter change: the fouling is gone.
//!
//! Material: on Start the line asks the plant for the charge it was told of
//! ([`ShredderLine::take_feed_request`]); the plant supplies the true
//! material of the packs ([`ShredderLine::supply`]), and feeding waits for
//! it. Each component of the charge goes to the outputs by the batch's
//! drawn [`ShredPartition`], so every element is conserved exactly. What the
//! PLC shows is measured: the belt weigher integrates the feed with 0.4 %
//! noise and a slow drift, the output scales carry a drift and a ticket
//! error of about 0.1 %. When the batch is cleared (Reset to Idle) the line
//! hands the plant the true outputs and the unprocessed rest
//! ([`ShredderLine::take_batch_end`]).

use super::material::{Material, PackMaterial, ShredPartition};
use super::unit::{UnitControl, UnknownCommand};
use crate::noise::{Drift, Noise, first_order};
use remine_domain::{Chemistry, UnitCommand, UnitState};

/// O2 in air, vol %.
pub const AIR_O2_PCT: f64 = 20.9;
/// The shredder chamber's free volume.
pub const CHAMBER_VOLUME_M3: f64 = 12.0;
const LEAK_NM3H: f64 = 2.0;
const AIRLOCK_OPEN_NM3H: f64 = 40.0;
const AIRLOCK_PERIOD_S: f64 = 60.0;
const AIRLOCK_OPEN_S: f64 = 5.0;
/// The purge ends this far below the O2 alarm limit (vol %), as a PLC's
/// feed permit has hysteresis: the airlock's first opening after the purge
/// must not take the chamber straight back over the limit.
const PURGE_MARGIN_PCT: f64 = 0.5;
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
/// Alarm bit: the off-gas filter's dP at or above 25 mbar.
pub const ALARM_FILTER_DP: u16 = 16;
const FILTER_CLEAN_MBAR: f64 = 8.0;
const FILTER_NOMINAL_NM3H: f64 = 200.0;
const FILTER_ALARM_MBAR: f64 = 25.0;
/// Fouling at which the filter halves the nitrogen sweep.
const FILTER_HALF_FLOW_MBAR: f64 = 40.0;

/// Faults acting on the line's physics (none by default).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MechanicalFaults {
    /// Extra air leaking into the chamber, Nm3/h.
    pub air_leak_nm3h: f64,
    /// How fast the off-gas filter fouls, mbar per simulated minute; 0:
    /// the filter is (or was just changed) clean.
    pub filter_fouling_mbar_per_min: f64,
}

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

/// Output masses in kg, as measured or as true totals.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outputs {
    pub black_mass_kg: f64,
    pub cu_foil_kg: f64,
    pub al_foil_kg: f64,
    pub steel_kg: f64,
    pub plastics_kg: f64,
    /// Electrolyte and dust taken off by the dryer's condensers and filters.
    pub losses_kg: f64,
}

impl Outputs {
    /// Masses in [`ShredOutput::ALL`] order.
    pub fn from_array(kg: [f64; 6]) -> Outputs {
        let [
            black_mass_kg,
            cu_foil_kg,
            al_foil_kg,
            steel_kg,
            plastics_kg,
            losses_kg,
        ] = kg;
        Outputs {
            black_mass_kg,
            cu_foil_kg,
            al_foil_kg,
            steel_kg,
            plastics_kg,
            losses_kg,
        }
    }

    /// Masses in [`ShredOutput::ALL`] order.
    pub fn to_array(&self) -> [f64; 6] {
        [
            self.black_mass_kg,
            self.cu_foil_kg,
            self.al_foil_kg,
            self.steel_kg,
            self.plastics_kg,
            self.losses_kg,
        ]
    }

    pub fn total_kg(&self) -> f64 {
        self.to_array().iter().sum()
    }
}

/// What the line asks of the plant when a batch starts: the charge the MES
/// described, to be fetched from the discharged packs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedRequest {
    pub chemistry: Chemistry,
    pub declared_kg: f64,
}

/// A cleared batch as the truth sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShredBatchEnd {
    /// True outputs, in [`ShredOutput::ALL`] order.
    pub outputs: [Material; 6],
    /// What the output scales showed, in the same order.
    pub measured_kg: [f64; 6],
    /// What the belt weigher counted as fed.
    pub measured_processed_kg: f64,
    /// The part of the charge never fed (a trip or a stop), left in the hopper.
    pub unprocessed: PackMaterial,
}

/// Relative standard deviation of the belt weigher's reading.
const BELT_SIGMA: f64 = 0.004;
/// Relative standard deviation of an output scale's ticket.
const SCALE_SIGMA: f64 = 0.001;

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
    pub filter_dp_mbar: f64,
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
    feed_requested: bool,
    feed: Option<PackMaterial>,
    partition: Option<ShredPartition>,
    /// The stream of the batches' draws, apart from the readings' noise so
    /// that the same seed gives the same batches.
    batch_noise: Noise,
    measured_processed_kg: f64,
    ticket_error: [f64; 6],
    batch_end: Option<ShredBatchEnd>,
    belt_drift: Drift,
    scale_drift: [Drift; 6],
    setpoints: MechanicalSetpoints,
    vessel: InertVessel,
    h2_pct: f64,
    chamber_temp_c: f64,
    speed_rpm: f64,
    dryer_temp_c: f64,
    dryer_pressure_mbar: f64,
    processed_kg: f64,
    purged: bool,
    feeding: bool,
    airlock_s: f64,
    trip: Option<TripCause>,
    faults: MechanicalFaults,
    filter_fouling_mbar: f64,
    filter_dp_mbar: f64,
    readings: MechanicalReadings,
    noise: Noise,
    o2_drift: Drift,
    temp_drift: Drift,
}

impl ShredderLine {
    pub fn new(mut noise: Noise) -> ShredderLine {
        let batch_noise = noise.fork();
        let mut line = ShredderLine {
            batch_noise,
            control: UnitControl::new(),
            charge: Charge::default(),
            feed_requested: false,
            feed: None,
            partition: None,
            measured_processed_kg: 0.0,
            ticket_error: [0.0; 6],
            batch_end: None,
            belt_drift: Drift::new(0.004, 4.0 * 3600.0),
            scale_drift: [Drift::new(0.001, 8.0 * 3600.0); 6],
            setpoints: MechanicalSetpoints::default(),
            vessel: InertVessel::in_air(CHAMBER_VOLUME_M3),
            h2_pct: 0.0,
            chamber_temp_c: AMBIENT_C,
            speed_rpm: 0.0,
            dryer_temp_c: AMBIENT_C,
            dryer_pressure_mbar: ATMOSPHERE_MBAR,
            processed_kg: 0.0,
            purged: false,
            feeding: false,
            airlock_s: 0.0,
            trip: None,
            faults: MechanicalFaults::default(),
            filter_fouling_mbar: 0.0,
            filter_dp_mbar: 0.0,
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

    /// The running batch's partition of components to outputs (none before
    /// the first Start).
    pub fn partition(&self) -> Option<&ShredPartition> {
        self.partition.as_ref()
    }

    /// The true material of the running batch, once supplied.
    pub fn feed(&self) -> Option<&PackMaterial> {
        self.feed.as_ref()
    }

    /// The charge a started batch still waits for; taken once.
    pub fn take_feed_request(&mut self) -> Option<FeedRequest> {
        if !self.feed_requested {
            return None;
        }
        self.feed_requested = false;
        self.charge.chemistry().map(|chemistry| FeedRequest {
            chemistry,
            declared_kg: self.charge.mass_kg,
        })
    }

    /// The true material of the started batch's charge. Feeding begins only
    /// once it is here.
    pub fn supply(&mut self, feed: PackMaterial) {
        self.feed = Some(feed);
        self.read_instruments();
    }

    /// The last cleared batch, taken once.
    pub fn take_batch_end(&mut self) -> Option<ShredBatchEnd> {
        self.batch_end.take()
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
        if self.control.apply(cmd) == Some(UnitState::Running) && cmd == UnitCommand::Start {
            self.partition = Some(ShredPartition::draw(&mut self.batch_noise));
            self.ticket_error = [0.0; 6].map(|_| self.batch_noise.gauss(SCALE_SIGMA));
            self.feed_requested = true;
            self.feed = None;
            self.processed_kg = 0.0;
            self.measured_processed_kg = 0.0;
            self.purged = false;
            self.airlock_s = 0.0;
        }
        Ok(())
    }

    /// Set the faults acting on the physics; a filter fault cleared (rate
    /// 0) is a filter change.
    pub fn set_faults(&mut self, faults: MechanicalFaults) {
        self.faults = MechanicalFaults {
            air_leak_nm3h: faults.air_leak_nm3h.max(0.0),
            filter_fouling_mbar_per_min: faults.filter_fouling_mbar_per_min.max(0.0),
        };
        if self.faults.filter_fouling_mbar_per_min == 0.0 {
            self.filter_fouling_mbar = 0.0;
        }
    }

    pub fn faults(&self) -> MechanicalFaults {
        self.faults
    }

    /// The power failed: a batch under way ends where it is (its outputs so
    /// far and the unprocessed rest are handed over as at a Reset).
    pub fn power_lost(&mut self) {
        self.clear_batch();
    }

    /// Advance `dt` simulated seconds (the caller sub-steps to about a second).
    pub fn step(&mut self, dt: f64) {
        if self.control.step(dt) == Some(UnitState::Idle) {
            self.clear_batch();
        }
        self.o2_drift.step(dt, &mut self.noise);
        self.temp_drift.step(dt, &mut self.noise);
        self.belt_drift.step(dt, &mut self.noise);
        for d in &mut self.scale_drift {
            d.step(dt, &mut self.noise);
        }
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
        if inerted && self.vessel.o2_pct < sp.o2_alarm_pct - PURGE_MARGIN_PCT {
            self.purged = true;
        }
        let feed_kg = self.feed.as_ref().map_or(0.0, PackMaterial::total);
        let remaining = (feed_kg - self.processed_kg).max(0.0);
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
        self.filter_fouling_mbar += self.faults.filter_fouling_mbar_per_min * dt / 60.0;
        let throttle = 1.0 / (1.0 + self.filter_fouling_mbar / FILTER_HALF_FLOW_MBAR);
        let (n2, leak) = match state {
            _ if inerted => (sp.n2_flow_nm3h * throttle, leak),
            UnitState::Idle => (0.0, IDLE_VENTILATION_NM3H),
            _ => (0.0, LEAK_NM3H),
        };
        let leak = leak + self.faults.air_leak_nm3h;
        self.vessel.step(n2, 0.0, leak, dt);
        let gas = n2 + leak;
        self.filter_dp_mbar = if inerted {
            FILTER_CLEAN_MBAR * (gas / FILTER_NOMINAL_NM3H).powi(2) + self.filter_fouling_mbar
        } else {
            0.0
        };
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
            let fed = (feed_tph * 1000.0 * dt / 3600.0).min(remaining);
            self.processed_kg += fed;
            let belt = 1.0 + self.belt_drift.value() + self.noise.gauss(BELT_SIGMA);
            self.measured_processed_kg += fed * belt;
            if fed >= remaining {
                self.processed_kg = feed_kg;
                self.control.complete();
                self.feeding = false;
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
        if let Some(feed) = self.feed.take() {
            let outputs = self.true_outputs_of(&feed);
            let fed = outputs.iter().fold(Material::NONE, |a, m| a.plus(m));
            let done = if feed.total() > 0.0 {
                (fed.total() / feed.total()).clamp(0.0, 1.0)
            } else {
                0.0
            };
            self.batch_end = Some(ShredBatchEnd {
                outputs,
                measured_kg: self.readings.outputs.to_array(),
                measured_processed_kg: self.measured_processed_kg,
                unprocessed: feed.minus(&feed.scaled(done)),
            });
        }
        self.feed_requested = false;
        self.partition = None;
        self.measured_processed_kg = 0.0;
        self.charge = Charge::default();
        self.processed_kg = 0.0;
        self.purged = false;
        self.trip = None;
    }

    fn true_outputs_of(&self, feed: &PackMaterial) -> [Material; 6] {
        match &self.partition {
            Some(partition) if feed.total() > 0.0 => {
                let done = (self.processed_kg / feed.total()).clamp(0.0, 1.0);
                partition.apply(&feed.scaled(done))
            }
            _ => [Material::NONE; 6],
        }
    }

    /// What the output scales show for the true outputs so far.
    fn measured_outputs(&self) -> Outputs {
        let truth = match &self.feed {
            Some(feed) => self.true_outputs_of(feed),
            None => [Material::NONE; 6],
        };
        let mut kg = [0.0; 6];
        for (i, out) in truth.iter().enumerate() {
            let bias = 1.0 + self.scale_drift[i].value() + self.ticket_error[i];
            kg[i] = out.total() * bias;
        }
        Outputs::from_array(kg)
    }

    fn read_instruments(&mut self) {
        let remaining = if self.state() == UnitState::Complete {
            0.0
        } else {
            (self.charge.mass_kg - self.measured_processed_kg).max(0.0)
        };
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
        let outputs = self.measured_outputs();
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
            filter_dp_mbar: (self.filter_dp_mbar + n.gauss(0.05)).max(0.0),
            processed_kg: self.measured_processed_kg,
            remaining_kg: remaining,
            outputs,
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
        if self.filter_dp_mbar >= FILTER_ALARM_MBAR {
            r.alarms |= ALARM_FILTER_DP;
        }
        self.readings = r;
    }
}
