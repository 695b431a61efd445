//! Receiving units, producing lots, and reading them back.

use crate::fixtures::*;
use crate::harness::Raw;
use remine_domain::ports::{AuditLog, LotStore, StoreError};
use remine_domain::{
    Chemistry, GbtCode, LotKind, Passport, PassportFields, PassportId, ProductKind,
};
use remine_store::Db;

/// Receives `passport` with its input lot and checks both read back equal.
async fn check_round_trip(db: &Db, passport: Passport, lot: &str) {
    let lot = input_lot(lot, &passport, at(1));
    db.receive(&passport, &lot, event("lot.receive", lot.id().as_str()))
        .await
        .unwrap();
    assert_eq!(
        db.passport(passport.id()).await.unwrap().as_ref(),
        Some(&passport)
    );
    assert_eq!(db.lot(lot.id()).await.unwrap(), Some(lot));
}

async fn a_received_passport_and_its_lot_read_back_equal(db: Db) {
    let p = passport("urn:rheinzelle:rzb21p0012345");
    assert_eq!(p.warnings(), ["cycle count missing"]);
    check_round_trip(&db, p, "IN-0001").await;
}

async fn an_estimated_content_reads_back_as_the_same_estimate(db: Db) {
    let p = Passport::new(PassportFields {
        declared: None,
        ..passport_fields(urn("urn:test:estimated"))
    })
    .unwrap();
    assert_eq!(
        p.content().unwrap().source,
        remine_domain::ContentSource::Estimated
    );
    check_round_trip(&db, p, "IN-0002").await;
}

async fn a_passport_without_content_keeps_each_warning_once(db: Db) {
    let p = Passport::new(PassportFields {
        declared: None,
        chemistry: None,
        country_of_collection: None,
        state_of_health_pct: None,
        serial: None,
        manufacturer: None,
        ..passport_fields(urn("urn:test:unknown"))
    })
    .unwrap();
    assert!(p.content().is_none());
    assert_eq!(p.warnings().len(), 2);
    check_round_trip(&db, p, "IN-0003").await;
}

async fn passport_ids_of_every_kind_come_back_as_the_same_kind(db: Db) {
    let gbt = GbtCode::parse("1JTPB9ZZ6UA19JLC28739896").unwrap();
    let ids = [
        PassportId::urn("URN:Rheinzelle:Upper-Case").unwrap(),
        PassportId::uuid("D9ED17E3-CC0E-45EE-8D10-3ED3CC667E97").unwrap(),
        PassportId::Gbt(gbt.clone()),
        PassportId::Plant("1JTPB9ZZ6UA19JLC28739897".into()),
    ];
    for (n, pid) in ids.into_iter().enumerate() {
        let mut fields = passport_fields(pid);
        if matches!(fields.id, PassportId::Gbt(_)) {
            fields.chemistry = Some(Chemistry::Lfp);
            fields.declared = None;
            fields.gbt = Some(gbt.clone());
        }
        check_round_trip(&db, Passport::new(fields).unwrap(), &format!("IN-1{n}")).await;
    }
}

async fn a_duplicate_passport_is_refused_and_nothing_is_written(db: Db) {
    let p = passport("urn:rheinzelle:dup");
    db.receive(
        &p,
        &input_lot("IN-A", &p, at(1)),
        event("lot.receive", "IN-A"),
    )
    .await
    .unwrap();
    let again = db
        .receive(
            &p,
            &input_lot("IN-B", &p, at(2)),
            event("lot.receive", "IN-B"),
        )
        .await;
    assert_eq!(
        again,
        Err(StoreError::Conflict(
            "duplicate passport id urn:rheinzelle:dup (already imported)".into()
        ))
    );
    assert_eq!(db.lot(&id("IN-B")).await.unwrap(), None);
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 1);
}

async fn a_lot_id_received_twice_is_refused_and_its_passport_not_kept(db: Db) {
    let first = passport("urn:test:first");
    let second = passport("urn:test:second");
    db.receive(
        &first,
        &input_lot("IN-A", &first, at(1)),
        event("lot.receive", "IN-A"),
    )
    .await
    .unwrap();
    let again = db
        .receive(
            &second,
            &input_lot("IN-A", &second, at(2)),
            event("lot.receive", "IN-A"),
        )
        .await;
    assert_eq!(
        again,
        Err(StoreError::Conflict("lot IN-A already exists".into()))
    );
    assert_eq!(db.passport(second.id()).await.unwrap(), None);
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 1);
}

