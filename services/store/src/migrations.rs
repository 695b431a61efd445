//! The schema migrations of both dialects, compiled into the crate.
//!
//! Each dialect has its own directory (`migrations/sqlite`,
//! `migrations/postgres`) with files `NNNN_description.sql`; both list the
//! same versions. sqlx records applied versions and their checksums in
//! `_sqlx_migrations`, so applying them again is a no-op. A new migration is
//! a new file in both directories plus a line in each table below (a test
//! checks the tables against the directories).

use crate::db::Backend;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// (version, description, SQL) of one migration.
type Source = (i64, &'static str, &'static str);

const SQLITE: &[Source] = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "recipes",
        include_str!("../migrations/sqlite/0002_recipes.sql"),
    ),
    (
        3,
        "accounting",
        include_str!("../migrations/sqlite/0003_accounting.sql"),
    ),
    (
        4,
        "alarms",
        include_str!("../migrations/sqlite/0004_alarms.sql"),
    ),
    (
        5,
        "history",
        include_str!("../migrations/sqlite/0005_history.sql"),
    ),
    (
        6,
        "history_chunks",
        include_str!("../migrations/sqlite/0006_history_chunks.sql"),
    ),
    (
        7,
        "outbox",
        include_str!("../migrations/sqlite/0007_outbox.sql"),
    ),
    (
        8,
        "lots_by_audit_seq",
        include_str!("../migrations/sqlite/0008_lots_by_audit_seq.sql"),
    ),
];

const POSTGRES: &[Source] = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "recipes",
        include_str!("../migrations/postgres/0002_recipes.sql"),
    ),
    (
        3,
        "accounting",
        include_str!("../migrations/postgres/0003_accounting.sql"),
    ),
    (
        4,
        "alarms",
        include_str!("../migrations/postgres/0004_alarms.sql"),
    ),
    (
        5,
        "history",
        include_str!("../migrations/postgres/0005_history.sql"),
    ),
    (
        6,
        "history_chunks",
        include_str!("../migrations/postgres/0006_history_chunks.sql"),
    ),
    (
        7,
        "outbox",
        include_str!("../migrations/postgres/0007_outbox.sql"),
    ),
    (
        8,
        "lots_by_audit_seq",
        include_str!("../migrations/postgres/0008_lots_by_audit_seq.sql"),
    ),
];

/// The migrator of a backend's dialect.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let sources = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    Migrator::with_migrations(
        sources
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (version, description) pairs of a migrations directory.
    fn files_of(dialect: &str) -> Vec<(i64, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut out: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| {
                let stem = name.strip_suffix(".sql")?;
                let (version, description) = stem.split_once('_')?;
                Some((version.parse().unwrap(), description.to_string()))
            })
            .collect();
        out.sort();
        out
    }

    fn check(dialect: &str, table: &[Source]) {
        let listed: Vec<(i64, String)> =
            table.iter().map(|(v, d, _)| (*v, d.to_string())).collect();
        assert_eq!(listed, files_of(dialect), "migrations/{dialect}");
    }

    #[test]
    fn every_migration_file_is_compiled_in_and_both_dialects_have_the_same_versions() {
        check("sqlite", SQLITE);
        check("postgres", POSTGRES);
    }
}
