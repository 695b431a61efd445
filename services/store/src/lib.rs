//! Storage for remine: lots, passports, genealogy, metal accounting
//! (weighings, assays, stock events), users, sessions, master and control
//! recipes, and the hash-chained audit trail, in SQLite (the embedded
//! default) or PostgreSQL.
//!
//! One type, [`Db`], implements the domain's store ports
//! ([`LotStore`](remine_domain::ports::LotStore),
//! [`UserStore`](remine_domain::ports::UserStore),
//! [`RecipeStore`](remine_domain::ports::RecipeStore),
//! [`AccountingStore`](remine_domain::ports::AccountingStore),
//! [`AlarmLog`](remine_domain::ports::AlarmLog) (the alarm history),
//! [`AuditLog`](remine_domain::ports::AuditLog), and the historian's
//! [`HistoryStore`](remine_domain::ports::HistoryStore), unaudited: samples
//! are measurements, not decisions) on both backends. Every
//! audited write runs in one transaction that also appends its
//! [`AuditEvent`](remine_domain::AuditEvent), so no write goes unaudited and no
//! entry describes a write that did not happen; when any part fails, nothing
//! is written. [`Db::verify_audit`] walks the whole trail through
//! [`remine_domain::verify_chain`] and names the first broken entry.
//!
//! Opening a store:
//! - [`Db::open`] takes a URL: `sqlite://PATH` (the file is created if
//!   missing; PATH is taken literally, relative to the working directory
//!   unless absolute), `sqlite::memory:` (one connection, gone on close),
//!   `postgres://user:password@host:port/database` (`postgresql://` too);
//! - [`Db::open_sqlite_dir`] takes a data directory and keeps
//!   `DIR/remine.db` in it, creating both if needed.
//!
//! Both apply the migrations of `migrations/sqlite` or `migrations/postgres`
//! (compiled into the crate); re-applying them is a no-op. Errors of opening
//! name what is at fault (the URL's scheme, the SQLite path, the PostgreSQL
//! `host:port`) and never print a password.
//!
//! # One code path: the Any driver
//! The store talks to both backends through sqlx's `Any` driver, so every
//! query is written once, with `$1`-style parameters that SQLite accepts as
//! well. The schema keeps to the types `Any` carries exactly on both sides
//! (64-bit integers, doubles, text): times are integer microseconds since the
//! epoch, masses and recipe values are doubles. Only four things differ by
//! backend, each in one place: the migrations directory, the connection
//! set-up (WAL and a busy timeout for SQLite), how a write takes the
//! audit lock (`BEGIN IMMEDIATE` in SQLite, `SELECT ... FOR UPDATE` of the
//! chain-head row in PostgreSQL), and how a recipe read sees one moment
//! (a plain transaction in SQLite, repeatable read in PostgreSQL). Two pools behind an enum would have meant
//! writing or macro-expanding every query twice for no gain in behaviour.
//!
//! # Serialised audit appends
//! The table `audit_head` holds the last entry's number and hash. Each
//! audited write begins by reading it under the write lock, and ends by
//! inserting the sealed entry and moving the head, so concurrent writers
//! queue up and never fork the chain. In SQLite an in-process mutex also
//! queues this process's writers, so they wait in order instead of in
//! SQLite's busy loop.
//!
//! Times are kept to the microsecond (as [`remine_domain::AuditEntry::seal`]
//! does): a lot or user created with nanoseconds reads back truncated.
//!
//! ```no_run
//! # async fn demo() -> Result<(), remine_domain::ports::StoreError> {
//! use remine_domain::ports::AuditLog;
//! use remine_domain::{AuditEvent, Username};
//! use remine_store::{AuditVerification, Db};
//!
//! let db = Db::open_sqlite_dir(std::path::Path::new("/var/lib/remine")).await?;
//! db.append(AuditEvent {
//!     actor: Username::system(),
//!     action: "system.start".into(),
//!     target: "remine".into(),
//!     old: None,
//!     new: None,
//!     reason: "service started".into(),
//! })
//! .await?;
//! assert!(matches!(db.verify_audit().await?, AuditVerification::Intact { .. }));
//! db.close().await;
//! # Ok(()) }
//! ```

mod accounting;
mod alarms;
mod audit;
mod db;
mod history;
mod location;
mod lots;
mod migrations;
mod outbox;
mod recipes;
mod rows;
mod users;

pub use audit::AuditVerification;
pub use db::{Backend, Db};
pub use remine_domain::ports::StoreError;
