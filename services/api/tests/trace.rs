//! Genealogy traces through the API with a real SQLite store: backward to
//! the units and their passports with sums that match the lot's content,
//! forward to the product, recall of a black-mass lot, traces on the
//! element masses a year's balance reconciled, and refusals.

#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use remine_domain::ports::LotStore;
use remine_domain::{Chemistry, Element, LotKind, ProductKind};
use remine_testkit::lots::{audit, edge, lot, receive};
use serde_json::{Value, json};

mod common;

struct Fixture {
    api: common::Fixture,
    token: String,
}

/// P1 and P2 make BM1; BM1 is split between L1 and L2; L1 also takes P3;
/// the nickel sulphate NI1 is crystallised from L1.
async fn record_plant(store: &dyn LotStore) {
    use Element::*;
    receive(
        store,
        "P1",
        100.0,
        &[(Ni, 20.0), (Co, 5.0), (Li, 2.0)],
        "DE",
    )
    .await;
    receive(store, "P2", 100.0, &[(Ni, 10.0), (Co, 5.0)], "FR").await;
    receive(store, "P3", 50.0, &[(Ni, 5.0), (Li, 1.0)], "PL").await;
    let steps = [
        (
            lot(
                "BM1",
                LotKind::BlackMass(Chemistry::Nmc811),
                120.0,
                &[(Ni, 27.0), (Co, 9.0), (Li, 1.8)],
            ),
            vec![edge("P1", "BM1", 100.0), edge("P2", "BM1", 100.0)],
        ),
        (
            lot(
                "L1",
                LotKind::LeachBatch,
                110.0,
                &[(Ni, 18.5), (Co, 4.0), (Li, 1.9)],
            ),
            vec![edge("BM1", "L1", 60.0), edge("P3", "L1", 50.0)],
        ),
        (
            lot("L2", LotKind::LeachBatch, 60.0, &[(Ni, 13.0)]),
            vec![edge("BM1", "L2", 60.0)],
        ),
        (
            lot(
                "NI1",
                LotKind::Product(ProductKind::NickelSulphate),
                74.0,
                &[(Ni, 16.5)],
            ),
            vec![edge("L1", "NI1", 100.0)],
        ),
    ];
    for (l, inputs) in steps {
        let target = l.id().to_string();
        store.produce(&l, &inputs, audit(&target)).await.unwrap();
    }
}

/// The plant of `record_plant`, and vera (viewer) logged in.
async fn fixture() -> Fixture {
    let api = common::Fixture::new().await;
    record_plant(api.store().as_ref()).await;
    let token = api.login("vera").await;
    Fixture { api, token }
}

