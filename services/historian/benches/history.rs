//! The historian's three figures, each beside its anchor in the same run.
//!
//! 1. **Ingest rate.** 10,000 tags x 50 instants (500,000 samples) offered
//!    in lots of 10,000 (each lot: every tag at one instant, the live
//!    shape, tags interleaved) to a `Historian` with its default
//!    configuration (policy, batches of 100,000 samples or 500 ms, the
//!    store's chunked write path), until `flush` returns, into a
//!    remine-store `Db` on SQLite (a file, WAL) and on PostgreSQL (a
//!    throwaway cluster). The tags have history already (one sample each a
//!    second earlier). Anchor: a bare sqlx batched insert of the same rows
//!    (tag ids already known) into a plain `(tag_id, at_us, value,
//!    quality)` table with that primary key in the same database, one
//!    transaction per lot of 10,000: SQLite 500-row `INSERT ... VALUES`
//!    statements (WAL, synchronous = NORMAL, the same 32 MiB page cache);
//!    PostgreSQL `INSERT ... SELECT * FROM UNNEST(...)`. Target: 500,000
//!    samples/s and at least 0.5 of the anchor. For comparison the same
//!    lots are also given straight to `HistoryStore::append_samples`, one
//!    call each (one sample per tag per call: the store's worst case).
//! 2. **CPU at 10,000 tags at 1 Hz** through the `Historian` (policy,
//!    batching, writes) into SQLite for a window (default 20 s): process
//!    CPU time (user + system, /proc/self/stat) per wall second, as a share
//!    of one core. Anchor: the bare batched insert of the same rows at the
//!    same rate. Target: under 25 % of one core.
//! 3. **Downsampled query.** 30 days of a 1 s tag (2,592,000 samples),
//!    written in appends of 128 samples (so its chunks are the size live
//!    data gets), into 1,000 buckets with `HistoryStore::downsample`, on
//!    both backends. Anchor: the old way, the same rows in a plain raw-row
//!    table of the same database and one `GROUP BY (at_us - from) / width`
//!    over them, typed into sqlx directly. Target: under 200 ms.
//!
//! Run: `cargo bench -p remine-historian --bench history` (optional
//! arguments: CPU window seconds (default 20), repeats (default 3)).
//! Without PostgreSQL its figures are skipped with a loud `SKIP:` line.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use remine_domain::ports::HistoryStore;
use remine_domain::{Sample, SampleQuality, TagName};
use remine_historian::{Historian, HistorianConfig};
use remine_store::Db;
use remine_testkit::TempPostgres;
use sqlx::{Executor, PgPool, SqlitePool};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TAGS: usize = 10_000;
const INSTANTS: usize = 50;
const QUERY_ROWS: i64 = 30 * 86_400;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

fn names(n: usize) -> Vec<TagName> {
    (0..n)
        .map(|i| TagName::parse(&format!("Line{}/Unit{}/T{i}", i % 7, i % 100)).unwrap())
        .collect()
}

/// Every tag at instant `k` (seconds after t0), values changing each time.
fn batch(tags: &[TagName], k: usize) -> Vec<Sample> {
    let at = t0() + chrono::TimeDelta::seconds(k as i64);
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            Sample::new(
                t.clone(),
                at,
                Some((i + k) as f64 * 0.25),
                SampleQuality::Good,
            )
        })
        .collect()
}

/// `(tag_id, at_us, value, quality)` rows of a batch, for the anchors:
/// tag ids 1..=TAGS in tag order.
fn rows(k: usize) -> Vec<(i32, i64, Option<f64>, i16)> {
    let at = (t0() + chrono::TimeDelta::seconds(k as i64)).timestamp_micros();
    (0..TAGS)
        .map(|i| (i as i32 + 1, at, Some((i + k) as f64 * 0.25), 0))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the state field.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

const SQLITE_ANCHOR_DDL: &str = "DROP TABLE IF EXISTS anchor_samples; \
    CREATE TABLE anchor_samples (tag_id INTEGER NOT NULL, at_us INTEGER NOT NULL, value REAL, \
    quality INTEGER NOT NULL, PRIMARY KEY (tag_id, at_us)) WITHOUT ROWID";
const PG_ANCHOR_DDL: &str = "DROP TABLE IF EXISTS anchor_samples; \
    CREATE TABLE anchor_samples (tag_id integer NOT NULL, at_us bigint NOT NULL, \
    value double precision, quality smallint NOT NULL, PRIMARY KEY (tag_id, at_us))";

fn sqlite_insert_sql(n: usize) -> String {
    let mut s = String::from("INSERT INTO anchor_samples (tag_id, at_us, value, quality) VALUES ");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str("(?,?,?,?)");
    }
    s
}

