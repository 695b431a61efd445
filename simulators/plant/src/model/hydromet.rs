//! The hydrometallurgy train: one batch of black mass leached, purified,
//! separated by solvent extraction and crystallised into nickel sulphate,
//! cobalt sulphate and lithium carbonate (domain brief 3.3).
//!
//! Start on Leach begins the batch. Leach runs the kinetics
//! `dX/dt = k(T) ([H+]/2 M)^0.7 (1 - X)` with `k = k75 exp(-Ea/R (1/T - 1/348.15 K))`,
//! `k75` = 0.077 /min and `Ea` = 45 kJ/mol (so 99 % dissolves in 60 min at
//! 75 C), until X reaches 0.99 or two hours have passed. Then FeAlRemoval,
//! CoSX, NiSX, NiCrystallizer, CoCrystallizer and LiCarbonate run in turn for
//! a few minutes each. Recoveries and losses are drawn per batch from the
//! brief's ranges: leach extraction, co-precipitation in Fe/Al removal (60 %
//! of it won back by washing the cake), SX recoveries, and crystallisers run
//! with mother-liquor recycle, whose overall recovery with per-pass yield `y`
//! and bleed `b` is `y / (y + (1 - y) b)`.
//!
//! Material: on Start the train asks the plant for the black mass of the
//! charge ([`HydrometTrain::take_feed_request`]) and the plant supplies its
//! true material ([`HydrometTrain::supply`]; without one the written charge
//! is taken as the truth). Every tracked element then ends in exactly one
//! of six outputs ([`HydroOutput`]): undissolved in the leach residue,
//! co-precipitated in the Fe/Al/Cu cake (with Al, Fe, P and the cemented
//! Cu), in a product, or in the effluent (SX losses and crystalliser
//! bleeds). The PLC shows product masses through scales with a drift and a
//! ticket error of about 0.1 %, and product assays with a sampling error
//! of 0.5 % (relative), drawn once per batch.

use super::material::Material;
use super::unit::{UnitControl, UnknownCommand};
use crate::noise::{Drift, Noise, first_order};
use remine_domain::{Element, UnitCommand, UnitState};

/// The units of the train, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HydroUnit {
    Leach,
    FeAlRemoval,
    CoSx,
    NiSx,
    NiCrystallizer,
    CoCrystallizer,
    LiCarbonate,
}

impl HydroUnit {
    pub const ALL: [HydroUnit; 7] = [
        HydroUnit::Leach,
        HydroUnit::FeAlRemoval,
        HydroUnit::CoSx,
        HydroUnit::NiSx,
        HydroUnit::NiCrystallizer,
        HydroUnit::CoCrystallizer,
        HydroUnit::LiCarbonate,
    ];

    /// The unit's folder name in the OPC UA address space.
    pub fn name(self) -> &'static str {
        match self {
            HydroUnit::Leach => "Leach",
            HydroUnit::FeAlRemoval => "FeAlRemoval",
            HydroUnit::CoSx => "CoSX",
            HydroUnit::NiSx => "NiSX",
            HydroUnit::NiCrystallizer => "NiCrystallizer",
            HydroUnit::CoCrystallizer => "CoCrystallizer",
            HydroUnit::LiCarbonate => "LiCarbonate",
        }
    }

    fn index(self) -> usize {
        match self {
            HydroUnit::Leach => 0,
            HydroUnit::FeAlRemoval => 1,
            HydroUnit::CoSx => 2,
            HydroUnit::NiSx => 3,
            HydroUnit::NiCrystallizer => 4,
            HydroUnit::CoCrystallizer => 5,
            HydroUnit::LiCarbonate => 6,
        }
    }

    /// How long the unit runs, in simulated seconds (Leach: until done).
    pub fn duration_s(self) -> f64 {
        match self {
            HydroUnit::Leach => LEACH_MAX_S,
            HydroUnit::FeAlRemoval => 240.0,
            HydroUnit::CoSx => 180.0,
            HydroUnit::NiSx => 180.0,
            HydroUnit::NiCrystallizer => 240.0,
            HydroUnit::CoCrystallizer => 180.0,
            HydroUnit::LiCarbonate => 300.0,
        }
    }
}

