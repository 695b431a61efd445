//! The discharge line as its PLC serves it: N stations, each a
//! [`crate::model::discharge::Station`], behind the register map
//! `maps/discharge.toml`.

use super::{RegisterModel, Write, WriteRefused};
use crate::maps::{Access, SignalRef, SignalSet};
use crate::model::discharge::{DischargeSetpoints, LoadedUnit, Station};
use crate::model::unit::UnitControl;
use crate::noise::Noise;
use remine_domain::UnitState;

/// Line-level signals of the discharge line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DischargeSignal {
    SimTime,
    StationCount,
}

impl SignalSet for DischargeSignal {
    const ALL: &'static [Self] = &[DischargeSignal::SimTime, DischargeSignal::StationCount];

    fn name(self) -> &'static str {
        match self {
            DischargeSignal::SimTime => "sim_time_s",
            DischargeSignal::StationCount => "station_count",
        }
    }

    fn access(self) -> Access {
        Access::R
    }
}

/// The signals of one station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationSignal {
    State,
    CommandRejected,
    Alarms,
    PackVoltage,
    CellVoltage,
    Current,
    Soc,
    Energy,
    MaxCellTemperature,
    InsulationResistance,
    Command,
    Chemistry,
    CellsInSeries,
    Capacity,
    UnitMass,
    EndVoltagePerCell,
    MaxCurrent,
    MaxCellTemperatureSetpoint,
    HoldTime,
}

impl SignalSet for StationSignal {
    const ALL: &'static [Self] = &[
        StationSignal::State,
        StationSignal::CommandRejected,
        StationSignal::Alarms,
        StationSignal::PackVoltage,
        StationSignal::CellVoltage,
        StationSignal::Current,
        StationSignal::Soc,
        StationSignal::Energy,
        StationSignal::MaxCellTemperature,
        StationSignal::InsulationResistance,
        StationSignal::Command,
        StationSignal::Chemistry,
        StationSignal::CellsInSeries,
        StationSignal::Capacity,
        StationSignal::UnitMass,
        StationSignal::EndVoltagePerCell,
        StationSignal::MaxCurrent,
        StationSignal::MaxCellTemperatureSetpoint,
        StationSignal::HoldTime,
    ];

    fn name(self) -> &'static str {
        match self {
            StationSignal::State => "state",
            StationSignal::CommandRejected => "command_rejected",
            StationSignal::Alarms => "alarms",
            StationSignal::PackVoltage => "pack_voltage",
            StationSignal::CellVoltage => "cell_voltage",
            StationSignal::Current => "current",
            StationSignal::Soc => "state_of_charge",
            StationSignal::Energy => "energy_recovered",
            StationSignal::MaxCellTemperature => "max_cell_temperature",
            StationSignal::InsulationResistance => "insulation_resistance",
            StationSignal::Command => "command",
            StationSignal::Chemistry => "chemistry",
            StationSignal::CellsInSeries => "cells_in_series",
            StationSignal::Capacity => "capacity",
            StationSignal::UnitMass => "unit_mass",
            StationSignal::EndVoltagePerCell => "end_voltage_per_cell",
            StationSignal::MaxCurrent => "max_current",
            StationSignal::MaxCellTemperatureSetpoint => "max_cell_temperature_setpoint",
            StationSignal::HoldTime => "hold_time",
        }
    }

    fn access(self) -> Access {
        use StationSignal as S;
        match self {
            S::Command
            | S::Chemistry
            | S::CellsInSeries
            | S::Capacity
            | S::UnitMass
            | S::EndVoltagePerCell
            | S::MaxCurrent
            | S::MaxCellTemperatureSetpoint
            | S::HoldTime => Access::RW,
            _ => Access::R,
        }
    }
}

/// The change a batch of writes makes to one station.
#[derive(Debug, Clone, Copy)]
struct Plan {
    index: u16,
    unit: LoadedUnit,
    unit_changed: bool,
    setpoints: DischargeSetpoints,
    command: Option<u16>,
}

/// The stations of the discharge line and the line's clock.
#[derive(Debug, Clone)]
pub struct DischargeLine {
    stations: Vec<Station>,
    sim_time_s: f64,
}

impl DischargeLine {
    /// `count` stations, each with its own noise stream drawn from `seed`.
    pub fn new(count: u16, seed: u64) -> DischargeLine {
        let stations = (1..=count)
            .map(|i| Station::new(Noise::new(seed, 0x0D15_C4A6_0000 + u64::from(i))))
            .collect();
        DischargeLine {
            stations,
            sim_time_s: 0.0,
        }
    }

    /// Station `index` (1-based).
    pub fn station(&self, index: u16) -> Option<&Station> {
        self.stations.get(usize::from(index).checked_sub(1)?)
    }

    /// Station `index` (1-based), to change.
    pub fn station_mut(&mut self, index: u16) -> Option<&mut Station> {
        self.stations.get_mut(usize::from(index).checked_sub(1)?)
    }
}

