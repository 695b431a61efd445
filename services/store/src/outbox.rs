//! The transactional outbox: the [`OutboxStore`] port on tables
//! `outbox_documents` and `outbox_deliveries` (migration 0007).
//!
//! A document and its deliveries are inserted in one transaction (the
//! audited one when the caller passes an audit event), so a document is
//! never stored unqueued. Claims are exclusive: in SQLite the claiming
//! transaction begins `IMMEDIATE` and so holds the database's write lock;
//! in PostgreSQL it locks the candidate rows `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers take different rows instead of waiting. Every state
//! change of a claimed delivery names the attempt it belongs to, so a
//! worker whose lease ran out cannot overwrite a newer attempt.

use crate::db::{Backend, Db, db_error, micros, time_from_micros};
use crate::rows::get;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use remine_domain::AuditEvent;
use remine_domain::outbox::{
    Claim, ConnectorName, Content, ContentType, Delivery, DeliveryCounts, DeliveryKey,
    DeliveryState, Document, DocumentFields, DocumentId, DocumentKind, IdempotencyKey, OutboxStore,
    Resolution, StateName,
};
use remine_domain::ports::StoreError;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Transaction};
use std::fmt;
use std::time::Duration;

const DELIVERY_COLUMNS: &str = "document_id, target, idempotency_key, state, attempts, \
     next_attempt_at_us, lease_owner, last_error, delivered_at_us, receipt, parked_at_us, \
     park_reason, park_status";

const DOCUMENT_COLUMNS: &str =
    "id, kind, content_type, is_text, content, idempotency_key, created_at_us";

/// The most rows one listing or claim returns.
const MAX_ROWS: u32 = 10_000;

impl Db {
    /// A plain (unaudited) write transaction: in SQLite it takes the write
    /// lock at once, so a read in it cannot be overtaken by another writer.
    async fn begin_outbox(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        };
        tx.map_err(db_error("beginning an outbox transaction"))
    }
}

async fn insert_document(
    conn: &mut AnyConnection,
    document: &Document,
    targets: &[ConnectorName],
) -> Result<(), StoreError> {
    let id = document.id().as_str();
    let is_text = i64::from(matches!(document.content(), Content::Text(_)));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO outbox_documents ({DOCUMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(id)
    .bind(document.kind().as_str())
    .bind(document.content_type().as_str())
    .bind(is_text)
    .bind(document.content().as_bytes().to_vec())
    .bind(document.idempotency_key().as_str())
    .bind(micros(document.created_at()))
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!("storing outbox document '{id}'")))?;
    for target in targets {
        sqlx::query(
            "INSERT INTO outbox_deliveries (document_id, target, idempotency_key, state, \
             attempts, next_attempt_at_us) VALUES ($1, $2, $3, 'pending', 0, $4)",
        )
        .bind(id)
        .bind(target.as_str())
        .bind(document.idempotency_key().as_str())
        .bind(micros(document.created_at()))
        .execute(&mut *conn)
        .await
        .map_err(db_error(format!(
            "queueing outbox document '{id}' for target '{target}'"
        )))?;
    }
    Ok(())
}

/// Commits `tx` when `outcome` is Ok, rolls back otherwise.
async fn settle<T>(
    tx: Transaction<'static, Any>,
    outcome: Result<T, StoreError>,
    what: &str,
) -> Result<T, StoreError> {
    match outcome {
        Ok(v) => {
            tx.commit()
                .await
                .map_err(db_error(format!("committing {what}")))?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed; the connection discards the transaction");
            }
            Err(e)
        }
    }
}

fn parse<T>(
    what: &dyn fmt::Display,
    r: Result<T, remine_domain::DomainError>,
) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn count(n: i64, what: &dyn fmt::Display, column: &str) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what}: {column} {n} out of range")))
}