const K75_PER_MIN: f64 = 0.077;
const EA_J_PER_MOL: f64 = 45_000.0;
const R_J_PER_MOL_K: f64 = 8.314;
const T_REF_K: f64 = 348.15;
const ACID_ORDER: f64 = 0.7;
/// Leach ends at this extraction progress...
pub const LEACH_END_X: f64 = 0.99;
/// ...or after two hours, whichever comes first.
pub const LEACH_MAX_S: f64 = 7200.0;
const TANK_TAU_S: f64 = 1200.0;
const TANK_M3: f64 = 20.0;
const HEEL_PCT: f64 = 10.0;
const FILL_S: f64 = 300.0;
const H2SO4_G_PER_MOL: f64 = 98.08;
/// Metal leached per unit of metal in the residue formula: dissolved
/// cathode carries its oxygen with it.
const OXIDE_FACTOR: f64 = 1.45;
/// Li mass fraction of pure Li2CO3.
pub const LI_IN_LI2CO3: f64 = 2.0 * 6.94 / 73.89;
/// Share of the Fe/Al cake's co-precipitated metal won back by washing.
const CAKE_WASH_RECOVERY: f64 = 0.6;

/// The leach rate constant in 1/min at `temp_c` and acid strength
/// `acid_mol_l` (the calibration is at 2.0 mol/L).
pub fn leach_rate_per_min(temp_c: f64, acid_mol_l: f64) -> f64 {
    let t_k = temp_c + 273.15;
    let arrhenius = (-EA_J_PER_MOL / R_J_PER_MOL_K * (1.0 / t_k - 1.0 / T_REF_K)).exp();
    K75_PER_MIN * arrhenius * (acid_mol_l.max(0.0) / 2.0).powf(ACID_ORDER)
}

/// Overall recovery of a crystalliser with mother-liquor recycle.
pub fn recycle_recovery(per_pass: f64, bleed: f64) -> f64 {
    per_pass / (per_pass + (1.0 - per_pass) * bleed)
}

/// The leach charge: black-mass mass and its dry element mass fractions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LeachCharge {
    pub mass_kg: f64,
    pub ni: f64,
    pub co: f64,
    pub li: f64,
    pub mn: f64,
    pub cu: f64,
    pub al: f64,
}

impl LeachCharge {
    /// The charge as a material: the written fractions, the rest untracked.
    pub fn material(&self) -> Material {
        Material::with_fractions(
            self.mass_kg,
            &[
                (Element::Ni, self.ni),
                (Element::Co, self.co),
                (Element::Li, self.li),
                (Element::Mn, self.mn),
                (Element::Cu, self.cu),
                (Element::Al, self.al),
            ],
        )
    }

