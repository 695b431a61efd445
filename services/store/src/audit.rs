//! The audit trail: the [`AuditLog`] port and [`Db::verify_audit`].
//!
//! Verification streams the trail page by page into
//! [`remine_domain::verify_chain`], which runs on a blocking thread and
//! pulls entries through a bounded channel, so memory stays flat however
//! long the trail. It then checks that the trail ends where the chain head
//! says it does, which the hash chain alone cannot show (a removed last entry
//! leaves a valid shorter chain).

use crate::db::{Db, db_error, time_from_micros};
use crate::rows::get;
use async_trait::async_trait;
use remine_domain::ports::{AuditLog, StoreError};
use remine_domain::{AuditEntry, AuditEvent, ChainBreak, Digest, Username, verify_chain};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Entries read per query when verifying.
const PAGE: u32 = 500;

/// The outcome of [`Db::verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerification {
    /// Every entry matches its hash and links to the one before it, numbers
    /// run from 1 without gaps, and the last one is the recorded chain head.
    Intact { entries: u64 },
    /// The first entry that does not hold (altered, missing, inserted, or
    /// unreadable).
    Broken(ChainBreak),
}

impl AuditVerification {
    pub fn is_intact(&self) -> bool {
        matches!(self, AuditVerification::Intact { .. })
    }
}

#[async_trait]
impl AuditLog for Db {
    async fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        Ok(match self.verify_audit().await? {
            AuditVerification::Intact { entries } => Ok(entries),
            AuditVerification::Broken(b) => Err(b),
        })
    }

    #[tracing::instrument(skip_all, fields(action = %event.action, target = %event.target))]
    async fn append(&self, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        let w = self.begin_write().await?;
        w.finish(Ok(()), event).await
    }

    #[tracing::instrument(skip(self))]
    async fn entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.audit_rows(after, i64::MAX, limit).await?;
        rows.into_iter()
            .map(|(seq, entry)| {
                entry.map_err(|why| StoreError::Corrupt(format!("audit {seq}: {why}")))
            })
            .collect()
    }
}

impl Db {
    /// Walks the whole audit trail in order through
    /// [`remine_domain::verify_chain`] and reports how many entries hold, or
    /// the first broken one. Entries appended while it runs are not checked.
    #[tracing::instrument(skip_all)]
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(db_error("reading the audit chain head"))?
            .ok_or_else(|| {
                StoreError::Corrupt("audit_head: the chain head row is missing".into())
            })?;
        let head_seq: i64 = get(&head, "seq", &"audit_head")?;
        let head_hash: String = get(&head, "hash", &"audit_head")?;

        let (sender, mut receiver) = tokio::sync::mpsc::channel::<AuditEntry>(PAGE as usize);
        let checker = tokio::task::spawn_blocking(move || {
            verify_chain(std::iter::from_fn(move || receiver.blocking_recv()))
        });
        let mut after = 0;
        let mut last_hash = Digest::GENESIS;
        let mut unreadable = None;
        let mut read_error = None;
        'pages: loop {
            let rows = match self.audit_rows(after, head_seq, PAGE).await {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => rows,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            for (seq, entry) in rows {
                after = seq;
                match entry {
                    Ok(entry) => {
                        last_hash = entry.hash;
                        // A closed channel means the checker found a break.
                        if sender.send(entry).await.is_err() {
                            break 'pages;
                        }
                    }
                    Err(why) => {
                        unreadable = Some(ChainBreak {
                            seq,
                            why: format!("the entry cannot be read: {why}"),
                        });
                        break 'pages;
                    }
                }
            }
        }
        drop(sender);
        let checked = checker
            .await
            .map_err(|e| StoreError::Internal(format!("audit verification stopped: {e}")))?;
        let entries = match checked {
            Err(b) => return Ok(AuditVerification::Broken(b)),
            Ok(n) => n,
        };
        if let Some(e) = read_error {
            return Err(e);
        }
        if let Some(b) = unreadable {
            return Ok(AuditVerification::Broken(b));
        }
        let last = i64::try_from(entries).unwrap_or(i64::MAX);
        if last < head_seq {
            return Ok(AuditVerification::Broken(ChainBreak {
                seq: last + 1,
                why: format!(
                    "the entry is missing: the chain head records {head_seq} entries, \
                     the trail ends at {last}"
                ),
            }));
        }
        if last > 0 && last_hash.to_hex() != head_hash {
            return Ok(AuditVerification::Broken(ChainBreak {
                seq: last,
                why: "its hash is not the one the chain head records (the entry was replaced)"
                    .into(),
            }));
        }
        Ok(AuditVerification::Intact { entries })
    }

    /// Rows with `after < seq <= upto`, at most `limit`, each read into an
    /// entry or the reason it cannot be.
    async fn audit_rows(
        &self,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Result<AuditEntry, String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_us, actor, action, target, old_value, new_value, reason, prev_hash, hash \
             FROM audit WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(upto)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error(format!("reading audit entries after {after}")))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = get(row, "seq", &"audit")?;
                Ok((seq, entry_from_row(row, seq)))
            })
            .collect()
    }
}

/// An audit row as an entry, or why it is not one.
fn entry_from_row(row: &AnyRow, seq: i64) -> Result<AuditEntry, String> {
    fn col<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, String>
    where
        T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        row.try_get(column)
            .map_err(|e| format!("column {column}: {e}"))
    }
    fn digest(text: &str, column: &str) -> Result<Digest, String> {
        Digest::from_hex(text)
            .ok_or_else(|| format!("{column} '{text}' is not a SHA-256 hex digest"))
    }
    let actor: String = col(row, "actor")?;
    let at_us: i64 = col(row, "at_us")?;
    let prev_hash: String = col(row, "prev_hash")?;
    let hash: String = col(row, "hash")?;
    let at = time_from_micros(at_us, "at_us").map_err(|e| e.to_string())?;
    Ok(AuditEntry {
        seq,
        at,
        event: AuditEvent {
            actor: Username::parse(&actor).map_err(|e| e.to_string())?,
            action: col(row, "action")?,
            target: col(row, "target")?,
            old: col(row, "old_value")?,
            new: col(row, "new_value")?,
            reason: col(row, "reason")?,
        },
        prev_hash: digest(&prev_hash, "prev_hash")?,
        hash: digest(&hash, "hash")?,
    })
}
