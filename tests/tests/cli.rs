//! The command line from outside: the audit chain's verification, and bad
//! input answered by one clear error line and a non-zero exit, never a panic.

#![allow(clippy::unwrap_used)]

use remine_system_tests::{free_port, run};

fn check_refusal(args: &[&str], needle: &str) {
    let (code, out, err) = run(args, None);
    assert_ne!(code, 0, "remine {args:?} succeeded: {out}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "remine {args:?} panicked: {err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "remine {args:?}: expected an error naming '{needle}', got: {err}"
    );
}

#[test]
fn a_malformed_database_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    check_refusal(
        &[
            "audit",
            "verify",
            "--data",
            d,
            "--db",
            "mysql://root@localhost/x",
        ],
        "mysql",
    );
}

#[test]
fn an_unreachable_postgres_is_named_without_its_password() {
    let port = free_port().to_string();
    let url = format!("postgres://remine:s3cret@127.0.0.1:{port}/remine");
    let (code, _, err) = run(&["audit", "verify", "--db", &url], None);
    assert_ne!(code, 0);
    assert!(err.contains(&port), "{err}");
    assert!(!err.contains("s3cret"), "the password leaked: {err}");
}

#[test]
fn a_missing_config_file_is_named() {
    check_refusal(
        &["serve", "--config", "/nonexistent/remine.toml"],
        "/nonexistent/remine.toml",
    );
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let free = [free_port(), free_port(), free_port()].map(|p| p.to_string());
    check_refusal(
        &[
            "demo",
            "--data",
            d,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--discharge-port",
            &free[0],
            "--mechanical-port",
            &free[1],
            "--hydromet-port",
            &free[2],
            "--duration",
            "5s",
        ],
        &port,
    );
    check_refusal(
        &[
            "demo",
            "--data",
            d,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--discharge-port",
            &port,
            "--mechanical-port",
            &free[1],
            "--hydromet-port",
            &free[2],
            "--duration",
            "5s",
        ],
        &port,
    );
}

#[test]
fn a_malformed_passport_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let bad = dir.path().join("ABCPE0000000000A1100000001.json");
    std::fs::write(&bad, "{ \"gbt34014\": \"ABC\", ").unwrap();
    let (code, out, err) = run(
        &["passport", "import", "--data", d, bad.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("refused") && out.contains("ABCPE0000000000A1100000001.json"),
        "{out}"
    );
    assert!(out.contains("0 accepted, 1 refused"), "{out}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_short_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(
        &["user", "add", "anna", "--role", "operator", "--data", d],
        Some("short\n"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("password too short"), "{err}");
}

#[tokio::test]
async fn audit_verify_passes_on_an_intact_trail_and_names_the_first_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (name, role) in [
        ("anna", "operator"),
        ("ben", "engineer"),
        ("carla", "supervisor"),
    ] {
        let (code, out, err) = run(
            &["user", "add", name, "--role", role, "--data", d],
            Some("a-long-password\n"),
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = run(&["audit", "verify", "--data", d], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("intact: 3 entries"), "{out}");

    // Change the role recorded in entry 2, as someone with file access might.
    let url = format!("sqlite://{}/remine.db", d);
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let changed = sqlx::query("UPDATE audit SET new_value = 'role=admin' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    let (code, _, err) = run(&["audit", "verify", "--data", d], None);
    assert_ne!(code, 0);
    assert!(err.contains("broken at entry 2"), "{err}");
}

#[test]
fn the_same_commands_work_on_postgresql() {
    let Some(pg) = remine_testkit::TempPostgres::start_for("CLI on PostgreSQL") else {
        return;
    };
    let url = pg.fresh_database().unwrap();
    let (code, out, err) = run(
        &["user", "add", "anna", "--role", "operator", "--db", &url],
        Some("a-long-password\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(
        &["user", "add", "anna", "--role", "operator", "--db", &url],
        Some("a-long-password\n"),
    );
    assert_ne!(code, 0, "a second anna: {out}");
    assert!(err.contains("anna"), "{err}");
    let (code, out, err) = run(&["audit", "verify", "--db", &url], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("intact: 1 entries"), "{out}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_the_commands_exit_code() {
    // `remine recipe lint recipes | head -0`: the reader is gone before
    // remine writes.
    let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/../recipes");
    let mut child = std::process::Command::new(remine_system_tests::remine_bin())
        .args(["recipe", "lint", recipes])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
