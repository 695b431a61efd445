//! `remine recipe lint|diff|import`: recipes for engineers who keep them in git.

use super::PLANT_DB_FILE;
use crate::cli::DbArgs;
use crate::storage;
use anyhow::Context;
use remine_domain::Username;
use remine_domain::ports::Store;
use remine_mes::{Actor, Recipes, Users};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Lints a folder; exit 1 when anything is wrong.
pub fn lint(dir: &Path) -> anyhow::Result<ExitCode> {
    let report = remine_recipes::lint_dir(dir, &remine_recipes::shipped_catalogues());
    super::emit(&report)?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the differences from OLD to NEW, one parameter a line.
pub fn diff(old: &Path, new: &Path) -> anyhow::Result<ExitCode> {
    let a = remine_recipes::read_recipe(old)?;
    let b = remine_recipes::read_recipe(new)?;
    if a.key() != b.key() {
        super::emit(format_args!(
            "note: comparing {} ({}) with {} ({})",
            old.display(),
            a.key(),
            new.display(),
            b.key()
        ))?;
    }
    let changes = remine_domain::recipe::diff(&a, &b);
    if changes.is_empty() {
        super::emit(format_args!("no parameter differs"))?;
    } else {
        super::emit(remine_recipes::render_diff(&changes).trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Stores FILE as a new draft version.
pub async fn import(
    db: &DbArgs,
    file: &Path,
    author: Option<&str>,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let catalogues = remine_recipes::shipped_catalogues();
    let recipe = match remine_recipes::load_recipe(file, &catalogues) {
        Ok(r) => r,
        Err(problems) => {
            for p in &problems {
                super::emit(p)?;
            }
            anyhow::bail!(
                "{} not imported: {} problem(s); nothing was stored",
                file.display(),
                problems.len()
            );
        }
    };
    let store: Arc<dyn Store> = Arc::new(storage::open(db, PLANT_DB_FILE).await?);
    let actor = match author {
        None => Actor::system(),
        Some(name) => {
            let name = Username::parse(name)?;
            let user = store
                .user(&name)
                .await?
                .with_context(|| format!("no user {name}: add the author first"))?;
            Actor {
                user: user.name,
                role: user.role,
            }
        }
    };
    let recipes = Recipes::new(
        store.clone(),
        Users::new(store, chrono::Duration::hours(1)),
        catalogues,
    );
    let record = recipes
        .create_draft(&actor, recipe, reason)
        .await
        .with_context(|| format!("{}", file.display()))?;
    super::emit(format_args!(
        "draft {} {} created from {} by {}",
        record.key(),
        record.version,
        file.display(),
        record.created_by
    ))?;
    Ok(ExitCode::SUCCESS)
}
