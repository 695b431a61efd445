//! The alarm history: the [`AlarmLog`] port on table `alarm_events`.
//!
//! Rows are only ever appended. A process transition (an alarm becoming
//! active, returning, suppressed by design) is a plain insert: it changes
//! nothing anyone decided, so it takes no audit lock. An operator's action
//! (acknowledge, shelve, out of service) comes with its audit event and is
//! inserted inside the audited write transaction, so the history row and the
//! audit entry exist together or not at all.

use crate::db::{Db, db_error, micros, time_from_micros};
use crate::rows::get;
use async_trait::async_trait;
use remine_domain::ports::{AlarmHappening, AlarmLog, AlarmQuery, AlarmRecord, StoreError};
use remine_domain::{AlarmStatus, AuditEvent, Priority, Username};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Medium,
    Priority::High,
    Priority::Critical,
];

/// The stored rank of a priority (0 low .. 3 critical), so queries can ask
/// for "this and above".
fn rank(p: Priority) -> i64 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    }
}

/// A status as stored: its name and, for a timed shelve, its end.
fn status_columns(s: &AlarmStatus) -> (&'static str, Option<i64>) {
    match s {
        AlarmStatus::Shelved { until } => (s.name(), until.map(micros)),
        other => (other.name(), None),
    }
}

fn status_from(name: &str, until_us: Option<i64>, what: &str) -> Result<AlarmStatus, StoreError> {
    Ok(match name {
        "normal" => AlarmStatus::Normal,
        "unacknowledged" => AlarmStatus::Unacknowledged,
        "acknowledged" => AlarmStatus::Acknowledged,
        "returned_unacknowledged" => AlarmStatus::ReturnedUnacknowledged,
        "shelved" => AlarmStatus::Shelved {
            until: until_us.map(|us| time_from_micros(us, what)).transpose()?,
        },
        "suppressed_by_design" => AlarmStatus::SuppressedByDesign,
        "out_of_service" => AlarmStatus::OutOfService,
        other => {
            return Err(StoreError::Corrupt(format!(
                "{what}: unknown alarm status '{other}'"
            )));
        }
    })
}

async fn insert(
    conn: &mut AnyConnection,
    r: &AlarmRecord,
    audit_seq: Option<i64>,
) -> Result<i64, StoreError> {
    let (kind, from, to, count) = match &r.happening {
        AlarmHappening::Transition { from, to } => (
            "transition",
            Some(status_columns(from)),
            Some(status_columns(to)),
            None,
        ),
        AlarmHappening::FloodStarted { count } => {
            ("flood_started", None, None, Some(i64::from(*count)))
        }
        AlarmHappening::FloodEnded { count } => {
            ("flood_ended", None, None, Some(i64::from(*count)))
        }
    };
    let row = sqlx::query(
        "INSERT INTO alarm_events (at_us, alarm, area, priority, kind, from_status, from_until_us, \
         to_status, to_until_us, flood_count, value, by_user, by_reason, audit_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq",
    )
    .bind(micros(r.at))
    .bind(r.alarm.as_str())
    .bind(r.area.as_str())
    .bind(r.priority.map(rank))
    .bind(kind)
    .bind(from.map(|(s, _)| s))
    .bind(from.and_then(|(_, u)| u))
    .bind(to.map(|(s, _)| s))
    .bind(to.and_then(|(_, u)| u))
    .bind(count)
    .bind(r.value.filter(|v| v.is_finite()))
    .bind(r.by.as_ref().map(|(u, _)| u.as_str()))
    .bind(r.by.as_ref().map(|(_, why)| why.as_str()))
    .bind(audit_seq)
    .fetch_one(conn)
    .await
    .map_err(db_error(format!(
        "appending to the history of alarm '{}'",
        r.alarm
    )))?;
    get(&row, "seq", &"alarm_events")
}

