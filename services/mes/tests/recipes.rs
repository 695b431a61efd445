//! Recipes against the real parts: the shipped recipes and equipment
//! catalogues, a SQLite store, the simulator's discharge line over Modbus
//! TCP through the real adapter (the demo's own tag map).
//!
//! The life cycle is signed by two different people who re-enter their
//! passwords; a released recipe becomes a batch's control recipe only on an
//! Idle unit, and the PLC is then shown to hold every setpoint; every step
//! and every refusal is in the audit chain.

#![allow(clippy::unwrap_used)]

use remine_domain::ports::{Store, TagIo};
use remine_domain::recipe::lifecycle::{RecipeStatus, Transition};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{
    ParamName, Parameter, Phase, PhasePath, Recipe, RecipeKey, RecipeVersion,
};
use remine_domain::{Chemistry, LotId, Role, TagName, TagValue, UnitState, Username};
use remine_mes::{Actor, DownloadRequest, GuardedWriter, MesError, Recipes, Users};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_sim::SimConfig;
use std::sync::Arc;
use std::time::Duration;

const DISCHARGE_MAP: &str = include_str!("../../remine/demo/plant-discharge.toml");
const PASSWORD: &str = "correct horse battery";

struct Plant {
    _sim: remine_sim::RunningPlant,
    _dir: tempfile::TempDir,
    io: Arc<ModbusAdapter>,
    store: Arc<dyn Store>,
    writer: GuardedWriter,
    recipes: Recipes,
}

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        user: Username::parse(name).unwrap(),
        role,
    }
}

fn erin() -> Actor {
    actor("erin", Role::Engineer)
}

fn sam() -> Actor {
    actor("sam", Role::Supervisor)
}

fn olga() -> Actor {
    actor("olga", Role::Operator)
}

fn key(s: &str) -> RecipeKey {
    RecipeKey::parse(s).unwrap()
}

fn v(n: u32) -> RecipeVersion {
    RecipeVersion::new(n).unwrap()
}

