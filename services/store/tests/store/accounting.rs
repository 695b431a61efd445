//! Metal accounting: weighings, assays and stock events read back equal;
//! the stock of a lot is its mass less what production took plus its
//! events; no sample, adjustment or production takes a lot below zero; and
//! every refusal leaves nothing behind, not even an audit entry.

use crate::fixtures::*;
use crate::harness::Raw;
use remine_domain::ports::{AccountingStore, AuditLog, LotStore, LotWrite, StoreError};
use remine_domain::{Assay, Element, LotKind, MassFraction, MassMethod, MeasuredMass, StockEvent};
use remine_store::{AuditVerification, Db};

fn fraction(f: f64) -> MassFraction {
    MassFraction::new(f).unwrap()
}

/// A lot made from nothing, with `mass` kg.
async fn made(db: &Db, name: &str, mass: f64) {
    db.produce(
        &lot(name, LotKind::Residue, mass, at(1)),
        &[],
        event("lot.produce", name),
    )
    .await
    .unwrap();
}

/// A received unit: a 500 kg input lot.
async fn received(db: &Db, name: &str) {
    let p = passport(&format!("urn:test:{name}"));
    db.receive(&p, &input_lot(name, &p, at(0)), event("lot.receive", name))
        .await
        .unwrap();
}

async fn audit_count(db: &Db) -> usize {
    db.entries(0, 1000).await.unwrap().len()
}

fn assay(lot: &str, sample: &str, element: Element, f: f64, sigma: f64) -> Assay {
    Assay::new(
        id(lot),
        sample,
        element,
        fraction(f),
        sigma,
        "ICP-OES",
        "lab A",
    )
    .unwrap()
}

fn sample(name: &str, mass: f64) -> StockEvent {
    StockEvent::Sample {
        sample: name.into(),
        mass: kg(mass),
    }
}

/// Records `event` on `lot` and expects it refused with `expected`, with
/// nothing written: no event, no audit entry, the same stock.
async fn check_refused(db: &Db, lot: &str, event: StockEvent, expected: StoreError) {
    let (entries, events) = (
        audit_count(db).await,
        db.stock_events(&id(lot)).await.unwrap(),
    );
    let stock = db.stock(&id(lot)).await.ok();
    let refused = db
        .record_stock_event(&id(lot), &event, crate::fixtures::event("lot.stock", lot))
        .await;
    assert_eq!(refused, Err(expected));
    assert_eq!(audit_count(db).await, entries);
    assert_eq!(db.stock_events(&id(lot)).await.unwrap(), events);
    assert_eq!(db.stock(&id(lot)).await.ok(), stock);
}

async fn a_weighing_reads_back_equal(db: Db) {
    made(&db, "BM-1", 950.0).await;
    let mass = MeasuredMass::new(
        kg(1000.1 + 0.2),
        fraction(0.053_7),
        MassMethod::Weighbridge,
        "WB-1",
        Some(0.001_5),
    )
    .unwrap();
    db.record_measurement(&id("BM-1"), &mass, event("lot.weigh", "BM-1"))
        .await
        .unwrap();
    assert_eq!(db.measurement(&id("BM-1")).await.unwrap(), Some(mass));
    assert_eq!(db.measurement(&id("NOPE")).await.unwrap(), None);
}

async fn a_lot_is_weighed_once_and_a_second_weighing_is_refused(db: Db) {
    made(&db, "BM-1", 950.0).await;
    let first = MeasuredMass::dry(kg(950.0), MassMethod::PlatformScale, "PS-2").unwrap();
    let second = MeasuredMass::dry(kg(951.0), MassMethod::Weighbridge, "WB-1").unwrap();
    db.record_measurement(&id("BM-1"), &first, event("lot.weigh", "BM-1"))
        .await
        .unwrap();
    let entries = audit_count(&db).await;
    let again = db
        .record_measurement(&id("BM-1"), &second, event("lot.weigh", "BM-1"))
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("BM-1")),
        "{again:?}"
    );
    assert_eq!(db.measurement(&id("BM-1")).await.unwrap(), Some(first));
    assert_eq!(audit_count(&db).await, entries);
}

