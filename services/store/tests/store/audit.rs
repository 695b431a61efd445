//! The audit trail: one entry per write, exact read-back, verification and
//! tampering, concurrent appends.

use crate::fixtures::*;
use crate::harness::Raw;
use remine_domain::ports::{AuditLog, LotStore, UserStore};
use remine_domain::{AuditEntry, AuditEvent, ChainBreak, LotKind, Role};
use remine_store::{AuditVerification, Db};

/// Appends `n` events `test.append` with targets `T1`..`Tn`.
async fn append_n(db: &Db, n: usize) -> Vec<AuditEntry> {
    let mut out = vec![];
    for i in 1..=n {
        out.push(
            db.append(event("test.append", &format!("T{i}")))
                .await
                .unwrap(),
        );
    }
    out
}

fn check_broken(found: AuditVerification, seq: i64, why_contains: &str) {
    match found {
        AuditVerification::Broken(ChainBreak { seq: s, why }) => {
            assert_eq!(s, seq, "{why}");
            assert!(why.contains(why_contains), "{why}");
        }
        intact => panic!("expected a break at {seq}, got {intact:?}"),
    }
}

async fn every_write_appends_exactly_one_entry_describing_it(db: Db) {
    let p = passport("urn:test:audited");
    let old_new = AuditEvent {
        old: Some("idle".into()),
        new: Some("running".into()),
        ..event("tag.write", "Shredder/State")
    };
    db.receive(
        &p,
        &input_lot("IN-1", &p, at(1)),
        event("lot.receive", "IN-1"),
    )
    .await
    .unwrap();
    db.produce(
        &lot("BM-1", LotKind::Residue, 10.0, at(2)),
        &[edge("IN-1", "BM-1", 10.0)],
        event("lot.produce", "BM-1"),
    )
    .await
    .unwrap();
    db.add_user(&user("anna", Role::Viewer), event("user.add", "anna"))
        .await
        .unwrap();
    db.append(old_new.clone()).await.unwrap();
    let entries = db.entries(0, 100).await.unwrap();
    let seen: Vec<(i64, AuditEvent)> = entries.into_iter().map(|e| (e.seq, e.event)).collect();
    assert_eq!(
        seen,
        [
            (1, event("lot.receive", "IN-1")),
            (2, event("lot.produce", "BM-1")),
            (3, event("user.add", "anna")),
            (4, old_new),
        ]
    );
}

async fn entries_read_back_exactly_as_sealed(db: Db) {
    let sealed = append_n(&db, 3).await;
    assert_eq!(db.entries(0, 10).await.unwrap(), sealed);
    assert_eq!(sealed[1].prev_hash, sealed[0].hash);
}

async fn entries_are_paged_by_sequence_number(db: Db) {
    append_n(&db, 10).await;
    let seqs: Vec<i64> = db
        .entries(3, 4)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert_eq!(db.entries(10, 5).await.unwrap(), []);
    assert_eq!(db.entries(0, 0).await.unwrap(), []);
}

async fn an_empty_trail_is_intact(db: Db) {
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 0 }
    );
}

async fn an_intact_chain_of_100_entries_verifies(db: Db) {
    append_n(&db, 100).await;
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 100 }
    );
}

async fn a_changed_value_is_found_at_its_entry(db: Db, raw: Raw) {
    append_n(&db, 100).await;
    assert_eq!(
        raw.execute("UPDATE audit SET new_value = 'forged' WHERE seq = 37")
            .await,
        1
    );
    check_broken(db.verify_audit().await.unwrap(), 37, "altered");
}

async fn a_deleted_entry_is_found_at_the_gap(db: Db, raw: Raw) {
    append_n(&db, 100).await;
    assert_eq!(raw.execute("DELETE FROM audit WHERE seq = 50").await, 1);
    check_broken(db.verify_audit().await.unwrap(), 51, "missing");
}

async fn a_deleted_last_entry_is_found_through_the_chain_head(db: Db, raw: Raw) {
    append_n(&db, 100).await;
    assert_eq!(raw.execute("DELETE FROM audit WHERE seq = 100").await, 1);
    check_broken(db.verify_audit().await.unwrap(), 100, "missing");
}

async fn an_unreadable_entry_is_reported_as_a_break(db: Db, raw: Raw) {
    append_n(&db, 5).await;
    raw.execute("UPDATE audit SET hash = 'not-hex' WHERE seq = 4")
        .await;
    check_broken(db.verify_audit().await.unwrap(), 4, "cannot be read");
}

async fn concurrent_appends_from_8_tasks_make_one_unbroken_chain(db: Db) {
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    db.append(event("test.concurrent", &format!("task{task}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let entries = db.entries(0, 1000).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 200 }
    );
}

on_both_backends!(
    every_write_appends_exactly_one_entry_describing_it,
    entries_read_back_exactly_as_sealed,
    entries_are_paged_by_sequence_number,
    an_empty_trail_is_intact,
    an_intact_chain_of_100_entries_verifies,
    concurrent_appends_from_8_tasks_make_one_unbroken_chain,
);

/// Two handles on one database stand for two processes: the database's own
/// lock, not this process's, must keep the chain straight.
async fn concurrent_appends_through_two_handles_make_one_unbroken_chain(db: Db, raw: Raw) {
    let other = Db::open(&raw.url).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let db = if task % 2 == 0 {
                db.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                for i in 0..25 {
                    db.append(event("test.concurrent", &format!("task{task}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 200 }
    );
    other.close().await;
}

on_both_backends!(
    raw: concurrent_appends_through_two_handles_make_one_unbroken_chain,
    a_changed_value_is_found_at_its_entry,
    a_deleted_entry_is_found_at_the_gap,
    a_deleted_last_entry_is_found_through_the_chain_head,
    an_unreadable_entry_is_reported_as_a_break,
);
