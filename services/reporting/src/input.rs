//! What a report is computed from: the plant's lots and genealogy, the
//! assays of its outputs, the uncertainties the reconciliation gave, the
//! facility configuration and what downstream facilities sent.
//!
//! [`ReportInput`] is plain data: [`crate::gather`] fills it from a store,
//! tests build it by hand, and every computation of this crate is a pure
//! function of it.

use crate::{DownstreamData, FacilityConfig, ReportError};
use chrono::{DateTime, Utc};
use remine_domain::{Assay, Element, GenealogyEdge, Lot, LotId, PassportId, UnitType};
use std::collections::BTreeMap;

/// Where the waste a unit came from arose (Reg. 2023/1542 Art. 8 counts
/// both for recycled content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WasteOrigin {
    /// A battery at the end of its use.
    PostConsumer,
    /// Scrap of battery manufacturing (pre-consumer).
    ManufacturingWaste,
}

impl WasteOrigin {
    /// The name the documents use.
    pub fn name(self) -> &'static str {
        match self {
            WasteOrigin::PostConsumer => "post-consumer",
            WasteOrigin::ManufacturingWaste => "battery-manufacturing-waste",
        }
    }

    pub fn from_name(s: &str) -> Option<WasteOrigin> {
        [WasteOrigin::PostConsumer, WasteOrigin::ManufacturingWaste]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// Whether the report is the final yearly one or a provisional one made
/// during the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Provisional,
    Final,
}

impl ReportStatus {
    pub fn name(self) -> &'static str {
        match self {
            ReportStatus::Provisional => "provisional",
            ReportStatus::Final => "final",
        }
    }
}

/// The relative standard uncertainty (sigma over value) of each element's
/// recovery, from the plant's reconciled balance. An element without one
/// gets the uncertainty propagated from its content sources, and the
/// report says which basis each rate has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uncertainties(BTreeMap<Element, f64>);

impl Uncertainties {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the relative sigma of `element`'s recovery (0.012 for 1.2 %).
    /// Refuses a negative or non-finite value.
    pub fn with(mut self, element: Element, relative_sigma: f64) -> Result<Self, ReportError> {
        if !(relative_sigma.is_finite() && relative_sigma >= 0.0) {
            return Err(ReportError::Lot {
                lot: format!("(uncertainty of {element})"),
                why: format!("relative sigma {relative_sigma} is not a finite number >= 0"),
            });
        }
        self.0.insert(element, relative_sigma);
        Ok(self)
    }

    pub fn get(&self, element: Element) -> Option<f64> {
        self.0.get(&element).copied()
    }
}

/// Everything one report is computed from.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The calendar year reported.
    pub year: i32,
    pub status: ReportStatus,
    /// When the report is made (the computation reads no clock).
    pub generated_at: DateTime<Utc>,
    pub facility: FacilityConfig,
    /// Every lot, oldest first.
    pub lots: Vec<Lot>,
    pub edges: Vec<GenealogyEdge>,
    /// The assays of lots, oldest first; an output lot without an entry
    /// has no assay (and the report warns).
    pub assays: BTreeMap<LotId, Vec<Assay>>,
    /// The waste origin of input units that are not post-consumer (the
    /// default: remine receives waste batteries).
    pub origins: BTreeMap<LotId, WasteOrigin>,
    pub uncertainty: Uncertainties,
    /// What downstream facilities sent about the lots they took.
    pub downstream: Vec<DownstreamData>,
}

/// What a report tells of one input unit, taken from its lot.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitProvenance {
    pub passport: Option<PassportId>,
    /// The GB/T 34014 code, where the unit's identity is one.
    pub traction_battery_code: Option<String>,
    pub country: Option<String>,
    pub origin: WasteOrigin,
    /// A pack is taken for an automotive (traction) battery, by its mass
    /// where nothing says otherwise ([`UnitType::guess_from_mass`]).
    pub automotive: bool,
    pub received_at: DateTime<Utc>,
}

impl ReportInput {
    /// The provenance of an input unit's lot.
    pub fn unit_provenance(&self, lot: &Lot) -> UnitProvenance {
        let passport = lot.passport().cloned();
        let traction_battery_code = match &passport {
            Some(PassportId::Gbt(c)) => Some(c.as_str().to_string()),
            _ => None,
        };
        let automotive = match &passport {
            Some(PassportId::Gbt(c)) => c.unit_type() == UnitType::Pack,
            _ => UnitType::guess_from_mass(lot.mass()) == UnitType::Pack,
        };
        UnitProvenance {
            passport,
            traction_battery_code,
            country: lot.country_of_collection().map(|c| c.as_str().to_string()),
            origin: self
                .origins
                .get(lot.id())
                .copied()
                .unwrap_or(WasteOrigin::PostConsumer),
            automotive,
            received_at: lot.created_at(),
        }
    }
}
