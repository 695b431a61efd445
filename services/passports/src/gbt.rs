//! The plant's GB/T 34014 intake form: one `<code>.json` per unit with the
//! 24-character code, the declared chemistry, the unit type, the weighed
//! mass in kg and the country of collection. Its schema forbids other
//! members, and so does this reader. It declares no composition: the domain
//! estimates one from the chemistry.

use crate::ImportError;
use crate::checks::{self, show};
use crate::import::Draft;
use crate::read::{Notes, read_json};
use remine_domain::{Chemistry, GbtCode, PassportFields, PassportForm, PassportId, UnitType};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IntakeForm {
    gbt34014: String,
    declared_chemistry: String,
    unit_type: String,
    mass_kg: f64,
    country_of_collection: String,
}

pub(crate) fn read(file: &Path, notes: &mut Notes) -> Result<Draft, ImportError> {
    let form: IntakeForm = read_json(file, notes)?;

    let code = GbtCode::parse(&form.gbt34014)
        .map_err(|e| ImportError::rejected(file, "gbt34014", e.to_string()))?;
    let stem = file.file_stem().map(|s| s.to_string_lossy());
    if let Some(stem) = stem
        && stem != code.as_str()
    {
        notes.warn(
            file,
            format!("file name '{stem}' differs from the code {code}"),
        );
    }

    let chemistry = Chemistry::ALL
        .into_iter()
        .find(|c| c.name() == form.declared_chemistry)
        .ok_or_else(|| {
            let names: Vec<&str> = Chemistry::ALL.iter().map(|c| c.name()).collect();
            ImportError::rejected(
                file,
                "declaredChemistry",
                format!(
                    "declaredChemistry '{}' is not one of {}",
                    form.declared_chemistry,
                    names.join(", ")
                ),
            )
        })?;

    let unit_type = UnitType::from_name(&form.unit_type).ok_or_else(|| {
        ImportError::rejected(
            file,
            "unitType",
            format!(
                "unitType '{}' is not one of pack, module, cell",
                form.unit_type
            ),
        )
    })?;
    if unit_type != code.unit_type() {
        return Err(ImportError::rejected(
            file,
            "unitType",
            format!(
                "unitType '{}' contradicts the GB/T code, whose product type says {}",
                form.unit_type,
                code.unit_type().name()
            ),
        ));
    }

    let mass = checks::unit_mass(
        file,
        "massKg",
        form.mass_kg,
        &format!("{} kg", show(form.mass_kg)),
    )?;
    let country = checks::country(file, "countryOfCollection", &form.country_of_collection)?;

    Ok(Draft {
        fields: PassportFields {
            id: PassportId::Gbt(code.clone()),
            form: PassportForm::GbtIntake,
            serial: None,
            manufacturer: None,
            chemistry: Some(chemistry),
            unit_type,
            mass,
            declared: None,
            state_of_health_pct: None,
            country_of_collection: Some(country),
            gbt: Some(code),
            warnings: Vec::new(),
        },
        blame: file.to_path_buf(),
    })
}
