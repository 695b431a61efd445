//! The Modbus adapter against a server no one here wrote: pymodbus 3.16 from
//! the Python venv, started by each test as a child process.
//!
//! The server (`tests/peers/modbus_server.py`) serves one device with unit id
//! 17 on a free loopback port and takes commands on stdin: put a typed value
//! (encoded by Python's `struct`, not by the adapter's codec), get one back
//! decoded, or list raw words. So every value checked here was encoded or
//! decoded by an independent implementation of the Modbus data model.
//!
//! Python is `$REMINE_VENV/bin/python`, else `<workspace>/target/venv/bin/python`
//! (scripts/test builds it from tests/python-requirements.txt). Without one
//! the tests print a loud SKIP line and pass, unless REMINE_REQUIRE_PEERS=1.

use remine_domain::ports::TagIo;
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_plc_common::test_support::wait_for;
use remine_testkit::python::{ScriptPeer, python_or_skip};
use std::path::Path;
use std::time::{Duration, Instant};

/// The unit id the pymodbus server answers to.
const UNIT: u8 = 17;

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
    /// Starts `tests/peers/modbus_server.py` for unit `unit` and waits for
    /// its `READY <port>` line.
    async fn start(python: &Path, unit: u8) -> Peer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/modbus_server.py");
        Peer(
            ScriptPeer::start(
                python,
                &script,
                ["--unit".to_string(), unit.to_string()],
                "pymodbus peer",
            )
            .await,
        )
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Puts a value into the device, encoded by Python: `table address type order value`.
    async fn put(&mut self, what: &str, value: &str) {
        self.ask(&format!("put {what} {value}"), "OK").await;
    }

    /// The device's value, decoded by Python: `table address type order`.
    async fn get(&mut self, what: &str) -> String {
        self.ask(&format!("get {what}"), "VALUE ").await
    }

    /// The device's raw registers (or bits, as 0/1).
    async fn words(&mut self, table: &str, address: u16, count: u16) -> Vec<u16> {
        let reply = self
            .ask(&format!("words {table} {address} {count}"), "WORDS ")
            .await;
        reply
            .split_whitespace()
            .map(|w| {
                w.parse()
                    .unwrap_or_else(|_| self.fail(&format!("bad word in {reply:?}")))
            })
            .collect()
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

// ---- the adapter ----------------------------------------------------------

fn device(name: &str, addr: &str, unit_id: u8, poll_ms: u64) -> String {
    format!(
        "[[device]]\nname = \"{name}\"\naddress = \"{addr}\"\nunit_id = {unit_id}\n\
         poll_interval_ms = {poll_ms}\nrequest_timeout_ms = 500\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n"
    )
}

fn tag(name: &str, table: &str, address: u16, ty: &str, extra: &str) -> String {
    format!(
        "[[tag]]\nname = \"{name}\"\ndevice = \"plc\"\ntable = \"{table}\"\naddress = {address}\ntype = \"{ty}\"\n{extra}\n"
    )
}

fn start(toml: &str) -> ModbusAdapter {
    let config = ModbusConfig::from_toml_str(toml, "peers.toml").expect("test tag map");
    ModbusAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

/// Polls the adapter's cache until `ok` holds, and fails with the last reading and the status otherwise.
async fn wait_until(
    adapter: &ModbusAdapter,
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

async fn wait_good(adapter: &ModbusAdapter, tag: &str, value: TagValue) -> TagReading {
    wait_until(adapter, tag, Duration::from_secs(5), |r| {
        r.quality == Quality::Good && r.value == Some(value)
    })
    .await
}

// ---- reads ----------------------------------------------------------------

/// One tag of the map, what Python puts into the device, and what the adapter must read.
struct ReadCase {
    tag: &'static str,
    table: &'static str,
    address: u16,
    /// The adapter's `type` (and `bit`) and any scaling, as tag-map lines.
    map: &'static str,
    /// What the script puts: `type order value`.
    put: &'static str,
    expected: TagValue,
}

fn read_case(
    tag: &'static str,
    (table, address): (&'static str, u16),
    map: &'static str,
    put: &'static str,
    expected: TagValue,
) -> ReadCase {
    ReadCase {
        tag,
        table,
        address,
        map,
        put,
        expected,
    }
}

#[tokio::test]
async fn pymodbus_server_every_type_and_word_order_reads_as_written() {
    let test = "pymodbus_server_every_type_and_word_order_reads_as_written";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    use TagValue::{Bool, Float, Int};
    let cases = [
        read_case(
            "P/H/U16",
            ("holding", 0),
            "type = \"u16\"",
            "u16 - 65535",
            Int(65535),
        ),
        read_case(
            "P/H/I16",
            ("holding", 1),
            "type = \"i16\"",
            "i16 - -300",
            Int(-300),
        ),
        read_case(
            "P/H/U32Big",
            ("holding", 2),
            "type = \"u32\"",
            "u32 big 305419896",
            Int(0x1234_5678),
        ),
        read_case(
            "P/H/U32Little",
            ("holding", 4),
            "type = \"u32\"\nword_order = \"little\"",
            "u32 little 4000000000",
            Int(4_000_000_000),
        ),
        read_case(
            "P/H/I32Big",
            ("holding", 6),
            "type = \"i32\"\nword_order = \"big\"",
            "i32 big -2",
            Int(-2),
        ),
        read_case(
            "P/H/I32Little",
            ("holding", 8),
            "type = \"i32\"\nword_order = \"little\"",
            "i32 little -70000",
            Int(-70_000),
        ),
        read_case(
            "P/H/F32Big",
            ("holding", 10),
            "type = \"f32\"",
            "f32 big 1.5",
            Float(1.5),
        ),
        read_case(
            "P/H/F32Little",
            ("holding", 12),
            "type = \"f32\"\nword_order = \"little\"",
            "f32 little -0.25",
            Float(-0.25),
        ),
        read_case(
            "P/H/ScaledOffset",
            ("holding", 14),
            "type = \"u16\"\nscale = 0.1\noffset = -40",
            "u16 - 650",
            Float(25.0),
        ),
        read_case(
            "P/H/ScaledI32",
            ("holding", 16),
            "type = \"i32\"\nword_order = \"little\"\nscale = 0.001",
            "i32 little -1500",
            Float(-1.5),
        ),
        read_case(
            "P/I/U16",
            ("input", 0),
            "type = \"u16\"",
            "u16 - 1234",
            Int(1234),
        ),
        read_case(
            "P/I/I16Scaled",
            ("input", 1),
            "type = \"i16\"\nscale = 0.1",
            "i16 - -125",
            Float(-12.5),
        ),
        read_case(
            "P/I/U32Little",
            ("input", 2),
            "type = \"u32\"\nword_order = \"little\"",
            "u32 little 65537",
            Int(65537),
        ),
        read_case(
            "P/I/F32Big",
            ("input", 4),
            "type = \"f32\"",
            "f32 big 3.75",
            Float(3.75),
        ),
        read_case(
            "P/I/F32LittleScaled",
            ("input", 6),
            "type = \"f32\"\nword_order = \"little\"\nscale = 2\noffset = 1",
            "f32 little 10.5",
            Float(22.0),
        ),
        read_case(
            "P/C/On",
            ("coil", 3),
            "type = \"bool\"",
            "bool - 1",
            Bool(true),
        ),
        read_case(
            "P/C/Off",
            ("coil", 4),
            "type = \"bool\"",
            "bool - 0",
            Bool(false),
        ),
        read_case(
            "P/D/On",
            ("discrete", 17),
            "type = \"bool\"",
            "bool - 1",
            Bool(true),
        ),
        read_case(
            "P/D/Off",
            ("discrete", 18),
            "type = \"bool\"",
            "bool - 0",
            Bool(false),
        ),
        read_case(
            "P/H/Bit0",
            ("holding", 20),
            "type = \"bool\"\nbit = 0",
            "bool:0 - 1",
            Bool(true),
        ),
        read_case(
            "P/H/Bit7",
            ("holding", 20),
            "type = \"bool\"\nbit = 7",
            "bool:7 - 0",
            Bool(false),
        ),
        read_case(
            "P/H/Bit15",
            ("holding", 20),
            "type = \"bool\"\nbit = 15",
            "bool:15 - 1",
            Bool(true),
        ),
        read_case(
            "P/I/Bit9",
            ("input", 21),
            "type = \"bool\"\nbit = 9",
            "bool:9 - 1",
            Bool(true),
        ),
    ];

    let mut peer = Peer::start(&python, UNIT).await;
    let mut toml = device("plc", &peer.addr(), UNIT, 100);
    for c in &cases {
        peer.put(&format!("{} {}", c.table, c.address), c.put).await;
        toml += &format!(
            "[[tag]]\nname = \"{}\"\ndevice = \"plc\"\ntable = \"{}\"\naddress = {}\n{}\n",
            c.tag, c.table, c.address, c.map
        );
    }
    let adapter = start(&toml);
    for c in &cases {
        let r = wait_until(&adapter, c.tag, Duration::from_secs(5), |r| {
            r.quality != Quality::Bad(BadReason::WaitingForInitialData)
        })
        .await;
        assert_eq!(
            (&r.quality, r.value),
            (&Quality::Good, Some(c.expected)),
            "{} ({} {} {}): pymodbus holds {}",
            c.tag,
            c.table,
            c.address,
            c.map.replace('\n', ", "),
            c.put
        );
    }
    adapter.shutdown().await;
    peer.stop().await;
}

// ---- writes ---------------------------------------------------------------

#[tokio::test]
async fn pymodbus_server_receives_every_kind_of_write_and_the_adapter_reads_it_back() {
    let test = "pymodbus_server_receives_every_kind_of_write_and_the_adapter_reads_it_back";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let mut peer = Peer::start(&python, UNIT).await;
    let rw = "access = \"read_write\"";
    let toml = [
        device("plc", &peer.addr(), UNIT, 50),
        tag("P/W/U16", "holding", 30, "u16", rw),
        tag(
            "P/W/I16Scaled",
            "holding",
            31,
            "i16",
            &format!("scale = 0.5\n{rw}"),
        ),
        tag("P/W/U32Big", "holding", 32, "u32", rw),
        tag(
            "P/W/I32Little",
            "holding",
            34,
            "i32",
            &format!("word_order = \"little\"\n{rw}"),
        ),
        tag("P/W/F32Big", "holding", 36, "f32", rw),
        tag(
            "P/W/F32Little",
            "holding",
            38,
            "f32",
            &format!("word_order = \"little\"\n{rw}"),
        ),
        tag("P/W/Coil", "coil", 9, "bool", rw),
        tag("P/W/Bit5", "holding", 40, "bool", &format!("bit = 5\n{rw}")),
        tag("P/W/Bit0", "holding", 40, "bool", "bit = 0"),
    ]
    .concat();
    // A neighbour bit the read-modify-write of bit 5 must keep.
    peer.put("holding 40", "bool:0 - 1").await;
    let adapter = start(&toml);
    wait_good(&adapter, "P/W/Bit0", TagValue::Bool(true)).await;

    // The adapter writes `value`; Python decodes what landed as `what` and
    // must find `landed`; the adapter's cache then shows `value` again.
    let check = async |peer: &mut Peer, tag: &str, value: TagValue, what: &str, landed: &str| {
        assert_eq!(
            adapter.write(&name(tag), value).await,
            Ok(()),
            "{tag} <- {value}"
        );
        assert_eq!(
            peer.get(what).await,
            landed,
            "{tag} <- {value}: pymodbus holds {what}"
        );
        wait_good(&adapter, tag, value).await;
    };
    use TagValue::{Bool, Float, Int};
    check(
        &mut peer,
        "P/W/U16",
        Int(65000),
        "holding 30 u16 -",
        "65000",
    )
    .await;
    check(
        &mut peer,
        "P/W/I16Scaled",
        Float(-12.5),
        "holding 31 i16 -",
        "-25",
    )
    .await;
    check(
        &mut peer,
        "P/W/U32Big",
        Int(3_000_000_000),
        "holding 32 u32 big",
        "3000000000",
    )
    .await;
    check(
        &mut peer,
        "P/W/I32Little",
        Int(-123_456),
        "holding 34 i32 little",
        "-123456",
    )
    .await;
    check(
        &mut peer,
        "P/W/F32Big",
        Float(2.5),
        "holding 36 f32 big",
        "2.5",
    )
    .await;
    check(
        &mut peer,
        "P/W/F32Little",
        Float(-1024.75),
        "holding 38 f32 little",
        "-1024.75",
    )
    .await;
    check(&mut peer, "P/W/Coil", Bool(true), "coil 9 bool -", "true").await;
    check(&mut peer, "P/W/Coil", Bool(false), "coil 9 bool -", "false").await;
    check(
        &mut peer,
        "P/W/Bit5",
        Bool(true),
        "holding 40 bool:5 -",
        "true",
    )
    .await;
    assert_eq!(
        peer.words("holding", 40, 1).await,
        [0b10_0001],
        "bit 0 is kept"
    );
    check(
        &mut peer,
        "P/W/Bit5",
        Bool(false),
        "holding 40 bool:5 -",
        "false",
    )
    .await;
    assert_eq!(peer.words("holding", 40, 1).await, [0b1], "bit 0 is kept");

    // The word order on the wire, as raw registers.
    assert_eq!(
        peer.words("holding", 32, 2).await,
        [0xB2D0, 0x5E00],
        "u32 big: high word first"
    );
    assert_eq!(
        peer.words("holding", 34, 2).await,
        [0x1DC0, 0xFFFE],
        "i32 little: low word first"
    );
    adapter.shutdown().await;
    peer.stop().await;
}

// ---- addressing -----------------------------------------------------------

#[tokio::test]
async fn pymodbus_server_answers_another_unit_id_with_a_device_failure_exception() {
    let test = "pymodbus_server_answers_another_unit_id_with_a_device_failure_exception";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let mut peer = Peer::start(&python, UNIT).await;
    peer.put("holding 0", "u16 - 42").await;
    let toml = format!(
        "{}{}{}[[tag]]\nname = \"P/U/Other\"\ndevice = \"other\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n",
        device("plc", &peer.addr(), UNIT, 50),
        tag("P/U/Ours", "holding", 0, "u16", ""),
        device("other", &peer.addr(), UNIT + 1, 50),
    );
    let adapter = start(&toml);
    wait_good(&adapter, "P/U/Ours", TagValue::Int(42)).await;
    // pymodbus 3.16 neither ignores an unknown unit id nor answers it with
    // the device's data: it answers exception 04 (server device failure).
    let other = wait_until(&adapter, "P/U/Other", Duration::from_secs(5), |r| {
        r.quality != Quality::Bad(BadReason::WaitingForInitialData)
    })
    .await;
    match &other.quality {
        Quality::Bad(BadReason::DeviceFailure(why)) => {
            assert!(why.to_lowercase().contains("device failure"), "{why}");
            assert!(why.contains("holding 0"), "{why}");
        }
        q => panic!("a wrong unit id should read as a device failure, reads {q}"),
    }
    assert_eq!(other.value, None, "no value from another unit");
    let status = adapter.status();
    assert!(
        status.iter().all(|s| s.connected),
        "an exception is an answer: {status:?}"
    );
    adapter.shutdown().await;
    peer.stop().await;
}

#[tokio::test]
async fn pymodbus_server_refuses_an_address_outside_its_map_and_only_those_tags_go_bad() {
    let test = "pymodbus_server_refuses_an_address_outside_its_map_and_only_those_tags_go_bad";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    let mut peer = Peer::start(&python, UNIT).await;
    peer.put("holding 5", "u16 - 5").await;
    peer.put("input 5", "u16 - 6").await;
    peer.put("coil 5", "bool - 1").await;
    // The script's device maps addresses 0..199 of every table.
    let toml = [
        device("plc", &peer.addr(), UNIT, 50),
        tag("P/A/Holding", "holding", 5, "u16", ""),
        tag("P/A/Input", "input", 5, "u16", ""),
        tag("P/A/Coil", "coil", 5, "bool", ""),
        tag("P/A/FarHolding", "holding", 1000, "f32", ""),
        tag("P/A/FarCoil", "coil", 5000, "bool", ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "P/A/Holding", TagValue::Int(5)).await;
    wait_good(&adapter, "P/A/Input", TagValue::Int(6)).await;
    wait_good(&adapter, "P/A/Coil", TagValue::Bool(true)).await;
    for (far, range) in [
        ("P/A/FarHolding", "holding 1000..=1001"),
        ("P/A/FarCoil", "coil 5000"),
    ] {
        let r = wait_until(&adapter, far, Duration::from_secs(5), |r| {
            r.quality != Quality::Bad(BadReason::WaitingForInitialData)
        })
        .await;
        match &r.quality {
            Quality::Bad(BadReason::DeviceFailure(why)) => {
                assert!(
                    why.to_lowercase().contains("illegal data address"),
                    "{far}: {why}"
                );
                assert!(why.contains(range), "{far}: {why}");
            }
            q => panic!("{far} should be a device failure, reads {q}"),
        }
    }
    // The good tags stay good while the far ones keep failing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let good = adapter
        .read(&[name("P/A/Holding"), name("P/A/Input"), name("P/A/Coil")])
        .await;
    assert!(good.iter().all(|r| r.quality == Quality::Good), "{good:?}");
    assert!(adapter.status()[0].connected, "an exception is an answer");
    adapter.shutdown().await;
    peer.stop().await;
}

// ---- polling --------------------------------------------------------------

#[tokio::test]
async fn pymodbus_server_value_changes_are_seen_within_two_poll_intervals() {
    let test = "pymodbus_server_value_changes_are_seen_within_two_poll_intervals";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    const POLL_MS: u64 = 250;
    let mut peer = Peer::start(&python, UNIT).await;
    let toml = [
        device("plc", &peer.addr(), UNIT, POLL_MS),
        tag("P/P/Temp", "input", 50, "f32", "word_order = \"little\""),
        tag("P/P/Running", "discrete", 50, "bool", ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "P/P/Temp", TagValue::Float(0.0)).await;
    let limit = Duration::from_millis(2 * POLL_MS);
    for value in [21.5, 22.25, -3.0, 1000.5] {
        peer.put("input 50", &format!("f32 little {value}")).await;
        let t0 = Instant::now();
        wait_good(&adapter, "P/P/Temp", TagValue::Float(value)).await;
        assert!(
            t0.elapsed() <= limit,
            "{value} took {:?} (limit {limit:?})",
            t0.elapsed()
        );
    }
    for on in [true, false] {
        peer.put("discrete 50", if on { "bool - 1" } else { "bool - 0" })
            .await;
        let t0 = Instant::now();
        wait_good(&adapter, "P/P/Running", TagValue::Bool(on)).await;
        assert!(
            t0.elapsed() <= limit,
            "{on} took {:?} (limit {limit:?})",
            t0.elapsed()
        );
    }
    adapter.shutdown().await;
    peer.stop().await;
}
