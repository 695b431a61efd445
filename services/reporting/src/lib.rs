//! What a recycling plant files and hands out about its recovery of
//! materials.
//!
//! Every year the plant reports, under Regulation (EU) 2023/1542 Annex XII
//! and the methodology of Delegated Regulation (EU) 2025/606, how much of
//! the cobalt, copper, lithium and nickel it received came out again as
//! material that can replace primary raw material (rRM), and how much of
//! the mass (rRE), per input stream and per Member State of collection,
//! with its process steps, the outputs made in the EU and outside it, and
//! the outputs of years x+1 and x+2 credited to year x. Every product lot
//! also gets a provenance record that a battery maker can use to prove
//! recycled content (Art. 8), with a Catena-X
//! `io.catenax.secondary_material_content_verifiable` 1.0.0 instance.
//!
//! Main items:
//! - [`ReportInput`]: the lots, genealogy, assays, reconciled uncertainties,
//!   [`FacilityConfig`] (a TOML file: steps, efficiencies, product names)
//!   and [`DownstreamData`]; [`gather`] fills it from a
//!   [`Store`](remine_domain::ports::Store) and [`recovery_report`] is the
//!   one call for the CLI and the API;
//! - [`compute`]: the pure computation, giving a [`RecoveryReport`];
//!   bad input is a [`ReportError`] naming the lot or field (no data for the
//!   year, black mass given as an output), or a [`Warning`] printed in the
//!   report itself (an output lot without assays, shares that do not sum to
//!   one, lithium in slag, output after x+2);
//! - [`ProvenanceBook`]: per-lot [`ProvenanceRecord`]s;
//! - [`export_downstream`] and [`import_downstream`]: the JSON a downstream
//!   facility sends the first recycler;
//! - formats: [`RecoveryReport::to_json`] (schema
//!   `schemas/recycling-report.schema.json`), [`to_csv`] and [`read_csv`],
//!   [`to_html`] (one self-contained page with Sankey diagrams).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use remine_domain::*;
//! use remine_reporting::*;
//!
//! let facility = FacilityConfig::from_toml(r#"
//!     [facility]
//!     name = "Example Recycling"
//!     street = "Werkstr. 1"
//!     city = "Musterstadt"
//!     postal_code = "12345"
//!     country = "DE"
//!     [[steps]]
//!     id = "N_0"
//!     name = "hydrometallurgy"
//!     consumes = ["input-unit"]
//! "#, "example.toml")?;
//! let kg = |v| Kilograms::new(v).unwrap();
//! let lot = |id: &str, kind, mass, ni| Lot::new(LotFields {
//!     id: LotId::parse(id).unwrap(), kind, mass: kg(mass),
//!     elements: [(Element::Ni, kg(ni))].into_iter().collect(),
//!     content_source: ContentSource::Assayed,
//!     created_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
//!     passport: None, country_of_collection: Some(CountryCode::parse("DE").unwrap()),
//! }).unwrap();
//! let input = ReportInput {
//!     year: 2026,
//!     status: ReportStatus::Final,
//!     generated_at: Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap(),
//!     facility,
//!     lots: vec![
//!         lot("P1", LotKind::InputUnit, 400.0, 40.0),
//!         lot("NI1", LotKind::Product(ProductKind::NickelSulphate), 170.0, 38.0),
//!     ],
//!     edges: vec![GenealogyEdge {
//!         from: LotId::parse("P1").unwrap(), to: LotId::parse("NI1").unwrap(), mass: kg(400.0),
//!     }],
//!     assays: Default::default(),
//!     origins: Default::default(),
//!     uncertainty: Uncertainties::new(),
//!     downstream: vec![],
//! };
//! let report = compute(&input)?;
//! let ni = report.total_row("lithium-based", "Ni").unwrap();
//! assert!((ni.r_rm.unwrap() - 95.0).abs() < 1e-9);
//! assert!(ni.targets.iter().all(|t| t.met));
//! assert!(to_html(&report).contains("95.0"));
//! # Ok::<(), ReportError>(())
//! ```

mod compute;
mod config;
mod csv_out;
mod downstream;
mod error;
mod gather;
mod html;
mod input;
mod model;
mod provenance;

pub use compute::{REPORT_ELEMENTS, compute, recovers};
pub use config::{Facility, FacilityConfig, ProductNaming, StepDef, kind_matches};
pub use csv_out::{CSV_COLUMNS, CsvRow, csv_rows, read_csv, to_csv, warnings_csv};
pub use downstream::{
    DOWNSTREAM_SCHEMA, DownstreamData, DownstreamFacility, DownstreamOutput, DownstreamSource,
    FractionType, export_downstream, import_downstream,
};
pub use error::ReportError;
pub use gather::{ReportRequest, gather, recovery_report};
pub use html::to_html;
pub use input::{ReportInput, ReportStatus, Uncertainties, UnitProvenance, WasteOrigin};
pub use model::*;
pub use provenance::{AssayDoc, ProvenanceBook, ProvenanceRecord, ShareDoc, SourceDoc};
