//! The comms-loss alarm and the link counters of the OPC UA adapter, against
//! a real async-opcua server on 127.0.0.1 that is stopped and restarted.

mod support;

use remine_domain::ports::DeviceStatsSource;
use remine_opcua::{OpcUaAdapter, OpcUaConfig, ServerStatus};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use support::{NS, TestServer};

fn start(endpoint: &str, pki: &Path, extra: &str) -> OpcUaAdapter {
    let toml = format!(
        "[[server]]\nname = \"dcs\"\nendpoint = \"{endpoint}\"\npki_dir = \"{}\"\ntrust_server_certs = true\n\
         request_timeout_ms = 2000\npublishing_interval_ms = 100\nreconnect_min_ms = 50\nreconnect_max_ms = 200\n{extra}\n\
         [[tag]]\nname = \"H/L/Temperature\"\nserver = \"dcs\"\nnamespace_uri = \"{NS}\"\n\
         node_id = \"s=Leach1.Temperature\"\ndata_type = \"f64\"\nsampling_interval_ms = 50\n",
        pki.display()
    );
    let config = OpcUaConfig::from_toml_str(&toml, "alarm.toml").expect("test tag map");
    OpcUaAdapter::start(config).expect("adapter starts")
}

/// Waits until the server's status satisfies `ok`, and returns it.
async fn wait_status(
    adapter: &OpcUaAdapter,
    within: Duration,
    ok: impl Fn(&ServerStatus) -> bool,
) -> ServerStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = adapter.status().remove(0);
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

#[tokio::test]
async fn the_alarm_is_raised_after_the_delay_and_cleared_when_the_server_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start(dir.path()).await;
    let adapter = start(
        &server.endpoint(),
        &dir.path().join("client"),
        "comms_alarm_delay_ms = 500",
    );
    wait_status(&adapter, Duration::from_secs(10), |s| s.connected).await;
    assert_eq!(adapter.status()[0].comms_alarm, None);

    let stopped = SystemTime::now();
    server.stop().await;
    let down = wait_status(&adapter, Duration::from_secs(5), |s| !s.connected).await;
    assert_eq!(down.comms_alarm, None, "not before the delay");
    let raised = wait_status(&adapter, Duration::from_secs(5), |s| {
        s.comms_alarm.is_some()
    })
    .await;
    let at = raised
        .comms_alarm
        .and_then(|t| t.duration_since(stopped).ok())
        .unwrap_or_default();
    assert!(
        at >= Duration::from_millis(500) && at < Duration::from_millis(1500),
        "alarm dated {at:?} after the stop"
    );
    assert!(adapter.device_stats()[0].comms_alarm);

    server.restart().await;
    let back = wait_status(&adapter, Duration::from_secs(10), |s| s.connected).await;
    assert_eq!(back.comms_alarm, None);
    assert!(!adapter.device_stats()[0].comms_alarm);
    adapter.shutdown().await;
}

#[tokio::test]
async fn the_stats_count_service_calls_and_connection_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start(dir.path()).await;
    let adapter = start(&server.endpoint(), &dir.path().join("client"), "");
    wait_status(&adapter, Duration::from_secs(10), |s| s.connected).await;
    let up = adapter.device_stats().remove(0);
    assert_eq!((up.kind, up.device.as_str()), ("opcua", "dcs"));
    assert!(up.connected && !up.comms_alarm);
    assert!(
        up.requests >= 3,
        "connect, namespace array, subscription, monitored items: {up:?}"
    );
    assert!(up.rtt_count >= 2 && up.rtt_sum_s > 0.0, "{up:?}");
    assert_eq!(up.rtt_bucket_counts.last(), Some(&up.rtt_count));

    server.stop().await;
    wait_status(&adapter, Duration::from_secs(5), |s| {
        s.consecutive_failures >= 3
    })
    .await;
    let down = adapter.device_stats().remove(0);
    // Three failures: the lost session, then two refused connects (the
    // loss itself is no failed request).
    let transport = down.errors.iter().find(|(k, _)| *k == "transport");
    assert!(transport.is_some_and(|(_, n)| *n >= 2), "{down:?}");
    assert!(down.requests > up.requests);
    assert!(!down.connected && down.comms_alarm, "delay 0: at once");
    adapter.shutdown().await;
}
