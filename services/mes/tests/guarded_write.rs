//! The guarded write path against a real Modbus server (the simulator's
//! discharge line) through the real adapter, with a real SQLite audit trail:
//! role, access, limits and reason are checked before the wire; every
//! attempt is audited with who, old, new and why.

#![allow(clippy::unwrap_used)]

use remine_domain::ports::{Store, TagIo};
use remine_domain::{Role, TagName, TagValue, Username};
use remine_mes::{Actor, GuardedWriter, MesError};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_sim::SimConfig;
use std::sync::Arc;
use std::time::Duration;

const MAP: &str = r#"
[[device]]
name = "discharge-plc"
address = "ADDR"
unit_id = 1
poll_interval_ms = 50

[[tag]]
name = "Discharge/Station1/EndVoltage"
device = "discharge-plc"
table = "holding"
address = 108
type = "f32"
unit = "V"
access = "read_write"
min = 0.5
max = 2.5

[[tag]]
name = "Discharge/Station1/State"
device = "discharge-plc"
table = "input"
address = 100
type = "u16"
access = "read"
"#;

struct Plant {
    _sim: remine_sim::RunningPlant,
    _dir: tempfile::TempDir,
    io: Arc<ModbusAdapter>,
    store: Arc<dyn Store>,
    writer: GuardedWriter,
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
    let map = MAP.replace("ADDR", &sim.discharge_addr().to_string());
    let io = Arc::new(
        ModbusAdapter::start(ModbusConfig::from_toml_str(&map, "test map").unwrap()).unwrap(),
    );
    let store: Arc<dyn Store> =
        Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
    let writer = GuardedWriter::new(io.clone(), store.clone());
    let p = Plant {
        _sim: sim,
        _dir: dir,
        io,
        store,
        writer,
    };
    // Wait for the first poll so that "old" values are known.
    for _ in 0..100 {
        if p.read(END_VOLTAGE).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p
}

const END_VOLTAGE: &str = "Discharge/Station1/EndVoltage";

impl Plant {
    async fn read(&self, tag: &str) -> Option<f64> {
        let t = TagName::parse(tag).unwrap();
        self.io.read(&[t]).await[0]
            .good_value()
            .map(TagValue::as_f64)
    }

    async fn write(&self, role: Role, tag: &str, value: f64, reason: &str) -> Result<f64, String> {
        let actor = Actor {
            user: Username::parse(role.name()).unwrap(),
            role,
        };
        self.writer
            .write(
                &actor,
                &TagName::parse(tag).unwrap(),
                TagValue::Float(value),
                reason,
            )
            .await
            .map(|o| o.new.as_f64())
            .map_err(|e: MesError| e.to_string())
    }

    async fn audit(&self) -> Vec<(String, String, Option<String>, Option<String>, String)> {
        self.store
            .entries(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.event.actor.to_string(),
                    e.event.action,
                    e.event.old,
                    e.event.new,
                    e.event.reason,
                )
            })
            .collect()
    }
}

fn check_refused(result: Result<f64, String>, fragment: &str) {
    let e = result.expect_err("the write must be refused");
    assert!(e.contains(fragment), "'{e}' does not say '{fragment}'");
}

#[tokio::test]
async fn an_operator_writes_a_setpoint_that_is_audited_with_old_and_new_value() {
    let p = plant().await;
    assert_eq!(
        p.read(END_VOLTAGE).await,
        Some(1.0),
        "the simulator's default"
    );
    assert_eq!(
        p.write(Role::Operator, END_VOLTAGE, 0.9, "deeper discharge for LFP")
            .await,
        Ok(0.9)
    );
    let v = p.read(END_VOLTAGE).await.unwrap();
    assert!((v - 0.9).abs() < 1e-6, "read back {v}");
    let audit = p.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "operator");
    assert_eq!(audit[0].1, "tag.write");
    assert_eq!(audit[0].2.as_deref(), Some("1"));
    assert_eq!(audit[0].3.as_deref(), Some("0.9"));
    assert_eq!(audit[0].4, "deeper discharge for LFP");
}

#[tokio::test]
async fn refused_writes_never_reach_the_plc_and_are_audited_with_the_reason() {
    let p = plant().await;
    check_refused(
        p.write(Role::Viewer, END_VOLTAGE, 0.9, "try").await,
        "role viewer may not write setpoints",
    );
    check_refused(
        p.write(Role::Operator, END_VOLTAGE, 3.0, "too high").await,
        "outside its limits 0.5..2.5",
    );
    check_refused(
        p.write(Role::Operator, END_VOLTAGE, 0.9, "  ").await,
        "needs a reason",
    );
    check_refused(
        p.write(Role::Supervisor, "Discharge/Station1/State", 2.0, "force")
            .await,
        "read-only",
    );
    check_refused(
        p.write(Role::Supervisor, "Discharge/Station9/Nothing", 1.0, "x")
            .await,
        "unknown tag",
    );
    assert_eq!(
        p.read(END_VOLTAGE).await,
        Some(1.0),
        "the PLC kept its value"
    );
    let audit = p.audit().await;
    assert_eq!(audit.len(), 5, "{audit:?}");
    assert!(
        audit.iter().all(|a| a.1 == "tag.write.refused"),
        "{audit:?}"
    );
    assert!(audit[1].4.contains("outside its limits"), "{audit:?}");
    assert_eq!(p.store.verify().await.unwrap(), Ok(5));
}
