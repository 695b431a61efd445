//! Master recipe versions and control recipes: exact round trips, version
//! numbering, draft editing, the life cycle with its signatures and
//! supersession, control recipes of batches, concurrent transitions, and
//! the audit trail they leave.

use crate::fixtures::*;
use crate::harness::Raw;
use remine_domain::ports::{AuditLog, RecipeStore, StoreError};
use remine_domain::recipe::lifecycle::{RecipeStatus, SignatureMeaning};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{
    Adjustment, ControlRecipe, ParamName, Parameter, Phase, PhasePath, Recipe, RecipeKey,
    RecipeRecord, RecipeVersion, Signature,
};
use remine_store::{AuditVerification, Db};

use RecipeStatus::{Approved, Draft, InReview, Released, Superseded};

fn key(s: &str) -> RecipeKey {
    RecipeKey::parse(s).unwrap()
}

fn v(n: u32) -> RecipeVersion {
    RecipeVersion::new(n).unwrap()
}

fn name(s: &str) -> ParamName {
    ParamName::parse(s).unwrap()
}

fn m(value: f64, unit: &str) -> Measure {
    Measure::new(value, Unit::parse(unit).unwrap()).unwrap()
}

fn param(n: &str, value: f64, lo: f64, hi: f64, unit: &str) -> Parameter {
    Parameter::new(name(n), m(value, unit), m(lo, unit), m(hi, unit)).unwrap()
}

fn phase(path: &str, parameters: Vec<Parameter>) -> Phase {
    let mut parts = path.split('.').map(name);
    Phase {
        path: PhasePath {
            unit_procedure: parts.next().unwrap(),
            operation: parts.next().unwrap(),
            phase: parts.next().unwrap(),
        },
        parameters,
    }
}

/// A leach recipe of `key` over three phases (not in alphabetical order)
/// in degC, K, M, g/L, x and pH, with limits given in kelvin for a value in
/// degC, and the leach temperature at `temperature` degC.
fn leach(key_text: &str, temperature: f64) -> Recipe {
    let feed_temperature = Parameter::new(
        name("feed_temperature"),
        m(25.0, "degC"),
        m(283.15, "K"),
        m(313.15, "K"),
    )
    .unwrap();
    Recipe::new(
        key(key_text),
        "Leach in sulphuric acid with peroxide; then solvent extraction.",
        vec![
            phase(
                "leach.heat.ramp",
                vec![
                    param("leach_temperature", temperature, 60.0, 85.0, "degC"),
                    param("hold_temperature", 348.15, 333.15, 358.15, "K"),
                    feed_temperature,
                ],
            ),
            phase(
                "leach.dose.acid",
                vec![
                    param("acid_concentration", 2.0, 1.5, 2.5, "M"),
                    param("solids_loading", 0.1 + 0.2 + 119.7, 80.0, 150.0, "g/L"),
                    param("reductant_ratio", 1.2, 1.0, 2.5, "x"),
                ],
            ),
            phase(
                "extraction.load.mix",
                vec![param("raffinate_ph", 4.5, 3.5, 5.5, "pH")],
            ),
        ],
    )
    .unwrap()
}

/// Version `n` of `recipe` as a fresh draft by erin, created at `n` s.
fn draft(recipe: Recipe, n: u32) -> RecipeRecord {
    RecipeRecord {
        version: v(n),
        status: Draft,
        recipe,
        created_by: user_name("erin"),
        created_at: at(i64::from(n)),
        signatures: vec![],
    }
}

fn signature(user: &str, meaning: SignatureMeaning, secs: i64, reason: &str) -> Signature {
    Signature {
        user: user_name(user),
        meaning,
        at: at(secs),
        reason: reason.into(),
    }
}

/// Stores `draft(leach(key, 75), n)` and returns it.
async fn create(db: &Db, key_text: &str, n: u32) -> RecipeRecord {
    let record = draft(leach(key_text, 75.0), n);
    db.create_recipe_version(&record, event("recipe.create", key_text))
        .await
        .unwrap();
    record
}

