//! The yearly recovery report as a document: the types that serialize to
//! the JSON of `schemas/recycling-report.schema.json` (field for field),
//! and that the CSV and HTML writers read.
//!
//! Masses are in tonnes, water-free, as the Annex asks; rates in percent.
//! These are serialization types at the edge, so their numbers are plain
//! `f64` with the unit in the field name.

use serde::Serialize;
use std::collections::BTreeMap;

/// The schema version this crate writes.
pub const REPORT_SCHEMA_VERSION: &str = "1.0.0";

/// The yearly report of one first recycler, with its downstream facilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    pub schema_version: String,
    pub document_type: String,
    pub legal_basis: LegalBasis,
    pub calendar_year: i32,
    /// "final" or "provisional".
    pub status: String,
    /// RFC 3339.
    pub generated_at: String,
    pub first_recycler: FacilityDoc,
    pub member_states_of_recycling: Vec<String>,
    pub downstream_facilities: Vec<FacilityDoc>,
    /// Chemistry families of the black mass made ("NMC", "LFP"...).
    pub main_treated_chemistries: Vec<String>,
    pub streams: Vec<StreamResult>,
    pub steps: Vec<StepSummary>,
    pub deferred_output_allocation: DeferredAllocation,
    pub element_flows: Vec<ElementFlow>,
    pub output_lots: Vec<OutputLotLine>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalBasis {
    pub regulation: String,
    pub methodology: String,
    pub annex_section: String,
}

/// A facility as documents name it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilityDoc {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub country: String,
    #[serde(rename = "inEU")]
    pub in_eu: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpnl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpna: Option<String>,
}

/// One input stream ("lithium-based"): its totals and its breakdown by
/// Member State of collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamResult {
    pub battery_chemistry: String,
    pub ewc_code: String,
    pub total: ResultBlock,
    pub by_member_state: Vec<ResultBlock>,
}

/// The results for a stream, or for one Member State of collection in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultBlock {
    /// ISO 3166-1 alpha-2; `null` for units whose country is unknown, and
    /// in a stream's total.
    pub member_state_of_collection: Option<String>,
    pub input_units: usize,
    /// The input fraction: water-free mass received in the year.
    pub m_input_tonnes: f64,
    /// Mass of the output fractions counted for recycling efficiency.
    pub m_output_tonnes: f64,
    #[serde(rename = "rRE")]
    pub r_re: Option<f64>,
    pub rows: Vec<ElementRow>,
}

/// The recovery of one element.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementRow {
    pub element: String,
    pub m_input_tonnes: f64,
    #[serde(rename = "mOutputEUTonnes")]
    pub m_output_eu_tonnes: f64,
    #[serde(rename = "mOutputNonEUTonnes")]
    pub m_output_non_eu_tonnes: f64,
    /// EU and non-EU together.
    pub m_output_total_tonnes: f64,
    /// The part of the total credited by known efficiencies (output of
    /// years x+1 and x+2 from stock at report time).
    pub m_output_credited_tonnes: f64,
    /// rRM in percent; `null` when the input holds none of the element.
    #[serde(rename = "rRM")]
    pub r_rm: Option<f64>,
    /// One standard deviation of rRM, in percentage points.
    #[serde(rename = "rRMSigma")]
    pub r_rm_sigma: Option<f64>,
    /// "reconciliation" or "content-sources".
    pub uncertainty_basis: String,
    pub targets: Vec<TargetCheck>,
}

/// A target of Annex XII part C and whether the rate meets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCheck {
    pub by_end_of: i32,
    pub target_pct: f64,
    pub met: bool,
}

/// One process step, N_0, N_1, ..., with what of the year's input passed
/// through it. Its element rows summed over all steps give the totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    pub step_id: String,
    pub name: String,
    pub facility: FacilityDoc,
    pub inputs: Vec<FractionLine>,
    /// Fractions passed on to another step (black mass is one, labelled
    /// with its chemistry, and never an output).
    pub intermediate_fractions: Vec<FractionLine>,
    /// Output fractions at the recycled-material calculation point.
    pub output_fractions: Vec<FractionLine>,
    /// Residues, losses, and fractions that are not at the calculation point.
    pub other_fractions: Vec<FractionLine>,
    /// Year-x material still in this step's lots at report time.
    pub in_stock: Vec<FractionLine>,
    pub element_rows: Vec<StepElementRow>,
}