async fn weighing_an_unknown_lot_is_refused_as_not_found(db: Db) {
    let mass = MeasuredMass::dry(kg(1.0), MassMethod::PlatformScale, "PS-2").unwrap();
    let refused = db
        .record_measurement(&id("GHOST-1"), &mass, event("lot.weigh", "GHOST-1"))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("GHOST-1")),
        "{refused:?}"
    );
    assert_eq!(audit_count(&db).await, 0);
}

async fn assays_read_back_equal_oldest_first_with_their_numbers(db: Db) {
    made(&db, "BM-1", 950.0).await;
    made(&db, "BM-2", 100.0).await;
    let recorded = [
        assay("BM-1", "S-1", Element::Ni, 0.1 + 0.2, 0.002),
        assay("BM-2", "S-9", Element::Co, 0.05, 0.001),
        assay("BM-1", "S-1", Element::Li, 0.031_7, 0.000_5),
        assay("BM-1", "S-2", Element::Ni, 0.29, 0.003),
    ];
    let mut seqs = vec![];
    for a in &recorded {
        seqs.push(
            db.record_assay(a, event("lot.assay", a.lot().as_str()))
                .await
                .unwrap(),
        );
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        db.assays(&id("BM-1")).await.unwrap(),
        [
            recorded[0].clone(),
            recorded[2].clone(),
            recorded[3].clone()
        ]
    );
    assert_eq!(db.assays(&id("BM-2")).await.unwrap(), [recorded[1].clone()]);
    assert_eq!(db.assays(&id("NOPE")).await.unwrap(), []);
}

async fn an_assay_of_an_unknown_lot_is_refused_naming_the_lot(db: Db) {
    let refused = db
        .record_assay(
            &assay("GHOST-7", "S-1", Element::Ni, 0.2, 0.01),
            event("lot.assay", "GHOST-7"),
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("lot GHOST-7")),
        "{refused:?}"
    );
    assert_eq!(db.assays(&id("GHOST-7")).await.unwrap(), []);
    assert_eq!(audit_count(&db).await, 0);
}

async fn stock_is_mass_less_what_production_took_plus_events(db: Db) {
    received(&db, "IN-1").await;
    received(&db, "IN-2").await;
    db.produce(
        &lot("BM-1", LotKind::Residue, 300.0, at(5)),
        &[edge("IN-1", "BM-1", 120.5), edge("IN-2", "BM-1", 200.0)],
        event("lot.produce", "BM-1"),
    )
    .await
    .unwrap();
    assert_eq!(db.stock(&id("IN-1")).await.unwrap(), 379.5);
    let events = [
        sample("S-1", 2.25),
        StockEvent::Adjustment { delta_kg: 10.0 },
        StockEvent::Correction {
            corrects: 1,
            delta_kg: 0.75,
        },
    ];
    for (n, e) in (1_i64..).zip(&events) {
        let seq = db
            .record_stock_event(&id("IN-1"), e, event("lot.stock", "IN-1"))
            .await
            .unwrap();
        assert_eq!(seq, n);
    }
    // 500 - 120.5 - 2.25 + 10 + 0.75
    assert_eq!(db.stock(&id("IN-1")).await.unwrap(), 388.0);
    assert_eq!(db.stock(&id("IN-2")).await.unwrap(), 300.0);
    assert_eq!(db.stock(&id("BM-1")).await.unwrap(), 300.0);
    assert_eq!(
        db.stock_events(&id("IN-1")).await.unwrap(),
        (1_i64..).zip(events).collect::<Vec<_>>()
    );
    assert_eq!(db.stock_events(&id("IN-2")).await.unwrap(), []);
    assert_eq!(
        db.stock(&id("NOPE")).await,
        Err(StoreError::NotFound("lot NOPE".into()))
    );
}

async fn a_sample_beyond_stock_is_refused_and_leaves_nothing_behind(db: Db) {
    made(&db, "BM-NMC-7", 12.5).await;
    check_refused(
        &db,
        "BM-NMC-7",
        sample("S-1", 20.0),
        StoreError::Conflict(
            "lot BM-NMC-7 has 12.5 kg in stock; a sample of 20 kg would take it below zero".into(),
        ),
    )
    .await;
    check_refused(
        &db,
        "BM-NMC-7",
        StockEvent::Adjustment { delta_kg: -13.0 },
        StoreError::Conflict(
            "lot BM-NMC-7 has 12.5 kg in stock; a stock adjustment of -13 kg would take it \
             below zero"
                .into(),
        ),
    )
    .await;
    db.record_stock_event(
        &id("BM-NMC-7"),
        &sample("S-2", 12.5),
        event("lot.stock", "x"),
    )
    .await
    .unwrap();
    assert_eq!(db.stock(&id("BM-NMC-7")).await.unwrap(), 0.0);
}