/// Two received units, IN-1 and IN-2, to produce from.
async fn two_inputs(db: &Db) {
    for (n, lot) in ["IN-1", "IN-2"].into_iter().enumerate() {
        let p = passport(&format!("urn:test:{lot}"));
        db.receive(
            &p,
            &input_lot(lot, &p, at(n as i64)),
            event("lot.receive", lot),
        )
        .await
        .unwrap();
    }
}

async fn the_genealogy_mark_moves_with_every_new_lot_and_only_then(db: Db) {
    assert_eq!(db.genealogy_mark().await.unwrap(), 0);
    two_inputs(&db).await;
    let after_inputs = db.genealogy_mark().await.unwrap();
    assert!(after_inputs > 0);
    // An audited write that adds no lot leaves it.
    db.append(event("plc.write", "Discharge/Station1/Setpoint"))
        .await
        .unwrap();
    assert_eq!(db.genealogy_mark().await.unwrap(), after_inputs);
    // A refused production leaves it.
    let refused = db
        .produce(
            &lot("BM-9", LotKind::Residue, 10.0, at(5)),
            &[edge("NOPE", "BM-9", 1.0)],
            event("lot.produce", "BM-9"),
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(db.genealogy_mark().await.unwrap(), after_inputs);
    db.produce(
        &lot("BM-1", LotKind::Residue, 10.0, at(5)),
        &[edge("IN-1", "BM-1", 10.0)],
        event("lot.produce", "BM-1"),
    )
    .await
    .unwrap();
    assert!(db.genealogy_mark().await.unwrap() > after_inputs);
}

async fn produce_records_the_lot_and_its_edges_in_order(db: Db) {
    two_inputs(&db).await;
    let bm = lot(
        "BM-001",
        LotKind::BlackMass(Chemistry::Nmc811),
        600.0,
        at(10),
    );
    let inputs = [
        edge("IN-2", "BM-001", 480.5),
        edge("IN-1", "BM-001", 490.25),
    ];
    db.produce(&bm, &inputs, event("lot.produce", "BM-001"))
        .await
        .unwrap();
    assert_eq!(db.lot(bm.id()).await.unwrap(), Some(bm));
    assert_eq!(db.edges().await.unwrap(), inputs);
}

async fn produce_refuses_an_existing_lot_id(db: Db) {
    two_inputs(&db).await;
    let again = lot("IN-1", LotKind::DischargeBatch, 100.0, at(10));
    let refused = db
        .produce(
            &again,
            &[edge("IN-2", "IN-1", 100.0)],
            event("lot.produce", "IN-1"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict("lot IN-1 already exists".into()))
    );
    assert_eq!(db.edges().await.unwrap(), []);
}

async fn produce_refuses_an_unknown_input_naming_it_and_writes_nothing(db: Db) {
    two_inputs(&db).await;
    let bm = lot(
        "BM-002",
        LotKind::BlackMass(Chemistry::Nmc811),
        300.0,
        at(10),
    );
    let refused = db
        .produce(
            &bm,
            &[
                edge("IN-1", "BM-002", 100.0),
                edge("GHOST-7", "BM-002", 100.0),
            ],
            event("lot.produce", "BM-002"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::NotFound("input lot GHOST-7".into()))
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        "input lot GHOST-7 not found"
    );
    assert_eq!(db.lot(bm.id()).await.unwrap(), None);
    assert_eq!(db.edges().await.unwrap(), []);
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 2);
}

async fn produce_refuses_a_cycle(db: Db) {
    two_inputs(&db).await;
    let leach = lot("LEACH-1", LotKind::LeachBatch, 300.0, at(10));
    let refused = db
        .produce(
            &leach,
            &[
                edge("IN-1", "LEACH-1", 100.0),
                edge("LEACH-1", "LEACH-1", 1.0),
            ],
            event("lot.produce", "LEACH-1"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(
            "edge LEACH-1 -> LEACH-1 would make the genealogy cyclic".into()
        ))
    );
    assert_eq!(db.lot(leach.id()).await.unwrap(), None);
}

