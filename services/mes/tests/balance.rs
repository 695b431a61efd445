//! The plant's metal balance from a real SQLite store: recorded lots,
//! edges, weighings and assays become a balance network; consistent
//! records reconcile with no adjustment and pass the global test, and the
//! recovery reads back as recorded.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use remine_domain::ports::Store;
use remine_domain::{
    Assay, AuditEvent, Chemistry, ContentSource, Element, GenealogyEdge, Kilograms, Lot, LotFields,
    LotId, LotKind, MassFraction, MassMethod, MeasuredMass, ProductKind, Username,
};
use remine_mes::PlantBalance;
use std::sync::Arc;

fn kg(v: f64) -> Kilograms {
    Kilograms::new(v).unwrap()
}

fn audit(target: &str) -> AuditEvent {
    AuditEvent {
        actor: Username::system(),
        action: "lot.produce".into(),
        target: target.into(),
        old: None,
        new: None,
        reason: "test".into(),
    }
}

async fn make(
    store: &dyn Store,
    id: &str,
    kind: LotKind,
    mass: f64,
    els: &[(Element, f64)],
    src: ContentSource,
    inputs: &[(&str, f64)],
) {
    let lot = Lot::new(LotFields {
        id: LotId::parse(id).unwrap(),
        kind,
        mass: kg(mass),
        elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
        content_source: src,
        created_at: Utc::now(),
        passport: None,
        country_of_collection: None,
    })
    .unwrap();
    let edges: Vec<GenealogyEdge> = inputs
        .iter()
        .map(|(from, m)| GenealogyEdge {
            from: LotId::parse(from).unwrap(),
            to: lot.id().clone(),
            mass: kg(*m),
        })
        .collect();
    store.produce(&lot, &edges, audit(id)).await.unwrap();
}

async fn weigh(store: &dyn Store, id: &str, mass: f64, method: MassMethod, instrument: &str) {
    let m = MeasuredMass::dry(kg(mass), method, instrument).unwrap();
    store
        .record_measurement(&LotId::parse(id).unwrap(), &m, audit(id))
        .await
        .unwrap();
}

async fn assay(store: &dyn Store, id: &str, el: Element, f: f64) {
    let a = Assay::new(
        LotId::parse(id).unwrap(),
        "S-1",
        el,
        MassFraction::new(f).unwrap(),
        f * 0.02,
        "ICP-OES",
        "lab A",
    )
    .unwrap();
    store.record_assay(&a, audit(id)).await.unwrap();
}

#[tokio::test]
async fn consistent_records_reconcile_without_adjustment_and_give_the_recorded_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
    let s = store.as_ref();
    // Two packs (passport contents), shredded into black mass and copper
    // (the rest lost), the black mass leached in part into NiSO4 and residue.
    make(
        s,
        "U-1",
        LotKind::InputUnit,
        400.0,
        &[(Element::Ni, 40.0), (Element::Cu, 30.0)],
        ContentSource::Declared,
        &[],
    )
    .await;
    make(
        s,
        "U-2",
        LotKind::InputUnit,
        600.0,
        &[(Element::Ni, 60.0), (Element::Cu, 45.0)],
        ContentSource::Declared,
        &[],
    )
    .await;
    let bm = LotKind::BlackMass(Chemistry::Nmc811);
    make(
        s,
        "BM-1",
        bm,
        500.0,
        &[(Element::Ni, 95.0), (Element::Cu, 5.0)],
        ContentSource::Assayed,
        &[("U-1", 200.0), ("U-2", 300.0)],
    )
    .await;
    make(
        s,
        "CU-1",
        LotKind::SideFraction(remine_domain::SideFraction::Copper),
        70.0,
        &[(Element::Ni, 5.0), (Element::Cu, 65.0)],
        ContentSource::Assayed,
        &[("U-1", 28.0), ("U-2", 42.0)],
    )
    .await;
    make(
        s,
        "LOSS-1",
        LotKind::Loss,
        430.0,
        &[(Element::Cu, 5.0)],
        ContentSource::Estimated,
        &[("U-1", 172.0), ("U-2", 258.0)],
    )
    .await;
    make(
        s,
        "LB-1",
        LotKind::LeachBatch,
        250.0,
        &[(Element::Ni, 47.5), (Element::Cu, 2.5)],
        ContentSource::Assayed,
        &[("BM-1", 250.0)],
    )
    .await;
    make(
        s,
        "NI-1",
        LotKind::Product(ProductKind::NickelSulphate),
        200.0,
        &[(Element::Ni, 44.66)],
        ContentSource::Assayed,
        &[("LB-1", 44.66)],
    )
    .await;
    make(
        s,
        "RES-1",
        LotKind::Residue,
        150.0,
        &[],
        ContentSource::Estimated,
        &[("LB-1", 150.0)],
    )
    .await;
    weigh(s, "BM-1", 500.0, MassMethod::PlatformScale, "PS-1").await;
    assay(s, "BM-1", Element::Ni, 0.19).await;
    assay(s, "NI-1", Element::Ni, 0.2233).await;

    let now = Utc::now();
    let b = PlantBalance::new(store.clone())
        .period(now - Duration::hours(1), now + Duration::hours(1))
        .await
        .unwrap();
    assert!(b.converged, "{b:?}");
    assert!(b.passed, "consistent records pass the global test: {b:?}");
    assert!(
        b.suspect_readings.is_empty() && b.suspect_instruments.is_empty(),
        "{b:?}"
    );
    let ni = b
        .recovery
        .iter()
        .find(|r| r.element == Element::Ni)
        .unwrap();
    // Recorded: 44.66 kg Ni in product of 100 kg Ni received.
    assert!((ni.recorded.unwrap() - 0.4466).abs() < 1e-9, "{ni:?}");
    let rec = ni.reconciled.unwrap();
    assert!((rec - 0.4466).abs() < 0.01, "{ni:?}");
    assert!(ni.sigma.unwrap() > 0.0, "{ni:?}");

    let empty = PlantBalance::new(store)
        .period(now, now - Duration::hours(1))
        .await;
    assert!(
        empty
            .unwrap_err()
            .to_string()
            .contains("must end after it starts")
    );
}
