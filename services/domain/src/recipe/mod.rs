//! Master recipes: how one line treats one feed chemistry.
//!
//! A [`Recipe`] is an ISA-88 procedure reduced to what remine controls:
//! phases addressed by unit procedure, operation and phase, each holding
//! [`Parameter`]s with a value, an engineering unit and the range an
//! operator may adjust within. Parameter names are unique in a recipe, so
//! a parameter is addressed by its name alone. [`diff`] compares two
//! recipes parameter by parameter; [`lifecycle`] holds the approval states
//! and signatures; [`rules`] checks a recipe against the equipment's
//! capability and the process rules that span parameters.

pub mod lifecycle;
pub mod rules;
pub mod units;

use crate::{Chemistry, DomainError, LotId, Username};
use chrono::{DateTime, Utc};
use lifecycle::{RecipeStatus, SignatureMeaning};
use std::collections::HashSet;
use std::fmt;
use units::Measure;

/// A production line of the plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Line {
    Discharge,
    Mechanical,
    Hydromet,
}

impl Line {
    pub const ALL: [Line; 3] = [Line::Discharge, Line::Mechanical, Line::Hydromet];

    pub fn name(self) -> &'static str {
        match self {
            Line::Discharge => "discharge",
            Line::Mechanical => "mechanical",
            Line::Hydromet => "hydromet",
        }
    }

    pub fn parse(s: &str) -> Result<Line, DomainError> {
        Line::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DomainError::Malformed {
                what: "line",
                value: s.to_string(),
                why: "expected discharge, mechanical or hydromet".into(),
            })
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which master recipe: one per line and feed chemistry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipeKey {
    pub line: Line,
    pub chemistry: Chemistry,
}

impl RecipeKey {
    /// Reads "hydromet/NMC811" (the form [`fmt::Display`] writes).
    pub fn parse(s: &str) -> Result<RecipeKey, DomainError> {
        let bad = |why: &str| DomainError::Malformed {
            what: "recipe",
            value: s.to_string(),
            why: why.to_string(),
        };
        let (line, chem) = s
            .split_once('/')
            .ok_or_else(|| bad("expected LINE/CHEMISTRY, e.g. hydromet/NMC811"))?;
        Ok(RecipeKey {
            line: Line::parse(line).map_err(|e| bad(&e.to_string()))?,
            chemistry: chem.parse::<Chemistry>().map_err(|e| bad(&e.to_string()))?,
        })
    }
}

impl fmt::Display for RecipeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.line, self.chemistry.name())
    }
}

/// A version number of a master recipe, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipeVersion(u32);

impl RecipeVersion {
    pub const FIRST: RecipeVersion = RecipeVersion(1);

