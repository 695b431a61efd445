//! The hydrometallurgy train as its DCS serves it: the variables of every
//! unit folder, how each is read and written, and the unit methods.

use super::WriteRefused;
use crate::maps::Access;
use crate::model::hydromet::{HydroUnit, HydrometTrain};
use crate::model::unit::UnitControl;
use crate::noise::Noise;
use remine_domain::UnitState;

/// A variable of a unit folder (its browse name is [`HydroVar::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HydroVar {
    State,
    Command,
    CommandRejected,
    ChargeMassKg,
    ChargeNi,
    ChargeCo,
    ChargeLi,
    ChargeMn,
    ChargeCu,
    ChargeAl,
    TemperatureSetpoint,
    AcidSetpoint,
    SolidsSetpoint,
    Temperature,
    Ph,
    FreeAcid,
    Level,
    Extraction,
    ResidueMassKg,
    ProductMassKg,
    ProductNiFraction,
    ProductCoFraction,
    Purity,
}

impl HydroVar {
    pub const ALL: [HydroVar; 23] = [
        HydroVar::State,
        HydroVar::Command,
        HydroVar::CommandRejected,
        HydroVar::ChargeMassKg,
        HydroVar::ChargeNi,
        HydroVar::ChargeCo,
        HydroVar::ChargeLi,
        HydroVar::ChargeMn,
        HydroVar::ChargeCu,
        HydroVar::ChargeAl,
        HydroVar::TemperatureSetpoint,
        HydroVar::AcidSetpoint,
        HydroVar::SolidsSetpoint,
        HydroVar::Temperature,
        HydroVar::Ph,
        HydroVar::FreeAcid,
        HydroVar::Level,
        HydroVar::Extraction,
        HydroVar::ResidueMassKg,
        HydroVar::ProductMassKg,
        HydroVar::ProductNiFraction,
        HydroVar::ProductCoFraction,
        HydroVar::Purity,
    ];

    pub fn name(self) -> &'static str {
        use HydroVar as V;
        match self {
            V::State => "State",
            V::Command => "Command",
            V::CommandRejected => "CommandRejected",
            V::ChargeMassKg => "ChargeMassKg",
            V::ChargeNi => "ChargeNi",
            V::ChargeCo => "ChargeCo",
            V::ChargeLi => "ChargeLi",
            V::ChargeMn => "ChargeMn",
            V::ChargeCu => "ChargeCu",
            V::ChargeAl => "ChargeAl",
            V::TemperatureSetpoint => "TemperatureSetpoint",
            V::AcidSetpoint => "AcidSetpoint",
            V::SolidsSetpoint => "SolidsSetpoint",
            V::Temperature => "Temperature",
            V::Ph => "pH",
            V::FreeAcid => "FreeAcid",
            V::Level => "Level",
            V::Extraction => "Extraction",
            V::ResidueMassKg => "ResidueMassKg",
            V::ProductMassKg => "ProductMassKg",
            V::ProductNiFraction => "ProductNiFraction",
            V::ProductCoFraction => "ProductCoFraction",
            V::Purity => "Purity",
        }
    }

    pub fn access(self) -> Access {
        use HydroVar as V;
        match self {
            V::Command
            | V::ChargeMassKg
            | V::ChargeNi
            | V::ChargeCo
            | V::ChargeLi
            | V::ChargeMn
            | V::ChargeCu
            | V::ChargeAl
            | V::TemperatureSetpoint
            | V::AcidSetpoint
            | V::SolidsSetpoint => Access::RW,
            _ => Access::R,
        }
    }

    /// Whether the variable is a UInt16 code (else a Double).
    pub fn is_code(self) -> bool {
        matches!(
            self,
            HydroVar::State | HydroVar::Command | HydroVar::CommandRejected
        )
    }
}

/// The variables every unit folder has.
pub const COMMON_VARS: [HydroVar; 3] = [
    HydroVar::State,
    HydroVar::Command,
    HydroVar::CommandRejected,
];

/// The variables of a unit folder beyond the common ones.
pub fn unit_vars(unit: HydroUnit) -> &'static [HydroVar] {
    use HydroVar as V;
    match unit {
        HydroUnit::Leach => &[
            V::ChargeMassKg,
            V::ChargeNi,
            V::ChargeCo,
            V::ChargeLi,
            V::ChargeMn,
            V::ChargeCu,
            V::ChargeAl,
            V::TemperatureSetpoint,
            V::AcidSetpoint,
            V::SolidsSetpoint,
            V::Temperature,
            V::Ph,
            V::FreeAcid,
            V::Level,
            V::Extraction,
            V::ResidueMassKg,
        ],
        HydroUnit::FeAlRemoval => &[V::Temperature, V::Ph],
        HydroUnit::CoSx | HydroUnit::NiSx => &[V::Ph],
        HydroUnit::NiCrystallizer => &[V::Temperature, V::ProductMassKg, V::ProductNiFraction],
        HydroUnit::CoCrystallizer => &[V::Temperature, V::ProductMassKg, V::ProductCoFraction],
        HydroUnit::LiCarbonate => &[V::Temperature, V::ProductMassKg, V::Purity],
    }
}

/// A method of every unit folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HydroMethod {
    Start,
    Hold,
    Stop,
}

impl HydroMethod {
    pub const ALL: [HydroMethod; 3] = [HydroMethod::Start, HydroMethod::Hold, HydroMethod::Stop];