    /// A charge the train can run: some mass, fractions that sum to at most 1.
    pub fn is_valid(&self) -> bool {
        let f = [self.ni, self.co, self.li, self.mn, self.cu, self.al];
        self.mass_kg > 0.0
            && f.iter().all(|x| (0.0..=1.0).contains(x))
            && f.iter().sum::<f64>() <= 1.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeachSetpoints {
    pub temperature_c: f64,
    pub acid_mol_l: f64,
    pub solids_g_l: f64,
}

impl Default for LeachSetpoints {
    fn default() -> Self {
        LeachSetpoints {
            temperature_c: 75.0,
            acid_mol_l: 2.0,
            solids_g_l: 120.0,
        }
    }
}

/// The per-batch draws from the brief's ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchDraws {
    pub extraction_ni: f64,
    pub extraction_co: f64,
    pub extraction_mn: f64,
    pub extraction_li: f64,
    pub extraction_cu: f64,
    pub extraction_al: f64,
    pub extraction_fe: f64,
    pub coprecip_ni: f64,
    pub coprecip_co: f64,
    pub coprecip_li: f64,
    pub sx_co: f64,
    pub sx_ni: f64,
    pub sx_li_loss: f64,
    pub ni_cryst: f64,
    pub co_cryst: f64,
    pub li2co3: f64,
    pub ni_fraction: f64,
    pub co_fraction: f64,
    pub li2co3_purity: f64,
    pub end_free_acid_g_l: f64,
}

impl BatchDraws {
    pub fn draw(n: &mut Noise) -> BatchDraws {
        BatchDraws {
            extraction_ni: n.uniform(0.97, 0.995),
            extraction_co: n.uniform(0.97, 0.995),
            extraction_mn: n.uniform(0.97, 0.995),
            extraction_li: n.uniform(0.98, 0.995),
            extraction_cu: n.uniform(0.30, 0.90),
            extraction_al: n.uniform(0.60, 0.90),
            extraction_fe: n.uniform(0.005, 0.03),
            coprecip_ni: n.uniform(0.02, 0.10),
            coprecip_co: n.uniform(0.01, 0.02),
            coprecip_li: n.uniform(0.02, 0.10),
            sx_co: n.uniform(0.985, 0.995),
            sx_ni: n.uniform(0.99, 0.998),
            sx_li_loss: n.uniform(0.005, 0.015),
            ni_cryst: recycle_recovery(n.uniform(0.60, 0.80), n.uniform(0.05, 0.10)),
            co_cryst: recycle_recovery(n.uniform(0.60, 0.80), n.uniform(0.05, 0.10)),
            li2co3: recycle_recovery(n.uniform(0.80, 0.90), n.uniform(0.30, 0.60)),
            ni_fraction: n.uniform(0.221, 0.2233),
            co_fraction: n.uniform(0.205, 0.2097),
            li2co3_purity: n.uniform(0.995, 0.999),
            end_free_acid_g_l: n.uniform(20.0, 40.0),
        }
    }

    /// Element recovered into the products per element in the charge, for a
    /// leach that reached progress `x`: (Ni, Co, Li).
    pub fn overall(&self, x: f64) -> (f64, f64, f64) {
        let wash = 1.0 - CAKE_WASH_RECOVERY;
        let ni =
            self.extraction_ni * x * (1.0 - self.coprecip_ni * wash) * self.sx_ni * self.ni_cryst;
        let co =
            self.extraction_co * x * (1.0 - self.coprecip_co * wash) * self.sx_co * self.co_cryst;
        let li = self.extraction_li
            * x
            * (1.0 - self.coprecip_li * wash)
            * (1.0 - self.sx_li_loss)
            * self.li2co3;
        (ni, co, li)
    }
}

/// Where the elements of a leach charge end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HydroOutput {
    NiSulphate,
    CoSulphate,
    Li2Co3,
    /// Undissolved: graphite, most Fe and P, unleached metal.
    LeachResidue,
    /// The Fe/Al removal cake with the cemented Cu and co-precipitated metal.
    FeAlCuCake,
    /// SX losses, crystalliser bleeds and the Mn, to effluent treatment.
    Effluent,
}

impl HydroOutput {
    pub const ALL: [HydroOutput; 6] = [
        HydroOutput::NiSulphate,
        HydroOutput::CoSulphate,
        HydroOutput::Li2Co3,
        HydroOutput::LeachResidue,
        HydroOutput::FeAlCuCake,
        HydroOutput::Effluent,
    ];

    /// The output's name in the ground truth.
    pub fn name(self) -> &'static str {
        match self {
            HydroOutput::NiSulphate => "niso4_6h2o",
            HydroOutput::CoSulphate => "coso4_7h2o",
            HydroOutput::Li2Co3 => "li2co3",
            HydroOutput::LeachResidue => "leach_residue",
            HydroOutput::FeAlCuCake => "feal_cu_cake",
            HydroOutput::Effluent => "effluent",
        }
    }
}

/// What the train asks of the plant when Leach starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeachRequest {
    pub charge: LeachCharge,
}