/// Moves `key` `n` from `from` to `to`, signed by `user` meaning `meaning`.
async fn step(
    db: &Db,
    key_text: &str,
    n: u32,
    (from, to): (RecipeStatus, RecipeStatus),
    user: &str,
    meaning: SignatureMeaning,
) -> Result<(), StoreError> {
    db.transition_recipe(
        key(key_text),
        v(n),
        from,
        to,
        &signature(user, meaning, 100 + i64::from(n), "ok"),
        event("recipe.transition", key_text),
    )
    .await
}

/// Submits, approves and releases `key` `n`.
async fn release(db: &Db, key_text: &str, n: u32) {
    use SignatureMeaning as M;
    step(db, key_text, n, (Draft, InReview), "erin", M::Authored)
        .await
        .unwrap();
    step(db, key_text, n, (InReview, Approved), "sam", M::Approved)
        .await
        .unwrap();
    step(db, key_text, n, (Approved, Released), "sam", M::Released)
        .await
        .unwrap();
}

async fn stored(db: &Db, key_text: &str, n: u32) -> RecipeRecord {
    db.recipe_version(key(key_text), v(n))
        .await
        .unwrap()
        .unwrap()
}

async fn statuses(db: &Db, key_text: &str) -> Vec<(u32, RecipeStatus)> {
    db.recipe_versions(Some(key(key_text)))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.version.get(), r.status))
        .collect()
}

/// The refusal of a write, checked to be the expected kind and message.
fn check_refused(outcome: Result<(), StoreError>, expected: StoreError) {
    assert_eq!(outcome, Err(expected));
}

async fn audit_count(db: &Db) -> usize {
    db.entries(0, 10_000).await.unwrap().len()
}

async fn a_recipe_of_several_phases_and_units_reads_back_equal(db: Db) {
    let record = create(&db, "hydromet/NMC811", 1).await;
    let back = stored(&db, "hydromet/NMC811", 1).await;
    assert_eq!(back, record);
    let temps: Vec<&str> = back
        .recipe
        .phases()
        .iter()
        .map(|p| p.path.phase.as_str())
        .collect();
    assert_eq!(temps, ["ramp", "acid", "mix"]);
    assert_eq!(
        back.recipe.parameter("feed_temperature").unwrap().min(),
        record.recipe.parameter("feed_temperature").unwrap().min()
    );
}

async fn unknown_versions_read_as_nothing(db: Db) {
    assert_eq!(
        db.recipe_version(key("hydromet/LFP"), v(1)).await.unwrap(),
        None
    );
    assert_eq!(db.recipe_versions(None).await.unwrap(), []);
    assert_eq!(db.released_recipe(key("hydromet/LFP")).await.unwrap(), None);
    assert_eq!(db.control_recipe(&id("B-1")).await.unwrap(), None);
}

async fn versions_are_numbered_from_1_without_gaps(db: Db) {
    check_refused(
        db.create_recipe_version(
            &draft(leach("hydromet/NMC811", 75.0), 2),
            event("recipe.create", "x"),
        )
        .await,
        StoreError::Conflict(
            "recipe hydromet/NMC811: cannot create v2, the next version is v1 (none is stored)"
                .into(),
        ),
    );
    create(&db, "hydromet/NMC811", 1).await;
    for n in [1, 3] {
        check_refused(
            db.create_recipe_version(
                &draft(leach("hydromet/NMC811", 75.0), n),
                event("recipe.create", "x"),
            )
            .await,
            StoreError::Conflict(format!(
                "recipe hydromet/NMC811: cannot create v{n}, the next version is v2 \
                 (the highest stored is v1)"
            )),
        );
    }
    create(&db, "hydromet/NMC811", 2).await;
    create(&db, "hydromet/LFP", 1).await;
    assert_eq!(
        statuses(&db, "hydromet/NMC811").await,
        [(1, Draft), (2, Draft)]
    );
    assert_eq!(audit_count(&db).await, 3);
}

