//! The crate's one error type: a problem in a recipe or catalogue file, with
//! the file, the line and the parameter it is about.

use std::fmt;

/// A problem found in a recipe or equipment catalogue file.
///
/// Displays as `recipes/hydromet-nmc811.toml:12: parameter
/// leach_temperature: ...`; the line and the parameter are left out where
/// there is none (a file that cannot be read, a directory missing a
/// recipe). Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", LinePart(*.line), ParamPart(.parameter.as_deref()))]
pub struct RecipeFileError {
    /// The file (or directory) as the caller named it.
    pub file: String,
    /// 1-based line in the file, where one applies.
    pub line: Option<usize>,
    /// The parameter at fault, where one applies.
    pub parameter: Option<String>,
    /// What is wrong, in words an engineer can act on.
    pub message: String,
}

impl RecipeFileError {
    pub(crate) fn new(
        file: &str,
        line: Option<usize>,
        parameter: Option<&str>,
        message: impl Into<String>,
    ) -> RecipeFileError {
        RecipeFileError {
            file: file.to_string(),
            line,
            parameter: parameter.map(str::to_string),
            message: message.into(),
        }
    }
}

struct LinePart(Option<usize>);

impl fmt::Display for LinePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, ":{n}"),
            None => Ok(()),
        }
    }
}

struct ParamPart<'a>(Option<&'a str>);

impl fmt::Display for ParamPart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "parameter {p}: "),
            None => Ok(()),
        }
    }
}
