//! Deliveries to the traceability platforms as people see them, through
//! the router with a real SQLite store: counts and the parked list with
//! the receiver's reason, the stored document with its content type, and
//! requeueing by a supervisor with a reason (audited; refusals audited).

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use chrono::Utc;
use common::{Fixture, check_error};
use remine_domain::outbox::{
    ConnectorName, Content, ContentType, Document, DocumentFields, DocumentId, DocumentKind,
    Resolution,
};
use remine_domain::ports::OutboxStore;
use serde_json::{Value, json};
use std::time::Duration;

const REPORT: &str = r#"{"year":2026,"rRM":{"Ni":96.1}}"#;

/// Two reports queued for the "catenax" connector; the first was refused
/// by the platform with a 422 and is parked.
async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    let target = ConnectorName::parse("catenax").unwrap();
    for id in ["recovery-2026-final", "recovery-2026-11-provisional"] {
        let doc = Document::new(DocumentFields {
            id: DocumentId::parse(id).unwrap(),
            kind: DocumentKind::parse("recovery-report").unwrap(),
            content_type: ContentType::parse("application/json").unwrap(),
            content: Content::Text(REPORT.into()),
            created_at: Utc::now(),
        })
        .unwrap();
        f.db.enqueue(&doc, std::slice::from_ref(&target), None)
            .await
            .unwrap();
    }
    let claims =
        f.db.claim_due("test-worker", Utc::now(), Duration::from_secs(60), 1)
            .await
            .unwrap();
    let claim = &claims[0];
    f.db.record_attempt(
        &claim.key,
        claim.attempt,
        &Resolution::Park {
            at: Utc::now(),
            reason: "422: semantic id not allowed for this BPN".into(),
            status: Some(422),
        },
    )
    .await
    .unwrap();
    f
}

async fn parked(f: &Fixture) -> Value {
    let (s, b) = f
        .call_as("vera", "GET", "/api/v1/reports/deliveries", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

#[tokio::test]
async fn the_parked_delivery_is_listed_with_the_platforms_reason_and_the_counts() {
    let f = fixture().await;
    let b = parked(&f).await;
    assert_eq!(b["state"], "parked");
    assert_eq!(b["counts"]["parked"], 1);
    assert_eq!(b["counts"]["pending"], 1);
    let d = &b["deliveries"][0];
    assert_eq!(d["target"], "catenax");
    assert_eq!(d["httpStatus"], 422);
    assert_eq!(d["reason"], "422: semantic id not allowed for this BPN");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["idempotencyKey"].as_str().unwrap().len(), 64);
    let (s, b) = f
        .call_as(
            "vera",
            "GET",
            "/api/v1/reports/deliveries?state=pending",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stored_document_is_served_as_it_was_sent() {
    let f = fixture().await;
    let token = f.login("vera").await;
    let (s, bytes) = common::call_raw(
        &f.state,
        "GET",
        "/api/v1/outbox/documents/recovery-2026-final",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(String::from_utf8(bytes).unwrap(), REPORT);
    let (s, b) = f
        .call(
            "GET",
            "/api/v1/outbox/documents/no-such-report",
            Some(&token),
            None,
        )
        .await;
    check_error(s, &b, StatusCode::NOT_FOUND, "document no-such-report");
}

#[tokio::test]
async fn a_supervisor_requeues_a_parked_delivery_with_a_reason() {
    let f = fixture().await;
    let uri = "/api/v1/reports/deliveries/recovery-2026-final/catenax/requeue";
    let (s, b) = f
        .call_as("otto", "POST", uri, Some(json!({"reason": "fixed"})))
        .await;
    check_error(s, &b, StatusCode::FORBIDDEN, "operator");
    let (s, b) = f.call_as("sue", "POST", uri, Some(json!({}))).await;
    check_error(s, &b, StatusCode::FORBIDDEN, "needs a reason");
    let (s, b) = f
        .call_as(
            "sue",
            "POST",
            uri,
            Some(json!({"reason": "BPN added to the policy"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let b = parked(&f).await;
    assert_eq!(b["counts"]["parked"], 0);
    assert_eq!(b["counts"]["pending"], 2);
    // Only a parked delivery can be requeued.
    let (s, b) = f
        .call_as("sue", "POST", uri, Some(json!({"reason": "again"})))
        .await;
    check_error(s, &b, StatusCode::CONFLICT, "");
    let (_, audit) = f
        .call_as("sue", "GET", "/api/v1/audit?limit=50", None)
        .await;
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["actor"], e["action"], e["reason"]))
        .collect();
    for want in [
        "\"otto\" \"delivery.requeue.refused\"",
        "\"sue\" \"delivery.requeue.refused\"",
        "\"sue\" \"delivery.requeue\" \"BPN added to the policy\"",
    ] {
        assert!(
            actions.iter().any(|a| a.starts_with(want)),
            "no '{want}' in {actions:#?}"
        );
    }
}

#[tokio::test]
async fn uploads_to_the_chinese_platform_are_overdue_30_working_days_after_their_event() {
    use remine_domain::{Element, LotKind, ProductKind};
    use remine_testkit::lots::{audit, edge, lot, receive};
    let f = Fixture::new().await;
    let store = f.store();
    receive(store.as_ref(), "P1", 100.0, &[(Element::Ni, 10.0)], "CN").await;
    let ni = lot(
        "NI-1",
        LotKind::Product(ProductKind::NickelSulphate),
        40.0,
        &[(Element::Ni, 9.0)],
    );
    store
        .produce(&ni, &[edge("P1", "NI-1", 100.0)], audit("NI-1"))
        .await
        .unwrap();
    let today = (Utc::now() + chrono::Duration::days(70)).date_naive();
    let uri = format!("/api/v1/reports/cn-deadlines?today={today}");
    let (s, b) = f.call_as("vera", "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["obligations"], 2, "receipt and finished recycling of P1");
    let triggers: Vec<&str> = b["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers.len(), 2, "{b}");
    assert!(triggers.contains(&"received_into_stock") && triggers.contains(&"finished_recycling"));
    assert!(
        b["overdue"][0]["workingDaysLate"].as_u64().unwrap() > 10,
        "{b}"
    );

    // The receipt upload is delivered: only the other one stays overdue.
    let doc = Document::new(DocumentFields {
        id: DocumentId::parse("cn-received-P1").unwrap(),
        kind: DocumentKind::parse("cn-traceability").unwrap(),
        content_type: ContentType::parse("application/json").unwrap(),
        content: Content::Text("{}".into()),
        created_at: Utc::now(),
    })
    .unwrap();
    let target = ConnectorName::parse("cn-platform").unwrap();
    f.db.enqueue(&doc, std::slice::from_ref(&target), None)
        .await
        .unwrap();
    let claim =
        f.db.claim_due("w", Utc::now(), Duration::from_secs(60), 10)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.key.document.as_str() == "cn-received-P1")
            .unwrap();
    f.db.record_attempt(
        &claim.key,
        claim.attempt,
        &Resolution::Delivered {
            at: Utc::now(),
            receipt: "ok".into(),
        },
    )
    .await
    .unwrap();
    let (_, b) = f.call_as("vera", "GET", &uri, None).await;
    assert_eq!(b["overdue"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["overdue"][0]["trigger"], "finished_recycling");

    let (s, b) = f
        .call_as(
            "vera",
            "GET",
            "/api/v1/reports/cn-deadlines?holidays=2026-13-01",
            None,
        )
        .await;
    check_error(s, &b, StatusCode::BAD_REQUEST, "holidays: '2026-13-01'");
}
