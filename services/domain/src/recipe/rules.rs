//! What a recipe may ask of the equipment, and the process rules that span
//! parameters.
//!
//! An [`EquipmentCatalogue`] lists, per line, every parameter the equipment
//! knows: its dimension, the capability limits no recipe may exceed, for
//! which chemistries it is required (or refused), and the PLC tag a
//! download writes it to. [`validate`] checks a recipe against it and
//! against rules of physics: the vacuum dryer must be hotter than the
//! boiling points, at its pressure, of the electrolyte solvents it removes;
//! the O2 alarm must sit below the O2 trip.

use super::units::{Dimension, Measure, Unit};
use super::{Line, ParamName, Recipe, RecipeKey};
use crate::{Chemistry, DomainError, TagName};
use std::collections::BTreeSet;
use std::fmt;

/// For which feed chemistries a parameter must appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// Every recipe of the line has it.
    Always,
    /// Recipes may have it.
    Optional,
    /// Required for layered oxides (NMC, NCA, LMO) and refused for LFP (a
    /// reductant: LFP's iron phosphate needs none).
    LayeredOxidesOnly,
    /// Required for LFP and refused for the layered oxides (an oxidant).
    LfpOnly,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Always => "always",
            Requirement::Optional => "optional",
            Requirement::LayeredOxidesOnly => "layered_oxides_only",
            Requirement::LfpOnly => "lfp_only",
        }
    }

    pub fn parse(s: &str) -> Result<Requirement, DomainError> {
        [
            Requirement::Always,
            Requirement::Optional,
            Requirement::LayeredOxidesOnly,
            Requirement::LfpOnly,
        ]
        .into_iter()
        .find(|r| r.name() == s)
        .ok_or_else(|| DomainError::Malformed {
            what: "requirement",
            value: s.to_string(),
            why: "expected always, optional, layered_oxides_only or lfp_only".into(),
        })
    }

    /// Whether a recipe for `c` must have the parameter (`Some(true)`),
    /// must not (`Some(false)`), or may (`None`).
    pub fn for_chemistry(self, c: Chemistry) -> Option<bool> {
        let lfp = c == Chemistry::Lfp;
        match self {
            Requirement::Always => Some(true),
            Requirement::Optional => None,
            Requirement::LayeredOxidesOnly => Some(!lfp),
            Requirement::LfpOnly => Some(lfp),
        }
    }
}

/// One parameter the equipment of a line knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Capability {
    name: ParamName,
    min: Measure,
    max: Measure,
    requirement: Requirement,
    tag: Option<String>,
}

impl Capability {
    /// `tag` is the PLC tag a download writes, either a full name or a
    /// template with `{unit}` standing for the unit's path
    /// ("{unit}/EndVoltage" becomes "Discharge/Station1/EndVoltage").
    pub fn new(
        name: ParamName,
        min: Measure,
        max: Measure,
        requirement: Requirement,
        tag: Option<String>,
    ) -> Result<Capability, DomainError> {
        let max = max
            .to(min.unit())
            .map_err(|e| DomainError::Inconsistent(format!("capability {name}: {e}")))?;
        if min.value() > max.value() {
            return Err(DomainError::Inconsistent(format!(
                "capability {name}: min {min} is above max {max}"
            )));
        }
        if let Some(t) = &tag {
            TagName::parse(&t.replace("{unit}", "Line/Unit")).map_err(|e| {
                DomainError::Inconsistent(format!("capability {name}: tag {t}: {e}"))
            })?;
        }
        Ok(Capability {
            name,
            min,
            max,
            requirement,
            tag,
        })
    }

    pub fn name(&self) -> &ParamName {
        &self.name
    }

    pub fn dimension(&self) -> Dimension {
        self.min.dimension()
    }

    pub fn min(&self) -> Measure {
        self.min
    }

    pub fn max(&self) -> Measure {
        self.max
    }

    pub fn requirement(&self) -> Requirement {
        self.requirement
    }

