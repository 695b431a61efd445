//! The passport documents of the generated units, in the four forms the
//! plant meets (domain brief section 4), and the plant's copy of each.
//!
//! A [`Doc`] holds the numbers exactly as a document writes them (grams in
//! Battery Pass 1.2.0, concentrations in Catena-X 6.1.0, kilograms in
//! IDTA, no composition in a GB/T intake form), so that the JSON files and
//! the [`Passport`] the store receives come from one source: reading a
//! written file back with `remine_passports` gives the same passport. The
//! element entries follow the unit's true components (cathode and anode
//! active material, current collectors, steel housing, electrolyte), so a
//! declared passport equals the unit's truth up to the form's rounding.

use remine_domain::{
    Chemistry, CountryCode, DomainError, Element, ElementMasses, GbtCode, Kilograms, Passport,
    PassportFields, PassportForm, PassportId, UnitType,
};
use serde_json::{Value, json};

/// A fictional battery maker: name, URN namespace, serial prefix, BPNL
/// (Catena-X partner number), GB/T manufacturer code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Maker {
    pub(crate) name: &'static str,
    pub(crate) namespace: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) bpnl: &'static str,
    pub(crate) gbt: &'static str,
}

pub(crate) const MAKERS: [Maker; 6] = [
    Maker {
        name: "Rheinzelle GmbH",
        namespace: "rheinzelle",
        prefix: "RZB",
        bpnl: "BPNL0000000RZB01",
        gbt: "1RZ",
    },
    Maker {
        name: "Morvan Accumulateurs SAS",
        namespace: "morvan",
        prefix: "MRV",
        bpnl: "BPNL0000000MRV01",
        gbt: "2MV",
    },
    Maker {
        name: "Kestrel Power Systems GmbH",
        namespace: "kestrel",
        prefix: "KPS",
        bpnl: "BPNL0000000KPS01",
        gbt: "3KP",
    },
    Maker {
        name: "Talvik Battery Oy",
        namespace: "talvik",
        prefix: "TAL",
        bpnl: "BPNL0000000TAL02",
        gbt: "4TV",
    },
    Maker {
        name: "Norrsken Cells AB",
        namespace: "norrsken",
        prefix: "NSC",
        bpnl: "BPNL0000000NSC01",
        gbt: "5NS",
    },
    Maker {
        name: "Baltic Energy Storage SA",
        namespace: "balticstorage",
        prefix: "BES",
        bpnl: "BPNL0000000BES03",
        gbt: "6BE",
    },
];

/// How a Catena-X document writes the unit's weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WeightUnit {
    Kilogram,
    Gram,
}

impl WeightUnit {
    fn code(self) -> &'static str {
        match self {
            WeightUnit::Kilogram => "unit:kilogram",
            WeightUnit::Gram => "unit:gram",
        }
    }

    /// The reader's factor to kilograms.
    pub(crate) fn kg_per(self) -> f64 {
        match self {
            WeightUnit::Kilogram => 1.0,
            WeightUnit::Gram => 1e-3,
        }
    }
}

/// One material entry as written: grams (Battery Pass), kilograms (IDTA),
/// or a concentration in percent or ppm (Catena-X).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) element: Element,
    pub(crate) location: &'static str,
    pub(crate) value: f64,
    /// Catena-X: the value is in ppm (entries below 2 wt %), else percent.
    pub(crate) ppm: bool,
}

/// A unit's passport as its document writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Doc {
    pub(crate) form: PassportForm,
    /// The identifier as written (URN, bare or urn:uuid UUID, URI, GB/T
    /// code, or the plant's id for a unit without a passport).
    pub(crate) id: String,
    pub(crate) serial: String,
    pub(crate) maker: Maker,
    pub(crate) chemistry: Chemistry,
    pub(crate) unit_type: UnitType,
    /// The weight as written, and its unit (kilograms but in Catena-X).
    pub(crate) weight: f64,
    pub(crate) weight_unit: WeightUnit,
    pub(crate) entries: Vec<Entry>,
    pub(crate) soh_pct: Option<f64>,
    pub(crate) country: CountryCode,
    pub(crate) manufactured: String,
}