/// Lots of one kind, with the part of them that came from the year's input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FractionLine {
    /// The label: "black mass-NMC", "NiSO4.6H2O", "residue"...
    #[serde(rename = "type")]
    pub type_label: String,
    pub lots: usize,
    pub mass_tonnes: f64,
    pub elements_tonnes: BTreeMap<String, f64>,
    #[serde(rename = "atRMCalculationPoint")]
    pub at_rm_calculation_point: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub further_step: Option<String>,
}

/// One element's passage through a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepElementRow {
    pub element: String,
    pub m_input_tonnes: f64,
    #[serde(rename = "mOutputEUTonnes")]
    pub m_output_eu_tonnes: f64,
    #[serde(rename = "mOutputNonEUTonnes")]
    pub m_output_non_eu_tonnes: f64,
    pub m_output_credited_tonnes: f64,
    pub m_intermediate_tonnes: f64,
    pub m_other_tonnes: f64,
    pub m_stock_tonnes: f64,
}

/// The credit of year-x input still in stock, by known efficiencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredAllocation {
    pub applied: bool,
    pub years: Vec<i32>,
    pub basis: String,
    pub credits: Vec<DeferredCredit>,
}

/// Stock of one kind of lot and one element, and what is credited for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredCredit {
    pub stage: String,
    pub element: String,
    pub lots: usize,
    pub in_stock_tonnes: f64,
    pub efficiency: Option<f64>,
    pub credited_tonnes: f64,
}

/// A link of the element-flow diagram: tonnes of `element` from node
/// `from` to node `to` (nodes: "input", step ids, "output-eu",
/// "output-non-eu", "other", "stock").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementFlow {
    pub element: String,
    pub from: String,
    pub to: String,
    pub tonnes: f64,
}

/// An output lot with what of it is credited to the year.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLotLine {
    pub lot_id: String,
    #[serde(rename = "type")]
    pub type_label: String,
    pub facility: String,
    pub step_id: String,
    pub produced_year: i32,
    #[serde(rename = "madeInEU")]
    pub made_in_eu: bool,
    #[serde(rename = "atRMCalculationPoint")]
    pub at_rm_calculation_point: bool,
    pub mass_tonnes: f64,
    pub credited_elements_tonnes: BTreeMap<String, f64>,
}

/// Something a person should know, printed in the report itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// A stable code: "output-lot-without-assays", "shares-do-not-sum-to-one"...
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Warning {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Warning {
        Warning {
            code: code.into(),
            lot: None,
            field: None,
            message: message.into(),
        }
    }

    pub(crate) fn lot(mut self, lot: impl Into<String>) -> Warning {
        self.lot = Some(lot.into());
        self
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> Warning {
        self.field = Some(field.into());
        self
    }
}

impl RecoveryReport {
    /// The stream's total row of `element`, if reported.
    pub fn total_row(&self, stream: &str, element: &str) -> Option<&ElementRow> {
        self.streams
            .iter()
            .find(|s| s.battery_chemistry == stream)
            .and_then(|s| s.total.rows.iter().find(|r| r.element == element))
    }

    /// The JSON document, pretty-printed.
    pub fn to_json(&self) -> Result<String, crate::ReportError> {
        serde_json::to_string_pretty(self).map_err(|e| crate::ReportError::Write {
            what: "the recovery report as JSON",
            why: e.to_string(),
        })
    }

    /// Warnings with the given code.
    pub fn warnings_of(&self, code: &str) -> impl Iterator<Item = &Warning> {
        let code = code.to_string();
        self.warnings.iter().filter(move |w| w.code == code)
    }
}
