//! The store handle: opening a database, its pool, the audited write
//! transaction every write goes through, and the mapping of sqlx errors.

use crate::location::{Location, redact, sqlite_file_url};
use crate::migrations::migrator;
use crate::rows::get;
use chrono::{DateTime, Utc};
use remine_domain::ports::StoreError;
use remine_domain::{AuditEntry, AuditEvent, Digest};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// How long opening a PostgreSQL store waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an SQLite connection waits for another process's write lock.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
const SQLITE_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 10;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An open store. Cloning is cheap: clones share one connection pool.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// The URL with its password hidden, for messages and Debug.
    location: String,
    /// Queues this process's SQLite writers (see the crate docs).
    writer: Arc<Mutex<()>>,
    /// The historian's tag ids and, on PostgreSQL, its native pool.
    history: crate::history::HistoryState,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.inner.backend)
            .field("location", &self.inner.location)
            .finish()
    }
}

impl Db {
    /// Opens (and migrates) the store at `url`: `sqlite://PATH` (created if
    /// missing), `sqlite::memory:`, or `postgres://...`.
    #[tracing::instrument(skip(url), fields(db = %redact(url)))]
    pub async fn open(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        match Location::parse(url)? {
            Location::SqliteMemory => Db::open_sqlite_memory().await,
            Location::SqliteFile(path) => Db::open_sqlite_file(&path).await,
            Location::Postgres(url) => Db::open_postgres(&url).await,
        }
    }

    /// Opens (and migrates) `DIR/remine.db`, creating the directory and the
    /// file if needed.
    #[tracing::instrument(fields(dir = %dir.display()))]
    pub async fn open_sqlite_dir(dir: &Path) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        Db::open_sqlite_file(&dir.join("remine.db")).await
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.inner.pool.close().await;
        self.inner.history.close().await;
    }

    async fn open_sqlite_memory() -> Result<Db, StoreError> {
        let location = "sqlite::memory:".to_string();
        let options = any_options("sqlite::memory:", &location)?;
        // Every connection to ":memory:" is a database of its own, so the
        // pool keeps exactly one, forever.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {location}: {e}")))?;
        Db::finish_open(pool, Backend::Sqlite, location, None).await
    }

    async fn open_sqlite_file(path: &Path) -> Result<Db, StoreError> {
        let location = format!("sqlite://{}", path.display());
        let cannot_open = |e: sqlx::Error| {
            StoreError::Unavailable(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        };
        let options = any_options(&sqlite_file_url(path)?, &location)?;
        // Write-ahead logging lets readers go on while one writer writes; the
        // setting is kept in the file, so one connection sets it for all.
        let mut first = AnyConnection::connect_with(&options)
            .await
            .map_err(cannot_open)?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut first)
            .await
            .map_err(cannot_open)?;
        first.close().await.map_err(cannot_open)?;
        let pool = AnyPoolOptions::new()
            .max_connections(SQLITE_CONNECTIONS)
            .acquire_timeout(Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS)))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .execute(conn)
                    .await
                    .map(drop)
                })
            })
            .connect_with(options)
            .await
            .map_err(cannot_open)?;
        Db::finish_open(pool, Backend::Sqlite, location, None).await
    }

    async fn open_postgres(url: &str) -> Result<Db, StoreError> {
        let location = redact(url);
        let pg = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("invalid PostgreSQL URL '{location}': {e}"))
        })?;
        let server = format!("{}:{}", pg.get_host(), pg.get_port());
        let options = any_options(url, &location)?;
        let unreachable = |why: String| {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {server}: {why}"))
        };
        // One connection first, under a bounded wait, so that an unreachable
        // or refusing server is reported with its own reason.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        first
            .close()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let native = crate::history::native_pool(pg);
        Db::finish_open(pool, Backend::Postgres, location, Some(native)).await
    }

    async fn finish_open(
        pool: AnyPool,
        backend: Backend,
        location: String,
        native: Option<sqlx::PgPool>,
    ) -> Result<Db, StoreError> {
        migrator(backend).run(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot apply migrations to {location}: {e}"))
        })?;
        tracing::info!(%backend, db = %location, "store opened");
        Ok(Db {
            inner: Arc::new(Inner {
                pool,
                backend,
                location,
                writer: Arc::new(Mutex::new(())),
                history: crate::history::HistoryState::new(native),
            }),
        })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub(crate) fn history_state(&self) -> &crate::history::HistoryState {
        &self.inner.history
    }

    /// Begins an audited write: takes the write lock and reads the chain
    /// head, which the transaction holds until it commits or rolls back.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (writer, tx, head_sql) = match self.inner.backend {
            Backend::Sqlite => {
                let writer = Arc::clone(&self.inner.writer).lock_owned().await;
                let tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await;
                (
                    Some(writer),
                    tx,
                    "SELECT seq, hash FROM audit_head WHERE id = 1",
                )
            }
            Backend::Postgres => (
                None,
                self.inner.pool.begin().await,
                "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            ),
        };
        let mut tx = tx.map_err(db_error("beginning a write transaction"))?;
        let head = sqlx::query(head_sql)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("reading the audit chain head"))?
            .ok_or_else(|| {
                StoreError::Corrupt("audit_head: the chain head row is missing".into())
            })?;
        let head_seq: i64 = get(&head, "seq", &"audit_head")?;
        let hash: String = get(&head, "hash", &"audit_head")?;
        let head_hash = Digest::from_hex(&hash).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "audit_head hash '{hash}' is not a SHA-256 hex digest"
            ))
        })?;
        Ok(WriteTx {
            tx,
            head_seq,
            head_hash,
            _writer: writer,
        })
    }
}