    pub fn name(self) -> &'static str {
        match self {
            HydroMethod::Start => "Start",
            HydroMethod::Hold => "Hold",
            HydroMethod::Stop => "Stop",
        }
    }

    /// The command code the method gives.
    pub fn code(self) -> u16 {
        use remine_domain::UnitCommand as C;
        match self {
            HydroMethod::Start => C::Start.code(),
            HydroMethod::Hold => C::Hold.code(),
            HydroMethod::Stop => C::Stop.code(),
        }
    }
}

/// The train and its clock.
#[derive(Debug, Clone)]
pub struct HydrometLine {
    train: HydrometTrain,
}

impl HydrometLine {
    pub fn new(seed: u64) -> HydrometLine {
        HydrometLine {
            train: HydrometTrain::new(Noise::new(seed, 0x4D1D_0E7A)),
        }
    }

    pub fn train(&self) -> &HydrometTrain {
        &self.train
    }

    /// The train, to exchange material with the plant.
    pub fn train_mut(&mut self) -> &mut HydrometTrain {
        &mut self.train
    }

    /// The value of a unit's variable, `None` if the unit has no such variable.
    pub fn read(&self, unit: HydroUnit, var: HydroVar) -> Option<f64> {
        if !COMMON_VARS.contains(&var) && !unit_vars(unit).contains(&var) {
            return None;
        }
        let t = &self.train;
        let r = t.readings();
        let c = t.charge();
        let sp = t.setpoints();
        use HydroUnit as U;
        use HydroVar as V;
        Some(match (unit, var) {
            (_, V::State) => f64::from(t.state(unit).code()),
            (_, V::Command) => f64::from(t.control(unit).command_register()),
            (_, V::CommandRejected) => f64::from(t.control(unit).rejected()),
            (_, V::ChargeMassKg) => c.mass_kg,
            (_, V::ChargeNi) => c.ni,
            (_, V::ChargeCo) => c.co,
            (_, V::ChargeLi) => c.li,
            (_, V::ChargeMn) => c.mn,
            (_, V::ChargeCu) => c.cu,
            (_, V::ChargeAl) => c.al,
            (_, V::TemperatureSetpoint) => sp.temperature_c,
            (_, V::AcidSetpoint) => sp.acid_mol_l,
            (_, V::SolidsSetpoint) => sp.solids_g_l,
            (U::Leach, V::Temperature) => r.leach_temp_c,
            (U::Leach, V::Ph) => r.leach_ph,
            (_, V::FreeAcid) => r.free_acid_g_l,
            (_, V::Level) => r.level_pct,
            (_, V::Extraction) => r.extraction,
            (_, V::ResidueMassKg) => r.residue_kg,
            (U::FeAlRemoval, V::Temperature) => r.feal_temp_c,
            (U::FeAlRemoval, V::Ph) => r.feal_ph,
            (U::CoSx, V::Ph) => r.co_sx_ph,
            (U::NiSx, V::Ph) => r.ni_sx_ph,
            (U::NiCrystallizer, V::Temperature) => r.ni_cryst_temp_c,
            (U::CoCrystallizer, V::Temperature) => r.co_cryst_temp_c,
            (U::LiCarbonate, V::Temperature) => r.li2co3_temp_c,
            (U::NiCrystallizer, V::ProductMassKg) => r.ni_product_kg,
            (U::CoCrystallizer, V::ProductMassKg) => r.co_product_kg,
            (U::LiCarbonate, V::ProductMassKg) => r.li2co3_kg,
            (_, V::ProductNiFraction) => r.ni_fraction,
            (_, V::ProductCoFraction) => r.co_fraction,
            (_, V::Purity) => r.li2co3_purity,
            _ => return None,
        })
    }

    /// Write a unit's variable (range-checked by the caller against the
    /// node list). A command is acted upon at once.
    pub fn write(
        &mut self,
        unit: HydroUnit,
        var: HydroVar,
        value: f64,
    ) -> Result<(), WriteRefused> {
        if var.access() != Access::RW || self.read(unit, var).is_none() {
            return Err(WriteRefused::NotWritable { signal: var.name() });
        }
        use HydroVar as V;
        let mut charge = *self.train.charge();
        let mut sp = *self.train.setpoints();
        match var {
            V::Command => {
                if UnitControl::parse(value as u16).is_err() {
                    return Err(WriteRefused::OutOfRange {
                        signal: var.name(),
                        value,
                    });
                }
                let _accepted = self.train.command(unit, value as u16);
                return Ok(());
            }
            V::ChargeMassKg => charge.mass_kg = value,
            V::ChargeNi => charge.ni = value,
            V::ChargeCo => charge.co = value,
            V::ChargeLi => charge.li = value,
            V::ChargeMn => charge.mn = value,
            V::ChargeCu => charge.cu = value,
            V::ChargeAl => charge.al = value,
            V::TemperatureSetpoint => sp.temperature_c = value,
            V::AcidSetpoint => sp.acid_mol_l = value,
            V::SolidsSetpoint => sp.solids_g_l = value,
            _ => return Err(WriteRefused::NotWritable { signal: var.name() }),
        }
        if charge != *self.train.charge()
            && let Err(e) = self.train.set_charge(charge)
        {
            return Err(WriteRefused::Busy {
                signal: var.name(),
                state: e.0.name(),
            });
        }
        self.train.set_setpoints(sp);
        Ok(())
    }

    /// Call a unit's method: the same as writing its command code. Returns
    /// whether the unit accepted it.
    pub fn call(&mut self, unit: HydroUnit, method: HydroMethod) -> bool {
        self.train.command(unit, method.code()).unwrap_or(false)
    }

    pub fn state(&self, unit: HydroUnit) -> UnitState {
        self.train.state(unit)
    }

    pub fn step(&mut self, dt: f64) {
        self.train.step(dt);
    }
}
