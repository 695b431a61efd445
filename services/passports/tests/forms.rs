//! The importer on this crate's own fixtures (tests/fixtures/units), one per
//! form, and on defective copies of them made one change at a time: these
//! run without ../shared.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod common;

use common::close;
use remine_domain::{Chemistry, ContentSource, Element, PassportForm, UnitType};
use remine_passports::{ImportedUnit, read_unit};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const BP: &str = "MRV23M0001234";
const CX: &str = "TAL22P0098765";
const IDTA: &str = "KPS21C0004242";
const GBT: &str = "2QRPE7AK3LM92XN6F0004711.json";

fn fixture(unit: &str) -> PathBuf {
    common::fixtures().join("units").join(unit)
}

/// What an accepted fixture must read as.
struct Expect {
    id: &'static str,
    form: PassportForm,
    chemistry: Chemistry,
    unit_type: UnitType,
    mass_kg: f64,
    /// Declared element masses; empty for an estimate.
    elements: &'static [(Element, f64)],
    soh: Option<f64>,
    country: Option<&'static str>,
}

fn check_unit(unit: &ImportedUnit, want: &Expect) {
    let p = &unit.passport;
    assert_eq!(p.id().as_str(), want.id);
    assert_eq!(p.form(), want.form, "{}", want.id);
    assert_eq!(p.chemistry(), Some(want.chemistry), "{}", want.id);
    assert_eq!(p.unit_type(), want.unit_type, "{}", want.id);
    assert!(
        close(p.mass().kg(), want.mass_kg),
        "{}: {}",
        want.id,
        p.mass()
    );
    let content = p.content().unwrap();
    if want.elements.is_empty() {
        assert_eq!(content.source, ContentSource::Estimated, "{}", want.id);
    } else {
        assert_eq!(content.source, ContentSource::Declared, "{}", want.id);
        assert_eq!(
            content.masses.iter().count(),
            want.elements.len(),
            "{}",
            want.id
        );
        for (e, kg) in want.elements {
            let got = content.masses.get(*e).kg();
            assert!(
                close(got, *kg),
                "{} {e}: {got} kg, expected {kg} kg",
                want.id
            );
        }
    }
    assert_eq!(p.state_of_health_pct(), want.soh, "{}", want.id);
    assert_eq!(
        p.country_of_collection().map(|c| c.as_str()),
        want.country,
        "{}",
        want.id
    );
    assert!(unit.warnings.is_empty(), "{}: {:?}", want.id, unit.warnings);
}

#[test]
fn a_battery_pass_folder_gives_grams_as_kilograms_and_sums_each_element() {
    let unit = read_unit(&fixture(BP)).unwrap();
    check_unit(
        &unit,
        &Expect {
            id: "urn:morvan:mrv23m0001234",
            form: PassportForm::BatteryPass120,
            chemistry: Chemistry::Nmc622,
            unit_type: UnitType::Module,
            mass_kg: 24.5,
            elements: &[
                (Element::Li, 0.588),
                (Element::Ni, 2.999),
                (Element::Co, 1.0),
                (Element::Mn, 0.941),
                (Element::Al, 0.858 + 2.45),
                (Element::Cu, 2.818 + 0.245),
                (Element::Graphite, 4.62),
            ],
            soh: None,
            country: None,
        },
    );
    assert_eq!(unit.passport.serial(), Some("MRV23M0001234"));
    assert_eq!(
        unit.passport.manufacturer(),
        Some("Morvan Accumulateurs SAS")
    );
}

