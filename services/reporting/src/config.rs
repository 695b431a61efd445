//! The facility configuration: who the plant is, its process steps, the
//! fractions that count for recycling efficiency, the process efficiencies
//! that credit outputs of years x+1 and x+2 to year x, and how its
//! products are named in a Catena-X recycled-content record.
//!
//! It is data a plant engineer keeps in a TOML file:
//!
//! ```toml
//! [facility]
//! name = "Rheinzelle Recycling GmbH"
//! street = "Werkstr. 1"
//! city = "Musterstadt"
//! postal_code = "12345"
//! country = "DE"                 # ISO 3166-1 alpha-2; decides "made in the EU"
//! bpnl = "BPNL000000000001"      # optional Catena-X business partner numbers
//! bpna = "BPNA000000000001"
//! input_ewc_code = "16 06 05"    # optional, the default shown
//!
//! # Process steps N_0, N_1, ... in order. A lot belongs to the step that
//! # consumes the kind of lot it was made from. Kinds are lot-kind codes
//! # ("side-fraction:Cu") or their part before the colon ("black-mass").
//! [[steps]]
//! id = "N_0"
//! name = "discharge"
//! consumes = ["input-unit"]
//!
//! [[steps]]
//! id = "N_1"
//! name = "shredding and separation"
//! consumes = ["discharge-batch"]
//!
//! [[steps]]
//! id = "N_2"
//! name = "hydrometallurgy"
//! consumes = ["black-mass", "leach-batch", "solution"]
//!
//! # Fractions whose mass counts as output for rRE (default shown). The
//! # rRM calculation point is fixed by the regulation, not configured.
//! [recycling_efficiency]
//! fractions = ["product", "side-fraction:Cu", "side-fraction:Al", "side-fraction:steel"]
//!
//! # Known process efficiencies, per kind of lot in stock at report time
//! # and element: year-x input still in such lots is credited to year x as
//! # the output it will give in years x+1 and x+2. A kind not listed
//! # earns no credit (and the report says so).
//! [deferred_credit.black-mass]
//! Ni = 0.95
//! Co = 0.95
//! Li = 0.85
//!
//! # How each product is named in its recycled-content record.
//! [products."NiSO4.6H2O"]
//! material_class = "7.3"         # VDA 231-106 class, as the plant classifies it
//! standard = "GB"                # one of Catena-X's referenced standards
//! standard_id = "GB/T 26524"
//! name = "nickel sulphate hexahydrate, battery grade"
//! ```
//!
//! [`FacilityConfig::from_toml`] checks all of it and names the field at
//! fault.

use crate::ReportError;
use remine_domain::{CountryCode, Element, LotKind};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Catena-X's `ReferencedStandardCharacteristic`.
const STANDARDS: [&str; 11] = [
    "AISI", "AS", "ASME", "DIN", "DIN EN", "EN", "JASO", "JIS", "GB", "ISO", "IS",
];

/// The lot-kind codes and code prefixes a pattern may name.
const KIND_PREFIXES: [&str; 9] = [
    "input-unit",
    "discharge-batch",
    "black-mass",
    "side-fraction",
    "leach-batch",
    "solution",
    "product",
    "residue",
    "loss",
];

/// Who a facility is, as a report names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facility {
    pub name: String,
    pub street: String,
    pub city: String,
    pub postal_code: String,
    pub country: CountryCode,
    pub bpnl: Option<String>,
    pub bpna: Option<String>,
}

impl Facility {
    /// Whether outputs made here are made in the EU.
    pub fn in_eu(&self) -> bool {
        self.country.is_eu()
    }
}

/// One process step of the plant.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDef {
    id: String,
    name: String,
    consumes: Vec<String>,
}

impl StepDef {
    /// `N_0`, `N_1`, ...
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The lot-kind patterns this step takes in.
    pub fn consumes(&self) -> &[String] {
        &self.consumes
    }
    pub fn takes(&self, kind: LotKind) -> bool {
        self.consumes.iter().any(|p| kind_matches(p, kind))
    }
}

/// How a product is named in its Catena-X recycled-content record.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductNaming {
    pub material_class: String,
    pub standard: String,
    pub standard_id: String,
    pub name: String,
}

/// A checked facility configuration. See the module documentation for the
/// file format.
#[derive(Debug, Clone, PartialEq)]
pub struct FacilityConfig {
    facility: Facility,
    input_ewc_code: String,
    steps: Vec<StepDef>,
    rre_fractions: Vec<String>,
    deferred_credit: BTreeMap<String, BTreeMap<Element, f64>>,
    products: BTreeMap<String, ProductNaming>,
}