async fn a_new_version_must_be_a_draft(db: Db) {
    let record = RecipeRecord {
        status: Released,
        ..draft(leach("hydromet/NMC811", 75.0), 1)
    };
    check_refused(
        db.create_recipe_version(&record, event("recipe.create", "x"))
            .await,
        StoreError::Conflict(
            "recipe hydromet/NMC811 v1 is given as released; a new version is stored as a draft"
                .into(),
        ),
    );
    assert_eq!(db.recipe_versions(None).await.unwrap(), []);
}

async fn a_draft_is_replaced_until_it_is_submitted(db: Db) {
    let k = key("hydromet/NMC811");
    let first = create(&db, "hydromet/NMC811", 1).await;
    let hotter = leach("hydromet/NMC811", 80.0);
    db.update_recipe_draft(k, v(1), &hotter, event("recipe.edit", "v1"))
        .await
        .unwrap();
    let back = stored(&db, "hydromet/NMC811", 1).await;
    assert_eq!(back.recipe, hotter);
    assert_eq!(back.created_at, first.created_at);
    step(
        &db,
        "hydromet/NMC811",
        1,
        (Draft, InReview),
        "erin",
        SignatureMeaning::Authored,
    )
    .await
    .unwrap();
    check_refused(
        db.update_recipe_draft(k, v(1), &first.recipe, event("recipe.edit", "v1"))
            .await,
        StoreError::Conflict(
            "recipe hydromet/NMC811 v1 is in_review; only a draft may be edited".into(),
        ),
    );
    assert_eq!(stored(&db, "hydromet/NMC811", 1).await.recipe, hotter);
    check_refused(
        db.update_recipe_draft(k, v(9), &hotter, event("recipe.edit", "v9"))
            .await,
        StoreError::NotFound("recipe hydromet/NMC811 v9".into()),
    );
    assert_eq!(audit_count(&db).await, 3);
}

async fn a_released_version_is_never_edited(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    release(&db, "hydromet/NMC811", 1).await;
    check_refused(
        db.update_recipe_draft(
            key("hydromet/NMC811"),
            v(1),
            &leach("hydromet/NMC811", 80.0),
            event("recipe.edit", "v1"),
        )
        .await,
        StoreError::Conflict(
            "recipe hydromet/NMC811 v1 is released; only a draft may be edited".into(),
        ),
    );
}

async fn a_draft_of_another_key_is_refused(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    check_refused(
        db.update_recipe_draft(
            key("hydromet/NMC811"),
            v(1),
            &leach("hydromet/LFP", 75.0),
            event("recipe.edit", "v1"),
        )
        .await,
        StoreError::Conflict(
            "the recipe given for hydromet/NMC811 v1 is a recipe for hydromet/LFP".into(),
        ),
    );
}

async fn a_transition_from_another_status_is_refused_naming_the_stored_one(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    check_refused(
        step(
            &db,
            "hydromet/NMC811",
            1,
            (Approved, Released),
            "sam",
            SignatureMeaning::Released,
        )
        .await,
        StoreError::Conflict(
            "recipe hydromet/NMC811 v1 is draft, not approved; it cannot move to released".into(),
        ),
    );
    check_refused(
        step(
            &db,
            "hydromet/NMC811",
            2,
            (Draft, InReview),
            "erin",
            SignatureMeaning::Authored,
        )
        .await,
        StoreError::NotFound("recipe hydromet/NMC811 v2".into()),
    );
    let back = stored(&db, "hydromet/NMC811", 1).await;
    assert_eq!((back.status, back.signatures.len()), (Draft, 0));
    assert_eq!(audit_count(&db).await, 1);
}