async fn produce_refuses_an_edge_into_another_lot(db: Db) {
    two_inputs(&db).await;
    let leach = lot("LEACH-2", LotKind::LeachBatch, 300.0, at(10));
    let refused = db
        .produce(
            &leach,
            &[edge("IN-1", "IN-2", 100.0)],
            event("lot.produce", "LEACH-2"),
        )
        .await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(
            "edge IN-1 -> IN-2 does not end at the produced lot LEACH-2".into()
        ))
    );
}

async fn a_chain_of_productions_keeps_its_genealogy(db: Db) {
    two_inputs(&db).await;
    let steps = [
        (
            lot("BM-1", LotKind::BlackMass(Chemistry::Nmc811), 500.0, at(10)),
            vec![edge("IN-1", "BM-1", 250.0), edge("IN-2", "BM-1", 250.0)],
        ),
        (
            lot("LEACH-1", LotKind::LeachBatch, 400.0, at(11)),
            vec![edge("BM-1", "LEACH-1", 400.0)],
        ),
        (
            lot(
                "NISO4-1",
                LotKind::Product(ProductKind::NickelSulphate),
                200.0,
                at(12),
            ),
            vec![edge("LEACH-1", "NISO4-1", 300.0)],
        ),
    ];
    for (made, inputs) in &steps {
        db.produce(made, inputs, event("lot.produce", made.id().as_str()))
            .await
            .unwrap();
    }
    let genealogy = remine_domain::Genealogy::from_edges(db.edges().await.unwrap()).unwrap();
    let ancestors = genealogy.ancestors(&id("NISO4-1"));
    assert!(ancestors.contains(&id("IN-1")) && ancestors.contains(&id("IN-2")));
    assert_eq!(ancestors.len(), 4);
}

async fn lots_come_oldest_first_and_ties_in_recording_order(db: Db) {
    let made = [
        lot("L-C", LotKind::Residue, 10.0, at(30)),
        lot("L-A", LotKind::Residue, 10.0, at(10)),
        lot("L-B2", LotKind::Residue, 10.0, at(20)),
        lot("L-B1", LotKind::Residue, 10.0, at(20)),
    ];
    for l in &made {
        db.produce(l, &[], event("lot.produce", l.id().as_str()))
            .await
            .unwrap();
    }
    let order: Vec<String> = db
        .lots()
        .await
        .unwrap()
        .iter()
        .map(|l| l.id().to_string())
        .collect();
    assert_eq!(order, ["L-A", "L-B2", "L-B1", "L-C"]);
    assert_eq!(db.lots().await.unwrap()[0], made[1]);
}

async fn unknown_ids_read_as_nothing(db: Db) {
    assert_eq!(db.lot(&id("NOPE")).await.unwrap(), None);
    assert_eq!(db.passport(&urn("urn:test:nope")).await.unwrap(), None);
    assert_eq!(db.lots().await.unwrap(), []);
    assert_eq!(db.edges().await.unwrap(), []);
}

async fn a_stored_row_that_breaks_the_domain_rules_is_reported_as_corrupt(db: Db, raw: Raw) {
    let p = passport("urn:test:corrupt");
    db.receive(
        &p,
        &input_lot("IN-1", &p, at(1)),
        event("lot.receive", "IN-1"),
    )
    .await
    .unwrap();
    raw.execute("UPDATE lots SET kind = 'unobtainium' WHERE id = 'IN-1'")
        .await;
    assert_eq!(
        db.lot(&id("IN-1")).await,
        Err(StoreError::Corrupt(
            "lots IN-1: lot kind 'unobtainium' is invalid: unknown lot kind".into()
        ))
    );
    raw.execute("UPDATE passports SET mass_kg = -1 WHERE id = 'urn:test:corrupt'")
        .await;
    assert_eq!(
        db.passport(p.id()).await,
        Err(StoreError::Corrupt(
            "passports urn:test:corrupt: mass must be >= 0 kg (got -1 kg)".into()
        ))
    );
}

