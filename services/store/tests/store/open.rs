//! Opening stores: migrations, URLs, data directories, and the errors of
//! each way opening can fail.

use crate::fixtures::*;
use crate::harness::Raw;
use remine_domain::Role;
use remine_domain::ports::{AuditLog, StoreError, UserStore};
use remine_store::{Backend, Db};
use std::time::{Duration, Instant};

/// Every migration of the dialect (services/store/src/migrations.rs).
const MIGRATIONS: i64 = 8;

async fn migrations_apply_once_and_reapplying_changes_nothing(db: Db, raw: Raw) {
    assert_eq!(raw.count("_sqlx_migrations").await, MIGRATIONS);
    db.add_user(&user("anna", Role::Admin), event("user.add", "anna"))
        .await
        .unwrap();
    let again = Db::open(&raw.url).await.unwrap();
    assert_eq!(again.backend(), db.backend());
    assert_eq!(raw.count("_sqlx_migrations").await, MIGRATIONS);
    assert!(again.user(&user_name("anna")).await.unwrap().is_some());
    again
        .append(event("test.append", "after reopen"))
        .await
        .unwrap();
    assert!(db.verify_audit().await.unwrap().is_intact());
    again.close().await;
}

on_both_backends!(raw: migrations_apply_once_and_reapplying_changes_nothing);

/// Opening `url` fails as unavailable with exactly `expected`.
async fn check_refused(url: &str, expected: &str) {
    match Db::open(url).await {
        Err(StoreError::Unavailable(why)) => assert_eq!(why, expected, "{url}"),
        other => panic!("{url}: expected Unavailable({expected}), got {other:?}"),
    }
}

#[tokio::test]
async fn an_unsupported_scheme_is_named_with_the_accepted_ones_and_no_password() {
    check_refused(
        "mysql://root:hunter2@db.plant/mes",
        "unsupported database URL 'mysql://root:***@db.plant/mes': use sqlite://PATH or postgres://...",
    )
    .await;
    check_refused(
        "remine.db",
        "unsupported database URL 'remine.db': use sqlite://PATH or postgres://...",
    )
    .await;
    check_refused(
        "sqlite://",
        "database URL 'sqlite://' has no path: use sqlite://PATH or sqlite::memory:",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_by_host_and_port_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let refused = Db::open(&format!("postgres://remine:s3cret@127.0.0.1:{port}/mes")).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let why = refused.unwrap_err().to_string();
    assert!(
        why.starts_with(&format!(
            "database unavailable: cannot connect to PostgreSQL at 127.0.0.1:{port}: "
        )),
        "{why}"
    );
    assert!(!why.contains("s3cret"), "{why}");
}

#[tokio::test]
async fn a_postgres_port_that_never_answers_times_out_naming_host_and_port() {
    // The kernel completes the TCP handshake on a listening socket; nobody
    // ever reads or answers the startup message.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let why = Db::open(&format!("postgres://remine@127.0.0.1:{port}/mes"))
        .await
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(7),
        "{took:?}"
    );
    assert_eq!(
        why,
        format!(
            "database unavailable: cannot connect to PostgreSQL at 127.0.0.1:{port}: no answer within 5 s"
        )
    );
    drop(silent);
}

#[tokio::test]
async fn an_unwritable_sqlite_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let path = file.join("remine.db");
    let why = Db::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        why.starts_with(&format!(
            "database unavailable: cannot open SQLite database {}: ",
            path.display()
        )),
        "{why}"
    );
    let why = Db::open_sqlite_dir(&file).await.unwrap_err().to_string();
    assert!(
        why.starts_with(&format!(
            "database unavailable: cannot create data directory {}: ",
            file.display()
        )),
        "{why}"
    );
}

#[tokio::test]
async fn a_data_dir_is_created_with_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var").join("remine");
    let db = Db::open_sqlite_dir(&data).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(data.join("remine.db").is_file());
    db.close().await;
}

#[tokio::test]
async fn a_sqlite_path_with_spaces_capitals_and_percent_signs_is_taken_literally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Plant Data 100%").join("Remine #1.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = Db::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    db.append(event("test.append", "T1")).await.unwrap();
    db.close().await;
    assert!(path.is_file(), "{}", path.display());
    let again = Db::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(again.entries(0, 10).await.unwrap().len(), 1);
    again.close().await;
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_data_while_open() {
    let db = Db::open("sqlite::memory:").await.unwrap();
    db.append(event("test.append", "T1")).await.unwrap();
    db.append(event("test.append", "T2")).await.unwrap();
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 2);
    assert!(db.verify_audit().await.unwrap().is_intact());
    db.close().await;
}

#[tokio::test]
async fn a_closed_store_reports_itself_unavailable() {
    let db = Db::open("sqlite::memory:").await.unwrap();
    db.close().await;
    assert!(matches!(
        db.entries(0, 10).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_postgres_password_never_shows_in_debug_output() {
    let Some(fresh) =
        crate::harness::postgres("a_postgres_password_never_shows_in_debug_output").await
    else {
        return;
    };
    // The test cluster trusts every connection, so any password is accepted.
    let url = fresh.raw.url.replace("postgres@", "postgres:s3cret@");
    let db = Db::open(&url).await.unwrap();
    let shown = format!("{db:?}");
    assert!(shown.contains("postgres:***@127.0.0.1"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(db.backend(), Backend::Postgres);
    db.close().await;
    fresh.db.close().await;
}
