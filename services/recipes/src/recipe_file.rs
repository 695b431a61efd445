//! The recipe file: one master recipe as TOML, read into a domain
//! [`Recipe`] and written back in a canonical form.

use crate::RecipeFileError;
use crate::source::{Source, describe, in_file_order, number};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{Line, ParamName, Parameter, Phase, PhasePath, Recipe, RecipeKey};
use remine_domain::{Chemistry, DomainError};
use std::collections::HashMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// The keys of a parameter's inline table, all required.
const PARAM_KEYS: [&str; 4] = ["value", "unit", "min", "max"];

/// The file name a recipe is kept under: `hydromet-nmc811.toml`.
pub fn file_name(key: RecipeKey) -> String {
    format!(
        "{}-{}.toml",
        key.line.name(),
        key.chemistry.name().to_ascii_lowercase()
    )
}

/// Reads a recipe file's text; `origin` names it in errors. Returns the
/// first problem; [`load_recipe`](crate::load_recipe) reports them all.
pub fn parse_recipe(text: &str, origin: &str) -> Result<Recipe, RecipeFileError> {
    parse_recipe_all(text, origin).map_err(|mut errs| errs.swap_remove(0))
}

/// Reads a recipe file from disk.
#[tracing::instrument(skip_all, fields(file = %path.display()))]
pub fn read_recipe(path: &Path) -> Result<Recipe, RecipeFileError> {
    let origin = path.display().to_string();
    let text = read_text(path)?;
    parse_recipe(&text, &origin)
}

pub(crate) fn read_text(path: &Path) -> Result<String, RecipeFileError> {
    std::fs::read(path)
        .map_err(|e| {
            RecipeFileError::new(
                &path.display().to_string(),
                None,
                None,
                format!("cannot read: {e}"),
            )
        })
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| {
                RecipeFileError::new(
                    &path.display().to_string(),
                    None,
                    None,
                    format!(
                        "not UTF-8 text (byte {}): a recipe file is TOML",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })
        })
}

/// Every problem of a recipe file's text, or the recipe (never empty on
/// `Err`).
pub(crate) fn parse_recipe_all(text: &str, origin: &str) -> Result<Recipe, Vec<RecipeFileError>> {
    let src = Source::new(text, origin);
    let doc = src.parse(true).map_err(|e| vec![e])?;
    let mut p = RecipeParser {
        src: &src,
        errors: Vec::new(),
        seen: HashMap::new(),
    };
    let recipe = p.document(&doc);
    match recipe {
        Some(r) if p.errors.is_empty() => Ok(r),
        _ if p.errors.is_empty() => Err(vec![src.err(None, None, "not a recipe")]),
        _ => Err(p.errors),
    }
}

struct RecipeParser<'s, 'a> {
    src: &'s Source<'a>,
    errors: Vec<RecipeFileError>,
    /// Parameter names already read, with their lines.
    seen: HashMap<String, usize>,
}

type Key<'i> = Spanned<DeString<'i>>;

impl RecipeParser<'_, '_> {
    fn fail(&mut self, key: &Key<'_>, parameter: Option<&str>, message: impl Into<String>) {
        let e = self.src.err(Some(key.span()), parameter, message);
        self.errors.push(e);
    }

    fn document(&mut self, doc: &DeTable<'_>) -> Option<Recipe> {
        let mut line = None;
        let mut chemistry = None;
        let mut description = String::new();
        let mut phases = Vec::new();
        for (k, v) in in_file_order(doc) {
            match (k.get_ref().as_ref(), v.get_ref()) {
                ("line", DeValue::String(s)) => match Line::parse(s) {
                    Ok(l) => line = Some(l),
                    Err(e) => self.fail(k, None, e.to_string()),
                },
                ("chemistry", DeValue::String(s)) => match s.parse::<Chemistry>() {
                    Ok(c) => chemistry = Some(c),
                    Err(e) => self.fail(k, None, e.to_string()),
                },
                ("description", DeValue::String(s)) => description = s.to_string(),
                (name @ ("line" | "chemistry" | "description"), other) => {
                    let got = describe(other);
                    self.fail(k, None, format!("{name} must be a string, got {got}"));
                }
                ("version", _) => self.fail(
                    k,
                    None,
                    "a recipe file carries no version: the recipe store numbers versions",
                ),
                (_, DeValue::Table(t)) if looks_like_parameter(t) => {
                    self.wrong_depth(k, "the top level")
                }
                (_, DeValue::Table(t)) => self.unit_procedure(k, t, &mut phases),
                (name, _) => self.fail(
                    k,
                    None,
                    format!(
                        "unknown key {name}: a recipe file has line, chemistry, description and [unit_procedure.operation.phase] tables"
                    ),
                ),
            }
        }
        let first_line = Some(0..0);
        if line.is_none() && !self.has_error_at_key(doc, "line") {
            let e = self.src.err(
                first_line.clone(),
                None,
                "missing line = \"discharge\" | \"mechanical\" | \"hydromet\"",
            );
            self.errors.push(e);
        }
        if chemistry.is_none() && !self.has_error_at_key(doc, "chemistry") {
            let e = self.src.err(
                first_line,
                None,
                "missing chemistry = \"NMC811\" (or another chemistry)",
            );
            self.errors.push(e);
        }
        let key = RecipeKey {
            line: line?,
            chemistry: chemistry?,
        };
        if !self.errors.is_empty() {
            return None;
        }
        match Recipe::new(key, &description, phases) {
            Ok(r) => Some(r),
            Err(e) => {
                let e = self.src.err(None, None, e.to_string());
                self.errors.push(e);
                None
            }
        }
    }

