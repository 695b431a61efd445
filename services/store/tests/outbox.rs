//! The outbox store, on SQLite and on PostgreSQL: a document and its
//! deliveries are stored in one transaction or not at all, claims are
//! exclusive and leased, attempts move deliveries between states (a stale
//! attempt is refused), parked deliveries are listed with their reason and
//! requeued with an audit entry, and everything survives reopening.

#![allow(clippy::unwrap_used)]

#[path = "store/harness.rs"]
#[macro_use]
#[allow(dead_code)]
mod harness;

use chrono::{DateTime, Utc};
use harness::Raw;
use remine_domain::outbox::{
    ConnectorName, Content, ContentType, DeliveryCounts, DeliveryKey, DeliveryState, Document,
    DocumentFields, DocumentId, DocumentKind, OutboxStore, Resolution, StateName,
};
use remine_domain::ports::{AuditLog, StoreError};
use remine_domain::{AuditEvent, Username};
use remine_store::Db;
use std::collections::BTreeSet;
use std::time::Duration;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn document(id: &str, content: Content) -> Document {
    Document::new(DocumentFields {
        id: DocumentId::parse(id).unwrap(),
        kind: DocumentKind::parse("recovery-report").unwrap(),
        content_type: ContentType::parse("application/ld+json").unwrap(),
        content,
        created_at: at(0),
    })
    .unwrap()
}

fn json(id: &str) -> Document {
    document(id, Content::Text(format!("{{\"id\":\"{id}\"}}")))
}

fn target(name: &str) -> ConnectorName {
    ConnectorName::parse(name).unwrap()
}

fn key(doc: &str, to: &str) -> DeliveryKey {
    DeliveryKey {
        document: DocumentId::parse(doc).unwrap(),
        target: target(to),
    }
}

fn audit(action: &str) -> AuditEvent {
    AuditEvent {
        actor: Username::parse("olga").unwrap(),
        action: action.into(),
        target: "r-1 -> edc".into(),
        old: None,
        new: None,
        reason: "platform fixed its schema".into(),
    }
}

const LEASE: Duration = Duration::from_secs(60);

async fn check_counts(db: &Db, pending: u64, in_flight: u64, delivered: u64, parked: u64) {
    let expected = DeliveryCounts {
        pending,
        in_flight,
        delivered,
        parked,
    };
    assert_eq!(db.delivery_counts().await.unwrap(), expected);
}

async fn a_document_and_its_deliveries_read_back(db: Db) {
    let text = json("r-1");
    let bytes = document("pdf-1", Content::Bytes(vec![0, 159, 146, 150, 255]));
    db.enqueue(&text, &[target("edc"), target("https")], None)
        .await
        .unwrap();
    db.enqueue(&bytes, &[target("https")], None).await.unwrap();
    assert_eq!(db.document(text.id()).await.unwrap(), Some(text.clone()));
    assert_eq!(db.document(bytes.id()).await.unwrap(), Some(bytes));
    let d = db.delivery(&key("r-1", "edc")).await.unwrap().unwrap();
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.attempts, 0);
    assert_eq!(&d.idempotency_key, text.idempotency_key());
    assert_eq!(d.next_attempt_at, at(0));
    check_counts(&db, 3, 0, 0, 0).await;
    assert_eq!(db.delivery(&key("r-9", "edc")).await.unwrap(), None);
}

async fn a_failing_enqueue_stores_no_document(db: Db) {
    // The second delivery repeats the first target, so the insert fails
    // after the document row was written.
    let e = db
        .enqueue(&json("r-1"), &[target("edc"), target("edc")], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("'r-1'") && m.contains("'edc'")),
        "{e}"
    );
    assert_eq!(
        db.document(&DocumentId::parse("r-1").unwrap())
            .await
            .unwrap(),
        None
    );
    check_counts(&db, 0, 0, 0, 0).await;
    let e = db.enqueue(&json("r-2"), &[], None).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
}

