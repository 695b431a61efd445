//! `remine serve` and its configuration from outside: the linter names what
//! is wrong, serve creates no users, and a machine's bearer token works.

#![allow(clippy::unwrap_used)]

use remine_system_tests::{Running, free_port, run};
use std::path::Path;
use std::time::Duration;

const MAP: &str = r#"
[[device]]
name = "plc"
address = "127.0.0.1:1502"
unit_id = 1

[[tag]]
name = "Discharge/Station1/State"
device = "plc"
table = "input"
address = 100
type = "u16"
access = "read"
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn check(config: &str, maps: &[(&str, &str)], expected: Result<&str, &str>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in maps {
        write(dir.path(), name, text);
    }
    let path = write(dir.path(), "plant.toml", config);
    let (code, out, err) = run(&["check", &path], None);
    match expected {
        Ok(fragment) => {
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains(fragment), "{out}");
        }
        Err(fragment) => {
            assert_ne!(code, 0, "{out}");
            assert!(
                err.contains(fragment) && err.starts_with("error: "),
                "expected '{fragment}' in: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn the_configuration_linter_accepts_a_good_plant_and_names_every_fault() {
    let good = "site = \"Plant 1\"\n[plant]\nmodbus = [\"a.toml\"]\n";
    check(
        good,
        &[("a.toml", MAP)],
        Ok("1 Modbus and 0 OPC UA tag maps, 1 tags: OK"),
    );
    check(
        "site = \"P\"\nlisten = \"nowhere\"\n",
        &[],
        Err("plant.toml"),
    );
    check(
        "site = \"P\"\ncolour = \"red\"\n",
        &[],
        Err("unknown field `colour`"),
    );
    check(
        "listen = \"127.0.0.1:1\"\n",
        &[],
        Err("missing field `site`"),
    );
    check(
        "site = \"P\"\n[plant]\nmodbus = [\"missing.toml\"]\n",
        &[],
        Err("missing.toml"),
    );
    check(
        "site = \"P\"\n[plant]\nmodbus = [\"a.toml\", \"b.toml\"]\n",
        &[("a.toml", MAP), ("b.toml", MAP)],
        Err("tag Discharge/Station1/State is defined in two tag maps"),
    );
    check(
        "site = \"P\"\n[plant]\nmodbus = [\"a.toml\"]\n",
        &[("a.toml", &MAP.replace("type = \"u16\"", "type = \"u17\""))],
        Err("a.toml"),
    );
    check(
        "site = \"P\"\n[plant]\nlive_period_ms = 5\n",
        &[],
        Err("live_period_ms 5 is outside 50..60000"),
    );
}

#[tokio::test]
async fn serve_has_no_default_user_and_accepts_a_machine_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let port = free_port();
    let config = write(
        dir.path(),
        "plant.toml",
        &format!("site = \"Test plant\"\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let (code, _, err) = run(
        &[
            "user",
            "add",
            "connector",
            "--role",
            "viewer",
            "--data",
            data,
        ],
        Some("a-long-password\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = run(
        &[
            "user",
            "token",
            "connector",
            "--valid-for",
            "30d",
            "--data",
            data,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert_eq!(token.len(), 64, "{token}");

    let mut serve = Running::start(&["serve", "--config", &config, "--data", data]);
    assert!(
        serve
            .wait_for_line("serving Test plant", Duration::from_secs(30))
            .is_some(),
        "{:?}",
        serve.output()
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let me: serde_json::Value = http
        .get(format!("{base}/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me,
        serde_json::json!({"user": "connector", "role": "viewer"})
    );
    for user in ["admin", "operator", "supervisor"] {
        let res = http
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"user": user, "password": user}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            401,
            "serve must create no default user {user}"
        );
    }
    assert_eq!(serve.interrupt(Duration::from_secs(10)), Some(0));
    let (code, out, err) = run(&["audit", "verify", "--data", data], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("intact: 2 entries"),
        "user.add and token.issue: {out}"
    );
}
