//! The input units of a year: chemistry, unit type, mass, country of
//! collection and passport form in realistic shares, and each unit's true
//! make-up drawn by the simulator's own pack model
//! ([`remine_sim::model::material::draw_pack`]).
//!
//! Shares (E, a European plant around 2025): chemistries NMC622 18 %,
//! NMC811 17 %, NMC532 12 %, NMC111 8 %, NCA 7 %, LFP 30 %, LMO 8 %; by count
//! packs 12 %, modules 48 %, cells 40 %; passports Battery Pass 1.2.0 18 %,
//! Catena-X 6.1.0 17 %, IDTA 15 %, GB/T code only 15 %, none (a declared
//! chemistry only) 35 %. Packs hold 40-100 kWh at the brief's mass per
//! 100 kWh; modules weigh 8-35 kg; cells 0.05-4.9 kg (cylindrical, pouch,
//! prismatic), so that a reader guessing the type from the mass guesses right.

use crate::passports::{Components, Doc, MAKERS, WeightUnit, round};
use remine_domain::{Chemistry, CountryCode, Element, PassportForm, UnitType};
use remine_sim::Noise;
use remine_sim::model::material::{Component, PackMaterial, draw_pack};

const CHEMISTRIES: [(Chemistry, f64); 7] = [
    (Chemistry::Nmc622, 0.18),
    (Chemistry::Nmc811, 0.17),
    (Chemistry::Nmc532, 0.12),
    (Chemistry::Nmc111, 0.08),
    (Chemistry::Nca, 0.07),
    (Chemistry::Lfp, 0.30),
    (Chemistry::Lmo, 0.08),
];

const UNIT_TYPES: [(UnitType, f64); 3] = [
    (UnitType::Pack, 0.12),
    (UnitType::Module, 0.48),
    (UnitType::Cell, 0.40),
];

const FORMS: [(PassportForm, f64); 5] = [
    (PassportForm::BatteryPass120, 0.18),
    (PassportForm::CatenaX610, 0.17),
    (PassportForm::Idta, 0.15),
    (PassportForm::GbtIntake, 0.15),
    (PassportForm::Declared, 0.35),
];

/// Countries of collection (E): the EU, plus Norway, the UK and Switzerland.
const COUNTRIES: [(&str, f64); 16] = [
    ("DE", 0.28),
    ("FR", 0.12),
    ("PL", 0.09),
    ("IT", 0.08),
    ("ES", 0.07),
    ("NL", 0.05),
    ("BE", 0.04),
    ("SE", 0.04),
    ("CZ", 0.04),
    ("AT", 0.03),
    ("HU", 0.03),
    ("NO", 0.03),
    ("GB", 0.04),
    ("CH", 0.02),
    ("DK", 0.02),
    ("FI", 0.02),
];

/// Pack mass for 100 kWh (domain brief section 2; NMC532 and LMO (E)).
fn pack_kg_per_100kwh(c: Chemistry) -> f64 {
    match c {
        Chemistry::Nmc811 => 499.0,
        Chemistry::Nmc622 => 523.0,
        Chemistry::Nmc532 => 537.0,
        Chemistry::Nmc111 => 551.0,
        Chemistry::Nca => 511.0,
        Chemistry::Lfp => 666.0,
        Chemistry::Lmo => 600.0,
    }
}

pub(crate) fn pick<T: Copy>(noise: &mut Noise, table: &[(T, f64)]) -> Option<T> {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut u = noise.uniform(0.0, total);
    for (item, w) in table {
        if u < *w {
            return Some(*item);
        }
        u -= w;
    }
    table.last().map(|(item, _)| *item)
}

/// A drawn unit: its passport document and its true make-up.
#[derive(Debug, Clone)]
pub(crate) struct Drawn {
    pub(crate) doc: Doc,
    pub(crate) material: PackMaterial,
}

const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const GBT_YEARS: &[u8] = b"FGHJKLMNPR"; // 2015..2024
const GBT_MONTHS: &[u8] = b"123456789ABC";
const GBT_DAYS: &[u8] = b"123456789ABCDEFGHJKLMNPRSTUVWXY";

fn chars(noise: &mut Noise, set: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| {
            let i = (noise.uniform(0.0, set.len() as f64) as usize).min(set.len() - 1);
            set[i] as char
        })
        .collect()
}

fn uuid_v4(noise: &mut Noise) -> String {
    let hex = chars(noise, b"0123456789abcdef", 32);
    let variant = chars(noise, b"89ab", 1);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}

