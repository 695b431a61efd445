//! The Modbus adapter against the plant simulator while it fails the way
//! plants fail: each fault of the simulator's link (a dropped link, a silent
//! hang, a slow peer, exceptions, a power cycle) turns the tags bad while it
//! lasts, and good values come back within 5 s of the peer's return, in the
//! same adapter, never restarted.

use remine_domain::ports::TagIo;
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_plc_common::test_support::wait_for;
use remine_sim::{Fault, FaultKind, LineId, RunningPlant, SimConfig};
use std::time::{Duration, Instant};

/// How long good values may take to come back after the peer returns.
const RECOVERY: Duration = Duration::from_secs(5);
const CLOCK: &str = "Discharge/Line/SimTime";
const STATIONS: &str = "Discharge/Line/StationCount";

async fn plant() -> (RunningPlant, tempfile::TempDir) {
    let pki = tempfile::tempdir().expect("temp dir");
    let plant = remine_sim::start(SimConfig {
        discharge: "127.0.0.1:0".parse().expect("addr"),
        mechanical: "127.0.0.1:0".parse().expect("addr"),
        hydromet: "127.0.0.1:0".parse().expect("addr"),
        speed: 20.0,
        pki_dir: pki.path().join("pki"),
        stations: 2,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");
    (plant, pki)
}

/// The adapter polls the discharge line's clock and station count every
/// 50 ms with a 400 ms request timeout.
fn adapter(plant: &RunningPlant) -> ModbusAdapter {
    let toml = format!(
        r#"
[[device]]
name = "discharge"
address = "{addr}"
unit_id = 1
poll_interval_ms = 50
request_timeout_ms = 400
reconnect_min_ms = 50
reconnect_max_ms = 1000

[[tag]]
name = "{CLOCK}"
device = "discharge"
table = "input"
address = 0
type = "u32"
unit = "s"

[[tag]]
name = "{STATIONS}"
device = "discharge"
table = "input"
address = 2
type = "u16"
"#,
        addr = plant.discharge_addr()
    );
    let config = ModbusConfig::from_toml_str(&toml, "faults.toml").expect("tag map");
    ModbusAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

async fn until(
    adapter: &ModbusAdapter,
    tag: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&TagReading) -> bool,
) -> TagReading {
    match wait_for(adapter, &name(tag), within, ok).await {
        Ok(r) => r,
        Err(last) => panic!("{tag}: {what} not within {within:?}; last reading {last:?}"),
    }
}

async fn good(adapter: &ModbusAdapter, within: Duration) -> TagReading {
    until(adapter, STATIONS, within, "a good value", |r| {
        r.quality == Quality::Good && r.value == Some(TagValue::Int(2))
    })
    .await
}

/// Inject `fault`, see `bad` on the tags, end the fault with `end`, and
/// see good values again within [`RECOVERY`]; returns the recovery time.
async fn survive(
    fault: Fault,
    bad: impl Fn(&Quality) -> bool,
    end: impl AsyncFnOnce(&RunningPlant, u64),
) -> Duration {
    let (plant, _pki) = plant().await;
    let adapter = adapter(&plant);
    good(&adapter, Duration::from_secs(10)).await;
    let what = format!("{:?}", fault.kind);
    let id = plant.inject(fault).expect("fault accepted");
    let during = until(
        &adapter,
        STATIONS,
        Duration::from_secs(5),
        &format!("bad quality under {what}"),
        |r| bad(&r.quality),
    )
    .await;
    assert_eq!(
        during.value,
        Some(TagValue::Int(2)),
        "the last value is kept, stale, under {what}"
    );
    assert_eq!(during.good_value(), None, "a stale value is never good");
    // The comms-loss alarm (delay 0) is up: the device is out of reach.
    let status = adapter.status().remove(0);
    assert!(
        status.comms_alarm.is_some(),
        "comms alarm under {what}: {status:?}"
    );

    end(&plant, id).await;
    let back = Instant::now();
    good(&adapter, RECOVERY).await;
    let took = back.elapsed();
    assert!(
        adapter.status()[0].comms_alarm.is_none(),
        "the comms alarm cleared"
    );
    let clock = until(&adapter, CLOCK, RECOVERY, "a fresh clock", |r| {
        r.quality == Quality::Good
    })
    .await;
    assert!(clock.value.is_some());
    println!("{what}: good again {took:?} after the peer's return");
    adapter.shutdown().await;
    plant.shutdown().await;
    took
}

async fn clear(plant: &RunningPlant, id: u64) {
    assert!(plant.clear(id), "the fault was active");
}

fn link_lost(q: &Quality) -> bool {
    matches!(
        q,
        Quality::Bad(BadReason::NotConnected | BadReason::Timeout)
    )
}

#[tokio::test]
async fn a_dropped_link_reads_bad_then_good_within_5s_of_its_return() {
    let fault = Fault::new(FaultKind::Drop {
        line: LineId::Discharge,
    })
    .lasting(Duration::from_secs(2));
    survive(fault, link_lost, async |_, _| {
        // The port reopens by itself after the two seconds.
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test]
async fn a_silent_hang_reads_timeout_then_good_within_5s_of_its_end() {
    let fault = Fault::new(FaultKind::Hang {
        line: LineId::Discharge,
    });
    survive(fault, |q| *q == Quality::Bad(BadReason::Timeout), clear).await;
}

#[tokio::test]
async fn a_peer_slower_than_the_request_timeout_reads_timeout_then_good() {
    let fault = Fault::new(FaultKind::Slow {
        line: LineId::Discharge,
        delay_ms: 1500,
    });
    survive(fault, |q| *q == Quality::Bad(BadReason::Timeout), clear).await;
}

#[tokio::test]
async fn a_gateway_answering_exceptions_reads_device_failure_then_good() {
    let fault = Fault::new(FaultKind::Exception {
        line: LineId::Discharge,
        code: 11,
        signal: None,
    });
    survive(
        fault,
        |q| matches!(q, Quality::Bad(BadReason::DeviceFailure(why)) if why.contains("exception")),
        clear,
    )
    .await;
}

#[tokio::test]
async fn a_power_cycled_plc_reads_not_connected_then_good_with_its_clock_restarted() {
    let fault = Fault::new(FaultKind::PowerCycle {
        line: LineId::Discharge,
        off_s: 2.0,
    });
    survive(
        fault,
        |q| *q == Quality::Bad(BadReason::NotConnected),
        async |_, _| tokio::time::sleep(Duration::from_secs(2)).await,
    )
    .await;
}

#[tokio::test]
async fn a_slow_peer_within_the_timeout_stays_good() {
    let (plant, _pki) = plant().await;
    let adapter = adapter(&plant);
    good(&adapter, Duration::from_secs(10)).await;
    plant
        .inject(Fault::new(FaultKind::Slow {
            line: LineId::Discharge,
            delay_ms: 150,
        }))
        .expect("accepted");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let r = adapter.read(&[name(STATIONS)]).await.remove(0);
        assert_eq!(
            r.quality,
            Quality::Good,
            "150 ms answers are within the 400 ms timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    adapter.shutdown().await;
    plant.shutdown().await;
}
