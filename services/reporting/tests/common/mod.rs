//! A small hand-built plant year that the tests compute by hand, and
//! helpers to build lots, edges and downstream documents.
#![allow(dead_code)]
// Test fixtures: a bad fixture should fail the test loudly.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use remine_domain::*;
use remine_reporting::*;
use std::collections::BTreeMap;

pub const FACILITY: &str = r#"
[facility]
name = "Rheinzelle Recycling GmbH"
street = "Werkstr. 1"
city = "Musterstadt"
postal_code = "12345"
country = "DE"
bpnl = "BPNL000000000001"
bpna = "BPNA000000000001"

[[steps]]
id = "N_0"
name = "discharge"
consumes = ["input-unit"]

[[steps]]
id = "N_1"
name = "shredding and separation"
consumes = ["discharge-batch"]

[[steps]]
id = "N_2"
name = "hydrometallurgy"
consumes = ["black-mass", "leach-batch", "solution"]

[deferred_credit.input-unit]
Ni = 0.85
Co = 0.85
Li = 0.7
Cu = 0.8

[deferred_credit.black-mass]
Ni = 0.9
Co = 0.9
Li = 0.8
Cu = 0.5

[products."NiSO4.6H2O"]
material_class = "7.3"
standard = "GB"
standard_id = "GB/T 26524"
name = "nickel sulphate hexahydrate, battery grade"

[products."CoSO4.7H2O"]
material_class = "7.3"
standard = "GB"
standard_id = "GB/T 26523"
name = "cobalt sulphate heptahydrate, battery grade"

[products."Li2CO3"]
material_class = "7.3"
standard = "GB"
standard_id = "GB/T 11075"
name = "lithium carbonate, battery grade"

[products."side-fraction:Cu"]
material_class = "3.1"
standard = "EN"
standard_id = "EN 12861"
name = "copper scrap"
"#;

pub fn facility() -> FacilityConfig {
    FacilityConfig::from_toml(FACILITY, "test facility.toml").unwrap()
}

pub fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

pub fn id(s: &str) -> LotId {
    LotId::parse(s).unwrap()
}

pub fn at(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 15, 8, 0, 0).unwrap()
}

/// A lot with the given element masses (Ni, Co, Li, Cu).
pub fn lot(
    name: &str,
    kind: LotKind,
    year: i32,
    mass: f64,
    els: &[(Element, f64)],
    country: Option<&str>,
) -> Lot {
    Lot::new(LotFields {
        id: id(name),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: ContentSource::Assayed,
        created_at: at(year, 6),
        passport: if kind == LotKind::InputUnit {
            Some(PassportId::urn(&format!("urn:test:{name}")).unwrap())
        } else {
            None
        },
        country_of_collection: country.map(|c| CountryCode::parse(c).unwrap()),
    })
    .unwrap()
}

pub fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
    GenealogyEdge {
        from: id(from),
        to: id(to),
        mass: kg(mass),
    }
}

use Element::{Co, Cu, Li, Ni};

