//! What the delivery tests share: real outbox stores (an SQLite file, a
//! throwaway PostgreSQL database), documents, worker settings for fast
//! tests, waiting for a condition, and serving an axum app on 127.0.0.1
//! port 0.

#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use remine_delivery::WorkerSettings;
use remine_domain::outbox::{
    ConnectorName, Content, ContentType, DeliveryCounts, Document, DocumentFields, DocumentId,
    DocumentKind, OutboxStore, RetryPolicy,
};
use remine_store::Db;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open store with what keeps it alive.
pub struct Store {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    pub fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(self.db.clone())
    }
}

pub async fn sqlite() -> Store {
    let dir = remine_testkit::temp_dir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    Store {
        db,
        _dir: Some(dir),
    }
}

/// `None` (after a loud SKIP line) when PostgreSQL is not installed.
pub async fn postgres(test: &str) -> Option<Store> {
    let what = test.to_string();
    let url = tokio::task::spawn_blocking(move || {
        remine_testkit::TempPostgres::shared(&what).map(|pg| pg.fresh_database().unwrap())
    })
    .await
    .unwrap()?;
    let db = Db::open(&url).await.unwrap();
    Some(Store { db, _dir: None })
}

pub fn document(kind: &str, id: &str) -> Document {
    Document::new(DocumentFields {
        id: DocumentId::parse(id).unwrap(),
        kind: DocumentKind::parse(kind).unwrap(),
        content_type: ContentType::parse("application/ld+json").unwrap(),
        content: Content::Text(format!(
            "{{\"@context\":\"https://w3id.org/catenax\",\"id\":\"{id}\",\"year\":2027}}"
        )),
        created_at: Utc::now(),
    })
    .unwrap()
}

pub fn target(name: &str) -> ConnectorName {
    ConnectorName::parse(name).unwrap()
}

/// Stores `n` documents `<prefix>-00`, ... queued for `to`.
pub async fn enqueue(db: &Db, kind: &str, prefix: &str, n: usize, to: &str) -> Vec<Document> {
    let mut out = Vec::new();
    for i in 0..n {
        let d = document(kind, &format!("{prefix}-{i:02}"));
        db.enqueue(&d, &[target(to)], None).await.unwrap();
        out.push(d);
    }
    out
}

/// Fast settings: poll every 20 ms, batches of 4, the given lease.
pub fn settings(name: &str, lease: Duration) -> WorkerSettings {
    WorkerSettings {
        name: name.into(),
        poll_interval: Duration::from_millis(20),
        batch: 4,
        lease,
    }
}

/// 50 ms doubling to 400 ms; a Retry-After of at most 1 s.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(
        Duration::from_millis(50),
        Duration::from_millis(400),
        Duration::from_secs(1),
    )
    .unwrap()
}

/// Polls `condition` every 20 ms until it holds; fails the test after
/// `limit`, printing `what`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the outbox holds `delivered` delivered and `parked`
/// parked deliveries, and nothing else.
pub async fn wait_for_counts(db: &Db, delivered: u64, parked: u64) -> DeliveryCounts {
    let expected = DeliveryCounts {
        pending: 0,
        in_flight: 0,
        delivered,
        parked,
    };
    let start = Instant::now();
    loop {
        let last = db.delivery_counts().await.unwrap();
        if last == expected {
            return last;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "outbox stuck at {last:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves `app` on 127.0.0.1 port 0 (or `addr`), returning the address.
pub async fn serve(app: axum::Router, addr: Option<SocketAddr>) -> SocketAddr {
    let bind = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}
