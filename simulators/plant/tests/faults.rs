//! Faults as a client of a real plant meets them: each fault is injected
//! while the plant runs and seen through a real Modbus TCP or OPC UA client,
//! or through the HTTP control endpoint (simulators/README.md, "Faults").

mod support;

use opcua::types::{ReadValueId, TimestampsToReturn, Variant};
use remine_sim::{Fault, FaultKind, LineId, RunningPlant, SimConfig, SimError, start};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::prelude::{ExceptionCode, Slave};

const LIMIT: Duration = Duration::from_secs(10);
const DISCHARGE: u8 = 1;
const MECHANICAL: u8 = 2;
/// Input registers of the mechanical line.
const M_STATE: u16 = 2;
const M_ALARMS: u16 = 4;
const M_TRIP_CAUSE: u16 = 5;
const M_FEEDING: u16 = 6;
const M_O2: u16 = 10;
const M_FILTER_DP: u16 = 30;
/// Station 1 of the discharge line.
const S1: u16 = 100;
const S_STATE: u16 = 0;
const S_ALARMS: u16 = 2;
const S_MAX_CELL_TEMP: u16 = 14;
const S_MAX_CURRENT: u16 = 10;
const ABORTED: u16 = 10;

fn words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, (b & 0xFFFF) as u16]
}

fn f32_of(w: &[u16]) -> f32 {
    f32::from_bits((u32::from(w[0]) << 16) | u32::from(w[1]))
}

/// A plant for fault tests, with its control endpoint on a free port.
async fn plant(speed: f64) -> (RunningPlant, tempfile::TempDir) {
    let pki = tempfile::tempdir().expect("temp dir");
    let plant = start(SimConfig {
        discharge: "127.0.0.1:0".parse().expect("addr"),
        mechanical: "127.0.0.1:0".parse().expect("addr"),
        hydromet: "127.0.0.1:0".parse().expect("addr"),
        control: Some("127.0.0.1:0".parse().expect("addr")),
        speed,
        seed: 7,
        pki_dir: pki.path().join("pki"),
        stations: 2,
        ..SimConfig::default()
    })
    .await
    .expect("the plant starts");
    (plant, pki)
}

