//! Opening the store named by --db, or the SQLite file in --data.

use crate::cli::DbArgs;
use anyhow::Context;
use remine_store::Db;
use std::path::Path;

/// Opens (and migrates) the database: `--db URL` when given, else
/// `DATA/<file>` as SQLite, creating the directory.
pub async fn open(args: &DbArgs, file: &str) -> anyhow::Result<Db> {
    match &args.db {
        Some(url) => Ok(Db::open(url).await?),
        None => open_file(&args.data, file).await,
    }
}

async fn open_file(dir: &Path, file: &str) -> anyhow::Result<Db> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    Ok(Db::open(&sqlite_url(&dir.join(file))).await?)
}

/// The sqlx URL of a SQLite file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}
