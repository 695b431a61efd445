//! Runs a test on both backends: a fresh SQLite file in a temporary
//! directory, and a fresh database in this binary's PostgreSQL cluster.

use remine_store::Db;
use remine_testkit::TempPostgres;
use sqlx::{AnyConnection, Connection, Row};

/// A plain connection to a test's database, for checking and tampering
/// behind the store's back.
#[derive(Debug, Clone)]
pub struct Raw {
    pub url: String,
}

impl Raw {
    async fn connect(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        AnyConnection::connect(&self.url).await.unwrap()
    }

    pub async fn execute(&self, sql: &str) -> u64 {
        let mut conn = self.connect().await;
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    }

    /// Runs `sql` and returns the database's refusal, if any, as text.
    pub async fn try_execute(&self, sql: &str) -> Result<u64, String> {
        let mut conn = self.connect().await;
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await;
        conn.close().await.unwrap();
        done.map(|d| d.rows_affected()).map_err(|e| e.to_string())
    }

    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.connect().await;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        row.try_get("n").unwrap()
    }
}

/// A store for one test, with what keeps it alive.
pub struct Fresh {
    pub db: Db,
    pub raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Fresh {
    let dir = remine_testkit::temp_dir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    let raw = Raw {
        url: format!("sqlite://{}", dir.path().join("remine.db").display()),
    };
    Fresh {
        db,
        raw,
        _dir: Some(dir),
    }
}

/// `None` (after a loud SKIP line) when PostgreSQL is not installed.
pub async fn postgres(test: &str) -> Option<Fresh> {
    let what = test.to_string();
    let url = tokio::task::spawn_blocking(move || {
        TempPostgres::shared(&what).map(|pg| pg.fresh_database().unwrap())
    })
    .await
    .unwrap()?;
    let db = Db::open(&url).await.unwrap();
    Some(Fresh {
        db,
        raw: Raw { url },
        _dir: None,
    })
}

/// Runs each named `async fn(Db)` (or, after `raw:`, `async fn(Db, Raw)`)
/// as two tests, `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    (raw: $($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fresh = crate::harness::sqlite().await;
                super::$test(fresh.db.clone(), fresh.raw.clone()).await;
                fresh.db.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!(module_path!(), "::postgres");
                if let Some(fresh) = crate::harness::postgres(name).await {
                    super::$test(fresh.db.clone(), fresh.raw.clone()).await;
                    fresh.db.close().await;
                }
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fresh = crate::harness::sqlite().await;
                super::$test(fresh.db.clone()).await;
                fresh.db.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!(module_path!(), "::postgres");
                if let Some(fresh) = crate::harness::postgres(name).await {
                    super::$test(fresh.db.clone()).await;
                    fresh.db.close().await;
                }
            }
        }
    )+};
}