/// The plant of 2026 the rates test writes out by hand:
/// - units P1 (DE, 500 kg: Ni 60, Co 20, Li 10, Cu 35), P2 (FR, 500 kg:
///   Ni 40, Co 10, Li 10, Cu 35), U3 (DE, 100 kg: Ni 10, Co 2, Li 2, Cu 8,
///   still in stock), and P0 received in 2025 (not this year's input);
/// - discharge batch D1 (P1 + P2) shredded into black mass BM1 (400 kg)
///   and BM2 (100 kg, shipped to a smelter in Norway), Cu fraction CU1,
///   steel ST1 and a loss L1;
/// - half of BM1 leached (LB1) into NiSO4 (2026), CoSO4 (2027), Li2CO3
///   (2028 and 2029) and a residue; the other half is in stock.
pub fn plant() -> (Vec<Lot>, Vec<GenealogyEdge>) {
    let nmc = LotKind::BlackMass(Chemistry::Nmc622);
    let lots = vec![
        lot(
            "P0",
            LotKind::InputUnit,
            2025,
            500.0,
            &[(Ni, 50.0)],
            Some("DE"),
        ),
        lot(
            "P1",
            LotKind::InputUnit,
            2026,
            500.0,
            &[(Ni, 60.0), (Co, 20.0), (Li, 10.0), (Cu, 35.0)],
            Some("DE"),
        ),
        lot(
            "P2",
            LotKind::InputUnit,
            2026,
            500.0,
            &[(Ni, 40.0), (Co, 10.0), (Li, 10.0), (Cu, 35.0)],
            Some("FR"),
        ),
        lot(
            "U3",
            LotKind::InputUnit,
            2026,
            100.0,
            &[(Ni, 10.0), (Co, 2.0), (Li, 2.0), (Cu, 8.0)],
            Some("DE"),
        ),
        lot(
            "D1",
            LotKind::DischargeBatch,
            2026,
            1000.0,
            &[(Ni, 100.0), (Co, 30.0), (Li, 20.0), (Cu, 70.0)],
            None,
        ),
        lot(
            "BM1",
            nmc,
            2026,
            400.0,
            &[(Ni, 72.0), (Co, 21.6), (Li, 14.4), (Cu, 4.0)],
            None,
        ),
        lot(
            "BM2",
            nmc,
            2026,
            100.0,
            &[(Ni, 18.0), (Co, 5.4), (Li, 3.6), (Cu, 1.0)],
            None,
        ),
        lot(
            "CU1",
            LotKind::SideFraction(SideFraction::Copper),
            2026,
            80.0,
            &[(Cu, 60.0)],
            None,
        ),
        lot(
            "ST1",
            LotKind::SideFraction(SideFraction::Steel),
            2026,
            200.0,
            &[],
            None,
        ),
        lot(
            "L1",
            LotKind::Loss,
            2026,
            220.0,
            &[(Ni, 10.0), (Co, 3.0), (Li, 2.0), (Cu, 5.0)],
            None,
        ),
        lot(
            "LB1",
            LotKind::LeachBatch,
            2026,
            200.0,
            &[(Ni, 36.0), (Co, 10.8), (Li, 7.2), (Cu, 2.0)],
            None,
        ),
        lot(
            "NI1",
            LotKind::Product(ProductKind::NickelSulphate),
            2026,
            150.0,
            &[(Ni, 33.0)],
            None,
        ),
        lot(
            "CO1",
            LotKind::Product(ProductKind::CobaltSulphate),
            2027,
            45.0,
            &[(Co, 9.0)],
            None,
        ),
        lot(
            "LI1",
            LotKind::Product(ProductKind::LithiumCarbonate),
            2028,
            30.0,
            &[(Li, 5.0)],
            None,
        ),
        lot(
            "LI2",
            LotKind::Product(ProductKind::LithiumCarbonate),
            2029,
            5.0,
            &[(Li, 0.5)],
            None,
        ),
        lot(
            "RES1",
            LotKind::Residue,
            2026,
            40.0,
            &[(Li, 1.0), (Ni, 1.5), (Co, 0.8), (Cu, 1.5)],
            None,
        ),
    ];
    let edges = vec![
        edge("P1", "D1", 500.0),
        edge("P2", "D1", 500.0),
        edge("D1", "BM1", 400.0),
        edge("D1", "BM2", 100.0),
        edge("D1", "CU1", 80.0),
        edge("D1", "ST1", 200.0),
        edge("D1", "L1", 220.0),
        edge("BM1", "LB1", 200.0),
        edge("LB1", "NI1", 60.0),
        edge("LB1", "CO1", 50.0),
        edge("LB1", "LI1", 40.0),
        edge("LB1", "LI2", 10.0),
        edge("LB1", "RES1", 40.0),
    ];
    (lots, edges)
}

pub fn assay(lot: &str, e: Element, fraction: f64) -> Assay {
    Assay::new(
        id(lot),
        &format!("{lot}-S1"),
        e,
        MassFraction::new(fraction).unwrap(),
        0.002,
        "ICP-OES",
        "plant lab",
    )
    .unwrap()
}

/// Every output lot assayed.
pub fn assays() -> BTreeMap<LotId, Vec<Assay>> {
    [
        ("NI1", Ni, 0.22),
        ("CO1", Co, 0.20),
        ("LI1", Li, 0.1667),
        ("LI2", Li, 0.10),
        ("CU1", Cu, 0.75),
    ]
    .into_iter()
    .map(|(l, e, f)| (id(l), vec![assay(l, e, f)]))
    .collect()
}

