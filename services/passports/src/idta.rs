//! IDTA battery-passport submodels (Asset Administration Shell, value-only
//! JSON): a unit folder with `NameplateBattery.json` (id, serial, maker),
//! `TechnicalDataBattery.json` (mass in kg), `MaterialCompositionBattery.json`
//! (chemistry, element masses in KILOGRAMS), `ProductConditionBattery.json`
//! (state of certified energy) and `CircularityBattery.json` (not needed at
//! intake, so not read).

use crate::ImportError;
use crate::checks::{self, Tally, show};
use crate::import::Draft;
use crate::read::{Notes, read_json};
use remine_domain::{PassportFields, PassportForm, PassportId, UnitType};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

pub(crate) const NAMEPLATE: &str = "NameplateBattery.json";
pub(crate) const TECHNICAL: &str = "TechnicalDataBattery.json";
pub(crate) const MATERIALS: &str = "MaterialCompositionBattery.json";
pub(crate) const CONDITION: &str = "ProductConditionBattery.json";
pub(crate) const CIRCULARITY: &str = "CircularityBattery.json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Nameplate {
    #[serde(rename = "URIOfTheProduct")]
    uri_of_the_product: String,
    #[serde(default)]
    manufacturer_name: Value,
    serial_number: Option<String>,
    life_cycle_stage: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Technical {
    general_information: GeneralInformation,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GeneralInformation {
    manufacturer_name: Option<String>,
    /// Kilograms.
    battery_mass: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Materials {
    battery_chemistry: Option<ChemistryEntry>,
    #[serde(default)]
    battery_materials: Vec<Material>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChemistryEntry {
    short_name: Option<String>,
    clear_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Material {
    battery_material_identifier: Option<String>,
    battery_material_name: Option<String>,
    /// Kilograms.
    battery_material_mass: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Condition {
    state_of_certified_energy: Option<CertifiedEnergy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CertifiedEnergy {
    state_of_certified_energy_value: Option<f64>,
}

/// The product URI as the passport id: any absolute URI (scheme, colon,
/// no white space). A `urn:` keeps its URN form.
fn product_id(file: &Path, uri: &str) -> Result<PassportId, ImportError> {
    let field = "URIOfTheProduct";
    let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok || uri.chars().any(char::is_whitespace) {
        return Err(ImportError::rejected(
            file,
            field,
            format!("{field} is not an absolute URI (got '{uri}')"),
        ));
    }
    PassportId::uri(uri).map_err(|e| ImportError::rejected(file, field, e.to_string()))
}

/// The maker's name from a list of language strings (English preferred).
/// The upstream IDTA example writes one object instead of a list: read
/// leniently, with a warning.
fn manufacturer_name(file: &Path, v: &Value, notes: &mut Notes) -> Option<String> {
    let from_langstring = |o: &serde_json::Map<String, Value>| {
        o.get("en")
            .or_else(|| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let objects: Vec<_> = items.iter().filter_map(Value::as_object).collect();
            objects
                .iter()
                .find(|o| o.contains_key("en"))
                .or_else(|| objects.first())
                .and_then(|o| from_langstring(o))
        }
        Value::Object(o) => {
            notes.warn(
                file,
                "ManufacturerName should be a list of language strings ([{\"en\": ...}]), found one object; read leniently",
            );
            from_langstring(o)
        }
        Value::String(s) => {
            notes.warn(
                file,
                "ManufacturerName should be a list of language strings ([{\"en\": ...}]), found a plain string; read leniently",
            );
            Some(s.clone())
        }
        _ => {
            notes.warn(
                file,
                "ManufacturerName should be a list of language strings; ignored",
            );
            None
        }
    }
}

pub(crate) fn read(dir: &Path, notes: &mut Notes) -> Result<Draft, ImportError> {
    let nameplate_file = dir.join(NAMEPLATE);
    let technical_file = dir.join(TECHNICAL);
    let materials_file = dir.join(MATERIALS);
    let condition_file = dir.join(CONDITION);
    for f in [&nameplate_file, &technical_file, &materials_file] {
        if !f.is_file() {
            return Err(ImportError::MissingFile {
                file: f.clone(),
                form: "IDTA battery passport",
            });
        }
    }
    let nameplate: Nameplate = read_json(&nameplate_file, notes)?;
    let technical: Technical = read_json(&technical_file, notes)?;
    let materials: Materials = read_json(&materials_file, notes)?;
    let condition: Option<Condition> = if condition_file.is_file() {
        Some(read_json(&condition_file, notes)?)
    } else {
        None
    };

    let id = product_id(&nameplate_file, &nameplate.uri_of_the_product)?;
    let manufacturer = manufacturer_name(&nameplate_file, &nameplate.manufacturer_name, notes)
        .or(technical.general_information.manufacturer_name);
    if let Some(stage) = &nameplate.life_cycle_stage
        && stage != "waste"
    {
        notes.warn(
            &nameplate_file,
            format!("LifeCycleStage is '{stage}', not 'waste'"),
        );
    }

    let kg = technical.general_information.battery_mass;
    let mass = checks::unit_mass(
        &technical_file,
        "GeneralInformation.BatteryMass",
        kg,
        &format!("{} kg", show(kg)),
    )?;

    let chemistry = {
        let c = materials.battery_chemistry.as_ref();
        checks::named_chemistry(
            &materials_file,
            "BatteryChemistry",
            &[
                c.and_then(|c| c.short_name.as_deref()),
                c.and_then(|c| c.clear_name.as_deref()),
            ],
            notes,
        )
    };

    let mut tally = Tally::default();
    for (i, m) in materials.battery_materials.iter().enumerate() {
        let field = format!("BatteryMaterials[{i}]");
        let element = checks::element_of(
            &materials_file,
            &format!("{field}.BatteryMaterialIdentifier"),
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
            &format!("{field}.BatteryMaterialMass"),
            element,
            m.battery_material_mass,
            &format!("{} kg", show(m.battery_material_mass)),
        )?;
    }

    let soh = match condition
        .and_then(|c| c.state_of_certified_energy)
        .and_then(|s| s.state_of_certified_energy_value)
    {
        Some(v) => Some(checks::state_of_health(
            &condition_file,
            "StateOfCertifiedEnergy.StateOfCertifiedEnergyValue",
            v,
        )?),
        None => None,
    };

    Ok(Draft {
        fields: PassportFields {
            id,
            form: PassportForm::Idta,
            serial: nameplate.serial_number,
            manufacturer,
            chemistry,
            unit_type: UnitType::guess_from_mass(mass),
            mass,
            declared: tally.finish(),
            state_of_health_pct: soh,
            country_of_collection: None,
            gbt: None,
            warnings: Vec::new(),
        },
        blame: materials_file,
    })
}