async fn sqlite_anchor_batch(pool: &SqlitePool, rows: &[(i32, i64, Option<f64>, i16)]) {
    let mut tx = pool.begin().await.unwrap();
    for chunk in rows.chunks(500) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_insert_sql(chunk.len())));
        for r in chunk {
            q = q.bind(r.0).bind(r.1).bind(r.2).bind(r.3);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn pg_anchor_batch(pool: &PgPool, rows: &[(i32, i64, Option<f64>, i16)]) {
    sqlx::query(
        "INSERT INTO anchor_samples (tag_id, at_us, value, quality) \
         SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::float8[], $4::smallint[])",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<Option<f64>>>())
    .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
    .execute(pool)
    .await
    .unwrap();
}

async fn sqlite_native(path: &std::path::Path) -> SqlitePool {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("cache_size", "-32768");
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

/// Our samples/s through the Historian, the anchor's, and the direct
/// `append_samples` figure (medians of `repeats`).
async fn ingest(
    label: &str,
    open: impl AsyncFn() -> (Db, Box<dyn AnchorSink>),
    repeats: usize,
) -> (f64, f64) {
    let tags = names(TAGS);
    let lots: Vec<Vec<Sample>> = (0..INSTANTS).map(|k| batch(&tags, k + 1)).collect();
    let anchor_rows: Vec<_> = (0..INSTANTS).map(|k| rows(k + 1)).collect();
    let total = (TAGS * INSTANTS) as f64;
    let (mut ours, mut bare, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (db, sink) = open().await;
        let spool = tempfile::tempdir().unwrap();
        // The tags have history already (and ids; the anchor knows its ids).
        db.append_samples(&batch(&tags, 0)).await.unwrap();
        let h = Historian::start(
            Arc::new(db.clone()),
            spool.path(),
            HistorianConfig::default(),
        )
        .unwrap();
        let t = Instant::now();
        for lot in &lots {
            h.record_samples(lot.clone()).await;
        }
        h.flush().await;
        ours.push(total / t.elapsed().as_secs_f64());
        let st = h.stats();
        assert_eq!((st.written, st.spooled), (total as u64, 0), "{st:?}");
        drop(h);

        sink.reset().await;
        let t = Instant::now();
        for r in &anchor_rows {
            sink.insert(r).await;
        }
        bare.push(total / t.elapsed().as_secs_f64());

        // The same lots straight into the store, a second later each.
        let later: Vec<Vec<Sample>> = (0..INSTANTS)
            .map(|k| batch(&tags, INSTANTS + 1 + k))
            .collect();
        let t = Instant::now();
        for lot in &later {
            db.append_samples(lot).await.unwrap();
        }
        direct.push(total / t.elapsed().as_secs_f64());
        db.close().await;
    }
    let (o, a, d) = (
        median(ours.clone()),
        median(bare.clone()),
        median(direct.clone()),
    );
    println!(
        "ingest {label}: {o:.0} samples/s through the Historian (runs {ours:.0?}); anchor bare sqlx {a:.0} samples/s (runs {bare:.0?}); ratio {:.2}; direct append_samples of each 10,000-sample lot {d:.0} samples/s (runs {direct:.0?})",
        o / a
    );
    (o, a)
}

#[async_trait::async_trait]
trait AnchorSink {
    async fn reset(&self);
    async fn insert(&self, rows: &[(i32, i64, Option<f64>, i16)]);
}

struct SqliteSink(SqlitePool);
struct PgSink(PgPool);

#[async_trait::async_trait]
impl AnchorSink for SqliteSink {
    async fn reset(&self) {
        self.0
            .execute(sqlx::raw_sql(SQLITE_ANCHOR_DDL))
            .await
            .unwrap();
    }
    async fn insert(&self, rows: &[(i32, i64, Option<f64>, i16)]) {
        sqlite_anchor_batch(&self.0, rows).await;
    }
}

#[async_trait::async_trait]
impl AnchorSink for PgSink {
    async fn reset(&self) {
        self.0.execute(sqlx::raw_sql(PG_ANCHOR_DDL)).await.unwrap();
    }
    async fn insert(&self, rows: &[(i32, i64, Option<f64>, i16)]) {
        pg_anchor_batch(&self.0, rows).await;
    }
}

/// CPU share of one core over `window` while 10,000 tags arrive at 1 Hz.
async fn cpu(window: Duration, repeats: usize) {
    let tags = names(TAGS);
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
        let h = Historian::start(
            Arc::new(db.clone()),
            &dir.path().join("spool"),
            HistorianConfig::default(),
        )
        .unwrap();
        let secs = window.as_secs() as usize;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (c0, w0) = (cpu_seconds(), Instant::now());
        for k in 0..secs {
            h.record_samples(batch(&tags, k)).await;
            tick.tick().await;
        }
        h.flush().await;
        ours.push((cpu_seconds() - c0) / w0.elapsed().as_secs_f64());
        assert_eq!(h.stats().written, (TAGS * secs) as u64);
        drop(h);
        db.close().await;

        let pool = sqlite_native(&dir.path().join("anchor.db")).await;
        pool.execute(sqlx::raw_sql(SQLITE_ANCHOR_DDL))
            .await
            .unwrap();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (c0, w0) = (cpu_seconds(), Instant::now());
        for k in 0..secs {
            sqlite_anchor_batch(&pool, &rows(k)).await;
            tick.tick().await;
        }
        bare.push((cpu_seconds() - c0) / w0.elapsed().as_secs_f64());
        pool.close().await;
    }
    let (o, a) = (median(ours.clone()), median(bare.clone()));
    println!(
        "cpu 10,000 tags at 1 Hz into SQLite through the Historian: {:.1} % of one core (runs {:.1?}); anchor bare sqlx insert at the same rate {:.1} % (runs {:.1?}); ratio {:.2}",
        o * 100.0,
        ours.iter().map(|x| x * 100.0).collect::<Vec<_>>(),
        a * 100.0,
        bare.iter().map(|x| x * 100.0).collect::<Vec<_>>(),
        o / a
    );
}

const BARE_QUERY: &str = "SELECT (at_us - $2) / $4 AS bucket, MIN(value) AS lo, MAX(value) AS hi, \
     AVG(value) AS mean, COUNT(*) AS n, MAX(quality) AS worst FROM anchor_samples \
     WHERE tag_id = $1 AND at_us >= $2 AND at_us < $3 GROUP BY bucket ORDER BY bucket";

/// Appends per query-tag write: the size of the chunks live data gets.
const QUERY_APPEND: i64 = 256;

fn query_sample(tag: &TagName, s: i64) -> Sample {
    let v = 60.0 + (s as f64 / 3600.0).sin() * 5.0 + (s % 17) as f64 * 0.01;
    let q = if s % 1000 == 7 {
        SampleQuality::BadTimeout
    } else {
        SampleQuality::Good
    };
    Sample::new(
        tag.clone(),
        t0() + chrono::TimeDelta::seconds(s),
        Some(v),
        q,
    )
}

/// Loads 30 days of a 1 s tag into the store and the same rows into the
/// anchor's raw table, then times `downsample` and the bare query.
async fn query(
    label: &str,
    db: &Db,
    sink: &dyn AnchorSink,
    after_load: impl AsyncFn(),
    bare: impl AsyncFn(i64, i64, i64, i64) -> usize,
) {
    let tag = TagName::parse("Hydro/Leach1/Temperature").unwrap();
    let mut k = 0;
    while k < QUERY_ROWS {
        let chunk: Vec<Sample> = (k..(k + QUERY_APPEND).min(QUERY_ROWS))
            .map(|s| query_sample(&tag, s))
            .collect();
        db.append_samples(&chunk).await.unwrap();
        k += QUERY_APPEND;
    }
    sink.reset().await;
    let mut k = 0;
    while k < QUERY_ROWS {
        let rows: Vec<(i32, i64, Option<f64>, i16)> = (k..(k + 10_000).min(QUERY_ROWS))
            .map(|s| {
                let x = query_sample(&tag, s);
                (1, x.at().timestamp_micros(), x.value(), x.quality().code())
            })
            .collect();
        sink.insert(&rows).await;
        k += 10_000;
    }
    after_load().await;
    let (from, to) = (t0(), t0() + chrono::TimeDelta::seconds(QUERY_ROWS));
    let width = remine_domain::bucket_width_us(from, to, 1000).unwrap();
    let (mut ours, mut anchor) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        let buckets = db.downsample(&tag, from, to, 1000).await.unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(buckets.len(), 1000);
        assert_eq!(
            buckets.iter().map(|b| b.count).sum::<u64>(),
            QUERY_ROWS as u64
        );
        let t = Instant::now();
        let n = bare(1, from.timestamp_micros(), to.timestamp_micros(), width).await;
        anchor.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, 1000);
    }
    let (o, a) = (median(ours.clone()), median(anchor.clone()));
    println!(
        "query {label}: 2,592,000 samples into 1,000 buckets in {o:.1} ms (runs {ours:.1?}); anchor bare GROUP BY over raw rows {a:.0} ms (runs {anchor:.0?}); ratio {:.3}",
        o / a
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let window = Duration::from_secs(args.first().and_then(|a| a.parse().ok()).unwrap_or(20));
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let skip_cpu = std::env::var("REMINE_BENCH_SKIP_CPU").is_ok();

    // 1. Ingest, SQLite.
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    ingest(
        "SQLite",
        async || {
            let sub = dir.path().join(format!(
                "run{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let db = Db::open_sqlite_dir(&sub).await.unwrap();
            let pool = sqlite_native(&sub.join("remine.db")).await;
            (db, Box::new(SqliteSink(pool)) as Box<dyn AnchorSink>)
        },
        repeats,
    )
    .await;

    // 1. Ingest, PostgreSQL.
    let pg = TempPostgres::start_for("the PostgreSQL figures of the history bench");
    if let Some(pg) = &pg {
        ingest(
            "PostgreSQL",
            async || {
                let url = pg.fresh_database().unwrap();
                let db = Db::open(&url).await.unwrap();
                let pool = PgPool::connect(&url).await.unwrap();
                (db, Box::new(PgSink(pool)) as Box<dyn AnchorSink>)
            },
            repeats,
        )
        .await;
    }

    // 3. Query, both backends.
    let qdir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_dir(qdir.path()).await.unwrap();
    let pool = sqlite_native(&qdir.path().join("remine.db")).await;
    let sink = SqliteSink(pool.clone());
    query(
        "SQLite",
        &db,
        &sink,
        async || {},
        async |id, f, t, w| {
            sqlx::query(BARE_QUERY)
                .bind(id)
                .bind(f)
                .bind(t)
                .bind(w)
                .fetch_all(&pool)
                .await
                .unwrap()
                .len()
        },
    )
    .await;
    db.close().await;
    if let Some(pg) = &pg {
        let url = pg.fresh_database().unwrap();
        let db = Db::open(&url).await.unwrap();
        let pool = PgPool::connect(&url).await.unwrap();
        let sink = PgSink(pool.clone());
        let analyze = async || {
            pool.execute("VACUUM ANALYZE history_chunks").await.unwrap();
            pool.execute("VACUUM ANALYZE anchor_samples").await.unwrap();
        };
        query("PostgreSQL", &db, &sink, analyze, async |id, f, t, w| {
            sqlx::query(BARE_QUERY)
                .bind(id as i32)
                .bind(f)
                .bind(t)
                .bind(w)
                .fetch_all(&pool)
                .await
                .unwrap()
                .len()
        })
        .await;
        db.close().await;
    }

    // 2. CPU.
    if !skip_cpu {
        cpu(window, repeats).await;
    }
}
