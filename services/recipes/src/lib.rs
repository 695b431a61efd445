//! Recipe files: the edge where process engineers' TOML meets the domain's
//! master recipes.
//!
//! Engineers own remine's recipes as text files kept in git, one file per
//! line and feed chemistry (`recipes/hydromet-nmc811.toml`), and the
//! equipment's capability as one catalogue file per line
//! (`recipes/equipment/hydromet.toml`). This crate reads those files into
//! the pure types of [`remine_domain::recipe`] and back:
//!
//! - [`parse_recipe`] / [`read_recipe`] turn a file into a
//!   [`Recipe`]; [`render_recipe`] writes the
//!   canonical form that reads back to an equal recipe;
//! - [`parse_catalogue`] reads an
//!   [`EquipmentCatalogue`];
//! - [`check_recipe`] runs the domain's rules (capability limits, required
//!   and refused parameters, units of the right dimension, the dryer above
//!   the solvents' boiling points, the O2 alarm below the trip) and places
//!   each finding at its file and line;
//! - [`lint_dir`] does all of that for a directory, adds file names,
//!   duplicates and coverage of every line and chemistry, and returns a
//!   [`LintReport`]; [`render_diff`] shows a recipe diff with units;
//! - [`shipped_recipes`] and [`shipped_catalogues`] are the defaults
//!   compiled into the binary from the repository's `recipes/`.
//!
//! Every problem is a [`RecipeFileError`] naming the file, the line and the
//! parameter, e.g. `recipes/hydromet-nmc811.toml:12: parameter
//! leach_temperature: value 95 degC is beyond the equipment's capability
//! 60 degC ..= 90 degC`. Nothing here panics on any input. The file formats
//! are documented in `recipes/README.md`; the rules themselves live in the
//! domain, this crate only adds what concerns files (syntax, keys, names).
//!
//! ```
//! use remine_recipes::{check_recipe, parse_recipe, render_recipe, shipped_catalogues};
//! let text = r#"
//! line = "hydromet"
//! chemistry = "LFP"
//! [leach.dissolve.leach]
//! leach_temperature = { value = 338.15, unit = "K", min = 333.15, max = 343.15 }
//! "#;
//! let r = parse_recipe(text, "lfp.toml").unwrap();
//! assert_eq!(parse_recipe(&render_recipe(&r), "again").unwrap(), r);
//! // Only one parameter: the LFP hydromet recipe misses the others.
//! let problems = check_recipe(&r, "lfp.toml", Some(text), &shipped_catalogues());
//! assert!(problems[0].to_string().starts_with("lfp.toml:3: parameter"));
//! ```

mod catalogue_file;
mod check;
mod diff;
mod error;
mod lint;
mod recipe_file;
mod shipped;
mod source;

pub use catalogue_file::parse_catalogue;
pub use check::check_recipe;
pub use diff::render_diff;
pub use error::RecipeFileError;
pub use lint::{FileResult, LintReport, lint_dir};
pub use recipe_file::{file_name, parse_recipe, read_recipe, render_recipe};
pub use shipped::{
    SHIPPED_CATALOGUE_FILES, SHIPPED_RECIPE_FILES, shipped_catalogues, shipped_recipes,
};

use remine_domain::recipe::Recipe;
use remine_domain::recipe::rules::EquipmentCatalogue;
use std::path::Path;

/// Reads a recipe file and checks it against `catalogues`, as an import
/// does: the recipe when it is valid, else every problem (parse errors
/// first; rule findings only once it parses).
#[tracing::instrument(skip_all, fields(file = %path.display()))]
pub fn load_recipe(
    path: &Path,
    catalogues: &[EquipmentCatalogue],
) -> Result<Recipe, Vec<RecipeFileError>> {
    let origin = path.display().to_string();
    let text = recipe_file::read_text(path).map_err(|e| vec![e])?;
    let recipe = recipe_file::parse_recipe_all(&text, &origin)?;
    let findings = check_recipe(&recipe, &origin, Some(&text), catalogues);
    if findings.is_empty() {
        Ok(recipe)
    } else {
        Err(findings)
    }
}
