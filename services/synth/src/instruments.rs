//! The plant's instruments and labs, each with its method and its noise
//! (domain brief section 6), and the deliberate biases a test may set.
//!
//! Mass instruments record a [`MassMethod`] with the method's typical
//! relative standard deviation ([`MassMethod::typical_relative_sigma`], the
//! upper end of the brief's range: weighbridge 0.2 %, belt weigher 0.5 %,
//! tank volume 2 %...), and the generator draws its noise with that same
//! sigma, so what the store says about an instrument is true. Assays carry
//! a relative sigma of their own: black mass 3 % (2-5 % with sampling),
//! solutions 2 % (ICP 1-3 %), products 0.5 % (as the simulator's product
//! assay), side fractions, residues and the shredder's filter dust and
//! condensate 5 % (the upper end of the brief's 2-5 % for black mass
//! with sampling: a dust and a liquid are sampled less evenly).

use crate::SynthError;
use remine_domain::MassMethod;

/// One instrument or lab method of the synthetic plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Instrument {
    /// Packs at intake.
    Weighbridge,
    /// Modules and cells at intake.
    IntakeScale,
    /// The shredder's feed belt: what each discharge batch weighed going in.
    FeedBelt,
    /// The black-mass belt weigher (with a moisture determination).
    BlackMassBelt,
    /// Side-fraction containers (Cu, Al, steel, plastics) and the bins of
    /// the shredder's dust filter and electrolyte condenser.
    SideScale,
    /// Black mass charged to a leach batch, in big bags (with moisture).
    LeachFeedScale,
    /// The pregnant-leach-solution tank (volume times density).
    SolutionTank,
    /// Product bags.
    ProductScale,
    /// Filter cakes: leach residue and the Fe/Al/Cu cake (with moisture).
    ResidueScale,
    /// The effluent's magnetic flow meter.
    EffluentMeter,
    /// Black mass: sampling, digestion and ICP-OES.
    BlackMassAssay,
    /// Side fractions: XRF.
    SideAssay,
    /// Leach solutions: ICP-OES.
    SolutionAssay,
    /// Products: the payable metal.
    ProductAssay,
    /// Filter cakes: digestion and ICP-OES.
    ResidueAssay,
    /// Effluent: ICP-OES.
    EffluentAssay,
    /// Filter dust and condensate: sampled, digested, ICP-OES.
    DustAssay,
}

impl Instrument {
    pub const ALL: [Instrument; 17] = [
        Instrument::Weighbridge,
        Instrument::IntakeScale,
        Instrument::FeedBelt,
        Instrument::BlackMassBelt,
        Instrument::SideScale,
        Instrument::LeachFeedScale,
        Instrument::SolutionTank,
        Instrument::ProductScale,
        Instrument::ResidueScale,
        Instrument::EffluentMeter,
        Instrument::BlackMassAssay,
        Instrument::SideAssay,
        Instrument::SolutionAssay,
        Instrument::ProductAssay,
        Instrument::ResidueAssay,
        Instrument::EffluentAssay,
        Instrument::DustAssay,
    ];

    /// The name recorded with every reading (the mass's instrument, the
    /// assay's method), and used by `--bias`.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::Weighbridge => "WB-1",
            Instrument::IntakeScale => "PS-intake",
            Instrument::FeedBelt => "BW-feed",
            Instrument::BlackMassBelt => "BW-bm",
            Instrument::SideScale => "PS-side",
            Instrument::LeachFeedScale => "PS-leach-feed",
            Instrument::SolutionTank => "TK-pls",
            Instrument::ProductScale => "PS-product",
            Instrument::ResidueScale => "PS-residue",
            Instrument::EffluentMeter => "FM-effluent",
            Instrument::BlackMassAssay => "ICP-bm",
            Instrument::SideAssay => "XRF-side",
            Instrument::SolutionAssay => "ICP-pls",
            Instrument::ProductAssay => "ICP-product",
            Instrument::ResidueAssay => "ICP-residue",
            Instrument::EffluentAssay => "ICP-effluent",
            Instrument::DustAssay => "ICP-dust",
        }
    }

    pub fn from_name(s: &str) -> Option<Instrument> {
        Instrument::ALL.into_iter().find(|i| i.name() == s)
    }

    /// How a mass instrument weighs; `None` for a lab method.
    pub fn mass_method(self) -> Option<MassMethod> {
        match self {
            Instrument::Weighbridge => Some(MassMethod::Weighbridge),
            Instrument::IntakeScale
            | Instrument::SideScale
            | Instrument::LeachFeedScale
            | Instrument::ProductScale
            | Instrument::ResidueScale => Some(MassMethod::PlatformScale),
            Instrument::FeedBelt | Instrument::BlackMassBelt => Some(MassMethod::BeltWeigher),
            Instrument::SolutionTank => Some(MassMethod::TankVolume),
            Instrument::EffluentMeter => Some(MassMethod::FlowMeter),
            _ => None,
        }
    }

    /// The relative standard deviation (1 sigma) of one reading.
    pub fn relative_sigma(self) -> f64 {
        if let Some(method) = self.mass_method() {
            return method.typical_relative_sigma();
        }
        match self {
            Instrument::BlackMassAssay => 0.03,
            Instrument::SolutionAssay => 0.02,
            Instrument::ProductAssay => 0.005,
            Instrument::EffluentAssay => 0.03,
            _ => 0.05,
        }
    }

    /// The lab that reports an assay.
    pub fn lab(self) -> &'static str {
        match self {
            Instrument::ProductAssay => "QC lab",
            _ => "site lab",
        }
    }
}

/// A deliberate, constant relative error of one instrument, for testing
/// gross-error detection: every reading is `true * (1 + relative + noise)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bias {
    pub instrument: Instrument,
    pub relative: f64,
}

impl Bias {
    /// Parses `INSTRUMENT=+8%` (or `-2.5%`, `8%`); the instrument by the
    /// name its readings carry (`WB-1`, `BW-bm`, `ICP-pls`...).
    pub fn parse(spec: &str) -> Result<Bias, SynthError> {
        let bad = |why: String| SynthError::Bias {
            spec: spec.to_string(),
            why,
        };
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected INSTRUMENT=+N%".into()))?;
        let instrument = Instrument::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Instrument::ALL.iter().map(|i| i.name()).collect();
            bad(format!(
                "unknown instrument '{}'; one of {}",
                name.trim(),
                names.join(", ")
            ))
        })?;
        let pct = value
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| bad(format!("'{}' is not a percentage like +8%", value.trim())))?;
        let pct: f64 = pct
            .trim()
            .trim_start_matches('+')
            .parse()
            .map_err(|_| bad(format!("'{}' is not a percentage like +8%", value.trim())))?;
        if !(pct.is_finite() && pct.abs() < 50.0) {
            return Err(bad(format!("{pct} % is outside -50..50 %")));
        }
        Ok(Bias {
            instrument,
            relative: pct / 100.0,
        })
    }
}