fn delivery_from(row: &AnyRow) -> Result<Delivery, StoreError> {
    let document: String = get(row, "document_id", &"outbox_deliveries")?;
    let target: String = get(row, "target", &"outbox_deliveries")?;
    let what = format!("outbox delivery {document} -> {target}");
    let w: &dyn fmt::Display = &what;
    let key = DeliveryKey {
        document: parse(w, DocumentId::parse(&document))?,
        target: parse(w, ConnectorName::parse(&target))?,
    };
    let state: String = get(row, "state", w)?;
    let next_attempt_at = time_from_micros(get(row, "next_attempt_at_us", w)?, &what)?;
    let optional_time = |column: &str| -> Result<DateTime<Utc>, StoreError> {
        let us: Option<i64> = get(row, column, w)?;
        let us = us.ok_or_else(|| StoreError::Corrupt(format!("{what}: {column} is missing")))?;
        time_from_micros(us, &what)
    };
    let text = |column: &str| -> Result<String, StoreError> {
        let s: Option<String> = get(row, column, w)?;
        Ok(s.unwrap_or_default())
    };
    let state = match parse(w, StateName::parse(&state))? {
        StateName::Pending => DeliveryState::Pending,
        StateName::InFlight => DeliveryState::InFlight {
            worker: text("lease_owner")?,
            lease_until: next_attempt_at,
        },
        StateName::Delivered => DeliveryState::Delivered {
            at: optional_time("delivered_at_us")?,
            receipt: text("receipt")?,
        },
        StateName::Parked => {
            let status: Option<i64> = get(row, "park_status", w)?;
            DeliveryState::Parked {
                at: optional_time("parked_at_us")?,
                reason: text("park_reason")?,
                status: status
                    .map(|s| {
                        u16::try_from(s).map_err(|_| {
                            StoreError::Corrupt(format!("{what}: park_status {s} out of range"))
                        })
                    })
                    .transpose()?,
            }
        }
    };
    let key_text: String = get(row, "idempotency_key", w)?;
    Ok(Delivery {
        key,
        idempotency_key: parse(w, IdempotencyKey::parse(&key_text))?,
        state,
        attempts: count(get(row, "attempts", w)?, w, "attempts")?,
        next_attempt_at,
        last_error: get(row, "last_error", w)?,
    })
}

fn document_from(row: &AnyRow) -> Result<Document, StoreError> {
    let id: String = get(row, "id", &"outbox_documents")?;
    let what = format!("outbox document '{id}'");
    let w: &dyn fmt::Display = &what;
    let bytes: Vec<u8> = get(row, "content", w)?;
    let is_text: i64 = get(row, "is_text", w)?;
    let content = if is_text != 0 {
        Content::Text(
            String::from_utf8(bytes)
                .map_err(|e| StoreError::Corrupt(format!("{what}: content: {e}")))?,
        )
    } else {
        Content::Bytes(bytes)
    };
    let kind: String = get(row, "kind", w)?;
    let content_type: String = get(row, "content_type", w)?;
    let document = parse(
        w,
        Document::new(DocumentFields {
            id: parse(w, DocumentId::parse(&id))?,
            kind: parse(w, DocumentKind::parse(&kind))?,
            content_type: parse(w, ContentType::parse(&content_type))?,
            content,
            created_at: time_from_micros(get(row, "created_at_us", w)?, &what)?,
        }),
    )?;
    let stored_key: String = get(row, "idempotency_key", w)?;
    if stored_key != document.idempotency_key().as_str() {
        return Err(StoreError::Corrupt(format!(
            "{what}: stored idempotency key {stored_key} does not match its content"
        )));
    }
    Ok(document)
}

async fn document_in(
    conn: &mut AnyConnection,
    id: &DocumentId,
) -> Result<Option<Document>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DOCUMENT_COLUMNS} FROM outbox_documents WHERE id = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
    .map_err(db_error(format!("reading outbox document '{id}'")))?;
    row.as_ref().map(document_from).transpose()
}

