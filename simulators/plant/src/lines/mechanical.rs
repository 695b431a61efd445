//! The mechanical line as its PLC serves it: the shredding line
//! ([`crate::model::mechanical::ShredderLine`]) behind the register map
//! `maps/mechanical.toml`.

use super::{RegisterModel, Write, WriteRefused};
use crate::maps::{Access, NoBlock, SignalRef, SignalSet};
use crate::model::mechanical::{Charge, ShredderLine};
use crate::model::unit::UnitControl;
use crate::noise::Noise;
use remine_domain::UnitState;

/// The signals of the mechanical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechanicalSignal {
    SimTime,
    State,
    CommandRejected,
    Alarms,
    TripCause,
    Feeding,
    ChamberO2,
    H2Lel,
    ChamberTemperature,
    ShredderTorque,
    ShredderSpeed,
    BeltWeigher,
    DryerTemperature,
    DryerPressure,
    FilterDp,
    Processed,
    Remaining,
    BlackMass,
    CuFoil,
    AlFoil,
    Steel,
    Plastics,
    Losses,
    Command,
    Chemistry,
    ChargeMass,
    FeedRate,
    O2AlarmLimit,
    O2TripLimit,
    N2Flow,
    DryerTemperatureSetpoint,
    ShredderSpeedSetpoint,
}

impl SignalSet for MechanicalSignal {
    const ALL: &'static [Self] = &[
        MechanicalSignal::SimTime,
        MechanicalSignal::State,
        MechanicalSignal::CommandRejected,
        MechanicalSignal::Alarms,
        MechanicalSignal::TripCause,
        MechanicalSignal::Feeding,
        MechanicalSignal::ChamberO2,
        MechanicalSignal::H2Lel,
        MechanicalSignal::ChamberTemperature,
        MechanicalSignal::ShredderTorque,
        MechanicalSignal::ShredderSpeed,
        MechanicalSignal::BeltWeigher,
        MechanicalSignal::DryerTemperature,
        MechanicalSignal::DryerPressure,
        MechanicalSignal::FilterDp,
        MechanicalSignal::Processed,
        MechanicalSignal::Remaining,
        MechanicalSignal::BlackMass,
        MechanicalSignal::CuFoil,
        MechanicalSignal::AlFoil,
        MechanicalSignal::Steel,
        MechanicalSignal::Plastics,
        MechanicalSignal::Losses,
        MechanicalSignal::Command,
        MechanicalSignal::Chemistry,
        MechanicalSignal::ChargeMass,
        MechanicalSignal::FeedRate,
        MechanicalSignal::O2AlarmLimit,
        MechanicalSignal::O2TripLimit,
        MechanicalSignal::N2Flow,
        MechanicalSignal::DryerTemperatureSetpoint,
        MechanicalSignal::ShredderSpeedSetpoint,
    ];

    fn name(self) -> &'static str {
        use MechanicalSignal as M;
        match self {
            M::SimTime => "sim_time_s",
            M::State => "state",
            M::CommandRejected => "command_rejected",
            M::Alarms => "alarms",
            M::TripCause => "trip_cause",
            M::Feeding => "feeding",
            M::ChamberO2 => "chamber_o2",
            M::H2Lel => "h2_lel",
            M::ChamberTemperature => "chamber_temperature",
            M::ShredderTorque => "shredder_torque",
            M::ShredderSpeed => "shredder_speed",
            M::BeltWeigher => "belt_weigher",
            M::DryerTemperature => "dryer_temperature",
            M::DryerPressure => "dryer_pressure",
            M::FilterDp => "filter_dp",
            M::Processed => "processed",
            M::Remaining => "remaining",
            M::BlackMass => "black_mass",
            M::CuFoil => "cu_foil",
            M::AlFoil => "al_foil",
            M::Steel => "steel",
            M::Plastics => "plastics",
            M::Losses => "losses",
            M::Command => "command",
            M::Chemistry => "chemistry",
            M::ChargeMass => "charge_mass",
            M::FeedRate => "feed_rate",
            M::O2AlarmLimit => "o2_alarm_limit",
            M::O2TripLimit => "o2_trip_limit",
            M::N2Flow => "n2_flow",
            M::DryerTemperatureSetpoint => "dryer_temperature_setpoint",
            M::ShredderSpeedSetpoint => "shredder_speed_setpoint",
        }
    }

    fn access(self) -> Access {
        use MechanicalSignal as M;
        match self {
            M::Command
            | M::Chemistry
            | M::ChargeMass
            | M::FeedRate
            | M::O2AlarmLimit
            | M::O2TripLimit
            | M::N2Flow
            | M::DryerTemperatureSetpoint
            | M::ShredderSpeedSetpoint => Access::RW,
            _ => Access::R,
        }
    }
}

/// The mechanical line and its clock.
#[derive(Debug, Clone)]
pub struct MechanicalLine {
    line: ShredderLine,
    sim_time_s: f64,
}

impl MechanicalLine {
    pub fn new(seed: u64) -> MechanicalLine {
        MechanicalLine {
            line: ShredderLine::new(Noise::new(seed, 0x5A3D_DE40)),
            sim_time_s: 0.0,
        }
    }