/// A cleared batch as the truth sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HydroBatchEnd {
    /// True outputs in [`HydroOutput::ALL`] order; they sum to the charge
    /// element by element (the rest is not conserved: reagents join it).
    pub outputs: [Material; 6],
    /// Product masses the scales showed: Ni, Co sulphates and Li2CO3.
    pub measured_kg: [f64; 3],
    /// Product assays the lab reported: Ni and Co fractions, Li2CO3 purity.
    pub measured_assay: [f64; 3],
}

/// Relative standard deviation of a product scale's ticket.
const SCALE_SIGMA: f64 = 0.001;
/// Relative standard deviation of a product assay, sampling included.
const PRODUCT_ASSAY_SIGMA: f64 = 0.005;

/// What the train's instruments read at the end of the last step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HydrometReadings {
    pub leach_temp_c: f64,
    pub leach_ph: f64,
    pub free_acid_g_l: f64,
    pub level_pct: f64,
    pub extraction: f64,
    pub residue_kg: f64,
    pub feal_temp_c: f64,
    pub feal_ph: f64,
    pub co_sx_ph: f64,
    pub ni_sx_ph: f64,
    pub ni_cryst_temp_c: f64,
    pub co_cryst_temp_c: f64,
    pub li2co3_temp_c: f64,
    pub ni_product_kg: f64,
    pub ni_fraction: f64,
    pub co_product_kg: f64,
    pub co_fraction: f64,
    pub li2co3_kg: f64,
    pub li2co3_purity: f64,
}

/// Why a change of the charge is refused: the train is not at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotIdle(pub UnitState);

/// A temperature or pH that approaches a target: its running and idle values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Loop {
    value: f64,
    running: f64,
    idle: f64,
    tau_s: f64,
}

impl Loop {
    fn new(running: f64, idle: f64, tau_s: f64) -> Loop {
        Loop {
            value: idle,
            running,
            idle,
            tau_s,
        }
    }

    fn step(&mut self, active: bool, dt: f64) {
        let target = if active { self.running } else { self.idle };
        self.value = first_order(self.value, target, self.tau_s, dt);
    }
}

/// The temperature and pH loops of the units after Leach.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Loops {
    feal_temp: Loop,
    feal_ph: Loop,
    co_sx_ph: Loop,
    ni_sx_ph: Loop,
    ni_cryst_temp: Loop,
    co_cryst_temp: Loop,
    li2co3_temp: Loop,
}

impl Loops {
    fn new() -> Loops {
        Loops {
            feal_temp: Loop::new(70.0, 40.0, 600.0),
            feal_ph: Loop::new(4.75, 3.0, 180.0),
            co_sx_ph: Loop::new(5.25, 4.0, 180.0),
            ni_sx_ph: Loop::new(6.5, 5.0, 180.0),
            ni_cryst_temp: Loop::new(45.0, 30.0, 600.0),
            co_cryst_temp: Loop::new(25.0, 22.0, 600.0),
            li2co3_temp: Loop::new(92.0, 60.0, 600.0),
        }
    }

    fn step(&mut self, running: impl Fn(HydroUnit) -> bool, dt: f64) {
        self.feal_temp.step(running(HydroUnit::FeAlRemoval), dt);
        self.feal_ph.step(running(HydroUnit::FeAlRemoval), dt);
        self.co_sx_ph.step(running(HydroUnit::CoSx), dt);
        self.ni_sx_ph.step(running(HydroUnit::NiSx), dt);
        self.ni_cryst_temp
            .step(running(HydroUnit::NiCrystallizer), dt);
        self.co_cryst_temp
            .step(running(HydroUnit::CoCrystallizer), dt);
        self.li2co3_temp.step(running(HydroUnit::LiCarbonate), dt);
    }
}