async fn plant() -> Plant {
    let dir = tempfile::tempdir().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let sim = remine_sim::start(SimConfig {
        discharge: any,
        mechanical: any,
        hydromet: any,
        pki_dir: dir.path().join("pki"),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let map = DISCHARGE_MAP.replace("{{DISCHARGE_ADDR}}", &sim.discharge_addr().to_string());
    let io = Arc::new(
        ModbusAdapter::start(ModbusConfig::from_toml_str(&map, "demo discharge map").unwrap())
            .unwrap(),
    );
    let store: Arc<dyn Store> =
        Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
    let users = Users::new(store.clone(), chrono::Duration::hours(1));
    for a in [erin(), sam(), olga(), actor("sue", Role::Supervisor)] {
        users
            .add(&Actor::system(), &a.user, a.role, PASSWORD)
            .await
            .unwrap();
    }
    let writer = GuardedWriter::new(io.clone(), store.clone());
    let recipes = Recipes::new(store.clone(), users, remine_recipes::shipped_catalogues());
    let p = Plant {
        _sim: sim,
        _dir: dir,
        io,
        store,
        writer,
        recipes,
    };
    for _ in 0..200 {
        if p.read("Discharge/Station1/State").await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p
}

impl Plant {
    async fn read(&self, tag: &str) -> Option<f64> {
        let t = TagName::parse(tag).unwrap();
        self.io.read(&[t]).await[0]
            .good_value()
            .map(TagValue::as_f64)
    }

    /// Stores the shipped recipe for `k` as a draft by erin.
    async fn draft(&self, k: &str) -> RecipeVersion {
        let (_, recipe) = remine_recipes::shipped_recipes()
            .into_iter()
            .find(|(_, r)| r.key() == key(k))
            .unwrap();
        self.recipes
            .create_draft(&erin(), recipe, "from the shipped defaults")
            .await
            .unwrap()
            .version
    }

    async fn sign(
        &self,
        who: &Actor,
        k: &str,
        n: u32,
        t: Transition,
    ) -> Result<RecipeStatus, MesError> {
        self.recipes
            .sign(who, key(k), v(n), t, PASSWORD, "checked against the SOP")
            .await
            .map(|r| r.status)
    }

    /// Draft, submit (erin), approve and release (sam).
    async fn release(&self, k: &str) -> RecipeVersion {
        let n = self.draft(k).await;
        self.sign(&erin(), k, n.get(), Transition::Submit)
            .await
            .unwrap();
        self.sign(&sam(), k, n.get(), Transition::Approve)
            .await
            .unwrap();
        self.sign(&sam(), k, n.get(), Transition::Release)
            .await
            .unwrap();
        n
    }

    async fn download(
        &self,
        who: &Actor,
        batch: &str,
        adjust: Vec<(String, Measure, String)>,
    ) -> Result<remine_domain::recipe::ControlRecipe, MesError> {
        self.recipes
            .download(
                &self.writer,
                self.io.as_ref(),
                who,
                DownloadRequest {
                    unit: "Discharge/Station1".into(),
                    chemistry: Chemistry::Nmc811,
                    batch: LotId::parse(batch).unwrap(),
                    adjustments: adjust,
                },
            )
            .await
    }

    async fn actions(&self) -> Vec<String> {
        self.store
            .entries(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {} {}", e.event.actor, e.event.action, e.event.target))
            .collect()
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, MesError>, fragment: &str) {
    let e = r.expect_err("must be refused").to_string();
    assert!(e.contains(fragment), "'{e}' does not say '{fragment}'");
}

#[tokio::test]
async fn a_released_recipe_becomes_the_batchs_control_recipe_and_the_plc_holds_its_setpoints() {
    let p = plant().await;
    p.release("discharge/NMC811").await;
    let adjust = vec![(
        "max_current".to_string(),
        Measure::new(250.0, Unit::Ampere).unwrap(),
        "cable rated lower on station 1".to_string(),
    )];
    let control = p.download(&olga(), "DB-T-1", adjust).await.unwrap();

    assert_eq!(control.version, v(1));
    assert_eq!(control.adjustments.len(), 1);
    let r = &control.recipe;
    let want =
        |name: &str, unit: Unit| r.parameter(name).unwrap().value().to(unit).unwrap().value();
    for (tag, expected) in [
        (
            "Discharge/Station1/EndVoltage",
            want("end_voltage_per_cell", Unit::Volt),
        ),
        ("Discharge/Station1/MaxCurrent", 250.0),
        (
            "Discharge/Station1/MaxTemp",
            want("max_cell_temperature", Unit::Celsius),
        ),
        (
            "Discharge/Station1/HoldTime",
            want("end_voltage_hold", Unit::Minute),
        ),
    ] {
        let got = p.read(tag).await.unwrap();
        assert!(
            (got - expected).abs() < 1e-4,
            "{tag}: PLC holds {got}, recipe says {expected}"
        );
    }
    let stored = p
        .recipes
        .control_recipe(&LotId::parse("DB-T-1").unwrap())
        .await
        .unwrap();
    assert_eq!(stored, control);

    let actions = p.actions().await;
    for step in [
        "erin recipe.create discharge/NMC811 v1",
        "erin recipe.submit discharge/NMC811 v1",
        "sam recipe.approve discharge/NMC811 v1",
        "sam recipe.release discharge/NMC811 v1",
        "olga tag.write Discharge/Station1/EndVoltage",
        "olga tag.write Discharge/Station1/MaxCurrent",
        "olga recipe.download Discharge/Station1 batch DB-T-1",
    ] {
        assert!(
            actions.iter().any(|a| a == step),
            "no audit entry '{step}' in {actions:#?}"
        );
    }
    assert!(p.store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn the_author_may_not_approve_their_own_version_and_the_refusal_is_audited() {
    let p = plant().await;
    let sue = actor("sue", Role::Supervisor);
    let (_, recipe) = remine_recipes::shipped_recipes()
        .into_iter()
        .find(|(_, r)| r.key() == key("hydromet/LFP"))
        .unwrap();
    p.recipes.create_draft(&sue, recipe, "").await.unwrap();
    p.sign(&sue, "hydromet/LFP", 1, Transition::Submit)
        .await
        .unwrap();
    refused(
        p.sign(&sue, "hydromet/LFP", 1, Transition::Approve).await,
        "second person",
    );
    refused(
        p.sign(&erin(), "hydromet/LFP", 1, Transition::Approve)
            .await,
        "supervisor",
    );
    assert_eq!(
        p.sign(&sam(), "hydromet/LFP", 1, Transition::Approve)
            .await
            .unwrap(),
        RecipeStatus::Approved
    );
    let actions = p.actions().await;
    assert!(
        actions.contains(&"sue recipe.approve.refused hydromet/LFP v1".to_string()),
        "{actions:#?}"
    );
    assert!(
        actions.contains(&"erin recipe.approve.refused hydromet/LFP v1".to_string()),
        "{actions:#?}"
    );
    // A rejection sends the next version back to its author, with a reason.
    let mut v2 = p
        .recipes
        .get(key("hydromet/LFP"), v(1))
        .await
        .unwrap()
        .recipe;
    v2 = v2
        .adjusted(
            "leach_temperature",
            Measure::new(62.0, Unit::Celsius).unwrap(),
        )
        .unwrap();
    p.sign(&sam(), "hydromet/LFP", 1, Transition::Release)
        .await
        .unwrap();
    p.recipes
        .create_draft(&sue, v2, "cooler leach")
        .await
        .unwrap();
    p.sign(&sue, "hydromet/LFP", 2, Transition::Submit)
        .await
        .unwrap();
    let sam = sam();
    let reject = |reason: &'static str| {
        p.recipes.sign(
            &sam,
            key("hydromet/LFP"),
            v(2),
            Transition::Reject,
            PASSWORD,
            reason,
        )
    };
    refused(reject("").await, "needs a reason");
    assert_eq!(
        reject("explain the cooler leach").await.unwrap().status,
        RecipeStatus::Draft
    );
}

#[tokio::test]
async fn a_signature_with_the_wrong_password_is_refused() {
    let p = plant().await;
    p.draft("mechanical/NCA").await;
    let r = p
        .recipes
        .sign(
            &erin(),
            key("mechanical/NCA"),
            v(1),
            Transition::Submit,
            "not my password",
            "",
        )
        .await;
    refused(r, "password does not match");
    let rec = p.recipes.get(key("mechanical/NCA"), v(1)).await.unwrap();
    assert_eq!(rec.status, RecipeStatus::Draft);
    assert!(rec.signatures.is_empty());
}

#[tokio::test]
async fn a_released_version_is_immutable_and_a_new_release_supersedes_it() {
    let p = plant().await;
    p.release("discharge/LFP").await;
    let v1 = p.recipes.get(key("discharge/LFP"), v(1)).await.unwrap();
    refused(
        p.recipes
            .edit_draft(
                &erin(),
                key("discharge/LFP"),
                v(1),
                v1.recipe.clone(),
                "tweak",
            )
            .await,
        "only a draft may be edited",
    );
    let cooler = v1.recipe.adjusted(
        "max_cell_temperature",
        Measure::new(318.15, Unit::Kelvin).unwrap(),
    );
    let draft = p
        .recipes
        .create_draft(&erin(), cooler.unwrap(), "run LFP cooler")
        .await
        .unwrap();
    assert_eq!(draft.version, v(2));
    refused(
        p.recipes
            .create_draft(&erin(), v1.recipe.clone(), "another")
            .await,
        "still draft",
    );
    p.sign(&erin(), "discharge/LFP", 2, Transition::Submit)
        .await
        .unwrap();
    p.sign(&sam(), "discharge/LFP", 2, Transition::Approve)
        .await
        .unwrap();
    p.sign(&sam(), "discharge/LFP", 2, Transition::Release)
        .await
        .unwrap();
    let v1 = p.recipes.get(key("discharge/LFP"), v(1)).await.unwrap();
    assert_eq!(v1.status, RecipeStatus::Superseded);
    let d = p
        .recipes
        .diff(key("discharge/LFP"), v(1), v(2))
        .await
        .unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].to_string().contains("max_cell_temperature"),
        "{}",
        d[0]
    );
}

#[tokio::test]
async fn an_invalid_recipe_is_refused_naming_the_parameter_and_nothing_is_stored() {
    let p = plant().await;
    let (_, recipe) = remine_recipes::shipped_recipes()
        .into_iter()
        .find(|(_, r)| r.key() == key("mechanical/NMC622"))
        .unwrap();
    let name = |s: &str| ParamName::parse(s).unwrap();
    let mm = |x: f64| Measure::new(x, Unit::Millimetre).unwrap();
    let mut phases = recipe.phases().to_vec();
    phases.push(Phase {
        path: PhasePath {
            unit_procedure: name("paint"),
            operation: name("main"),
            phase: name("coat"),
        },
        parameters: vec![Parameter::new(name("colour"), mm(3.0), mm(1.0), mm(5.0)).unwrap()],
    });
    let bad = Recipe::new(recipe.key(), "with an unknown parameter", phases).unwrap();
    refused(
        p.recipes.create_draft(&erin(), bad, "").await,
        "parameter colour: unknown parameter",
    );
    refused(
        p.recipes
            .create_draft(&olga(), recipe.clone(), "operators do not author recipes")
            .await,
        "engineer",
    );
    assert!(
        p.recipes
            .list(Some(key("mechanical/NMC622")))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_download_is_refused_unless_the_unit_is_idle() {
    let p = plant().await;
    p.release("discharge/NMC811").await;
    // Load station 1 and start it.
    for (signal, value) in [
        ("Chemistry", 4.0),
        ("CellsInSeries", 96.0),
        ("CapacityAh", 60.0),
        ("UnitMass", 300.0),
        ("Command", 1.0),
    ] {
        let tag = TagName::parse(&format!("Discharge/Station1/{signal}")).unwrap();
        let value = if signal == "CapacityAh" || signal == "UnitMass" {
            TagValue::Float(value)
        } else {
            TagValue::Int(value as i64)
        };
        p.writer
            .write(&olga(), &tag, value, "start a test batch")
            .await
            .unwrap();
    }
    let mut running = false;
    for _ in 0..100 {
        if p.read("Discharge/Station1/State").await == Some(f64::from(UnitState::Running.code())) {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "station 1 did not start");
    refused(
        p.download(&olga(), "DB-T-2", vec![]).await,
        "only to an Idle unit",
    );
    let actions = p.actions().await;
    assert!(
        actions
            .contains(&"olga recipe.download.refused Discharge/Station1 batch DB-T-2".to_string()),
        "{actions:#?}"
    );
    refused(
        p.recipes
            .control_recipe(&LotId::parse("DB-T-2").unwrap())
            .await,
        "not found",
    );
}

#[tokio::test]
async fn a_download_without_a_released_recipe_or_beyond_the_limits_writes_nothing() {
    let p = plant().await;
    let before = p.read("Discharge/Station1/MaxCurrent").await.unwrap();
    refused(
        p.download(&olga(), "DB-T-3", vec![]).await,
        "no released recipe for discharge/NMC811",
    );
    p.release("discharge/NMC811").await;
    let too_much = vec![(
        "max_current".to_string(),
        Measure::new(5000.0, Unit::Ampere).unwrap(),
        "more".to_string(),
    )];
    refused(p.download(&olga(), "DB-T-3", too_much).await, "max_current");
    let viewer = actor("vic", Role::Viewer);
    refused(p.download(&viewer, "DB-T-3", vec![]).await, "may not");
    assert_eq!(
        p.read("Discharge/Station1/MaxCurrent").await.unwrap(),
        before
    );
    let writes = p
        .actions()
        .await
        .into_iter()
        .filter(|a| a.contains("tag.write"))
        .count();
    assert_eq!(writes, 0);
}
