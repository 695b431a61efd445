//! Catena-X io.catenax.battery.battery_pass 6.1.0: a unit folder with one
//! `BatteryPass.json`. The weight carries its own unit; the composition is
//! concentrations (percent, per mille, ppm...) of that weight, not masses.

use crate::ImportError;
use crate::checks::{self, Tally, show};
use crate::import::Draft;
use crate::read::{Notes, read_json};
use remine_domain::{PassportFields, PassportForm, PassportId, UnitType};
use serde::Deserialize;
use std::path::Path;

pub(crate) const FILE: &str = "BatteryPass.json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatteryPass {
    spec_version: Option<String>,
    metadata: Metadata,
    identification: Identification,
    operation: Option<Operation>,
    characteristics: Characteristics,
    sustainability: Option<Sustainability>,
    materials: Option<Materials>,
    performance: Option<Performance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    passport_identifier: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identification {
    chemistry: Option<String>,
    identification: Option<Identifiers>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identifiers {
    #[serde(default)]
    serial: Vec<KeyValue>,
    #[serde(rename = "type")]
    kind: Option<PartType>,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartType {
    name_at_manufacturer: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    manufacturer: Option<ManufacturerInfo>,
}

#[derive(Debug, Deserialize)]
struct ManufacturerInfo {
    manufacturer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Characteristics {
    physical_dimension: PhysicalDimension,
}

#[derive(Debug, Deserialize)]
struct PhysicalDimension {
    weight: Quantity,
}

#[derive(Debug, Deserialize)]
struct Quantity {
    value: f64,
    unit: String,
}

#[derive(Debug, Deserialize)]
struct Sustainability {
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Materials {
    #[serde(default)]
    composition: Vec<CompositionEntry>,
}

#[derive(Debug, Deserialize)]
struct CompositionEntry {
    #[serde(default)]
    id: Vec<MaterialId>,
    concentration: f64,
    unit: String,
}

#[derive(Debug, Deserialize)]
struct MaterialId {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Performance {
    dynamic: Option<Dynamic>,
}

#[derive(Debug, Deserialize)]
struct Dynamic {
    energy: Option<Energy>,
    capacity: Option<Capacity>,
}

#[derive(Debug, Deserialize)]
struct Energy {
    soce: Option<Stamped>,
}

#[derive(Debug, Deserialize)]
struct Capacity {
    fade: Option<Stamped>,
}

#[derive(Debug, Deserialize)]
struct Stamped {
    value: f64,
}

/// Kilograms per unit of the schema's MassUnitEnumeration.
fn kg_per(unit: &str) -> Option<f64> {
    match unit {
        "unit:gram" => Some(1e-3),
        "unit:kilogram" => Some(1.0),
        "unit:tonneMetricTon" => Some(1e3),
        "unit:tonUsOrShortTonUkorus" => Some(907.184_74),
        "unit:pound" => Some(0.453_592_37),
        "unit:ounceAvoirdupois" => Some(0.028_349_523_125),
        _ => None,
    }
}

/// What one unit of the schema's ConcentrationEnumeration is as a mass
/// fraction; `Volume` for percentVolume, which is no mass fraction at all.
enum Concentration {
    Mass(f64),
    Volume,
}

fn concentration(unit: &str) -> Option<Concentration> {
    match unit {
        "unit:percent" => Some(Concentration::Mass(1e-2)),
        "unit:partPerThousand" => Some(Concentration::Mass(1e-3)),
        "unit:partPerMillion" => Some(Concentration::Mass(1e-6)),
        "unit:partPerBillionUs" => Some(Concentration::Mass(1e-9)),
        "unit:partPerTrillionUs" => Some(Concentration::Mass(1e-12)),
        "unit:percentVolume" => Some(Concentration::Volume),
        _ => None,
    }
}

pub(crate) fn read(dir: &Path, notes: &mut Notes) -> Result<Draft, ImportError> {
    let file = dir.join(FILE);
    let doc: BatteryPass = read_json(&file, notes)?;

    if let Some(v) = &doc.spec_version
        && !v.ends_with(":6.1.0")
    {
        notes.warn(
            &file,
            format!("specVersion is '{v}'; read as battery_pass 6.1.0"),
        );
    }
    let id = PassportId::uuid(&doc.metadata.passport_identifier)
        .map_err(|e| ImportError::rejected(&file, "metadata.passportIdentifier", e.to_string()))?;

    let weight = &doc.characteristics.physical_dimension.weight;
    let field = "characteristics.physicalDimension.weight";
    let factor = kg_per(&weight.unit).ok_or_else(|| {
        ImportError::rejected(
            &file,
            field,
            format!("unknown mass unit '{}' in {field}.unit", weight.unit),
        )
    })?;
    let mass = checks::unit_mass(
        &file,
        field,
        weight.value * factor,
        &format!("{} {}", show(weight.value), weight.unit),
    )?;

    if let Some(status) = doc.sustainability.as_ref().and_then(|s| s.status.as_ref())
        && status != "waste"
    {
        notes.warn(
            &file,
            format!("sustainability.status is '{status}', not 'waste'"),
        );
    }

    let chemistry = checks::named_chemistry(
        &file,
        "identification.chemistry",
        &[doc.identification.chemistry.as_deref()],
        notes,
    );

    let declared = composition(&file, &doc, mass.kg(), notes)?;

    let soh = state_of_health(&file, &doc, notes)?;

    let ids = doc.identification.identification.as_ref();
    let serial = ids.and_then(|i| {
        i.serial
            .iter()
            .find(|kv| kv.key == "partInstanceId")
            .map(|kv| kv.value.clone())
    });
    let name = ids
        .and_then(|i| i.kind.as_ref())
        .and_then(|t| t.name_at_manufacturer.as_deref());
    let unit_type = name
        .and_then(checks::unit_type_from_name)
        .unwrap_or_else(|| UnitType::guess_from_mass(mass));

    Ok(Draft {
        fields: PassportFields {
            id,
            form: PassportForm::CatenaX610,
            serial,
            manufacturer: doc
                .operation
                .and_then(|o| o.manufacturer)
                .and_then(|m| m.manufacturer),
            chemistry,
            unit_type,
            mass,
            declared,
            state_of_health_pct: soh,
            country_of_collection: None,
            gbt: None,
            warnings: Vec::new(),
        },
        blame: file,
    })
}

/// Element masses from concentrations x weight. A composition in volume
/// percent is refused as a whole (the unit keeps its chemistry estimate);
/// concentrations summing above 100 % refuse the unit.
fn composition(
    file: &Path,
    doc: &BatteryPass,
    mass_kg: f64,
    notes: &mut Notes,
) -> Result<Option<remine_domain::ElementMasses>, ImportError> {
    let entries = doc
        .materials
        .as_ref()
        .map(|m| m.composition.as_slice())
        .unwrap_or_default();
    let mut tally = Tally::default();
    let mut sum = 0.0;
    let mut volume_entries = 0;
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("materials.composition[{i}]");
        let factor = match concentration(&entry.unit) {
            Some(Concentration::Mass(f)) => f,
            Some(Concentration::Volume) => {
                volume_entries += 1;
                continue;
            }
            None => {
                return Err(ImportError::rejected(
                    file,
                    &field,
                    format!(
                        "unknown concentration unit '{}' in {field}.unit",
                        entry.unit
                    ),
                ));
            }
        };
        let as_written = format!("{} {}", show(entry.concentration), entry.unit);
        if entry.concentration.is_nan() || entry.concentration < 0.0 {
            return Err(ImportError::rejected(
                file,
                &field,
                format!("{field}.concentration must be >= 0 (got {as_written})"),
            ));
        }
        let fraction = entry.concentration * factor;
        sum += fraction;
        let cas = entry
            .id
            .iter()
            .find(|m| m.kind.as_deref() == Some("CAS"))
            .and_then(|m| m.id.as_deref());
        let name = entry.id.iter().find_map(|m| m.name.as_deref());
        match checks::element_of(file, &format!("{field}.id"), cas, name)? {
            Some(element) => {
                tally.add(file, &field, element, fraction * mass_kg, &as_written)?;
            }
            None => notes.warn(
                file,
                format!(
                    "{field} ('{}') is not a material the plant accounts for; not counted",
                    name.unwrap_or("unnamed")
                ),
            ),
        }
    }
    if volume_entries > 0 {
        notes.warn(
            file,
            format!(
                "materials.composition: {volume_entries} of {} entries in unit:percentVolume; volume percent cannot be converted to element mass, so the composition is refused and the content estimated from the chemistry",
                entries.len()
            ),
        );
        return Ok(None);
    }
    if sum > 1.0 + 1e-9 {
        return Err(ImportError::rejected(
            file,
            "materials.composition",
            format!(
                "materials.composition: declared concentrations sum to {:.1} % (> 100 %)",
                sum * 100.0
            ),
        ));
    }
    Ok(tally.finish())
}

/// The state of certified energy (soce), cross-checked against the
/// capacity fade where both are given (fade = 100 - SoH).
fn state_of_health(
    file: &Path,
    doc: &BatteryPass,
    notes: &mut Notes,
) -> Result<Option<f64>, ImportError> {
    let dynamic = doc.performance.as_ref().and_then(|p| p.dynamic.as_ref());
    let soce = dynamic
        .and_then(|d| d.energy.as_ref())
        .and_then(|e| e.soce.as_ref())
        .map(|s| s.value);
    let Some(soce) = soce else {
        return Ok(None);
    };
    let soh = checks::state_of_health(file, "performance.dynamic.energy.soce.value", soce)?;
    let fade = dynamic
        .and_then(|d| d.capacity.as_ref())
        .and_then(|c| c.fade.as_ref())
        .map(|f| f.value);
    if let Some(fade) = fade
        && (soh + fade - 100.0).abs() > 1.0
    {
        notes.warn(
            file,
            format!(
                "state of health {} % and capacity fade {} % do not add up to 100 %",
                show(soh),
                show(fade)
            ),
        );
    }
    Ok(Some(soh))
}
