//! The historian's query routes, through the router with a real SQLite
//! store: a downsampled trend has at most the points asked for, each with
//! the statistics of its raw samples; gaps stay gaps; bad quality shows;
//! raw samples come oldest first; bad requests are refused by name.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{Fixture, check_error};
use remine_domain::ports::HistoryStore;
use remine_domain::{Sample, SampleQuality, TagName};
use serde_json::Value;
use std::sync::Arc;

const TAG: &str = "Mechanical/Shredder/O2";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An hour of a 1 s tag: value = second of the hour, minute 30 missing
/// (a gap), second 600 bad quality.
async fn fixture() -> Fixture {
    let mut f = Fixture::new().await;
    let tag = TagName::parse(TAG).unwrap();
    let samples: Vec<Sample> = (0..3600)
        .filter(|s| !(1800..1860).contains(s))
        .map(|s| {
            let (value, quality) = if s == 600 {
                (None, SampleQuality::BadCommunicationError)
            } else {
                (Some(s as f64), SampleQuality::Good)
            };
            Sample::new(tag.clone(), t0() + Duration::seconds(s), value, quality)
        })
        .collect();
    f.db.append_samples(&samples).await.unwrap();
    f.state.history = Some(f.db.clone() as Arc<dyn HistoryStore>);
    f
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[tokio::test]
async fn an_hour_downsampled_into_60_points_has_each_minutes_statistics() {
    let f = fixture().await;
    let uri = format!(
        "/api/v1/history/{TAG}?from={}&to={}&points=60",
        iso(t0()),
        iso(t0() + Duration::hours(1))
    );
    let (s, b) = f.call_as("vera", "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let buckets = b["buckets"].as_array().unwrap();
    assert_eq!(
        buckets.len(),
        59,
        "minute 30 has no samples: a gap, not a zero"
    );
    let minute = |m: i64| {
        let start = iso(t0() + Duration::minutes(m));
        buckets
            .iter()
            .find(|x| x["start"].as_str().unwrap().starts_with(&start[..19]))
            .unwrap_or_else(|| panic!("no bucket at {start}"))
    };
    let m2 = minute(2);
    assert_eq!(num(&m2["min"]), 120.0);
    assert_eq!(num(&m2["max"]), 179.0);
    assert_eq!(num(&m2["mean"]), 149.5);
    assert_eq!(m2["count"], 60);
    assert_eq!(m2["worst"], "good");
    let m10 = minute(10);
    assert_eq!(m10["worst"], "bad_communication_error");
    assert_eq!(m10["count"], 60, "the bad sample counts");
    assert_eq!(num(&m10["min"]), 601.0, "but has no value");
    assert!(
        buckets
            .iter()
            .all(|x| !x["start"].as_str().unwrap().starts_with("2026-03-01T00:30"))
    );
}

#[tokio::test]
async fn raw_samples_come_oldest_first_with_their_quality() {
    let f = fixture().await;
    let uri = format!(
        "/api/v1/history/{TAG}?from={}&to={}&raw=true&limit=5",
        iso(t0() + Duration::seconds(598)),
        iso(t0() + Duration::hours(1))
    );
    let (s, b) = f.call_as("vera", "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rows = b["samples"].as_array().unwrap();
    let values: Vec<Value> = rows.iter().map(|r| r["value"].clone()).collect();
    assert_eq!(
        values,
        [
            Value::from(598.0),
            Value::from(599.0),
            Value::Null,
            Value::from(601.0),
            Value::from(602.0)
        ]
    );
    assert_eq!(rows[2]["quality"], "bad_communication_error");
}

#[tokio::test]
async fn bad_history_requests_are_refused_naming_the_field() {
    let f = fixture().await;
    let (from, to) = (iso(t0()), iso(t0() + Duration::hours(1)));
    for (query, expected, fragment) in [
        (
            format!("from={to}&to={from}"),
            StatusCode::BAD_REQUEST,
            "must be after from",
        ),
        (
            format!("from=yesterday&to={to}"),
            StatusCode::BAD_REQUEST,
            "from 'yesterday' is not an RFC 3339 time",
        ),
        (
            format!("from={from}&to={to}&points=0"),
            StatusCode::BAD_REQUEST,
            "points must be at least 1",
        ),
        (
            format!("from={from}&to={to}&points=20000"),
            StatusCode::BAD_REQUEST,
            "points 20000 is more than the maximum 10000",
        ),
        (
            format!("from={from}&to={to}&raw=true&points=5"),
            StatusCode::BAD_REQUEST,
            "give limit= instead",
        ),
    ] {
        let uri = format!("/api/v1/history/{TAG}?{query}");
        let (s, b) = f.call_as("vera", "GET", &uri, None).await;
        check_error(s, &b, expected, fragment);
    }
    let (s, b) = f
        .call(
            "GET",
            &format!("/api/v1/history/{TAG}?from={from}&to={to}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
}

#[tokio::test]
async fn without_a_historian_the_route_says_so() {
    let f = Fixture::new().await;
    let uri = format!(
        "/api/v1/history/{TAG}?from={}&to={}",
        iso(t0()),
        iso(t0() + Duration::hours(1))
    );
    let (s, b) = f.call_as("vera", "GET", &uri, None).await;
    check_error(s, &b, StatusCode::SERVICE_UNAVAILABLE, "no historian");
}
