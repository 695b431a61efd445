//! Battery Pass data model 1.2.0 (DIN DKE SPEC 99100): a unit folder with
//! `GeneralProductInformation.json` (id, mass in kg), `MaterialComposition.json`
//! (chemistry, element masses in GRAMS) and `Circularity.json` (not needed
//! at intake, so not read).

use crate::ImportError;
use crate::checks::{self, Tally, show};
use crate::import::Draft;
use crate::read::{Notes, read_json};
use remine_domain::{PassportFields, PassportForm, PassportId, UnitType};
use serde::Deserialize;
use std::path::Path;

pub(crate) const GENERAL: &str = "GeneralProductInformation.json";
pub(crate) const MATERIALS: &str = "MaterialComposition.json";
pub(crate) const CIRCULARITY: &str = "Circularity.json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct General {
    product_identifier: Option<String>,
    battery_passport_identifier: String,
    battery_mass: f64,
    battery_status: Option<String>,
    manufacturer_information: Option<Manufacturer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manufacturer {
    contact_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Materials {
    battery_chemistry: Option<ChemistryEntry>,
    #[serde(default)]
    battery_materials: Vec<Material>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChemistryEntry {
    short_name: Option<String>,
    clear_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    battery_material_identifier: Option<String>,
    battery_material_name: Option<String>,
    /// Grams.
    battery_material_mass: f64,
}

/// `^urn:[a-z0-9]+:[a-z0-9]+$`, the schema's pattern for the identifier.
fn matches_urn_pattern(id: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match id.strip_prefix("urn:").map(|rest| rest.split(':')) {
        Some(mut parts) => {
            matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if part(a) && part(b))
        }
        None => false,
    }
}

pub(crate) fn read(dir: &Path, notes: &mut Notes) -> Result<Draft, ImportError> {
    let general_file = dir.join(GENERAL);
    let materials_file = dir.join(MATERIALS);
    for f in [&general_file, &materials_file] {
        if !f.is_file() {
            return Err(ImportError::MissingFile {
                file: f.clone(),
                form: "Battery Pass 1.2.0",
            });
        }
    }
    let general: General = read_json(&general_file, notes)?;
    let materials: Materials = read_json(&materials_file, notes)?;

    let id_text = general.battery_passport_identifier.as_str();
    if !matches_urn_pattern(id_text) {
        return Err(ImportError::rejected(
            &general_file,
            "batteryPassportIdentifier",
            format!(
                "batteryPassportIdentifier does not match ^urn:[a-z0-9]+:[a-z0-9]+$ (got '{id_text}')"
            ),
        ));
    }
    let id = PassportId::urn(id_text).map_err(|e| {
        ImportError::rejected(&general_file, "batteryPassportIdentifier", e.to_string())
    })?;
    let mass = checks::unit_mass(
        &general_file,
        "batteryMass",
        general.battery_mass,
        &format!("{} kg", show(general.battery_mass)),
    )?;
    if let Some(status) = &general.battery_status
        && status != "Waste"
    {
        notes.warn(
            &general_file,
            format!("batteryStatus is '{status}', not 'Waste'"),
        );
    }

    let chemistry = {
        let c = materials.battery_chemistry.as_ref();
        checks::named_chemistry(
            &materials_file,
            "batteryChemistry",
            &[
                c.and_then(|c| c.short_name.as_deref()),
                c.and_then(|c| c.clear_name.as_deref()),
            ],
            notes,
        )
    };

    let mut tally = Tally::default();
    for (i, m) in materials.battery_materials.iter().enumerate() {
        let field = format!("batteryMaterials[{i}]");
        let element = checks::element_of(
            &materials_file,
            &format!("{field}.batteryMaterialIdentifier"),
            m.battery_material_identifier.as_deref(),
            m.battery_material_name.as_deref(),
        )?;
        let Some(element) = element else {
            notes.warn(
                &materials_file,
                format!(
                    "{field} ('{}') is not a material the plant accounts for; not counted",
                    m.battery_material_name.as_deref().unwrap_or("unnamed")
                ),
            );
            continue;
        };
        tally.add(
            &materials_file,
            &format!("{field}.batteryMaterialMass"),
            element,
            m.battery_material_mass / 1000.0,
            &format!("{} g", show(m.battery_material_mass)),
        )?;
    }

    Ok(Draft {
        fields: PassportFields {
            id,
            form: PassportForm::BatteryPass120,
            serial: general.product_identifier,
            manufacturer: general
                .manufacturer_information
                .and_then(|m| m.contact_name),
            chemistry,
            unit_type: UnitType::guess_from_mass(mass),
            mass,
            declared: tally.finish(),
            state_of_health_pct: None,
            country_of_collection: None,
            gbt: None,
            warnings: Vec::new(),
        },
        blame: materials_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, ok: bool) {
        assert_eq!(matches_urn_pattern(id), ok, "{id}");
    }

    #[test]
    fn the_identifier_pattern_is_the_schemas_own() {
        check("urn:rheinzelle:rzb21p0012345", true);
        check("urn:CVL:CVL-22P-3153270", false);
        check("urn:a:b:c", false);
        check("urn::b", false);
        check("URN:a:b", false);
        check("rheinzelle:rzb21p0012345", false);
    }
}
