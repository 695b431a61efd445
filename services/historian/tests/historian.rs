//! The historian's specification against real stores: SQLite files and a
//! throwaway PostgreSQL cluster that is stopped in the middle of ingest.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{HistoryStore, TagError, TagIo};
use remine_domain::{
    HistoryPolicy, Quality, Sample, SampleQuality, TagInfo, TagName, TagReading, TagValue,
};
use remine_historian::{Historian, HistorianConfig, spawn_poller};
use remine_store::Db;
use remine_testkit::{StopMode, TempPostgres};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn tag(s: &str) -> TagName {
    TagName::parse(s).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
}

fn good(name: &str, ms: i64, v: f64) -> Sample {
    Sample::new(tag(name), at(ms), Some(v), SampleQuality::Good)
}

fn quick() -> HistorianConfig {
    // The samples here are from 2023: a retention of 20 years keeps the
    // retention task (it runs at start) from deleting them mid-test.
    let twenty_years = Duration::from_secs(20 * 366 * 86_400);
    HistorianConfig {
        default_policy: HistoryPolicy::new(0.0, Duration::from_secs(60), twenty_years).unwrap(),
        batch_size: 1000,
        batch_interval: Duration::from_millis(50),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        // Shorter than the outage below, so writes during it fail and
        // spool even when the pool would wait for the database to return.
        write_timeout: Duration::from_millis(300),
        ..HistorianConfig::default()
    }
}

