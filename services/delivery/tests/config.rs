//! The delivery configuration's linter: a good file parses with its
//! defaults filled in; unknown keys, bad URLs, plain http off loopback,
//! credentials in URLs, bad durations, a lease shorter than the timeouts
//! allow, duplicate names and missing secrets are refused by name; a
//! secret never shows in Debug output.

#![allow(clippy::unwrap_used)]

use remine_delivery::{ConnectorSettings, DeliveryConfig, DeliveryError, connectors};
use std::time::Duration;

const GOOD: &str = r#"
[worker]
name = "plant-1"
poll_interval = "2s"
batch = 8

[retry]
initial = "500ms"
cap = "5m"

[[connector]]
kind = "https"
name = "cn-platform"
url = "https://platform.example/api/v1/documents"
token_env = "CN_TOKEN"
timeout = "20s"

[[connector]]
kind = "edc"
name = "catenax"
management_url = "https://edc.example/management"
api_key_env = "EDC_KEY"
data_base_url = "https://remine.example/api/v1/outbox/documents"
allowed_bpns = ["BPNL000000000001"]
[connector.semantic_ids]
provenance-record = "urn:samm:io.catenax.secondary_material_content_verifiable:1.0.0#SecondaryMaterialContentVerifiable"
"#;

fn parse(text: &str) -> Result<DeliveryConfig, DeliveryError> {
    DeliveryConfig::parse(text, "delivery.toml")
}

/// The message of a refused configuration contains every one of `needles`.
fn check(text: &str, needles: &[&str]) {
    let e = parse(text).unwrap_err().to_string();
    assert!(e.starts_with("delivery.toml: "), "{e}");
    for n in needles {
        assert!(e.contains(n), "'{n}' not in: {e}");
    }
}

#[test]
fn a_good_file_parses_with_defaults_filled_in() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.worker.name, "plant-1");
    assert_eq!(c.worker.poll_interval, Duration::from_secs(2));
    assert_eq!(c.worker.batch, 8);
    // 4 x the longest timeout (30 s by default for the EDC).
    assert_eq!(c.worker.lease, Duration::from_secs(120));
    assert_eq!(c.retry.initial(), Duration::from_millis(500));
    assert_eq!(c.retry.cap(), Duration::from_secs(300));
    assert_eq!(c.retry.max_retry_after(), Duration::from_secs(3600));
    assert_eq!(c.connectors.len(), 2);
    let ConnectorSettings::Edc(edc) = &c.connectors[1] else {
        panic!("{:?}", c.connectors[1]);
    };
    assert_eq!(
        edc.data_base_url.as_str(),
        "https://remine.example/api/v1/outbox/documents/"
    );
    assert_eq!(edc.semantic_ids.len(), 1);
}

#[test]
fn an_empty_file_is_a_worker_without_connectors() {
    let c = parse("").unwrap();
    assert_eq!(c.worker.name, "remine");
    assert_eq!(c.worker.lease, Duration::from_secs(120));
    assert!(c.connectors.is_empty());
}

#[test]
fn unknown_keys_are_refused_by_name() {
    check("[worker]\nnmae = \"x\"\n", &["nmae"]);
    check("[retri]\n", &["retri"]);
    check(
        &GOOD.replace("token_env = \"CN_TOKEN\"", "token = \"abc\""),
        &["unknown field `token`"],
    );
    check(
        &GOOD.replace("kind = \"https\"", "kind = \"ftp\""),
        &["ftp"],
    );
}

#[test]
fn urls_must_parse_and_be_https_off_loopback() {
    check(
        &GOOD.replace("https://platform.example/api/v1/documents", "not a url"),
        &["connector cn-platform: url", "not a url"],
    );
    check(
        &GOOD.replace(
            "https://platform.example/api/v1/documents",
            "http://platform.example/api/v1/documents",
        ),
        &["connector cn-platform: url", "scheme http"],
    );
    check(
        &GOOD.replace(
            "https://edc.example/management",
            "https://admin:pw@edc.example/management",
        ),
        &["connector catenax: management_url", "credentials"],
    );
    for loopback in ["127.0.0.1:8080", "localhost", "[::1]:9000"] {
        let text = GOOD.replace(
            "https://platform.example/api/v1/documents",
            &format!("http://{loopback}/documents"),
        );
        assert!(parse(&text).is_ok(), "{loopback}");
    }
}

#[test]
fn durations_and_numbers_are_checked() {
    check(
        &GOOD.replace("poll_interval = \"2s\"", "poll_interval = \"soon\""),
        &["worker.poll_interval", "soon"],
    );
    check(
        &GOOD.replace("timeout = \"20s\"", "timeout = \"2h\""),
        &["connector cn-platform: timeout", "2h"],
    );
    check(
        &GOOD.replace("batch = 8", "batch = 0"),
        &["worker.batch = 0"],
    );
    check(
        &GOOD.replace("cap = \"5m\"", "cap = \"100ms\""),
        &["retry", "initial"],
    );
}

#[test]
fn a_lease_must_cover_four_request_timeouts() {
    check(
        &GOOD.replace("batch = 8", "batch = 8\nlease = \"1m\""),
        &["worker.lease = \"1m\"", "2m"],
    );
    assert!(parse(&GOOD.replace("batch = 8", "batch = 8\nlease = \"2m\"")).is_ok());
}

#[test]
fn names_ids_and_partners_are_checked() {
    check(
        &GOOD.replace("name = \"catenax\"", "name = \"cn-platform\""),
        &["connector cn-platform is configured twice"],
    );
    check(
        &GOOD.replace("name = \"catenax\"", "name = \"Catena X\""),
        &["connector name", "Catena X"],
    );
    check(
        &GOOD.replace("\"CN_TOKEN\"", "\"cn token\""),
        &["token_env", "cn token"],
    );
    check(
        &GOOD.replace("BPNL000000000001", "ACME"),
        &["allowed_bpns", "ACME"],
    );
}

#[test]
fn secrets_come_from_the_environment_and_never_show() {
    let c = parse(GOOD).unwrap();
    let env = |var: &str| match var {
        "CN_TOKEN" => Some("tok-123456".to_string()),
        "EDC_KEY" => Some("key-abcdef".to_string()),
        _ => None,
    };
    let built = connectors(&c, &env).unwrap();
    let shown = format!("{built:?}");
    assert!(
        !shown.contains("tok-123456") && !shown.contains("key-abcdef"),
        "{shown}"
    );
    assert!(shown.contains("Secret(<redacted>)"), "{shown}");

    let missing = |var: &str| (var == "CN_TOKEN").then(|| "tok".to_string());
    let e = connectors(&c, &missing).unwrap_err().to_string();
    assert_eq!(
        e,
        "connector catenax: environment variable EDC_KEY is not set or empty"
    );
    let bad = |_: &str| Some("two\nlines".to_string());
    let e = connectors(&c, &bad).unwrap_err().to_string();
    assert!(e.contains("CN_TOKEN") && !e.contains("two"), "{e}");
}
