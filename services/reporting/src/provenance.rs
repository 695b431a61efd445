//! The provenance record of an output lot: its assays and mass, the input
//! units it came from by proportional allocation (with their passports,
//! Member State of collection and waste origin), and a Catena-X
//! `io.catenax.secondary_material_content_verifiable` 1.0.0 instance, so a
//! battery maker can prove recycled content (Reg. 2023/1542 Art. 8).
//!
//! Shares are of the product's payable element (Ni in NiSO4.6H2O), or of
//! mass for other fractions. All of a recycler's product comes from waste
//! batteries, so its secondary share is 100 %, split by origin: pre-consumer
//! (battery manufacturing waste), post-consumer automotive (packs) and
//! other post-consumer. A product of the hydrometallurgical line is
//! chemically recycled, a side fraction mechanically; Catena-X has no
//! chemical-recycling slot for pre-consumer material, so that share is
//! given under mechanical recycling and the record says so.

use crate::{ReportError, ReportInput, WasteOrigin};
use chrono::{Datelike, SecondsFormat};
use remine_domain::{Element, LotGraph, LotId, LotKind};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A provenance record, as `schemas/output-lot-provenance.schema.json` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceRecord {
    pub schema_version: String,
    pub document_type: String,
    pub lot_id: String,
    /// A name-based `urn:uuid:` of the facility and lot, stable across runs.
    pub global_asset_id: String,
    pub calendar_year: i32,
    pub produced_at: String,
    pub facility: String,
    pub facility_country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility_bpna: Option<String>,
    pub product: String,
    pub lot_kind: String,
    pub is_black_mass: bool,
    #[serde(rename = "atRMCalculationPoint")]
    pub at_rm_calculation_point: bool,
    #[serde(rename = "outputGeneratedOutsideEU")]
    pub output_generated_outside_eu: bool,
    pub net_mass_kg: f64,
    pub elements_kg: BTreeMap<String, f64>,
    pub assays: Vec<AssayDoc>,
    /// "mass" or the element symbol the shares are of.
    pub share_basis: String,
    pub allocation_method: String,
    pub sources: Vec<SourceDoc>,
    pub by_member_state: Vec<ShareDoc>,
    pub by_waste_origin: Vec<ShareDoc>,
    pub secondary_material_content: serde_json::Value,
    pub warnings: Vec<crate::Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssayDoc {
    pub element: String,
    pub mass_fraction: f64,
    pub uncertainty: f64,
    pub method: String,
    pub sample_id: String,
    pub lab: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDoc {
    pub input_lot_id: String,
    pub received_at: String,
    pub share: f64,
    pub mass_kg: f64,
    pub elements_kg: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_state_of_collection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_passport_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traction_battery_code: Option<String>,
    pub waste_origin: String,
    pub automotive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareDoc {
    pub key: String,
    pub share: f64,
}

impl ProvenanceRecord {
    pub fn to_json(&self) -> Result<String, ReportError> {
        serde_json::to_string_pretty(self).map_err(|e| ReportError::Write {
            what: "a provenance record as JSON",
            why: e.to_string(),
        })
    }
}

/// Provenance records over one lot graph, built once.
#[derive(Debug)]
pub struct ProvenanceBook<'a> {
    input: &'a ReportInput,
    graph: LotGraph,
}

fn uuid_for(facility: &str, lot: &str) -> String {
    let d = Sha256::digest(format!("remine:output-lot:{facility}:{lot}").as_bytes());
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&d[..16]);
    // RFC 9562 version 8 (custom, name-based), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

impl<'a> ProvenanceBook<'a> {
    pub fn new(input: &'a ReportInput) -> Result<Self, ReportError> {
        let graph = LotGraph::new(&input.lots, &input.edges).map_err(ReportError::Genealogy)?;
        Ok(ProvenanceBook { input, graph })
    }

    /// The records of every output fraction lot made in `year`.
    pub fn records_of_year(&self, year: i32) -> Result<Vec<ProvenanceRecord>, ReportError> {
        self.input
            .lots
            .iter()
            .filter(|l| l.kind().is_output_fraction() && l.created_at().year() == year)
            .map(|l| self.record(l.id()))
            .collect()
    }

    /// The record of one lot. Refuses an unknown lot and an input unit
    /// (which has no sources but itself).
    pub fn record(&self, id: &LotId) -> Result<ProvenanceRecord, ReportError> {
        let input = self.input;
        let lot = input
            .lots
            .iter()
            .find(|l| l.id() == id)
            .ok_or_else(|| ReportError::Lot {
                lot: id.to_string(),
                why: "not among the plant's lots".into(),
            })?;
        if lot.kind() == LotKind::InputUnit {
            return Err(ReportError::Lot {
                lot: id.to_string(),
                why: "an input unit has no provenance record: it is a source".into(),
            });
        }
        let trace = self.graph.backward(id).map_err(ReportError::Genealogy)?;
        let basis = match lot.kind() {
            LotKind::Product(p) => Some(p.payable().0),
            _ => None,
        };
        let amount = |a: &remine_domain::Allocated<'_>| match basis {
            Some(e) => a.elements.get(e).kg(),
            None => a.mass.kg(),
        };
        let whole: f64 = trace.sources.iter().map(amount).sum();
        let mut warnings = Vec::new();
        let by_id: std::collections::HashMap<&LotId, &remine_domain::Lot> =
            input.lots.iter().map(|l| (l.id(), l)).collect();
        let mut sources = Vec::new();
        let mut by_state: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_origin: BTreeMap<String, f64> = BTreeMap::new();
        let (mut pre, mut post_auto, mut post_other, mut not_unit) = (0.0, 0.0, 0.0, 0.0);
        for a in &trace.sources {
            let share = if whole > 0.0 { amount(a) / whole } else { 0.0 };
            let src = by_id.get(a.lot.id());
            let unit = src.filter(|l| l.kind() == LotKind::InputUnit);
            let prov = unit.map(|l| input.unit_provenance(l));
            match &prov {
                Some(p) => {
                    match (p.origin, p.automotive) {
                        (WasteOrigin::ManufacturingWaste, _) => pre += share,
                        (WasteOrigin::PostConsumer, true) => post_auto += share,
                        (WasteOrigin::PostConsumer, false) => post_other += share,
                    }
                    *by_state
                        .entry(p.country.clone().unwrap_or_else(|| "unknown".into()))
                        .or_default() += share;
                    *by_origin.entry(p.origin.name().into()).or_default() += share;
                }
                None => not_unit += share,
            }
            sources.push(SourceDoc {
                input_lot_id: a.lot.id().to_string(),
                received_at: src
                    .map(|l| l.created_at().to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                share: round(share),
                mass_kg: round(a.mass.kg()),
                elements_kg: a
                    .elements
                    .iter()
                    .filter(|(_, m)| m.kg() > 0.0)
                    .map(|(e, m)| (e.symbol().to_string(), round(m.kg())))
                    .collect(),
                member_state_of_collection: prov.as_ref().and_then(|p| p.country.clone()),
                battery_passport_id: prov
                    .as_ref()
                    .and_then(|p| p.passport.as_ref())
                    .map(|p| p.to_string()),
                traction_battery_code: prov.as_ref().and_then(|p| p.traction_battery_code.clone()),
                waste_origin: prov
                    .as_ref()
                    .map(|p| p.origin.name())
                    .unwrap_or("received-intermediate")
                    .to_string(),
                automotive: prov.as_ref().is_some_and(|p| p.automotive),
            });
        }
        let sum: f64 = pre + post_auto + post_other + not_unit;
        if (sum - 1.0).abs() > 1e-6 {
            warnings.push(
                crate::Warning::new(
                    "shares-do-not-sum-to-one",
                    format!("the sources' shares of lot {id} sum to {sum:.6}, not 1"),
                )
                .lot(id.to_string()),
            );
        }
        if not_unit > 1e-9 {
            warnings.push(
                crate::Warning::new(
                    "source-not-an-input-unit",
                    format!(
                        "{:.2} % of lot {id} comes from lots received as intermediates, whose waste \
                         origin this plant does not know: counted as primary in the Catena-X record",
                        not_unit * 100.0
                    ),
                )
                .lot(id.to_string()),
            );
        }
        let assays: Vec<AssayDoc> = input
            .assays
            .get(id)
            .map(|v| {
                v.iter()
                    .map(|a| AssayDoc {
                        element: a.element().symbol().to_string(),
                        mass_fraction: a.fraction().value(),
                        uncertainty: a.sigma(),
                        method: a.method().to_string(),
                        sample_id: a.sample().to_string(),
                        lab: a.lab().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if assays.is_empty() && lot.kind().is_output_fraction() {
            warnings.push(
                crate::Warning::new(
                    "output-lot-without-assays",
                    format!("output lot {id} has no assay: its element masses are as booked"),
                )
                .lot(id.to_string()),
            );
        }

        let facility = input.facility.facility();
        let product = lot.kind().label();
        let formula = match lot.kind() {
            LotKind::Product(p) => p.formula().to_string(),
            other => other.label(),
        };
        let naming = input.facility.product_naming(&formula);
        if naming.is_none() {
            warnings.push(
                crate::Warning::new(
                    "product-not-named",
                    format!(
                        "the facility configuration has no [products.\"{formula}\"] entry: the Catena-X \
                         material class and standard are placeholders"
                    ),
                )
                .field(format!("products.\"{formula}\"")),
            );
        }
        let chemical = matches!(lot.kind(), LotKind::Product(_));
        let pct = |v: f64| round((v * 100.0).clamp(0.0, 100.0));
        let recycled = |share: f64, chemical_route: bool| {
            let (chem, mech) = if chemical_route {
                (share, 0.0)
            } else {
                (0.0, share)
            };
            json!({
                "chemicalRecycling": {"isMassBalanced": true, "percentageOfMaterialWeight": pct(chem)},
                "mechanicalRecycling": {"isMassBalanced": true, "percentageOfMaterialWeight": pct(mech)}
            })
        };
        let route = if chemical {
            "hydrometallurgical (chemical) recycling"
        } else {
            "mechanical recycling"
        };
        let catenax = json!({
            "secondaryMaterialContent": [{
                "materialClass": naming.map_or("unclassified", |n| n.material_class.as_str()),
                "materialNameStandardized": {
                    "referencedStandard": naming.map_or("ISO", |n| n.standard.as_str()),
                    "referencedStandardID": naming.map_or("unspecified", |n| n.standard_id.as_str()),
                    "materialNameStandardizedValue": naming.map_or(formula.as_str(), |n| n.name.as_str()),
                },
                "unitOfMeasure": {
                    "unitOfMeasureKey": "unit:kilogram",
                    "materialNetMass": round(lot.mass().kg()),
                    "grossMaterialInputMass": round(lot.mass().kg()),
                },
                "bioBased": {
                    "bioBasedClass": "gen1",
                    "secondaryBioBased": {"isMassBalanced": true, "percentageOfMaterialWeight": 0.0},
                    "primaryBioBased": {"percentageOfMaterialWeight": 0.0},
                },
                "inorganic": {
                    "secondaryInorganic": {
                        "preConsumer": {
                            "mechanicalRecycling": {"isMassBalanced": true, "percentageOfMaterialWeight": pct(pre)}
                        },
                        "postConsumer": recycled(post_other, chemical),
                        "postConsumerAutomotive": recycled(post_auto, chemical),
                    },
                    "primaryInorganic": {"percentageOfMaterialWeight": pct(not_unit)},
                },
                "additionalInformation": format!(
                    "Lot {id} of {}, made by {route}. Shares are of {} by proportional allocation \
                     through every blend (mass balance, ISO 22095). Pre-consumer material \
                     (battery manufacturing waste) is given under mechanicalRecycling because the \
                     model has no chemical-recycling entry for it.",
                    facility.name,
                    basis.map_or("mass".to_string(), |e: Element| format!("the payable element {e}")),
                ),
            }],
            "orderNumber": id.to_string(),
        });

        Ok(ProvenanceRecord {
            schema_version: "1.0.0".into(),
            document_type: "remine.output-lot-provenance".into(),
            lot_id: id.to_string(),
            global_asset_id: uuid_for(&facility.name, id.as_str()),
            calendar_year: lot.created_at().year(),
            produced_at: lot.created_at().to_rfc3339_opts(SecondsFormat::Secs, true),
            facility: facility.name.clone(),
            facility_country: facility.country.as_str().to_string(),
            facility_bpna: facility.bpna.clone(),
            product,
            lot_kind: lot.kind().code(),
            is_black_mass: matches!(lot.kind(), LotKind::BlackMass(_)),
            at_rm_calculation_point: lot.kind().is_output_fraction(),
            output_generated_outside_eu: !facility.in_eu(),
            net_mass_kg: round(lot.mass().kg()),
            elements_kg: lot
                .elements()
                .iter()
                .map(|(e, m)| (e.symbol().to_string(), round(m.kg())))
                .collect(),
            assays,
            share_basis: basis.map_or("mass".to_string(), |e| e.symbol().to_string()),
            allocation_method: "mass-balance".into(),
            sources,
            by_member_state: by_state
                .into_iter()
                .map(|(key, share)| ShareDoc {
                    key,
                    share: round(share),
                })
                .collect(),
            by_waste_origin: by_origin
                .into_iter()
                .map(|(key, share)| ShareDoc {
                    key,
                    share: round(share),
                })
                .collect(),
            secondary_material_content: catenax,
            warnings,
        })
    }
}