async fn an_audited_enqueue_fails_whole_too(db: Db) {
    let before = db.entries(0, 1000).await.unwrap().len();
    db.enqueue(
        &json("r-1"),
        &[target("edc")],
        Some(audit("outbox.enqueue")),
    )
    .await
    .unwrap();
    let failed = db
        .enqueue(
            &json("r-2"),
            &[target("edc"), target("edc")],
            Some(audit("outbox.enqueue")),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    assert_eq!(db.entries(0, 1000).await.unwrap().len(), before + 1);
    assert_eq!(
        db.document(&DocumentId::parse("r-2").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn a_document_is_never_replaced(db: Db) {
    db.enqueue(&json("r-1"), &[target("edc")], None)
        .await
        .unwrap();
    let other = document("r-1", Content::Text("{\"v\":2}".into()));
    let e = db
        .enqueue(&other, &[target("edc")], None)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert_eq!(db.document(other.id()).await.unwrap(), Some(json("r-1")));
}

async fn claims_take_due_deliveries_oldest_first_under_a_lease(db: Db) {
    for id in ["r-1", "r-2", "r-3"] {
        db.enqueue(&json(id), &[target("edc")], None).await.unwrap();
    }
    let claims = db.claim_due("w1", at(10), LEASE, 2).await.unwrap();
    let got: Vec<&str> = claims.iter().map(|c| c.key.document.as_str()).collect();
    assert_eq!(got, ["r-1", "r-2"]);
    assert_eq!(claims[0].attempt, 1);
    assert_eq!(claims[0].lease_until, at(70));
    assert_eq!(claims[0].document, json("r-1"));
    let d = db.delivery(&key("r-1", "edc")).await.unwrap().unwrap();
    assert_eq!(
        d.state,
        DeliveryState::InFlight {
            worker: "w1".into(),
            lease_until: at(70)
        }
    );
    check_counts(&db, 1, 2, 0, 0).await;
    // While the lease holds only r-3 is due; after it, r-1 and r-2 again.
    let more = db.claim_due("w2", at(69), LEASE, 10).await.unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].key, key("r-3", "edc"));
    let again = db.claim_due("w2", at(70), LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempt == 2));
}

async fn claims_are_exclusive_between_concurrent_workers(db: Db) {
    let mut all = BTreeSet::new();
    for n in 0..40 {
        let id = format!("r-{n:02}");
        db.enqueue(&json(&id), &[target("edc"), target("https")], None)
            .await
            .unwrap();
        all.insert((id.clone(), "edc".to_string()));
        all.insert((id, "https".to_string()));
    }
    let worker = |name: &'static str| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claims = db.claim_due(name, at(10), LEASE, 3).await.unwrap();
                if claims.is_empty() {
                    return mine;
                }
                mine.extend(claims.into_iter().map(|c| {
                    (
                        c.key.document.as_str().to_string(),
                        c.key.target.as_str().to_string(),
                    )
                }));
            }
        })
    };
    let handles = [worker("a"), worker("b"), worker("c"), worker("d")];
    let mut seen = Vec::new();
    for h in handles {
        seen.extend(h.await.unwrap());
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a delivery was claimed twice");
    assert_eq!(unique, all);
}