fn record_from(row: &AnyRow) -> Result<(i64, AlarmRecord), StoreError> {
    let seq: i64 = get(row, "seq", &"alarm_events")?;
    let what = format!("alarm_events {seq}");
    let w: &dyn std::fmt::Display = &what;
    let kind: String = get(row, "kind", w)?;
    let count = || -> Result<u32, StoreError> {
        let n: Option<i64> = get(row, "flood_count", w)?;
        u32::try_from(n.unwrap_or(0))
            .map_err(|_| StoreError::Corrupt(format!("{what}: flood_count out of range")))
    };
    let happening = match kind.as_str() {
        "transition" => {
            let from: Option<String> = get(row, "from_status", w)?;
            let to: Option<String> = get(row, "to_status", w)?;
            AlarmHappening::Transition {
                from: status_from(
                    from.as_deref().unwrap_or_default(),
                    get(row, "from_until_us", w)?,
                    &what,
                )?,
                to: status_from(
                    to.as_deref().unwrap_or_default(),
                    get(row, "to_until_us", w)?,
                    &what,
                )?,
            }
        }
        "flood_started" => AlarmHappening::FloodStarted { count: count()? },
        "flood_ended" => AlarmHappening::FloodEnded { count: count()? },
        other => {
            return Err(StoreError::Corrupt(format!(
                "{what}: unknown kind '{other}'"
            )));
        }
    };
    let priority: Option<i64> = get(row, "priority", w)?;
    let priority = priority
        .map(|p| {
            usize::try_from(p)
                .ok()
                .and_then(|i| PRIORITIES.get(i).copied())
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: priority {p}")))
        })
        .transpose()?;
    let by_user: Option<String> = get(row, "by_user", w)?;
    let by_reason: Option<String> = get(row, "by_reason", w)?;
    let by = by_user
        .map(|u| {
            Username::parse(&u)
                .map(|u| (u, by_reason.unwrap_or_default()))
                .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
        })
        .transpose()?;
    Ok((
        seq,
        AlarmRecord {
            at: time_from_micros(get(row, "at_us", w)?, &what)?,
            alarm: get(row, "alarm", w)?,
            area: get(row, "area", w)?,
            priority,
            happening,
            value: get(row, "value", w)?,
            by,
        },
    ))
}

#[async_trait]
impl AlarmLog for Db {
    #[tracing::instrument(skip_all, fields(alarm = %record.alarm, area = %record.area))]
    async fn append_alarm(
        &self,
        record: &AlarmRecord,
        audit: Option<AuditEvent>,
    ) -> Result<i64, StoreError> {
        let Some(audit) = audit else {
            let mut conn = self
                .pool()
                .acquire()
                .await
                .map_err(db_error("connecting to append to the alarm history"))?;
            return insert(&mut conn, record, None).await;
        };
        let mut w = self.begin_write().await?;
        let audit_seq = w.seq();
        let outcome = insert(w.conn(), record, Some(audit_seq)).await;
        let (done, seq) = match outcome {
            Ok(seq) => (Ok(()), Some(seq)),
            Err(e) => (Err(e), None),
        };
        w.finish(done, audit).await?;
        seq.ok_or_else(|| {
            StoreError::Internal(format!(
                "audit entry {audit_seq} was committed without its alarm history row"
            ))
        })
    }

    #[tracing::instrument(skip_all, fields(alarm = ?query.alarm, area = ?query.area))]
    async fn alarm_history(
        &self,
        query: &AlarmQuery,
    ) -> Result<Vec<(i64, AlarmRecord)>, StoreError> {
        // Each filter adds a clause with the next placeholder; the values
        // are bound in the same order below.
        let mut clauses: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = |clause: &str| {
            n += 1;
            clauses.push(clause.replace('?', &format!("${n}")));
        };
        if query.from.is_some() {
            next("at_us >= ?");
        }
        if query.to.is_some() {
            next("at_us < ?");
        }
        if query.alarm.is_some() {
            next("alarm = ?");
        }
        if query.area.is_some() {
            next("area = ?");
        }
        if query.min_priority.is_some() {
            next("priority >= ?");
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT * FROM (SELECT * FROM alarm_events {filter} ORDER BY seq DESC LIMIT {}) \
             AS newest ORDER BY seq",
            query.limit.clamp(1, 100_000)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(t) = query.from {
            q = q.bind(micros(t));
        }
        if let Some(t) = query.to {
            q = q.bind(micros(t));
        }
        if let Some(a) = &query.alarm {
            q = q.bind(a.clone());
        }
        if let Some(a) = &query.area {
            q = q.bind(a.clone());
        }
        if let Some(p) = query.min_priority {
            q = q.bind(rank(p));
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .map_err(db_error("reading the alarm history"))?;
        rows.iter().map(record_from).collect()
    }
}