/// The whole train and its batch.
#[derive(Debug, Clone)]
pub struct HydrometTrain {
    units: [UnitControl; 7],
    elapsed_s: [f64; 7],
    charge: LeachCharge,
    setpoints: LeachSetpoints,
    draws: Option<BatchDraws>,
    /// The batch's outputs as of the last step (what Reset hands over).
    final_outputs: [Material; 6],
    /// What the scales and the lab showed as of the last step.
    final_measured: ([f64; 3], [f64; 3]),
    tank_temp_c: f64,
    ph: f64,
    free_acid_g_l: f64,
    level_pct: f64,
    x: f64,
    loops: Loops,
    readings: HydrometReadings,
    noise: Noise,
    drift: Drift,
    feed_requested: bool,
    /// The stream of the batches' draws, apart from the readings' noise.
    batch_noise: Noise,
    material: Option<Material>,
    ticket_error: [f64; 4],
    assay_error: [f64; 3],
    scale_drift: Drift,
    batch_end: Option<HydroBatchEnd>,
}

impl HydrometTrain {
    /// An idle train; the leach tank is pre-heated near its setpoint.
    pub fn new(mut noise: Noise) -> HydrometTrain {
        let batch_noise = noise.fork();
        let sp = LeachSetpoints::default();
        let mut t = HydrometTrain {
            units: Default::default(),
            elapsed_s: [0.0; 7],
            charge: LeachCharge::default(),
            setpoints: sp,
            draws: None,
            final_outputs: [Material::NONE; 6],
            final_measured: ([0.0; 3], [0.0; 3]),
            tank_temp_c: sp.temperature_c - 1.5,
            ph: 1.0,
            free_acid_g_l: 10.0,
            level_pct: HEEL_PCT,
            x: 0.0,
            loops: Loops::new(),
            readings: HydrometReadings::default(),
            noise,
            drift: Drift::new(0.1, 900.0),
            feed_requested: false,
            batch_noise,
            material: None,
            ticket_error: [0.0; 4],
            assay_error: [0.0; 3],
            scale_drift: Drift::new(0.001, 8.0 * 3600.0),
            batch_end: None,
        };
        t.read_instruments();
        t
    }

    pub fn control(&self, unit: HydroUnit) -> &UnitControl {
        &self.units[unit.index()]
    }

    pub fn state(&self, unit: HydroUnit) -> UnitState {
        self.units[unit.index()].state()
    }

    pub fn charge(&self) -> &LeachCharge {
        &self.charge
    }

    /// Describe the leach charge; only while Leach is Idle.
    pub fn set_charge(&mut self, charge: LeachCharge) -> Result<(), NotIdle> {
        let leach = self.state(HydroUnit::Leach);
        if leach != UnitState::Idle {
            return Err(NotIdle(leach));
        }
        self.charge = charge;
        Ok(())
    }

    pub fn setpoints(&self) -> &LeachSetpoints {
        &self.setpoints
    }

    pub fn set_setpoints(&mut self, sp: LeachSetpoints) {
        self.setpoints = sp;
    }

    /// The batch's draws, once Leach has started.
    pub fn draws(&self) -> Option<&BatchDraws> {
        self.draws.as_ref()
    }

    pub fn readings(&self) -> &HydrometReadings {
        &self.readings
    }

    /// The charge a started batch still waits for; taken once.
    pub fn take_feed_request(&mut self) -> Option<LeachRequest> {
        if !std::mem::take(&mut self.feed_requested) {
            return None;
        }
        Some(LeachRequest {
            charge: self.charge,
        })
    }

    /// The true black mass of the started batch.
    pub fn supply(&mut self, material: Material) {
        self.material = Some(material);
    }

    /// The true material of the running batch: as supplied, else the
    /// written charge.
    pub fn material(&self) -> Material {
        self.material.unwrap_or_else(|| self.charge.material())
    }

    /// The last cleared batch, taken once.
    pub fn take_batch_end(&mut self) -> Option<HydroBatchEnd> {
        self.batch_end.take()
    }

