//! The historian's storage: [`HistoryStore`] on SQLite and PostgreSQL.
//!
//! Samples are narrow rows `(tag_id, at_us, value, quality)` keyed by
//! `(tag_id, at_us)`; tag names are interned into `history_tags` once and
//! their ids cached in the [`Db`]. A batch is sorted by that key before it
//! is written, so the writes walk the index in order.
//!
//! Writing differs by backend, because the Any driver carries neither
//! arrays nor COPY:
//! - SQLite (through the store's pool): one `BEGIN IMMEDIATE` transaction
//!   per batch, multi-row `INSERT OR IGNORE` statements of
//!   [`SQLITE_ROWS_PER_INSERT`] rows with `?` parameters, under
//!   `synchronous = NORMAL` and a 32 MiB page cache (WAL: a process crash loses nothing, a power
//!   cut may lose the last batches), set back to `FULL` afterwards so the
//!   store's audited writes keep their durability;
//! - PostgreSQL (through a native pool of its own, opened lazily with the
//!   store's options): `COPY ... FROM STDIN (FORMAT binary)`, and when the
//!   batch holds a sample stored already (a replay), the same rows again as
//!   `INSERT ... SELECT * FROM UNNEST(...) ON CONFLICT DO NOTHING`.
//!
//! Reading goes through the Any pool on both backends with the same SQL;
//! the downsampling is one `GROUP BY` of `(at_us - from) / width`, so the
//! database returns at most N rows.

use crate::db::{Db, db_error, micros, time_from_micros};
use crate::rows::get;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{HistoryStore, StoreError};
use remine_domain::{Bucket, Sample, SampleQuality, TagName, bucket_width_us};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgPool};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Rows per SQLite INSERT: 4 parameters each, well under SQLite's limit
/// of 32,766 variables; larger statements gain nothing.
pub(crate) const SQLITE_ROWS_PER_INSERT: usize = 500;
/// What a history write sets on its SQLite connection first.
const SQLITE_SESSION: &str = "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768";
/// Names per statement when interning tags.
const NAMES_PER_STATEMENT: usize = 500;
/// How long a history write waits for a PostgreSQL connection: short, so
/// that the historian learns soon that the server is gone and spools.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const PG_CONNECTIONS: u32 = 2;

/// What the [`Db`] keeps for the historian.
pub(crate) struct HistoryState {
    ids: Mutex<HashMap<TagName, i64>>,
    pg: Option<PgPool>,
}

impl fmt::Debug for HistoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryState")
            .field("native_pool", &self.pg.is_some())
            .finish()
    }
}

impl HistoryState {
    pub(crate) fn new(pg: Option<PgPool>) -> HistoryState {
        HistoryState {
            ids: Mutex::new(HashMap::new()),
            pg,
        }
    }

    pub(crate) async fn close(&self) {
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }

    fn cached(&self, tags: &[&TagName]) -> (HashMap<TagName, i64>, Vec<TagName>) {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for &t in tags {
            match ids.get(t) {
                Some(&id) => {
                    found.insert(t.clone(), id);
                }
                None => missing.push(t.clone()),
            }
        }
        (found, missing)
    }

    fn remember(&self, more: &HashMap<TagName, i64>) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.extend(more.iter().map(|(t, &id)| (t.clone(), id)));
    }
}

/// The historian's native PostgreSQL pool: it connects on first use.
pub(crate) fn native_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options)
}

/// Maps a sqlx error like [`db_error`], and also the server's "cannot
/// connect now" and "shutting down" answers (SQLSTATE classes 08 and 57)
/// to `Unavailable`.
fn history_error(context: impl fmt::Display) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        let going_away = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57"));
        if going_away {
            StoreError::Unavailable(format!("{context}: {e}"))
        } else {
            db_error(context)(e)
        }
    }
}

/// One sample as stored.
#[derive(Debug, Clone, Copy)]
struct Row {
    tag_id: i64,
    at_us: i64,
    value: Option<f64>,
    quality: i16,
}

