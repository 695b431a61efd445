//! Subscription groups of the OPC UA adapter against a real async-opcua
//! server on 127.0.0.1: one subscription per group with its publishing
//! interval and its tags' sampling intervals, set up again after a restart.

mod support;

use remine_domain::ports::DeviceStatsSource;
use remine_domain::{Quality, TagName, TagValue};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use remine_plc_common::test_support::wait_for;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{NS, TestServer};

/// Server `dcs` with a default publishing interval of 1000 ms, a group
/// `fast` at 200 ms sampling at 100 ms, and three tags: the temperature in
/// the default group, the running flag and the flow in `fast` (the flow with a
/// sampling interval of its own).
fn start(endpoint: &str, pki: &Path) -> OpcUaAdapter {
    start_with(endpoint, pki, "", 200, 100)
}

/// [`start`] with `extra` fields on the server, and the publishing and
/// sampling intervals of group `fast`.
fn start_with(
    endpoint: &str,
    pki: &Path,
    extra: &str,
    fast_publishing_ms: u64,
    fast_sampling_ms: u64,
) -> OpcUaAdapter {
    let tag = |name: &str, node: &str, ty: &str, extra: &str| {
        format!(
            "[[tag]]\nname = \"{name}\"\nserver = \"dcs\"\nnamespace_uri = \"{NS}\"\nnode_id = \"{node}\"\ndata_type = \"{ty}\"\n{extra}\n"
        )
    };
    let toml = [
        format!(
            "[[server]]\nname = \"dcs\"\nendpoint = \"{endpoint}\"\npki_dir = \"{}\"\ntrust_server_certs = true\n\
             request_timeout_ms = 3000\npublishing_interval_ms = 1000\nreconnect_min_ms = 100\nreconnect_max_ms = 300\n{extra}\n\
             [[server.group]]\nname = \"fast\"\npublishing_interval_ms = {fast_publishing_ms}\nsampling_interval_ms = {fast_sampling_ms}\n",
            pki.display()
        ),
        tag("H/L/Temperature", "s=Leach1.Temperature", "f64", "sampling_interval_ms = 500"),
        tag("H/L/Running", "s=Leach1.Running", "bool", "group = \"fast\""),
        tag("H/L/Flow", "s=Leach1.Flow", "f32", "group = \"fast\"\nsampling_interval_ms = 150"),
    ]
    .concat();
    let config = OpcUaConfig::from_toml_str(&toml, "groups.toml").expect("test tag map");
    OpcUaAdapter::start(config).expect("adapter starts")
}

/// Waits until the server holds `expected` subscriptions (publishing
/// interval, sampling intervals of the items).
async fn check_subscriptions(server: &TestServer, expected: &[(u64, &[f64])]) {
    let expected: Vec<(Duration, Vec<f64>)> = expected
        .iter()
        .map(|(ms, sampling)| (Duration::from_millis(*ms), sampling.to_vec()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = server.subscriptions();
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions on the server: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_group_gets_its_own_subscription_and_gets_it_back_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start(dir.path()).await;
    let adapter = start(&server.endpoint(), &dir.path().join("client"));
    let expected: [(u64, &[f64]); 2] = [(200, &[100.0, 150.0]), (1000, &[500.0])];
    check_subscriptions(&server, &expected).await;

    let temperature = TagName::parse("H/L/Temperature").expect("tag name");
    let running = TagName::parse("H/L/Running").expect("tag name");
    for tag in [&temperature, &running] {
        let good = wait_for(&adapter, tag, Duration::from_secs(10), |r| {
            r.quality == Quality::Good
        })
        .await;
        assert!(good.is_ok(), "{tag}: {good:?}");
    }

    server.stop().await;
    wait_for(&adapter, &running, Duration::from_secs(5), |r| {
        r.quality != Quality::Good
    })
    .await
    .expect("bad while the server is down");
    server.restart().await;
    check_subscriptions(&server, &expected).await;
    server.set(server.running(), false);
    server.set(server.running(), true);
    let back = wait_for(&adapter, &running, Duration::from_secs(10), |r| {
        r.quality == Quality::Good && r.value == Some(TagValue::Bool(true))
    })
    .await;
    assert!(back.is_ok(), "{back:?}");
    let stats = adapter.device_stats().remove(0);
    assert!(
        stats.errors_total() >= 1,
        "the lost connection counts as an error: {stats:?}"
    );
    let status = adapter.status().remove(0);
    let granted: Vec<(usize, Option<Duration>)> = status
        .groups
        .iter()
        .map(|g| (g.subscriptions, g.revised_publishing_interval))
        .collect();
    assert_eq!(
        granted,
        [
            (1, Some(Duration::from_millis(1000))),
            (1, Some(Duration::from_millis(200)))
        ],
        "granted again after the restart"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_group_larger_than_max_items_per_subscription_gets_several_subscriptions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let adapter = start_with(
        &server.endpoint(),
        &dir.path().join("client"),
        "max_items_per_subscription = 1",
        200,
        100,
    );
    // `fast` has two tags: one subscription each.
    let expected: [(u64, &[f64]); 3] = [(200, &[100.0]), (200, &[150.0]), (1000, &[500.0])];
    check_subscriptions(&server, &expected).await;
    let running = TagName::parse("H/L/Running").expect("tag name");
    let good = wait_for(&adapter, &running, Duration::from_secs(10), |r| {
        r.quality == Quality::Good
    })
    .await;
    assert!(good.is_ok(), "{good:?}");
    let status = adapter.status().remove(0);
    let counts: Vec<(Option<&str>, usize, usize)> = status
        .groups
        .iter()
        .map(|g| (g.group.as_deref(), g.tags, g.subscriptions))
        .collect();
    assert_eq!(counts, [(None, 1, 1), (Some("fast"), 2, 2)]);
    adapter.shutdown().await;
}

#[tokio::test]
async fn the_status_shows_the_intervals_the_server_granted_when_it_did_not_honour_the_request() {
    // async-opcua's server publishes and samples no faster than every 100 ms.
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let adapter = start_with(&server.endpoint(), &dir.path().join("client"), "", 20, 10);
    let running = TagName::parse("H/L/Running").expect("tag name");
    let good = wait_for(&adapter, &running, Duration::from_secs(10), |r| {
        r.quality == Quality::Good
    })
    .await;
    assert!(good.is_ok(), "{good:?}");
    let ms = Duration::from_millis;
    let status = adapter.status().remove(0);
    let fast = status
        .groups
        .iter()
        .find(|g| g.group.as_deref() == Some("fast"))
        .expect("group fast in the status");
    assert_eq!(
        (
            fast.requested_publishing_interval,
            fast.revised_publishing_interval
        ),
        (ms(20), Some(ms(100)))
    );
    assert_eq!(
        (
            fast.requested_sampling_interval,
            fast.revised_sampling_interval
        ),
        ((ms(10), ms(150)), Some((ms(100), ms(150))))
    );
    let default = status.groups.first().expect("the default group");
    assert_eq!(
        (
            default.group.as_deref(),
            default.revised_publishing_interval
        ),
        (None, Some(ms(1000)))
    );
    adapter.shutdown().await;
}
