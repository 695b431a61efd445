//! The API from outside: sessions, roles, one error shape, lots and the
//! recovery report, through the router with a real SQLite store.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use remine_api::app;
use remine_domain::ports::LotStore;
use remine_domain::{
    AuditEvent, Chemistry, ContentSource, CountryCode, Element, GbtCode, GenealogyEdge, Kilograms,
    Lot, LotFields, LotId, LotKind, Passport, PassportFields, PassportForm, PassportId,
    ProductKind, UnitType, Username,
};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;
use common::Fixture;

async fn fixture() -> Fixture {
    Fixture::new().await
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    f.call(method, uri, token, body).await
}

async fn login(f: &Fixture, user: &str) -> String {
    f.login(user).await
}

/// The error `expected` with machine code `code` and a message with `fragment`.
fn check_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str, fragment: &str) {
    common::check_error(status, body, expected, fragment);
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_saying_which_part_was_wrong() {
    let f = fixture().await;
    for user in ["otto", "nobody"] {
        let (s, b) = call(
            &f,
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"user": user, "password": "wrong-password"})),
        )
        .await;
        check_error(
            s,
            &b,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "unknown user or wrong password",
        );
    }
}

#[tokio::test]
async fn without_a_session_data_is_refused() {
    let f = fixture().await;
    let (s, b) = call(&f, "GET", "/api/v1/lots", None, None).await;
    check_error(
        s,
        &b,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "not logged in",
    );
    let (s, b) = call(&f, "GET", "/api/v1/lots", Some("forged-token"), None).await;
    check_error(
        s,
        &b,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "session",
    );
}

#[tokio::test]
async fn a_session_names_its_user_and_ends_at_logout() {
    let f = fixture().await;
    let token = login(&f, "otto").await;
    let (s, b) = call(&f, "GET", "/api/v1/session", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"user": "otto", "role": "operator"}));
    let (s, _) = call(&f, "DELETE", "/api/v1/session", Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&f, "GET", "/api/v1/session", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_bodies_get_the_same_error_shape() {
    let f = fixture().await;
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/session",
        None,
        Some(json!({"user": "otto"})),
    )
    .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", "password");
    let (s, b) = call(&f, "GET", "/api/v1/nothing-here", None, None).await;
    check_error(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API route",
    );
}

#[tokio::test]
async fn the_audit_trail_needs_a_supervisor() {
    let f = fixture().await;
    let op = login(&f, "otto").await;
    let (s, b) = call(&f, "GET", "/api/v1/audit", Some(&op), None).await;
    check_error(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "forbidden",
        "needs supervisor",
    );
    let sup = login(&f, "sue").await;
    let (s, b) = call(&f, "GET", "/api/v1/audit", Some(&sup), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().unwrap().len(), 4, "four user.add entries: {b}");
    let (s, b) = call(&f, "GET", "/api/v1/audit/verify", Some(&sup), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"intact": true, "entries": 4}));
}

#[tokio::test]
async fn writing_a_tag_without_a_plant_is_unavailable_not_a_crash() {
    let f = fixture().await;
    let op = login(&f, "otto").await;
    let (s, b) = call(
        &f,
        "PUT",
        "/api/v1/tags/Discharge/Station1/EndVoltage",
        Some(&op),
        Some(json!({"value": 1.0, "reason": "test"})),
    )
    .await;
    check_error(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "no plant",
    );
}

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

