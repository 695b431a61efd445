//! `remine audit verify`: checks the hash chain and names the first broken entry.

use super::PLANT_DB_FILE;
use crate::cli::DbArgs;
use crate::storage;
use remine_domain::ports::AuditLog;
use std::process::ExitCode;

pub async fn verify(db: &DbArgs) -> anyhow::Result<ExitCode> {
    let store = storage::open(db, PLANT_DB_FILE).await?;
    match store.verify().await? {
        Ok(n) => {
            super::emit(format_args!("audit trail intact: {n} entries verified"))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            eprintln!("error: {broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}
