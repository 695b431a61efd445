//! The OPC UA adapter against a server no one here wrote: asyncua 2.1 from
//! the Python venv, started by each test as a child process.
//!
//! The server (`tests/peers/opcua_server.py`) offers NoSecurity and
//! Basic256Sha256 SignAndEncrypt endpoints with its own certificate, lets in
//! anonymous sessions and the user `operator` with the password the test
//! chose, and puts its namespace `urn:remine:peer` at index 4 (after two
//! dummy namespaces), so a client that assumed index 2 would fail. Under
//! Objects/Hydromet/Leach1 it has variables of every type the adapter maps
//! and a method `Hold`. The test changes values, reads them back with their
//! variant types, and changes the accepted password over the script's stdin.
//!
//! Python is `$REMINE_VENV/bin/python`, else `<workspace>/target/venv/bin/python`
//! (scripts/test builds it from tests/python-requirements.txt). Without one
//! the tests print a loud SKIP line and pass, unless REMINE_REQUIRE_PEERS=1.

use remine_domain::ports::TagIo;
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use remine_opcua::{MethodRef, OpcUaAdapter, OpcUaConfig};
use remine_plc_common::test_support::wait_for;
use remine_testkit::python::{ScriptPeer, python_or_skip};
use std::path::Path;
use std::time::{Duration, Instant};

/// The namespace of the script's nodes.
const NS: &str = "urn:remine:peer";
/// The user the script knows.
const USER: &str = "operator";

// ---- the Python peer ------------------------------------------------------

/// The peer script as a child process; dropping it kills the process.
struct Peer(ScriptPeer);

impl std::ops::Deref for Peer {
    type Target = ScriptPeer;
    fn deref(&self) -> &ScriptPeer {
        &self.0
    }
}

impl std::ops::DerefMut for Peer {
    fn deref_mut(&mut self) -> &mut ScriptPeer {
        &mut self.0
    }
}

