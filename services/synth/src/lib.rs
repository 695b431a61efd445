//! A synthetic plant year, made in seconds from the simulator's process
//! models without its protocol servers: the data the metal-accounting
//! functions of remine are tested and measured against.
//!
//! A year is `N` input units (packs, modules, cells of every chemistry,
//! LFP included) that arrive with passports in every form the gate meets
//! (Battery Pass 1.2.0, Catena-X 6.1.0, IDTA, a GB/T 34014 code, or only a
//! declared chemistry), and everything the plant makes of them: discharge
//! batches, shredder campaigns per route (layered oxides together, LFP
//! apart) into black-mass lots labelled by chemistry, side-fraction
//! containers, leach batches that split black-mass lots and sometimes take
//! from two, solutions, product lots blended from several batches
//! (NiSO4.6H2O, CoSO4.7H2O, Li2CO3), filter cakes and losses. The physics
//! is the simulator's ([`remine_sim::model`]): each unit's true make-up
//! ([`draw_pack`]), the shredder's partition of each component
//! ([`ShredPartition`]) and, batch by batch, the hydromet train itself
//! ([`HydrometTrain`]). Beside every lot the truth is kept; every tracked
//! element received is, at year end, in exactly one lot.
//!
//! What the plant knows is measured with the noise of domain brief section
//! 6 ([`Instrument`]): every lot is weighed (weighbridge, platform scales,
//! belt weighers, tank, flow meter), black
//! mass and filter cakes with a moisture determination, and black mass,
//! side fractions, the shredder's filter dust and condensate (its
//! mechanical loss, collected in bins), solutions, products, cakes and
//! effluent are assayed. A
//! [`Bias`] makes one instrument wrong on purpose, so that gross-error
//! detection can be tested. At the issue's scale, 200,000 units give about
//! 5,000 black-mass lots, 20,000 leach batches and 5,000 product lots
//! ([`config`] holds the ratios; everything scales with `N`).
//!
//! Main items: [`SynthConfig`] and [`generate`], which gives a
//! [`PlantYear`] of [`Unit`]s, [`SynthLot`]s and [`SynthEdge`]s;
//! [`PlantYear::write_files`] (passports, `lots.jsonl`, `edges.jsonl`,
//! `truth.jsonl`, described in the folder's `README.md`) and
//! [`PlantYear::write_store`] (through `LotStore` and `AccountingStore`);
//! [`PlantYear::truth_balance`] and [`PlantYear::true_recovery`].
//!
//! ```
//! use remine_domain::Element;
//! use remine_synth::{SynthConfig, generate};
//!
//! let year = generate(&SynthConfig::new(120, 7)?)?;
//! assert_eq!(year.units().len(), 120);
//! let balance = year.truth_balance();
//! let ni = Element::Ni as usize;
//! assert!((balance.accounted()[ni] - balance.inputs[ni]).abs() < 1e-9 * balance.inputs[ni]);
//! assert!(year.true_recovery(Element::Ni).is_some_and(|r| r > 0.5 && r < 1.0));
//! # Ok::<(), remine_synth::SynthError>(())
//! ```
//!
//! [`draw_pack`]: remine_sim::model::material::draw_pack
//! [`ShredPartition`]: remine_sim::model::material::ShredPartition
//! [`HydrometTrain`]: remine_sim::model::hydromet::HydrometTrain

pub mod config;
mod error;
mod files;
mod flow;
mod instruments;
mod passports;
mod population;
mod store;
mod year;

pub use config::SynthConfig;
pub use error::SynthError;
pub use files::FileReport;
pub use flow::generate;
pub use instruments::{Bias, Instrument};
pub use store::StoreReport;
pub use year::{
    AssayResult, PlantYear, SynthEdge, SynthLot, TruthBalance, Unit, Weighing, recovers,
};
