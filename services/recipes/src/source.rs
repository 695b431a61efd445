//! Reading TOML with positions: the parsed document with the span of every
//! key, turned into 1-based lines and errors that name them.

use crate::RecipeFileError;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// A key and its value, each with its place in the text.
pub(crate) type Entry<'t, 'i> = (&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>);

/// One file's text and the name errors give it.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, origin: &'a str) -> Source<'a> {
        Source { text, origin }
    }

    /// Parses the document, or the error of malformed TOML at its line.
    /// With `name_parameters`, the error names the key written at the start
    /// of that line as the parameter (in a recipe, other keys are few).
    pub fn parse(&self, name_parameters: bool) -> Result<DeTable<'a>, RecipeFileError> {
        DeTable::parse(self.text)
            .map(Spanned::into_inner)
            .map_err(|e| {
                let span = e.span();
                let key = match (&span, name_parameters) {
                    (Some(s), true) => self.key_on_line(s.start),
                    _ => None,
                };
                self.err(span, key, format!("malformed TOML: {}", e.message().trim()))
            })
    }

    /// The bare key a `key = ...` line at `offset` starts with, other than
    /// a recipe's header keys.
    fn key_on_line(&self, offset: usize) -> Option<&'a str> {
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        let at = offset.min(bytes.len());
        let start = bytes[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let rest = text.get(start..)?.trim_start();
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(len);
        let is_assignment = after.trim_start().starts_with('=');
        let header = ["line", "chemistry", "description", "version"].contains(&key);
        (is_assignment && !key.is_empty() && !header).then_some(key)
    }

    /// The 1-based line where `span` starts.
    pub fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub fn err(
        &self,
        span: Option<Range<usize>>,
        parameter: Option<&str>,
        message: impl Into<String>,
    ) -> RecipeFileError {
        RecipeFileError::new(
            self.origin,
            Some(span.map_or(1, |s| self.line(s))),
            parameter,
            message,
        )
    }
}

/// A table's entries in the order they appear in the text (the parsed map
/// sorts its keys).
pub(crate) fn in_file_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// A TOML integer or float as f64.
pub(crate) fn number(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().parse().ok(),
        _ => None,
    }
}

/// How an error message names a value of the wrong type.
pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        other => format!("{} {}", article(other.type_str()), other.type_str()),
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
