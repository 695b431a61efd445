//! The OPC UA adapter against a real async-opcua server on 127.0.0.1: reads
//! by node id and browse path, subscriptions, writes, namespaces, lost and
//! restored servers, security with a user, and method calls.

mod support;

use opcua::types::Variant;
use remine_domain::ports::{TagError, TagIo};
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use remine_opcua::{MethodRef, OpcUaAdapter, OpcUaConfig, OpcUaError};
use remine_plc_common::test_support::wait_for;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::{NS, PASSWORD, TestServer, USER};

/// The `[[server]]` table of the test server; `extra` adds or overrides fields.
fn server_table(endpoint: &str, pki: &Path, extra: &str) -> String {
    format!(
        "[[server]]\nname = \"dcs\"\nendpoint = \"{endpoint}\"\npki_dir = \"{}\"\ntrust_server_certs = true\n\
         request_timeout_ms = 3000\npublishing_interval_ms = 100\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n{extra}\n",
        pki.display()
    )
}

fn tag(name: &str, address: &str, data_type: &str, extra: &str) -> String {
    format!(
        "[[tag]]\nname = \"{name}\"\nserver = \"dcs\"\nnamespace_uri = \"{NS}\"\n{address}\ndata_type = \"{data_type}\"\nsampling_interval_ms = 50\n{extra}\n"
    )
}

fn start(toml: &str) -> OpcUaAdapter {
    let config = OpcUaConfig::from_toml_str(toml, "test.toml").expect("test tag map");
    OpcUaAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

async fn reading(adapter: &OpcUaAdapter, tag: &str) -> TagReading {
    adapter.read(&[name(tag)]).await.remove(0)
}

/// Polls the adapter's cache until `ok` holds, and fails with the last reading and the status otherwise.
async fn wait_until(
    adapter: &OpcUaAdapter,
    tag: &str,
    within: Duration,
    ok: impl Fn(&TagReading) -> bool,
) -> TagReading {
    match wait_for(adapter, &name(tag), within, ok).await {
        Ok(r) => r,
        Err(r) => panic!(
            "{tag} did not reach the expected state within {within:?}; last reading: {r:?}; status: {:?}",
            adapter.status()
        ),
    }
}

async fn wait_good(adapter: &OpcUaAdapter, tag: &str, value: TagValue) -> TagReading {
    wait_until(adapter, tag, Duration::from_secs(10), |r| {
        r.quality == Quality::Good && r.value == Some(value)
    })
    .await
}

fn dirs() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test]
async fn tags_read_by_node_id_and_by_browse_path() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "unit = \"degC\"",
        ),
        tag("H/L/Level", "node_id = \"i=1001\"", "f32", ""),
        tag(
            "H/L/Running",
            "browse_path = \"Leach1/Running\"",
            "bool",
            "",
        ),
        tag(
            "H/L/BatchCount",
            "browse_path = \"Leach1/BatchCount\"",
            "u32",
            "",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    let t = wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;
    assert!(t.source_time.is_some(), "the server's timestamp is kept");
    wait_good(&adapter, "H/L/Level", TagValue::Float(2.5)).await;
    wait_good(&adapter, "H/L/Running", TagValue::Bool(true)).await;
    wait_good(&adapter, "H/L/BatchCount", TagValue::Int(7)).await;
    let status = &adapter.status()[0];
    assert!(
        status.connected && status.config_problems.is_empty(),
        "{status:?}"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn the_subscription_delivers_changes_within_a_second() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Temperature",
            "browse_path = \"Leach1/Temperature\"",
            "f64",
            "",
        ),
        tag("H/L/Running", "node_id = \"s=Leach1.Running\"", "bool", ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;
    for value in [71.5, 74.25, 75.0] {
        server.set(server.temperature(), value);
        let t0 = Instant::now();
        wait_good(&adapter, "H/L/Temperature", TagValue::Float(value)).await;
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t0.elapsed()
        );
    }
    server.set(server.running(), false);
    wait_good(&adapter, "H/L/Running", TagValue::Bool(false)).await;
    adapter.shutdown().await;
}

