//! What a plant year is generated from: the number of input units, the
//! seed, the calendar year and any deliberate instrument biases, and the
//! fixed ratios that scale the rest of the year with the number of units.

use crate::{Bias, SynthError};

/// Input units per shredder campaign (one black-mass lot each): 200,000
/// units make about 5,000 black-mass lots.
pub const UNITS_PER_CAMPAIGN: usize = 40;
/// Units discharged together (the stations of a discharge wave, or a brine bath).
pub const UNITS_PER_DISCHARGE_BATCH: usize = 8;
/// Leach batches made, on average, from one black-mass lot.
pub const LEACH_BATCHES_PER_BLACK_MASS_LOT: usize = 4;
/// Leach batches whose crystals are blended into one product lot.
pub const LEACH_BATCHES_PER_PRODUCT_LOT: usize = 10;
/// Shredder campaigns that fill one side-fraction container (and one
/// condensate/dust bin).
pub const CAMPAIGNS_PER_CONTAINER: usize = 10;
/// Leach batches whose filter cakes (and effluent) make one residue (loss) lot.
pub const LEACH_BATCHES_PER_RESIDUE_LOT: usize = 10;
/// The most units one run generates.
pub const MAX_UNITS: usize = 5_000_000;

/// The settings of one plant year.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    units: usize,
    seed: u64,
    year: i32,
    biases: Vec<Bias>,
}

impl SynthConfig {
    /// `units` input units (packs, modules and cells) received over the
    /// calendar year 2025, drawn from `seed`. Refuses 0 and more than
    /// [`MAX_UNITS`].
    pub fn new(units: usize, seed: u64) -> Result<SynthConfig, SynthError> {
        if units == 0 || units > MAX_UNITS {
            return Err(SynthError::Config {
                setting: "number of input units (--packs)",
                why: format!("must be 1 to {MAX_UNITS}, got {units}"),
            });
        }
        Ok(SynthConfig {
            units,
            seed,
            year: 2025,
            biases: Vec::new(),
        })
    }

    /// The same year with a deliberate bias on one instrument; a second
    /// bias of the same instrument replaces the first.
    pub fn with_bias(mut self, bias: Bias) -> SynthConfig {
        self.biases.retain(|b| b.instrument != bias.instrument);
        self.biases.push(bias);
        self
    }

    pub fn units(&self) -> usize {
        self.units
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn biases(&self) -> &[Bias] {
        &self.biases
    }

    /// The relative bias of `instrument` (0 when none is set).
    pub fn bias_of(&self, instrument: crate::Instrument) -> f64 {
        self.biases
            .iter()
            .find(|b| b.instrument == instrument)
            .map_or(0.0, |b| b.relative)
    }
}
