//! The alarm history: entries read back equal, queries filter by time,
//! alarm, area and priority (and above) and keep the newest; an operator's
//! action is appended with its audit entry or not at all.

use crate::fixtures::*;
use remine_domain::ports::{AlarmHappening, AlarmLog, AlarmQuery, AlarmRecord, AuditLog};
use remine_domain::{AlarmStatus, Priority, Username};
use remine_store::Db;

fn transition(secs: i64, alarm: &str, area: &str, p: Priority, to: AlarmStatus) -> AlarmRecord {
    AlarmRecord {
        at: at(secs),
        alarm: alarm.into(),
        area: area.into(),
        priority: Some(p),
        happening: AlarmHappening::Transition {
            from: AlarmStatus::Normal,
            to,
        },
        value: Some(3.1),
        by: None,
    }
}

async fn check(db: &Db, query: AlarmQuery, expected: &[i64]) {
    let got: Vec<i64> = db
        .alarm_history(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(got, expected, "{query:?}");
}

async fn entries_read_back_equal_and_filter(db: Db) {
    let shelved = AlarmRecord {
        by: Some((Username::parse("olga").unwrap(), "sensor, check".into())),
        ..transition(
            2,
            "MECH-O2-HI",
            "Mechanical",
            Priority::Critical,
            AlarmStatus::Shelved {
                until: Some(at(600)),
            },
        )
    };
    let flood = AlarmRecord {
        at: at(3),
        alarm: String::new(),
        area: "Discharge".into(),
        priority: None,
        happening: AlarmHappening::FloodStarted { count: 11 },
        value: None,
        by: None,
    };
    let records = [
        transition(
            1,
            "MECH-O2-HI",
            "Mechanical",
            Priority::Critical,
            AlarmStatus::Unacknowledged,
        ),
        shelved,
        flood,
        transition(
            4,
            "DIS-S1-CELL-HI",
            "Discharge",
            Priority::High,
            AlarmStatus::Unacknowledged,
        ),
        transition(
            5,
            "DIS-S1-OVERTEMP",
            "Discharge",
            Priority::Medium,
            AlarmStatus::Unacknowledged,
        ),
    ];
    for r in &records {
        db.append_alarm(r, None).await.unwrap();
    }
    let all = db
        .alarm_history(&AlarmQuery {
            limit: 100,
            ..AlarmQuery::default()
        })
        .await
        .unwrap();
    let back: Vec<AlarmRecord> = all.into_iter().map(|(_, r)| r).collect();
    assert_eq!(back, records);
    let q = |f: fn(&mut AlarmQuery)| {
        let mut q = AlarmQuery {
            limit: 100,
            ..AlarmQuery::default()
        };
        f(&mut q);
        q
    };
    check(&db, q(|q| q.from = Some(at(2))), &[2, 3, 4, 5]).await;
    check(&db, q(|q| q.to = Some(at(2))), &[1]).await;
    check(&db, q(|q| q.alarm = Some("MECH-O2-HI".into())), &[1, 2]).await;
    check(&db, q(|q| q.area = Some("Discharge".into())), &[3, 4, 5]).await;
    check(
        &db,
        q(|q| q.min_priority = Some(Priority::High)),
        &[1, 2, 4],
    )
    .await;
    check(&db, q(|q| q.limit = 2), &[4, 5]).await;
}

async fn an_operator_action_is_appended_with_its_audit_entry(db: Db) {
    let r = AlarmRecord {
        by: Some((Username::parse("olga").unwrap(), "seen".into())),
        ..transition(1, "A", "M", Priority::Low, AlarmStatus::Acknowledged)
    };
    db.append_alarm(&r, Some(event("alarm.acknowledge", "A")))
        .await
        .unwrap();
    let audit = db.entries(0, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.action, "alarm.acknowledge");
    // A process transition is not audited.
    db.append_alarm(
        &transition(2, "A", "M", Priority::Low, AlarmStatus::Normal),
        None,
    )
    .await
    .unwrap();
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 1);
}

on_both_backends!(
    entries_read_back_equal_and_filter,
    an_operator_action_is_appended_with_its_audit_entry
);
