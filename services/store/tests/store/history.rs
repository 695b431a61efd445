//! The historian's storage: samples round-trip with their quality, a
//! replayed batch changes nothing, the database's buckets match buckets
//! computed here from the raw samples however the samples were written
//! (live, in bulk, replayed, backfilled, cut by retention, across chunk
//! edges and gaps), retention deletes only the named tag's older samples,
//! and samples stored before the move to chunks (migration 0006) survive it.

use crate::harness::Raw;
use chrono::{DateTime, Utc};
use remine_domain::ports::HistoryStore;
use remine_domain::{Bucket, Sample, SampleQuality, TagName, bucket_width_us};
use remine_store::Db;
use std::collections::BTreeMap;

fn tag(s: &str) -> TagName {
    TagName::parse(s).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
}

/// A tag's series: one sample a second, a wavy value, every 7th bad and
/// every 11th uncertain.
fn series(name: &str, seconds: i64) -> Vec<Sample> {
    (0..seconds)
        .map(|i| {
            let q = if i % 7 == 3 {
                SampleQuality::BadNotConnected
            } else if i % 11 == 5 {
                SampleQuality::Uncertain
            } else {
                SampleQuality::Good
            };
            Sample::new(
                tag(name),
                at(i * 1000),
                Some((i as f64 * 0.37).sin() * 10.0 + i as f64 / 100.0),
                q,
            )
        })
        .collect()
}

/// The buckets computed here, as the store must compute them.
fn expected_buckets(
    samples: &[Sample],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: u32,
) -> Vec<Bucket> {
    let width = bucket_width_us(from, to, n).unwrap();
    let (f, t) = (from.timestamp_micros(), to.timestamp_micros());
    let mut out: Vec<(Bucket, f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.at() >= from && s.at() < to) {
        let i = (s.at().timestamp_micros() - f) / width;
        let start = DateTime::from_timestamp_micros(f + i * width).unwrap();
        if out.last().is_none_or(|(b, _, _)| b.start != start) {
            let end = DateTime::from_timestamp_micros((f + (i + 1) * width).min(t)).unwrap();
            let empty = Bucket {
                start,
                end,
                min: None,
                max: None,
                mean: None,
                count: 0,
                worst: SampleQuality::Good,
            };
            out.push((empty, 0.0, 0.0));
        }
        let (b, sum, valued) = out.last_mut().unwrap();
        b.count += 1;
        b.worst = b.worst.max(s.quality());
        if let Some(v) = s.value() {
            b.min = Some(b.min.map_or(v, |m| m.min(v)));
            b.max = Some(b.max.map_or(v, |m| m.max(v)));
            *sum += v;
            *valued += 1.0;
            b.mean = Some(*sum / *valued);
        }
    }
    out.into_iter().map(|(b, _, _)| b).collect()
}

async fn check_buckets(
    db: &Db,
    samples: &[Sample],
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: u32,
) {
    let want = expected_buckets(samples, from, to, n);
    let got = db.downsample(&tag(name), from, to, n).await.unwrap();
    assert!(got.len() <= n as usize);
    assert_eq!(got.len(), want.len(), "bucket count for {n} buckets");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (g.start, g.end, g.count, g.worst, g.min, g.max),
            (w.start, w.end, w.count, w.worst, w.min, w.max)
        );
        match (g.mean, w.mean) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "mean {a} vs {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }
}