    pub fn tag_template(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag this parameter is written to on `unit` ("Discharge/Station1").
    pub fn tag_for(&self, unit: &str) -> Option<Result<TagName, DomainError>> {
        self.tag
            .as_ref()
            .map(|t| TagName::parse(&t.replace("{unit}", unit)))
    }
}

/// Every parameter the equipment of one line knows.
#[derive(Debug, Clone, PartialEq)]
pub struct EquipmentCatalogue {
    line: Line,
    capabilities: Vec<Capability>,
}

impl EquipmentCatalogue {
    /// Refuses a parameter listed twice.
    pub fn new(line: Line, capabilities: Vec<Capability>) -> Result<Self, DomainError> {
        let mut seen = BTreeSet::new();
        for c in &capabilities {
            if !seen.insert(c.name()) {
                return Err(DomainError::Inconsistent(format!(
                    "equipment of the {line} line lists {} twice",
                    c.name()
                )));
            }
        }
        Ok(EquipmentCatalogue { line, capabilities })
    }

    pub fn line(&self) -> Line {
        self.line
    }

    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.iter().find(|c| c.name.as_str() == name)
    }
}

/// A reason a recipe is not valid, naming the parameter where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub parameter: Option<ParamName>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parameter {
            Some(p) => write!(f, "parameter {p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// An electrolyte solvent the dryer removes: its normal boiling point and
/// enthalpy of vaporisation (for Clausius-Clapeyron).
struct Solvent {
    name: &'static str,
    boiling_c: f64,
    dh_vap_j_per_mol: f64,
}

/// DMC, EMC and DEC (domain brief 3.2); EC (248 degC) stays with the black mass.
const SOLVENTS: [Solvent; 3] = [
    Solvent {
        name: "DMC",
        boiling_c: 90.0,
        dh_vap_j_per_mol: 38_600.0,
    },
    Solvent {
        name: "EMC",
        boiling_c: 107.0,
        dh_vap_j_per_mol: 40_000.0,
    },
    Solvent {
        name: "DEC",
        boiling_c: 126.0,
        dh_vap_j_per_mol: 43_600.0,
    },
];

const ATMOSPHERE_MBAR: f64 = 1013.25;
const GAS_CONSTANT: f64 = 8.314_462;

/// A solvent's boiling point in degC at `pressure_mbar` (Clausius-Clapeyron
/// from the normal boiling point).
fn boiling_point_c(s: &Solvent, pressure_mbar: f64) -> f64 {
    let t0 = s.boiling_c + 273.15;
    let inv = 1.0 / t0 - GAS_CONSTANT * (pressure_mbar / ATMOSPHERE_MBAR).ln() / s.dh_vap_j_per_mol;
    1.0 / inv - 273.15
}

/// Everything wrong with `recipe` against its line's `catalogue`, in a
/// stable order; empty when the recipe is valid.
pub fn validate(recipe: &Recipe, catalogue: &EquipmentCatalogue) -> Vec<Finding> {
    let key = recipe.key();
    let mut out = Vec::new();
    let mut push = |p: Option<&ParamName>, message: String| {
        out.push(Finding {
            parameter: p.cloned(),
            message,
        })
    };
    if key.line != catalogue.line() {
        push(
            None,
            format!(
                "recipe {key} is checked against the {} line's equipment",
                catalogue.line()
            ),
        );
        return out;
    }
    for (_, p) in recipe.parameters() {
        let Some(cap) = catalogue.capability(p.name().as_str()) else {
            push(
                Some(p.name()),
                format!(
                    "unknown parameter: the {} line's equipment has no such parameter",
                    key.line
                ),
            );
            continue;
        };
        if p.value().dimension() != cap.dimension() {
            push(
                Some(p.name()),
                format!(
                    "unit {} is a {}; this parameter is a {} (e.g. {})",
                    p.value().unit(),
                    p.value().dimension().name(),
                    cap.dimension().name(),
                    cap.min().unit()
                ),
            );
            continue;
        }
        let lo = cap.min().canonical();
        let hi = cap.max().canonical();
        let tol = 1e-9 * (lo.abs() + hi.abs()).max(1.0);
        for (what, v) in [("value", p.value()), ("min", p.min()), ("max", p.max())] {
            if v.canonical() < lo - tol || v.canonical() > hi + tol {
                push(
                    Some(p.name()),
                    format!(
                        "{what} {v} is beyond the equipment's capability {} ..= {}",
                        cap.min(),
                        cap.max()
                    ),
                );
            }
        }
        if cap.requirement().for_chemistry(key.chemistry) == Some(false) {
            push(
                Some(p.name()),
                format!(
                    "not used for {}: {}",
                    key.chemistry.name(),
                    match cap.requirement() {
                        Requirement::LayeredOxidesOnly => "LFP needs no reductant",
                        _ => "only LFP recipes take it",
                    }
                ),
            );
        }
    }
    for cap in catalogue.capabilities() {
        if cap.requirement().for_chemistry(key.chemistry) == Some(true)
            && recipe.parameter(cap.name().as_str()).is_none()
        {
            push(
                Some(cap.name()),
                format!(
                    "missing: every {} recipe for {} needs it",
                    key.line,
                    key.chemistry.name()
                ),
            );
        }
    }
    cross_rules(recipe, &mut push);
    out
}

fn cross_rules(recipe: &Recipe, push: &mut impl FnMut(Option<&ParamName>, String)) {
    let canonical = |name: &str, unit: Unit| {
        recipe
            .parameter(name)
            .filter(|p| p.value().dimension() == unit.dimension())
            .map(|p| (p.name().clone(), p.value().canonical()))
    };
    if let Some((name, t)) = canonical("dryer_temperature", Unit::Celsius) {
        let pressure =
            canonical("dryer_pressure", Unit::Millibar).map_or(ATMOSPHERE_MBAR, |(_, p)| p);
        for s in &SOLVENTS {
            let bp = boiling_point_c(s, pressure.max(1.0));
            if t <= bp {
                push(
                    Some(&name),
                    format!(
                        "{t:.1} degC does not exceed the boiling point of {} at {pressure:.0} mbar ({bp:.1} degC): the dryer would not remove it",
                        s.name
                    ),
                );
            }
        }
    }
    if let (Some((alarm, a)), Some((_, t))) = (
        canonical("o2_alarm_limit", Unit::VolumePercent),
        canonical("o2_trip_limit", Unit::VolumePercent),
    ) && a >= t
    {
        push(
            Some(&alarm),
            format!("the O2 alarm ({a} vol%) must be below the O2 trip ({t} vol%)"),
        );
    }
}

/// The (line, chemistry) pairs without a recipe among `keys`.
pub fn missing_coverage(keys: impl IntoIterator<Item = RecipeKey>) -> Vec<RecipeKey> {
    let have: BTreeSet<RecipeKey> = keys.into_iter().collect();
    Line::ALL
        .into_iter()
        .flat_map(|line| {
            Chemistry::ALL
                .into_iter()
                .map(move |chemistry| RecipeKey { line, chemistry })
        })
        .filter(|k| !have.contains(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Parameter, Phase, PhasePath};
    use super::*;

    fn m(v: f64, u: &str) -> Measure {
        Measure::new(v, Unit::parse(u).unwrap()).unwrap()
    }

    fn name(s: &str) -> ParamName {
        ParamName::parse(s).unwrap()
    }

    fn cap(n: &str, lo: f64, hi: f64, u: &str, r: Requirement) -> Capability {
        Capability::new(name(n), m(lo, u), m(hi, u), r, None).unwrap()
    }

    fn mechanical() -> EquipmentCatalogue {
        EquipmentCatalogue::new(
            Line::Mechanical,
            vec![
                cap(
                    "dryer_temperature",
                    80.0,
                    120.0,
                    "degC",
                    Requirement::Always,
                ),
                cap("dryer_pressure", 50.0, 1013.0, "mbar", Requirement::Always),
                cap("o2_alarm_limit", 0.5, 5.0, "vol%", Requirement::Always),
                cap("o2_trip_limit", 0.5, 5.0, "vol%", Requirement::Always),
            ],
        )
        .unwrap()
    }

    fn recipe(chem: &str, params: &[(&str, f64, &str)]) -> Recipe {
        Recipe::new(
            RecipeKey::parse(&format!("mechanical/{chem}")).unwrap(),
            "",
            vec![Phase {
                path: PhasePath {
                    unit_procedure: name("shred"),
                    operation: name("main"),
                    phase: name("run"),
                },
                parameters: params
                    .iter()
                    .map(|(n, v, u)| Parameter::new(name(n), m(*v, u), m(*v, u), m(*v, u)).unwrap())
                    .collect(),
            }],
        )
        .unwrap()
    }

    fn check(r: &Recipe) -> Vec<String> {
        validate(r, &mechanical())
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn a_vacuum_dryer_at_90_degc_removes_the_solvents() {
        let r = recipe(
            "NMC811",
            &[
                ("dryer_temperature", 90.0, "degC"),
                ("dryer_pressure", 80.0, "mbar"),
                ("o2_alarm_limit", 2.5, "vol%"),
                ("o2_trip_limit", 3.0, "vol%"),
            ],
        );
        assert_eq!(check(&r), Vec::<String>::new());
    }

    #[test]
    fn a_dryer_at_atmospheric_pressure_and_100_degc_leaves_emc_and_dec() {
        let r = recipe(
            "NMC811",
            &[
                ("dryer_temperature", 100.0, "degC"),
                ("dryer_pressure", 1000.0, "mbar"),
                ("o2_alarm_limit", 2.5, "vol%"),
                ("o2_trip_limit", 3.0, "vol%"),
            ],
        );
        let f = check(&r);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("EMC") && f[1].contains("DEC"), "{f:?}");
    }

    #[test]
    fn an_o2_alarm_above_the_trip_is_refused() {
        let r = recipe(
            "LFP",
            &[
                ("dryer_temperature", 90.0, "degC"),
                ("dryer_pressure", 80.0, "mbar"),
                ("o2_alarm_limit", 3.5, "vol%"),
                ("o2_trip_limit", 3.0, "vol%"),
            ],
        );
        assert!(check(&r)[0].contains("o2_alarm_limit"), "{:?}", check(&r));
    }

    #[test]
    fn unknown_missing_beyond_limits_and_wrong_dimension_are_each_named() {
        let r = recipe(
            "NMC811",
            &[
                ("dryer_temperature", 130.0, "degC"),
                ("o2_alarm_limit", 2.5, "mbar"),
                ("o2_trip_limit", 3.0, "vol%"),
                ("colour", 3.0, "mm"),
            ],
        );
        let f = check(&r).join("\n");
        assert!(
            f.contains("dryer_temperature: value 130 degC is beyond"),
            "{f}"
        );
        assert!(f.contains("o2_alarm_limit: unit mbar is a pressure"), "{f}");
        assert!(f.contains("colour: unknown parameter"), "{f}");
        assert!(f.contains("dryer_pressure: missing"), "{f}");
    }

    #[test]
    fn a_reductant_is_required_for_nmc_and_refused_for_lfp() {
        let cat = EquipmentCatalogue::new(
            Line::Hydromet,
            vec![cap(
                "reductant_ratio",
                1.0,
                2.5,
                "x",
                Requirement::LayeredOxidesOnly,
            )],
        )
        .unwrap();
        let hydro = |chem: &str, with: bool| {
            let params = if with {
                vec![
                    Parameter::new(
                        name("reductant_ratio"),
                        m(1.5, "x"),
                        m(1.0, "x"),
                        m(2.0, "x"),
                    )
                    .unwrap(),
                ]
            } else {
                vec![]
            };
            let mut phases = vec![Phase {
                path: PhasePath {
                    unit_procedure: name("leach"),
                    operation: name("main"),
                    phase: name("run"),
                },
                parameters: params,
            }];
            phases.push(Phase {
                path: PhasePath {
                    unit_procedure: name("leach"),
                    operation: name("main"),
                    phase: name("other"),
                },
                parameters: vec![],
            });
            Recipe::new(
                RecipeKey::parse(&format!("hydromet/{chem}")).unwrap(),
                "",
                phases,
            )
        };
        assert!(validate(&hydro("NMC622", true).unwrap(), &cat).is_empty());
        let nmc = validate(&hydro("LFP", true).unwrap(), &cat);
        assert!(
            nmc[0].to_string().contains("LFP needs no reductant"),
            "{nmc:?}"
        );
        // A recipe without any parameter does not exist at all.
        assert!(hydro("NMC622", false).is_err());
    }

    #[test]
    fn coverage_names_each_missing_line_and_chemistry() {
        let missing = missing_coverage([RecipeKey::parse("hydromet/LFP").unwrap()]);
        assert_eq!(missing.len(), 20);
        assert!(!missing.contains(&RecipeKey::parse("hydromet/LFP").unwrap()));
    }

    #[test]
    fn a_tag_template_names_the_units_tag() {
        let c = Capability::new(
            name("end_voltage_per_cell"),
            m(0.5, "V"),
            m(1.0, "V"),
            Requirement::Always,
            Some("{unit}/EndVoltage".into()),
        )
        .unwrap();
        let t = c.tag_for("Discharge/Station1").unwrap().unwrap();
        assert_eq!(t.as_str(), "Discharge/Station1/EndVoltage");
    }
}
