//! The demo's own passports (services/remine/demo/passports, in the repo):
//! six NMC-family packs of 300-550 kg, about 2.2-2.6 t in all, in every
//! form, that import cleanly and whose compositions follow domain brief
//! section 2.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

use remine_domain::{Chemistry, ContentSource, Element, PassportForm, UnitType};
use remine_passports::{ImportSummary, ImportedUnit, import_paths};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn demo_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../remine/demo/passports"
    ))
}

fn import() -> ImportSummary {
    import_paths(&[demo_dir()])
}

#[test]
fn all_six_demo_units_import_without_refusal_or_warning() {
    let summary = import();
    let refused: Vec<String> = summary
        .refused
        .iter()
        .map(|r| r.error.to_string())
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    assert_eq!(summary.accepted.len(), 6);
    for u in &summary.accepted {
        assert!(
            u.warnings.is_empty(),
            "{}: {:?}",
            u.passport.id(),
            u.warnings
        );
    }
}

#[test]
fn the_demo_units_are_nmc_family_packs_of_300_to_550_kg_about_2_4_tonnes_in_all() {
    let summary = import();
    let mut total = 0.0;
    for u in &summary.accepted {
        let p = &u.passport;
        assert_eq!(p.unit_type(), UnitType::Pack, "{}", p.id());
        assert!(
            matches!(p.chemistry(), Some(c) if c != Chemistry::Lfp && c != Chemistry::Lmo),
            "{}: {:?}",
            p.id(),
            p.chemistry()
        );
        assert!(
            (300.0..=550.0).contains(&p.mass().kg()),
            "{}: {}",
            p.id(),
            p.mass()
        );
        total += p.mass().kg();
    }
    assert!((2200.0..=2600.0).contains(&total), "total {total} kg");
    let chemistries: BTreeMap<&str, usize> =
        summary.accepted.iter().fold(BTreeMap::new(), |mut m, u| {
            *m.entry(u.passport.chemistry().map(|c| c.name()).unwrap_or("-"))
                .or_default() += 1;
            m
        });
    assert_eq!(
        chemistries,
        BTreeMap::from([("NCA", 1), ("NMC532", 1), ("NMC622", 2), ("NMC811", 2)])
    );
}

#[test]
fn every_form_is_represented_and_the_gbt_unit_is_ternary() {
    let summary = import();
    let count = |form| {
        summary
            .accepted
            .iter()
            .filter(|u| u.passport.form() == form)
            .count()
    };
    assert!(count(PassportForm::BatteryPass120) >= 2);
    assert!(count(PassportForm::CatenaX610) >= 2);
    assert_eq!(count(PassportForm::Idta), 1);
    assert_eq!(count(PassportForm::GbtIntake), 1);
    let gbt = summary
        .accepted
        .iter()
        .find(|u| u.passport.form() == PassportForm::GbtIntake)
        .unwrap();
    let code = gbt.passport.gbt().unwrap();
    assert_eq!(code.battery_type_name(), "ternary (NMC/NCA)");
    assert_eq!(code.unit_type(), UnitType::Pack);
}

/// Declared fractions against the domain's BatPaC table: the cathode
/// metals within 10 % of it, and the rest of a pack in the brief's ranges.
fn check_composition(u: &ImportedUnit) {
    let p = &u.passport;
    let content = p.content().unwrap();
    if p.form() == PassportForm::GbtIntake {
        assert_eq!(content.source, ContentSource::Estimated);
        return;
    }
    assert_eq!(content.source, ContentSource::Declared, "{}", p.id());
    let chem = p.chemistry().unwrap();
    let table = chem.estimate_content(UnitType::Pack, p.mass());
    for e in [Element::Li, Element::Ni, Element::Co, Element::Mn] {
        let (got, want) = (p.element(e).kg(), table.get(e).kg());
        if want == 0.0 {
            assert_eq!(got, 0.0, "{} {e}", p.id());
        } else {
            let off = (got / want - 1.0).abs();
            assert!(off <= 0.10, "{} {e}: {got:.2} kg vs {want:.2} kg", p.id());
        }
    }
    let pct = |e| p.element(e).kg() / p.mass().kg() * 100.0;
    assert!(
        (15.0..=25.0).contains(&pct(Element::Al)),
        "{} Al {}",
        p.id(),
        pct(Element::Al)
    );
    assert!(
        (6.0..=10.0).contains(&pct(Element::Cu)),
        "{} Cu {}",
        p.id(),
        pct(Element::Cu)
    );
    assert!(
        (12.0..=20.0).contains(&pct(Element::Graphite)),
        "{} graphite {}",
        p.id(),
        pct(Element::Graphite)
    );
}

#[test]
fn demo_compositions_follow_the_batpac_pack_fractions_with_a_little_scatter() {
    for u in &import().accepted {
        check_composition(u);
    }
}

#[test]
fn every_unit_has_a_country_of_collection_from_its_form_or_from_collection_toml() {
    let text = std::fs::read_to_string(demo_dir().join("collection.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let assigned = table["country_of_collection"].as_table().unwrap();
    let summary = import();
    for u in &summary.accepted {
        let id = u.passport.id().as_str();
        match u.passport.country_of_collection() {
            Some(_) => assert!(!assigned.contains_key(id), "{id} states its own country"),
            None => {
                let code = assigned
                    .get(id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_else(|| panic!("{id} has no country in collection.toml"));
                assert!(
                    remine_domain::CountryCode::parse(code).is_ok_and(|c| c.is_eu()),
                    "{id}: {code}"
                );
            }
        }
    }
    assert_eq!(
        assigned.len(),
        summary
            .accepted
            .iter()
            .filter(|u| u.passport.country_of_collection().is_none())
            .count(),
        "collection.toml lists only demo units"
    );
}
