//! The OPC UA adapter against the plant simulator's hydromet server while
//! it fails the way plants fail: a dropped link, a silent hang, a peer
//! slower than the request timeout, a power cycle (server restart), each
//! with Basic256Sha256 and a user. The tags read bad while the fault lasts,
//! and good values come back within 5 s of the peer's return, in the same
//! adapter, never restarted, with its subscription restored.

use remine_domain::ports::DeviceStatsSource;
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use remine_plc_common::test_support::wait_for;
use remine_sim::{Fault, FaultKind, LineId, RunningPlant, SimConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const RECOVERY: Duration = Duration::from_secs(5);
const SETPOINT: &str = "Hydromet/Leach/TemperatureSetpoint";
const TEMPERATURE: &str = "Hydromet/Leach/Temperature";

async fn plant(dir: &Path) -> RunningPlant {
    remine_sim::start(SimConfig {
        discharge: "127.0.0.1:0".parse().expect("addr"),
        mechanical: "127.0.0.1:0".parse().expect("addr"),
        hydromet: "127.0.0.1:0".parse().expect("addr"),
        speed: 20.0,
        pki_dir: dir.join("sim-pki"),
        stations: 1,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

/// Basic256Sha256 with the simulator's demo user; a 1 s request timeout
/// and reconnects capped at 1 s.
fn adapter(plant: &RunningPlant, dir: &Path) -> OpcUaAdapter {
    let toml = format!(
        r#"
[[server]]
name = "hydromet"
endpoint = "{endpoint}"
security = "basic256sha256"
username = "{user}"
password = "{password}"
pki_dir = "{pki}"
trust_server_certs = true
request_timeout_ms = 1000
publishing_interval_ms = 100
reconnect_min_ms = 100
reconnect_max_ms = 1000

[[tag]]
name = "{SETPOINT}"
server = "hydromet"
namespace_uri = "{ns}"
node_id = "s=Leach.TemperatureSetpoint"
data_type = "f64"
sampling_interval_ms = 100

[[tag]]
name = "{TEMPERATURE}"
server = "hydromet"
namespace_uri = "{ns}"
browse_path = "Leach/Temperature"
data_type = "f64"
sampling_interval_ms = 100
"#,
        endpoint = plant.hydromet_endpoint(),
        user = remine_sim::DEMO_USER,
        password = remine_sim::DEMO_PASSWORD,
        pki = dir.join("client-pki").display(),
        ns = remine_sim::HYDROMET_NAMESPACE_URI,
    );
    let config = OpcUaConfig::from_toml_str(&toml, "faults.toml").expect("tag map");
    OpcUaAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

async fn until(
    adapter: &OpcUaAdapter,
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

async fn good(adapter: &OpcUaAdapter, within: Duration) -> TagReading {
    until(adapter, SETPOINT, within, "a good value", |r| {
        r.quality == Quality::Good && matches!(r.value, Some(TagValue::Float(_)))
    })
    .await
}

/// Inject `fault`, see the tags turn bad, end it with `end`, and see good
/// values again (a fresh data change, so the subscription is back) within
/// [`RECOVERY`].
async fn survive(fault: Fault, end: impl AsyncFnOnce(&RunningPlant, u64)) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let plant = plant(dir.path()).await;
    let adapter = adapter(&plant, dir.path());
    good(&adapter, Duration::from_secs(20)).await;
    let errors_before = adapter.device_stats()[0].errors_total();
    let what = format!("{:?}", fault.kind);
    let id = plant.inject(fault).expect("fault accepted");
    let during = until(
        &adapter,
        SETPOINT,
        Duration::from_secs(10),
        &format!("bad quality under {what}"),
        |r| matches!(r.quality, Quality::Bad(_)),
    )
    .await;
    assert!(during.value.is_some(), "the last value is kept, stale");
    assert_eq!(during.good_value(), None);
    assert_eq!(
        during.quality,
        Quality::Bad(BadReason::NotConnected),
        "under {what}"
    );
    let status = adapter.status().remove(0);
    assert!(
        status.comms_alarm.is_some(),
        "comms alarm under {what}: {status:?}"
    );

    end(&plant, id).await;
    let back = Instant::now();
    let before = until(
        &adapter,
        TEMPERATURE,
        Duration::from_secs(1),
        "any value",
        |r| r.value.is_some(),
    )
    .await
    .server_time;
    good(&adapter, RECOVERY).await;
    until(
        &adapter,
        TEMPERATURE,
        RECOVERY,
        "a fresh data change",
        |r| r.quality == Quality::Good && r.server_time > before,
    )
    .await;
    let took = back.elapsed();
    assert!(
        adapter.status()[0].comms_alarm.is_none(),
        "the comms alarm cleared"
    );
    let stats = adapter.device_stats().remove(0);
    assert!(
        stats.errors_total() > errors_before,
        "the fault counts as errors in the stats under {what}: {stats:?}"
    );
    println!("{what}: good again {took:?} after the peer's return");
    assert!(took <= RECOVERY);
    adapter.shutdown().await;
    plant.shutdown().await;
    took
}

async fn clear(plant: &RunningPlant, id: u64) {
    assert!(plant.clear(id), "the fault was active");
}

#[tokio::test]
async fn a_dropped_link_reads_not_connected_then_good_within_5s_of_its_return() {
    survive(
        Fault::new(FaultKind::Drop {
            line: LineId::Hydromet,
        })
        .lasting(Duration::from_secs(2)),
        async |_, _| tokio::time::sleep(Duration::from_secs(2)).await,
    )
    .await;
}

#[tokio::test]
async fn a_silent_hang_reads_not_connected_then_good_within_5s_of_its_end() {
    survive(
        Fault::new(FaultKind::Hang {
            line: LineId::Hydromet,
        }),
        clear,
    )
    .await;
}

#[tokio::test]
async fn a_peer_slower_than_the_request_timeout_reads_bad_then_good() {
    survive(
        Fault::new(FaultKind::Slow {
            line: LineId::Hydromet,
            delay_ms: 3000,
        }),
        clear,
    )
    .await;
}

#[tokio::test]
async fn a_restarted_server_reads_not_connected_then_good_with_its_subscription_restored() {
    survive(
        Fault::new(FaultKind::PowerCycle {
            line: LineId::Hydromet,
            off_s: 2.0,
        }),
        async |_, _| tokio::time::sleep(Duration::from_secs(2)).await,
    )
    .await;
}