/// Elements by component, as the truth holds them, in document order.
pub(crate) type Components = Vec<(&'static str, Vec<(Element, f64)>)>;

impl Doc {
    /// The unit's mass in kg, computed as the reader computes it.
    pub(crate) fn mass_kg(&self) -> f64 {
        self.weight * self.weight_unit.kg_per()
    }

    /// The passport the plant keeps: what `remine_passports` reads from the
    /// written document (for the declared form: what the intake records).
    pub(crate) fn passport(&self) -> Result<Passport, DomainError> {
        let mass = Kilograms::new(self.mass_kg())?;
        let mut declared = ElementMasses::new();
        for e in &self.entries {
            let kg = match self.form {
                PassportForm::BatteryPass120 => e.value / 1000.0,
                PassportForm::CatenaX610 => {
                    let factor = if e.ppm { 1e-6 } else { 1e-2 };
                    e.value * factor * mass.kg()
                }
                _ => e.value,
            };
            declared.add(e.element, Kilograms::new(kg)?);
        }
        let declared = (!declared.is_empty()).then_some(declared);
        let (id, serial, manufacturer, soh, country, gbt) = match self.form {
            PassportForm::BatteryPass120 => (
                PassportId::urn(&self.id)?,
                Some(self.serial.clone()),
                Some(self.maker.name.to_string()),
                None,
                None,
                None,
            ),
            PassportForm::CatenaX610 => (
                PassportId::uuid(&self.id)?,
                Some(self.serial.clone()),
                Some(self.maker.bpnl.to_string()),
                self.soh_pct,
                None,
                None,
            ),
            PassportForm::Idta => (
                PassportId::uri(&self.id)?,
                Some(self.serial.clone()),
                Some(self.maker.name.to_string()),
                self.soh_pct,
                None,
                None,
            ),
            PassportForm::GbtIntake => {
                let code = GbtCode::parse(&self.id)?;
                (
                    PassportId::Gbt(code.clone()),
                    None,
                    None,
                    None,
                    Some(self.country.clone()),
                    Some(code),
                )
            }
            PassportForm::Declared => (
                PassportId::Plant(self.id.clone()),
                None,
                None,
                None,
                Some(self.country.clone()),
                None,
            ),
        };
        Passport::new(PassportFields {
            id,
            form: self.form,
            serial,
            manufacturer,
            chemistry: Some(self.chemistry),
            unit_type: self.unit_type,
            mass,
            declared,
            state_of_health_pct: soh,
            country_of_collection: country,
            gbt,
            warnings: Vec::new(),
        })
    }

    /// The entries of a declaring form from the unit's true components,
    /// rounded as the form writes them.
    pub(crate) fn entries_from(form: PassportForm, mass_kg: f64, parts: &Components) -> Vec<Entry> {
        let mut out = Vec::new();
        for (location, elements) in parts {
            for (element, kg) in elements {
                if *kg <= 0.0 {
                    continue;
                }
                let (value, ppm) = match form {
                    PassportForm::BatteryPass120 => (round(kg * 1000.0, 1), false),
                    PassportForm::CatenaX610 => {
                        let fraction = kg / mass_kg;
                        if fraction < 0.02 {
                            (round(fraction * 1e6, 1), true)
                        } else {
                            (round(fraction * 100.0, 5), false)
                        }
                    }
                    _ => (round(*kg, 6), false),
                };
                if value > 0.0 {
                    out.push(Entry {
                        element: *element,
                        location,
                        value,
                        ppm,
                    });
                }
            }
        }
        out
    }

    /// The files of the document: (path relative to the passports folder,
    /// JSON). Folders for Battery Pass, Catena-X and IDTA (named after the
    /// serial), one `<code>.json` for a GB/T intake form, none for a unit
    /// without a passport.
    pub(crate) fn files(&self) -> Vec<(String, Value)> {
        let dir = &self.serial;
        match self.form {
            PassportForm::BatteryPass120 => vec![
                (
                    format!("{dir}/GeneralProductInformation.json"),
                    json!({
                        "productIdentifier": self.serial,
                        "batteryPassportIdentifier": self.id,
                        "batteryCategory": category(self.unit_type),
                        "manufacturerInformation": {
                            "contactName": self.maker.name,
                            "identifier": self.maker.bpnl,
                            "webAddress": format!("https://www.{}.example/", self.maker.namespace),
                        },
                        "manufacturingDate": format!("{}T07:30:00Z", self.manufactured),
                        "batteryStatus": "Waste",
                        "batteryMass": self.weight,
                    }),
                ),
                (
                    format!("{dir}/MaterialComposition.json"),
                    json!({
                        "batteryChemistry": {
                            "shortName": self.chemistry.name(),
                            "clearName": clear_name(self.chemistry),
                        },
                        "batteryMaterials": self.entries.iter().map(|e| json!({
                            "batteryMaterialLocation": { "componentName": e.location },
                            "batteryMaterialIdentifier": e.element.cas(),
                            "batteryMaterialName": element_name(e.element),
                            "batteryMaterialMass": e.value,
                            "isCriticalRawMaterial": critical(e.element),
                        })).collect::<Vec<_>>(),
                        "hazardousSubstances": [],
                    }),
                ),
                (
                    format!("{dir}/Circularity.json"),
                    json!({
                        "dismantlingAndRemovalInformation": [],
                        "sparePartSources": [],
                        "recycledContent": [],
                        "renewableContent": 0.0,
                    }),
                ),
            ],
            PassportForm::CatenaX610 => {
                let mut doc = json!({
                    "specVersion": "urn:io.catenax.battery.battery_pass:6.1.0",
                    "metadata": {
                        "passportIdentifier": self.id,
                        "status": "approved",
                        "version": "1.0.0",
                    },
                    "identification": {
                        "category": category(self.unit_type),
                        "chemistry": self.chemistry.name(),
                        "identification": {
                            "serial": [ { "key": "partInstanceId", "value": self.serial } ],
                            "type": {
                                "manufacturerPartId": format!("{}-{}", self.maker.prefix, self.chemistry.name()),
                                "nameAtManufacturer": format!("Battery {}", self.unit_type.name()),
                            },
                        },
                    },
                    "operation": { "manufacturer": { "manufacturer": self.maker.bpnl } },
                    "characteristics": {
                        "physicalDimension": { "weight": { "value": self.weight, "unit": self.weight_unit.code() } },
                    },
                    "sustainability": { "status": "waste" },
                    "materials": {
                        "composition": self.entries.iter().map(|e| json!({
                            "id": [ { "type": "CAS", "name": element_name(e.element), "id": e.element.cas() } ],
                            "concentration": e.value,
                            "unit": if e.ppm { "unit:partPerMillion" } else { "unit:percent" },
                        })).collect::<Vec<_>>(),
                    },
                });
                if let (Some(soh), Value::Object(map)) = (self.soh_pct, &mut doc) {
                    let time = format!("{}T10:00:00Z", self.manufactured);
                    map.insert(
                        "performance".into(),
                        json!({ "dynamic": {
                            "energy": { "soce": { "value": soh, "time": time } },
                            "capacity": { "fade": { "value": round(100.0 - soh, 1), "time": time } },
                        }}),
                    );
                }
                vec![(format!("{dir}/BatteryPass.json"), doc)]
            }
            PassportForm::Idta => {
                let mut files = vec![
                    (
                        format!("{dir}/NameplateBattery.json"),
                        json!({
                            "URIOfTheProduct": self.id,
                            "ManufacturerName": [ { "en": self.maker.name } ],
                            "SerialNumber": self.serial,
                            "DateOfManufacture": self.manufactured,
                            "LifeCycleStage": "waste",
                        }),
                    ),
                    (
                        format!("{dir}/TechnicalDataBattery.json"),
                        json!({
                            "GeneralInformation": {
                                "ManufacturerName": self.maker.name,
                                "BatteryCategory": category(self.unit_type),
                                "BatteryMass": self.weight,
                            },
                            "TechnicalPropertyAreas": {},
                        }),
                    ),
                    (
                        format!("{dir}/MaterialCompositionBattery.json"),
                        json!({
                            "BatteryChemistry": {
                                "ShortName": self.chemistry.name(),
                                "ClearName": clear_name(self.chemistry),
                            },
                            "BatteryMaterials": self.entries.iter().map(|e| json!({
                                "BatteryMaterialLocation": { "ComponentName": e.location },
                                "BatteryMaterialIdentifier": e.element.cas(),
                                "BatteryMaterialName": element_name(e.element),
                                "BatteryMaterialMass": e.value,
                                "IsCriticalRawMaterial": critical(e.element),
                            })).collect::<Vec<_>>(),
                            "HazardousSubstances": [],
                        }),
                    ),
                ];
                if let Some(soh) = self.soh_pct {
                    files.push((
                        format!("{dir}/ProductConditionBattery.json"),
                        json!({
                            "StateOfCertifiedEnergy": {
                                "StateOfCertifiedEnergyValue": soh,
                                "LastUpdate": format!("{}T08:00:00Z", self.manufactured),
                            },
                        }),
                    ));
                }
                files
            }
            PassportForm::GbtIntake => vec![(
                format!("{}.json", self.id),
                json!({
                    "gbt34014": self.id,
                    "declaredChemistry": self.chemistry.name(),
                    "unitType": self.unit_type.name(),
                    "massKg": self.weight,
                    "countryOfCollection": self.country.as_str(),
                }),
            )],
            PassportForm::Declared => Vec::new(),
        }
    }
}

/// `x` rounded to `decimals` decimal places.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn category(t: UnitType) -> &'static str {
    match t {
        UnitType::Pack => "ev",
        UnitType::Module | UnitType::Cell => "industrial",
    }
}