impl Peer {
    /// Starts `tests/peers/opcua_server.py` accepting `password` for the
    /// user, its certificate under `dir`, and waits for its `READY <port>`.
    async fn start(python: &Path, password: &str, dir: &Path) -> Peer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/opcua_server.py");
        Peer(
            ScriptPeer::start(
                python,
                &script,
                [
                    std::ffi::OsString::from("--password"),
                    password.into(),
                    "--cert-dir".into(),
                    dir.join("server-pki").into_os_string(),
                ],
                "asyncua peer",
            )
            .await,
        )
    }

    fn endpoint(&self) -> String {
        format!("opc.tcp://127.0.0.1:{}/", self.port())
    }

    /// Sets a variable (by browse name) in its own variant type.
    async fn set(&mut self, variable: &str, value: &str) {
        self.ask(&format!("set {variable} {value}"), "OK").await;
    }

    /// A variable's value as the server holds it: `<VariantType> <value>`.
    async fn get(&mut self, variable: &str) -> String {
        self.ask(&format!("get {variable}"), "VALUE ").await
    }

    /// From now on the server accepts only `password` for the user.
    async fn accept(&mut self, password: &str) {
        self.ask(&format!("accept {password}"), "OK").await;
    }

    /// Calls of the `Hold` method so far.
    async fn holds(&mut self) -> String {
        self.ask("holds", "HOLDS ").await
    }

    /// The index of [`NS`] on the server.
    async fn namespace_index(&mut self) -> String {
        self.ask("ns", "NS ").await
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

// ---- the adapter ----------------------------------------------------------

/// The `[[server]]` table for the peer; `extra` adds fields.
fn server_table(endpoint: &str, pki: &Path, extra: &str) -> String {
    format!(
        "[[server]]\nname = \"peer\"\nendpoint = \"{endpoint}\"\npki_dir = \"{}\"\ntrust_server_certs = true\n\
         request_timeout_ms = 3000\npublishing_interval_ms = 100\nreconnect_min_ms = 100\nreconnect_max_ms = 1000\n{extra}\n",
        pki.display()
    )
}

fn tag(name: &str, address: &str, data_type: &str, extra: &str) -> String {
    format!(
        "[[tag]]\nname = \"{name}\"\nserver = \"peer\"\nnamespace_uri = \"{NS}\"\n{address}\ndata_type = \"{data_type}\"\nsampling_interval_ms = 50\n{extra}\n"
    )
}

fn secure(password: &str) -> String {
    format!("security = \"basic256sha256\"\nusername = \"{USER}\"\npassword = \"{password}\"")
}

fn start(toml: &str) -> OpcUaAdapter {
    let config = OpcUaConfig::from_toml_str(toml, "peers.toml").expect("test tag map");
    OpcUaAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

fn hold() -> MethodRef {
    MethodRef::new("peer", NS, "Hydromet/Leach1", "Hold").expect("method ref")
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
    wait_until(adapter, tag, Duration::from_secs(15), |r| {
        r.quality == Quality::Good && r.value == Some(value)
    })
    .await
}

fn dirs() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Every variable of the script, by node id and by browse path.
fn every_variable(rw: &str) -> String {
    [
        tag(
            "P/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            rw,
        ),
        tag("P/L/pH", "node_id = \"i=1001\"", "f32", rw),
        tag("P/L/Mode", "node_id = \"s=Leach1.Mode\"", "i32", rw),
        tag(
            "P/L/Pumps",
            "browse_path = \"Hydromet/Leach1/Pumps\"",
            "u16",
            rw,
        ),
        tag(
            "P/L/BatchCount",
            "browse_path = \"Hydromet/Leach1/BatchCount\"",
            "u32",
            rw,
        ),
        tag(
            "P/L/Running",
            "browse_path = \"Hydromet/Leach1/Running\"",
            "bool",
            rw,
        ),
        tag(
            "P/L/Setpoint",
            "browse_path = \"Hydromet/Leach1/Setpoint\"",
            "f64",
            rw,
        ),
    ]
    .concat()
}

// ---- reads and subscriptions ----------------------------------------------

#[tokio::test]
async fn asyncua_server_tags_by_node_id_and_browse_path_read_in_a_namespace_found_by_uri() {
    let test = "asyncua_server_tags_by_node_id_and_browse_path_read_in_a_namespace_found_by_uri";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let mut peer = Peer::start(&python, "unused", dir.path()).await;
    assert_eq!(
        peer.namespace_index().await,
        "4",
        "the peer's namespace is not at 2"
    );
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), "") + &every_variable("");
    let adapter = start(&toml);
    use TagValue::{Bool, Float, Int};
    let check = async |tag: &str, expected: TagValue| {
        let r = wait_good(&adapter, tag, expected).await;
        assert!(
            r.source_time.is_some(),
            "{tag}: the server's timestamp is kept"
        );
    };
    check("P/L/Temperature", Float(70.0)).await;
    check("P/L/pH", Float(6.5)).await;
    check("P/L/Mode", Int(-1)).await;
    check("P/L/Pumps", Int(2)).await;
    check("P/L/BatchCount", Int(4_000_000_000)).await;
    check("P/L/Running", Bool(true)).await;
    check("P/L/Setpoint", Float(50.0)).await;
    let status = &adapter.status()[0];
    assert!(
        status.connected && status.config_problems.is_empty(),
        "{status:?}"
    );
    adapter.shutdown().await;
    peer.stop().await;
}

#[tokio::test]
async fn asyncua_server_subscription_delivers_changed_values_within_two_seconds() {
    let test = "asyncua_server_subscription_delivers_changed_values_within_two_seconds";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let mut peer = Peer::start(&python, "unused", dir.path()).await;
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), "") + &every_variable("");
    let adapter = start(&toml);
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(70.0)).await;
    wait_good(&adapter, "P/L/Running", TagValue::Bool(true)).await;
    use TagValue::{Bool, Float, Int};
    let changes = [
        ("Temperature", "71.5", "P/L/Temperature", Float(71.5)),
        ("Temperature", "74.25", "P/L/Temperature", Float(74.25)),
        ("pH", "1.25", "P/L/pH", Float(1.25)),
        ("Mode", "3", "P/L/Mode", Int(3)),
        (
            "BatchCount",
            "4000000001",
            "P/L/BatchCount",
            Int(4_000_000_001),
        ),
        ("Running", "false", "P/L/Running", Bool(false)),
    ];
    for (variable, text, tag, expected) in changes {
        peer.set(variable, text).await;
        let t0 = Instant::now();
        wait_good(&adapter, tag, expected).await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{variable} = {text} reached {tag} after {:?}",
            t0.elapsed()
        );
    }
    adapter.shutdown().await;
    peer.stop().await;
}

