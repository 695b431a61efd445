//! A lot's metal accounting through the API, with a real SQLite store:
//! weighing, lab assays combined by inverse variance, samples, adjustments
//! and corrections, and the refusals that keep the books straight.

#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use remine_domain::{
    AuditEvent, Chemistry, ContentSource, Element, Kilograms, Lot, LotFields, LotId, LotKind,
    Username,
};
use serde_json::{Value, json};

mod common;
use common::{Fixture, check_error};

/// A store with black-mass lot BM-NMC-1 (800 kg, 160 kg Ni estimated).
async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    let store = f.store();
    let bm = Lot::new(LotFields {
        id: LotId::parse("BM-NMC-1").unwrap(),
        kind: LotKind::BlackMass(Chemistry::Nmc811),
        mass: Kilograms::new(800.0).unwrap(),
        elements: [(Element::Ni, Kilograms::new(160.0).unwrap())]
            .into_iter()
            .collect(),
        content_source: ContentSource::Estimated,
        created_at: chrono::Utc::now(),
        passport: None,
        country_of_collection: None,
    })
    .unwrap();
    let audit = AuditEvent {
        actor: Username::system(),
        action: "lot.produce".into(),
        target: "BM-NMC-1".into(),
        old: None,
        new: None,
        reason: "test".into(),
    };
    store.produce(&bm, &[], audit).await.unwrap();
    f
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    user: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    f.call_as(user, method, uri, body).await
}

fn assay(percent: f64, sigma: f64, lab: &str) -> Value {
    json!({"sample": "S-1", "element": "Ni", "percent": percent, "sigmaPercent": sigma,
           "method": "ICP-OES", "lab": lab})
}

#[tokio::test]
async fn assays_of_a_lot_combine_by_inverse_variance() {
    let f = fixture().await;
    let url = "/api/v1/lots/BM-NMC-1/assays";
    assert_eq!(
        call(&f, "POST", url, "otto", Some(assay(20.0, 1.0, "lab A")))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&f, "POST", url, "otto", Some(assay(23.0, 2.0, "lab B")))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, b) = call(&f, "GET", "/api/v1/lots/BM-NMC-1/accounting", "vera", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ni = &b["combined"][0];
    assert_eq!(ni["element"], "Ni");
    assert_eq!(ni["assays"], 2);
    assert!(
        (ni["percent"].as_f64().unwrap() - 20.6).abs() < 1e-9,
        "{ni}"
    );
    assert!(
        (ni["sigmaPercent"].as_f64().unwrap() - (1.0f64 / 1.25).sqrt()).abs() < 1e-9,
        "{ni}"
    );
}

