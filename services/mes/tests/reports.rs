//! Reports filed by schedule through the outbox, on a generated plant year
//! in a real SQLite store: the final report of the year and the monthly
//! provisional one are saved with their deliveries queued in one
//! transaction (audited); filing again files nothing twice; a year without
//! data files nothing.

#![allow(clippy::unwrap_used)]

use chrono::{Datelike, TimeZone, Utc};
use remine_domain::outbox::{ConnectorName, DocumentId, StateName};
use remine_domain::ports::Store;
use remine_mes::{ReportSchedule, Reports};
use remine_reporting::FacilityConfig;
use remine_synth::{SynthConfig, generate};
use std::sync::Arc;

const FACILITY: &str = include_str!("../../remine/demo/facility.toml");

/// A generated plant year of 120 units in a fresh SQLite store: the store,
/// the year's calendar year, and the demo's facility configuration.
async fn plant_year() -> (tempfile::TempDir, Arc<dyn Store>, i32, FacilityConfig) {
    let dir = tempfile::tempdir().unwrap();
    let db = remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap();
    let year = generate(&SynthConfig::new(120, 4).unwrap()).unwrap();
    year.write_store(&db, |_, _| {}).await.unwrap();
    let reported = year.lots()[0].created_at().year();
    let facility = FacilityConfig::from_toml(FACILITY, "facility.toml").unwrap();
    (dir, Arc::new(db), reported, facility)
}

#[tokio::test]
async fn the_schedule_files_each_due_report_once_and_queues_it_for_every_target() {
    let (_dir, store, reported, facility) = plant_year().await;
    let reports = Reports::new(store.clone());
    let targets = [
        ConnectorName::parse("catenax").unwrap(),
        ConnectorName::parse("platform").unwrap(),
    ];
    // 5 March of the next year: the final report of the generated year is
    // due; the provisional one of the new year (February) has no data.
    let now = Utc.with_ymd_and_hms(reported + 1, 3, 5, 6, 0, 0).unwrap();
    let filed = reports
        .file_due(now, &ReportSchedule::default(), &facility, &targets)
        .await
        .unwrap();
    let final_id = DocumentId::parse(&format!("recovery-{reported}-final")).unwrap();
    assert_eq!(filed, std::slice::from_ref(&final_id));
    let doc = store.document(&final_id).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(doc.content().as_bytes()).unwrap();
    assert_eq!(json["calendarYear"], reported);
    assert_eq!(json["status"], "final");
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(counts.get(StateName::Pending), 2, "one delivery per target");
    let audit = store.entries(0, 100_000).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.event.action == "report.file" && e.event.target == final_id.as_str()),
        "the filing is audited"
    );

    // An hour later nothing new is due.
    let again = reports
        .file_due(
            now + chrono::Duration::hours(1),
            &ReportSchedule::default(),
            &facility,
            &targets,
        )
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(store.delivery_counts().await.unwrap().total(), 2);
}

#[tokio::test]
async fn during_the_year_the_last_month_is_filed_as_a_provisional_report() {
    let (_dir, store, reported, facility) = plant_year().await;
    let schedule = ReportSchedule {
        monthly_provisional: true,
        final_from: (6, 30),
    };
    let now = Utc.with_ymd_and_hms(reported, 12, 2, 6, 0, 0).unwrap();
    let filed = Reports::new(store.clone())
        .file_due(
            now,
            &schedule,
            &facility,
            &[ConnectorName::parse("catenax").unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        filed,
        [DocumentId::parse(&format!("recovery-{reported}-provisional-11")).unwrap()]
    );
    let doc = store.document(&filed[0]).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(doc.content().as_bytes()).unwrap();
    assert_eq!(json["status"], "provisional");
}