#[tokio::test]
async fn writes_send_the_tag_type_and_are_read_back() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let rw = "access = \"read_write\"";
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Setpoint",
            "browse_path = \"Leach1/Setpoint\"",
            "f64",
            &format!("{rw}\nmin = 20\nmax = 90"),
        ),
        tag("H/L/Mode", "node_id = \"s=Leach1.Mode\"", "i32", rw),
        tag("H/L/Flow", "node_id = \"s=Leach1.Flow\"", "f32", rw),
        tag("H/L/Pumps", "node_id = \"s=Leach1.Pumps\"", "u16", rw),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Mode", TagValue::Int(1)).await;

    let check = async |tag: &str, value: TagValue| {
        assert_eq!(
            adapter.write(&name(tag), value).await,
            Ok(()),
            "{tag} <- {value}"
        );
    };
    check("H/L/Setpoint", TagValue::Float(42.5)).await;
    assert_eq!(
        *server.probe.setpoint_writes.lock().expect("probe"),
        vec![Variant::Double(42.5)]
    );
    assert_eq!(
        reading(&adapter, "H/L/Setpoint").await.value,
        Some(TagValue::Float(42.5))
    );

    check("H/L/Mode", TagValue::Int(-3)).await;
    assert_eq!(
        server.value(&server.node("Leach1.Mode")),
        Some(Variant::Int32(-3))
    );
    check("H/L/Flow", TagValue::Float(12.25)).await;
    assert_eq!(
        server.value(&server.node("Leach1.Flow")),
        Some(Variant::Float(12.25))
    );
    check("H/L/Pumps", TagValue::Float(3.0)).await;
    assert_eq!(
        server.value(&server.node("Leach1.Pumps")),
        Some(Variant::UInt16(3))
    );
    wait_good(&adapter, "H/L/Mode", TagValue::Int(-3)).await;
    wait_good(&adapter, "H/L/Flow", TagValue::Float(12.25)).await;
    wait_good(&adapter, "H/L/Pumps", TagValue::Int(3)).await;
    adapter.shutdown().await;
}

#[tokio::test]
async fn refused_writes_never_reach_the_server() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        // The same writable node twice: once read-only, once with limits.
        tag(
            "H/L/SetpointView",
            "node_id = \"s=Leach1.Setpoint\"",
            "f64",
            "",
        ),
        tag(
            "H/L/Setpoint",
            "node_id = \"s=Leach1.Setpoint\"",
            "f64",
            "access = \"read_write\"\nmin = 20\nmax = 90",
        ),
        tag(
            "H/L/Mode",
            "node_id = \"s=Leach1.Mode\"",
            "i32",
            "access = \"read_write\"",
        ),
        tag(
            "H/L/Pumps",
            "node_id = \"s=Leach1.Pumps\"",
            "u16",
            "access = \"read_write\"",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Setpoint", TagValue::Float(0.0)).await;

    let check = async |tag: &str, value: TagValue, expected: TagError| {
        assert_eq!(
            adapter.write(&name(tag), value).await,
            Err(expected),
            "{tag} <- {value}"
        );
    };
    check(
        "H/L/SetpointView",
        TagValue::Float(50.0),
        TagError::ReadOnly(name("H/L/SetpointView")),
    )
    .await;
    check(
        "H/L/Nowhere",
        TagValue::Float(50.0),
        TagError::UnknownTag(name("H/L/Nowhere")),
    )
    .await;
    let limits = |value| TagError::OutOfLimits {
        tag: name("H/L/Setpoint"),
        value,
        min: 20.0,
        max: 90.0,
    };
    check("H/L/Setpoint", TagValue::Float(90.5), limits(90.5)).await;
    check("H/L/Setpoint", TagValue::Int(19), limits(19.0)).await;
    let pumps = |value| TagError::OutOfLimits {
        tag: name("H/L/Pumps"),
        value,
        min: 0.0,
        max: 65535.0,
    };
    check("H/L/Pumps", TagValue::Int(70_000), pumps(70_000.0)).await;
    let kind = adapter
        .write(&name("H/L/Setpoint"), TagValue::Bool(true))
        .await;
    assert!(matches!(kind, Err(TagError::Failed { .. })), "{kind:?}");
    let fraction = adapter.write(&name("H/L/Mode"), TagValue::Float(2.5)).await;
    assert!(
        matches!(fraction, Err(TagError::Failed { .. })),
        "{fraction:?}"
    );

    assert!(
        server
            .probe
            .setpoint_writes
            .lock()
            .expect("probe")
            .is_empty(),
        "a refused write reached the server"
    );
    assert_eq!(
        adapter
            .write(&name("H/L/Setpoint"), TagValue::Float(60.0))
            .await,
        Ok(())
    );
    assert_eq!(server.probe.setpoint_writes.lock().expect("probe").len(), 1);
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_server_that_drops_a_write_is_caught_by_the_read_back() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Stuck",
            "node_id = \"s=Leach1.Stuck\"",
            "f64",
            "access = \"read_write\"",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Stuck", TagValue::Float(0.0)).await;
    assert_eq!(
        adapter
            .write(&name("H/L/Stuck"), TagValue::Float(5.5))
            .await,
        Err(TagError::ReadBackMismatch {
            tag: name("H/L/Stuck"),
            written: "5.5".into(),
            read: "0".into()
        })
    );
    assert_eq!(server.probe.stuck_writes.load(Ordering::SeqCst), 1);
    adapter.shutdown().await;
}