async fn connect(addr: SocketAddr, unit: u8) -> Context {
    tokio::time::timeout(LIMIT, tcp::connect_slave(addr, Slave(unit)))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Read input registers; `Err` carries what went wrong (a transport error,
/// an exception, or no answer within `within`).
async fn input(ctx: &mut Context, addr: u16, n: u16, within: Duration) -> Result<Vec<u16>, String> {
    match tokio::time::timeout(within, ctx.read_input_registers(addr, n)).await {
        Err(_) => Err("no answer".into()),
        Ok(Err(e)) => Err(format!("transport: {e}")),
        Ok(Ok(Err(code))) => Err(format!("exception: {code:?}")),
        Ok(Ok(Ok(w))) => Ok(w),
    }
}

async fn u16_in(ctx: &mut Context, addr: u16) -> u16 {
    input(ctx, addr, 1, LIMIT).await.expect("read")[0]
}

async fn f32_in(ctx: &mut Context, addr: u16) -> f32 {
    f32_of(&input(ctx, addr, 2, LIMIT).await.expect("read"))
}

async fn write(ctx: &mut Context, addr: u16, w: &[u16]) {
    let r = tokio::time::timeout(LIMIT, ctx.write_multiple_registers(addr, w))
        .await
        .expect("in time")
        .expect("transport");
    assert_eq!(r, Ok(()), "write at {addr}");
}

/// Poll until `probe` holds, or fail naming `what`.
async fn until(what: &str, ctx: &mut Context, mut probe: impl AsyncFnMut(&mut Context) -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !probe(ctx).await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn inject(plant: &RunningPlant, kind: FaultKind) -> u64 {
    plant
        .inject(Fault::new(kind))
        .expect("the fault is accepted")
}

/// Start the shredder on a 2 t NMC811 charge and wait until it feeds.
async fn shred(m: &mut Context) {
    let [a, b] = words(2000.0);
    write(m, 1, &[4, a, b]).await;
    write(m, 0, &[1]).await;
    until("the shredder to feed", m, async |m| {
        u16_in(m, M_FEEDING).await == 1
    })
    .await;
}

#[tokio::test]
async fn a_drop_closes_the_clients_connection_and_a_new_one_is_served() {
    let (plant, _pki) = plant(10.0).await;
    let mut c = connect(plant.discharge_addr(), DISCHARGE).await;
    assert!(input(&mut c, 0, 3, LIMIT).await.is_ok());
    inject(
        &plant,
        FaultKind::Drop {
            line: LineId::Discharge,
        },
    );
    let after = input(&mut c, 0, 3, LIMIT).await;
    assert!(
        after.as_ref().is_err_and(|e| e.starts_with("transport")),
        "the dropped connection fails at once: {after:?}"
    );
    let mut fresh = connect(plant.discharge_addr(), DISCHARGE).await;
    assert!(
        input(&mut fresh, 0, 3, LIMIT).await.is_ok(),
        "a new connection is served"
    );
    assert!(plant.faults().is_empty(), "a drop is over once done");
}

#[tokio::test]
async fn a_hang_swallows_requests_until_cleared_then_new_connections_work() {
    let (plant, _pki) = plant(10.0).await;
    let mut c = connect(plant.mechanical_addr(), MECHANICAL).await;
    assert!(input(&mut c, 0, 2, LIMIT).await.is_ok());
    let id = inject(
        &plant,
        FaultKind::Hang {
            line: LineId::Mechanical,
        },
    );
    let short = Duration::from_millis(500);
    assert_eq!(input(&mut c, 0, 2, short).await, Err("no answer".into()));
    let mut during = connect(plant.mechanical_addr(), MECHANICAL).await;
    assert_eq!(
        input(&mut during, 0, 2, short).await,
        Err("no answer".into()),
        "a connection made during the hang is accepted and never answered"
    );
    assert!(plant.clear(id));
    let mut fresh = connect(plant.mechanical_addr(), MECHANICAL).await;
    assert!(
        input(&mut fresh, 0, 2, LIMIT).await.is_ok(),
        "answers again"
    );
    let hung = input(&mut during, 0, 2, LIMIT).await;
    assert!(
        hung.as_ref().is_err_and(|e| e.starts_with("transport")),
        "a hung connection is closed when the hang ends: {hung:?}"
    );
}

#[tokio::test]
async fn a_slow_line_answers_after_the_delay() {
    let (plant, _pki) = plant(10.0).await;
    let mut c = connect(plant.discharge_addr(), DISCHARGE).await;
    let timed = async |c: &mut Context| {
        let t = Instant::now();
        input(c, 0, 3, LIMIT).await.expect("answered");
        t.elapsed()
    };
    let id = inject(
        &plant,
        FaultKind::Slow {
            line: LineId::Discharge,
            delay_ms: 300,
        },
    );
    let slow = timed(&mut c).await;
    assert!(slow >= Duration::from_millis(300), "round trip {slow:?}");
    plant.clear(id);
    let fast = timed(&mut c).await;
    assert!(
        fast < Duration::from_millis(300),
        "round trip after clearing {fast:?}"
    );
}

#[tokio::test]
async fn an_injected_exception_answers_for_its_signal_and_nowhere_else() {
    let (plant, _pki) = plant(10.0).await;
    let mut m = connect(plant.mechanical_addr(), MECHANICAL).await;
    let id = inject(
        &plant,
        FaultKind::Exception {
            line: LineId::Mechanical,
            code: 4,
            signal: Some("chamber_o2".into()),
        },
    );
    assert_eq!(
        input(&mut m, M_O2, 2, LIMIT).await,
        Err(format!(
            "exception: {:?}",
            ExceptionCode::ServerDeviceFailure
        ))
    );
    assert_eq!(
        input(&mut m, 0, 12, LIMIT).await,
        Err(format!(
            "exception: {:?}",
            ExceptionCode::ServerDeviceFailure
        )),
        "a read spanning the signal fails too"
    );
    assert!(
        input(&mut m, 0, 7, LIMIT).await.is_ok(),
        "other registers answer"
    );
    plant.clear(id);
    assert!(input(&mut m, M_O2, 2, LIMIT).await.is_ok());

    let mut d = connect(plant.discharge_addr(), DISCHARGE).await;
    inject(
        &plant,
        FaultKind::Exception {
            line: LineId::Discharge,
            code: 6,
            signal: None,
        },
    );
    assert_eq!(
        input(&mut d, 0, 3, LIMIT).await,
        Err(format!("exception: {:?}", ExceptionCode::ServerDeviceBusy)),
        "without a signal, every request is answered with the exception"
    );
}

#[tokio::test]
async fn a_frozen_sensor_keeps_its_value_while_time_runs_on() {
    let (plant, _pki) = plant(100.0).await;
    let mut m = connect(plant.mechanical_addr(), MECHANICAL).await;
    let id = inject(
        &plant,
        FaultKind::Freeze {
            line: LineId::Mechanical,
            signal: "chamber_o2".into(),
        },
    );
    let frozen = f32_in(&mut m, M_O2).await;
    let time0 = input(&mut m, 0, 2, LIMIT).await.expect("time");
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(f32_in(&mut m, M_O2).await, frozen, "the frozen value");
    }
    let time1 = input(&mut m, 0, 2, LIMIT).await.expect("time");
    assert_ne!(time0, time1, "the line's clock ran on");
    plant.clear(id);
    until("the sensor to move again", &mut m, async |m| {
        f32_in(m, M_O2).await != frozen
    })
    .await;
}

#[tokio::test]
async fn a_spiking_sensor_reads_the_spike_then_the_truth() {
    let (plant, _pki) = plant(10.0).await;
    let mut d = connect(plant.discharge_addr(), DISCHARGE).await;
    plant
        .inject(
            Fault::new(FaultKind::Spike {
                line: LineId::Discharge,
                signal: "station1.max_cell_temperature".into(),
                value: 99.0,
            })
            .lasting(Duration::from_millis(400)),
        )
        .expect("accepted");
    assert_eq!(f32_in(&mut d, S1 + S_MAX_CELL_TEMP).await, 99.0);
    until("the spike to pass", &mut d, async |d| {
        (15.0..35.0).contains(&f32_in(d, S1 + S_MAX_CELL_TEMP).await)
    })
    .await;
    assert!(plant.faults().is_empty(), "the spike cleared itself");
}

#[tokio::test]
async fn a_thermal_event_heats_the_pack_through_the_alarm_to_the_trip() {
    let (plant, _pki) = plant(1000.0).await;
    let mut d = connect(plant.discharge_addr(), DISCHARGE).await;
    let [c0, c1] = words(282.0);
    let [m0, m1] = words(500.0);
    write(&mut d, S1 + 2, &[4, 96, c0, c1, m0, m1]).await;
    write(&mut d, S1, &[1]).await;
    inject(
        &plant,
        FaultKind::ThermalEvent {
            station: 1,
            heat_kw: 20.0,
        },
    );
    until("the 50 degC alarm", &mut d, async |d| {
        u16_in(d, S1 + S_ALARMS).await & 2 != 0
    })
    .await;
    until("the thermal trip", &mut d, async |d| {
        u16_in(d, S1 + S_STATE).await == ABORTED
    })
    .await;
    assert!(f32_in(&mut d, S1 + S_MAX_CELL_TEMP).await >= 60.0);
    assert_ne!(
        u16_in(&mut d, S1 + S_ALARMS).await & 8,
        0,
        "the trip alarm bit"
    );
}

#[tokio::test]
async fn an_o2_leak_stops_the_feed_and_trips_the_shredder_on_oxygen() {
    let (plant, _pki) = plant(1000.0).await;
    let mut m = connect(plant.mechanical_addr(), MECHANICAL).await;
    shred(&mut m).await;
    let before = f32_in(&mut m, M_O2).await;
    inject(&plant, FaultKind::O2Leak { leak_nm3h: 60.0 });
    until("O2 to rise and the feed to stop", &mut m, async |m| {
        f32_in(m, M_O2).await > 2.5 && u16_in(m, M_FEEDING).await == 0
    })
    .await;
    until("the trip", &mut m, async |m| {
        u16_in(m, M_STATE).await == ABORTED
    })
    .await;
    assert_eq!(u16_in(&mut m, M_TRIP_CAUSE).await, 1, "tripped on O2");
    assert!(
        before < 2.5,
        "O2 was below the alarm before the leak: {before}"
    );
}

#[tokio::test]
async fn a_blocked_filter_raises_its_dp_and_alarm_until_it_is_changed() {
    let (plant, _pki) = plant(1000.0).await;
    let mut m = connect(plant.mechanical_addr(), MECHANICAL).await;
    shred(&mut m).await;
    let clean = f32_in(&mut m, M_FILTER_DP).await;
    assert!((6.0..10.0).contains(&clean), "clean filter dP {clean}");
    let id = inject(
        &plant,
        FaultKind::BlockedFilter {
            rate_mbar_per_min: 5.0,
        },
    );
    until("the filter dP alarm", &mut m, async |m| {
        f32_in(m, M_FILTER_DP).await > 25.0 && u16_in(m, M_ALARMS).await & 16 != 0
    })
    .await;
    plant.clear(id);
    until("a clean filter again", &mut m, async |m| {
        f32_in(m, M_FILTER_DP).await < 12.0 && u16_in(m, M_ALARMS).await & 16 == 0
    })
    .await;
}

#[tokio::test]
async fn a_power_cycle_darkens_a_modbus_line_which_reboots_with_its_defaults() {
    let (plant, _pki) = plant(100.0).await;
    let addr = plant.discharge_addr();
    let mut d = connect(addr, DISCHARGE).await;
    let [a, b] = words(123.0);
    write(&mut d, S1 + S_MAX_CURRENT, &[a, b]).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let uptime = input(&mut d, 0, 2, LIMIT).await.expect("time");
    let uptime = (u32::from(uptime[0]) << 16) | u32::from(uptime[1]);
    inject(
        &plant,
        FaultKind::PowerCycle {
            line: LineId::Discharge,
            off_s: 0.3,
        },
    );
    assert!(
        input(&mut d, 0, 2, LIMIT).await.is_err(),
        "the open connection is gone"
    );
    let refused = tokio::time::timeout(LIMIT, tcp::connect_slave(addr, Slave(DISCHARGE))).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "a dark line refuses connections"
    );
    let started = Instant::now();
    let mut back = loop {
        if let Ok(Ok(ctx)) =
            tokio::time::timeout(LIMIT, tcp::connect_slave(addr, Slave(DISCHARGE))).await
        {
            break ctx;
        }
        assert!(started.elapsed() < LIMIT, "the line never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let current = f32_of(
        &tokio::time::timeout(LIMIT, back.read_holding_registers(S1 + S_MAX_CURRENT, 2))
            .await
            .expect("in time")
            .expect("transport")
            .expect("read"),
    );
    assert_eq!(current, 300.0, "the setpoint is back at its default");
    let now = input(&mut back, 0, 2, LIMIT).await.expect("time");
    let now = (u32::from(now[0]) << 16) | u32::from(now[1]);
    assert!(
        now < uptime,
        "the line's clock restarted: {now} s after {uptime} s"
    );
}

#[tokio::test]
async fn a_power_cycle_of_hydromet_resets_what_an_opc_ua_client_reads_after_reconnecting() {
    let (plant, _pki) = plant(10.0).await;
    let ua = support::ua::Ua::anonymous(&plant.hydromet_endpoint()).await;
    let setpoint = "Leach.TemperatureSetpoint";
    let default = ua.f64(setpoint).await;
    assert!(ua.write(setpoint, default - 5.0).await.is_good());
    assert_eq!(ua.f64(setpoint).await, default - 5.0);
    inject(
        &plant,
        FaultKind::PowerCycle {
            line: LineId::Hydromet,
            off_s: 1.0,
        },
    );
    // The session reconnects by itself; reads fail while the line is dark.
    let started = Instant::now();
    loop {
        let req = ReadValueId::new_value(ua.id(setpoint));
        let read = ua.session.read(&[req], TimestampsToReturn::Both, 0.0).await;
        let value = read.ok().and_then(|mut v| v.pop()).and_then(|dv| dv.value);
        if value == Some(Variant::Double(default)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the session never read the rebooted default: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_spike_on_a_hydromet_sensor_reaches_an_opc_ua_client() {
    let (plant, _pki) = plant(10.0).await;
    let ua = support::ua::Ua::anonymous(&plant.hydromet_endpoint()).await;
    inject(
        &plant,
        FaultKind::Spike {
            line: LineId::Hydromet,
            signal: "Leach.Temperature".into(),
            value: 140.0,
        },
    );
    let started = Instant::now();
    while ua.f64("Leach.Temperature").await != 140.0 {
        assert!(started.elapsed() < LIMIT, "the spike never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_control_endpoint_injects_lists_and_clears_every_kind_of_fault() {
    let (plant, _pki) = plant(10.0).await;
    let base = format!("http://{}", plant.control_addr().expect("control endpoint"));
    let http = reqwest::Client::new();
    let post = async |body: Value| {
        let res = http
            .post(format!("{base}/faults"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.expect("JSON answer"))
    };
    let bodies = [
        json!({"kind": "drop", "line": "discharge"}),
        json!({"kind": "hang", "line": "hydromet", "duration_s": 30}),
        json!({"kind": "slow", "line": "mechanical", "delay_ms": 50}),
        json!({"kind": "exception", "line": "mechanical", "code": 6, "signal": "feeding"}),
        json!({"kind": "power_cycle", "line": "discharge", "off_s": 30}),
        json!({"kind": "freeze", "line": "mechanical", "signal": "chamber_o2"}),
        json!({"kind": "spike", "line": "hydromet", "signal": "Leach.pH", "value": 0.5}),
        json!({"kind": "thermal_event", "station": 2, "heat_kw": 5}),
        json!({"kind": "o2_leak", "leak_nm3h": 10}),
        json!({"kind": "blocked_filter", "rate_mbar_per_min": 1}),
    ];
    let mut ids = Vec::new();
    for body in bodies {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, 201, "{body} -> {answer}");
        ids.push(answer["id"].as_u64().expect("an id"));
    }
    let listed: Value = http
        .get(format!("{base}/faults"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let kinds: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(kinds.len(), 9, "all but the one-shot drop: {listed}");
    assert!(listed[0]["remaining_s"].as_f64().is_some_and(|s| s <= 30.0));

    let delete = async |path: String| {
        http.delete(format!("{base}{path}"))
            .send()
            .await
            .expect("delete")
            .status()
            .as_u16()
    };
    assert_eq!(delete(format!("/faults/{}", ids[2])).await, 204);
    assert_eq!(delete(format!("/faults/{}", ids[2])).await, 404);
    let cleared: Value = http
        .delete(format!("{base}/faults"))
        .send()
        .await
        .expect("clear all")
        .json()
        .await
        .expect("JSON");
    assert_eq!(cleared["cleared"], 8);
    assert!(plant.faults().is_empty());

    let truth = http
        .get(format!("{base}/truth"))
        .send()
        .await
        .expect("truth")
        .text()
        .await
        .expect("text");
    let last: Value = serde_json::from_str(truth.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["event"], "balance", "{last}");
}

#[tokio::test]
async fn malformed_control_requests_get_400_naming_the_problem() {
    let (plant, _pki) = plant(10.0).await;
    let base = format!("http://{}", plant.control_addr().expect("control endpoint"));
    let http = reqwest::Client::new();
    let cases = [
        ("{not json", "fault request"),
        (r#"{"kind":"melt","line":"discharge"}"#, "kind = melt"),
        (r#"{"kind":"drop","line":"kitchen"}"#, "line = kitchen"),
        (
            r#"{"kind":"exception","line":"hydromet"}"#,
            "line = hydromet",
        ),
        (
            r#"{"kind":"freeze","line":"mechanical","signal":"warp_core"}"#,
            "signal = warp_core",
        ),
        (
            r#"{"kind":"spike","line":"mechanical","signal":"n2_flow","value":1}"#,
            "not a measured signal",
        ),
        (r#"{"kind":"thermal_event","station":9}"#, "station = 9"),
        (r#"{"kind":"o2_leak","leak_nm3h":-1}"#, "leak_nm3h = -1"),
        (
            r#"{"kind":"hang","line":"discharge","colour":"red"}"#,
            "colour",
        ),
    ];
    for (body, names) in cases {
        let res = http
            .post(format!("{base}/faults"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 400, "{body}");
        let answer: Value = res.json().await.expect("JSON error");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{body}: {message:?} should name {names:?}"
        );
    }
    let res = http
        .delete(format!("{base}/faults/seven"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 400);
    assert!(plant.faults().is_empty(), "nothing was injected");
}

#[tokio::test]
async fn a_control_endpoint_off_loopback_is_refused() {
    let pki = tempfile::tempdir().expect("temp dir");
    let refused = start(SimConfig {
        discharge: "127.0.0.1:0".parse().expect("addr"),
        mechanical: "127.0.0.1:0".parse().expect("addr"),
        hydromet: "127.0.0.1:0".parse().expect("addr"),
        control: Some("0.0.0.0:0".parse().expect("addr")),
        pki_dir: pki.path().to_path_buf(),
        ..SimConfig::default()
    })
    .await;
    assert!(
        matches!(
            &refused,
            Err(SimError::Config {
                field: "control",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_power_cycle_mid_batch_keeps_every_element_in_the_ground_truth() {
    let (plant, _pki) = plant(1000.0).await;
    let mut m = connect(plant.mechanical_addr(), MECHANICAL).await;
    shred(&mut m).await;
    until("some of the charge to be shredded", &mut m, async |m| {
        f32_in(m, 26).await > 300.0
    })
    .await;
    inject(
        &plant,
        FaultKind::PowerCycle {
            line: LineId::Mechanical,
            off_s: 0.2,
        },
    );
    let truth = plant.truth();
    assert!(
        truth.shredded_kg > 300.0,
        "the part shredded was handed over: {truth:?}"
    );
    for e in remine_domain::Element::ALL {
        if let Some(closure) = truth.closure(e) {
            assert!(
                closure.abs() < 1e-9,
                "{e:?} closure {closure} after the power cycle"
            );
        }
    }
}