impl RegisterModel for DischargeLine {
    type Line = DischargeSignal;
    type Block = StationSignal;

    fn read(&self, signal: SignalRef<DischargeSignal, StationSignal>) -> f64 {
        let (index, sig) = match signal {
            SignalRef::Line(DischargeSignal::SimTime) => return self.sim_time_s.floor(),
            SignalRef::Line(DischargeSignal::StationCount) => return self.stations.len() as f64,
            SignalRef::Block(i, s) => (i, s),
        };
        let Some(st) = self.station(index) else {
            return 0.0;
        };
        let r = st.readings();
        let u = st.unit();
        let sp = st.setpoints();
        use StationSignal as S;
        match sig {
            S::State => f64::from(st.state().code()),
            S::CommandRejected => f64::from(st.control().rejected()),
            S::Alarms => f64::from(r.alarms),
            S::PackVoltage => r.pack_voltage_v,
            S::CellVoltage => r.cell_voltage_v,
            S::Current => r.current_a,
            S::Soc => r.soc_pct,
            S::Energy => r.energy_kwh,
            S::MaxCellTemperature => r.max_cell_temp_c,
            S::InsulationResistance => r.insulation_mohm,
            S::Command => f64::from(st.control().command_register()),
            S::Chemistry => f64::from(u.chemistry_code),
            S::CellsInSeries => f64::from(u.cells_in_series),
            S::Capacity => u.capacity_ah,
            S::UnitMass => u.unit_mass_kg,
            S::EndVoltagePerCell => sp.end_voltage_per_cell,
            S::MaxCurrent => sp.max_current_a,
            S::MaxCellTemperatureSetpoint => sp.max_cell_temp_c,
            S::HoldTime => sp.hold_time_min,
        }
    }

    fn write(
        &mut self,
        writes: &[Write<DischargeSignal, StationSignal>],
    ) -> Result<(), WriteRefused> {
        // Plan every station's change first, so a refused write changes nothing.
        let mut plans: Vec<Plan> = Vec::new();
        for (signal, value) in writes {
            let (index, sig) = match *signal {
                SignalRef::Block(index, sig) => (index, sig),
                SignalRef::Line(s) => return Err(WriteRefused::NotWritable { signal: s.name() }),
            };
            let Some(st) = self.station(index) else {
                return Err(WriteRefused::NotWritable { signal: sig.name() });
            };
            let pos = match plans.iter().position(|p| p.index == index) {
                Some(p) => p,
                None => {
                    plans.push(Plan {
                        index,
                        unit: *st.unit(),
                        unit_changed: false,
                        setpoints: *st.setpoints(),
                        command: None,
                    });
                    plans.len() - 1
                }
            };
            let plan = &mut plans[pos];
            let v = *value;
            use StationSignal as S;
            match sig {
                S::Command => {
                    if UnitControl::parse(v as u16).is_err() {
                        return Err(WriteRefused::OutOfRange {
                            signal: sig.name(),
                            value: v,
                        });
                    }
                    plan.command = Some(v as u16);
                }
                S::Chemistry => plan.unit.chemistry_code = v as u16,
                S::CellsInSeries => plan.unit.cells_in_series = v as u16,
                S::Capacity => plan.unit.capacity_ah = v,
                S::UnitMass => plan.unit.unit_mass_kg = v,
                S::EndVoltagePerCell => plan.setpoints.end_voltage_per_cell = v,
                S::MaxCurrent => plan.setpoints.max_current_a = v,
                S::MaxCellTemperatureSetpoint => plan.setpoints.max_cell_temp_c = v,
                S::HoldTime => plan.setpoints.hold_time_min = v,
                _ => return Err(WriteRefused::NotWritable { signal: sig.name() }),
            }
            if matches!(
                sig,
                S::Chemistry | S::CellsInSeries | S::Capacity | S::UnitMass
            ) {
                plan.unit_changed = true;
                if st.state() != UnitState::Idle {
                    return Err(WriteRefused::Busy {
                        signal: sig.name(),
                        state: st.state().name(),
                    });
                }
            }
        }
        for plan in plans {
            let Some(st) = self.station_mut(plan.index) else {
                continue;
            };
            if plan.unit_changed
                && let Err(e) = st.set_unit(plan.unit)
            {
                return Err(WriteRefused::Busy {
                    signal: "load block",
                    state: e.0.name(),
                });
            }
            st.set_setpoints(plan.setpoints);
            if let Some(code) = plan.command
                && st.command(code).is_err()
            {
                return Err(WriteRefused::OutOfRange {
                    signal: StationSignal::Command.name(),
                    value: f64::from(code),
                });
            }
        }
        Ok(())
    }

    fn step(&mut self, dt: f64) {
        self.sim_time_s += dt;
        for st in &mut self.stations {
            st.step(dt);
        }
    }
}
