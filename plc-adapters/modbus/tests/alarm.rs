//! The comms-loss alarm and the link counters of the Modbus adapter, against
//! a real Modbus TCP server on 127.0.0.1 that is killed and restarted.

mod support;

use remine_domain::ports::DeviceStatsSource;
use remine_modbus::{DeviceStatus, ModbusAdapter, ModbusConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use support::{TestServer, closed_port};

fn start(addr: SocketAddr, alarm_delay: Option<u64>) -> ModbusAdapter {
    let delay = alarm_delay.map_or(String::new(), |ms| format!("comms_alarm_delay_ms = {ms}\n"));
    let toml = format!(
        "[[device]]\nname = \"plc\"\naddress = \"{addr}\"\nunit_id = 1\npoll_interval_ms = 20\n\
         request_timeout_ms = 300\nreconnect_min_ms = 20\nreconnect_max_ms = 50\n{delay}\n\
         [[tag]]\nname = \"T/U/Level\"\ndevice = \"plc\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n"
    );
    let config = ModbusConfig::from_toml_str(&toml, "alarm.toml").expect("test tag map");
    ModbusAdapter::start(config).expect("adapter starts")
}

fn status(adapter: &ModbusAdapter) -> DeviceStatus {
    adapter.status().remove(0)
}

/// Waits until the device's status satisfies `ok`, and returns it.
async fn wait_status(
    adapter: &ModbusAdapter,
    within: Duration,
    ok: impl Fn(&DeviceStatus) -> bool,
) -> DeviceStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = status(adapter);
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "status not reached within {within:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills a connected device and checks that the alarm is raised `delay_ms`
/// after the link went down (within the poll interval and a margin), not
/// before, and clears when the device answers again.
async fn check_alarm_after(delay_ms: u64) {
    let mut server = TestServer::start(1).await;
    let adapter = start(server.addr, Some(delay_ms));
    wait_status(&adapter, Duration::from_secs(3), |s| s.connected).await;
    assert_eq!(
        status(&adapter).comms_alarm,
        None,
        "no alarm while answering"
    );

    let killed = SystemTime::now();
    server.kill().await;
    let raised = wait_status(&adapter, Duration::from_secs(5), |s| {
        s.comms_alarm.is_some()
    })
    .await;
    let noticed = SystemTime::now().duration_since(killed).unwrap_or_default();
    let at = raised
        .comms_alarm
        .and_then(|t| t.duration_since(killed).ok())
        .unwrap_or_default();
    let delay = Duration::from_millis(delay_ms);
    assert!(
        at >= delay && at <= delay + Duration::from_millis(500),
        "alarm dated {at:?} after the kill, delay {delay:?}"
    );
    assert!(
        noticed >= delay,
        "seen {noticed:?} after the kill, delay {delay:?}"
    );
    assert!(!raised.connected);
    assert!(
        adapter.device_stats()[0].comms_alarm,
        "the stats show the alarm too"
    );

    server.restart().await;
    let cleared = wait_status(&adapter, Duration::from_secs(3), |s| {
        s.comms_alarm.is_none()
    })
    .await;
    assert!(cleared.connected, "cleared only when the device answers");
    assert!(!adapter.device_stats()[0].comms_alarm);
    adapter.shutdown().await;
}

#[tokio::test]
async fn without_a_delay_the_alarm_is_raised_as_soon_as_the_link_breaks() {
    check_alarm_after(0).await;
}

#[tokio::test]
async fn with_a_delay_the_alarm_waits_for_it_and_clears_on_recovery() {
    check_alarm_after(400).await;
}

#[tokio::test]
async fn a_short_outage_within_the_delay_raises_no_alarm() {
    let mut server = TestServer::start(1).await;
    let adapter = start(server.addr, Some(2000));
    wait_status(&adapter, Duration::from_secs(3), |s| s.connected).await;
    server.kill().await;
    wait_status(&adapter, Duration::from_secs(3), |s| !s.connected).await;
    server.restart().await;
    let back = wait_status(&adapter, Duration::from_secs(3), |s| s.connected).await;
    assert_eq!(back.comms_alarm, None);
    assert_eq!(back.reconnects, 1);
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_device_unreachable_from_the_start_raises_the_alarm_after_the_delay() {
    let started = SystemTime::now();
    let adapter = start(closed_port().await, Some(200));
    let s = wait_status(&adapter, Duration::from_secs(3), |s| {
        s.comms_alarm.is_some()
    })
    .await;
    let at = s
        .comms_alarm
        .and_then(|t| t.duration_since(started).ok())
        .unwrap_or_default();
    assert!(
        at >= Duration::from_millis(200),
        "raised {at:?} after start"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn an_unset_delay_means_at_once() {
    let adapter = start(closed_port().await, None);
    assert_eq!(
        adapter.config().devices()[0].comms_alarm_delay(),
        Duration::ZERO
    );
    wait_status(&adapter, Duration::from_secs(2), |s| {
        s.comms_alarm.is_some()
    })
    .await;
    adapter.shutdown().await;
}

#[tokio::test]
async fn the_stats_count_requests_round_trips_and_errors_by_kind() {
    let mut server = TestServer::start(1).await;
    let adapter = start(server.addr, None);
    wait_status(&adapter, Duration::from_secs(3), |s| s.connected).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = adapter.device_stats().remove(0);
    assert_eq!((before.kind, before.device.as_str()), ("modbus", "plc"));
    assert!(before.connected && !before.comms_alarm);
    let reads = server.bank().reads.len() as u64;
    assert!(
        before.requests >= reads && before.rtt_count >= reads.saturating_sub(1),
        "{before:?} vs {reads} reads on the server"
    );
    assert_eq!(before.errors_total(), 0, "{before:?}");
    assert_eq!(before.rtt_bucket_counts.last(), Some(&before.rtt_count));
    assert!(before.rtt_sum_s > 0.0);

    server.kill().await;
    wait_status(&adapter, Duration::from_secs(3), |s| {
        s.consecutive_failures >= 3
    })
    .await;
    let down = adapter.device_stats().remove(0);
    let transport = down.errors.iter().find(|(k, _)| *k == "transport");
    assert!(
        transport.is_some_and(|(_, n)| *n >= 3),
        "a refused or broken link counts as transport errors: {down:?}"
    );
    assert!(down.requests > before.requests);
    assert!(!down.connected && down.comms_alarm);

    server.restart().await;
    wait_status(&adapter, Duration::from_secs(3), |s| s.connected).await;
    assert_eq!(adapter.device_stats()[0].reconnects, 1);
    adapter.shutdown().await;
}
