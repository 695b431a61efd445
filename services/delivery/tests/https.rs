//! The plain HTTPS connector against a local receiver that behaves like a
//! platform: it answers 500 for a while, then 429 with Retry-After, then
//! stores documents but hangs past the client's timeout, then recovers, and
//! it honours the Idempotency-Key (a second POST with a key it has is
//! counted, not stored). Every document ends up stored exactly once, none
//! is lost, on SQLite and on PostgreSQL; a permanent 4xx is parked with its
//! reason; a receiver that is down at first gets everything once it is up;
//! and a worker killed mid-send is replaced by one that re-sends without a
//! duplicate.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::*;
use remine_delivery::{Connector, HttpsConnector, HttpsSettings, Worker};
use remine_domain::outbox::{DeliveryState, Document, OutboxStore, StateName};
use remine_store::Db;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

/// How the receiver answers its next request.
#[derive(Debug, Clone, Copy)]
enum Act {
    Fail500,
    Throttle429,
    /// Stores the document, then answers only after `hang`.
    StoreThenHang,
}

#[derive(Debug, Default)]
struct Platform {
    script: VecDeque<Act>,
    hang: Duration,
    /// Document ids answered 422.
    refuse: BTreeSet<String>,
    /// Stored bodies by idempotency key.
    stored: BTreeMap<String, Vec<u8>>,
    /// POSTs by idempotency key.
    posts: BTreeMap<String, u32>,
    /// Times a body was stored (more than `stored.len()` would be a
    /// duplicate).
    stores: u32,
}

type Shared = Arc<Mutex<Platform>>;

fn reply(status: StatusCode, body: &str) -> Response {
    (status, body.to_string()).into_response()
}

async fn receive(State(p): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if header("authorization") != format!("Bearer {TOKEN}") {
        return reply(StatusCode::UNAUTHORIZED, r#"{"message":"bad token"}"#);
    }
    let key = header("idempotency-key");
    if key.is_empty() {
        return reply(
            StatusCode::BAD_REQUEST,
            r#"{"message":"no Idempotency-Key"}"#,
        );
    }
    let (act, hang) = {
        let mut p = p.lock().unwrap();
        *p.posts.entry(key.clone()).or_default() += 1;
        if p.refuse.contains(&header("x-remine-document-id")) {
            return reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"message":"year 2027 is missing its input fraction"}"#,
            );
        }
        let act = p.script.pop_front();
        let duplicate = p.stored.contains_key(&key);
        match act {
            Some(Act::Fail500) => return reply(StatusCode::INTERNAL_SERVER_ERROR, "platform down"),
            Some(Act::Throttle429) => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "slow down",
                )
                    .into_response();
            }
            Some(Act::StoreThenHang) | None => {
                if !duplicate {
                    p.stored.insert(key.clone(), body.to_vec());
                    p.stores += 1;
                }
            }
        }
        if duplicate {
            return reply(StatusCode::OK, r#"{"status":"duplicate"}"#);
        }
        (act, p.hang)
    };
    if matches!(act, Some(Act::StoreThenHang)) {
        tokio::time::sleep(hang).await;
    }
    reply(StatusCode::CREATED, r#"{"status":"stored"}"#)
}

fn platform(script: &[Act], hang: Duration, refuse: &[&str]) -> Shared {
    Arc::new(Mutex::new(Platform {
        script: script.iter().copied().collect(),
        hang,
        refuse: refuse.iter().map(|s| s.to_string()).collect(),
        ..Platform::default()
    }))
}

async fn serve_platform(p: &Shared, addr: Option<SocketAddr>) -> SocketAddr {
    let app = Router::new()
        .route("/documents", post(receive))
        .with_state(Arc::clone(p));
    serve(app, addr).await
}

fn connector(addr: SocketAddr, timeout: Duration) -> Arc<dyn Connector> {
    let settings = HttpsSettings {
        name: target("platform"),
        url: format!("http://{addr}/documents").parse().unwrap(),
        token_env: "PLATFORM_TOKEN".into(),
        timeout,
    };
    let env = |var: &str| (var == "PLATFORM_TOKEN").then(|| TOKEN.to_string());
    Arc::new(HttpsConnector::new(settings, &env).unwrap())
}