#[tokio::test]
async fn a_weighing_is_recorded_once_with_its_dry_mass_and_uncertainty() {
    let f = fixture().await;
    let url = "/api/v1/lots/BM-NMC-1/measurement";
    let body = json!({"wetKg": 842.0, "moisturePercent": 5.0, "method": "platform_scale", "instrument": "PS-2"});
    assert_eq!(
        call(&f, "POST", url, "otto", Some(body.clone())).await.0,
        StatusCode::CREATED
    );
    let (s, b) = call(&f, "POST", url, "otto", Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (_, b) = call(&f, "GET", "/api/v1/lots/BM-NMC-1/accounting", "vera", None).await;
    assert!(
        (b["measurement"]["dryKg"].as_f64().unwrap() - 799.9).abs() < 1e-9,
        "{b}"
    );
    assert!(
        b["measurement"]["drySigmaKg"].as_f64().unwrap() > 2.5,
        "moisture's 0.3 % adds in: {b}"
    );
}

#[tokio::test]
async fn samples_and_adjustments_move_stock_and_a_correction_refers_to_its_event() {
    let f = fixture().await;
    let url = "/api/v1/lots/BM-NMC-1/stock-events";
    let (s, b) = call(
        &f,
        "POST",
        url,
        "otto",
        Some(json!({"kind": "sample", "sample": "S-7", "massKg": 2.0})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let sample_seq = b["seq"].as_i64().unwrap();
    let (s, b) = call(
        &f,
        "POST",
        url,
        "otto",
        Some(json!({"kind": "adjustment", "deltaKg": -10.0})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "an adjustment needs a reason: {b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a reason")
    );
    let (s, _) = call(&f, "POST", url, "otto",
        Some(json!({"kind": "correction", "corrects": sample_seq, "deltaKg": 0.5, "reason": "sample weighed 1.5 kg"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, b) = call(&f, "GET", "/api/v1/lots/BM-NMC-1/accounting", "vera", None).await;
    assert!((b["stockKg"].as_f64().unwrap() - 798.5).abs() < 1e-9, "{b}");
    assert_eq!(b["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_accounting_input_is_refused_naming_what_is_wrong() {
    let f = fixture().await;
    let stock = "/api/v1/lots/BM-NMC-1/stock-events";
    for (uri, user, body, status, needle) in [
        (
            "/api/v1/lots/BM-NMC-9/assays",
            "otto",
            assay(20.0, 1.0, "lab A"),
            StatusCode::NOT_FOUND,
            "BM-NMC-9",
        ),
        (
            "/api/v1/lots/BM-NMC-1/assays",
            "otto",
            assay(120.0, 1.0, "lab A"),
            StatusCode::BAD_REQUEST,
            "percent",
        ),
        (
            "/api/v1/lots/BM-NMC-1/assays",
            "otto",
            assay(20.0, 0.0, "lab A"),
            StatusCode::BAD_REQUEST,
            "uncertainty",
        ),
        (
            "/api/v1/lots/BM-NMC-1/assays",
            "vera",
            assay(20.0, 1.0, "lab A"),
            StatusCode::FORBIDDEN,
            "viewer",
        ),
        (
            stock,
            "otto",
            json!({"kind": "sample", "sample": "S-1", "massKg": 900.0}),
            StatusCode::CONFLICT,
            "below zero",
        ),
        (
            stock,
            "otto",
            json!({"kind": "sample", "sample": "S-1", "massKg": -1.0}),
            StatusCode::BAD_REQUEST,
            "massKg",
        ),
        (
            stock,
            "otto",
            json!({"kind": "theft", "deltaKg": 1.0}),
            StatusCode::BAD_REQUEST,
            "theft",
        ),
        (
            stock,
            "otto",
            json!({"kind": "correction", "corrects": 999, "deltaKg": 1.0, "reason": "x"}),
            StatusCode::NOT_FOUND,
            "999",
        ),
    ] {
        let (s, b) = call(&f, "POST", uri, user, Some(body)).await;
        assert_eq!(s, status, "{uri} {b}");
        let m = b["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{uri}: '{m}' does not name '{needle}'");
    }
    let (_, b) = call(&f, "GET", "/api/v1/lots/BM-NMC-1/accounting", "vera", None).await;
    assert_eq!(
        b["stockKg"],
        json!(800.0),
        "nothing partial was stored: {b}"
    );
    assert_eq!(b["assays"], json!([]));
}

#[tokio::test]
async fn the_balance_of_a_year_reports_recovery_tests_and_closures() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/balance?year=2026", "vera", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["globalTest"]["passed"].is_boolean(), "{b}");
    assert_eq!(b["recovery"].as_array().unwrap().len(), 4, "{b}");
    assert!(b["closures"].is_array(), "{b}");
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/balance?from=yesterday&to=2026-12-31T00:00:00Z",
        "vera",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("yesterday"),
        "{b}"
    );
    let (s, _) = call(&f, "GET", "/api/v1/balance", "vera", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_split_makes_parts_that_carry_the_lots_content_and_is_all_or_nothing() {
    let f = fixture().await;
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/lots/BM-NMC-1/split",
        "otto",
        Some(json!({"parts": [{"lot": "BM-NMC-1A", "massKg": 300.0}, {"lot": "BM-NMC-1B", "massKg": 500.0}],
                    "reason": "two leach charges"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["step"], "split");
    let ni = |i: usize| b["lots"][i]["lot"]["elementsKg"]["Ni"].as_f64().unwrap();
    assert_eq!(ni(0), 60.0);
    assert_eq!(ni(0) + ni(1), 160.0, "the parts hold all the lot's nickel");
    assert_eq!(b["lots"][1]["inputs"][0]["lot"], "BM-NMC-1");

    // The lot is used up: a second split is refused and stores nothing.
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/lots/BM-NMC-1/split",
        "otto",
        Some(json!({"parts": [{"lot": "BM-NMC-1C", "massKg": 1.0}, {"lot": "BM-NMC-1D", "massKg": 1.0}],
                    "reason": "again"})),
    )
    .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "it has 0 kg in stock");
    let (s, _) = call(&f, "GET", "/api/v1/lots/BM-NMC-1C", "vera", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_blend_sums_its_portions_and_needs_the_role_and_a_reason() {
    let f = fixture().await;
    call(
        &f,
        "POST",
        "/api/v1/lots/BM-NMC-1/split",
        "otto",
        Some(
            json!({"parts": [{"lot": "A", "massKg": 400.0}, {"lot": "B", "massKg": 400.0}],
                    "reason": "halves"}),
        ),
    )
    .await;
    let body = json!({"id": "LEACH-1", "kind": "leach-batch",
                      "portions": [{"lot": "A", "massKg": 100.0}, {"lot": "B", "massKg": 300.0}],
                      "reason": "charge 1"});
    let (s, b) = call(&f, "POST", "/api/v1/lots/blend", "vera", Some(body.clone())).await;
    check_error(s, &b, StatusCode::FORBIDDEN, "viewer");
    let mut no_reason = body.clone();
    no_reason["reason"] = json!("");
    let (s, b) = call(&f, "POST", "/api/v1/lots/blend", "otto", Some(no_reason)).await;
    check_error(s, &b, StatusCode::FORBIDDEN, "a blend needs a reason");
    let (s, b) = call(&f, "POST", "/api/v1/lots/blend", "otto", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let lot = &b["lots"][0]["lot"];
    assert_eq!(lot["massKg"], 400.0);
    assert_eq!(lot["elementsKg"]["Ni"], 80.0);
    assert_eq!(lot["kind"], "leach-batch");
    let (_, audit) = call(&f, "GET", "/api/v1/audit?limit=50", "sue", None).await;
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["actor"], e["action"], e["target"]))
        .collect();
    for want in [
        "\"vera\" \"lot.blend.refused\" \"LEACH-1\"",
        "\"otto\" \"lot.blend\" \"LEACH-1\"",
        "\"otto\" \"lot.split\" \"BM-NMC-1\"",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "no '{want}' in {actions:#?}"
        );
    }
}

#[tokio::test]
async fn bad_split_and_blend_requests_name_the_field() {
    let f = fixture().await;
    for (uri, body, fragment) in [
        (
            "/api/v1/lots/BM-NMC-1/split",
            json!({"parts": [{"lot": "A", "massKg": -1.0}, {"lot": "B", "massKg": 1.0}], "reason": "x"}),
            "parts[0].massKg",
        ),
        (
            "/api/v1/lots/BM-NMC-1/split",
            json!({"parts": [{"lot": "", "massKg": 1.0}, {"lot": "B", "massKg": 1.0}], "reason": "x"}),
            "parts[0].lot",
        ),
        (
            "/api/v1/lots/blend",
            json!({"id": "X", "kind": "soup", "portions": [], "reason": "x"}),
            "kind",
        ),
        (
            "/api/v1/lots/blend",
            json!({"id": "X", "kind": "residue", "portions": [{"lot": "NOPE", "massKg": 1.0}, {"lot": "BM-NMC-1", "massKg": 1.0}], "reason": "x"}),
            "lot NOPE",
        ),
    ] {
        let (s, b) = call(&f, "POST", uri, "otto", Some(body)).await;
        assert!(s.is_client_error(), "{uri}: {s} {b}");
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "'{message}' lacks '{fragment}'");
    }
}
