//! `remine passport import PATH...`: receive units with a summary of what
//! was accepted and what was refused, and why.

use super::PLANT_DB_FILE;
use crate::cli::DbArgs;
use crate::storage;
use remine_domain::CountryCode;
use remine_mes::{Actor, Intake};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn import(
    db: &DbArgs,
    paths: &[PathBuf],
    country: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let country = country.map(CountryCode::parse).transpose()?;
    let store = storage::open(db, PLANT_DB_FILE).await?;
    let intake = Intake::new(Arc::new(store));
    let summary = remine_passports::import_paths(paths);
    let mut accepted = 0;
    let mut refused: Vec<String> = summary
        .refused
        .iter()
        .map(|r| format!("{}", r.error))
        .collect();
    for unit in &summary.accepted {
        let source = unit.source.display().to_string();
        match intake
            .receive(
                &Actor::system(),
                &unit.passport,
                chrono::Utc::now(),
                country.clone(),
                &source,
            )
            .await
        {
            Ok(lot) => {
                accepted += 1;
                super::emit(format_args!(
                    "accepted {source}: {} as lot {}",
                    unit.passport.id(),
                    lot.id()
                ))?;
                for w in &unit.warnings {
                    super::emit(format_args!("  warning: {w}"))?;
                }
            }
            Err(e) => refused.push(format!("{source}: {e}")),
        }
    }
    for r in &refused {
        super::emit(format_args!("refused {r}"))?;
    }
    super::emit(format_args!(
        "{accepted} accepted, {} refused",
        refused.len()
    ))?;
    Ok(if refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