#[test]
fn a_catena_x_folder_gives_concentrations_times_a_weight_in_pounds() {
    let unit = read_unit(&fixture(CX)).unwrap();
    let m = 453.592_37;
    check_unit(
        &unit,
        &Expect {
            id: "urn:uuid:4f6c2a91-7d3e-4b8a-9c15-2e0d8b7a6f31",
            form: PassportForm::CatenaX610,
            chemistry: Chemistry::Nca,
            unit_type: UnitType::Pack,
            mass_kg: m,
            elements: &[
                (Element::Li, 0.0205 * 453.592_37),
                (Element::Ni, 0.131 * 453.592_37),
                (Element::Co, 0.0246 * 453.592_37),
                (Element::Al, (0.0041 + 0.025 + 0.196) * 453.592_37),
                (Element::Cu, (0.081 + 0.0061) * 453.592_37),
                (Element::Graphite, 0.174 * 453.592_37),
            ],
            soh: Some(78.5),
            country: None,
        },
    );
    assert_eq!(unit.passport.serial(), Some("TAL22P0098765"));
}

#[test]
fn an_idta_folder_gives_kilograms_and_the_state_of_certified_energy() {
    let unit = read_unit(&fixture(IDTA)).unwrap();
    check_unit(
        &unit,
        &Expect {
            id: "https://id.kestrel-power.example/cell/KPS21C0004242",
            form: PassportForm::Idta,
            chemistry: Chemistry::Lfp,
            unit_type: UnitType::Cell,
            mass_kg: 1.98,
            elements: &[
                (Element::Li, 0.0347),
                (Element::Fe, 0.2833),
                (Element::P, 0.1577),
                (Element::Al, 0.0693 + 0.1386),
                (Element::Cu, 0.2277),
                (Element::Graphite, 0.3861),
            ],
            soh: Some(82.0),
            country: None,
        },
    );
    assert_eq!(
        unit.passport.manufacturer(),
        Some("Kestrel Power Systems GmbH"),
        "the English language string is preferred"
    );
}

#[test]
fn a_gbt_intake_form_gives_its_code_country_and_an_estimate() {
    let unit = read_unit(&fixture(GBT)).unwrap();
    check_unit(
        &unit,
        &Expect {
            id: "2QRPE7AK3LM92XN6F0004711",
            form: PassportForm::GbtIntake,
            chemistry: Chemistry::Nmc532,
            unit_type: UnitType::Pack,
            mass_kg: 402.6,
            elements: &[],
            soh: None,
            country: Some("PL"),
        },
    );
    assert_eq!(
        unit.passport.gbt().map(|c| c.as_str()),
        Some("2QRPE7AK3LM92XN6F0004711")
    );
}

#[test]
fn a_file_of_a_folder_form_stands_for_its_folder() {
    let unit = read_unit(&fixture(CX).join("BatteryPass.json")).unwrap();
    assert_eq!(unit.source, fixture(CX));
}

/// One change to one JSON member of a copy of a fixture.
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}
use Edit::{Remove, Set};