    /// Where the batch's elements are now, in [`HydroOutput::ALL`] order:
    /// products as far as the crystallisers have come, the rest of what
    /// dissolved in the effluent.
    pub fn true_outputs(&self) -> [Material; 6] {
        let Some(d) = self.draws else {
            return [Material::NONE; 6];
        };
        let feed = self.material();
        let x = self.x;
        let wash = 1.0 - CAKE_WASH_RECOVERY;
        let extraction = |e: Element| match e {
            Element::Ni => d.extraction_ni,
            Element::Co => d.extraction_co,
            Element::Mn => d.extraction_mn,
            Element::Li => d.extraction_li,
            Element::Cu => d.extraction_cu,
            Element::Al => d.extraction_al,
            Element::Fe | Element::P => d.extraction_fe,
            Element::Graphite => 0.0,
        };
        let dissolved = feed.map(|e, kg| e.map_or(0.0, |e| kg * extraction(e) * x));
        let cake_share = |e: Element| match e {
            Element::Ni => d.coprecip_ni * wash,
            Element::Co => d.coprecip_co * wash,
            Element::Li => d.coprecip_li * wash,
            Element::Cu | Element::Al | Element::Fe | Element::P => 1.0,
            Element::Mn | Element::Graphite => 0.0,
        };
        let cake = dissolved.map(|e, kg| e.map_or(0.0, |e| kg * cake_share(e)));
        let (ni, co, li) = d.overall(x);
        let ni_kg = feed.element(Element::Ni) * ni * self.progress(HydroUnit::NiCrystallizer);
        let co_kg = feed.element(Element::Co) * co * self.progress(HydroUnit::CoCrystallizer);
        let li_kg = feed.element(Element::Li) * li * self.progress(HydroUnit::LiCarbonate);
        let product = |e: Element, kg: f64, fraction: f64| {
            let mass = if fraction > 0.0 { kg / fraction } else { kg };
            Material::of(&[(e, kg)], mass - kg)
        };
        let products = [
            product(Element::Ni, ni_kg, d.ni_fraction),
            product(Element::Co, co_kg, d.co_fraction),
            product(Element::Li, li_kg, LI_IN_LI2CO3 * d.li2co3_purity),
        ];
        let in_products = products.iter().fold(Material::NONE, |a, m| a.plus(m));
        let dissolved_metal: f64 = Element::ALL.iter().map(|e| dissolved.element(*e)).sum();
        let undissolved = feed.minus(&dissolved);
        let residue = undissolved.map(|e, kg| match e {
            Some(_) => kg,
            // The oxygen of the dissolved oxides leaves with them.
            None => (kg - (OXIDE_FACTOR - 1.0) * dissolved_metal).max(0.0),
        });
        let effluent = dissolved
            .minus(&cake)
            .minus(&in_products)
            .map(|e, kg| if e.is_some() { kg } else { 0.0 });
        let cake = cake.map(|e, kg| if e.is_some() { kg } else { 0.0 });
        [
            products[0],
            products[1],
            products[2],
            residue,
            cake,
            effluent,
        ]
    }

    /// The leach progress X (0..1).
    pub fn extraction(&self) -> f64 {
        self.x
    }

    fn at_rest(&self) -> bool {
        self.units.iter().all(|u| {
            matches!(
                u.state(),
                UnitState::Idle | UnitState::Complete | UnitState::Stopped | UnitState::Aborted
            )
        })
    }

