//! The line-control and alarm routes from outside: the simulator's
//! discharge and mechanical lines over Modbus TCP through the real adapters
//! with the demo's tag maps and control file, a SQLite store, the router.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use remine_api::{AppState, app};
use remine_domain::ports::{Store, TagIo};
use remine_domain::recipe::RecipeKey;
use remine_domain::recipe::lifecycle::Transition;
use remine_domain::{Role, TagName, TagValue, Username};
use remine_mes::{
    Actor, Alarms, ControlConfig, GuardedWriter, LineControl, LiveValues, PlantIo, Recipes, Users,
};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_sim::{Fault, FaultKind, LineId, RunningPlant, SimConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const DISCHARGE_MAP: &str = include_str!("../../remine/demo/plant-discharge.toml");
const MECHANICAL_MAP: &str = include_str!("../../remine/demo/plant-mechanical.toml");
const CONTROL: &str = include_str!("../../remine/demo/control.toml");
const PASSWORD: &str = "a-long-password";

mod common;

struct Fixture {
    state: AppState,
    sim: RunningPlant,
    io: Arc<PlantIo>,
    _dir: tempfile::TempDir,
}

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        user: Username::parse(name).unwrap(),
        role,
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let sim = remine_sim::start(SimConfig {
        discharge: any,
        mechanical: any,
        hydromet: any,
        speed: 600.0,
        pki_dir: dir.path().join("pki"),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut sources: Vec<Arc<dyn TagIo>> = Vec::new();
    for map in [DISCHARGE_MAP, MECHANICAL_MAP] {
        let text = map
            .replace("{{DISCHARGE_ADDR}}", &sim.discharge_addr().to_string())
            .replace("{{MECHANICAL_ADDR}}", &sim.mechanical_addr().to_string());
        let config = ModbusConfig::from_toml_str(&text, "demo map").unwrap();
        sources.push(Arc::new(ModbusAdapter::start(config).unwrap()));
    }
    let io = Arc::new(PlantIo::new(sources).unwrap());
    let db = Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
    let store: Arc<dyn Store> = db.clone();
    let users = Users::new(store.clone(), chrono::Duration::hours(1));
    for (name, role) in [
        ("vera", Role::Viewer),
        ("otto", Role::Operator),
        ("erin", Role::Engineer),
        ("sue", Role::Supervisor),
    ] {
        users
            .add(
                &Actor::system(),
                &Username::parse(name).unwrap(),
                role,
                PASSWORD,
            )
            .await
            .unwrap();
    }
    let recipes = Recipes::new(
        store.clone(),
        users.clone(),
        remine_recipes::shipped_catalogues(),
    );
    let key = RecipeKey::parse("mechanical/NMC811").unwrap();
    let (_, recipe) = remine_recipes::shipped_recipes()
        .into_iter()
        .find(|(_, r)| r.key() == key)
        .unwrap();
    let (erin, sue) = (
        actor("erin", Role::Engineer),
        actor("sue", Role::Supervisor),
    );
    let v = recipes
        .create_draft(&erin, recipe, "shipped")
        .await
        .unwrap()
        .version;
    for (who, t) in [
        (&erin, Transition::Submit),
        (&sue, Transition::Approve),
        (&sue, Transition::Release),
    ] {
        recipes.sign(who, key, v, t, PASSWORD, "ok").await.unwrap();
    }
    // The demo's control file without the hydromet line (no OPC UA here).
    let mut config = ControlConfig::from_toml_str(CONTROL, "demo/control.toml").unwrap();
    config.units.retain(|u| !u.path.starts_with("Hydromet"));
    config
        .permissives
        .retain(|p| !p.unit.starts_with("Hydromet"));
    config.alarms.retain(|a| a.area != "Hydromet");
    config
        .derived
        .retain(|d| !d.name.as_str().starts_with("Hydromet"));
    config.check_against(&io.catalogue()).unwrap();
    let config = Arc::new(config);
    let writer = GuardedWriter::new(io.clone(), store.clone());
    let live = LiveValues::start(io.clone(), io.names(), Duration::from_millis(100));
    let control = LineControl::new(
        config.clone(),
        io.clone(),
        writer.clone(),
        store.clone(),
        recipes.clone(),
    );
    control.watch(&live);
    let alarms = Alarms::start(config, db, store.clone(), &live);
    let state = AppState {
        store,
        users,
        plant: Some(io.clone()),
        writer: Some(writer),
        live,
        site: "control test".into(),
        stats: Vec::new(),
        recipes,
        control: Some(control),
        alarms: Some(alarms),
        history: None,
        facility: None,
        traces: Default::default(),
    };
    let f = Fixture {
        state,
        sim,
        io,
        _dir: dir,
    };
    for _ in 0..400 {
        if f.read("Mechanical/Shredder/State").await.is_some()
            && f.read("Discharge/Station1/State").await.is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    f
}

impl Fixture {
    async fn read(&self, tag: &str) -> Option<f64> {
        self.io.read(&[TagName::parse(tag).unwrap()]).await[0]
            .good_value()
            .map(TagValue::as_f64)
    }
}

async fn request(
    f: &Fixture,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> axum::response::Response {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    app(f.state.clone()).oneshot(req).await.unwrap()
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    common::call(&f.state, method, uri, Some(token), body).await
}

async fn login(f: &Fixture, user: &str) -> String {
    let session = f.state.users.login(user, PASSWORD).await.unwrap();
    session.token
}

use common::check_error as check;

#[tokio::test]
async fn units_show_their_state_and_every_permissive_check_with_why() {
    let f = fixture().await;
    let vera = login(&f, "vera").await;
    f.state
        .writer
        .as_ref()
        .unwrap()
        .write(
            &actor("otto", Role::Operator),
            &TagName::parse("Mechanical/Shredder/N2Flow").unwrap(),
            TagValue::Float(100.0),
            "test",
        )
        .await
        .unwrap();
    let (s, body) = call(&f, "GET", "/api/v1/units", &vera, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let units = body.as_array().unwrap();
    assert_eq!(units.len(), 5, "{body}");
    let shredder = units
        .iter()
        .find(|u| u["path"] == "Mechanical/Shredder")
        .unwrap();
    assert_eq!(shredder["state"], "Idle");
    assert_eq!(shredder["allowed"], json!(["start", "abort"]));
    let start = shredder["permissives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "shredder-start")
        .unwrap();
    assert_eq!(start["permitted"], false);
    assert_eq!(start["checks"][0]["holds"], false);
    assert_eq!(
        start["checks"][0]["why"],
        "Mechanical/Shredder/N2Flow is 100, needs >= 150"
    );
    assert_eq!(start["checks"][1]["holds"], true);
}

#[tokio::test]
async fn commands_are_checked_and_refusals_say_why() {
    let f = fixture().await;
    let (otto, vera) = (login(&f, "otto").await, login(&f, "vera").await);
    let cmd = |c: &str| json!({"command": c, "reason": "test"});
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical.Shredder/commands",
        &otto,
        Some(cmd("hold")),
    )
    .await;
    check(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "hold is not allowed in state Idle",
    );
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical%2FShredder/commands",
        &vera,
        Some(cmd("abort")),
    )
    .await;
    check(s, &b, StatusCode::FORBIDDEN, "role viewer may not");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical.Mill/commands",
        &otto,
        Some(cmd("abort")),
    )
    .await;
    check(s, &b, StatusCode::NOT_FOUND, "unit 'Mechanical/Mill'");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical.Shredder/commands",
        &otto,
        Some(cmd("fly")),
    )
    .await;
    check(s, &b, StatusCode::BAD_REQUEST, "'fly' is not one of");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical.Shredder/commands",
        &otto,
        Some(json!({"command": "start", "reason": "go", "lot": "BM-1"})),
    )
    .await;
    check(s, &b, StatusCode::BAD_REQUEST, "both chemistry and lot");

    let w = f.state.writer.as_ref().unwrap();
    let op = actor("otto", Role::Operator);
    w.write(
        &op,
        &TagName::parse("Mechanical/Shredder/ChargeMass").unwrap(),
        TagValue::Float(5000.0),
        "charge",
    )
    .await
    .unwrap();
    w.write(
        &op,
        &TagName::parse("Mechanical/Shredder/ChargeChemistry").unwrap(),
        TagValue::Int(4),
        "charge",
    )
    .await
    .unwrap();
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/units/Mechanical.Shredder/commands",
        &otto,
        Some(json!({"command": "start", "reason": "shred", "chemistry": "NMC811", "lot": "BM-NMC-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["from"].as_str(), b["to"].as_str()),
        (Some("Idle"), Some("Running"))
    );
    let sue = login(&f, "sue").await;
    let (s, audit) = call(&f, "GET", "/api/v1/audit?limit=1000", &sue, None).await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    for a in [
        "unit.command.refused Mechanical/Shredder",
        "unit.command.refused Mechanical/Mill",
        "recipe.download Mechanical/Shredder batch BM-NMC-1",
        "unit.command Mechanical/Shredder",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:#?}");
    }
}

/// The server-sent events of `body` until every one of `needles` was seen
/// (at most 30 s per frame).
async fn read_until(mut body: Body, needles: &[&str]) -> String {
    let mut text = String::new();
    while !needles.iter().all(|n| text.contains(n)) {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {needles:?} within 30 s in {text}"))
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

#[tokio::test]
async fn alarms_are_listed_acknowledged_shelved_streamed_and_exported() {
    let f = fixture().await;
    let (otto, vera) = (login(&f, "otto").await, login(&f, "vera").await);
    let stream = request(&f, "GET", "/api/v1/alarms/stream", &vera, None).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let both = request(&f, "GET", "/api/v1/stream?alarms=true", &vera, None).await;
    assert_eq!(both.status(), StatusCode::OK);
    f.sim
        .inject(Fault::new(FaultKind::Spike {
            line: LineId::Discharge,
            signal: "station1.max_cell_temperature".into(),
            value: 57.0,
        }))
        .unwrap();
    let text = read_until(stream.into_body(), &["DIS-S1-CELL-HI"]).await;
    assert!(text.contains("event: alarm"), "{text}");
    // One connection carries the live values and the alarms.
    let text = read_until(both.into_body(), &["DIS-S1-CELL-HI", "event: snapshot"]).await;
    assert!(text.contains("event: alarm"), "{text}");

    let (s, b) = call(&f, "GET", "/api/v1/alarms", &vera, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let active = b["active"].as_array().unwrap();
    let hot = active.iter().find(|a| a["id"] == "DIS-S1-CELL-HI").unwrap();
    assert_eq!(
        (hot["status"].as_str(), hot["priority"].as_str()),
        (Some("unacknowledged"), Some("high"))
    );

    let ack = json!({"ids": ["DIS-S1-CELL-HI"], "reason": "fans on"});
    let (s, b) = call(&f, "POST", "/api/v1/alarms/ack", &vera, Some(ack.clone())).await;
    check(s, &b, StatusCode::FORBIDDEN, "role viewer may not");
    let (s, b) = call(&f, "POST", "/api/v1/alarms/ack", &otto, Some(ack)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["acknowledged"][0]["to"]["status"], "acknowledged");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/alarms/ack",
        &otto,
        Some(json!({"ids": ["NOPE"], "reason": "x"})),
    )
    .await;
    check(s, &b, StatusCode::NOT_FOUND, "alarm NOPE");

    let uri = "/api/v1/alarms/DIS-S1-CELL-HI/shelve";
    let (s, b) = call(
        &f,
        "POST",
        uri,
        &otto,
        Some(json!({"minutes": 481, "reason": "sensor"})),
    )
    .await;
    check(s, &b, StatusCode::FORBIDDEN, "at most 480 min");
    let (s, b) = call(
        &f,
        "POST",
        uri,
        &otto,
        Some(json!({"minutes": 30, "oneShot": true, "reason": "x"})),
    )
    .await;
    check(s, &b, StatusCode::BAD_REQUEST, "either minutes");
    let (s, b) = call(
        &f,
        "POST",
        uri,
        &otto,
        Some(json!({"minutes": 30, "reason": "sensor"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["to"]["status"], "shelved");
    let (s, b) = call(&f, "GET", "/api/v1/alarms", &vera, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["shelved"][0]["id"], "DIS-S1-CELL-HI", "{b}");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/alarms/DIS-S1-CELL-HI/unshelve",
        &otto,
        Some(json!({"reason": "sensor fine"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        &f,
        "POST",
        "/api/v1/alarms/DIS-S1-CELL-HI/service",
        &otto,
        Some(json!({"outOfService": true, "reason": "calibration"})),
    )
    .await;
    check(s, &b, StatusCode::FORBIDDEN, "role operator may not");

    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/alarms/history?area=Discharge&priority=high",
        &vera,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let users: Vec<&str> = b
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user"].as_str())
        .collect();
    assert_eq!(users, ["otto", "otto", "otto"], "{b}");
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/alarms/history?priority=urgent",
        &vera,
        None,
    )
    .await;
    check(s, &b, StatusCode::BAD_REQUEST, "alarm priority 'urgent'");
    let (s, b) = call(
        &f,
        "GET",
        "/api/v1/alarms/history?from=yesterday",
        &vera,
        None,
    )
    .await;
    check(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "from 'yesterday' is not an RFC 3339 time",
    );
    let res = request(
        &f,
        "GET",
        "/api/v1/alarms/history?alarm=DIS-S1-CELL-HI&format=csv",
        &vera,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        csv.starts_with("seq,time,alarm,area,priority,event,from,to,value,user,reason\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("unacknowledged,acknowledged,57,otto,fans on"),
        "{csv}"
    );
}

#[tokio::test]
async fn without_a_control_file_the_routes_say_so() {
    let mut f = fixture().await;
    f.state.control = None;
    f.state.alarms = None;
    let vera = login(&f, "vera").await;
    let (s, b) = call(&f, "GET", "/api/v1/units", &vera, None).await;
    check(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "line control is not configured",
    );
    let (s, b) = call(&f, "GET", "/api/v1/alarms", &vera, None).await;
    check(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "alarms are not configured",
    );
}