#[tokio::test]
async fn asyncua_server_revised_intervals_show_in_the_status_of_each_group() {
    let test = "asyncua_server_revised_intervals_show_in_the_status_of_each_group";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let peer = Peer::start(&python, "unused", dir.path()).await;
    // asyncua grants every publishing interval asked for, but samples at the
    // subscription's publishing interval whatever the item asked (50 ms).
    let group = "[[server.group]]\nname = \"slow\"\npublishing_interval_ms = 400";
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), group)
        + &tag(
            "P/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        )
        + &tag("P/L/pH", "node_id = \"i=1001\"", "f32", "")
        + &tag(
            "P/L/Mode",
            "node_id = \"s=Leach1.Mode\"",
            "i32",
            "group = \"slow\"",
        );
    let adapter = start(&toml);
    wait_good(&adapter, "P/L/Mode", TagValue::Int(-1)).await;
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(70.0)).await;
    let ms = Duration::from_millis;
    let status = adapter.status().remove(0);
    let seen: Vec<_> = status
        .groups
        .iter()
        .map(|g| {
            (
                g.group.as_deref(),
                g.tags,
                g.subscriptions,
                g.requested_publishing_interval,
                g.revised_publishing_interval,
                g.requested_sampling_interval,
                g.revised_sampling_interval,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                None,
                2,
                1,
                ms(100),
                Some(ms(100)),
                (ms(50), ms(50)),
                Some((ms(100), ms(100)))
            ),
            (
                Some("slow"),
                1,
                1,
                ms(400),
                Some(ms(400)),
                (ms(50), ms(50)),
                Some((ms(400), ms(400)))
            ),
        ],
        "{status:?}"
    );
    assert!(status.groups.iter().all(|g| g.changes >= 1), "{status:?}");
    adapter.shutdown().await;
    peer.stop().await;
}

// ---- writes and methods ---------------------------------------------------

/// The adapter writes `value` to `tag`; the script must hold `held`
/// (`<VariantType> <value>`) in `variable`, and the adapter must read it back
/// (a float tag reads a written integer back as a float).
async fn check_write(
    adapter: &OpcUaAdapter,
    peer: &mut Peer,
    (tag, value): (&str, TagValue),
    (variable, held): (&str, &str),
) {
    assert_eq!(
        adapter.write(&name(tag), value).await,
        Ok(()),
        "{tag} <- {value}"
    );
    assert_eq!(
        peer.get(variable).await,
        held,
        "{tag} <- {value}: the server holds"
    );
    let floating = held.starts_with("Double ") || held.starts_with("Float ");
    let reads = match value {
        TagValue::Int(i) if floating => TagValue::Float(i as f64),
        other => other,
    };
    wait_good(adapter, tag, reads).await;
}

#[tokio::test]
async fn asyncua_server_receives_writes_of_every_type_as_that_variant_type() {
    let test = "asyncua_server_receives_writes_of_every_type_as_that_variant_type";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let mut peer = Peer::start(&python, "unused", dir.path()).await;
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), "")
        + &every_variable("access = \"read_write\"");
    let adapter = start(&toml);
    wait_good(&adapter, "P/L/Mode", TagValue::Int(-1)).await;
    use TagValue::{Bool, Float, Int};
    let (a, p) = (&adapter, &mut peer);
    check_write(
        a,
        p,
        ("P/L/Temperature", Float(42.5)),
        ("Temperature", "Double 42.5"),
    )
    .await;
    check_write(a, p, ("P/L/pH", Float(7.25)), ("pH", "Float 7.25")).await;
    check_write(a, p, ("P/L/Mode", Int(-300)), ("Mode", "Int32 -300")).await;
    check_write(a, p, ("P/L/Pumps", Int(65535)), ("Pumps", "UInt16 65535")).await;
    check_write(
        a,
        p,
        ("P/L/BatchCount", Int(4_294_967_295)),
        ("BatchCount", "UInt32 4294967295"),
    )
    .await;
    check_write(
        a,
        p,
        ("P/L/Running", Bool(false)),
        ("Running", "Boolean false"),
    )
    .await;
    check_write(a, p, ("P/L/Setpoint", Int(60)), ("Setpoint", "Double 60.0")).await;
    adapter.shutdown().await;
    peer.stop().await;
}