fn element_name(e: Element) -> &'static str {
    match e {
        Element::Li => "Lithium",
        Element::Ni => "Nickel",
        Element::Co => "Cobalt",
        Element::Mn => "Manganese",
        Element::Cu => "Copper",
        Element::Al => "Aluminium",
        Element::Fe => "Iron",
        Element::P => "Phosphorus",
        Element::Graphite => "Graphite",
    }
}

fn critical(e: Element) -> bool {
    !matches!(e, Element::Fe)
}

fn clear_name(c: Chemistry) -> &'static str {
    match c {
        Chemistry::Nmc111 => "Lithium nickel manganese cobalt oxide (LiNi0.33Mn0.33Co0.33O2)",
        Chemistry::Nmc532 => "Lithium nickel manganese cobalt oxide (LiNi0.5Mn0.3Co0.2O2)",
        Chemistry::Nmc622 => "Lithium nickel manganese cobalt oxide (LiNi0.6Mn0.2Co0.2O2)",
        Chemistry::Nmc811 => "Lithium nickel manganese cobalt oxide (LiNi0.8Mn0.1Co0.1O2)",
        Chemistry::Nca => "Lithium nickel cobalt aluminium oxide (LiNi0.8Co0.15Al0.05O2)",
        Chemistry::Lfp => "Lithium iron phosphate (LiFePO4)",
        Chemistry::Lmo => "Lithium manganese oxide (LiMn2O4)",
    }
}
