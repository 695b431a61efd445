//! The historian's storage: samples round-trip with their quality, a
//! replayed batch changes nothing, the database's buckets match buckets
//! computed here, and retention deletes only the named tag's older samples.

use chrono::{DateTime, Utc};
use remine_domain::ports::HistoryStore;
use remine_domain::{Bucket, Sample, SampleQuality, TagName, bucket_width_us};
use remine_store::Db;

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

on_both_backends!(
    samples_round_trip_with_their_quality_in_time_order,
    a_replayed_batch_stores_nothing_twice_and_the_first_write_wins,
    the_databases_buckets_match_buckets_computed_here,
    retention_deletes_only_the_older_samples_of_that_tag,
);
