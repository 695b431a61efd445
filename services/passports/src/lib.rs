//! Battery passports at the plant gate: read what arrives, refuse what is
//! wrong, and hand the rest to the domain as a [`Passport`].
//!
//! A battery arrives with its passport in one of four forms, each with its
//! own layout and its own units (domain brief section 4):
//!
//! | form | layout | unit mass | element masses |
//! |---|---|---|---|
//! | Battery Pass 1.2.0 | folder: `GeneralProductInformation.json`, `MaterialComposition.json`, `Circularity.json` | kg | grams |
//! | Catena-X battery_pass 6.1.0 | folder: `BatteryPass.json` | `{value, unit}` (g, kg, t, lb, ...) | concentrations (%, ‰, ppm) x mass |
//! | IDTA battery passport (AAS value-only) | folder: `NameplateBattery.json`, `TechnicalDataBattery.json`, `MaterialCompositionBattery.json`, ... | kg | kg |
//! | GB/T 34014 intake form | one `<code>.json` | kg | none: estimated from the chemistry |
//!
//! The form is detected from the file names. Parsing uses serde at this
//! edge; the result goes through [`PassportFields`] into [`Passport::new`],
//! which checks what the domain knows (element masses against the battery,
//! composition above 100 %, GB/T code against chemistry) and estimates the
//! content from the chemistry when none is declared. This crate adds what
//! only the forms know: identifier patterns, units, CAS numbers and their
//! check digits, implausible magnitudes, sums of one element declared in
//! several places, volume percentages, country codes, the lenient reading of
//! a known upstream mistake, and duplicates within a batch.
//!
//! Main items:
//! - [`read_unit`]: one unit (a folder or a GB/T intake file) into an
//!   [`ImportedUnit`], or an [`ImportError`] that names the file and the
//!   field or value at fault;
//! - [`import_paths`]: a batch of units or folders of units into an
//!   [`ImportSummary`] of accepted units and [`Refusal`]s; a second unit
//!   with an id already seen is refused, never merged.
//!
//! Bad input never panics; every refusal is an [`ImportError`].
//!
//! ```
//! use remine_domain::{Chemistry, ContentSource, UnitType};
//! use remine_passports::{import_paths, read_unit};
//!
//! let arrivals = std::env::temp_dir().join(format!("remine-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&arrivals)?;
//! let form = arrivals.join("7YXPE4BQ8WN31KMA70082417.json");
//! std::fs::write(&form, r#"{"gbt34014": "7YXPE4BQ8WN31KMA70082417",
//!     "declaredChemistry": "NMC532", "unitType": "pack", "massKg": 355.2,
//!     "countryOfCollection": "CZ"}"#)?;
//!
//! let unit = read_unit(&form)?;
//! assert_eq!(unit.passport.chemistry(), Some(Chemistry::Nmc532));
//! assert_eq!(unit.passport.unit_type(), UnitType::Pack);
//! assert_eq!(unit.passport.content().map(|c| c.source), Some(ContentSource::Estimated));
//!
//! // A batch: the same unit twice is imported once and refused once.
//! let summary = import_paths(&[arrivals.clone(), form.clone()]);
//! assert_eq!((summary.accepted.len(), summary.refused.len()), (1, 1));
//! assert!(summary.refused[0].error.to_string().contains("duplicate passport id"));
//! # std::fs::remove_dir_all(&arrivals)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Passport`]: remine_domain::Passport
//! [`PassportFields`]: remine_domain::PassportFields
//! [`Passport::new`]: remine_domain::Passport::new

mod batterypass;
mod catenax;
mod checks;
mod country;
mod error;
mod gbt;
mod idta;
mod import;
mod read;

pub use error::ImportError;
pub use import::{ImportSummary, ImportedUnit, Refusal, import_paths, read_unit};