    /// Whether the key is present (and so already reported as wrong).
    fn has_error_at_key(&self, doc: &DeTable<'_>, key: &str) -> bool {
        doc.iter().any(|(k, _)| k.get_ref().as_ref() == key)
    }

    fn name(&mut self, key: &Key<'_>, what: &str) -> Option<ParamName> {
        match ParamName::parse(key.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.fail(key, None, format!("{what} name: {e}"));
                None
            }
        }
    }

    fn unit_procedure(&mut self, key: &Key<'_>, table: &DeTable<'_>, phases: &mut Vec<Phase>) {
        let Some(up) = self.name(key, "unit procedure") else {
            return;
        };
        if table.is_empty() {
            self.fail(
                key,
                None,
                format!("unit procedure {up} has no operation tables"),
            );
        }
        for (k, v) in in_file_order(table) {
            match v.get_ref() {
                DeValue::Table(t) if !looks_like_parameter(t) => {
                    let Some(op) = self.name(k, "operation") else {
                        continue;
                    };
                    if t.is_empty() {
                        self.fail(k, None, format!("operation {up}.{op} has no phase tables"));
                    }
                    for (pk, pv) in in_file_order(t) {
                        match pv.get_ref() {
                            DeValue::Table(pt) if !looks_like_parameter(pt) => {
                                if let Some(ph) = self.name(pk, "phase") {
                                    let path = PhasePath {
                                        unit_procedure: up.clone(),
                                        operation: op.clone(),
                                        phase: ph,
                                    };
                                    let parameters = self.phase(&path, pt);
                                    phases.push(Phase { path, parameters });
                                }
                            }
                            _ => self.wrong_depth(pk, &format!("[{up}.{op}]")),
                        }
                    }
                }
                _ => self.wrong_depth(k, &format!("[{up}]")),
            }
        }
    }

    fn wrong_depth(&mut self, key: &Key<'_>, at: &str) {
        let name = key.get_ref().to_string();
        self.fail(
            key,
            Some(&name),
            format!(
                "sits in {at}, which is not a phase: parameters belong in a [unit_procedure.operation.phase] table, three names deep"
            ),
        );
    }

    fn phase(&mut self, path: &PhasePath, table: &DeTable<'_>) -> Vec<Parameter> {
        let mut out = Vec::new();
        for (k, v) in in_file_order(table) {
            let name = k.get_ref().to_string();
            let line = self.src.line(k.span());
            if let Some(first) = self.seen.get(&name) {
                let msg = format!(
                    "given twice in this recipe (first at line {first}): parameter names are unique in a recipe"
                );
                self.fail(k, Some(&name), msg);
                continue;
            }
            self.seen.insert(name.clone(), line);
            match v.get_ref() {
                DeValue::Table(t) => {
                    if let Some(p) = self.parameter(k, t) {
                        out.push(p);
                    }
                }
                other => {
                    let got = describe(other);
                    self.fail(
                        k,
                        Some(&name),
                        format!(
                            "expected an inline table {{ value, unit, min, max }} in phase {path}, got {got}"
                        ),
                    );
                }
            }
        }
        out
    }

    fn parameter(&mut self, key: &Key<'_>, table: &DeTable<'_>) -> Option<Parameter> {
        let pname = key.get_ref().to_string();
        let before = self.errors.len();
        let name = match ParamName::parse(&pname) {
            Ok(n) => Some(n),
            Err(e) => {
                self.fail(key, Some(&pname), e.to_string());
                None
            }
        };
        for (k, v) in in_file_order(table) {
            let field = k.get_ref().as_ref();
            if !PARAM_KEYS.contains(&field) {
                let what = if matches!(v.get_ref(), DeValue::Table(_)) {
                    "nested table".to_string()
                } else {
                    "key".to_string()
                };
                self.fail(
                    k,
                    Some(&pname),
                    format!(
                        "unknown {what} {field}: a parameter has exactly value, unit, min and max"
                    ),
                );
            }
        }
        let unit = match table.get("unit").map(|v| (v.span(), v.get_ref())) {
            None => {
                self.fail(key, Some(&pname), "missing unit: every parameter carries its engineering unit, e.g. unit = \"degC\"");
                None
            }
            Some((span, DeValue::String(s))) => match Unit::parse(s) {
                Ok(u) => Some(u),
                Err(e) => {
                    let e = self.src.err(Some(span), Some(&pname), e.to_string());
                    self.errors.push(e);
                    None
                }
            },
            Some((span, other)) => {
                let msg = format!(
                    "unit must be a string such as \"degC\", got {}",
                    describe(other)
                );
                let e = self.src.err(Some(span), Some(&pname), msg);
                self.errors.push(e);
                None
            }
        };
        let mut numbers: [Option<(f64, std::ops::Range<usize>)>; 3] = Default::default();
        for (i, field) in ["value", "min", "max"].into_iter().enumerate() {
            match table.get(field).map(|v| (v.span(), v.get_ref())) {
                None => self.fail(
                    key,
                    Some(&pname),
                    format!("missing {field}: every parameter has value, unit, min and max"),
                ),
                Some((span, v)) => match number(v) {
                    Some(n) => numbers[i] = Some((n, span)),
                    None => {
                        let msg = format!("{field} must be a number, got {}", describe(v));
                        let e = self.src.err(Some(span), Some(&pname), msg);
                        self.errors.push(e);
                    }
                },
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let (name, unit) = (name?, unit?);
        let mut measures = Vec::with_capacity(3);
        for (field, n) in ["value", "min", "max"].into_iter().zip(numbers) {
            let (n, span) = n?;
            match Measure::new(n, unit) {
                Ok(m) => measures.push(m),
                Err(e) => {
                    let e = self
                        .src
                        .err(Some(span), Some(&pname), format!("{field}: {e}"));
                    self.errors.push(e);
                    return None;
                }
            }
        }
        let [value, min, max] = measures[..] else {
            return None;
        };
        match Parameter::new(name, value, min, max) {
            Ok(p) => Some(p),
            Err(e) => {
                let msg = without_prefix(&e, &pname);
                self.fail(key, Some(&pname), msg);
                None
            }
        }
    }
}

/// A table at a phase's place that holds a parameter's keys: a parameter
/// written one level too high.
fn looks_like_parameter(t: &DeTable<'_>) -> bool {
    t.iter().any(|(k, v)| {
        PARAM_KEYS.contains(&k.get_ref().as_ref()) && !matches!(v.get_ref(), DeValue::Table(_))
    })
}

/// The domain's message without its own "parameter NAME: " (the error
/// names the parameter already).
pub(crate) fn without_prefix(e: &DomainError, name: &str) -> String {
    let s = e.to_string();
    s.strip_prefix(&format!("parameter {name}: "))
        .map(str::to_string)
        .unwrap_or(s)
}

/// The recipe as canonical TOML: a header comment, line, chemistry,
/// description, then one table per phase with one inline table per
/// parameter, each in the recipe's order and in the value's unit.
/// [`parse_recipe`] reads it back to an equal recipe.
pub fn render_recipe(r: &Recipe) -> String {
    let key = r.key();
    let mut out = format!(
        "# Master recipe {key} (canonical form written by remine; format in recipes/README.md).\nline = {}\nchemistry = {}\ndescription = {}\n",
        quote(key.line.name()),
        quote(key.chemistry.name()),
        quote(r.description()),
    );
    for phase in r.phases() {
        out.push_str(&format!("\n[{}]\n", phase.path));
        for p in &phase.parameters {
            out.push_str(&format!(
                "{} = {{ value = {}, unit = {}, min = {}, max = {} }}\n",
                p.name(),
                num(p.value().value()),
                quote(p.value().unit().symbol()),
                num(p.min().value()),
                num(p.max().value()),
            ));
        }
    }
    out
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML number that reads back to the same f64: whole numbers without a
/// fraction, others in Rust's shortest round-trip form.
pub(crate) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:?}")
    }
}