    pub fn new(n: u32) -> Result<RecipeVersion, DomainError> {
        if n == 0 {
            return Err(DomainError::OutOfRange {
                what: "recipe version",
                rule: "1 or more",
                value: n.to_string(),
            });
        }
        Ok(RecipeVersion(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn next(self) -> RecipeVersion {
        RecipeVersion(self.0.saturating_add(1))
    }
}

impl fmt::Display for RecipeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A name of a parameter or a procedure step: lower-case ASCII letters,
/// digits and underscores, starting with a letter, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamName(String);

impl ParamName {
    pub fn parse(s: &str) -> Result<ParamName, DomainError> {
        let ok_start = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_rest = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok_start || !ok_rest || s.len() > 64 {
            return Err(DomainError::Malformed {
                what: "name",
                value: s.to_string(),
                why: "use lower-case letters, digits and _, starting with a letter, at most 64"
                    .into(),
            });
        }
        Ok(ParamName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a phase sits in the procedure: unit procedure, operation, phase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhasePath {
    pub unit_procedure: ParamName,
    pub operation: ParamName,
    pub phase: ParamName,
}

impl fmt::Display for PhasePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.unit_procedure, self.operation, self.phase
        )
    }
}

/// A recipe parameter: a value and the range an operator may adjust it
/// within, all in one unit (the limits are converted to the value's unit).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    name: ParamName,
    value: Measure,
    min: Measure,
    max: Measure,
}

impl Parameter {
    /// Refuses limits of another dimension than the value, `min > max`, and
    /// a value outside `min..=max`.
    pub fn new(
        name: ParamName,
        value: Measure,
        min: Measure,
        max: Measure,
    ) -> Result<Parameter, DomainError> {
        let min = min.to(value.unit()).map_err(|e| at(&name, e))?;
        let max = max.to(value.unit()).map_err(|e| at(&name, e))?;
        if min.value() > max.value() {
            return Err(DomainError::Inconsistent(format!(
                "parameter {name}: min {min} is above max {max}"
            )));
        }
        let p = Parameter {
            name,
            value,
            min,
            max,
        };
        p.check_within(value)?;
        Ok(p)
    }

    pub fn name(&self) -> &ParamName {
        &self.name
    }

    pub fn value(&self) -> Measure {
        self.value
    }

    pub fn min(&self) -> Measure {
        self.min
    }

    pub fn max(&self) -> Measure {
        self.max
    }

    /// The parameter with another value inside its limits (an operator's
    /// adjustment of a control recipe); the value may be in another unit of
    /// the same dimension.
    pub fn with_value(&self, value: Measure) -> Result<Parameter, DomainError> {
        let value = value.to(self.value.unit()).map_err(|e| at(&self.name, e))?;
        self.check_within(value)?;
        Ok(Parameter {
            value,
            ..self.clone()
        })
    }

    fn check_within(&self, value: Measure) -> Result<(), DomainError> {
        let v = value.to(self.value.unit()).map_err(|e| at(&self.name, e))?;
        // A tolerance of a few ulps for limits written in another unit.
        let tol = 1e-9 * (self.min.value().abs() + self.max.value().abs()).max(1.0);
        if v.value() < self.min.value() - tol || v.value() > self.max.value() + tol {
            return Err(DomainError::OutOfRange {
                what: "parameter value",
                rule: "within the parameter's min and max",
                value: format!(
                    "{} = {value}, limits {} ..= {}",
                    self.name, self.min, self.max
                ),
            });
        }
        Ok(())
    }
}

fn at(name: &ParamName, e: DomainError) -> DomainError {
    DomainError::Inconsistent(format!("parameter {name}: {e}"))
}

/// A phase of the procedure and the parameters it runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub path: PhasePath,
    pub parameters: Vec<Parameter>,
}

/// A master (or, with adjustments, control) recipe: the procedure of one
/// line for one feed chemistry.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    key: RecipeKey,
    description: String,
    phases: Vec<Phase>,
}

impl Recipe {
    /// Refuses a recipe without parameters, a phase path given twice and a
    /// parameter name used twice (anywhere in the recipe).
    pub fn new(
        key: RecipeKey,
        description: &str,
        phases: Vec<Phase>,
    ) -> Result<Recipe, DomainError> {
        let mut paths = HashSet::new();
        let mut names = HashSet::new();
        for ph in &phases {
            if !paths.insert(&ph.path) {
                return Err(DomainError::Inconsistent(format!(
                    "recipe {key}: phase {} is given twice",
                    ph.path
                )));
            }
            for p in &ph.parameters {
                if !names.insert(p.name()) {
                    return Err(DomainError::Inconsistent(format!(
                        "recipe {key}: parameter {} is given twice (names are unique in a recipe)",
                        p.name()
                    )));
                }
            }
        }
        if names.is_empty() {
            return Err(DomainError::Inconsistent(format!(
                "recipe {key} has no parameters"
            )));
        }
        Ok(Recipe {
            key,
            description: description.trim().to_string(),
            phases,
        })
    }

    pub fn key(&self) -> RecipeKey {
        self.key
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Every parameter with the phase it belongs to, in file order.
    pub fn parameters(&self) -> impl Iterator<Item = (&PhasePath, &Parameter)> {
        self.phases
            .iter()
            .flat_map(|ph| ph.parameters.iter().map(move |p| (&ph.path, p)))
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters()
            .map(|(_, p)| p)
            .find(|p| p.name().as_str() == name)
    }

    /// The recipe with one parameter set to another value inside its limits.
    pub fn adjusted(&self, name: &str, value: Measure) -> Result<Recipe, DomainError> {
        let mut found = false;
        let mut phases = self.phases.clone();
        for ph in &mut phases {
            for p in &mut ph.parameters {
                if p.name().as_str() == name {
                    *p = p.with_value(value)?;
                    found = true;
                }
            }
        }
        if !found {
            return Err(DomainError::Malformed {
                what: "parameter",
                value: name.to_string(),
                why: format!("recipe {} has no such parameter", self.key),
            });
        }
        Ok(Recipe {
            phases,
            ..self.clone()
        })
    }
}

/// How one parameter differs between two recipes.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamChange {
    Added(PhasePath, Parameter),
    Removed(PhasePath, Parameter),
    /// Value, limits or phase differ.
    Changed {
        old_path: PhasePath,
        old: Parameter,
        new_path: PhasePath,
        new: Parameter,
    },
}