fn worker(db: &Db, addr: SocketAddr, timeout: Duration, lease: Duration) -> Worker {
    let store: Arc<dyn OutboxStore> = Arc::new(db.clone());
    Worker::new(
        store,
        vec![connector(addr, timeout)],
        fast_retry(),
        settings("w1", lease),
    )
}

/// Every document stored exactly once under its key, with its content.
fn check_exactly_once(p: &Shared, docs: &[Document]) {
    let p = p.lock().unwrap();
    assert_eq!(p.stored.len(), docs.len(), "documents stored");
    assert_eq!(p.stores as usize, docs.len(), "a document was stored twice");
    for d in docs {
        let body = p.stored.get(d.idempotency_key().as_str());
        assert_eq!(
            body.map(Vec::as_slice),
            Some(d.content().as_bytes()),
            "{}",
            d.id()
        );
    }
}

fn flaky_script() -> Vec<Act> {
    let mut script = vec![Act::Fail500; 6];
    script.extend([Act::Throttle429; 3]);
    script.extend([Act::StoreThenHang; 3]);
    script
}

async fn a_flaky_platform_gets_every_document_exactly_once(db: Db) {
    let p = platform(&flaky_script(), Duration::from_millis(1500), &[]);
    let addr = serve_platform(&p, None).await;
    let docs = enqueue(&db, "recovery-report", "r", 10, "platform").await;
    let w = worker(
        &db,
        addr,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    let handle = remine_delivery::WorkerHandle::spawn(w);
    wait_for_counts(&db, 10, 0).await;
    let progress = handle.worker().progress().await.unwrap();
    handle.shutdown().await;

    check_exactly_once(&p, &docs);
    let posts: u32 = p.lock().unwrap().posts.values().sum();
    assert_eq!(posts, 10 + 12, "each failure was retried once it was over");
    assert!(
        p.lock()
            .unwrap()
            .posts
            .values()
            .filter(|n| **n >= 2)
            .count()
            >= 3,
        "the documents stored during the hang were sent again and counted"
    );
    assert_eq!(progress.delivered, 10);
    assert_eq!(progress.retried, 12);
    assert_eq!(progress.parked, 0);
    assert_eq!(progress.counts.delivered, 10);
    let delivered = db.deliveries(StateName::Delivered, 100).await.unwrap();
    assert!(delivered.iter().all(|d| d.last_error.is_none()));
    assert!(
        progress
            .prometheus()
            .contains("remine_outbox_deliveries{state=\"delivered\"} 10")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_platform_gets_every_document_exactly_once_sqlite() {
    let store = sqlite().await;
    a_flaky_platform_gets_every_document_exactly_once(store.db.clone()).await;
    store.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_platform_gets_every_document_exactly_once_postgres() {
    let name = "a_flaky_platform_gets_every_document_exactly_once_postgres";
    if let Some(store) = postgres(name).await {
        a_flaky_platform_gets_every_document_exactly_once(store.db.clone()).await;
        store.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_parked_with_its_reason_and_not_retried() {
    let store = sqlite().await;
    let db = &store.db;
    let p = platform(&[], Duration::ZERO, &["r-01"]);
    let addr = serve_platform(&p, None).await;
    let docs = enqueue(db, "recovery-report", "r", 3, "platform").await;
    let handle = remine_delivery::WorkerHandle::spawn(worker(
        db,
        addr,
        Duration::from_secs(2),
        Duration::from_secs(10),
    ));
    wait_for_counts(db, 2, 1).await;
    handle.shutdown().await;

    let parked = db.deliveries(StateName::Parked, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key.document.as_str(), "r-01");
    assert!(
        matches!(
            &parked[0].state,
            DeliveryState::Parked { reason, status: Some(422), .. }
                if reason == "HTTP 422: year 2027 is missing its input fraction"
        ),
        "{parked:?}"
    );
    let posts = p.lock().unwrap().posts.clone();
    assert_eq!(posts.get(docs[1].idempotency_key().as_str()), Some(&1));
    check_exactly_once(&p, &[docs[0].clone(), docs[2].clone()]);
    store.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_parked_as_unauthorised() {
    let store = sqlite().await;
    let db = &store.db;
    let p = platform(&[], Duration::ZERO, &[]);
    let addr = serve_platform(&p, None).await;
    enqueue(db, "recovery-report", "r", 1, "platform").await;
    let settings = HttpsSettings {
        name: target("platform"),
        url: format!("http://{addr}/documents").parse().unwrap(),
        token_env: "PLATFORM_TOKEN".into(),
        timeout: Duration::from_secs(2),
    };
    let wrong = HttpsConnector::new(settings, &|_: &str| Some("not-it".into())).unwrap();
    let w = Worker::new(
        Arc::new(db.clone()),
        vec![Arc::new(wrong)],
        fast_retry(),
        settings_named("w1"),
    );
    w.run_once().await.unwrap();
    let parked = db.deliveries(StateName::Parked, 10).await.unwrap();
    assert!(
        matches!(&parked[0].state, DeliveryState::Parked { reason, status: Some(401), .. } if reason == "HTTP 401: bad token"),
        "{parked:?}"
    );
    store.db.close().await;
}

fn settings_named(name: &str) -> remine_delivery::WorkerSettings {
    settings(name, Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_down_at_first_gets_everything_once_it_is_up() {
    let store = sqlite().await;
    let db = &store.db;
    // A port nobody listens on until the platform starts there.
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let docs = enqueue(db, "recovery-report", "r", 5, "platform").await;
    let handle = remine_delivery::WorkerHandle::spawn(worker(
        db,
        addr,
        Duration::from_millis(300),
        Duration::from_secs(2),
    ));
    wait_until("connection refusals", Duration::from_secs(10), || async {
        handle.worker().progress().await.unwrap().retried >= 10
    })
    .await;
    let pending = db.deliveries(StateName::Pending, 10).await.unwrap();
    assert!(
        pending.iter().any(|d| d
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("unreachable"))),
        "{pending:?}"
    );
    let p = platform(&[], Duration::ZERO, &[]);
    serve_platform(&p, Some(addr)).await;
    wait_for_counts(db, 5, 0).await;
    handle.shutdown().await;
    check_exactly_once(&p, &docs);
    store.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_is_replaced_without_a_duplicate() {
    let store = sqlite().await;
    let db = &store.db;
    // The document is stored, but its answer never comes in time.
    let p = platform(&[Act::StoreThenHang], Duration::from_secs(30), &[]);
    let addr = serve_platform(&p, None).await;
    let mut docs = enqueue(db, "recovery-report", "first", 1, "platform").await;
    let lease = Duration::from_secs(2);
    let first = worker(db, addr, Duration::from_secs(20), lease);
    let task = tokio::spawn(async move { first.run_once().await });
    wait_until("the first send", Duration::from_secs(10), || async {
        p.lock().unwrap().stores >= 1
    })
    .await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let key = docs[0].clone();
    let in_flight = db.deliveries(StateName::InFlight, 10).await.unwrap();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(&in_flight[0].key.document, key.id());
    docs.extend(enqueue(db, "recovery-report", "later", 2, "platform").await);

    let second = worker(db, addr, Duration::from_secs(2), lease);
    let handle = remine_delivery::WorkerHandle::spawn(second);
    wait_for_counts(db, 3, 0).await;
    handle.shutdown().await;
    check_exactly_once(&p, &docs);
    assert_eq!(
        p.lock().unwrap().posts.get(key.idempotency_key().as_str()),
        Some(&2),
        "sent again after the lease ran out, and counted"
    );
    let d = db
        .delivery(&remine_domain::outbox::DeliveryKey {
            document: key.id().clone(),
            target: target("platform"),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.attempts, 2);
    store.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_a_target_without_a_connector_is_parked_naming_it() {
    let store = sqlite().await;
    let db = &store.db;
    let p = platform(&[], Duration::ZERO, &[]);
    let addr = serve_platform(&p, None).await;
    enqueue(db, "recovery-report", "r", 1, "retired-platform").await;
    worker(db, addr, Duration::from_secs(2), Duration::from_secs(10))
        .run_once()
        .await
        .unwrap();
    let parked = db.deliveries(StateName::Parked, 10).await.unwrap();
    assert!(
        matches!(
            &parked[0].state,
            DeliveryState::Parked { reason, status: None, .. }
                if reason == "no connector named retired-platform is configured"
        ),
        "{parked:?}"
    );
    assert!(p.lock().unwrap().posts.is_empty());
    store.db.close().await;
}