async fn claim_in(
    conn: &mut AnyConnection,
    backend: Backend,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Claim>, StoreError> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let candidates = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT document_id, target, attempts FROM outbox_deliveries \
         WHERE state IN ('pending', 'in_flight') AND next_attempt_at_us <= $1 \
         ORDER BY next_attempt_at_us, document_id, target LIMIT {}{lock}",
        limit.clamp(1, MAX_ROWS)
    )))
    .bind(micros(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("finding due outbox deliveries"))?;
    let mut claims = Vec::with_capacity(candidates.len());
    for row in &candidates {
        let document: String = get(row, "document_id", &"outbox_deliveries")?;
        let target: String = get(row, "target", &"outbox_deliveries")?;
        let what = format!("outbox delivery {document} -> {target}");
        let attempts = count(get(row, "attempts", &what)?, &what, "attempts")?;
        let attempt = attempts.saturating_add(1);
        // The state is checked again, so a row another claimer took in the
        // meantime (PostgreSQL without the lock, say) is left alone.
        let done = sqlx::query(
            "UPDATE outbox_deliveries SET state = 'in_flight', attempts = $1, \
             next_attempt_at_us = $2, lease_owner = $3 \
             WHERE document_id = $4 AND target = $5 AND attempts = $6 \
             AND state IN ('pending', 'in_flight') AND next_attempt_at_us <= $7",
        )
        .bind(i64::from(attempt))
        .bind(micros(lease_until))
        .bind(worker)
        .bind(document.as_str())
        .bind(target.as_str())
        .bind(i64::from(attempts))
        .bind(micros(now))
        .execute(&mut *conn)
        .await
        .map_err(db_error(format!("claiming {what}")))?;
        if done.rows_affected() != 1 {
            continue;
        }
        let id = parse(&what, DocumentId::parse(&document))?;
        let doc = document_in(conn, &id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("{what}: its document is missing")))?;
        claims.push(Claim {
            key: DeliveryKey {
                document: id,
                target: parse(&what, ConnectorName::parse(&target))?,
            },
            attempt,
            lease_until,
            document: doc,
        });
    }
    Ok(claims)
}

async fn requeue_in(
    conn: &mut AnyConnection,
    key: &DeliveryKey,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row =
        sqlx::query("SELECT state FROM outbox_deliveries WHERE document_id = $1 AND target = $2")
            .bind(key.document.as_str())
            .bind(key.target.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error(format!("reading outbox delivery {key}")))?
            .ok_or_else(|| StoreError::NotFound(format!("outbox delivery {key}")))?;
    let state: String = get(&row, "state", &key)?;
    if state != StateName::Parked.name() {
        return Err(StoreError::Conflict(format!(
            "outbox delivery {key} is {state}, not parked: only a parked delivery is requeued"
        )));
    }
    sqlx::query(
        "UPDATE outbox_deliveries SET state = 'pending', attempts = 0, next_attempt_at_us = $1, \
         lease_owner = NULL, last_error = NULL, parked_at_us = NULL, park_reason = NULL, \
         park_status = NULL WHERE document_id = $2 AND target = $3 AND state = 'parked'",
    )
    .bind(micros(now))
    .bind(key.document.as_str())
    .bind(key.target.as_str())
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!("requeueing outbox delivery {key}")))?;
    Ok(())
}

#[async_trait]
impl OutboxStore for Db {
    #[tracing::instrument(skip_all, fields(document = %document.id(), targets = targets.len()))]
    async fn enqueue(
        &self,
        document: &Document,
        targets: &[ConnectorName],
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        if targets.is_empty() {
            return Err(StoreError::Conflict(format!(
                "outbox document '{}' has no target to deliver to",
                document.id()
            )));
        }
        match audit {
            Some(audit) => {
                let mut w = self.begin_write().await?;
                let outcome = insert_document(w.conn(), document, targets).await;
                w.finish(outcome, audit).await.map(drop)
            }
            None => {
                let mut tx = self.begin_outbox().await?;
                let outcome = insert_document(&mut tx, document, targets).await;
                settle(tx, outcome, "an outbox document").await
            }
        }
    }