async fn releasing_a_version_supersedes_the_one_released_before(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    create(&db, "hydromet/NMC811", 2).await;
    create(&db, "hydromet/LFP", 1).await;
    release(&db, "hydromet/NMC811", 1).await;
    release(&db, "hydromet/LFP", 1).await;
    assert_eq!(
        statuses(&db, "hydromet/NMC811").await,
        [(1, Released), (2, Draft)]
    );
    release(&db, "hydromet/NMC811", 2).await;
    assert_eq!(
        statuses(&db, "hydromet/NMC811").await,
        [(1, Superseded), (2, Released)]
    );
    let released = db.released_recipe(key("hydromet/NMC811")).await.unwrap();
    assert_eq!(released, Some(stored(&db, "hydromet/NMC811", 2).await));
    assert_eq!(statuses(&db, "hydromet/LFP").await, [(1, Released)]);
}

async fn signatures_are_kept_in_order(db: Db) {
    use SignatureMeaning as M;
    create(&db, "hydromet/NMC811", 1).await;
    let k = key("hydromet/NMC811");
    let signed = [
        (Draft, InReview, signature("erin", M::Authored, 10, "")),
        (
            InReview,
            Draft,
            signature("sam", M::Rejected, 11, "acid too strong"),
        ),
        (
            Draft,
            InReview,
            signature("erin", M::Authored, 12, "acid reduced"),
        ),
        (InReview, Approved, signature("sam", M::Approved, 13, "")),
        (
            Approved,
            Released,
            signature("sam", M::Released, 14, "for week 12"),
        ),
    ];
    for (from, to, s) in &signed {
        db.transition_recipe(k, v(1), *from, *to, s, event("recipe.transition", "v1"))
            .await
            .unwrap();
    }
    let back = stored(&db, "hydromet/NMC811", 1).await;
    let expected: Vec<Signature> = signed.into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(back.signatures, expected);
    assert_eq!(back.submitted_by(), Some(&user_name("erin")));
}

async fn versions_come_by_key_then_version_and_filter_by_key(db: Db) {
    for (k, n) in [
        ("hydromet/LFP", 1),
        ("discharge/NMC811", 1),
        ("hydromet/LFP", 2),
        ("hydromet/NMC111", 1),
        ("discharge/NMC811", 2),
    ] {
        create(&db, k, n).await;
    }
    let all: Vec<(RecipeKey, u32)> = db
        .recipe_versions(None)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.key(), r.version.get()))
        .collect();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(all.len(), 5);
    assert_eq!(
        statuses(&db, "hydromet/LFP").await,
        [(1, Draft), (2, Draft)]
    );
    assert_eq!(statuses(&db, "mechanical/LFP").await, []);
}

/// Batch B-7's control recipe: v1 of hydromet/NMC811 with the leach
/// temperature raised to 353.15 K and the acid lowered.
fn control(batch: &str) -> ControlRecipe {
    let master = leach("hydromet/NMC811", 75.0);
    let recipe = master
        .adjusted("leach_temperature", m(353.15, "K"))
        .unwrap()
        .adjusted("acid_concentration", m(1.8, "mol/L"))
        .unwrap();
    ControlRecipe {
        batch: id(batch),
        unit: "Hydromet/Leach1".into(),
        version: v(1),
        recipe,
        adjustments: vec![
            Adjustment {
                parameter: name("leach_temperature"),
                from: m(75.0, "degC"),
                to: m(353.15, "K"),
                reason: "slow dissolution".into(),
            },
            Adjustment {
                parameter: name("acid_concentration"),
                from: m(2.0, "M"),
                to: m(1.8, "mol/L"),
                reason: "".into(),
            },
        ],
        downloaded_by: user_name("op1"),
        downloaded_at: at(500),
    }
}

async fn a_control_recipe_reads_back_as_recorded(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    release(&db, "hydromet/NMC811", 1).await;
    let c = control("B-7");
    db.record_control_recipe(&c, event("recipe.download", "B-7"))
        .await
        .unwrap();
    assert_eq!(db.control_recipe(&id("B-7")).await.unwrap(), Some(c));
    assert_eq!(db.control_recipe(&id("B-8")).await.unwrap(), None);
}