async fn a_stock_event_on_an_unknown_lot_is_not_found(db: Db) {
    let refused = db
        .record_stock_event(&id("GHOST-1"), &sample("S-1", 1.0), event("lot.stock", "x"))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("lot GHOST-1")),
        "{refused:?}"
    );
    assert_eq!(audit_count(&db).await, 0);
}

async fn a_correction_must_name_a_known_event_of_its_own_lot(db: Db) {
    made(&db, "A-1", 100.0).await;
    made(&db, "B-1", 100.0).await;
    db.record_stock_event(&id("A-1"), &sample("S-1", 5.0), event("lot.stock", "A-1"))
        .await
        .unwrap();
    check_refused(
        &db,
        "B-1",
        StockEvent::Correction {
            corrects: 1,
            delta_kg: 1.0,
        },
        StoreError::Conflict(
            "stock event 1 belongs to lot A-1, not B-1; a correction must be recorded against \
             the event's own lot"
                .into(),
        ),
    )
    .await;
    check_refused(
        &db,
        "A-1",
        StockEvent::Correction {
            corrects: 99,
            delta_kg: 1.0,
        },
        StoreError::NotFound("stock event 99 (corrected for lot A-1)".into()),
    )
    .await;
    db.record_stock_event(
        &id("A-1"),
        &StockEvent::Correction {
            corrects: 1,
            delta_kg: 1.0,
        },
        event("lot.stock", "A-1"),
    )
    .await
    .unwrap();
    assert_eq!(db.stock(&id("A-1")).await.unwrap(), 96.0);
}

async fn an_event_that_changes_nothing_or_names_no_sample_is_refused(db: Db) {
    made(&db, "A-1", 100.0).await;
    for (e, what) in [
        (StockEvent::Adjustment { delta_kg: 0.0 }, "stock change"),
        (
            StockEvent::Adjustment { delta_kg: f64::NAN },
            "stock change",
        ),
        (sample("  ", 1.0), "sample"),
    ] {
        let entries = audit_count(&db).await;
        let refused = db
            .record_stock_event(&id("A-1"), &e, event("lot.stock", "A-1"))
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(m)) if m.contains(what) && m.contains("A-1")),
            "{refused:?}"
        );
        assert_eq!(audit_count(&db).await, entries);
    }
    assert_eq!(db.stock_events(&id("A-1")).await.unwrap(), []);
}

async fn produce_refuses_to_take_more_than_an_input_holds_and_accepts_exactly_all(db: Db) {
    received(&db, "IN-1").await;
    received(&db, "IN-2").await;
    db.record_stock_event(
        &id("IN-1"),
        &sample("S-1", 100.0),
        event("lot.stock", "IN-1"),
    )
    .await
    .unwrap();
    let bm = lot("BM-1", LotKind::Residue, 500.0, at(5));
    let entries = audit_count(&db).await;
    let refused = db
        .produce(
            &bm,
            &[edge("IN-2", "BM-1", 100.0), edge("IN-1", "BM-1", 400.5)],
            event("lot.produce", "BM-1"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(
            "input lot IN-1 has 400 kg in stock; lot BM-1 asks for 400.5 kg of it".into()
        ))
    );
    assert_eq!(db.lot(&id("BM-1")).await.unwrap(), None);
    assert_eq!(db.edges().await.unwrap(), []);
    assert_eq!(audit_count(&db).await, entries);
    assert_eq!(db.stock(&id("IN-2")).await.unwrap(), 500.0);

    db.produce(
        &bm,
        &[edge("IN-2", "BM-1", 100.0), edge("IN-1", "BM-1", 400.0)],
        event("lot.produce", "BM-1"),
    )
    .await
    .unwrap();
    assert_eq!(db.stock(&id("IN-1")).await.unwrap(), 0.0);
    assert_eq!(db.stock(&id("IN-2")).await.unwrap(), 400.0);

    let refused = db
        .produce(
            &lot("BM-2", LotKind::Residue, 1.0, at(6)),
            &[edge("IN-1", "BM-2", 1.0)],
            event("lot.produce", "BM-2"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(
            "input lot IN-1 has 0 kg in stock; lot BM-2 asks for 1 kg of it".into()
        ))
    );
}