    /// A command code written to a unit (or a method called on it). Returns
    /// whether it was accepted. Start is for Leach only (the train sequences
    /// the rest) and needs a valid charge and a train at rest; Reset is for
    /// Leach only and resets the whole train.
    pub fn command(&mut self, unit: HydroUnit, code: u16) -> Result<bool, UnknownCommand> {
        let cmd = UnitControl::parse(code)?;
        let i = unit.index();
        self.units[i].record(code);
        let Some(cmd) = cmd else {
            return Ok(true);
        };
        let allowed = match cmd {
            UnitCommand::Start => {
                unit == HydroUnit::Leach
                    && self.charge.is_valid()
                    && self.units.iter().all(|u| u.state() == UnitState::Idle)
            }
            UnitCommand::Reset => unit == HydroUnit::Leach && self.at_rest(),
            _ => true,
        };
        if !allowed {
            self.units[i].refuse(cmd);
            return Ok(false);
        }
        let Some(next) = self.units[i].apply(cmd) else {
            return Ok(false);
        };
        match (cmd, next) {
            (UnitCommand::Start, UnitState::Running) => self.begin_batch(),
            (UnitCommand::Reset, _) => {
                for u in self.units.iter_mut().skip(1) {
                    if u.state() != UnitState::Idle {
                        u.force(UnitCommand::Reset);
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn begin_batch(&mut self) {
        self.draws = Some(BatchDraws::draw(&mut self.batch_noise));
        self.feed_requested = true;
        self.material = None;
        self.ticket_error = [0.0; 4].map(|_| self.batch_noise.gauss(SCALE_SIGMA));
        self.assay_error = [0.0; 3].map(|_| self.batch_noise.gauss(PRODUCT_ASSAY_SIGMA));
        self.elapsed_s = [0.0; 7];
        self.x = 0.0;
        self.final_outputs = [Material::NONE; 6];
        self.free_acid_g_l = self.setpoints.acid_mol_l * H2SO4_G_PER_MOL;
    }

    /// The power failed: every unit is Idle again and a batch under way
    /// ends where it is (what dissolved so far goes to the effluent and the
    /// products made so far stay made).
    pub fn power_lost(&mut self) {
        if self.draws.is_some() && self.material.is_some() {
            self.final_outputs = self.true_outputs();
        }
        self.clear_batch();
    }

    fn clear_batch(&mut self) {
        if self.draws.is_some() {
            self.batch_end = Some(HydroBatchEnd {
                outputs: self.final_outputs,
                measured_kg: self.final_measured.0,
                measured_assay: self.final_measured.1,
            });
        }
        self.feed_requested = false;
        self.material = None;
        self.charge = LeachCharge::default();
        self.draws = None;
        self.elapsed_s = [0.0; 7];
        self.x = 0.0;
        self.final_outputs = [Material::NONE; 6];
    }

    /// Advance `dt` simulated seconds (the caller sub-steps to about a second).
    pub fn step(&mut self, dt: f64) {
        for i in 0..self.units.len() {
            if self.units[i].step(dt) == Some(UnitState::Idle) && i == 0 {
                self.clear_batch();
            }
        }
        self.drift.step(dt, &mut self.noise);
        self.tank_temp_c = first_order(
            self.tank_temp_c,
            self.setpoints.temperature_c,
            TANK_TAU_S,
            dt,
        );
        self.step_leach(dt);
        let units = &self.units;
        self.loops
            .step(|u| units[u.index()].state() == UnitState::Running, dt);
        for unit in HydroUnit::ALL.into_iter().skip(1) {
            let i = unit.index();
            if self.units[i].state() == UnitState::Running {
                self.elapsed_s[i] += dt;
                if self.elapsed_s[i] >= unit.duration_s() {
                    self.units[i].complete();
                    if let Some(next) = HydroUnit::ALL.get(i + 1) {
                        self.units[next.index()].force(UnitCommand::Start);
                    }
                }
            }
        }
        let resetting = self.units.iter().any(|u| u.state() == UnitState::Resetting);
        self.read_instruments();
        if self.draws.is_some() && !resetting {
            let r = &self.readings;
            self.final_outputs = self.true_outputs();
            self.final_measured = (
                [r.ni_product_kg, r.co_product_kg, r.li2co3_kg],
                [r.ni_fraction, r.co_fraction, r.li2co3_purity],
            );
        }
    }

    fn step_leach(&mut self, dt: f64) {
        let leach = self.units[0].state();
        let sp = self.setpoints;
        let heel_acid = 10.0;
        if leach == UnitState::Running {
            self.elapsed_s[0] += dt;
            let k = leach_rate_per_min(self.tank_temp_c, sp.acid_mol_l) / 60.0;
            self.x = 1.0 - (1.0 - self.x) * (-k * dt).exp();
            let slurry_m3 = self.charge.mass_kg / sp.solids_g_l.max(1.0);
            let target = (HEEL_PCT + 100.0 * slurry_m3 / TANK_M3).min(100.0);
            let rate = (target - HEEL_PCT) / FILL_S;
            self.level_pct = (self.level_pct + rate * dt).min(target);
            if let Some(d) = &self.draws {
                let start = sp.acid_mol_l * H2SO4_G_PER_MOL;
                let end = d.end_free_acid_g_l.min(start);
                self.free_acid_g_l = start - (start - end) * self.x / LEACH_END_X;
            }
            if self.x >= LEACH_END_X || self.elapsed_s[0] >= LEACH_MAX_S {
                self.finish_leach();
            }
        } else {
            // Between batches the tank holds a heel of dilute acid; after a
            // leach its slurry is pumped on to Fe/Al removal.
            self.level_pct = (self.level_pct - dt * 90.0 / FILL_S).max(HEEL_PCT);
            self.free_acid_g_l = first_order(self.free_acid_g_l, heel_acid, 600.0, dt);
        }
        let h = (2.0 * self.free_acid_g_l / H2SO4_G_PER_MOL).max(1e-4);
        self.ph = first_order(self.ph, -h.log10(), 180.0, dt);
    }

    fn finish_leach(&mut self) {
        self.units[0].complete();
        self.units[HydroUnit::FeAlRemoval.index()].force(UnitCommand::Start);
    }

    /// How far a unit has come through its run: 0 before, 1 when complete.
    fn progress(&self, unit: HydroUnit) -> f64 {
        let i = unit.index();
        match self.units[i].state() {
            UnitState::Idle | UnitState::Resetting => 0.0,
            UnitState::Complete => 1.0,
            _ => (self.elapsed_s[i] / unit.duration_s()).clamp(0.0, 1.0),
        }
    }

    fn read_instruments(&mut self) {
        let (nif, cof, pur) = match &self.draws {
            Some(d) => (
                d.ni_fraction * (1.0 + self.assay_error[0]),
                d.co_fraction * (1.0 + self.assay_error[1]),
                // Purity is assayed by difference: an absolute error.
                (d.li2co3_purity + self.assay_error[2] * 0.1).min(1.0),
            ),
            None => (0.0, 0.0, 0.0),
        };
        let started = |u: HydroUnit| self.progress(u) > 0.0;
        let truth = self.true_outputs();
        let scale =
            |i: usize, kg: f64| kg * (1.0 + self.scale_drift.value() + self.ticket_error[i]);
        let ni_product_kg = scale(0, truth[0].total());
        let co_product_kg = scale(1, truth[1].total());
        let li2co3_kg = scale(2, truth[2].total());
        let residue = scale(3, truth[3].total());
        let ni_fraction = if started(HydroUnit::NiCrystallizer) {
            nif
        } else {
            0.0
        };
        let co_fraction = if started(HydroUnit::CoCrystallizer) {
            cof
        } else {
            0.0
        };
        let li2co3_purity = if started(HydroUnit::LiCarbonate) {
            pur
        } else {
            0.0
        };
        let n = &mut self.noise;
        let drift = self.drift.value();
        let l = &self.loops;
        self.readings = HydrometReadings {
            leach_temp_c: self.tank_temp_c + drift + n.gauss(0.05),
            leach_ph: self.ph + n.gauss(0.01),
            free_acid_g_l: (self.free_acid_g_l + n.gauss(0.2)).max(0.0),
            level_pct: (self.level_pct + n.gauss(0.1)).clamp(0.0, 100.0),
            extraction: self.x,
            residue_kg: residue,
            feal_temp_c: l.feal_temp.value + n.gauss(0.05),
            feal_ph: l.feal_ph.value + n.gauss(0.01),
            co_sx_ph: l.co_sx_ph.value + n.gauss(0.01),
            ni_sx_ph: l.ni_sx_ph.value + n.gauss(0.01),
            ni_cryst_temp_c: l.ni_cryst_temp.value + n.gauss(0.05),
            co_cryst_temp_c: l.co_cryst_temp.value + n.gauss(0.05),
            li2co3_temp_c: l.li2co3_temp.value + n.gauss(0.05),
            ni_product_kg,
            ni_fraction,
            co_product_kg,
            co_fraction,
            li2co3_kg,
            li2co3_purity,
        };
    }
}