async fn a_second_control_recipe_for_a_batch_is_refused(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    let first = control("B-7");
    db.record_control_recipe(&first, event("recipe.download", "B-7"))
        .await
        .unwrap();
    let second = ControlRecipe {
        unit: "Hydromet/Leach2".into(),
        adjustments: vec![],
        ..control("B-7")
    };
    check_refused(
        db.record_control_recipe(&second, event("recipe.download", "B-7"))
            .await,
        StoreError::Conflict(
            "batch B-7 already has a control recipe (from recipe hydromet/NMC811 v1)".into(),
        ),
    );
    assert_eq!(db.control_recipe(&id("B-7")).await.unwrap(), Some(first));
    assert_eq!(audit_count(&db).await, 2);
}

async fn a_control_recipe_of_an_unknown_master_version_is_refused(db: Db) {
    check_refused(
        db.record_control_recipe(&control("B-7"), event("recipe.download", "B-7"))
            .await,
        StoreError::NotFound(
            "recipe hydromet/NMC811 v1 (the master of batch B-7's control recipe)".into(),
        ),
    );
    assert_eq!(db.control_recipe(&id("B-7")).await.unwrap(), None);
    assert_eq!(audit_count(&db).await, 0);
}

/// Eight tasks (over `db` and `other`, which may be one handle or two) try
/// to submit v1 of hydromet/NMC811 at once; then two approved versions are
/// released at once.
async fn check_concurrent_transitions(db: &Db, other: &Db) {
    create(db, "hydromet/NMC811", 1).await;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let db = if task % 2 == 0 {
                db.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                step(
                    &db,
                    "hydromet/NMC811",
                    1,
                    (Draft, InReview),
                    "erin",
                    SignatureMeaning::Authored,
                )
                .await
            })
        })
        .collect();
    let mut outcomes = vec![];
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for o in outcomes.into_iter().filter(Result::is_err) {
        assert_eq!(
            o,
            Err(StoreError::Conflict(
                "recipe hydromet/NMC811 v1 is in_review, not draft; it cannot move to in_review"
                    .into()
            ))
        );
    }
    assert_eq!(stored(db, "hydromet/NMC811", 1).await.signatures.len(), 1);

    use SignatureMeaning as M;
    create(db, "hydromet/NMC811", 2).await;
    step(
        db,
        "hydromet/NMC811",
        1,
        (InReview, Approved),
        "sam",
        M::Approved,
    )
    .await
    .unwrap();
    step(
        db,
        "hydromet/NMC811",
        2,
        (Draft, InReview),
        "erin",
        M::Authored,
    )
    .await
    .unwrap();
    step(
        db,
        "hydromet/NMC811",
        2,
        (InReview, Approved),
        "sam",
        M::Approved,
    )
    .await
    .unwrap();
    let releases: Vec<_> = [(db.clone(), 1), (other.clone(), 2)]
        .into_iter()
        .map(|(db, n)| {
            tokio::spawn(async move {
                step(
                    &db,
                    "hydromet/NMC811",
                    n,
                    (Approved, Released),
                    "sam",
                    M::Released,
                )
                .await
            })
        })
        .collect();
    for r in releases {
        r.await.unwrap().unwrap();
    }
    let released: Vec<(u32, RecipeStatus)> = statuses(db, "hydromet/NMC811")
        .await
        .into_iter()
        .filter(|(_, s)| *s == Released)
        .collect();
    assert_eq!(
        released.len(),
        1,
        "{:?}",
        statuses(db, "hydromet/NMC811").await
    );
    assert!(db.verify_audit().await.unwrap().is_intact());
}

async fn concurrent_transitions_of_one_version_let_exactly_one_through(db: Db) {
    check_concurrent_transitions(&db, &db).await;
}

/// Two handles on one database stand for two processes.
async fn concurrent_transitions_through_two_handles_let_exactly_one_through(db: Db, raw: Raw) {
    let other = Db::open(&raw.url).await.unwrap();
    check_concurrent_transitions(&db, &other).await;
    other.close().await;
}

