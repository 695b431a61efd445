//! Delivery of outbox documents to traceability platforms.
//!
//! remine files reports (the yearly recovery report, per-lot provenance
//! records) with outside platforms. Producing a document stores it in the
//! transactional outbox ([`remine_domain::outbox`]) together with one
//! delivery per target, in one transaction; this crate's [`Worker`] then
//! claims due deliveries under a lease, sends each through its
//! [`Connector`], and records the outcome. The retry policy retries what is
//! transient (no connection, timeouts, 408, 425, 429 with its
//! `Retry-After`, 5xx) with capped exponential backoff for as long as it
//! takes, and parks what is not (any other 4xx) with its status and reason
//! for a person to see and requeue. Every request carries the document's
//! idempotency key, so a retry after a lost answer never makes a duplicate
//! at a receiver that honours it.
//!
//! Main types:
//! - [`DeliveryConfig`]: the TOML configuration (worker, retry policy,
//!   connectors), linted at start-up; secrets come from environment
//!   variables it names and print as `Secret(<redacted>)`;
//! - [`HttpsConnector`]: a plain POST of the JSON(-LD) with
//!   `Authorization: Bearer` and `Idempotency-Key`;
//! - [`EdcConnector`]: the Eclipse Tractus-X EDC management API v3 (asset,
//!   policy definition, contract definition; ids derived from the document,
//!   409 counts as done);
//! - [`Worker`], [`WorkerHandle`], [`start`]: the worker loop, and
//!   [`Progress`]: deliveries per state and attempts by result.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn remine_domain::outbox::OutboxStore>)
//! # -> Result<(), remine_delivery::DeliveryError> {
//! use remine_delivery::{DeliveryConfig, start};
//! let config = DeliveryConfig::load(std::path::Path::new("/etc/remine/delivery.toml"))?;
//! let handle = start(&config, store)?;
//! let progress = handle.worker().progress().await?;
//! println!("{} parked", progress.counts.parked);
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod edc;
mod http;
mod https;
mod worker;

pub use config::{
    ConnectorSettings, DeliveryConfig, EdcSettings, HttpsSettings, LEASE_TIMEOUTS, Secret,
    WorkerSettings,
};
pub use edc::{EdcConnector, EdcIds};
pub use https::HttpsConnector;
pub use worker::{Progress, Worker, WorkerHandle, connectors, start};

use async_trait::async_trait;
use remine_domain::outbox::{AttemptOutcome, ConnectorName, Document};
use remine_domain::ports::StoreError;
use std::fmt;

/// A way to deliver a document to one platform.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// The target name deliveries are queued for.
    fn name(&self) -> &ConnectorName;

    /// Sends `document` once. Never fails as a whole: every way it can go
    /// wrong is an [`AttemptOutcome`] the retry policy judges.
    async fn send(&self, document: &Document) -> AttemptOutcome;
}

/// Why delivery could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The configuration file is not valid; `why` names the field and value.
    #[error("{file}: {why}")]
    Config { file: String, why: String },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// A connector's secret is missing or unusable (its value is never
    /// shown).
    #[error("connector {connector}: environment variable {var} {why}")]
    MissingSecret {
        connector: String,
        var: String,
        why: &'static str,
    },
    #[error("connector {connector}: cannot build its HTTP client: {why}")]
    Client { connector: String, why: String },
    #[error("outbox store: {0}")]
    Store(#[from] StoreError),
}