on_both_backends!(raw: a_stored_row_that_breaks_the_domain_rules_is_reported_as_corrupt);

on_both_backends!(
    a_received_passport_and_its_lot_read_back_equal,
    an_estimated_content_reads_back_as_the_same_estimate,
    a_passport_without_content_keeps_each_warning_once,
    passport_ids_of_every_kind_come_back_as_the_same_kind,
    a_duplicate_passport_is_refused_and_nothing_is_written,
    a_lot_id_received_twice_is_refused_and_its_passport_not_kept,
    produce_records_the_lot_and_its_edges_in_order,
    produce_refuses_an_existing_lot_id,
    produce_refuses_an_unknown_input_naming_it_and_writes_nothing,
    produce_refuses_a_cycle,
    the_genealogy_mark_moves_with_every_new_lot_and_only_then,
    produce_refuses_an_edge_into_another_lot,
    a_chain_of_productions_keeps_its_genealogy,
    lots_come_oldest_first_and_ties_in_recording_order,
    unknown_ids_read_as_nothing,
    a_split_is_stored_whole_with_one_audit_entry,
    a_step_whose_parts_together_exceed_the_stock_stores_nothing,
    a_step_failing_at_its_last_lot_stores_none_of_it,
);

/// IN-1 (500 kg) split into halves A and B, recorded as one step.
fn halves(db_lot: &remine_domain::Lot, a: f64, b: f64) -> remine_domain::Step {
    remine_domain::split(
        db_lot,
        kg(500.0),
        &[(id("A"), kg(a)), (id("B"), kg(b))],
        at(20),
    )
    .unwrap()
}

async fn a_split_is_stored_whole_with_one_audit_entry(db: Db) {
    two_inputs(&db).await;
    let in1 = db.lot(&id("IN-1")).await.unwrap().unwrap();
    db.record_step(&halves(&in1, 200.0, 300.0), event("lot.split", "IN-1"))
        .await
        .unwrap();
    assert_eq!(db.lot(&id("A")).await.unwrap().unwrap().mass(), kg(200.0));
    assert_eq!(db.lot(&id("B")).await.unwrap().unwrap().mass(), kg(300.0));
    assert_eq!(
        db.edges().await.unwrap(),
        [edge("IN-1", "A", 200.0), edge("IN-1", "B", 300.0)]
    );
    assert_eq!(
        db.entries(0, 10).await.unwrap().len(),
        3,
        "one entry for the step"
    );
}

async fn a_step_whose_parts_together_exceed_the_stock_stores_nothing(db: Db) {
    two_inputs(&db).await;
    // Each part fits the 500 kg alone; together they take 550 kg. (The
    // domain's split refuses this too; the store must not rely on it.)
    let a = lot("A", LotKind::InputUnit, 300.0, at(20));
    let b = lot("B", LotKind::InputUnit, 250.0, at(20));
    let step = remine_domain::Step::new(
        remine_domain::StepKind::Split,
        vec![
            (a, vec![edge("IN-1", "A", 300.0)]),
            (b, vec![edge("IN-1", "B", 250.0)]),
        ],
    )
    .unwrap();
    let refused = db.record_step(&step, event("lot.split", "IN-1")).await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(
            "input lot IN-1 has 200 kg in stock; lot B asks for 250 kg of it".into()
        ))
    );
    assert_eq!(db.lot(&id("A")).await.unwrap(), None);
    assert_eq!(db.edges().await.unwrap(), []);
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 2);
}

async fn a_step_failing_at_its_last_lot_stores_none_of_it(db: Db) {
    two_inputs(&db).await;
    let in1 = db.lot(&id("IN-1")).await.unwrap().unwrap();
    let step = halves(&in1, 100.0, 100.0);
    // B already exists: the step's second lot is refused, so A must go too.
    db.produce(
        &lot("B", LotKind::Residue, 1.0, at(5)),
        &[],
        event("lot.produce", "B"),
    )
    .await
    .unwrap();
    let refused = db.record_step(&step, event("lot.split", "IN-1")).await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict("lot B already exists".into()))
    );
    assert_eq!(db.lot(&id("A")).await.unwrap(), None);
    assert_eq!(db.edges().await.unwrap(), []);
}
