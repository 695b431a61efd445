//! A parsed recipe checked against its line's equipment and the process
//! rules, with each finding placed at its file and line.

use crate::RecipeFileError;
use crate::source::{Entry, Source, in_file_order};
use remine_domain::recipe::Recipe;
use remine_domain::recipe::rules::{EquipmentCatalogue, validate};
use std::collections::HashMap;
use toml::de::DeValue;

/// Everything the domain's [`validate`] finds wrong with `r` against the
/// catalogue of its line, as errors of the file `origin`. With the file's
/// `text`, each error carries the line of its parameter; a missing
/// parameter (or a finding about no parameter) points at the
/// `chemistry = ...` line, since what is required depends on it.
pub fn check_recipe(
    r: &Recipe,
    origin: &str,
    text: Option<&str>,
    catalogues: &[EquipmentCatalogue],
) -> Vec<RecipeFileError> {
    let lines = text.map(|t| ParamLines::of(t, origin)).unwrap_or_default();
    let Some(catalogue) = catalogues.iter().find(|c| c.line() == r.key().line) else {
        return vec![RecipeFileError::new(
            origin,
            lines.chemistry,
            None,
            format!(
                "no equipment catalogue for the {} line to check recipe {} against",
                r.key().line,
                r.key()
            ),
        )];
    };
    validate(r, catalogue)
        .into_iter()
        .map(|f| {
            let name = f.parameter.as_ref().map(|p| p.as_str().to_string());
            let line = name
                .as_deref()
                .and_then(|n| lines.params.get(n).copied())
                .or(lines.chemistry);
            RecipeFileError::new(origin, line, name.as_deref(), f.message)
        })
        .collect()
}

/// Where each parameter, and the chemistry, is written in a recipe file.
#[derive(Default)]
pub(crate) struct ParamLines {
    pub params: HashMap<String, usize>,
    pub chemistry: Option<usize>,
    pub line: Option<usize>,
}

impl ParamLines {
    pub fn of(text: &str, origin: &str) -> ParamLines {
        let src = Source::new(text, origin);
        let mut out = ParamLines::default();
        let Ok(doc) = src.parse(false) else {
            return out;
        };
        for (k, up) in in_file_order(&doc) {
            match k.get_ref().as_ref() {
                "chemistry" => out.chemistry = Some(src.line(k.span())),
                "line" => out.line = Some(src.line(k.span())),
                _ => {}
            }
            for (_, op) in tables(up.get_ref()) {
                for (_, phase) in tables(op.get_ref()) {
                    for (pk, _) in tables(phase.get_ref()) {
                        out.params
                            .entry(pk.get_ref().to_string())
                            .or_insert_with(|| src.line(pk.span()));
                    }
                }
            }
        }
        out
    }
}

fn tables<'t, 'i>(v: &'t DeValue<'i>) -> Vec<Entry<'t, 'i>> {
    match v {
        DeValue::Table(t) => in_file_order(t),
        _ => Vec::new(),
    }
}