impl ParamChange {
    pub fn name(&self) -> &ParamName {
        match self {
            ParamChange::Added(_, p) | ParamChange::Removed(_, p) => p.name(),
            ParamChange::Changed { new, .. } => new.name(),
        }
    }
}

impl fmt::Display for ParamChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &Parameter| format!("{} [{} ..= {}]", p.value(), p.min(), p.max());
        match self {
            ParamChange::Added(path, p) => write!(f, "+ {path}.{}: {}", p.name(), show(p)),
            ParamChange::Removed(path, p) => write!(f, "- {path}.{}: {}", p.name(), show(p)),
            ParamChange::Changed {
                old_path,
                old,
                new_path,
                new,
            } => {
                let place = if old_path == new_path {
                    format!("{new_path}")
                } else {
                    format!("{old_path} -> {new_path}")
                };
                write!(
                    f,
                    "~ {place}.{}: {} -> {}",
                    new.name(),
                    show(old),
                    show(new)
                )
            }
        }
    }
}

/// Parameter-by-parameter differences from `old` to `new`: changed and
/// removed in `old`'s order, then added in `new`'s. Values in different
/// units of one dimension are equal when they are the same quantity.
pub fn diff(old: &Recipe, new: &Recipe) -> Vec<ParamChange> {
    let same = |a: Measure, b: Measure| {
        a.dimension() == b.dimension()
            && (a.canonical() - b.canonical()).abs()
                <= 1e-9 * a.canonical().abs().max(b.canonical().abs()).max(1.0)
    };
    let find = |r: &Recipe, name: &ParamName| {
        r.parameters()
            .find(|(_, p)| p.name() == name)
            .map(|(path, p)| (path.clone(), p.clone()))
    };
    let mut out = Vec::new();
    for (path, p) in old.parameters() {
        match find(new, p.name()) {
            None => out.push(ParamChange::Removed(path.clone(), p.clone())),
            Some((new_path, q)) => {
                let equal = same(p.value(), q.value())
                    && same(p.min(), q.min())
                    && same(p.max(), q.max())
                    && *path == new_path;
                if !equal {
                    out.push(ParamChange::Changed {
                        old_path: path.clone(),
                        old: p.clone(),
                        new_path,
                        new: q,
                    });
                }
            }
        }
    }
    for (path, q) in new.parameters() {
        if find(old, q.name()).is_none() {
            out.push(ParamChange::Added(path.clone(), q.clone()));
        }
    }
    out
}

/// An electronic signature on a recipe version: who, meaning what, when,
/// and the reason they gave (a rejection's reason, a release note).
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub user: Username,
    pub meaning: SignatureMeaning,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A master recipe version as stored, with its life cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeRecord {
    pub version: RecipeVersion,
    pub status: RecipeStatus,
    pub recipe: Recipe,
    /// Who created the version (the draft's author).
    pub created_by: Username,
    pub created_at: DateTime<Utc>,
    /// Oldest first.
    pub signatures: Vec<Signature>,
}

impl RecipeRecord {
    pub fn key(&self) -> RecipeKey {
        self.recipe.key()
    }

    /// Who submitted the version for review (signed "authored"), if anyone.
    pub fn submitted_by(&self) -> Option<&Username> {
        self.signatures
            .iter()
            .rev()
            .find(|s| s.meaning == SignatureMeaning::Authored)
            .map(|s| &s.user)
    }
}

/// An operator's change of one parameter for one batch, inside its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub parameter: ParamName,
    pub from: Measure,
    pub to: Measure,
    pub reason: String,
}