#[tokio::test]
async fn asyncua_server_method_call_returns_the_servers_outputs() {
    let test = "asyncua_server_method_call_returns_the_servers_outputs";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let mut peer = Peer::start(&python, "unused", dir.path()).await;
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), "")
        + &tag(
            "P/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        );
    let adapter = start(&toml);
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(70.0)).await;
    assert_eq!(
        adapter.call_method(&hold(), &[TagValue::Float(2.5)]).await,
        Ok(vec![TagValue::Int(1), TagValue::Float(150.0)]),
        "Hold(2.5 min) -> (holds, resume in s)"
    );
    assert_eq!(
        adapter.call_method(&hold(), &[TagValue::Float(0.5)]).await,
        Ok(vec![TagValue::Int(2), TagValue::Float(30.0)])
    );
    assert_eq!(peer.holds().await, "2");
    adapter.shutdown().await;
    peer.stop().await;
}

// ---- security -------------------------------------------------------------

#[tokio::test]
async fn asyncua_server_basic256sha256_user_login_reads_writes_and_calls() {
    let test = "asyncua_server_basic256sha256_user_login_reads_writes_and_calls";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let password = "Peer-Pa55-7";
    let mut peer = Peer::start(&python, password, dir.path()).await;
    let toml = server_table(
        &peer.endpoint(),
        &dir.path().join("client"),
        &secure(password),
    ) + &every_variable("access = \"read_write\"");
    let adapter = start(&toml);
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(70.0)).await;
    wait_good(&adapter, "P/L/BatchCount", TagValue::Int(4_000_000_000)).await;

    peer.set("Temperature", "88.5").await;
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(88.5)).await;
    let (a, p) = (&adapter, &mut peer);
    check_write(
        a,
        p,
        ("P/L/Setpoint", TagValue::Float(33.0)),
        ("Setpoint", "Double 33.0"),
    )
    .await;
    check_write(
        a,
        p,
        ("P/L/Running", TagValue::Bool(false)),
        ("Running", "Boolean false"),
    )
    .await;
    assert_eq!(
        adapter.call_method(&hold(), &[TagValue::Float(1.0)]).await,
        Ok(vec![TagValue::Int(1), TagValue::Float(60.0)])
    );
    let client_cert = dir.path().join("client/own");
    assert!(
        client_cert.is_dir(),
        "the adapter made its certificate in {}",
        client_cert.display()
    );
    let status = &adapter.status()[0];
    assert!(
        status.connected && status.last_error.is_none(),
        "{status:?}"
    );
    adapter.shutdown().await;
    peer.stop().await;
}

#[tokio::test]
async fn asyncua_server_wrong_password_reads_bad_until_the_account_is_fixed() {
    let test = "asyncua_server_wrong_password_reads_bad_until_the_account_is_fixed";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let dir = dirs();
    let (ours, theirs) = ("Ours-A-1", "Theirs-B-2");
    let mut peer = Peer::start(&python, theirs, dir.path()).await;
    let toml = server_table(&peer.endpoint(), &dir.path().join("client"), &secure(ours))
        + &tag(
            "P/L/Temperature",
            "node_id = \"s=Leach1.Temperature\"",
            "f64",
            "",
        );
    let adapter = start(&toml);

    let deadline = Instant::now() + Duration::from_secs(15);
    let refused = loop {
        let status = adapter.status().remove(0);
        if status.last_error.is_some() || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let why = refused.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("rejected") && why.contains(&format!("user '{USER}'")),
        "the status names the rejected user: {refused:?}"
    );
    assert!(!why.contains(ours), "the password printed: {why}");
    assert!(!refused.connected, "{refused:?}");
    assert!(
        refused.comms_alarm.is_some(),
        "the comms-loss alarm is raised: {refused:?}"
    );
    let r = adapter.read(&[name("P/L/Temperature")]).await.remove(0);
    assert_eq!(r.quality, Quality::Bad(BadReason::NotConnected), "{r:?}");

    // The DCS admin fixes the account; the adapter is not restarted.
    peer.accept(ours).await;
    let t0 = Instant::now();
    wait_until(&adapter, "P/L/Temperature", Duration::from_secs(5), |r| {
        r.quality == Quality::Good && r.value == Some(TagValue::Float(70.0))
    })
    .await;
    println!("good again {:?} after the account was fixed", t0.elapsed());
    let status = &adapter.status()[0];
    assert!(status.connected, "{status:?}");
    assert_eq!(status.comms_alarm, None, "the alarm clears: {status:?}");
    peer.set("Temperature", "65.5").await;
    wait_good(&adapter, "P/L/Temperature", TagValue::Float(65.5)).await;
    adapter.shutdown().await;
    peer.stop().await;
}
