//! Downstream facilities' data: what a plant that took lots from the first
//! recycler made of them, in one JSON document
//! (`schemas/downstream-facility-data.schema.json`).
//!
//! The first recycler (the one that makes black mass) reports for the
//! whole chain, so it gathers this from every facility downstream. A plant
//! running remine makes the document with [`export_downstream`]: every
//! output fraction, residue and side fraction it made from lots it
//! received (lots without inputs that are not input units: black mass
//! bought in), with the share of each received lot by proportional
//! allocation. Any other facility can send the same JSON by hand or from
//! its own system. [`import_downstream`] reads it: black mass given as an
//! output is refused first, by name; then the document is validated
//! against the published schema and checked (element masses within the
//! lot's mass, steps and lot ids known and unique), and every error names
//! the document and the JSON path at fault.

use crate::config::Facility;
use crate::model::FacilityDoc;
use crate::{ReportError, ReportInput};
use chrono::{DateTime, SecondsFormat, Utc};
use remine_domain::{CountryCode, Element, ElementMasses, Kilograms, LotGraph, LotId, LotKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The published schema of the document, compiled in.
pub const DOWNSTREAM_SCHEMA: &str =
    include_str!("../../../schemas/downstream-facility-data.schema.json");

const DOCUMENT_TYPE: &str = "remine.downstream-facility-data";

/// What kind of fraction a downstream output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FractionType {
    /// A chemical product (a sulphate, a carbonate...).
    Product,
    /// A metal alloy of a pyrometallurgical route.
    MetalAlloy,
    /// A mechanical side fraction (Cu, Al foil...).
    SideFraction,
    /// Slag: the lithium in it never counts.
    Slag,
    Residue,
    Other,
}

impl FractionType {
    pub const ALL: [FractionType; 6] = [
        FractionType::Product,
        FractionType::MetalAlloy,
        FractionType::SideFraction,
        FractionType::Slag,
        FractionType::Residue,
        FractionType::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FractionType::Product => "product",
            FractionType::MetalAlloy => "metal-alloy",
            FractionType::SideFraction => "side-fraction",
            FractionType::Slag => "slag",
            FractionType::Residue => "residue",
            FractionType::Other => "other",
        }
    }

    pub fn from_name(s: &str) -> Option<FractionType> {
        FractionType::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether the fraction's mass counts as output for rRE (when it is at
    /// the calculation point).
    pub fn counts_for_rre(self) -> bool {
        matches!(
            self,
            FractionType::Product | FractionType::MetalAlloy | FractionType::SideFraction
        )
    }
}

/// A downstream facility.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamFacility {
    pub name: String,
    pub street: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: CountryCode,
    pub bpnl: Option<String>,
    pub bpna: Option<String>,
}

/// A lot of the first recycler's and the share of an output that came from it.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamSource {
    pub upstream_lot: LotId,
    /// Between 0 and 1.
    pub share: f64,
}

/// One fraction a downstream facility made.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamOutput {
    pub lot_id: String,
    pub fraction_type: FractionType,
    /// What it is ("NiSO4.6H2O", "Co-Ni-Cu alloy").
    pub label: String,
    /// The facility's own step id that made it.
    pub step_id: String,
    pub produced_at: DateTime<Utc>,
    pub at_rm_calculation_point: bool,
    pub mass: Kilograms,
    pub elements: ElementMasses,
    pub sources: Vec<DownstreamSource>,
}

/// A checked downstream document.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamData {
    origin: String,
    generated_at: DateTime<Utc>,
    facility: DownstreamFacility,
    steps: Vec<(String, String)>,
    outputs: Vec<DownstreamOutput>,
}