/// A write transaction holding the audit lock. [`WriteTx::finish`] seals
/// the event and commits, or rolls everything back.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    head_seq: i64,
    head_hash: Digest,
    // Declared after `tx`, so it is released only once the transaction is.
    _writer: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// The number the audit entry of this write will get.
    pub(crate) fn seq(&self) -> i64 {
        self.head_seq + 1
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits the write with its audit entry when `outcome` is Ok; rolls
    /// back and returns the error otherwise.
    pub(crate) async fn finish(
        mut self,
        outcome: Result<(), StoreError>,
        event: AuditEvent,
    ) -> Result<AuditEntry, StoreError> {
        if let Err(e) = outcome {
            self.abandon().await;
            return Err(e);
        }
        let entry = self.seal(event).await?;
        self.commit().await?;
        Ok(entry)
    }

    /// Appends the audit entry of one write of several in this
    /// transaction; the chain's head moves on when [`WriteTx::commit`]
    /// commits them all.
    pub(crate) async fn seal(&mut self, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry::seal(self.seq(), Utc::now(), event, self.head_hash);
        let e = &entry.event;
        sqlx::query(
            "INSERT INTO audit (seq, at_us, actor, action, target, old_value, new_value, reason, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.seq)
        .bind(micros(entry.at))
        .bind(e.actor.as_str())
        .bind(e.action.as_str())
        .bind(e.target.as_str())
        .bind(e.old.as_deref())
        .bind(e.new.as_deref())
        .bind(e.reason.as_str())
        .bind(entry.prev_hash.to_hex())
        .bind(entry.hash.to_hex())
        .execute(&mut *self.tx)
        .await
        .map_err(db_error(format!("appending audit entry {}", entry.seq)))?;
        self.head_seq = entry.seq;
        self.head_hash = entry.hash;
        Ok(entry)
    }

    /// Moves the chain's head to the last sealed entry and commits.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(self.head_seq)
            .bind(self.head_hash.to_hex())
            .execute(&mut *self.tx)
            .await
            .map_err(db_error("moving the audit chain head"))?;
        let seq = self.head_seq;
        self.tx
            .commit()
            .await
            .map_err(db_error(format!("committing audit entry {seq}")))
    }

    /// Rolls the transaction back.
    pub(crate) async fn abandon(self) {
        if let Err(rollback) = self.tx.rollback().await {
            tracing::warn!(error = %rollback, "rollback failed; the connection discards the transaction");
        }
    }
}

/// sqlx options from a URL; the error shows the redacted `location`.
fn any_options(url: &str, location: &str) -> Result<AnyConnectOptions, StoreError> {
    AnyConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid database URL '{location}': {e}")))
}

/// Maps a sqlx error to the port's error, prefixed with what was being done.
pub(crate) fn db_error(context: impl fmt::Display) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("{context}: {e}")),
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("{context}: {d}"))
        }
        _ => StoreError::Internal(format!("{context}: {e}")),
    }
}

/// Microseconds since the epoch, the stored form of every time.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored time back; `what` names the row and column for the error.
pub(crate) fn time_from_micros(us: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: {us} is not a time in microseconds")))
}
