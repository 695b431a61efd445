//! Linting a directory of recipe files, as engineers who keep recipes in
//! git run it before a commit: every file parsed and checked, file names
//! matching their recipes, no recipe twice, every line and chemistry
//! covered.

use crate::check::{ParamLines, check_recipe};
use crate::recipe_file::{file_name, parse_recipe_all, read_text};
use crate::{RecipeFileError, parse_catalogue};
use remine_domain::recipe::rules::{EquipmentCatalogue, missing_coverage};
use remine_domain::recipe::{Recipe, RecipeKey};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One recipe file of a linted directory.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The file's path as shown in errors (the directory joined with the name).
    pub file: String,
    /// The recipe, when the file parsed (it may still have findings).
    pub recipe: Option<Recipe>,
    /// How many problems this file has (they are in [`LintReport::errors`]).
    pub problems: usize,
}

/// What [`lint_dir`] found.
#[derive(Debug, Clone)]
pub struct LintReport {
    /// Every `*.toml` recipe file of the directory, by name.
    pub files: Vec<FileResult>,
    /// Every problem: each file's in file order, then the catalogues', the
    /// duplicates' and the coverage's.
    pub errors: Vec<RecipeFileError>,
}

impl LintReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The keys of the recipes that parsed.
    pub fn keys(&self) -> Vec<RecipeKey> {
        self.files
            .iter()
            .filter_map(|f| f.recipe.as_ref().map(Recipe::key))
            .collect()
    }
}

impl fmt::Display for LintReport {
    /// Every problem on its own line, then "21 recipes, 0 problems".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "{e}")?;
        }
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        write!(
            f,
            "{}, {}",
            plural(self.files.len(), "recipe"),
            plural(self.errors.len(), "problem")
        )
    }
}

/// Lints every `*.toml` file directly in `dir` (not in subdirectories) as a
/// recipe, against `catalogues` or, when `dir` has an `equipment/`
/// subdirectory, against the catalogues there instead. Never panics; an
/// unreadable directory or file is a problem in the report.
#[tracing::instrument(skip_all, fields(dir = %dir.display()))]
pub fn lint_dir(dir: &Path, catalogues: &[EquipmentCatalogue]) -> LintReport {
    let mut errors = Vec::new();
    let shown = |name: &str| dir.join(name).display().to_string();
    let equipment = dir.join("equipment");
    let local;
    let catalogues = if equipment.is_dir() {
        local = read_catalogues(&equipment, &mut errors);
        &local[..]
    } else {
        catalogues
    };
    let names = match toml_files(dir) {
        Ok(n) => n,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let mut files = Vec::new();
    let mut file_errors = Vec::new();
    // Keys a file claims (by its content, else by its name), for coverage.
    let mut claimed: BTreeMap<RecipeKey, String> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for name in names {
        let origin = shown(&name);
        let mut errs = Vec::new();
        let mut recipe = None;
        match read_text(&dir.join(&name)) {
            Err(e) => errs.push(e),
            Ok(text) => match parse_recipe_all(&text, &origin) {
                Err(es) => errs.extend(es),
                Ok(r) => {
                    let lines = ParamLines::of(&text, &origin);
                    let expected = file_name(r.key());
                    if expected != name {
                        errs.push(RecipeFileError::new(
                            &origin,
                            lines.line.or(lines.chemistry),
                            None,
                            format!(
                                "line and chemistry say {}, so the file must be named {expected}",
                                r.key()
                            ),
                        ));
                    }
                    errs.extend(check_recipe(&r, &origin, Some(&text), catalogues));
                    if let Some(first) = claimed.get(&r.key()) {
                        duplicates.push(RecipeFileError::new(
                            &origin,
                            lines.line.or(lines.chemistry),
                            None,
                            format!("recipe {} is also defined in {first}", r.key()),
                        ));
                    } else {
                        claimed.insert(r.key(), origin.clone());
                    }
                    recipe = Some(r);
                }
            },
        }
        if recipe.is_none()
            && let Some(key) = key_of_file_name(&name)
        {
            claimed.entry(key).or_insert_with(|| origin.clone());
        }
        files.push(FileResult {
            file: origin,
            recipe,
            problems: errs.len(),
        });
        file_errors.extend(errs);
    }
    for f in &mut files {
        f.problems += duplicates.iter().filter(|d| d.file == f.file).count();
    }
    let dir_shown = dir.display().to_string();
    let coverage = missing_coverage(claimed.keys().copied())
        .into_iter()
        .map(|k| {
            RecipeFileError::new(
                &dir_shown,
                None,
                None,
                format!("no recipe for {k} (expected {})", file_name(k)),
            )
        });
    let mut all = file_errors;
    all.extend(errors);
    all.extend(duplicates);
    all.extend(coverage);
    LintReport { files, errors: all }
}

/// The `*.toml` file names directly in `dir`, sorted.
fn toml_files(dir: &Path) -> Result<Vec<String>, RecipeFileError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        RecipeFileError::new(
            &shown,
            None,
            None,
            format!("cannot read the directory: {e}"),
        )
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    Ok(names)
}

/// The catalogues in `equipment/`, one per line; problems go to `errors`.
fn read_catalogues(dir: &Path, errors: &mut Vec<RecipeFileError>) -> Vec<EquipmentCatalogue> {
    let names = match toml_files(dir) {
        Ok(n) => n,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut out: Vec<(EquipmentCatalogue, String)> = Vec::new();
    for name in names {
        let path: PathBuf = dir.join(&name);
        let origin = path.display().to_string();
        match read_text(&path).and_then(|t| parse_catalogue(&t, &origin)) {
            Err(e) => errors.push(e),
            Ok(c) => match out.iter().find(|(o, _)| o.line() == c.line()) {
                Some((_, first)) => errors.push(RecipeFileError::new(
                    &origin,
                    None,
                    None,
                    format!(
                        "a second catalogue for the {} line (first: {first})",
                        c.line()
                    ),
                )),
                None => out.push((c, origin)),
            },
        }
    }
    out.into_iter().map(|(c, _)| c).collect()
}

/// The key a file name stands for ("hydromet-nmc811.toml"), if any.
fn key_of_file_name(name: &str) -> Option<RecipeKey> {
    let stem = name.strip_suffix(".toml")?;
    let (line, chem) = stem.split_once('-')?;
    RecipeKey::parse(&format!("{line}/{}", chem.to_ascii_uppercase())).ok()
}
