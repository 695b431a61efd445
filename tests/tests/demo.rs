//! The thin path, end to end: `remine demo --speed 60` runs packs from
//! passports through every line to product lots, reports plausible
//! recovery rates over HTTP, serves an HMI whose live values change in a
//! real browser, and stops cleanly on Ctrl-C.

#![allow(clippy::unwrap_used)]

use chrono::Datelike;
use remine_system_tests::{Driver, browser, chrome_capabilities, password_of, start_demo};
use serde_json::Value;
use std::time::{Duration, Instant};

const REPORT_TIMEOUT: Duration = Duration::from_secs(420);

async fn login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "user": user, "password": password }))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), 200, "login as {user}");
    let body: Value = res.json().await.expect("login body");
    body["token"].as_str().expect("token").to_string()
}

/// The year's rRM of `element` over all input streams' totals
/// (schemas/recycling-report.schema.json).
fn rate(report: &Value, element: &str) -> Option<f64> {
    report["streams"][0]["total"]["rows"]
        .as_array()?
        .iter()
        .find(|e| e["element"] == element)?["rRM"]
        .as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_packs_to_products_and_reports_plausible_recovery_rates() {
    let data = tempfile::tempdir().expect("temp dir");
    let (mut demo, listen) = start_demo(data.path(), &[], "600s");
    let base = format!("http://{listen}");
    let lines = demo.output();
    let operator = password_of(&lines, "operator");
    let http = reqwest::Client::new();
    let token = login(&http, &base, "operator", &operator).await;

    // Wait for the production run to end with the demo's printed rates
    // (the report credits material still in stock, so rates alone do not
    // show that products were made), then read the report through the API.
    assert!(
        demo.wait_for_line("recovery rates", REPORT_TIMEOUT)
            .is_some(),
        "the demo printed no recovery rates within {REPORT_TIMEOUT:?}; output: {:#?}",
        demo.output()
    );
    let year = chrono::Utc::now().year();
    let res = http
        .get(format!("{base}/api/v1/reports/recovery?year={year}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("report request");
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.expect("report JSON");
    for element in ["Ni", "Co", "Li"] {
        let r = rate(&report, element).expect("rate");
        assert!(
            (50.0..=100.0).contains(&r),
            "{element} recovery {r} % is implausible: {report}"
        );
    }
    assert!(
        report["streams"][0]["total"]["inputUnits"]
            .as_u64()
            .unwrap_or(0)
            >= 2,
        "{report}"
    );

    // The report is computed from recorded lots: products exist, black mass is labelled.
    let lots: Value = http
        .get(format!("{base}/api/v1/lots"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("lots")
        .json()
        .await
        .expect("lots JSON");
    let labels: Vec<&str> = lots
        .as_array()
        .expect("lot list")
        .iter()
        .filter_map(|l| l["label"].as_str())
        .collect();
    for expected in ["NiSO4.6H2O", "CoSO4.7H2O", "Li2CO3"] {
        assert!(
            labels.contains(&expected),
            "no {expected} lot in {labels:?}"
        );
    }
    assert!(
        labels.iter().any(|l| l.starts_with("black mass-")),
        "{labels:?}"
    );

    // A setpoint was written through the guarded path and audited.
    let supervisor = password_of(&lines, "supervisor");
    let sup_token = login(&http, &base, "supervisor", &supervisor).await;
    let audit: Value = http
        .get(format!("{base}/api/v1/audit?limit=1000"))
        .bearer_auth(&sup_token)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("audit JSON");
    assert!(
        audit
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "tag.write"),
        "no audited tag write"
    );

    hmi_shows_changing_live_values(&base, &operator).await;

    assert_eq!(
        demo.interrupt(Duration::from_secs(20)),
        Some(0),
        "the demo did not stop cleanly on Ctrl-C"
    );
}

/// Logs into the HMI in a real Chromium and sees live values change.
async fn hmi_shows_changing_live_values(base: &str, password: &str) {
    let Some((chromium, driver_path)) = browser() else {
        return;
    };
    let driver = Driver::start(&driver_path);
    let profile = tempfile::tempdir().expect("profile dir");
    let client =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(chrome_capabilities(&chromium, profile.path()))
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("webdriver session");
    let started = Instant::now();
    client.goto(&format!("{base}/")).await.expect("open HMI");
    let wait = |sel: &'static str| {
        let client = client.clone();
        async move {
            client
                .wait()
                .at_most(Duration::from_secs(15))
                .for_element(fantoccini::Locator::Css(sel))
                .await
                .unwrap_or_else(|e| panic!("no {sel} in the HMI: {e}"))
        }
    };
    wait("#login-user")
        .await
        .send_keys("operator")
        .await
        .expect("type user");
    wait("#login-password")
        .await
        .send_keys(password)
        .await
        .expect("type password");
    wait("#login-submit").await.click().await.expect("submit");
    wait("#mimic [data-tag]").await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the HMI took too long to load"
    );

    let sample = || {
        let client = client.clone();
        async move {
            let v = client
                .execute(
                    "return Array.from(document.querySelectorAll('#mimic [data-tag]')).map(e => e.getAttribute('data-tag') + '=' + e.textContent);",
                    vec![],
                )
                .await
                .expect("read mimic values");
            v.as_array()
                .expect("list")
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect::<Vec<_>>()
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = sample().await;
    assert!(
        first.len() >= 10,
        "the mimic shows too few values: {first:?}"
    );
    assert!(
        first.iter().filter(|s| !s.ends_with("=--")).count() >= 10,
        "the mimic shows no live values: {first:?}"
    );
    let mut changed = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let next = sample().await;
        changed = first.iter().zip(&next).filter(|(a, b)| a != b).count();
        if changed >= 3 {
            break;
        }
    }
    assert!(
        changed >= 3,
        "live values did not change in the browser: {first:?}"
    );
    client.close().await.expect("close browser");
}