    #[tracing::instrument(skip(self, now, lease))]
    async fn claim_due(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError> {
        let lease_until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
        let mut tx = self.begin_outbox().await?;
        let outcome = claim_in(&mut tx, self.backend(), worker, now, lease_until, limit).await;
        settle(tx, outcome, "outbox claims").await
    }

    #[tracing::instrument(skip(self, resolution), fields(delivery = %key))]
    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        attempt: u32,
        resolution: &Resolution,
    ) -> Result<(), StoreError> {
        let q = match resolution {
            Resolution::Delivered { at, receipt } => sqlx::query(
                "UPDATE outbox_deliveries SET state = 'delivered', delivered_at_us = $1, \
                 receipt = $2, lease_owner = NULL, last_error = NULL \
                 WHERE document_id = $3 AND target = $4 AND state = 'in_flight' AND attempts = $5",
            )
            .bind(micros(*at))
            .bind(receipt.as_str()),
            Resolution::Retry { at, error } => sqlx::query(
                "UPDATE outbox_deliveries SET state = 'pending', next_attempt_at_us = $1, \
                 last_error = $2, lease_owner = NULL \
                 WHERE document_id = $3 AND target = $4 AND state = 'in_flight' AND attempts = $5",
            )
            .bind(micros(*at))
            .bind(error.as_str()),
            Resolution::Park { at, reason, status } => sqlx::query(
                "UPDATE outbox_deliveries SET state = 'parked', parked_at_us = $1, \
                 park_reason = $2, park_status = $3, last_error = $2, lease_owner = NULL \
                 WHERE document_id = $4 AND target = $5 AND state = 'in_flight' AND attempts = $6",
            )
            .bind(micros(*at))
            .bind(reason.as_str())
            .bind(status.map(i64::from)),
        };
        let done = q
            .bind(key.document.as_str())
            .bind(key.target.as_str())
            .bind(i64::from(attempt))
            .execute(self.pool())
            .await
            .map_err(db_error(format!("recording attempt {attempt} of {key}")))?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "outbox delivery {key} is no longer in flight under attempt {attempt}"
            )))
        }
    }

    #[tracing::instrument(skip(self))]
    async fn deliveries(&self, state: StateName, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox_deliveries WHERE state = $1 \
             ORDER BY next_attempt_at_us, document_id, target LIMIT {}",
            limit.clamp(1, MAX_ROWS)
        )))
        .bind(state.name())
        .fetch_all(self.pool())
        .await
        .map_err(db_error(format!("listing {state} outbox deliveries")))?;
        rows.iter().map(delivery_from).collect()
    }

    #[tracing::instrument(skip(self), fields(delivery = %key))]
    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox_deliveries WHERE document_id = $1 AND target = $2"
        )))
        .bind(key.document.as_str())
        .bind(key.target.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error(format!("reading outbox delivery {key}")))?;
        row.as_ref().map(delivery_from).transpose()
    }

    #[tracing::instrument(skip(self), fields(document = %id))]
    async fn document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        let mut conn = self.pool().acquire().await.map_err(db_error(format!(
            "connecting to read outbox document '{id}'"
        )))?;
        document_in(&mut conn, id).await
    }

    #[tracing::instrument(skip(self))]
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox_deliveries GROUP BY state")
            .fetch_all(self.pool())
            .await
            .map_err(db_error("counting outbox deliveries"))?;
        let mut counts = DeliveryCounts::default();
        for row in &rows {
            let state: String = get(row, "state", &"outbox_deliveries")?;
            let n: i64 = get(row, "n", &"outbox_deliveries")?;
            let n = u64::try_from(n).unwrap_or(0);
            let what = format!("outbox_deliveries state '{state}'");
            match parse(&what, StateName::parse(&state))? {
                StateName::Pending => counts.pending = n,
                StateName::InFlight => counts.in_flight = n,
                StateName::Delivered => counts.delivered = n,
                StateName::Parked => counts.parked = n,
            }
        }
        Ok(counts)
    }

    #[tracing::instrument(skip(self, now, audit), fields(delivery = %key))]
    async fn requeue(
        &self,
        key: &DeliveryKey,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = requeue_in(w.conn(), key, now).await;
        w.finish(outcome, audit).await.map(drop)
    }
}
