//! The delivery worker: claims due deliveries from the outbox, sends each
//! through its connector, and records how every attempt ended.
//!
//! A batch is sent concurrently, each send bounded by what is left of the
//! claim's lease, so a hung connector never outlives its claim. A store
//! that is away is waited out (the worker logs, counts and polls again);
//! an attempt whose outcome cannot be recorded leaves its delivery in
//! flight until the lease ends, after which it is claimed and sent again,
//! and the receiver recognises it by its idempotency key.

use crate::config::{ConnectorSettings, DeliveryConfig, WorkerSettings};
use crate::edc::EdcConnector;
use crate::https::HttpsConnector;
use crate::{Connector, DeliveryError};
use chrono::Utc;
use remine_domain::outbox::{
    AttemptOutcome, Claim, ConnectorName, DeliveryCounts, OutboxStore, Resolution, RetryPolicy,
};
use remine_domain::ports::StoreError;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Builds the configured connectors, reading their secrets through `env`
/// (`|var| std::env::var(var).ok()` in production).
pub fn connectors(
    config: &DeliveryConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<dyn Connector>>, DeliveryError> {
    config
        .connectors
        .iter()
        .map(|c| -> Result<Arc<dyn Connector>, DeliveryError> {
            Ok(match c {
                ConnectorSettings::Https(s) => Arc::new(HttpsConnector::new(s.clone(), env)?),
                ConnectorSettings::Edc(s) => Arc::new(EdcConnector::new(s.clone(), env)?),
            })
        })
        .collect()
}

/// What the worker has done since it started, and where the outbox stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Deliveries per state, as stored.
    pub counts: DeliveryCounts,
    /// Attempts this worker made.
    pub attempts: u64,
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    pub parked: u64,
    /// Outcomes not recorded because the claim had been lost (the lease ran
    /// out) or the store was away.
    pub unrecorded: u64,
    /// Store calls that failed.
    pub store_errors: u64,
}