/// The recipe a batch actually ran with: the released master version, the
/// operator's adjustments, and the values written to (and read back from)
/// the unit.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecipe {
    /// The lot the batch makes.
    pub batch: LotId,
    /// The unit it ran on ("Discharge/Station1").
    pub unit: String,
    pub version: RecipeVersion,
    /// The master recipe with the adjustments applied.
    pub recipe: Recipe,
    pub adjustments: Vec<Adjustment>,
    pub downloaded_by: Username,
    pub downloaded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::units::Unit;
    use super::*;

    fn m(v: f64, u: &str) -> Measure {
        Measure::new(v, Unit::parse(u).unwrap()).unwrap()
    }

    fn param(name: &str, v: f64, lo: f64, hi: f64, u: &str) -> Parameter {
        Parameter::new(ParamName::parse(name).unwrap(), m(v, u), m(lo, u), m(hi, u)).unwrap()
    }

    fn path(a: &str) -> PhasePath {
        PhasePath {
            unit_procedure: ParamName::parse(a).unwrap(),
            operation: ParamName::parse("main").unwrap(),
            phase: ParamName::parse("run").unwrap(),
        }
    }

    fn leach(temp: f64) -> Recipe {
        Recipe::new(
            RecipeKey::parse("hydromet/NMC811").unwrap(),
            "test",
            vec![Phase {
                path: path("leach"),
                parameters: vec![
                    param("leach_temperature", temp, 60.0, 85.0, "degC"),
                    param("acid_concentration", 2.0, 1.5, 2.5, "M"),
                ],
            }],
        )
        .unwrap()
    }

    #[test]
    fn a_value_outside_its_limits_is_refused_with_its_name() {
        let e = Parameter::new(
            ParamName::parse("leach_temperature").unwrap(),
            m(90.0, "degC"),
            m(60.0, "degC"),
            m(85.0, "degC"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("leach_temperature") && e.contains("90"), "{e}");
    }

    #[test]
    fn limits_in_another_unit_are_converted_to_the_values_unit() {
        let p = Parameter::new(
            ParamName::parse("t").unwrap(),
            m(75.0, "degC"),
            m(333.15, "K"),
            m(358.15, "K"),
        )
        .unwrap();
        assert!((p.min().value() - 60.0).abs() < 1e-9);
        assert_eq!(p.min().unit(), Unit::Celsius);
    }

    #[test]
    fn limits_of_another_dimension_are_refused() {
        let e = Parameter::new(
            ParamName::parse("t").unwrap(),
            m(75.0, "degC"),
            m(1.0, "M"),
            m(2.0, "M"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("parameter t"), "{e}");
    }

    #[test]
    fn a_parameter_name_used_twice_is_refused() {
        let e = Recipe::new(
            RecipeKey::parse("hydromet/LFP").unwrap(),
            "",
            vec![
                Phase {
                    path: path("leach"),
                    parameters: vec![param("ph", 1.0, 0.0, 2.0, "pH")],
                },
                Phase {
                    path: path("sx"),
                    parameters: vec![param("ph", 5.0, 4.0, 6.0, "pH")],
                },
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("ph is given twice"), "{e}");
    }

    #[test]
    fn an_adjustment_stays_inside_the_limits() {
        let r = leach(75.0);
        let ok = r.adjusted("leach_temperature", m(353.15, "K")).unwrap();
        assert!((ok.parameter("leach_temperature").unwrap().value().value() - 80.0).abs() < 1e-9);
        assert!(r.adjusted("leach_temperature", m(90.0, "degC")).is_err());
        assert!(r.adjusted("nonexistent", m(1.0, "degC")).is_err());
    }

    #[test]
    fn diff_lists_changed_added_and_removed_parameters() {
        let a = leach(75.0);
        let b = leach(80.0);
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1);
        assert!(d[0].to_string().contains("75 degC") && d[0].to_string().contains("80 degC"));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn diff_treats_the_same_quantity_in_another_unit_as_equal() {
        let a = leach(75.0);
        let b = a.adjusted("leach_temperature", m(348.15, "K")).unwrap();
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn recipe_keys_read_back_what_they_write() {
        let k = RecipeKey::parse("mechanical/LFP").unwrap();
        assert_eq!(RecipeKey::parse(&k.to_string()).unwrap(), k);
        assert!(RecipeKey::parse("kitchen/LFP").is_err());
        assert!(RecipeKey::parse("hydromet").is_err());
    }
}