impl Db {
    /// The ids of `tags`, interning the names not stored yet.
    async fn tag_ids(&self, tags: &[&TagName]) -> Result<HashMap<TagName, i64>, StoreError> {
        let state = self.history_state();
        let (mut found, missing) = state.cached(tags);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut fetched = HashMap::new();
        for chunk in missing.chunks(NAMES_PER_STATEMENT) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
            let mut insert = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO history_tags (name) VALUES {} ON CONFLICT (name) DO NOTHING",
                params.join(",")
            )));
            for t in chunk {
                insert = insert.bind(t.as_str());
            }
            insert
                .execute(self.pool())
                .await
                .map_err(history_error("interning history tags"))?;
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut select = sqlx::query(AssertSqlSafe(format!(
                "SELECT CAST(id AS BIGINT) AS id, name FROM history_tags WHERE name IN ({})",
                params.join(",")
            )));
            for t in chunk {
                select = select.bind(t.as_str());
            }
            let rows = select
                .fetch_all(self.pool())
                .await
                .map_err(history_error("reading history tag ids"))?;
            for row in &rows {
                let name: String = get(row, "name", &"history_tags")?;
                let id: i64 = get(row, "id", &format!("history tag {name}"))?;
                let tag = TagName::parse(&name)
                    .map_err(|e| StoreError::Corrupt(format!("history_tags: {e}")))?;
                fetched.insert(tag, id);
            }
        }
        state.remember(&fetched);
        found.extend(fetched);
        Ok(found)
    }

    /// The id of a stored tag, or `None` when it never had a sample.
    async fn known_tag_id(&self, tag: &TagName) -> Result<Option<i64>, StoreError> {
        if let (found, _) = self.history_state().cached(&[tag])
            && let Some(&id) = found.get(tag)
        {
            return Ok(Some(id));
        }
        let row = sqlx::query("SELECT CAST(id AS BIGINT) AS id FROM history_tags WHERE name = $1")
            .bind(tag.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(history_error(format!(
                "reading the id of history tag {tag}"
            )))?;
        row.map(|r| get(&r, "id", &format!("history tag {tag}")))
            .transpose()
    }

    async fn append_sqlite(&self, rows: &[Row]) -> Result<u64, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(history_error("opening a connection for history samples"))?;
        // The index of many tags' samples outgrows SQLite's default 2 MB
        // page cache soon; a larger cache keeps a batch's inserts in memory.
        sqlx::raw_sql(SQLITE_SESSION)
            .execute(&mut *conn)
            .await
            .map_err(history_error("setting up a connection for history samples"))?;
        let outcome = async {
            let mut tx = conn
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(history_error("beginning a history write"))?;
            let full = insert_sqlite_sql(SQLITE_ROWS_PER_INSERT);
            let mut written = 0;
            for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let sql = if chunk.len() == SQLITE_ROWS_PER_INSERT {
                    full.clone()
                } else {
                    insert_sqlite_sql(chunk.len())
                };
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for r in chunk {
                    q = q.bind(r.tag_id).bind(r.at_us).bind(r.value).bind(r.quality);
                }
                written += q
                    .execute(&mut *tx)
                    .await
                    .map_err(history_error("inserting history samples"))?
                    .rows_affected();
            }
            tx.commit()
                .await
                .map_err(history_error("committing history samples"))?;
            Ok(written)
        }
        .await;
        if let Err(e) = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, "cannot restore synchronous = FULL; closing the connection");
            conn.close_on_drop();
        }
        outcome
    }

    async fn append_postgres(&self, pg: &PgPool, rows: &[Row]) -> Result<u64, StoreError> {
        let mut conn = pg
            .acquire()
            .await
            .map_err(history_error("connecting for history samples"))?;
        let copied = async {
            let mut copy = conn
                .copy_in_raw(
                    "COPY history_samples (tag_id, at_us, value, quality) FROM STDIN (FORMAT binary)",
                )
                .await?;
            copy.send(copy_binary(rows)).await?;
            copy.finish().await
        }
        .await;
        match copied {
            Ok(n) => Ok(n),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                // A replay: some samples are stored already; keep the first.
                let done = sqlx::query(
                    "INSERT INTO history_samples (tag_id, at_us, value, quality) \
                     SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::float8[], $4::smallint[]) \
                     ON CONFLICT (tag_id, at_us) DO NOTHING",
                )
                .bind(rows.iter().map(|r| r.tag_id as i32).collect::<Vec<i32>>())
                .bind(rows.iter().map(|r| r.at_us).collect::<Vec<i64>>())
                .bind(rows.iter().map(|r| r.value).collect::<Vec<Option<f64>>>())
                .bind(rows.iter().map(|r| r.quality).collect::<Vec<i16>>())
                .execute(&mut *conn)
                .await
                .map_err(history_error("inserting history samples"))?;
                Ok(done.rows_affected())
            }
            Err(e) => Err(history_error("copying history samples")(e)),
        }
    }
}

fn insert_sqlite_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(80 + rows * 10);
    sql.push_str("INSERT OR IGNORE INTO history_samples (tag_id, at_us, value, quality) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?)");
    }
    sql
}