impl Progress {
    /// The figures in the Prometheus text format, `remine_outbox_*`.
    pub fn prometheus(&self) -> String {
        let c = &self.counts;
        let mut out = String::from(
            "# HELP remine_outbox_deliveries Outbox deliveries by state.\n\
             # TYPE remine_outbox_deliveries gauge\n",
        );
        for (state, n) in [
            ("pending", c.pending),
            ("in_flight", c.in_flight),
            ("delivered", c.delivered),
            ("parked", c.parked),
        ] {
            out.push_str(&format!(
                "remine_outbox_deliveries{{state=\"{state}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP remine_outbox_attempts_total Delivery attempts by result.\n\
             # TYPE remine_outbox_attempts_total counter\n",
        );
        for (result, n) in [
            ("delivered", self.delivered),
            ("retried", self.retried),
            ("parked", self.parked),
            ("unrecorded", self.unrecorded),
        ] {
            out.push_str(&format!(
                "remine_outbox_attempts_total{{result=\"{result}\"}} {n}\n"
            ));
        }
        out
    }
}

#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    parked: AtomicU64,
    unrecorded: AtomicU64,
    store_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The delivery worker. Cloning is cheap; clones share the counters.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn OutboxStore>,
    connectors: BTreeMap<ConnectorName, Arc<dyn Connector>>,
    policy: RetryPolicy,
    settings: WorkerSettings,
    counters: Counters,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.inner.settings.name)
            .field(
                "connectors",
                &self.inner.connectors.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Worker {
    pub fn new(
        store: Arc<dyn OutboxStore>,
        connectors: Vec<Arc<dyn Connector>>,
        policy: RetryPolicy,
        settings: WorkerSettings,
    ) -> Worker {
        Worker {
            inner: Arc::new(Inner {
                store,
                connectors: connectors
                    .into_iter()
                    .map(|c| (c.name().clone(), c))
                    .collect(),
                policy,
                settings,
                counters: Counters::default(),
            }),
        }
    }

    /// Claims one batch of due deliveries and sends them; returns how many
    /// were claimed.
    #[tracing::instrument(skip(self), fields(worker = %self.inner.settings.name))]
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let s = &self.inner.settings;
        let claims = self
            .inner
            .store
            .claim_due(&s.name, Utc::now(), s.lease, s.batch)
            .await
            .inspect_err(|_| bump(&self.inner.counters.store_errors))?;
        let n = claims.len();
        futures::future::join_all(claims.into_iter().map(|c| self.attempt(c))).await;
        Ok(n)
    }

    /// Runs until `stop` is cancelled: a batch, then the next at once when
    /// the batch was full, else after the poll interval.
    pub async fn run(&self, stop: CancellationToken) {
        let s = &self.inner.settings;
        tracing::info!(worker = %s.name, connectors = self.inner.connectors.len(), "delivery worker started");
        loop {
            let wait = match self.run_once().await {
                Ok(n) if n >= s.batch as usize => Duration::ZERO,
                Ok(_) => s.poll_interval,
                Err(e) => {
                    tracing::warn!(worker = %s.name, error = %e, "cannot claim deliveries; trying again");
                    s.poll_interval
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(worker = %s.name, "delivery worker stopped");
    }

    /// Where the outbox stands and what this worker did.
    pub async fn progress(&self) -> Result<Progress, StoreError> {
        let c = &self.inner.counters;
        Ok(Progress {
            counts: self.inner.store.delivery_counts().await?,
            attempts: c.attempts.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            parked: c.parked.load(Ordering::Relaxed),
            unrecorded: c.unrecorded.load(Ordering::Relaxed),
            store_errors: c.store_errors.load(Ordering::Relaxed),
        })
    }

    #[tracing::instrument(skip_all, fields(delivery = %claim.key, attempt = claim.attempt))]
    async fn attempt(&self, claim: Claim) {
        let inner = &self.inner;
        bump(&inner.counters.attempts);
        let outcome = match inner.connectors.get(&claim.key.target) {
            None => AttemptOutcome::Unsendable {
                reason: format!("no connector named {} is configured", claim.key.target),
            },
            Some(connector) => {
                // Stop while the claim still holds, leaving a margin to
                // record the outcome.
                let left = (claim.lease_until - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                let budget = left.saturating_sub(left / 10);
                match tokio::time::timeout(budget, connector.send(&claim.document)).await {
                    Ok(outcome) => outcome,
                    Err(_) => AttemptOutcome::TimedOut { after: budget },
                }
            }
        };
        let resolution = inner.policy.resolve(claim.attempt, outcome, Utc::now());
        let counter = match &resolution {
            Resolution::Delivered { receipt, .. } => {
                tracing::info!(%receipt, "delivered");
                &inner.counters.delivered
            }
            Resolution::Retry { at, error } => {
                tracing::info!(%error, retry_at = %at, "attempt failed; will retry");
                &inner.counters.retried
            }
            Resolution::Park { reason, status, .. } => {
                tracing::warn!(%reason, ?status, "parked: a person must look at it");
                &inner.counters.parked
            }
        };
        match inner
            .store
            .record_attempt(&claim.key, claim.attempt, &resolution)
            .await
        {
            Ok(()) => bump(counter),
            Err(e) => {
                if !matches!(e, StoreError::Conflict(_)) {
                    bump(&inner.counters.store_errors);
                }
                bump(&inner.counters.unrecorded);
                tracing::warn!(error = %e, "outcome not recorded; the delivery is sent again when its lease ends");
            }
        }
    }
}

/// A running worker task.
#[derive(Debug)]
pub struct WorkerHandle {
    worker: Worker,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Spawns `worker` on the current tokio runtime.
    pub fn spawn(worker: Worker) -> WorkerHandle {
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let worker = worker.clone();
            let stop = stop.clone();
            async move { worker.run(stop).await }
        });
        WorkerHandle { worker, stop, task }
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Stops after the batch in hand and waits for the task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the delivery worker task ended abnormally");
        }
    }
}

/// Starts the delivery worker of a configuration on `store`, with the
/// connectors' secrets read from the process environment.
pub fn start(
    config: &DeliveryConfig,
    store: Arc<dyn OutboxStore>,
) -> Result<WorkerHandle, DeliveryError> {
    let connectors = connectors(config, &|var| std::env::var(var).ok())?;
    let worker = Worker::new(store, connectors, config.retry, config.worker.clone());
    Ok(WorkerHandle::spawn(worker))
}
