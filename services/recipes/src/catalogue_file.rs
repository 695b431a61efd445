//! The equipment catalogue file: one line's parameters, capability limits,
//! requirements and PLC tags, read into a domain [`EquipmentCatalogue`].

use crate::RecipeFileError;
use crate::source::{Source, describe, in_file_order, number};
use remine_domain::recipe::Line;
use remine_domain::recipe::ParamName;
use remine_domain::recipe::rules::{Capability, EquipmentCatalogue, Requirement};
use remine_domain::recipe::units::{Measure, Unit};
use std::ops::Range;
use toml::de::{DeTable, DeValue};

const CAPABILITY_KEYS: [&str; 6] = ["unit", "min", "max", "requirement", "tag", "description"];

/// Reads an equipment catalogue file's text; `origin` names it in errors.
pub fn parse_catalogue(text: &str, origin: &str) -> Result<EquipmentCatalogue, RecipeFileError> {
    let src = Source::new(text, origin);
    let doc = src.parse(false)?;
    let mut line = None;
    let mut caps = Vec::new();
    for (k, v) in in_file_order(&doc) {
        match (k.get_ref().as_ref(), v.get_ref()) {
            ("line", DeValue::String(s)) => {
                line =
                    Some(Line::parse(s).map_err(|e| src.err(Some(k.span()), None, e.to_string()))?)
            }
            ("description", DeValue::String(_)) => {}
            ("parameters", DeValue::Table(t)) => {
                for (pk, pv) in in_file_order(t) {
                    let name = pk.get_ref().to_string();
                    let at = |msg: String| src.err(Some(pk.span()), Some(&name), msg);
                    let DeValue::Table(pt) = pv.get_ref() else {
                        return Err(at(format!(
                            "expected a [parameters.{name}] table, got {}",
                            describe(pv.get_ref())
                        )));
                    };
                    caps.push(capability(&name, pt).map_err(|(span, msg)| match span {
                        Some(s) => src.err(Some(s), Some(&name), msg),
                        None => at(msg),
                    })?);
                }
            }
            (name, other) => {
                return Err(src.err(
                    Some(k.span()),
                    None,
                    format!(
                        "unexpected {name} = {}: a catalogue has line, description and [parameters.NAME] tables",
                        describe(other)
                    ),
                ));
            }
        }
    }
    let line = line.ok_or_else(|| {
        src.err(
            None,
            None,
            "missing line = \"discharge\" | \"mechanical\" | \"hydromet\"",
        )
    })?;
    EquipmentCatalogue::new(line, caps).map_err(|e| src.err(None, None, e.to_string()))
}

/// A capability problem: the span of the field at fault (none: the whole
/// table) and what is wrong.
type Fault = (Option<Range<usize>>, String);

fn capability(name: &str, t: &DeTable<'_>) -> Result<Capability, Fault> {
    if let Some((k, _)) = in_file_order(t)
        .into_iter()
        .find(|(k, _)| !CAPABILITY_KEYS.contains(&k.get_ref().as_ref()))
    {
        return Err((
            Some(k.span()),
            format!(
                "unknown key {}: a capability has unit, min, max, requirement and optionally tag and description",
                k.get_ref()
            ),
        ));
    }
    let span = |field: &str| t.get(field).map(|v| v.span());
    let text = |field: &str| -> Result<Option<String>, Fault> {
        match t.get(field).map(|v| v.get_ref()) {
            None => Ok(None),
            Some(DeValue::String(s)) => Ok(Some(s.to_string())),
            Some(other) => Err((
                span(field),
                format!("{field} must be a string, got {}", describe(other)),
            )),
        }
    };
    let unit = text("unit")?.ok_or((None, "missing unit".to_string()))?;
    let unit = Unit::parse(&unit).map_err(|e| (span("unit"), e.to_string()))?;
    let measure = |field: &str| -> Result<Measure, Fault> {
        let v = t.get(field).ok_or((None, format!("missing {field}")))?;
        let n = number(v.get_ref()).ok_or_else(|| {
            (
                Some(v.span()),
                format!("{field} must be a number, got {}", describe(v.get_ref())),
            )
        })?;
        Measure::new(n, unit).map_err(|e| (Some(v.span()), format!("{field}: {e}")))
    };
    let (min, max) = (measure("min")?, measure("max")?);
    let requirement = text("requirement")?.ok_or((
        None,
        "missing requirement (always, optional, layered_oxides_only or lfp_only)".to_string(),
    ))?;
    let requirement =
        Requirement::parse(&requirement).map_err(|e| (span("requirement"), e.to_string()))?;
    let tag = text("tag")?;
    text("description")?;
    let pname = ParamName::parse(name).map_err(|e| (None, e.to_string()))?;
    Capability::new(pname, min, max, requirement, tag).map_err(|e| {
        let msg = e.to_string().replace(&format!("capability {name}: "), "");
        (None, msg)
    })
}