async fn produce_forgives_rounding_when_taking_all_of_a_stock(db: Db) {
    made(&db, "A-1", 0.3).await;
    db.produce(
        &lot("B-1", LotKind::Residue, 0.1, at(2)),
        &[edge("A-1", "B-1", 0.1)],
        event("lot.produce", "B-1"),
    )
    .await
    .unwrap();
    // 0.3 - 0.1 is 0.19999999999999998 in doubles: 0.2 is still all of it.
    db.produce(
        &lot("C-1", LotKind::Residue, 0.2, at(3)),
        &[edge("A-1", "C-1", 0.2)],
        event("lot.produce", "C-1"),
    )
    .await
    .unwrap();
    assert!(db.stock(&id("A-1")).await.unwrap().abs() < 1e-12);
}

async fn the_audit_chain_holds_after_accounting_writes_and_refusals(db: Db) {
    received(&db, "IN-1").await;
    let mass = MeasuredMass::dry(kg(500.0), MassMethod::PlatformScale, "PS-1").unwrap();
    db.record_measurement(&id("IN-1"), &mass, event("lot.weigh", "IN-1"))
        .await
        .unwrap();
    assert!(
        db.record_measurement(&id("IN-1"), &mass, event("lot.weigh", "IN-1"))
            .await
            .is_err()
    );
    db.record_assay(
        &assay("IN-1", "S-1", Element::Co, 0.07, 0.002),
        event("lot.assay", "IN-1"),
    )
    .await
    .unwrap();
    db.record_stock_event(
        &id("IN-1"),
        &sample("S-1", 0.5),
        event("lot.sample", "IN-1"),
    )
    .await
    .unwrap();
    assert!(
        db.record_stock_event(
            &id("IN-1"),
            &sample("S-2", 600.0),
            event("lot.sample", "IN-1")
        )
        .await
        .is_err()
    );
    db.produce(
        &lot("BM-1", LotKind::Residue, 499.5, at(5)),
        &[edge("IN-1", "BM-1", 499.5)],
        event("lot.produce", "BM-1"),
    )
    .await
    .unwrap();
    let actions: Vec<String> = db
        .entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.action)
        .collect();
    assert_eq!(
        actions,
        [
            "lot.receive",
            "lot.weigh",
            "lot.assay",
            "lot.sample",
            "lot.produce"
        ]
    );
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 5 }
    );
}

async fn a_stored_event_that_breaks_the_domain_rules_is_reported_as_corrupt(db: Db, raw: Raw) {
    made(&db, "A-1", 100.0).await;
    db.record_stock_event(&id("A-1"), &sample("S-1", 5.0), event("lot.stock", "A-1"))
        .await
        .unwrap();
    raw.execute("UPDATE lot_stock_events SET delta_kg = 5 WHERE seq = 1")
        .await;
    assert_eq!(
        db.stock_events(&id("A-1")).await,
        Err(StoreError::Corrupt(
            "lot_stock_events 1: mass must be >= 0 kg (got -5 kg)".into()
        ))
    );
    raw.execute("UPDATE lot_stock_events SET kind = 'theft' WHERE seq = 1")
        .await;
    let corrupt = db.stock_events(&id("A-1")).await;
    assert!(
        matches!(&corrupt, Err(StoreError::Corrupt(m)) if m.contains("lot_stock_events 1") && m.contains("theft")),
        "{corrupt:?}"
    );
}

/// A unit received, a black-mass lot made from all of it, weighed and
/// assayed: one batch.
fn a_batch(unit: &str, bm: &str) -> Vec<(LotWrite, remine_domain::AuditEvent)> {
    let p = passport(&format!("urn:test:{unit}"));
    let mass = MeasuredMass::new(
        kg(210.0),
        fraction(0.02),
        MassMethod::PlatformScale,
        "FS-1",
        None,
    )
    .unwrap();
    vec![
        (
            LotWrite::Receive {
                passport: p.clone(),
                lot: input_lot(unit, &p, at(0)),
            },
            event("lot.receive", unit),
        ),
        (
            LotWrite::Produce {
                lot: lot(bm, LotKind::Residue, 205.8, at(1)),
                inputs: vec![edge(unit, bm, 500.0)],
            },
            event("lot.produce", bm),
        ),
        (
            LotWrite::Measure { lot: id(bm), mass },
            event("lot.weigh", bm),
        ),
        (
            LotWrite::Assay(assay(bm, "S-1", Element::Ni, 0.2, 0.004)),
            event("lot.assay", bm),
        ),
    ]
}

