//! What the plant copies from a battery passport at intake.
//!
//! A passport ceases to exist once the battery is recycled (Reg. 2023/1542
//! Art. 77(8)), so the plant keeps its own copy of the fields it needs. The
//! parsers of the four forms live at the edge (remine-passports); they build
//! a [`Passport`] here, whose constructor refuses inconsistent values.

use crate::{Chemistry, DomainError, Element, ElementMasses, Kilograms};
use std::fmt;

/// The form a passport arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassportForm {
    /// Battery Pass data model 1.2.0 (DIN DKE SPEC 99100).
    BatteryPass120,
    /// Catena-X io.catenax.battery.battery_pass 6.1.0.
    CatenaX610,
    /// IDTA battery-passport submodels (AAS value-only JSON).
    Idta,
    /// The plant's GB/T 34014 intake form: a code and a declared chemistry.
    GbtIntake,
    /// No passport: a declared chemistry and a weighed mass only.
    Declared,
}

impl PassportForm {
    pub fn name(self) -> &'static str {
        match self {
            PassportForm::BatteryPass120 => "batterypass-1.2.0",
            PassportForm::CatenaX610 => "catenax-battery_pass-6.1.0",
            PassportForm::Idta => "idta-batterypass-1.0",
            PassportForm::GbtIntake => "gbt34014-intake",
            PassportForm::Declared => "declared",
        }
    }

    pub fn from_name(s: &str) -> Option<PassportForm> {
        [
            PassportForm::BatteryPass120,
            PassportForm::CatenaX610,
            PassportForm::Idta,
            PassportForm::GbtIntake,
            PassportForm::Declared,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }
}

/// Pack, module or cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitType {
    Pack,
    Module,
    Cell,
}

impl UnitType {
    pub fn name(self) -> &'static str {
        match self {
            UnitType::Pack => "pack",
            UnitType::Module => "module",
            UnitType::Cell => "cell",
        }
    }

    pub fn from_name(s: &str) -> Option<UnitType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pack" => Some(UnitType::Pack),
            "module" => Some(UnitType::Module),
            "cell" => Some(UnitType::Cell),
            _ => None,
        }
    }

    /// A guess from the mass alone, for passports that do not say.
    pub fn guess_from_mass(mass: Kilograms) -> UnitType {
        match mass.kg() {
            m if m >= 100.0 => UnitType::Pack,
            m if m >= 5.0 => UnitType::Module,
            _ => UnitType::Cell,
        }
    }
}

/// A GB/T 34014-2017 battery code: 24 characters with fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GbtCode(String);