/// Whether lot-kind pattern `pattern` names `kind`: its code, or the part
/// of its code before the colon.
pub fn kind_matches(pattern: &str, kind: LotKind) -> bool {
    let code = kind.code();
    code == pattern || code.split_once(':').is_some_and(|(p, _)| p == pattern)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    facility: FacilityFile,
    #[serde(default)]
    steps: Vec<StepFile>,
    recycling_efficiency: Option<RreFile>,
    #[serde(default)]
    deferred_credit: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(default)]
    products: BTreeMap<String, ProductFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilityFile {
    name: String,
    street: String,
    city: String,
    postal_code: String,
    country: String,
    bpnl: Option<String>,
    bpna: Option<String>,
    input_ewc_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    id: String,
    name: String,
    consumes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RreFile {
    fractions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    material_class: String,
    standard: String,
    standard_id: String,
    name: String,
}

fn default_rre_fractions() -> Vec<String> {
    [
        "product",
        "side-fraction:Cu",
        "side-fraction:Al",
        "side-fraction:steel",
    ]
    .map(String::from)
    .to_vec()
}

fn known_pattern(p: &str) -> bool {
    KIND_PREFIXES.contains(&p) || LotKind::parse_code(p).is_ok()
}

fn ewc_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (b.len() == 8 || (b.len() == 9 && b[8] == b'*'))
        && digits(0..2)
        && b[2] == b' '
        && digits(3..5)
        && b[5] == b' '
        && digits(6..8)
}

fn bpn_ok(s: &str, prefix: &str) -> bool {
    s.len() == 16 && s.starts_with(prefix) && s[4..].chars().all(|c| c.is_ascii_alphanumeric())
}