#[tokio::test]
async fn an_unknown_namespace_or_path_makes_only_its_tags_bad_with_the_reason() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
        tag(
            "H/L/Elsewhere",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        )
        .replace(NS, "urn:remine:nowhere"),
        tag(
            "H/L/Missing",
            "browse_path = \"Leach1/NoSuchVariable\"",
            "f64",
            "",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;
    let configuration_error =
        |r: &TagReading| matches!(r.quality, Quality::Bad(BadReason::ConfigurationError(_)));
    let elsewhere = wait_until(
        &adapter,
        "H/L/Elsewhere",
        Duration::from_secs(5),
        configuration_error,
    )
    .await;
    assert!(
        elsewhere
            .quality
            .to_string()
            .contains("namespace 'urn:remine:nowhere'"),
        "{}",
        elsewhere.quality
    );
    let missing = wait_until(
        &adapter,
        "H/L/Missing",
        Duration::from_secs(5),
        configuration_error,
    )
    .await;
    assert!(
        missing
            .quality
            .to_string()
            .contains("Leach1/NoSuchVariable"),
        "{}",
        missing.quality
    );
    let status = &adapter.status()[0];
    assert!(status.connected);
    assert_eq!(status.config_problems.len(), 2, "{status:?}");
    assert!(
        status
            .config_problems
            .iter()
            .any(|p| p.contains("urn:remine:nowhere")),
        "{status:?}"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_stopped_server_reads_not_connected_and_a_restart_restores_the_subscription() {
    let dir = dirs();
    let mut server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;

    server.stop().await;
    let lost = wait_until(&adapter, "H/L/Temperature", Duration::from_secs(5), |r| {
        r.quality == Quality::Bad(BadReason::NotConnected)
    })
    .await;
    assert_eq!(
        lost.value,
        Some(TagValue::Float(70.0)),
        "the last value stays, stale"
    );
    assert!(!adapter.status()[0].connected);

    server.restart().await;
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;
    server.set(server.temperature(), 80.0);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(80.0)).await;
    let status = &adapter.status()[0];
    assert!(status.connected);
    assert_eq!(status.reconnects, 1, "{status:?}");
    adapter.shutdown().await;
}

#[tokio::test]
async fn basic256sha256_with_a_user_reads_and_writes() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let secure =
        format!("security = \"basic256sha256\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"");
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), &secure),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
        tag(
            "H/L/Setpoint",
            "node_id = \"s=Leach1.Setpoint\"",
            "f64",
            "access = \"read_write\"",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;
    assert_eq!(
        adapter
            .write(&name("H/L/Setpoint"), TagValue::Float(33.0))
            .await,
        Ok(())
    );
    assert!(
        !format!("{:?}", adapter.config()).contains(PASSWORD),
        "the password printed"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_gives_a_clear_status_and_nothing_hangs() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let secure =
        format!("security = \"basic256sha256\"\nusername = \"{USER}\"\npassword = \"wrong\"");
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), &secure),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = adapter.status().remove(0);
        if status.last_error.is_some() || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let why = status.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("rejected") && why.contains("user 'operator'"),
        "{status:?}"
    );
    assert!(!status.connected);
    assert_eq!(
        reading(&adapter, "H/L/Temperature").await.quality,
        Quality::Bad(BadReason::NotConnected)
    );
    let t0 = Instant::now();
    adapter.shutdown().await;
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_server_does_not_block_start() {
    let dir = dirs();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let toml = [
        server_table(
            &format!("opc.tcp://127.0.0.1:{port}/"),
            &dir.path().join("client"),
            "",
        ),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
    ]
    .concat();
    let t0 = Instant::now();
    let adapter = start(&toml);
    assert!(t0.elapsed() < Duration::from_millis(200));
    wait_until(&adapter, "H/L/Temperature", Duration::from_secs(10), |r| {
        r.quality == Quality::Bad(BadReason::NotConnected)
    })
    .await;
    let status = &adapter.status()[0];
    assert!(
        status.last_error.is_some() && status.consecutive_failures >= 1,
        "{status:?}"
    );
    assert_eq!(
        adapter
            .write(&name("H/L/Temperature"), TagValue::Float(1.0))
            .await,
        Err(TagError::ReadOnly(name("H/L/Temperature")))
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn methods_are_called_by_object_path_and_name() {
    let dir = dirs();
    let server = TestServer::start(dir.path()).await;
    let toml = [
        server_table(&server.endpoint(), &dir.path().join("client"), ""),
        tag(
            "H/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "H/L/Temperature", TagValue::Float(70.0)).await;

    let hold = MethodRef::new("dcs", NS, "Leach1", "Hold").expect("method ref");
    assert_eq!(adapter.call_method(&hold, &[]).await, Ok(vec![]));
    assert_eq!(server.probe.holds.load(Ordering::SeqCst), 1);

    let double = MethodRef::new("dcs", NS, "Leach1", "Double").expect("method ref");
    assert_eq!(
        adapter.call_method(&double, &[TagValue::Int(21)]).await,
        Ok(vec![TagValue::Int(42)])
    );

    let missing = MethodRef::new("dcs", NS, "Leach1", "Explode").expect("method ref");
    let err = adapter
        .call_method(&missing, &[])
        .await
        .expect_err("no such method");
    assert!(err.to_string().contains("method not found"), "{err}");

    let elsewhere = MethodRef::new("mes", NS, "Leach1", "Hold").expect("method ref");
    assert_eq!(
        adapter.call_method(&elsewhere, &[]).await,
        Err(OpcUaError::UnknownServer("mes".into()))
    );
    adapter.shutdown().await;
}