async fn call(f: &Fixture, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    f.api.call(method, uri, Some(&f.token), body).await
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn entry<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

fn check_kg(v: &Value, expected: f64) {
    assert!((num(v) - expected).abs() < 1e-9, "{v} != {expected}");
}

use common::check_error;

#[tokio::test]
async fn a_backward_trace_names_each_unit_passport_and_country_with_its_metal() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/lots/NI1/trace", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["direction"], "backward");
    assert_eq!(b["sources"].as_array().unwrap().len(), 3);
    let p1 = entry(&b["sources"], "P1");
    assert_eq!(p1["passport"], "urn:test:P1");
    assert_eq!(p1["country"], "DE");
    assert_eq!(p1["kind"], "input-unit");
    // NI1's 16.5 kg Ni all comes from L1 (18.5 kg: P1 9, P2 4.5, P3 5).
    check_kg(&p1["allocatedKg"]["Ni"], 16.5 * 9.0 / 18.5);
    check_kg(
        &entry(&b["sources"], "P3")["allocatedKg"]["Ni"],
        16.5 * 5.0 / 18.5,
    );
    let ids: Vec<_> = b["intermediates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["BM1", "L1"]);
}

#[tokio::test]
async fn the_sources_of_a_backward_trace_sum_to_the_lots_content() {
    let f = fixture().await;
    for lot in ["BM1", "L1", "L2", "NI1", "P2"] {
        let (s, b) = call(&f, "GET", &format!("/api/v1/lots/{lot}/trace"), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for e in ["Ni", "Co", "Li"] {
            let sum: f64 = b["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| num(&x["allocatedKg"][e]))
                .sum();
            check_kg(&b["lot"]["contentKg"][e], sum);
            check_kg(&b["totalKg"][e], sum);
        }
        check_kg(&b["totalMassKg"], num(&b["lot"]["massKg"]));
    }
}

#[tokio::test]
async fn a_forward_trace_follows_a_unit_into_black_mass_and_product() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/lots/P1/trace?direction=forward", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["direction"], "forward");
    // BM1 holds 27 kg Ni, two thirds of it from P1.
    check_kg(&entry(&b["lots"], "BM1")["allocatedKg"]["Ni"], 18.0);
    check_kg(
        &entry(&b["lots"], "NI1")["allocatedKg"]["Ni"],
        16.5 * 9.0 / 18.5,
    );
    let product = b["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "product:NiSO4.6H2O")
        .unwrap();
    assert_eq!(product["lots"], 1);
}

/// The ids of the lots made from P1, by a forward trace.
async fn made_from_p1(f: &Fixture) -> Vec<String> {
    let (s, b) = call(f, "GET", "/api/v1/lots/P1/trace?direction=forward", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_trace_sees_a_lot_made_after_the_previous_trace() {
    let f = fixture().await;
    assert_eq!(made_from_p1(&f).await, ["BM1", "L1", "L2", "NI1"]);
    // The same graph answers again; then L2 is crystallised into NI2.
    assert_eq!(made_from_p1(&f).await, ["BM1", "L1", "L2", "NI1"]);
    let ni2 = lot(
        "NI2",
        LotKind::Product(ProductKind::NickelSulphate),
        40.0,
        &[(Element::Ni, 9.0)],
    );
    f.api
        .store()
        .produce(&ni2, &[edge("L2", "NI2", 60.0)], audit("NI2"))
        .await
        .unwrap();
    assert_eq!(made_from_p1(&f).await, ["BM1", "L1", "L2", "NI1", "NI2"]);
}

#[tokio::test]
async fn a_recall_of_black_mass_lists_the_products_made_from_it() {
    let f = fixture().await;
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/trace/recall",
        Some(json!({"lots": ["BM1"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["suspects"][0]["id"], "BM1");
    let products = b["products"].as_array().unwrap();
    assert_eq!(products.len(), 1);
    assert_eq!(products[0]["id"], "NI1");
    // Of NI1's Ni, BM1's part: 13.5 of L1's 18.5.
    check_kg(&products[0]["allocatedKg"]["Ni"], 16.5 * 13.5 / 18.5);
    check_kg(&entry(&b["lots"], "L2")["share"], 1.0);
}

#[tokio::test]
async fn unknown_lots_and_bad_requests_are_refused_by_name() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/lots/NOPE-1/trace", None).await;
    check_error(s, &b, StatusCode::NOT_FOUND, "NOPE-1");
    let (s, b) = call(&f, "GET", "/api/v1/lots/P1/trace?direction=sideways", None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "sideways");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/trace/recall",
        Some(json!({"lots": ["BM1", "NOPE-2"]})),
    )
    .await;
    check_error(s, &b, StatusCode::NOT_FOUND, "NOPE-2");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/trace/recall",
        Some(json!({"lots": []})),
    )
    .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "lots");
    let (s, b) = call(&f, "GET", "/api/v1/lots/bad%20id/trace", None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "lot id");
}

#[tokio::test]
async fn a_trace_on_reconciled_values_allocates_the_years_reconciled_contents() {
    use chrono::Datelike;
    let f = fixture().await;
    let year = chrono::Utc::now().year();
    let uri = format!("/api/v1/lots/NI1/trace?basis=reconciled&year={year}");
    let (s, b) = call(&f, "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["basis"]["kind"], "reconciled", "{b}");
    assert_eq!(b["basis"]["lotReconciled"], true, "{b}");
    assert!(num(&b["basis"]["reconciledLots"]) >= 7.0, "{b}");
    // Nothing after the packs is assayed: the balance carries L1's inputs'
    // Ni into NI1 instead of the 16.5 kg booked, and the sources sum to it.
    let ni = num(&b["lot"]["contentKg"]["Ni"]);
    assert!((ni - 16.5).abs() > 0.1, "NI1 Ni reconciled {ni}");
    let sum: f64 = b["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| num(&x["allocatedKg"]["Ni"]))
        .sum();
    assert!((sum - ni).abs() < 1e-9 * ni, "sources {sum}, NI1 {ni}");
    let (_, recorded) = call(&f, "GET", "/api/v1/lots/NI1/trace", None).await;
    assert_eq!(recorded["basis"]["kind"], "recorded");
    check_kg(&recorded["lot"]["contentKg"]["Ni"], 16.5);
}

#[tokio::test]
async fn a_reconciled_trace_needs_its_period() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/lots/NI1/trace?basis=reconciled", None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "year");
    let (s, b) = call(&f, "GET", "/api/v1/lots/NI1/trace?year=2026", None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "basis=reconciled");
    let (s, b) = call(&f, "GET", "/api/v1/lots/NI1/trace?basis=guessed", None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "guessed");
    let reversed = "/api/v1/lots/NI1/trace?basis=reconciled\
        &from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z";
    let (s, b) = call(&f, "GET", reversed, None).await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "must end after it starts");
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/lots/NOPE-9/trace?basis=reconciled&year=2026",
        None,
    )
    .await;
    check_error(s, &b, StatusCode::NOT_FOUND, "NOPE-9");
}

#[tokio::test]
async fn a_trace_needs_a_session() {
    let mut f = fixture().await;
    f.token = "not-a-token".into();
    let (s, _) = call(&f, "GET", "/api/v1/lots/NI1/trace", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