impl FacilityConfig {
    /// Parses and checks a facility file; `origin` (its path) goes into
    /// every error.
    pub fn from_toml(text: &str, origin: &str) -> Result<FacilityConfig, ReportError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ReportError::config(origin, "(file)", e.to_string()))?;
        let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
            ReportError::config(
                origin,
                e.path().to_string(),
                e.inner().message().to_string(),
            )
        })?;
        let bad = |field: &str, why: String| ReportError::config(origin, field, why);

        let f = file.facility;
        if f.name.trim().is_empty() {
            return Err(bad("facility.name", "must not be empty".into()));
        }
        let country =
            CountryCode::parse(&f.country).map_err(|e| bad("facility.country", e.to_string()))?;
        if let Some(b) = &f.bpnl
            && !bpn_ok(b, "BPNL")
        {
            return Err(bad(
                "facility.bpnl",
                format!("'{b}' is not BPNL and 12 letters or digits"),
            ));
        }
        if let Some(b) = &f.bpna
            && !bpn_ok(b, "BPNA")
        {
            return Err(bad(
                "facility.bpna",
                format!("'{b}' is not BPNA and 12 letters or digits"),
            ));
        }
        let input_ewc_code = f.input_ewc_code.unwrap_or_else(|| "16 06 05".into());
        if !ewc_ok(&input_ewc_code) {
            return Err(bad(
                "facility.input_ewc_code",
                format!("'{input_ewc_code}' is not an EWC code like \"16 06 05\""),
            ));
        }

        if file.steps.is_empty() {
            return Err(bad("steps", "at least one process step is needed".into()));
        }
        let mut steps = Vec::new();
        for (i, s) in file.steps.into_iter().enumerate() {
            let field = |f: &str| format!("steps[{i}].{f}");
            if s.id != format!("N_{i}") {
                return Err(bad(
                    &field("id"),
                    format!(
                        "'{}' should be N_{i}: steps are numbered in order from N_0",
                        s.id
                    ),
                ));
            }
            if s.consumes.is_empty() {
                return Err(bad(&field("consumes"), "lists no kind of lot".into()));
            }
            for p in &s.consumes {
                if !known_pattern(p) {
                    return Err(bad(&field("consumes"), format!("unknown lot kind '{p}'")));
                }
            }
            steps.push(StepDef {
                id: s.id,
                name: s.name,
                consumes: s.consumes,
            });
        }
        if !steps[0].consumes.iter().any(|p| p == "input-unit") {
            return Err(bad(
                "steps[0].consumes",
                "the first step (N_0) must consume \"input-unit\": it takes the input fraction"
                    .into(),
            ));
        }
        for p in KIND_PREFIXES {
            let n = steps
                .iter()
                .filter(|s| s.consumes.iter().any(|c| c == p))
                .count();
            if n > 1 {
                return Err(bad(
                    "steps",
                    format!("lot kind '{p}' is consumed by {n} steps"),
                ));
            }
        }

        let rre_fractions = match file.recycling_efficiency {
            Some(r) => r.fractions,
            None => default_rre_fractions(),
        };
        for p in &rre_fractions {
            if p.starts_with("black-mass") {
                return Err(ReportError::BlackMassAsOutput {
                    what: format!(
                        "facility configuration {origin}, field recycling_efficiency.fractions lists '{p}'"
                    ),
                });
            }
            if !known_pattern(p) {
                return Err(bad(
                    "recycling_efficiency.fractions",
                    format!("unknown lot kind '{p}'"),
                ));
            }
        }

        let mut deferred_credit = BTreeMap::new();
        for (stage, effs) in file.deferred_credit {
            if !known_pattern(&stage) {
                return Err(bad(
                    &format!("deferred_credit.{stage}"),
                    format!("unknown lot kind '{stage}'"),
                ));
            }
            let mut m = BTreeMap::new();
            for (el, eff) in effs {
                let field = format!("deferred_credit.{stage}.{el}");
                let e: Element = el
                    .parse()
                    .map_err(|e: remine_domain::DomainError| bad(&field, e.to_string()))?;
                if !(eff.is_finite() && (0.0..=1.0).contains(&eff)) {
                    return Err(bad(
                        &field,
                        format!("efficiency {eff} is not between 0 and 1"),
                    ));
                }
                m.insert(e, eff);
            }
            deferred_credit.insert(stage, m);
        }

        let mut products = BTreeMap::new();
        for (formula, p) in file.products {
            let field = |f: &str| format!("products.\"{formula}\".{f}");
            if !STANDARDS.contains(&p.standard.as_str()) {
                return Err(bad(
                    &field("standard"),
                    format!("'{}' is not one of {}", p.standard, STANDARDS.join(", ")),
                ));
            }
            if p.material_class.trim().is_empty() {
                return Err(bad(&field("material_class"), "must not be empty".into()));
            }
            products.insert(
                formula,
                ProductNaming {
                    material_class: p.material_class,
                    standard: p.standard,
                    standard_id: p.standard_id,
                    name: p.name,
                },
            );
        }

        Ok(FacilityConfig {
            facility: Facility {
                name: f.name,
                street: f.street,
                city: f.city,
                postal_code: f.postal_code,
                country,
                bpnl: f.bpnl,
                bpna: f.bpna,
            },
            input_ewc_code,
            steps,
            rre_fractions,
            deferred_credit,
            products,
        })
    }

    pub fn facility(&self) -> &Facility {
        &self.facility
    }

    pub fn input_ewc_code(&self) -> &str {
        &self.input_ewc_code
    }

    pub fn steps(&self) -> &[StepDef] {
        &self.steps
    }

    /// The index of the step that consumes `kind`, if one does.
    pub fn step_consuming(&self, kind: LotKind) -> Option<usize> {
        self.steps.iter().position(|s| s.takes(kind))
    }

    /// Whether a lot of this kind counts as output for rRE.
    pub fn counts_for_rre(&self, kind: LotKind) -> bool {
        self.rre_fractions.iter().any(|p| kind_matches(p, kind))
    }

    /// The efficiency with which `element` in a lot of `kind` in stock
    /// becomes output later, if configured.
    pub fn deferred_efficiency(&self, kind: LotKind, element: Element) -> Option<f64> {
        let code = kind.code();
        // An exact code wins over its prefix.
        self.deferred_credit
            .get(&code)
            .or_else(|| {
                code.split_once(':')
                    .and_then(|(p, _)| self.deferred_credit.get(p))
            })
            .and_then(|m| m.get(&element).copied())
    }

    /// Whether any efficiency is configured for lots of `kind`.
    pub fn has_deferred_credit(&self, kind: LotKind) -> bool {
        let code = kind.code();
        self.deferred_credit.contains_key(&code)
            || code
                .split_once(':')
                .is_some_and(|(p, _)| self.deferred_credit.contains_key(p))
    }

    pub fn product_naming(&self, formula: &str) -> Option<&ProductNaming> {
        self.products.get(formula)
    }
}