async fn attempts_move_deliveries_and_a_stale_attempt_is_refused(db: Db) {
    for id in ["ok", "retry", "park"] {
        db.enqueue(&json(id), &[target("edc")], None).await.unwrap();
    }
    db.claim_due("w1", at(1), LEASE, 10).await.unwrap();
    db.record_attempt(
        &key("ok", "edc"),
        1,
        &Resolution::Delivered {
            at: at(2),
            receipt: "201 asset ok".into(),
        },
    )
    .await
    .unwrap();
    db.record_attempt(
        &key("retry", "edc"),
        1,
        &Resolution::Retry {
            at: at(30),
            error: "HTTP 503: down".into(),
        },
    )
    .await
    .unwrap();
    db.record_attempt(
        &key("park", "edc"),
        1,
        &Resolution::Park {
            at: at(3),
            reason: "HTTP 422: missing year".into(),
            status: Some(422),
        },
    )
    .await
    .unwrap();
    check_counts(&db, 1, 0, 1, 1).await;
    let ok = db.delivery(&key("ok", "edc")).await.unwrap().unwrap();
    assert_eq!(
        ok.state,
        DeliveryState::Delivered {
            at: at(2),
            receipt: "201 asset ok".into()
        }
    );
    let retry = db.delivery(&key("retry", "edc")).await.unwrap().unwrap();
    assert_eq!(retry.state, DeliveryState::Pending);
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 503: down"));
    assert_eq!(retry.next_attempt_at, at(30));
    assert!(
        db.claim_due("w1", at(29), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claims = db.claim_due("w1", at(30), LEASE, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].attempt, 2);
    // Attempt 1 of "retry" is over; recording it again changes nothing.
    let e = db
        .record_attempt(
            &key("retry", "edc"),
            1,
            &Resolution::Delivered {
                at: at(31),
                receipt: "late".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("attempt 1")),
        "{e}"
    );
    check_counts(&db, 0, 1, 1, 1).await;
}

async fn parked_deliveries_are_listed_with_their_reason_and_requeued_with_audit(db: Db) {
    db.enqueue(&json("r-1"), &[target("edc"), target("https")], None)
        .await
        .unwrap();
    db.claim_due("w1", at(1), LEASE, 10).await.unwrap();
    db.record_attempt(
        &key("r-1", "edc"),
        1,
        &Resolution::Park {
            at: at(2),
            reason: "HTTP 400: bad @context".into(),
            status: Some(400),
        },
    )
    .await
    .unwrap();
    let parked = db.deliveries(StateName::Parked, 100).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0].state,
        DeliveryState::Parked {
            at: at(2),
            reason: "HTTP 400: bad @context".into(),
            status: Some(400)
        }
    );
    assert_eq!(
        db.deliveries(StateName::InFlight, 100).await.unwrap().len(),
        1
    );

    let before = db.entries(0, 1000).await.unwrap().len();
    db.requeue(&key("r-1", "edc"), at(100), audit("outbox.requeue"))
        .await
        .unwrap();
    let entries = db.entries(0, 1000).await.unwrap();
    assert_eq!(entries.len(), before + 1);
    assert_eq!(entries.last().unwrap().event.action, "outbox.requeue");
    let d = db.delivery(&key("r-1", "edc")).await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.attempts, d.next_attempt_at),
        (DeliveryState::Pending, 0, at(100))
    );

    let e = db
        .requeue(&key("r-1", "https"), at(100), audit("outbox.requeue"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("in_flight")),
        "{e}"
    );
    let e = db
        .requeue(&key("r-9", "edc"), at(100), audit("outbox.requeue"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert_eq!(db.entries(0, 1000).await.unwrap().len(), before + 1);
}

async fn state_survives_reopening(db: Db, raw: Raw) {
    db.enqueue(&json("r-1"), &[target("edc"), target("https")], None)
        .await
        .unwrap();
    db.claim_due("w1", at(1), LEASE, 1).await.unwrap();
    db.record_attempt(
        &key("r-1", "edc"),
        1,
        &Resolution::Retry {
            at: at(50),
            error: "timeout".into(),
        },
    )
    .await
    .unwrap();
    db.close().await;
    let again = Db::open(&raw.url).await.unwrap();
    let d = again.delivery(&key("r-1", "edc")).await.unwrap().unwrap();
    assert_eq!((d.attempts, d.next_attempt_at), (1, at(50)));
    assert_eq!(d.last_error.as_deref(), Some("timeout"));
    assert_eq!(
        again.document(&d.key.document).await.unwrap(),
        Some(json("r-1"))
    );
    check_counts(&again, 2, 0, 0, 0).await;
    again.close().await;
}

on_both_backends!(
    a_document_and_its_deliveries_read_back,
    a_failing_enqueue_stores_no_document,
    an_audited_enqueue_fails_whole_too,
    a_document_is_never_replaced,
    claims_take_due_deliveries_oldest_first_under_a_lease,
    claims_are_exclusive_between_concurrent_workers,
    attempts_move_deliveries_and_a_stale_attempt_is_refused,
    parked_deliveries_are_listed_with_their_reason_and_requeued_with_audit,
);

on_both_backends!(raw: state_survives_reopening);