impl GbtCode {
    /// Parses and checks every field; the error names the field at fault.
    pub fn parse(s: &str) -> Result<GbtCode, DomainError> {
        let bad = |why: String| DomainError::Malformed {
            what: "GB/T 34014 code",
            value: s.to_string(),
            why,
        };
        let n = s.chars().count();
        if n != 24 {
            return Err(bad(format!(
                "GB/T 34014 code must have 24 characters, got {n}"
            )));
        }
        let c: Vec<char> = s.chars().collect();
        if let Some(x) = c
            .iter()
            .find(|x| !(x.is_ascii_uppercase() || x.is_ascii_digit()))
        {
            return Err(bad(format!("character '{x}' is not A-Z or 0-9")));
        }
        if !matches!(c[3], 'P' | 'M' | 'C') {
            return Err(bad(format!(
                "unknown product type {} in GB/T code (expected P/M/C)",
                c[3]
            )));
        }
        if !matches!(c[4], 'A'..='G' | 'Z') {
            return Err(bad(format!("unknown battery type {} in GB/T code", c[4])));
        }
        let year_ok = matches!(c[14], '1'..='9' | 'A'..='H' | 'J'..='N' | 'P' | 'R'..='Y');
        if !year_ok {
            return Err(bad(format!(
                "invalid production year {} in GB/T code",
                c[14]
            )));
        }
        if !matches!(c[15], '1'..='9' | 'A'..='C') {
            return Err(bad(format!(
                "invalid production month {} in GB/T code",
                c[15]
            )));
        }
        if !matches!(c[16], '0'..='9' | 'A'..='H' | 'J'..='N' | 'P' | 'R'..='Y') {
            return Err(bad(format!(
                "invalid production day {} in GB/T code",
                c[16]
            )));
        }
        if !c[17..].iter().all(|x| x.is_ascii_digit()) {
            return Err(bad("the serial (last 7 characters) must be digits".into()));
        }
        Ok(GbtCode(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn unit_type(&self) -> UnitType {
        match self.0.as_bytes()[3] {
            b'P' => UnitType::Pack,
            b'M' => UnitType::Module,
            _ => UnitType::Cell,
        }
    }

    /// The chemistry family the battery-type letter implies: B is LFP,
    /// C is LMO; E (ternary) fits NMC and NCA.
    pub fn admits(&self, chem: Chemistry) -> bool {
        match self.0.as_bytes()[4] {
            b'B' => chem == Chemistry::Lfp,
            b'C' => chem == Chemistry::Lmo,
            b'E' => !matches!(chem, Chemistry::Lfp | Chemistry::Lmo),
            _ => true,
        }
    }

    pub fn battery_type_name(&self) -> &'static str {
        match self.0.as_bytes()[4] {
            b'B' => "LFP",
            b'C' => "LMO",
            b'E' => "ternary (NMC/NCA)",
            _ => "other",
        }
    }

    /// Production year from the VIN model-year code.
    pub fn production_year(&self) -> i32 {
        let y = self.0.as_bytes()[14] as char;
        const LETTERS: &str = "ABCDEFGHJKLMNPRSTVWXY";
        match y {
            '1'..='9' => 2000 + (y as i32 - '0' as i32),
            _ => 2010 + LETTERS.find(y).map(|i| i as i32).unwrap_or(0),
        }
    }
}

impl fmt::Display for GbtCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity of a passport or, where there is none, of the unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PassportId {
    /// A URN such as `urn:rheinzelle:rzb21p0012345`.
    Urn(String),
    /// A UUID, kept in its canonical `urn:uuid:` form.
    Uuid(String),
    /// A GB/T 34014 code.
    Gbt(GbtCode),
    /// An absolute URI (`https://...`), as IDTA passports name the product.
    Uri(String),
    /// A plant-assigned id for a unit that arrived without a passport.
    Plant(String),
}

impl PassportId {
    /// A URN: `urn:` then a namespace and a specific string.
    pub fn urn(s: &str) -> Result<PassportId, DomainError> {
        let mut parts = s.splitn(3, ':');
        let ok = parts.next().is_some_and(|p| p.eq_ignore_ascii_case("urn"))
            && parts.next().is_some_and(|p| !p.is_empty())
            && parts.next().is_some_and(|p| !p.is_empty())
            && !s.chars().any(char::is_whitespace);
        if ok {
            Ok(PassportId::Urn(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "passport identifier",
                value: s.to_string(),
                why: "not a URN (urn:<namespace>:<id>)".into(),
            })
        }
    }

    /// A UUID, bare or as `urn:uuid:`, in the 8-4-4-4-12 hex form.
    pub fn uuid(s: &str) -> Result<PassportId, DomainError> {
        let bare = s
            .strip_prefix("urn:uuid:")
            .or_else(|| s.strip_prefix("URN:UUID:"))
            .unwrap_or(s);
        let groups: Vec<&str> = bare.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip(lens)
                .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
        if ok {
            Ok(PassportId::Uuid(format!(
                "urn:uuid:{}",
                bare.to_ascii_lowercase()
            )))
        } else {
            Err(DomainError::Malformed {
                what: "passportIdentifier",
                value: s.to_string(),
                why: "passportIdentifier is not a valid UUID".into(),
            })
        }
    }

    /// An absolute URI: a scheme, `://`, and a host, without white space.
    pub fn uri(s: &str) -> Result<PassportId, DomainError> {
        let ok = s.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !rest.starts_with('/')
        }) && !s.chars().any(char::is_whitespace);
        if ok {
            Ok(PassportId::Uri(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "passport identifier",
                value: s.to_string(),
                why: "not an absolute URI (scheme://host/...)".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            PassportId::Urn(s)
            | PassportId::Uuid(s)
            | PassportId::Uri(s)
            | PassportId::Plant(s) => s,
            PassportId::Gbt(c) => c.as_str(),
        }
    }

    /// Rebuilds an id from its stored text.
    pub fn from_stored(s: &str) -> Result<PassportId, DomainError> {
        if s.starts_with("urn:uuid:") {
            PassportId::uuid(s)
        } else if s.starts_with("urn:") {
            PassportId::urn(s)
        } else if s.contains("://") {
            PassportId::uri(s)
        } else if let Ok(c) = GbtCode::parse(s) {
            Ok(PassportId::Gbt(c))
        } else if !s.is_empty() {
            Ok(PassportId::Plant(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "passport identifier",
                value: String::new(),
                why: "empty".into(),
            })
        }
    }
}

impl fmt::Display for PassportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(s: &str) -> Result<CountryCode, DomainError> {
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(CountryCode(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "country of collection",
                value: s.to_string(),
                why: "expected two capital letters (ISO 3166-1 alpha-2)".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the country is a Member State of the EU (for the split of
    /// outputs made in the EU and outside it).
    pub fn is_eu(&self) -> bool {
        const EU: [&str; 27] = [
            "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
            "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        ];
        EU.contains(&self.0.as_str())
    }
}

/// Where an element content figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSource {
    /// Declared in the passport.
    Declared,
    /// Estimated from the chemistry (domain brief section 2).
    Estimated,
    /// Measured by assay.
    Assayed,
}

impl ContentSource {
    pub fn name(self) -> &'static str {
        match self {
            ContentSource::Declared => "declared",
            ContentSource::Estimated => "estimated",
            ContentSource::Assayed => "assayed",
        }
    }

    pub fn from_name(s: &str) -> Option<ContentSource> {
        match s {
            "declared" => Some(ContentSource::Declared),
            "estimated" => Some(ContentSource::Estimated),
            "assayed" => Some(ContentSource::Assayed),
            _ => None,
        }
    }

    /// The relative standard uncertainty the plant assumes for this source:
    /// a manufacturer's declaration is close, a chemistry estimate is wide.
    pub fn relative_sigma(self) -> f64 {
        match self {
            ContentSource::Declared => 0.05,
            ContentSource::Estimated => 0.20,
            ContentSource::Assayed => 0.03,
        }
    }
}

/// Element masses with the source they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementContent {
    pub masses: ElementMasses,
    pub source: ContentSource,
}

/// The plant's copy of a battery passport.
#[derive(Debug, Clone, PartialEq)]
pub struct Passport {
    id: PassportId,
    form: PassportForm,
    serial: Option<String>,
    manufacturer: Option<String>,
    chemistry: Option<Chemistry>,
    unit_type: UnitType,
    mass: Kilograms,
    content: Option<ElementContent>,
    state_of_health_pct: Option<f64>,
    country_of_collection: Option<CountryCode>,
    gbt: Option<GbtCode>,
    warnings: Vec<String>,
}

/// The fields of a passport before their consistency is checked.
#[derive(Debug, Clone)]
pub struct PassportFields {
    pub id: PassportId,
    pub form: PassportForm,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub chemistry: Option<Chemistry>,
    pub unit_type: UnitType,
    pub mass: Kilograms,
    /// Declared element masses, if the document has any.
    pub declared: Option<ElementMasses>,
    pub state_of_health_pct: Option<f64>,
    pub country_of_collection: Option<CountryCode>,
    pub gbt: Option<GbtCode>,
    pub warnings: Vec<String>,
}

impl Passport {
    /// Checks the fields against each other and fills in estimated content
    /// where nothing is declared. Refuses: a zero mass, an element heavier
    /// than the battery, declared elements summing above the battery mass, a
    /// state of health outside 0-100 %, a GB/T code contradicting the chemistry.
    pub fn new(f: PassportFields) -> Result<Passport, DomainError> {
        if f.mass.kg() <= 0.0 {
            return Err(DomainError::OutOfRange {
                what: "battery mass",
                rule: "> 0 kg",
                value: format!("{} kg", f.mass.kg()),
            });
        }
        if let Some(soh) = f.state_of_health_pct
            && !(0.0..=100.0).contains(&soh)
        {
            return Err(DomainError::OutOfRange {
                what: "state of health",
                rule: "between 0 and 100 %",
                value: format!("{soh} %"),
            });
        }
        if let (Some(code), Some(chem)) = (&f.gbt, f.chemistry)
            && !code.admits(chem)
        {
            return Err(DomainError::Inconsistent(format!(
                "GB/T code says {}, form says {chem}: hold for assay",
                code.battery_type_name()
            )));
        }
        let content = match f.declared {
            Some(d) if !d.is_empty() => {
                for (e, m) in d.iter() {
                    if m > f.mass {
                        let hint = if m.kg() / f.mass.kg() > 100.0 {
                            " - looks like grams"
                        } else {
                            ""
                        };
                        return Err(DomainError::Inconsistent(format!(
                            "{e} {:.3} kg exceeds battery mass {:.3} kg{hint}",
                            m.kg(),
                            f.mass.kg()
                        )));
                    }
                }
                let total = d.total();
                if total > f.mass {
                    return Err(DomainError::Inconsistent(format!(
                        "declared element masses sum to {:.1} % of the battery mass (> 100 %)",
                        total.kg() / f.mass.kg() * 100.0
                    )));
                }
                Some(ElementContent {
                    masses: d,
                    source: ContentSource::Declared,
                })
            }
            _ => f.chemistry.map(|c| ElementContent {
                masses: c.estimate_content(f.unit_type, f.mass),
                source: ContentSource::Estimated,
            }),
        };
        let mut warnings = f.warnings;
        if content.is_none() {
            warnings.push("no chemistry and no composition - sampling/assay required".into());
        }
        Ok(Passport {
            id: f.id,
            form: f.form,
            serial: f.serial,
            manufacturer: f.manufacturer,
            chemistry: f.chemistry,
            unit_type: f.unit_type,
            mass: f.mass,
            content,
            state_of_health_pct: f.state_of_health_pct,
            country_of_collection: f.country_of_collection,
            gbt: f.gbt,
            warnings,
        })
    }

    pub fn id(&self) -> &PassportId {
        &self.id
    }
    pub fn form(&self) -> PassportForm {
        self.form
    }
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }
    pub fn manufacturer(&self) -> Option<&str> {
        self.manufacturer.as_deref()
    }
    pub fn chemistry(&self) -> Option<Chemistry> {
        self.chemistry
    }
    pub fn unit_type(&self) -> UnitType {
        self.unit_type
    }
    pub fn mass(&self) -> Kilograms {
        self.mass
    }
    /// Element content, declared or estimated; `None` when neither chemistry
    /// nor composition is known (the unit waits for an assay).
    pub fn content(&self) -> Option<&ElementContent> {
        self.content.as_ref()
    }
    pub fn state_of_health_pct(&self) -> Option<f64> {
        self.state_of_health_pct
    }
    pub fn country_of_collection(&self) -> Option<&CountryCode> {
        self.country_of_collection.as_ref()
    }
    pub fn gbt(&self) -> Option<&GbtCode> {
        self.gbt.as_ref()
    }
    /// Things the importer accepted but a person should know.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The element mass of `e`, zero where unknown.
    pub fn element(&self, e: Element) -> Kilograms {
        self.content
            .as_ref()
            .map(|c| c.masses.get(e))
            .unwrap_or(Kilograms::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbt(code: &str) -> Result<GbtCode, String> {
        GbtCode::parse(code).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_gbt_code_gives_its_fields() {
        let c = gbt("1JTPB9ZZ6UA19JLC28739896").unwrap();
        assert_eq!(c.unit_type(), UnitType::Pack);
        assert!(c.admits(Chemistry::Lfp));
        assert!(!c.admits(Chemistry::Nmc811));
        assert_eq!(c.production_year(), 2020);
    }

    #[test]
    fn gbt_errors_name_the_faulty_field() {
        let e = gbt("1JTPB9ZZ6UA19JLC2873989").unwrap_err();
        assert!(e.contains("must have 24 characters, got 23"), "{e}");
        let e = gbt("1JTXB9ZZ6UA19JLC28739896").unwrap_err();
        assert!(e.contains("unknown product type X"), "{e}");
        let e = gbt("1JTPB9ZZ6UA19JLD28739896").unwrap_err();
        assert!(e.contains("invalid production month D"), "{e}");
    }

    #[test]
    fn uris_need_a_scheme_and_a_host() {
        let id = PassportId::from_stored("https://id.example/battery/X1").unwrap();
        assert_eq!(id, PassportId::Uri("https://id.example/battery/X1".into()));
        assert!(PassportId::uri("https:///nohost").is_err());
        assert!(PassportId::uri("id.example/battery").is_err());
    }

    #[test]
    fn uuids_are_checked_group_by_group() {
        assert!(PassportId::uuid("urn:uuid:d9ed17e3-cc0e-45ee-8d10-3ed3cc667e97").is_ok());
        assert!(PassportId::uuid("d9ed17e3-cc0e-45ee-8d10-3ed3cc667e9").is_err());
        let e = PassportId::uuid("urn:uuid:d9ed17e3-cc0e-45ee-8d10-3ed3cc667e9")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid UUID"), "{e}");
    }

    fn fields(mass: f64, declared: Option<ElementMasses>) -> PassportFields {
        PassportFields {
            id: PassportId::urn("urn:test:p1").unwrap(),
            form: PassportForm::BatteryPass120,
            serial: None,
            manufacturer: None,
            chemistry: Some(Chemistry::Nmc811),
            unit_type: UnitType::Pack,
            mass: Kilograms::new(mass).unwrap(),
            declared,
            state_of_health_pct: None,
            country_of_collection: None,
            gbt: None,
            warnings: vec![],
        }
    }

    #[test]
    fn an_element_heavier_than_the_battery_is_refused_with_a_hint() {
        let d: ElementMasses = [(Element::Ni, Kilograms::new(62_000.0).unwrap())]
            .into_iter()
            .collect();
        let e = Passport::new(fields(500.0, Some(d)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Ni 62000.000 kg exceeds battery mass 500.000 kg - looks like grams"),
            "{e}"
        );
    }

    #[test]
    fn without_declared_content_the_chemistry_estimate_is_used_and_marked() {
        let p = Passport::new(fields(500.0, None)).unwrap();
        let c = p.content().unwrap();
        assert_eq!(c.source, ContentSource::Estimated);
        assert!(p.element(Element::Ni).kg() > 60.0);
    }

    #[test]
    fn a_unit_with_neither_chemistry_nor_composition_is_flagged_not_defaulted() {
        let mut f = fields(500.0, None);
        f.chemistry = None;
        let p = Passport::new(f).unwrap();
        assert!(p.content().is_none());
        assert!(p.warnings()[0].contains("sampling/assay required"));
    }

    #[test]
    fn a_gbt_code_contradicting_the_chemistry_is_held() {
        let mut f = fields(500.0, None);
        f.gbt = Some(GbtCode::parse("1JTPB9ZZ6UA19JLC28739896").unwrap());
        let e = Passport::new(f).unwrap_err().to_string();
        assert!(e.contains("GB/T code says LFP, form says NMC811"), "{e}");
    }
}