impl DownstreamData {
    /// Where the document came from (a file name, the sender), as warnings
    /// and errors name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn generated_at(&self) -> DateTime<Utc> {
        self.generated_at
    }
    pub fn facility(&self) -> &DownstreamFacility {
        &self.facility
    }
    /// The facility's steps: its own id and a name, in order.
    pub fn steps(&self) -> &[(String, String)] {
        &self.steps
    }
    pub fn outputs(&self) -> &[DownstreamOutput] {
        &self.outputs
    }

    pub(crate) fn facility_doc(&self) -> FacilityDoc {
        let f = &self.facility;
        FacilityDoc {
            name: f.name.clone(),
            street: f.street.clone(),
            city: f.city.clone(),
            postal_code: f.postal_code.clone(),
            country: f.country.as_str().to_string(),
            in_eu: f.country.is_eu(),
            bpnl: f.bpnl.clone(),
            bpna: f.bpna.clone(),
        }
    }

    /// The JSON document (what [`import_downstream`] reads).
    pub fn to_json(&self) -> Result<String, ReportError> {
        let f = &self.facility;
        let doc = Doc {
            schema_version: "1.0.0".into(),
            document_type: DOCUMENT_TYPE.into(),
            generated_at: self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            facility: FacilityIn {
                name: f.name.clone(),
                street: f.street.clone(),
                city: f.city.clone(),
                postal_code: f.postal_code.clone(),
                country: f.country.as_str().to_string(),
                bpnl: f.bpnl.clone(),
                bpna: f.bpna.clone(),
            },
            steps: self
                .steps
                .iter()
                .map(|(id, name)| StepIn {
                    step_id: id.clone(),
                    name: name.clone(),
                })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputIn {
                    lot_id: o.lot_id.clone(),
                    fraction_type: o.fraction_type.name().into(),
                    label: o.label.clone(),
                    step_id: o.step_id.clone(),
                    produced_at: o.produced_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    at_rm_calculation_point: o.at_rm_calculation_point,
                    mass_kg: o.mass.kg(),
                    elements_kg: o
                        .elements
                        .iter()
                        .map(|(e, m)| (e.symbol().to_string(), m.kg()))
                        .collect(),
                    sources: o
                        .sources
                        .iter()
                        .map(|s| SourceIn {
                            upstream_lot_id: s.upstream_lot.as_str().to_string(),
                            share: s.share,
                        })
                        .collect(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&doc).map_err(|e| ReportError::Write {
            what: "downstream facility data",
            why: e.to_string(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Doc {
    schema_version: String,
    document_type: String,
    generated_at: String,
    facility: FacilityIn,
    steps: Vec<StepIn>,
    outputs: Vec<OutputIn>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FacilityIn {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
    country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bpnl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bpna: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StepIn {
    step_id: String,
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OutputIn {
    lot_id: String,
    fraction_type: String,
    #[serde(rename = "type")]
    label: String,
    step_id: String,
    produced_at: String,
    #[serde(rename = "atRMCalculationPoint")]
    at_rm_calculation_point: bool,
    mass_kg: f64,
    elements_kg: BTreeMap<String, f64>,
    sources: Vec<SourceIn>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceIn {
    upstream_lot_id: String,
    share: f64,
}

/// Reads a downstream facility's document; `origin` (a file name, the
/// sender) goes into every error and warning.
pub fn import_downstream(json: &str, origin: &str) -> Result<DownstreamData, ReportError> {
    let err = |field: String, why: String| ReportError::downstream(origin, field, why);
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| err("(document)".into(), format!("not JSON: {e}")))?;

    // Black mass is refused by name before anything else is said about it.
    if let Some(outputs) = value.get("outputs").and_then(|o| o.as_array()) {
        for (i, o) in outputs.iter().enumerate() {
            let text = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let lot = text("lotId");
            if text("fractionType") == "black-mass" {
                return Err(ReportError::BlackMassAsOutput {
                    what: format!(
                        "downstream facility data {origin}, output lot '{lot}' (field outputs[{i}].fractionType is \"black-mass\")"
                    ),
                });
            }
            if text("type").to_ascii_lowercase().starts_with("black mass") {
                return Err(ReportError::BlackMassAsOutput {
                    what: format!(
                        "downstream facility data {origin}, output lot '{lot}' (field outputs[{i}].type is \"{}\")",
                        text("type")
                    ),
                });
            }
        }
    }

    let schema: serde_json::Value = serde_json::from_str(DOWNSTREAM_SCHEMA).map_err(|e| {
        err(
            "(schema)".into(),
            format!("the compiled-in schema is not JSON: {e}"),
        )
    })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        err(
            "(schema)".into(),
            format!("the compiled-in schema does not compile: {e}"),
        )
    })?;
    if let Some(e) = validator.iter_errors(&value).next() {
        let path = e.instance_path().to_string();
        return Err(err(
            if path.is_empty() {
                "(document)".into()
            } else {
                path
            },
            format!("does not match the schema: {e}"),
        ));
    }
    let doc: Doc = serde_path_to_error::deserialize(&value)
        .map_err(|e| err(e.path().to_string(), e.inner().to_string()))?;

    let f = doc.facility;
    let country = CountryCode::parse(&f.country)
        .map_err(|e| err("facility.country".into(), e.to_string()))?;
    let generated_at = parse_time(&doc.generated_at).ok_or_else(|| {
        err(
            "generatedAt".into(),
            format!("'{}' is not an RFC 3339 time", doc.generated_at),
        )
    })?;

    let mut step_ids = HashSet::new();
    let mut steps = Vec::new();
    for (i, s) in doc.steps.into_iter().enumerate() {
        if !step_ids.insert(s.step_id.clone()) {
            return Err(err(
                format!("steps[{i}].stepId"),
                format!("step '{}' is listed twice", s.step_id),
            ));
        }
        steps.push((s.step_id, s.name));
    }

    let mut lot_ids = HashSet::new();
    let mut outputs = Vec::new();
    for (i, o) in doc.outputs.into_iter().enumerate() {
        let field = |f: &str| format!("outputs[{i}].{f}");
        if !lot_ids.insert(o.lot_id.clone()) {
            return Err(err(
                field("lotId"),
                format!("lot '{}' is listed twice", o.lot_id),
            ));
        }
        if !step_ids.contains(&o.step_id) {
            return Err(err(
                field("stepId"),
                format!("step '{}' is not among the document's steps", o.step_id),
            ));
        }
        let fraction_type = FractionType::from_name(&o.fraction_type).ok_or_else(|| {
            err(
                field("fractionType"),
                format!("unknown fraction type '{}'", o.fraction_type),
            )
        })?;
        let produced_at = parse_time(&o.produced_at).ok_or_else(|| {
            err(
                field("producedAt"),
                format!("'{}' is not an RFC 3339 time", o.produced_at),
            )
        })?;
        let mass = Kilograms::new(o.mass_kg).map_err(|e| err(field("massKg"), e.to_string()))?;
        let mut elements = ElementMasses::new();
        for (sym, kg) in &o.elements_kg {
            let at = format!("outputs[{i}].elementsKg.{sym}");
            let e: Element = sym
                .parse()
                .map_err(|e: remine_domain::DomainError| err(at.clone(), e.to_string()))?;
            elements.add(
                e,
                Kilograms::new(*kg).map_err(|e| err(at.clone(), e.to_string()))?,
            );
        }
        if elements.total().kg() > mass.kg() * (1.0 + 1e-9) + 1e-9 {
            return Err(err(
                field("elementsKg"),
                format!(
                    "elements sum to {:.3} kg, more than the lot's {:.3} kg",
                    elements.total().kg(),
                    mass.kg()
                ),
            ));
        }
        let mut sources = Vec::new();
        for (j, s) in o.sources.iter().enumerate() {
            let at = format!("outputs[{i}].sources[{j}]");
            let upstream_lot = LotId::parse(&s.upstream_lot_id)
                .map_err(|e| err(format!("{at}.upstreamLotId"), e.to_string()))?;
            if !(s.share.is_finite() && (0.0..=1.0).contains(&s.share)) {
                return Err(err(
                    format!("{at}.share"),
                    format!("{} is not between 0 and 1", s.share),
                ));
            }
            sources.push(DownstreamSource {
                upstream_lot,
                share: s.share,
            });
        }
        outputs.push(DownstreamOutput {
            lot_id: o.lot_id,
            fraction_type,
            label: o.label,
            step_id: o.step_id,
            produced_at,
            at_rm_calculation_point: o.at_rm_calculation_point,
            mass,
            elements,
            sources,
        });
    }

    Ok(DownstreamData {
        origin: origin.to_string(),
        generated_at,
        facility: DownstreamFacility {
            name: f.name,
            street: f.street,
            city: f.city,
            postal_code: f.postal_code,
            country,
            bpnl: f.bpnl,
            bpna: f.bpna,
        },
        steps,
        outputs,
    })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The document a plant running remine sends upstream: every product,
/// side fraction and residue it made from lots it received (lots without
/// inputs that are not input units), with each received lot's share by
/// proportional allocation (of the product's payable element, else of
/// mass). The input's year is not used: the upstream plant picks what
/// concerns its year.
pub fn export_downstream(input: &ReportInput) -> Result<DownstreamData, ReportError> {
    let graph = LotGraph::new(&input.lots, &input.edges).map_err(ReportError::Genealogy)?;
    let kinds: HashMap<&LotId, LotKind> = input.lots.iter().map(|l| (l.id(), l.kind())).collect();
    let mut first_input_kind: HashMap<&LotId, LotKind> = HashMap::new();
    for e in &input.edges {
        if let Some(k) = kinds.get(&e.from) {
            first_input_kind.entry(&e.to).or_insert(*k);
        }
    }
    let received: BTreeSet<&LotId> = input
        .lots
        .iter()
        .filter(|l| l.kind() != LotKind::InputUnit && !first_input_kind.contains_key(l.id()))
        .map(|l| l.id())
        .collect();
    let cfg = &input.facility;
    let mut outputs = Vec::new();
    for lot in &input.lots {
        let fraction_type = match lot.kind() {
            LotKind::Product(_) => FractionType::Product,
            LotKind::SideFraction(_) => FractionType::SideFraction,
            LotKind::Residue => FractionType::Residue,
            _ => continue,
        };
        let trace = graph.backward(lot.id()).map_err(ReportError::Genealogy)?;
        let basis = match lot.kind() {
            LotKind::Product(p) => Some(p.payable().0),
            _ => None,
        };
        let amount = |a: &remine_domain::Allocated<'_>| match basis {
            Some(e) => a.elements.get(e).kg(),
            None => a.mass.kg(),
        };
        let whole: f64 = trace.sources.iter().map(amount).sum();
        let mut sources = Vec::new();
        for a in &trace.sources {
            if received.contains(a.lot.id()) && whole > 0.0 {
                sources.push(DownstreamSource {
                    upstream_lot: a.lot.id().clone(),
                    share: (amount(a) / whole).clamp(0.0, 1.0),
                });
            }
        }
        if sources.is_empty() {
            continue;
        }
        let step = first_input_kind
            .get(lot.id())
            .and_then(|k| cfg.step_consuming(*k))
            .unwrap_or(cfg.steps().len() - 1);
        outputs.push(DownstreamOutput {
            lot_id: lot.id().as_str().to_string(),
            fraction_type,
            label: lot.kind().label(),
            step_id: cfg.steps()[step].id().to_string(),
            produced_at: lot.created_at(),
            at_rm_calculation_point: lot.kind().is_output_fraction(),
            mass: lot.mass(),
            elements: lot.elements().clone(),
            sources,
        });
    }
    let f: &Facility = cfg.facility();
    Ok(DownstreamData {
        origin: f.name.clone(),
        generated_at: input.generated_at,
        facility: DownstreamFacility {
            name: f.name.clone(),
            street: Some(f.street.clone()),
            city: Some(f.city.clone()),
            postal_code: Some(f.postal_code.clone()),
            country: f.country.clone(),
            bpnl: f.bpnl.clone(),
            bpna: f.bpna.clone(),
        },
        steps: cfg
            .steps()
            .iter()
            .map(|s| (s.id().to_string(), s.name().to_string()))
            .collect(),
        outputs,
    })
}