async fn samples_round_trip_with_their_quality_in_time_order(db: Db) {
    let a = series("L/U/A", 100);
    let b = series("L/U/B", 10);
    let mut mixed: Vec<Sample> = a.iter().chain(&b).cloned().collect();
    mixed.reverse();
    assert_eq!(db.append_samples(&mixed).await.unwrap(), 110);
    let got = db
        .samples(&tag("L/U/A"), at(0), at(1_000_000), 1000)
        .await
        .unwrap();
    assert_eq!(got, a, "bad samples come back without a value");
    assert_eq!(got[3].value(), None);
    let window = db
        .samples(&tag("L/U/A"), at(10_000), at(20_000), 1000)
        .await
        .unwrap();
    assert_eq!(window, a[10..20], "the range is half-open");
    let limited = db
        .samples(&tag("L/U/A"), at(0), at(1_000_000), 5)
        .await
        .unwrap();
    assert_eq!(limited, a[..5]);
    assert!(
        db.samples(&tag("L/U/None"), at(0), at(1), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.history_tags().await.unwrap(),
        vec![tag("L/U/A"), tag("L/U/B")]
    );
}

async fn a_replayed_batch_stores_nothing_twice_and_the_first_write_wins(db: Db) {
    let a = series("L/U/A", 50);
    assert_eq!(db.append_samples(&a).await.unwrap(), 50);
    assert_eq!(db.append_samples(&a).await.unwrap(), 0);
    let mut more = series("L/U/A", 60);
    more[0] = Sample::new(tag("L/U/A"), at(0), Some(999.0), SampleQuality::Good);
    assert_eq!(db.append_samples(&more).await.unwrap(), 10);
    let got = db
        .samples(&tag("L/U/A"), at(0), at(1_000_000), 1000)
        .await
        .unwrap();
    assert_eq!(got.len(), 60);
    assert_eq!(got[0], a[0], "the stored sample is kept");
    let twice = vec![
        a[0].clone(),
        Sample::new(tag("L/U/C"), at(5), Some(1.0), SampleQuality::Good),
        Sample::new(tag("L/U/C"), at(5), Some(2.0), SampleQuality::Good),
    ];
    assert_eq!(
        db.append_samples(&twice).await.unwrap(),
        1,
        "a repeat within one batch keeps its first"
    );
    assert_eq!(
        db.samples(&tag("L/U/C"), at(0), at(10), 10).await.unwrap()[0].value(),
        Some(1.0)
    );
}

async fn the_databases_buckets_match_buckets_computed_here(db: Db) {
    let a = series("L/U/A", 1000);
    db.append_samples(&a).await.unwrap();
    db.append_samples(&series("L/U/B", 1000)).await.unwrap();
    for n in [1, 7, 10, 100, 999, 1000, 5000] {
        check_buckets(&db, &a, "L/U/A", at(0), at(1_000_000), n).await;
    }
    check_buckets(&db, &a, "L/U/A", at(123_456), at(654_321), 13).await;
    check_buckets(&db, &a, "L/U/A", at(-50_000), at(20_000), 3).await;
    let bad_only: Vec<Sample> = (0..5)
        .map(|i| {
            Sample::new(
                tag("L/U/Bad"),
                at(i * 1000),
                None,
                SampleQuality::BadTimeout,
            )
        })
        .collect();
    db.append_samples(&bad_only).await.unwrap();
    let b = db
        .downsample(&tag("L/U/Bad"), at(0), at(5000), 1)
        .await
        .unwrap();
    assert_eq!(
        (b[0].count, b[0].min, b[0].mean, b[0].worst),
        (5, None, None, SampleQuality::BadTimeout)
    );
    assert!(
        db.downsample(&tag("L/U/A"), at(10), at(10), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.downsample(&tag("L/U/A"), at(0), at(10), 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retention_deletes_only_the_older_samples_of_that_tag(db: Db) {
    db.append_samples(&series("L/U/A", 100)).await.unwrap();
    db.append_samples(&series("L/U/B", 100)).await.unwrap();
    assert_eq!(
        db.delete_samples_before(&tag("L/U/A"), at(40_000))
            .await
            .unwrap(),
        40
    );
    let a = db
        .samples(&tag("L/U/A"), at(0), at(1_000_000), 1000)
        .await
        .unwrap();
    assert_eq!((a.len(), a[0].at()), (60, at(40_000)));
    assert_eq!(
        db.samples(&tag("L/U/B"), at(0), at(1_000_000), 1000)
            .await
            .unwrap()
            .len(),
        100
    );
    assert_eq!(
        db.delete_samples_before(&tag("L/U/Z"), at(40_000))
            .await
            .unwrap(),
        0
    );
}

/// One tag's samples as the store must hold them: the first sample
/// written at each time.
#[derive(Default)]
struct Model(BTreeMap<DateTime<Utc>, Sample>);

impl Model {
    /// Writes `batch` to the store and the model; checks the store's count
    /// of new samples against the model's.
    async fn write(&mut self, db: &Db, batch: &[Sample]) {
        let mut new = 0;
        for s in batch {
            if let std::collections::btree_map::Entry::Vacant(e) = self.0.entry(s.at()) {
                e.insert(s.clone());
                new += 1;
            }
        }
        assert_eq!(db.append_samples(batch).await.unwrap(), new, "new samples");
    }

    fn samples(&self) -> Vec<Sample> {
        self.0.values().cloned().collect()
    }
}

/// The sample of second `i` of the busy tag: a wavy value, every 13th bad,
/// every 29th uncertain, and one with a value but not finite (kept
/// without one).
fn busy(i: i64) -> Sample {
    let q = if i % 13 == 4 {
        SampleQuality::BadCommunicationError
    } else if i % 29 == 8 {
        SampleQuality::Uncertain
    } else {
        SampleQuality::Good
    };
    let v = if i == 77 {
        f64::INFINITY
    } else {
        (i as f64 * 0.21).cos() * 7.0 + (i % 5) as f64
    };
    Sample::new(tag("L/U/Busy"), at(i * 1000), Some(v), q)
}

fn busy_range(r: std::ops::Range<i64>) -> Vec<Sample> {
    r.map(busy).collect()
}

/// Checks, for many bucket counts and ranges, that the store's buckets are
/// those computed from the model, and that the raw samples are the model's.
async fn check_against(db: &Db, model: &Model) {
    let raw = model.samples();
    let stored = db
        .samples(&tag("L/U/Busy"), at(-10_000_000), at(10_000_000), u32::MAX)
        .await
        .unwrap();
    assert_eq!(stored, raw, "raw samples");
    let limited = db
        .samples(&tag("L/U/Busy"), at(1_500), at(10_000_000), 300)
        .await
        .unwrap();
    let want: Vec<Sample> = raw
        .iter()
        .filter(|s| s.at() >= at(1_500))
        .take(300)
        .cloned()
        .collect();
    assert_eq!(limited, want, "oldest first, at most the limit");
    for n in [1, 2, 3, 7, 10, 64, 100, 333, 1000, 4000] {
        check_buckets(db, &raw, "L/U/Busy", at(-400_000), at(9_000_000), n).await;
    }
    for (from, to, n) in [
        (-5_000, 300_500, 9),
        (1_234, 2_345_678, 17),
        (600_000, 700_000, 1000),
        (999_999, 1_000_001, 1),
        (2_000_000, 2_000_500, 3),
        (3_500_000, 3_999_999, 50),
    ] {
        check_buckets(db, &raw, "L/U/Busy", at(from), at(to), n).await;
    }
}

async fn downsample_statistics_equal_those_of_the_raw_samples_however_they_were_written(db: Db) {
    let mut m = Model::default();
    // Live: a few samples per write, so runs of small chunks form and merge.
    for i in 0..600 {
        let k = i % 3 + 1;
        m.write(&db, &busy_range(i * 3..i * 3 + k)).await;
    }
    check_against(&db, &m).await;
    // In bulk, more than a chunk holds, after a gap of a quarter hour.
    m.write(&db, &busy_range(2_700..6_000)).await;
    // A replayed batch, and one that half overlaps what is stored.
    m.write(&db, &busy_range(2_700..6_000)).await;
    m.write(&db, &busy_range(5_500..6_500)).await;
    check_against(&db, &m).await;
    // A backfill into the live stretch's holes and before everything,
    // with other values at the times stored already (the first write wins).
    let mut backfill: Vec<Sample> = (-300..1_800).filter(|i| i % 3 == 2).map(busy).collect();
    backfill.extend((100..110).map(|i| {
        Sample::new(
            tag("L/U/Busy"),
            at(i * 1000),
            Some(-99.0),
            SampleQuality::Good,
        )
    }));
    m.write(&db, &backfill).await;
    check_against(&db, &m).await;
    // Far later, live again; then retention cuts through a chunk.
    for i in 0..40 {
        m.write(&db, &busy_range(8_000 + i * 2..8_000 + i * 2 + 2))
            .await;
    }
    let cut = at(1_000_500);
    let gone = m.0.keys().filter(|t| **t < cut).count() as u64;
    assert_eq!(
        db.delete_samples_before(&tag("L/U/Busy"), cut)
            .await
            .unwrap(),
        gone
    );
    m.0.retain(|t, _| *t >= cut);
    check_against(&db, &m).await;
    // Writing after retention still finds every stored sample.
    m.write(&db, &busy_range(990..1_200)).await;
    m.write(&db, &busy_range(6_400..6_700)).await;
    check_against(&db, &m).await;
}

async fn two_stores_writing_one_database_store_nothing_twice(db: Db, raw: Raw) {
    // A second handle on the same database: each caches its tags' last
    // chunks, and must notice the other's writes.
    let other = Db::open(&raw.url).await.unwrap();
    let mut m = Model::default();
    for i in 0..50 {
        m.write(&db, &busy_range(i * 4..i * 4 + 2)).await;
        let with_repeat = busy_range(i * 4..i * 4 + 4);
        let mut n = 0;
        for s in &with_repeat {
            if let std::collections::btree_map::Entry::Vacant(e) = m.0.entry(s.at()) {
                e.insert(s.clone());
                n += 1;
            }
        }
        assert_eq!(other.append_samples(&with_repeat).await.unwrap(), n);
    }
    check_against(&db, &m).await;
    check_against(&other, &m).await;
    other.close().await;
}

on_both_backends!(raw: two_stores_writing_one_database_store_nothing_twice);

/// Applies migrations 0001 to 0005 only (as a store of the version before
/// chunks had them) to the database at `url`, with two samples in the old
/// `history_samples` table, then opens it as a store.
async fn store_of_0005_with_samples(url: &str) -> Db {
    use sqlx::{AnyConnection, Connection};
    let dialect = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let old = tempfile::tempdir().unwrap();
    for v in [
        "0001_initial",
        "0002_recipes",
        "0003_accounting",
        "0004_alarms",
        "0005_history",
    ] {
        let name = format!("{v}.sql");
        std::fs::copy(source.join(&name), old.path().join(&name)).unwrap();
    }
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO history_tags (id, name) VALUES (1, 'L/U/Old'); \
         INSERT INTO history_samples (tag_id, at_us, value, quality) VALUES \
         (1, 1700000000000000, 2.5, 0), (1, 1700000001000000, NULL, 6), (1, 1700000002000000, 4.5, 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    Db::open(url).await.unwrap()
}

async fn samples_of_0005_survive_the_move_to_chunks(db: Db) {
    let old = vec![
        Sample::new(tag("L/U/Old"), at(0), Some(2.5), SampleQuality::Good),
        Sample::new(
            tag("L/U/Old"),
            at(1000),
            None,
            SampleQuality::BadCommunicationError,
        ),
        Sample::new(
            tag("L/U/Old"),
            at(2000),
            Some(4.5),
            SampleQuality::Uncertain,
        ),
    ];
    assert_eq!(db.history_tags().await.unwrap(), vec![tag("L/U/Old")]);
    assert_eq!(
        db.samples(&tag("L/U/Old"), at(0), at(10_000), 10)
            .await
            .unwrap(),
        old
    );
    check_buckets(&db, &old, "L/U/Old", at(0), at(3000), 2).await;
    // Replays of moved samples store nothing; later ones join them.
    assert_eq!(db.append_samples(&old).await.unwrap(), 0);
    let later = Sample::new(tag("L/U/Old"), at(3000), Some(1.0), SampleQuality::Good);
    assert_eq!(
        db.append_samples(std::slice::from_ref(&later))
            .await
            .unwrap(),
        1
    );
    let mut all = old.clone();
    all.push(later);
    check_buckets(&db, &all, "L/U/Old", at(0), at(4000), 3).await;
    assert_eq!(
        db.delete_samples_before(&tag("L/U/Old"), at(1000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.samples(&tag("L/U/Old"), at(0), at(10_000), 10)
            .await
            .unwrap(),
        all[1..]
    );
}

mod samples_of_0005_survive_the_move_to_chunks {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let dir = remine_testkit::temp_dir().unwrap();
        let file = dir.path().join("old.db");
        std::fs::File::create(&file).unwrap();
        let url = format!("sqlite://{}", file.display());
        let db = super::store_of_0005_with_samples(&url).await;
        super::samples_of_0005_survive_the_move_to_chunks(db.clone()).await;
        db.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let name = concat!(module_path!(), "::postgres");
        let url = tokio::task::spawn_blocking(move || {
            remine_testkit::TempPostgres::shared(name).map(|pg| pg.fresh_database().unwrap())
        })
        .await
        .unwrap();
        if let Some(url) = url {
            let db = super::store_of_0005_with_samples(&url).await;
            super::samples_of_0005_survive_the_move_to_chunks(db.clone()).await;
            db.close().await;
        }
    }
}

on_both_backends!(
    samples_round_trip_with_their_quality_in_time_order,
    a_replayed_batch_stores_nothing_twice_and_the_first_write_wins,
    the_databases_buckets_match_buckets_computed_here,
    retention_deletes_only_the_older_samples_of_that_tag,
    downsample_statistics_equal_those_of_the_raw_samples_however_they_were_written,
);
