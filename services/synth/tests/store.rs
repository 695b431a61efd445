//! A year written through the store's ports: every lot, edge, weighing and
//! assay is in the store, each audited, and the audit chain holds.

#![allow(clippy::unwrap_used)]

use remine_domain::ports::{AccountingStore, AuditLog, LotStore};
use remine_store::Db;
use remine_synth::{SynthConfig, generate};

#[tokio::test]
async fn a_small_year_lands_in_sqlite_with_every_fact_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_dir(dir.path()).await.unwrap();
    let y = generate(&SynthConfig::new(300, 51).unwrap()).unwrap();
    let mut last = (0, 0);
    let report = y
        .write_store(&db, |done, of| last = (done, of))
        .await
        .unwrap();
    assert_eq!(last, (y.lots().len(), y.lots().len()));
    assert_eq!(report.lots, y.lots().len());
    assert_eq!(report.edges, y.edges().len());

    assert_eq!(db.lots().await.unwrap().len(), y.lots().len());
    assert_eq!(db.edges().await.unwrap().len(), y.edges().len());
    let mut assays = 0;
    for lot in y.lots() {
        let stored = db.measurement(lot.id()).await.unwrap().unwrap();
        assert_eq!(Some(stored), lot.measured_mass().unwrap(), "{}", lot.id());
        assays += db.assays(lot.id()).await.unwrap().len();
        assert!(db.stock(lot.id()).await.unwrap() >= -1e-6, "{}", lot.id());
    }
    assert_eq!(assays, report.assays);
    let unit = &y.units()[0];
    let passport = unit.passport().unwrap();
    assert_eq!(db.passport(passport.id()).await.unwrap(), Some(passport));

    let entries = db.verify().await.unwrap().unwrap();
    assert_eq!(entries as usize, report.writes());
}