/// What the smelter in Norway made of BM2: an alloy (Ni 17, Co 5, Cu 0.8
/// kg) and a slag holding 3 kg Li.
pub fn smelter_json() -> String {
    serde_json::json!({
        "schemaVersion": "1.0.0",
        "documentType": "remine.downstream-facility-data",
        "generatedAt": "2028-01-20T09:00:00Z",
        "facility": {"name": "Nordic Smelter AS", "city": "Kristiansand", "country": "NO"},
        "steps": [{"stepId": "S1", "name": "smelting"}],
        "outputs": [
            {"lotId": "ALLOY1", "fractionType": "metal-alloy", "type": "Co-Ni-Cu alloy", "stepId": "S1",
             "producedAt": "2027-02-01T00:00:00Z", "atRMCalculationPoint": true, "massKg": 25.0,
             "elementsKg": {"Ni": 17.0, "Co": 5.0, "Cu": 0.8},
             "sources": [{"upstreamLotId": "BM2", "share": 1.0}]},
            {"lotId": "SLAG1", "fractionType": "slag", "type": "slag", "stepId": "S1",
             "producedAt": "2027-02-01T00:00:00Z", "atRMCalculationPoint": true, "massKg": 60.0,
             "elementsKg": {"Li": 3.0},
             "sources": [{"upstreamLotId": "BM2", "share": 1.0}]}
        ]
    })
    .to_string()
}

pub fn input() -> ReportInput {
    let (lots, edges) = plant();
    ReportInput {
        year: 2026,
        status: ReportStatus::Final,
        generated_at: at(2027, 3),
        facility: facility(),
        lots,
        edges,
        assays: assays(),
        origins: BTreeMap::new(),
        uncertainty: Uncertainties::new().with(Element::Ni, 0.01).unwrap(),
        downstream: vec![import_downstream(&smelter_json(), "smelter.json").unwrap()],
    }
}

/// A downstream plant running remine: it received black mass BM2 from
/// upstream and 50 kg of its own black mass BMX, and made NiSO4 from both
/// and a residue.
pub fn smelter_plant() -> ReportInput {
    let nmc = LotKind::BlackMass(Chemistry::Nmc622);
    let lots = vec![
        lot(
            "BM2",
            nmc,
            2026,
            100.0,
            &[(Ni, 18.0), (Co, 5.4), (Li, 3.6), (Cu, 1.0)],
            None,
        ),
        lot("BMX", nmc, 2026, 50.0, &[(Ni, 6.0)], None),
        lot(
            "LBX",
            LotKind::LeachBatch,
            2027,
            150.0,
            &[(Ni, 24.0), (Co, 5.4), (Li, 3.6)],
            None,
        ),
        lot(
            "NIX",
            LotKind::Product(ProductKind::NickelSulphate),
            2027,
            100.0,
            &[(Ni, 22.0)],
            None,
        ),
        lot("RESX", LotKind::Residue, 2027, 40.0, &[(Li, 0.5)], None),
    ];
    let edges = vec![
        edge("BM2", "LBX", 100.0),
        edge("BMX", "LBX", 50.0),
        edge("LBX", "NIX", 100.0),
        edge("LBX", "RESX", 40.0),
    ];
    let facility = FacilityConfig::from_toml(
        r#"
        [facility]
        name = "Downstream Hydromet SA"
        street = "Rue 2"
        city = "Liege"
        postal_code = "4000"
        country = "BE"
        [[steps]]
        id = "N_0"
        name = "hydrometallurgy"
        consumes = ["input-unit", "black-mass", "leach-batch", "solution"]
        "#,
        "downstream.toml",
    )
    .unwrap();
    ReportInput {
        year: 2027,
        status: ReportStatus::Final,
        generated_at: at(2028, 1),
        facility,
        lots,
        edges,
        assays: BTreeMap::new(),
        origins: BTreeMap::new(),
        uncertainty: Uncertainties::new(),
        downstream: vec![],
    }
}