/// Draws unit number `index` (1-based) of the year. `plant_id` names a
/// unit that arrives without a passport.
pub(crate) fn draw_unit(noise: &mut Noise, index: usize, plant_id: &str) -> Option<Drawn> {
    let chemistry = pick(noise, &CHEMISTRIES)?;
    let unit_type = pick(noise, &UNIT_TYPES)?;
    let form = pick(noise, &FORMS)?;
    let country = CountryCode::parse(pick(noise, &COUNTRIES)?).ok()?;
    let maker = MAKERS[(noise.uniform(0.0, MAKERS.len() as f64) as usize).min(MAKERS.len() - 1)];

    let mass_kg = match unit_type {
        UnitType::Pack => round(pack_kg_per_100kwh(chemistry) * noise.uniform(0.40, 1.0), 1),
        UnitType::Module => round(noise.uniform(8.0, 35.0), 2),
        UnitType::Cell => {
            let nominal = if chemistry == Chemistry::Lfp {
                noise.uniform(2.0, 4.8)
            } else {
                pick(
                    noise,
                    &[(0.047, 0.2), (0.069, 0.3), (0.95, 0.3), (2.1, 0.2)],
                )? * (1.0 + noise.gauss(0.02))
            };
            round(nominal.clamp(0.03, 4.9), 3)
        }
    };
    // Catena-X writes small units in grams now and then; the true mass is
    // the reader's product, so the passport states it exactly.
    let (weight, weight_unit) = if form == PassportForm::CatenaX610 && unit_type == UnitType::Cell {
        (round(mass_kg * 1000.0, 0), WeightUnit::Gram)
    } else {
        (mass_kg, WeightUnit::Kilogram)
    };
    let mass_kg = weight * weight_unit.kg_per();
    let material = draw_pack(chemistry, mass_kg, noise);

    let year = 2012 + (noise.uniform(0.0, 11.0) as i32).min(10);
    let month = 1 + (noise.uniform(0.0, 12.0) as u32).min(11);
    let day = 1 + (noise.uniform(0.0, 28.0) as u32).min(27);
    let manufactured = format!("{year:04}-{month:02}-{day:02}");
    let type_letter = match unit_type {
        UnitType::Pack => 'P',
        UnitType::Module => 'M',
        UnitType::Cell => 'C',
    };
    let serial = format!(
        "{}{:02}{type_letter}{index:07}",
        maker.prefix,
        year.rem_euclid(100)
    );
    let id = match form {
        PassportForm::BatteryPass120 => {
            format!("urn:{}:{}", maker.namespace, serial.to_ascii_lowercase())
        }
        PassportForm::CatenaX610 => {
            let uuid = uuid_v4(noise);
            if index.is_multiple_of(2) {
                format!("urn:uuid:{uuid}")
            } else {
                uuid
            }
        }
        PassportForm::Idta => format!(
            "https://id.{}.example/{}/{serial}",
            maker.namespace,
            unit_type.name()
        ),
        PassportForm::GbtIntake => {
            let battery = match chemistry {
                Chemistry::Lfp => 'B',
                Chemistry::Lmo => 'C',
                _ => 'E',
            };
            format!(
                "{}{type_letter}{battery}{}{}{}{}{}{:07}",
                maker.gbt,
                chars(noise, ALNUM, 2),
                chars(noise, ALNUM, 7),
                chars(noise, GBT_YEARS, 1),
                chars(noise, GBT_MONTHS, 1),
                chars(noise, GBT_DAYS, 1),
                index % 10_000_000
            )
        }
        PassportForm::Declared => plant_id.to_string(),
    };
    let soh_pct = match form {
        PassportForm::CatenaX610 | PassportForm::Idta if noise.uniform(0.0, 1.0) < 0.7 => {
            Some(round(noise.uniform(60.0, 95.0), 1))
        }
        _ => None,
    };
    let entries = match form {
        PassportForm::BatteryPass120 | PassportForm::CatenaX610 | PassportForm::Idta => {
            Doc::entries_from(form, mass_kg, &components(&material))
        }
        _ => Vec::new(),
    };
    Some(Drawn {
        doc: Doc {
            form,
            id,
            serial,
            maker,
            chemistry,
            unit_type,
            weight,
            weight_unit,
            entries,
            soh_pct,
            country,
            manufactured,
        },
        material,
    })
}

/// The tracked elements of a unit by where they sit, in document order;
/// together they are all of the unit's tracked elements.
fn components(m: &PackMaterial) -> Components {
    let of = |c: Component, elements: &[Element]| -> Vec<(Element, f64)> {
        elements
            .iter()
            .map(|e| (*e, m.component(c).element(*e)))
            .collect()
    };
    vec![
        (
            "Cathode active material",
            of(
                Component::ActiveMass,
                &[
                    Element::Li,
                    Element::Ni,
                    Element::Co,
                    Element::Mn,
                    Element::Fe,
                    Element::P,
                    Element::Al,
                    Element::Cu,
                ],
            ),
        ),
        (
            "Anode active material",
            of(Component::ActiveMass, &[Element::Graphite]),
        ),
        (
            "Cathode current collector and housing",
            of(Component::Aluminium, &Element::ALL),
        ),
        (
            "Anode current collector and busbars",
            of(Component::Copper, &Element::ALL),
        ),
        ("Housing (steel)", of(Component::Steel, &Element::ALL)),
        ("Electrolyte", of(Component::Electrolyte, &Element::ALL)),
        (
            "Separator and covers",
            of(Component::Plastics, &Element::ALL),
        ),
    ]
}