/// What the importer must say about the changed copy.
enum Verdict {
    Refused(&'static str),
    Accepted(&'static str),
}
use Verdict::{Accepted, Refused};

/// Copies fixture `unit` into a temporary folder; returns the copy's path.
fn copy_unit(unit: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let from = fixture(unit);
    let to = tmp.path().join(unit);
    if from.is_dir() {
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    } else {
        std::fs::copy(&from, &to).unwrap();
    }
    (tmp, to)
}

fn apply(file: &Path, edit: Edit) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    match edit {
        Set(pointer, value) => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = doc.pointer_mut(parent).unwrap();
            match target {
                Value::Object(map) => {
                    map.insert(key.to_string(), value);
                }
                Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
                _ => panic!("{pointer} has no parent container"),
            }
        }
        Remove(pointer) => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            doc.pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key)
                .unwrap();
        }
    }
    std::fs::write(file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// Changes `file` of a copy of `unit` (`""`: the unit is the file) and
/// asserts the verdict; a refusal must name that file.
fn check(unit: &str, file: &str, edit: Edit, verdict: Verdict) {
    let (_tmp, copy) = copy_unit(unit);
    let target = if file.is_empty() {
        copy.clone()
    } else {
        copy.join(file)
    };
    apply(&target, edit);
    match (read_unit(&copy), verdict) {
        (Err(e), Refused(fragment)) => {
            let message = e.to_string();
            assert!(message.contains(fragment), "{unit}/{file}: {message}");
            assert_eq!(e.file(), target, "{unit}/{file}: {message}");
        }
        (Ok(u), Accepted(fragment)) => assert!(
            u.warnings
                .iter()
                .any(|w| w.contains(fragment) && w.starts_with(&target.display().to_string())),
            "{unit}/{file}: {:?}",
            u.warnings
        ),
        (Err(e), Accepted(_)) => panic!("{unit}/{file} should be accepted: {e}"),
        (Ok(u), Refused(fragment)) => {
            panic!("{unit}/{file} should be refused ({fragment}): {u:?}")
        }
    }
}

const GPI: &str = "GeneralProductInformation.json";
const BP_MC: &str = "MaterialComposition.json";
const CX_FILE: &str = "BatteryPass.json";
const NAMEPLATE: &str = "NameplateBattery.json";
const IDTA_MC: &str = "MaterialCompositionBattery.json";

#[test]
fn battery_pass_masses_must_be_positive_and_plausible() {
    check(
        BP,
        GPI,
        Set("/batteryMass", json!(-5)),
        Refused("batteryMass must be > 0 (got -5 kg)"),
    );
    check(
        BP,
        GPI,
        Set("/batteryMass", json!(0)),
        Refused("batteryMass must be > 0 (got 0 kg)"),
    );
    check(
        BP,
        GPI,
        Set("/batteryMass", json!(2500)),
        Refused("implausible value 2500 kg for batteryMass"),
    );
    check(
        BP,
        GPI,
        Set("/batteryMass", json!("24.5")),
        Refused("batteryMass: invalid type: string \"24.5\", expected f64"),
    );
    check(
        BP,
        BP_MC,
        Set(
            "/batteryMaterials/0/batteryMaterialMass",
            json!(1.6111172e38),
        ),
        Refused("implausible value 1.6e38 g for Li"),
    );
    check(
        BP,
        BP_MC,
        Set("/batteryMaterials/1/batteryMaterialMass", json!(-1)),
        Refused("batteryMaterials[1].batteryMaterialMass must be >= 0 (got -1 g) for Ni"),
    );
    check(
        BP,
        BP_MC,
        Set("/batteryMaterials/1/batteryMaterialMass", json!(29990)),
        Refused("Ni 29.990 kg exceeds battery mass 24.500 kg"),
    );
    check(
        BP,
        BP_MC,
        Set("/batteryMaterials/8/batteryMaterialMass", json!(20000)),
        Refused("declared element masses sum to"),
    );
}

#[test]
fn battery_pass_identifiers_keep_the_schema_pattern_and_are_never_rewritten() {
    check(
        BP,
        GPI,
        Set(
            "/batteryPassportIdentifier",
            json!("urn:Morvan:MRV-23M-0001234"),
        ),
        Refused(
            "batteryPassportIdentifier does not match ^urn:[a-z0-9]+:[a-z0-9]+$ (got 'urn:Morvan:MRV-23M-0001234')",
        ),
    );
    check(
        BP,
        GPI,
        Set("/batteryPassportIdentifier", json!("mrv23m0001234")),
        Refused("does not match"),
    );
    check(
        BP,
        GPI,
        Remove("/batteryPassportIdentifier"),
        Refused("missing field `batteryPassportIdentifier`"),
    );
    check(
        BP,
        GPI,
        Set("/batteryStatus", json!("Original")),
        Accepted("batteryStatus is 'Original', not 'Waste'"),
    );
}

#[test]
fn battery_pass_materials_are_known_by_their_cas_numbers() {
    check(
        BP,
        BP_MC,
        Set(
            "/batteryMaterials/1/batteryMaterialIdentifier",
            json!("7440-48-4"),
        ),
        Refused("CAS number 7440-48-4 is Co, but the name says 'Nickel'"),
    );
    check(
        BP,
        BP_MC,
        Set(
            "/batteryMaterials/1/batteryMaterialIdentifier",
            json!("7440-02-1"),
        ),
        Refused("'7440-02-1' is not a valid CAS number: check digit should be 0"),
    );
    check(
        BP,
        BP_MC,
        Set(
            "/batteryMaterials/1",
            json!({
                "batteryMaterialLocation": { "componentName": "Electrolyte" },
                "batteryMaterialIdentifier": "21324-40-3",
                "batteryMaterialName": "Lithium hexafluorophosphate",
                "batteryMaterialMass": 300,
                "isCriticalRawMaterial": false
            }),
        ),
        Accepted(
            "batteryMaterials[1] ('Lithium hexafluorophosphate') is not a material the plant accounts for",
        ),
    );
    check(
        BP,
        BP_MC,
        Set(
            "/batteryChemistry",
            json!({"shortName": "NFP", "clearName": "Sodium iron phosphate"}),
        ),
        Accepted(
            "batteryChemistry 'NFP' / 'Sodium iron phosphate' is not a chemistry the plant knows",
        ),
    );
}

#[test]
fn catena_x_weights_need_a_known_unit_and_concentrations_a_mass_basis() {
    check(
        CX,
        CX_FILE,
        Set(
            "/characteristics/physicalDimension/weight/unit",
            json!("unit:kgm"),
        ),
        Refused("unknown mass unit 'unit:kgm'"),
    );
    check(
        CX,
        CX_FILE,
        Set(
            "/characteristics/physicalDimension/weight/value",
            json!(-1000),
        ),
        Refused("characteristics.physicalDimension.weight must be > 0 (got -1000 unit:pound)"),
    );
    check(
        CX,
        CX_FILE,
        Set(
            "/characteristics/physicalDimension/weight/value",
            json!(5000),
        ),
        Refused("implausible value 5000 unit:pound for characteristics.physicalDimension.weight"),
    );
    check(
        CX,
        CX_FILE,
        Set("/materials/composition/1/concentration", json!(90)),
        Refused("declared concentrations sum to 143.1 % (> 100 %)"),
    );
    check(
        CX,
        CX_FILE,
        Set("/materials/composition/1/concentration", json!(-13.1)),
        Refused("materials.composition[1].concentration must be >= 0 (got -13.1 unit:percent)"),
    );
    check(
        CX,
        CX_FILE,
        Set("/materials/composition/0/unit", json!("unit:mol")),
        Refused("unknown concentration unit 'unit:mol'"),
    );
    check(
        CX,
        CX_FILE,
        Set("/materials/composition/0/unit", json!("unit:percentVolume")),
        Accepted(
            "1 of 9 entries in unit:percentVolume; volume percent cannot be converted to element mass",
        ),
    );
}

#[test]
fn catena_x_ids_are_uuids_and_states_of_health_percentages() {
    check(
        CX,
        CX_FILE,
        Set(
            "/metadata/passportIdentifier",
            json!("urn:uuid:4f6c2a91-7d3e-4b8a-9c15-2e0d8b7a6f3"),
        ),
        Refused("passportIdentifier is not a valid UUID"),
    );
    check(
        CX,
        CX_FILE,
        Set("/metadata/passportIdentifier", json!("TAL22P0098765")),
        Refused("passportIdentifier is not a valid UUID"),
    );
    check(
        CX,
        CX_FILE,
        Set("/performance/dynamic/energy/soce/value", json!(140)),
        Refused("performance.dynamic.energy.soce.value must be between 0 and 100 % (got 140)"),
    );
    check(
        CX,
        CX_FILE,
        Set("/performance/dynamic/capacity/fade/value", json!(5)),
        Accepted("state of health 78.5 % and capacity fade 5 % do not add up to 100 %"),
    );
    check(
        CX,
        CX_FILE,
        Set("/sustainability/status", json!("original")),
        Accepted("sustainability.status is 'original', not 'waste'"),
    );
}

#[test]
fn idta_masses_in_the_kilogram_field_that_look_like_grams_are_refused() {
    check(
        IDTA,
        IDTA_MC,
        Set("/BatteryMaterials/1/BatteryMaterialMass", json!(283.3)),
        Refused("Fe 283.300 kg exceeds battery mass 1.980 kg - looks like grams"),
    );
    check(
        IDTA,
        "TechnicalDataBattery.json",
        Remove("/GeneralInformation/BatteryMass"),
        Refused("GeneralInformation: missing field `BatteryMass`"),
    );
    check(
        IDTA,
        "ProductConditionBattery.json",
        Set(
            "/StateOfCertifiedEnergy/StateOfCertifiedEnergyValue",
            json!(-3),
        ),
        Refused(
            "StateOfCertifiedEnergy.StateOfCertifiedEnergyValue must be between 0 and 100 % (got -3)",
        ),
    );
}

#[test]
fn idta_nameplates_are_read_leniently_where_upstream_examples_err() {
    check(
        IDTA,
        NAMEPLATE,
        Set(
            "/ManufacturerName",
            json!({"en": "Kestrel Power Systems GmbH"}),
        ),
        Accepted("ManufacturerName should be a list of language strings"),
    );
    check(
        IDTA,
        NAMEPLATE,
        Set("/ManufacturerName", json!("Kestrel Power Systems GmbH")),
        Accepted("found a plain string"),
    );
    check(
        IDTA,
        NAMEPLATE,
        Set("/URIOfTheProduct", json!("kestrel cell 4242")),
        Refused("URIOfTheProduct is not an absolute URI (got 'kestrel cell 4242')"),
    );
    check(
        IDTA,
        NAMEPLATE,
        Set("/LifeCycleStage", json!("original")),
        Accepted("LifeCycleStage is 'original', not 'waste'"),
    );
}

#[test]
fn gbt_intake_forms_are_checked_field_by_field() {
    check(
        GBT,
        "",
        Set("/gbt34014", json!("2QRPE7AK3LM92XN6F000471")),
        Refused("GB/T 34014 code must have 24 characters, got 23"),
    );
    check(
        GBT,
        "",
        Set("/gbt34014", json!("2QRPE7AK3LM92XNDF0004711")),
        Refused("invalid production month D in GB/T code"),
    );
    check(
        GBT,
        "",
        Set("/declaredChemistry", json!("LFP")),
        Refused("GB/T code says ternary (NMC/NCA), form says LFP: hold for assay"),
    );
    check(
        GBT,
        "",
        Set("/declaredChemistry", json!("NCM523")),
        Refused(
            "declaredChemistry 'NCM523' is not one of NMC111, NMC532, NMC622, NMC811, NCA, LFP, LMO",
        ),
    );
    check(
        GBT,
        "",
        Set("/unitType", json!("module")),
        Refused("unitType 'module' contradicts the GB/T code, whose product type says pack"),
    );
    check(
        GBT,
        "",
        Set("/unitType", json!("crate")),
        Refused("unitType 'crate' is not one of pack, module, cell"),
    );
    check(
        GBT,
        "",
        Set("/countryOfCollection", json!("XX")),
        Refused("countryOfCollection 'XX' is not an assigned ISO 3166-1 alpha-2 country code"),
    );
    check(
        GBT,
        "",
        Set("/countryOfCollection", json!("pl")),
        Refused("expected two capital letters"),
    );
    check(
        GBT,
        "",
        Set("/massKg", json!(0)),
        Refused("massKg must be > 0 (got 0 kg)"),
    );
    check(
        GBT,
        "",
        Set("/remarks", json!("dented casing")),
        Refused("unknown field `remarks`"),
    );
    check(
        GBT,
        "",
        Remove("/massKg"),
        Refused("missing field `massKg`"),
    );
}

/// Replaces `file` of a copy of `unit` with raw bytes and returns the
/// outcome with the path of the changed file.
fn with_bytes(unit: &str, file: &str, bytes: &[u8]) -> (Result<ImportedUnit, String>, PathBuf) {
    let (_tmp, copy) = copy_unit(unit);
    let target = if file.is_empty() {
        copy.clone()
    } else {
        copy.join(file)
    };
    std::fs::write(&target, bytes).unwrap();
    (read_unit(&copy).map_err(|e| e.to_string()), target)
}

fn check_bytes(unit: &str, file: &str, bytes: &[u8], refusal: &str) {
    let (got, target) = with_bytes(unit, file, bytes);
    let message = got.unwrap_err();
    assert_eq!(
        message,
        format!("{}: {refusal}", target.display()),
        "{unit}/{file}"
    );
}

#[test]
fn files_that_are_not_json_text_are_refused_with_file_and_position() {
    check_bytes(CX, CX_FILE, b"", "empty file");
    check_bytes(BP, GPI, b"\n \n", "empty file");
    check_bytes(
        CX,
        CX_FILE,
        b"{\n  \"metadata\": {\n",
        "invalid JSON at line 3 column 0: EOF while parsing an object",
    );
    check_bytes(
        IDTA,
        NAMEPLATE,
        b"{\"URIOfTheProduct\": 'x'}",
        "invalid JSON at line 1 column 21: expected value",
    );
    check_bytes(
        GBT,
        "",
        b"\x00{\x00}",
        "file is not UTF-8 text: NUL byte at offset 0 (looks like UTF-16 without a byte-order mark)",
    );
    check_bytes(
        GBT,
        "",
        b"{\"gbt34014\": \"\xC02QR\"}",
        "file is not UTF-8: invalid byte at offset 14",
    );
}

#[test]
fn a_utf16_file_with_a_byte_order_mark_is_decoded_and_flagged() {
    let text = std::fs::read_to_string(fixture(GBT)).unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let (got, target) = with_bytes(GBT, "", &bytes);
    let unit = got.unwrap();
    assert_eq!(unit.passport.id().as_str(), "2QRPE7AK3LM92XN6F0004711");
    assert_eq!(unit.passport.mass().kg(), 402.6);
    assert_eq!(
        unit.warnings,
        [format!(
            "{}: file is UTF-16LE (RFC 8259 requires UTF-8); decoded",
            target.display()
        )]
    );
    assert_eq!(
        unit.passport.warnings(),
        ["2QRPE7AK3LM92XN6F0004711.json: file is UTF-16LE (RFC 8259 requires UTF-8); decoded"]
    );
}

#[test]
fn a_folder_must_hold_the_files_of_exactly_one_form() {
    let (tmp, copy) = copy_unit(BP);
    std::fs::copy(fixture(CX).join(CX_FILE), copy.join(CX_FILE)).unwrap();
    let e = read_unit(&copy).unwrap_err().to_string();
    assert!(
        e.contains(
            "files of several passport forms in one folder (Battery Pass 1.2.0, Catena-X 6.1.0)"
        ),
        "{e}"
    );

    let stray = tmp.path().join("stray");
    std::fs::create_dir(&stray).unwrap();
    std::fs::write(stray.join("passport.json"), "{}").unwrap();
    let e = read_unit(&stray).unwrap_err().to_string();
    assert!(
        e.contains("no passport files: expected GeneralProductInformation.json"),
        "{e}"
    );

    std::fs::remove_file(copy.join(CX_FILE)).unwrap();
    std::fs::remove_file(copy.join(BP_MC)).unwrap();
    let e = read_unit(&copy).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: missing (a Battery Pass 1.2.0 unit folder needs it)",
            copy.join(BP_MC).display()
        )
    );

    let e = read_unit(&tmp.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere: cannot read"), "{e}");

    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "pack 3 dented").unwrap();
    let e = read_unit(&notes).unwrap_err().to_string();
    assert!(e.contains("not a passport"), "{e}");
}