async fn all(db: &Db, name: &str) -> Vec<Sample> {
    db.samples(&tag(name), at(-1_000_000_000), at(1_000_000_000), u32::MAX)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_samples_reach_the_store_by_each_tags_policy() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    let day = Duration::from_secs(86_400);
    let coarse = HistoryPolicy::new(5.0, Duration::from_secs(10), day).unwrap();
    let config = HistorianConfig {
        policies: HashMap::from([(tag("L/U/Coarse"), coarse)]),
        ..quick()
    };
    let h = Historian::start(Arc::new(db.clone()), &dir.path().join("spool"), config).unwrap();
    let mut batch = Vec::new();
    for s in 0..30 {
        batch.push(good("L/U/Fine", s * 1000, s as f64 * 0.1));
        batch.push(good("L/U/Coarse", s * 1000, s as f64 * 0.1));
    }
    h.record_samples(batch).await;
    h.flush().await;
    assert_eq!(
        all(&db, "L/U/Fine").await.len(),
        30,
        "deadband 0 keeps every change"
    );
    let coarse: Vec<i64> = all(&db, "L/U/Coarse")
        .await
        .iter()
        .map(|s| (s.at() - at(0)).num_seconds())
        .collect();
    assert_eq!(
        coarse,
        vec![0, 10, 20],
        "only the 10 s maximum interval keeps these"
    );
    let st = h.stats();
    assert_eq!(
        (st.received, st.kept, st.written, st.spooled),
        (60, 33, 33, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_crash_is_written_on_start_and_its_torn_tail_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    // The database is away: every batch goes to the spool.
    let closed = Db::open_sqlite_dir(dir.path()).await.unwrap();
    closed.close().await;
    {
        let h = Historian::start(Arc::new(closed), &spool, quick()).unwrap();
        for b in 0..5 {
            h.record_samples(
                (0..100)
                    .map(|i| good("L/U/A", b * 100_000 + i * 1000, i as f64))
                    .collect(),
            )
            .await;
            h.flush().await;
        }
        let st = h.stats();
        assert_eq!((st.spooled, st.written), (500, 0));
        assert!(st.spool_bytes > 0 && st.last_error.is_some(), "{st:?}");
    }
    // The crash cut the last write short.
    let segment = std::fs::read_dir(&spool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&segment, bytes).unwrap();

    let h = Historian::start(Arc::new(db.clone()), &spool, quick()).unwrap();
    assert!(h.wait_drained(Duration::from_secs(10)).await);
    let stored = all(&db, "L/U/A").await;
    assert_eq!(stored.len(), 500);
    let st = h.stats();
    assert_eq!(
        (st.written, st.damaged_records, st.spool_bytes),
        (500, 1, 0)
    );
    assert!(st.last_error.unwrap().contains("torn record"));
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "drained segments are deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_each_tags_samples_older_than_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    let hour = Duration::from_secs(3600);
    let short = HistoryPolicy::new(0.0, hour, hour).unwrap();
    let config = HistorianConfig {
        policies: HashMap::from([(tag("L/U/Short"), short)]),
        ..quick()
    };
    let h = Historian::start(Arc::new(db.clone()), &dir.path().join("spool"), config).unwrap();
    let now = Utc::now();
    let mut batch = Vec::new();
    for hours_ago in [50, 3, 2, 0] {
        let t = now - chrono::TimeDelta::hours(hours_ago) - chrono::TimeDelta::minutes(1);
        for name in ["L/U/Short", "L/U/Long"] {
            batch.push(Sample::new(
                tag(name),
                t,
                Some(hours_ago as f64),
                SampleQuality::Good,
            ));
        }
    }
    h.record_samples(batch).await;
    h.flush().await;
    assert_eq!(h.run_retention().await.unwrap(), 3);
    let short: Vec<f64> = all_since(&db, "L/U/Short").await;
    let long: Vec<f64> = all_since(&db, "L/U/Long").await;
    assert_eq!(short, vec![0.0], "an hour of retention keeps the last hour");
    assert_eq!(long, vec![50.0, 3.0, 2.0, 0.0], "the default keeps a year");
}

async fn all_since(db: &Db, name: &str) -> Vec<f64> {
    let from = Utc::now() - chrono::TimeDelta::days(10);
    db.samples(&tag(name), from, Utc::now(), 100)
        .await
        .unwrap()
        .iter()
        .filter_map(Sample::value)
        .collect()
}

/// A device whose every tag reads the number of reads so far.
#[derive(Debug, Default)]
struct Counting {
    reads: AtomicU64,
}

#[async_trait]
impl TagIo for Counting {
    fn catalogue(&self) -> Vec<TagInfo> {
        Vec::new()
    }

    async fn read(&self, tags: &[TagName]) -> Vec<TagReading> {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        tags.iter()
            .map(|t| TagReading {
                tag: t.clone(),
                value: Some(TagValue::Int(n as i64)),
                quality: Quality::Good,
                source_time: Some(now),
                server_time: now,
            })
            .collect()
    }

    async fn write(&self, tag: &TagName, _: TagValue) -> Result<(), TagError> {
        Err(TagError::ReadOnly(tag.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_feeds_the_historian_from_a_tag_io() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    let h = Historian::start(Arc::new(db.clone()), &dir.path().join("spool"), quick()).unwrap();
    let io = Arc::new(Counting::default());
    let poller = spawn_poller(
        h.clone(),
        io.clone(),
        vec![tag("L/U/A"), tag("L/U/B")],
        Duration::from_millis(10),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    poller.abort();
    h.flush().await;
    let reads = io.reads.load(Ordering::Relaxed) as usize;
    let a = db
        .samples(
            &tag("L/U/A"),
            Utc::now() - chrono::TimeDelta::minutes(1),
            Utc::now(),
            10_000,
        )
        .await
        .unwrap();
    assert!(reads >= 10, "{reads} reads");
    assert!(
        a.len() + 1 >= reads && a.len() <= reads,
        "{} samples of {reads} reads",
        a.len()
    );
}

/// Every sample sent while PostgreSQL is stopped and started again is
/// stored, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_during_ingest_loses_no_sample() {
    let Some(pg) = TempPostgres::start_for("a_postgresql_restart_during_ingest_loses_no_sample")
    else {
        return;
    };
    let pg = Arc::new(pg);
    let url = pg.fresh_database().unwrap();
    let db = Db::open(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = Historian::start(Arc::new(db.clone()), &dir.path().join("spool"), quick()).unwrap();
    const TAGS: i64 = 50;
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (h, sent) = (h.clone(), sent.clone());
        tokio::spawn(async move {
            let mut step = 0i64;
            loop {
                let batch: Vec<Sample> = (0..TAGS)
                    .map(|t| good(&format!("L/U/T{t}"), step * 10, step as f64))
                    .collect();
                h.record_samples(batch).await;
                sent.fetch_add(TAGS as u64, Ordering::Relaxed);
                step += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopper = pg.clone();
    tokio::task::spawn_blocking(move || stopper.stop(StopMode::Immediate))
        .await
        .unwrap()
        .unwrap();
    let sent_at_stop = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let starter = pg.clone();
    tokio::task::spawn_blocking(move || starter.start_again())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    producer.abort();
    let _ = producer.await;
    h.flush().await;
    assert!(
        h.wait_drained(Duration::from_secs(60)).await,
        "{:?}",
        h.stats()
    );
    let total = sent.load(Ordering::Relaxed);
    let st = h.stats();
    assert!(st.spooled > 0, "the outage spooled samples: {st:?}");
    assert!(total > sent_at_stop, "ingest went on during the outage");
    let mut stored = 0u64;
    for t in 0..TAGS {
        let got = all(&db, &format!("L/U/T{t}")).await;
        let steps: Vec<i64> = got
            .iter()
            .map(|s| (s.at() - at(0)).num_milliseconds() / 10)
            .collect();
        let want: Vec<i64> = (0..steps.len() as i64).collect();
        assert_eq!(steps, want, "tag T{t}: every step once, none missing");
        stored += got.len() as u64;
    }
    assert_eq!(
        stored, total,
        "every sample sent is stored exactly once: {st:?}"
    );
    assert_eq!(st.written, total);
    println!(
        "restart: {total} samples sent, {} spooled during the outage, all stored once",
        st.spooled
    );
    db.close().await;
}