async fn a_batch_stores_every_write_with_its_own_audit_entry(db: Db) {
    let before = audit_count(&db).await;
    db.record_batch(&a_batch("U-1", "BM-1")).await.unwrap();
    assert_eq!(audit_count(&db).await, before + 4);
    assert_eq!(db.edges().await.unwrap(), vec![edge("U-1", "BM-1", 500.0)]);
    assert!(db.measurement(&id("BM-1")).await.unwrap().is_some());
    assert_eq!(db.assays(&id("BM-1")).await.unwrap().len(), 1);
    // Each write saw the ones before it: the unit is used up.
    assert!(db.stock(&id("U-1")).await.unwrap().abs() < 1e-9);
    let actions: Vec<String> = db
        .entries(before as i64, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.action)
        .collect();
    assert_eq!(
        actions,
        ["lot.receive", "lot.produce", "lot.weigh", "lot.assay"]
    );
    assert!(matches!(db.verify().await.unwrap(), Ok(n) if n as usize == before + 4));
}

async fn a_refused_write_stores_nothing_of_its_batch_and_is_named(db: Db) {
    db.record_batch(&a_batch("U-1", "BM-1")).await.unwrap();
    let before = audit_count(&db).await;
    // The second batch's third write weighs BM-1 again.
    let mut batch = a_batch("U-2", "BM-2");
    batch[2].0 = LotWrite::Measure {
        lot: id("BM-1"),
        mass: MeasuredMass::new(
            kg(200.0),
            fraction(0.0),
            MassMethod::PlatformScale,
            "FS-1",
            None,
        )
        .unwrap(),
    };
    let refused = db.record_batch(&batch).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.starts_with("write 3 of 4 (the weighing of BM-1), nothing of the batch stored")),
        "{refused:?}"
    );
    assert_eq!(audit_count(&db).await, before);
    assert_eq!(db.lot(&id("U-2")).await.unwrap(), None);
    assert_eq!(db.lot(&id("BM-2")).await.unwrap(), None);
    assert_eq!(db.edges().await.unwrap().len(), 1);
    // A write on an unknown lot, last in its batch.
    let mut batch = a_batch("U-3", "BM-3");
    batch[3].0 = LotWrite::Assay(assay("NOPE", "S-9", Element::Co, 0.1, 0.01));
    let refused = db.record_batch(&batch).await;
    assert!(
        matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("write 4 of 4 (an assay of NOPE)") && m.contains("NOPE")),
        "{refused:?}"
    );
    assert_eq!(db.lot(&id("U-3")).await.unwrap(), None);
    assert_eq!(audit_count(&db).await, before);
    assert!(db.verify().await.unwrap().is_ok());
}

on_both_backends!(raw: a_stored_event_that_breaks_the_domain_rules_is_reported_as_corrupt);

on_both_backends!(
    a_weighing_reads_back_equal,
    a_lot_is_weighed_once_and_a_second_weighing_is_refused,
    weighing_an_unknown_lot_is_refused_as_not_found,
    assays_read_back_equal_oldest_first_with_their_numbers,
    an_assay_of_an_unknown_lot_is_refused_naming_the_lot,
    stock_is_mass_less_what_production_took_plus_events,
    a_sample_beyond_stock_is_refused_and_leaves_nothing_behind,
    a_stock_event_on_an_unknown_lot_is_not_found,
    a_correction_must_name_a_known_event_of_its_own_lot,
    an_event_that_changes_nothing_or_names_no_sample_is_refused,
    produce_refuses_to_take_more_than_an_input_holds_and_accepts_exactly_all,
    produce_forgives_rounding_when_taking_all_of_a_stock,
    the_audit_chain_holds_after_accounting_writes_and_refusals,
    a_batch_stores_every_write_with_its_own_audit_entry,
    a_refused_write_stores_nothing_of_its_batch_and_is_named,
);