async fn record_a_small_plant(store: &dyn LotStore) {
    let now = chrono::Utc::now();
    let audit = |target: &str| AuditEvent {
        actor: Username::system(),
        action: "lot.produce".into(),
        target: target.into(),
        old: None,
        new: None,
        reason: "test".into(),
    };
    let lot = |id: &str, kind, mass, els: &[(Element, f64)], src| {
        Lot::new(LotFields {
            id: LotId::parse(id).unwrap(),
            kind,
            mass: kg(mass),
            elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
            content_source: src,
            created_at: now,
            passport: None,
            country_of_collection: None,
        })
        .unwrap()
    };
    let input = lot(
        "U-1",
        LotKind::InputUnit,
        500.0,
        &[(Element::Ni, 60.0), (Element::Li, 10.0), (Element::Co, 8.0)],
        ContentSource::Declared,
    );
    store.produce(&input, &[], audit("U-1")).await.unwrap();
    let bm = lot(
        "BM-1",
        LotKind::BlackMass(Chemistry::Nmc811),
        200.0,
        &[(Element::Ni, 58.0)],
        ContentSource::Estimated,
    );
    let edge = |a: &str, b: &str, m| GenealogyEdge {
        from: LotId::parse(a).unwrap(),
        to: LotId::parse(b).unwrap(),
        mass: kg(m),
    };
    store
        .produce(&bm, &[edge("U-1", "BM-1", 500.0)], audit("BM-1"))
        .await
        .unwrap();
    let ni = lot(
        "NI-1",
        LotKind::Product(ProductKind::NickelSulphate),
        240.0,
        &[(Element::Ni, 54.0)],
        ContentSource::Assayed,
    );
    store
        .produce(&ni, &[edge("BM-1", "NI-1", 200.0)], audit("NI-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_recovery_report_is_computed_from_recorded_lots() {
    use chrono::Datelike;
    let mut f = fixture().await;
    record_a_small_plant(f.state.store.as_ref()).await;
    let token = login(&f, "vera").await;
    let year = chrono::Utc::now().year();
    let uri = format!("/api/v1/reports/recovery?year={year}");
    let (s, b) = call(&f, "GET", &uri, Some(&token), None).await;
    check_error(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "no facility configuration",
    );
    f.state.facility = Some(std::sync::Arc::new(
        remine_reporting::FacilityConfig::from_toml(
            include_str!("../../remine/demo/facility.toml"),
            "facility.toml",
        )
        .unwrap(),
    ));
    let (s, b) = call(&f, "GET", &uri, Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let row = |e: &str| {
        b["streams"][0]["total"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["element"] == e)
            .unwrap()
            .clone()
    };
    let ni = row("Ni");
    assert!((ni["rRM"].as_f64().unwrap() - 90.0).abs() < 1e-9, "{ni}");
    assert_eq!(
        ni["targets"][0],
        json!({"byEndOf": 2027, "targetPct": 90.0, "met": true})
    );
    assert_eq!(row("Li")["rRM"], json!(0.0));
    let (s, b) = call(
        &f,
        "GET",
        &format!("/api/v1/reports/recovery?year={}", year - 5),
        Some(&token),
        None,
    )
    .await;
    check_error(s, &b, StatusCode::NOT_FOUND, "not_found", "no data for");
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/reports/recovery?year=twenty",
        Some(&token),
        None,
    )
    .await;
    check_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "invalid query",
    );
}

/// Receives a unit that came with only its GB/T 34014 code, collected in
/// Austria, as lot `lot`.
async fn receive_a_gbt_unit(store: &dyn LotStore, lot: &str, code: &str) {
    let gbt = GbtCode::parse(code).unwrap();
    let passport = Passport::new(PassportFields {
        id: PassportId::Gbt(gbt.clone()),
        form: PassportForm::GbtIntake,
        serial: None,
        manufacturer: None,
        chemistry: Some(Chemistry::Lfp),
        unit_type: UnitType::Pack,
        mass: kg(300.0),
        declared: None,
        state_of_health_pct: None,
        country_of_collection: Some(CountryCode::parse("AT").unwrap()),
        gbt: Some(gbt),
        warnings: vec![],
    })
    .unwrap();
    let unit = Lot::new(LotFields {
        id: LotId::parse(lot).unwrap(),
        kind: LotKind::InputUnit,
        mass: kg(300.0),
        elements: [(Element::Li, kg(3.0))].into_iter().collect(),
        content_source: ContentSource::Estimated,
        created_at: chrono::Utc::now(),
        passport: Some(passport.id().clone()),
        country_of_collection: passport.country_of_collection().cloned(),
    })
    .unwrap();
    let audit = AuditEvent {
        actor: Username::system(),
        action: "lot.receive".into(),
        target: lot.into(),
        old: None,
        new: None,
        reason: "test".into(),
    };
    store.receive(&passport, &unit, audit).await.unwrap();
}

#[tokio::test]
async fn lots_are_found_by_lot_id_passport_id_gbt_code_kind_or_country() {
    let f = fixture().await;
    record_a_small_plant(f.state.store.as_ref()).await;
    receive_a_gbt_unit(f.state.store.as_ref(), "U-2", "1JTPB9ZZ6UA19JLC28739896").await;
    let token = login(&f, "vera").await;
    let found = |q: &'static str| {
        let (f, token) = (&f, token.clone());
        async move {
            let (s, b) = call(f, "GET", q, Some(&token), None).await;
            assert_eq!(s, StatusCode::OK, "{q}: {b}");
            b.as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("/api/v1/lots").await, ["U-1", "BM-1", "NI-1", "U-2"]);
    assert_eq!(found("/api/v1/lots?q=bm-1").await, ["BM-1"]);
    // A part of the GB/T code, in lower case.
    assert_eq!(found("/api/v1/lots?q=jlc2873").await, ["U-2"]);
    assert_eq!(found("/api/v1/lots?q=input-unit%20AT").await, ["U-2"]);
    assert_eq!(found("/api/v1/lots?q=input-unit").await, ["U-1", "U-2"]);
    assert!(found("/api/v1/lots?q=nothing-like-this").await.is_empty());
    // The newest N of those found, still oldest first.
    assert_eq!(found("/api/v1/lots?limit=2").await, ["NI-1", "U-2"]);
    let (s, b) = call(&f, "GET", "/api/v1/lots?limit=0", Some(&token), None).await;
    check_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "limit: must be at least 1",
    );
    let (s, b) = call(&f, "GET", "/api/v1/lots?colour=red", Some(&token), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

#[tokio::test]
async fn recovery_by_chemistry_and_month_is_traced_to_the_products() {
    use chrono::Datelike;
    let f = fixture().await;
    record_a_small_plant(f.state.store.as_ref()).await;
    receive_a_gbt_unit(f.state.store.as_ref(), "U-2", "1JTPB9ZZ6UA19JLC28739896").await;
    let token = login(&f, "vera").await;
    let now = chrono::Utc::now();
    let uri = format!("/api/v1/reports/recovery/cohorts?year={}", now.year());
    let (s, b) = call(&f, "GET", &uri, Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let month = format!("{}-{:02}", now.year(), now.month());
    let cohorts = b["cohorts"].as_array().unwrap();
    // The LFP unit (from its GB/T intake) first, the unit without a
    // passport (chemistry unknown) last.
    assert_eq!(cohorts.len(), 2, "{b}");
    let (lfp, unknown) = (&cohorts[0], &cohorts[1]);
    assert_eq!(
        (&lfp["month"], &lfp["chemistry"], &lfp["units"]),
        (&json!(month), &json!("LFP"), &json!(1))
    );
    assert_eq!(lfp["inputKg"]["Li"], 3.0);
    assert_eq!(lfp["ratePct"]["Li"], 0.0, "no lithium product yet: {b}");
    assert_eq!(unknown["chemistry"], Value::Null);
    // U-1's 60 kg Ni, of which NI-1 holds 54 kg.
    assert_eq!(unknown["inputKg"]["Ni"], 60.0);
    assert_eq!(unknown["inProductsKg"]["Ni"], 54.0);
    assert_eq!(unknown["ratePct"]["Ni"], 90.0);
    assert_eq!(
        unknown["ratePct"].get("Cu"),
        None,
        "no Cu input, no rate: {b}"
    );
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/reports/recovery/cohorts?year=1999",
        Some(&token),
        None,
    )
    .await;
    check_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "year 1999 is out of range",
    );
}

#[tokio::test]
async fn a_lot_shows_its_inputs_and_outputs() {
    let f = fixture().await;
    record_a_small_plant(f.state.store.as_ref()).await;
    let token = login(&f, "vera").await;
    let (s, b) = call(&f, "GET", "/api/v1/lots/BM-1", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["lot"]["label"], "black mass-NMC");
    assert_eq!(b["inputs"][0]["from"], "U-1");
    assert_eq!(b["outputs"][0]["to"], "NI-1");
    let (s, b) = call(&f, "GET", "/api/v1/lots/NOPE", Some(&token), None).await;
    check_error(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "not_found",
        "lot NOPE not found",
    );
}

#[tokio::test]
async fn the_hmi_is_served_from_the_binary() {
    let f = fixture().await;
    let res = app(f.state.clone())
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let (s, _) = call(&f, "GET", "/assets/app.js", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

/// A shipped recipe as the API's JSON.
fn recipe_json(key: &str) -> Value {
    let (_, r) = remine_recipes::shipped_recipes()
        .into_iter()
        .find(|(_, r)| r.key().to_string() == key)
        .unwrap();
    let phases: Vec<Value> = r
        .phases()
        .iter()
        .map(|ph| {
            let params: Vec<Value> = ph
                .parameters
                .iter()
                .map(|p| {
                    json!({"name": p.name().as_str(), "value": p.value().value(),
                           "unit": p.value().unit().symbol(), "min": p.min().value(), "max": p.max().value()})
                })
                .collect();
            json!({"unitProcedure": ph.path.unit_procedure.as_str(), "operation": ph.path.operation.as_str(),
                   "phase": ph.path.phase.as_str(), "parameters": params})
        })
        .collect();
    json!({"line": r.key().line.name(), "chemistry": r.key().chemistry.name(),
           "description": r.description(), "phases": phases})
}

async fn sign(f: &Fixture, token: &str, step: &str, password: &str) -> (StatusCode, Value) {
    call(
        f,
        "POST",
        &format!("/api/v1/recipes/hydromet/NMC811/1/{step}"),
        Some(token),
        Some(json!({"password": password, "reason": "per SOP-12"})),
    )
    .await
}

#[tokio::test]
async fn a_recipe_is_drafted_by_an_engineer_and_approved_and_released_by_another_person() {
    let f = fixture().await;
    let erin = login(&f, "erin").await;
    let sue = login(&f, "sue").await;
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/recipes",
        Some(&erin),
        Some(json!({"recipe": recipe_json("hydromet/NMC811"), "reason": "first issue"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["status"], "draft");
    assert_eq!(b["findings"], json!([]));

    let (s, b) = sign(&f, &erin, "submit", "wrong-password").await;
    check_error(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "forbidden",
        "password does not match",
    );
    let (s, b) = sign(&f, &erin, "submit", "a-long-password").await;
    assert_eq!(
        (s, b["status"].clone()),
        (StatusCode::OK, json!("in_review")),
        "{b}"
    );
    let (s, b) = sign(&f, &erin, "approve", "a-long-password").await;
    check_error(s, &b, StatusCode::FORBIDDEN, "forbidden", "supervisor");
    let (s, _) = sign(&f, &sue, "approve", "a-long-password").await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = sign(&f, &sue, "release", "a-long-password").await;
    assert_eq!(
        (s, b["status"].clone()),
        (StatusCode::OK, json!("released")),
        "{b}"
    );
    let meanings: Vec<&str> = b["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["meaning"].as_str().unwrap())
        .collect();
    assert_eq!(meanings, ["authored", "approved", "released"]);

    let (s, b) = call(
        &f,
        "PUT",
        "/api/v1/recipes/hydromet/NMC811/1",
        Some(&erin),
        Some(json!({"recipe": recipe_json("hydromet/NMC811"), "reason": "tweak"})),
    )
    .await;
    check_error(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "forbidden",
        "only a draft may be edited",
    );
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/recipes?line=hydromet",
        Some(&erin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().unwrap().len(), 1, "{b}");
}

#[tokio::test]
async fn a_recipe_with_a_bad_unit_or_an_unsafe_value_is_refused_naming_the_parameter() {
    let f = fixture().await;
    let erin = login(&f, "erin").await;
    let mut bad_unit = recipe_json("mechanical/NMC811");
    bad_unit["phases"][0]["parameters"][0]["unit"] = json!("furlong");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/recipes",
        Some(&erin),
        Some(json!({"recipe": bad_unit})),
    )
    .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", "furlong");
    let name = bad_unit["phases"][0]["parameters"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        b["error"]["message"].as_str().unwrap().contains(&name),
        "{b}"
    );

    // A dryer at atmospheric pressure leaves the solvents in the black mass.
    let mut unsafe_recipe = recipe_json("mechanical/NMC811");
    for ph in unsafe_recipe["phases"].as_array_mut().unwrap() {
        for p in ph["parameters"].as_array_mut().unwrap() {
            if p["name"] == "dryer_pressure" {
                *p = json!({"name": "dryer_pressure", "value": 1000.0, "unit": "mbar", "min": 900.0, "max": 1013.0});
            }
        }
    }
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/recipes/validate",
        Some(&erin),
        Some(unsafe_recipe.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let text = b.to_string();
    assert!(
        text.contains("dryer_pressure") && text.contains("dryer_temperature"),
        "{text}"
    );
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/recipes",
        Some(&erin),
        Some(json!({"recipe": unsafe_recipe})),
    )
    .await;
    check_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "boiling point",
    );
    let (_, list) = call(&f, "GET", "/api/v1/recipes", Some(&erin), None).await;
    assert_eq!(list, json!([]), "nothing stored");
}

#[tokio::test]
async fn the_editor_gets_the_equipment_catalogue_with_units_and_limits() {
    let f = fixture().await;
    let vera = login(&f, "vera").await;
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/recipes/catalogue/hydromet",
        Some(&vera),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let leach = b
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "leach_temperature")
        .unwrap();
    assert_eq!(leach["dimension"], "temperature");
    assert!(leach["max"].as_f64().unwrap() > leach["min"].as_f64().unwrap());
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/recipes/catalogue/kitchen",
        Some(&vera),
        None,
    )
    .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", "kitchen");
}