/// Rows in PostgreSQL's binary COPY format: the signature, flags and
/// header extension, then per row the field count and each field's length
/// and big-endian bytes (length -1 for NULL), then the trailer -1.
fn copy_binary(rows: &[Row]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(19 + rows.len() * 38 + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for r in rows {
        buf.extend_from_slice(&4i16.to_be_bytes());
        buf.extend_from_slice(&4i32.to_be_bytes());
        buf.extend_from_slice(&(r.tag_id as i32).to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&r.at_us.to_be_bytes());
        match r.value {
            Some(v) => {
                buf.extend_from_slice(&8i32.to_be_bytes());
                buf.extend_from_slice(&v.to_be_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        buf.extend_from_slice(&2i32.to_be_bytes());
        buf.extend_from_slice(&r.quality.to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

fn quality_of(code: i64, what: &dyn fmt::Display) -> Result<SampleQuality, StoreError> {
    i16::try_from(code)
        .ok()
        .and_then(SampleQuality::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: quality code {code} is unknown")))
}

#[async_trait]
impl HistoryStore for Db {
    #[tracing::instrument(skip_all, fields(samples = samples.len()))]
    async fn append_samples(&self, samples: &[Sample]) -> Result<u64, StoreError> {
        if samples.is_empty() {
            return Ok(0);
        }
        let mut names: Vec<&TagName> = samples.iter().map(Sample::tag).collect();
        names.sort_unstable();
        names.dedup();
        let ids = self.tag_ids(&names).await?;
        let mut rows = Vec::with_capacity(samples.len());
        for s in samples {
            let tag_id = *ids.get(s.tag()).ok_or_else(|| {
                StoreError::Internal(format!("history tag {} has no id after interning", s.tag()))
            })?;
            rows.push(Row {
                tag_id,
                at_us: micros(s.at()),
                value: s.value(),
                quality: s.quality().code(),
            });
        }
        // Key order walks the index once; a repeated (tag, time) within the
        // batch keeps its first sample, as a replay across batches does.
        rows.sort_by_key(|r| (r.tag_id, r.at_us));
        rows.dedup_by_key(|r| (r.tag_id, r.at_us));
        match &self.history_state().pg {
            Some(pg) => self.append_postgres(pg, &rows).await,
            None => self.append_sqlite(&rows).await,
        }
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn samples(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Sample>, StoreError> {
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT at_us, value, CAST(quality AS BIGINT) AS quality FROM history_samples \
             WHERE tag_id = $1 AND at_us >= $2 AND at_us < $3 ORDER BY at_us LIMIT $4",
        )
        .bind(id)
        .bind(micros(from))
        .bind(micros(to))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(history_error(format!("reading history of {tag}")))?;
        rows.iter()
            .map(|row| {
                let what = format!("history sample of {tag}");
                let at_us: i64 = get(row, "at_us", &what)?;
                let value: Option<f64> = get(row, "value", &what)?;
                let quality = quality_of(get(row, "quality", &what)?, &what)?;
                let at = time_from_micros(at_us, &what)?;
                Ok(Sample::new(tag.clone(), at, value, quality))
            })
            .collect()
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn downsample(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let Some(width) = bucket_width_us(from, to, buckets) else {
            return Ok(Vec::new());
        };
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(Vec::new());
        };
        let (from_us, to_us) = (micros(from), micros(to));
        let rows = sqlx::query(
            "SELECT (at_us - $2) / $4 AS bucket, MIN(value) AS lo, MAX(value) AS hi, \
             AVG(value) AS mean, COUNT(*) AS n, CAST(MAX(quality) AS BIGINT) AS worst \
             FROM history_samples WHERE tag_id = $1 AND at_us >= $2 AND at_us < $3 \
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(id)
        .bind(from_us)
        .bind(to_us)
        .bind(width)
        .fetch_all(self.pool())
        .await
        .map_err(history_error(format!("downsampling history of {tag}")))?;
        rows.iter()
            .map(|row| {
                let what = format!("history bucket of {tag}");
                let i: i64 = get(row, "bucket", &what)?;
                let count: i64 = get(row, "n", &what)?;
                let start = from_us + i * width;
                Ok(Bucket {
                    start: time_from_micros(start, &what)?,
                    end: time_from_micros((start + width).min(to_us), &what)?,
                    min: get(row, "lo", &what)?,
                    max: get(row, "hi", &what)?,
                    mean: get(row, "mean", &what)?,
                    count: u64::try_from(count).unwrap_or_default(),
                    worst: quality_of(get(row, "worst", &what)?, &what)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn delete_samples_before(
        &self,
        tag: &TagName,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(0);
        };
        let done = sqlx::query("DELETE FROM history_samples WHERE tag_id = $1 AND at_us < $2")
            .bind(id)
            .bind(micros(before))
            .execute(self.pool())
            .await
            .map_err(history_error(format!("deleting old history of {tag}")))?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip(self))]
    async fn history_tags(&self) -> Result<Vec<TagName>, StoreError> {
        let rows = sqlx::query("SELECT name FROM history_tags ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(history_error("listing history tags"))?;
        rows.iter()
            .map(|row| {
                let name: String = get(row, "name", &"history_tags")?;
                TagName::parse(&name).map_err(|e| StoreError::Corrupt(format!("history_tags: {e}")))
            })
            .collect()
    }
}