async fn the_database_itself_refuses_a_second_released_version(db: Db, raw: Raw) {
    create(&db, "hydromet/NMC811", 1).await;
    create(&db, "hydromet/NMC811", 2).await;
    release(&db, "hydromet/NMC811", 1).await;
    let refused = raw
        .try_execute(
            "UPDATE recipe_versions SET status = 'released' \
             WHERE line = 'hydromet' AND chemistry = 'NMC811' AND version = 2",
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

async fn a_stored_row_that_breaks_the_domain_rules_is_reported_as_corrupt(db: Db, raw: Raw) {
    create(&db, "hydromet/NMC811", 1).await;
    raw.execute(
        "UPDATE recipe_parameters SET unit = 'furlong' \
         WHERE version = 1 AND name = 'acid_concentration'",
    )
    .await;
    let e = db
        .recipe_version(key("hydromet/NMC811"), v(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "stored data is invalid: recipe_parameters hydromet/NMC811 v1 #3: \
             unit 'furlong' is invalid"
        ),
        "{e}"
    );
    raw.execute("UPDATE recipe_versions SET status = 'lost' WHERE version = 1")
        .await;
    let e = db.recipe_versions(None).await.unwrap_err().to_string();
    assert!(
        e.contains("recipe_versions hydromet/NMC811 v1: recipe status 'lost'"),
        "{e}"
    );
}

/// Every write of the other tests, in one history: each success is one
/// entry, each refusal none, and the chain holds.
async fn the_audit_chain_holds_after_every_kind_of_recipe_write(db: Db) {
    create(&db, "hydromet/NMC811", 1).await;
    db.update_recipe_draft(
        key("hydromet/NMC811"),
        v(1),
        &leach("hydromet/NMC811", 70.0),
        event("recipe.edit", "v1"),
    )
    .await
    .unwrap();
    release(&db, "hydromet/NMC811", 1).await;
    create(&db, "hydromet/NMC811", 2).await;
    release(&db, "hydromet/NMC811", 2).await;
    let refused = step(
        &db,
        "hydromet/NMC811",
        2,
        (Draft, InReview),
        "erin",
        SignatureMeaning::Authored,
    )
    .await;
    assert!(refused.is_err());
    db.record_control_recipe(&control("B-7"), event("recipe.download", "B-7"))
        .await
        .unwrap();
    assert!(
        db.record_control_recipe(&control("B-7"), event("recipe.download", "B-7"))
            .await
            .is_err()
    );
    let actions: Vec<String> = db
        .entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.action)
        .collect();
    assert_eq!(actions.len(), 10, "{actions:?}");
    assert_eq!(actions.last().map(String::as_str), Some("recipe.download"));
    assert_eq!(
        db.verify_audit().await.unwrap(),
        AuditVerification::Intact { entries: 10 }
    );
}

on_both_backends!(
    a_recipe_of_several_phases_and_units_reads_back_equal,
    unknown_versions_read_as_nothing,
    versions_are_numbered_from_1_without_gaps,
    a_new_version_must_be_a_draft,
    a_draft_is_replaced_until_it_is_submitted,
    a_released_version_is_never_edited,
    a_draft_of_another_key_is_refused,
    a_transition_from_another_status_is_refused_naming_the_stored_one,
    releasing_a_version_supersedes_the_one_released_before,
    signatures_are_kept_in_order,
    versions_come_by_key_then_version_and_filter_by_key,
    a_control_recipe_reads_back_as_recorded,
    a_second_control_recipe_for_a_batch_is_refused,
    a_control_recipe_of_an_unknown_master_version_is_refused,
    concurrent_transitions_of_one_version_let_exactly_one_through,
    the_audit_chain_holds_after_every_kind_of_recipe_write,
);

on_both_backends!(
    raw: concurrent_transitions_through_two_handles_let_exactly_one_through,
    the_database_itself_refuses_a_second_released_version,
    a_stored_row_that_breaks_the_domain_rules_is_reported_as_corrupt,
);