    pub fn line(&self) -> &ShredderLine {
        &self.line
    }

    /// The shredding line, to exchange material with the plant.
    pub fn line_mut(&mut self) -> &mut ShredderLine {
        &mut self.line
    }
}

impl RegisterModel for MechanicalLine {
    type Line = MechanicalSignal;
    type Block = NoBlock;

    fn read(&self, signal: SignalRef<MechanicalSignal, NoBlock>) -> f64 {
        let SignalRef::Line(sig) = signal;
        let l = &self.line;
        let r = l.readings();
        let o = &r.outputs;
        let sp = l.setpoints();
        use MechanicalSignal as M;
        match sig {
            M::SimTime => self.sim_time_s.floor(),
            M::State => f64::from(l.state().code()),
            M::CommandRejected => f64::from(l.control().rejected()),
            M::Alarms => f64::from(r.alarms),
            M::TripCause => f64::from(r.trip.map(|t| t.code()).unwrap_or(0)),
            M::Feeding => f64::from(u8::from(r.feeding)),
            M::ChamberO2 => r.o2_pct,
            M::H2Lel => r.h2_lel_pct,
            M::ChamberTemperature => r.chamber_temp_c,
            M::ShredderTorque => r.torque_knm,
            M::ShredderSpeed => r.speed_rpm,
            M::BeltWeigher => r.belt_kgph,
            M::DryerTemperature => r.dryer_temp_c,
            M::DryerPressure => r.dryer_pressure_mbar,
            M::FilterDp => r.filter_dp_mbar,
            M::Processed => r.processed_kg,
            M::Remaining => r.remaining_kg,
            M::BlackMass => o.black_mass_kg,
            M::CuFoil => o.cu_foil_kg,
            M::AlFoil => o.al_foil_kg,
            M::Steel => o.steel_kg,
            M::Plastics => o.plastics_kg,
            M::Losses => o.losses_kg,
            M::Command => f64::from(l.control().command_register()),
            M::Chemistry => f64::from(l.charge().chemistry_code),
            M::ChargeMass => l.charge().mass_kg,
            M::FeedRate => sp.feed_rate_tph,
            M::O2AlarmLimit => sp.o2_alarm_pct,
            M::O2TripLimit => sp.o2_trip_pct,
            M::N2Flow => sp.n2_flow_nm3h,
            M::DryerTemperatureSetpoint => sp.dryer_temp_c,
            M::ShredderSpeedSetpoint => sp.shredder_speed_rpm,
        }
    }

    fn write(&mut self, writes: &[Write<MechanicalSignal, NoBlock>]) -> Result<(), WriteRefused> {
        let mut charge: Charge = *self.line.charge();
        let mut charge_changed = false;
        let mut sp = *self.line.setpoints();
        let mut command = None;
        for &(signal, v) in writes {
            let SignalRef::Line(sig) = signal;
            use MechanicalSignal as M;
            match sig {
                M::Command => {
                    if UnitControl::parse(v as u16).is_err() {
                        return Err(WriteRefused::OutOfRange {
                            signal: sig.name(),
                            value: v,
                        });
                    }
                    command = Some(v as u16);
                }
                M::Chemistry => (charge.chemistry_code, charge_changed) = (v as u16, true),
                M::ChargeMass => (charge.mass_kg, charge_changed) = (v, true),
                M::FeedRate => sp.feed_rate_tph = v,
                M::O2AlarmLimit => sp.o2_alarm_pct = v,
                M::O2TripLimit => sp.o2_trip_pct = v,
                M::N2Flow => sp.n2_flow_nm3h = v,
                M::DryerTemperatureSetpoint => sp.dryer_temp_c = v,
                M::ShredderSpeedSetpoint => sp.shredder_speed_rpm = v,
                _ => return Err(WriteRefused::NotWritable { signal: sig.name() }),
            }
            if charge_changed && self.line.state() != UnitState::Idle {
                return Err(WriteRefused::Busy {
                    signal: sig.name(),
                    state: self.line.state().name(),
                });
            }
        }
        if sp.o2_alarm_pct >= sp.o2_trip_pct {
            return Err(WriteRefused::Conflict {
                reason: format!(
                    "o2_alarm_limit {} must stay below o2_trip_limit {}",
                    sp.o2_alarm_pct, sp.o2_trip_pct
                ),
            });
        }
        if charge_changed && let Err(e) = self.line.set_charge(charge) {
            return Err(WriteRefused::Busy {
                signal: "charge block",
                state: e.0.name(),
            });
        }
        if let Err(e) = self.line.set_setpoints(sp) {
            return Err(WriteRefused::Conflict {
                reason: format!(
                    "o2_alarm_limit {} must stay below o2_trip_limit {}",
                    e.alarm, e.trip
                ),
            });
        }
        if let Some(code) = command
            && self.line.command(code).is_err()
        {
            return Err(WriteRefused::OutOfRange {
                signal: MechanicalSignal::Command.name(),
                value: f64::from(code),
            });
        }
        Ok(())
    }

    fn step(&mut self, dt: f64) {
        self.sim_time_s += dt;
        self.line.step(dt);
    }
}
