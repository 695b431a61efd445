//! The Modbus adapter against real Modbus TCP servers on 127.0.0.1: values,
//! coalescing, exceptions, lost and restored links, silent devices, and the
//! guarded write path.

mod support;

use remine_domain::ports::{TagError, TagIo};
use remine_domain::{Access, BadReason, Quality, TagName, TagReading, TagValue};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_plc_common::test_support::wait_for;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{SilentServer, TestServer, closed_port};

fn device(name: &str, addr: SocketAddr, unit_id: u8, extra: &str) -> String {
    format!(
        "[[device]]\nname = \"{name}\"\naddress = \"{addr}\"\nunit_id = {unit_id}\n\
         poll_interval_ms = 20\nrequest_timeout_ms = 300\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n{extra}\n"
    )
}

fn tag(name: &str, table: &str, address: u32, ty: &str, extra: &str) -> String {
    format!(
        "[[tag]]\nname = \"{name}\"\ndevice = \"plc\"\ntable = \"{table}\"\naddress = {address}\ntype = \"{ty}\"\n{extra}\n"
    )
}

fn start(toml: &str) -> ModbusAdapter {
    let config = ModbusConfig::from_toml_str(toml, "test.toml").expect("test tag map");
    ModbusAdapter::start(config).expect("adapter starts")
}

fn name(s: &str) -> TagName {
    TagName::parse(s).expect("tag name")
}

async fn reading(adapter: &ModbusAdapter, tag: &str) -> TagReading {
    adapter.read(&[name(tag)]).await.remove(0)
}

/// Polls the adapter's cache until `ok` holds, and fails with the last reading otherwise.
async fn wait_until(
    adapter: &ModbusAdapter,
    tag: &str,
    within: Duration,
    ok: impl Fn(&TagReading) -> bool,
) -> TagReading {
    match wait_for(adapter, &name(tag), within, ok).await {
        Ok(r) => r,
        Err(r) => {
            panic!("{tag} did not reach the expected state within {within:?}; last reading: {r:?}")
        }
    }
}

async fn wait_good(adapter: &ModbusAdapter, tag: &str, value: TagValue) -> TagReading {
    wait_until(adapter, tag, Duration::from_secs(3), |r| {
        r.quality == Quality::Good && r.value == Some(value)
    })
    .await
}

// ---- values ---------------------------------------------------------------

/// Writes `value` through the adapter and expects `words` in the holding
/// registers; then lets the device change the registers and expects the
/// adapter to decode `words` back into `value`.
async fn check_registers(
    server: &TestServer,
    adapter: &ModbusAdapter,
    tag: &str,
    address: usize,
    value: TagValue,
    words: &[u16],
) {
    let range = address..address + words.len();
    let written = adapter.write(&name(tag), value).await;
    assert_eq!(written, Ok(()), "{tag} <- {value}");
    assert_eq!(
        &server.bank().holding[range.clone()],
        words,
        "{tag} wrote {value}"
    );
    server.bank().holding[range.clone()].fill(0);
    wait_until(adapter, tag, Duration::from_secs(3), |r| {
        r.value != Some(value)
    })
    .await;
    server.bank().holding[range].copy_from_slice(words);
    wait_good(adapter, tag, value).await;
}

#[tokio::test]
async fn every_type_and_word_order_round_trips() {
    let server = TestServer::start(1).await;
    let rw = "access = \"read_write\"";
    let toml = [
        device("plc", server.addr, 1, ""),
        tag("T/U/U16", "holding", 0, "u16", rw),
        tag("T/U/I16", "holding", 1, "i16", rw),
        tag("T/U/U32Big", "holding", 2, "u32", rw),
        tag(
            "T/U/U32Little",
            "holding",
            4,
            "u32",
            &format!("word_order = \"little\"\n{rw}"),
        ),
        tag("T/U/I32Big", "holding", 6, "i32", rw),
        tag(
            "T/U/I32Little",
            "holding",
            8,
            "i32",
            &format!("word_order = \"little\"\n{rw}"),
        ),
        tag(
            "T/U/F32Big",
            "holding",
            10,
            "f32",
            &format!("word_order = \"big\"\n{rw}"),
        ),
        tag(
            "T/U/F32Little",
            "holding",
            12,
            "f32",
            &format!("word_order = \"little\"\n{rw}"),
        ),
        tag(
            "T/U/Scaled",
            "holding",
            14,
            "u16",
            &format!("scale = 0.1\noffset = -40\n{rw}"),
        ),
        tag(
            "T/U/ScaledF32",
            "holding",
            16,
            "f32",
            &format!("scale = 2\n{rw}"),
        ),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/U16", TagValue::Int(0)).await;
    let s = &server;
    let a = &adapter;
    check_registers(s, a, "T/U/U16", 0, TagValue::Int(65535), &[0xFFFF]).await;
    check_registers(s, a, "T/U/I16", 1, TagValue::Int(-300), &[0xFED4]).await;
    check_registers(
        s,
        a,
        "T/U/U32Big",
        2,
        TagValue::Int(0x1234_5678),
        &[0x1234, 0x5678],
    )
    .await;
    check_registers(
        s,
        a,
        "T/U/U32Little",
        4,
        TagValue::Int(0x1234_5678),
        &[0x5678, 0x1234],
    )
    .await;
    check_registers(s, a, "T/U/I32Big", 6, TagValue::Int(-2), &[0xFFFF, 0xFFFE]).await;
    check_registers(
        s,
        a,
        "T/U/I32Little",
        8,
        TagValue::Int(-70_000),
        &[0xEE90, 0xFFFE],
    )
    .await;
    check_registers(
        s,
        a,
        "T/U/F32Big",
        10,
        TagValue::Float(1.5),
        &[0x3FC0, 0x0000],
    )
    .await;
    check_registers(
        s,
        a,
        "T/U/F32Little",
        12,
        TagValue::Float(-0.25),
        &[0x0000, 0xBE80],
    )
    .await;
    check_registers(s, a, "T/U/Scaled", 14, TagValue::Float(25.0), &[650]).await;
    check_registers(
        s,
        a,
        "T/U/ScaledF32",
        16,
        TagValue::Float(3.0),
        &[0x3FC0, 0x0000],
    )
    .await;
    adapter.shutdown().await;
}

#[tokio::test]
async fn bools_live_on_coils_discrete_inputs_and_register_bits() {
    let server = TestServer::start(1).await;
    let rw = "access = \"read_write\"";
    let toml = [
        device("plc", server.addr, 1, ""),
        tag("T/U/Coil", "coil", 5, "bool", rw),
        tag("T/U/Discrete", "discrete", 6, "bool", ""),
        tag("T/U/Bit3", "holding", 20, "bool", &format!("bit = 3\n{rw}")),
        tag("T/U/Bit0", "holding", 20, "bool", "bit = 0"),
        tag("T/U/InputBit15", "input", 21, "bool", "bit = 15"),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/Coil", TagValue::Bool(false)).await;

    adapter
        .write(&name("T/U/Coil"), TagValue::Bool(true))
        .await
        .unwrap();
    assert!(server.bank().coils[5]);
    server.bank().coils[5] = false;
    wait_good(&adapter, "T/U/Coil", TagValue::Bool(false)).await;

    server.bank().discrete[6] = true;
    wait_good(&adapter, "T/U/Discrete", TagValue::Bool(true)).await;

    server.bank().holding[20] = 0b1;
    wait_good(&adapter, "T/U/Bit0", TagValue::Bool(true)).await;
    adapter
        .write(&name("T/U/Bit3"), TagValue::Bool(true))
        .await
        .unwrap();
    assert_eq!(server.bank().holding[20], 0b1001, "the other bits are kept");
    adapter
        .write(&name("T/U/Bit3"), TagValue::Bool(false))
        .await
        .unwrap();
    assert_eq!(server.bank().holding[20], 0b0001);

    server.bank().input[21] = 0x8000;
    wait_good(&adapter, "T/U/InputBit15", TagValue::Bool(true)).await;
    adapter.shutdown().await;
}

#[tokio::test]
async fn the_unit_id_addresses_one_device_behind_a_gateway() {
    let server = TestServer::start(7).await;
    server.bank().holding[0] = 42;
    let toml = format!(
        "{}{}{}{}",
        device("plc", server.addr, 7, ""),
        tag("T/U/Seven", "holding", 0, "u16", ""),
        device("other", server.addr, 8, ""),
        "[[tag]]\nname = \"T/U/Eight\"\ndevice = \"other\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n",
    );
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/Seven", TagValue::Int(42)).await;
    let eight = wait_until(&adapter, "T/U/Eight", Duration::from_secs(3), |r| {
        matches!(r.quality, Quality::Bad(BadReason::DeviceFailure(_)))
    })
    .await;
    assert_eq!(eight.value, None);
    adapter.shutdown().await;
}

// ---- polling --------------------------------------------------------------

#[tokio::test]
async fn two_hundred_contiguous_registers_poll_in_two_requests() {
    let server = TestServer::start(1).await;
    let mut toml = device("plc", server.addr, 1, "")
        .replace("poll_interval_ms = 20", "poll_interval_ms = 60000");
    for i in 0..200 {
        server.bank().holding[i] = i as u16 + 1000;
        toml += &tag(&format!("T/U/R{i}"), "holding", i as u32, "u16", "");
    }
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/R199", TagValue::Int(1199)).await;
    let all: Vec<TagName> = (0..200).map(|i| name(&format!("T/U/R{i}"))).collect();
    let readings = adapter.read(&all).await;
    assert!(
        readings
            .iter()
            .enumerate()
            .all(|(i, r)| r.value == Some(TagValue::Int(i as i64 + 1000)))
    );
    assert_eq!(server.bank().reads, vec![(3, 0, 125), (3, 125, 75)]);
    adapter.shutdown().await;
}

#[tokio::test]
async fn an_exception_marks_only_the_tags_of_its_request() {
    let server = TestServer::start(1).await;
    server.bank().fail_from = Some(1000);
    server.bank().holding[0] = 1;
    server.bank().input[1000] = 2;
    let toml = [
        device("plc", server.addr, 1, ""),
        tag("T/U/Fine", "holding", 0, "u16", ""),
        tag("T/U/Faulty", "holding", 1000, "u16", ""),
        tag("T/U/FaultyToo", "holding", 1001, "u16", ""),
        tag("T/U/OtherTable", "input", 1000, "u16", ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/Fine", TagValue::Int(1)).await;
    wait_good(&adapter, "T/U/OtherTable", TagValue::Int(2)).await;
    for faulty in ["T/U/Faulty", "T/U/FaultyToo"] {
        let r = reading(&adapter, faulty).await;
        match &r.quality {
            Quality::Bad(BadReason::DeviceFailure(why)) => {
                assert!(why.contains("exception"), "{why}");
                assert!(why.contains("holding 1000..=1001"), "{why}");
            }
            other => panic!("{faulty} should be a device failure, is {other}"),
        }
    }
    assert!(adapter.status()[0].connected, "an exception is an answer");
    adapter.shutdown().await;
}

// ---- links ----------------------------------------------------------------

#[tokio::test]
async fn a_killed_server_turns_tags_not_connected_and_a_restart_brings_them_back() {
    let mut server = TestServer::start(1).await;
    server.bank().holding[3] = 11;
    let adapter = start(
        &[
            device("plc", server.addr, 1, ""),
            tag("T/U/V", "holding", 3, "u16", ""),
        ]
        .concat(),
    );
    wait_good(&adapter, "T/U/V", TagValue::Int(11)).await;
    assert!(adapter.status()[0].connected);

    server.kill().await;
    let lost = wait_until(&adapter, "T/U/V", Duration::from_secs(2), |r| {
        r.quality == Quality::Bad(BadReason::NotConnected)
    })
    .await;
    assert_eq!(
        lost.value,
        Some(TagValue::Int(11)),
        "the last value stays, stale"
    );
    assert_eq!(lost.good_value(), None);
    let status = &adapter.status()[0];
    assert!(!status.connected);
    assert!(status.last_error.is_some(), "{status:?}");

    server.bank().holding[3] = 12;
    server.restart().await;
    wait_good(&adapter, "T/U/V", TagValue::Int(12)).await;
    let status = &adapter.status()[0];
    assert!(status.connected);
    assert_eq!(status.reconnects, 1, "{status:?}");
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_silent_server_gives_timeout_quality_and_nothing_hangs() {
    let server = SilentServer::start().await;
    let toml = [
        device("plc", server.addr, 1, ""),
        tag("T/U/V", "holding", 0, "u16", "access = \"read_write\""),
    ]
    .concat();
    let adapter = start(&toml);
    assert_eq!(
        reading(&adapter, "T/U/V").await.quality,
        Quality::Bad(BadReason::WaitingForInitialData)
    );
    wait_until(&adapter, "T/U/V", Duration::from_secs(2), |r| {
        r.quality == Quality::Bad(BadReason::Timeout)
    })
    .await;

    let t0 = Instant::now();
    reading(&adapter, "T/U/V").await;
    assert!(
        t0.elapsed() < Duration::from_millis(50),
        "read waited on the device"
    );

    let t0 = Instant::now();
    let result = adapter.write(&name("T/U/V"), TagValue::Int(1)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "write hung for {:?}",
        t0.elapsed()
    );
    assert!(
        matches!(
            result,
            Err(TagError::Failed { .. } | TagError::NotConnected { .. })
        ),
        "{result:?}"
    );
    let status = &adapter.status()[0];
    assert!(!status.connected);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer"),
        "{status:?}"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_device_does_not_block_start_and_reads_not_connected() {
    let addr = closed_port().await;
    let t0 = Instant::now();
    let adapter = start(
        &[
            device("plc", addr, 1, ""),
            tag("T/U/V", "holding", 0, "u16", ""),
        ]
        .concat(),
    );
    assert!(t0.elapsed() < Duration::from_millis(100));
    wait_until(&adapter, "T/U/V", Duration::from_secs(2), |r| {
        r.quality == Quality::Bad(BadReason::NotConnected) && r.value.is_none()
    })
    .await;
    let status = &adapter.status()[0];
    assert_eq!(status.device, "plc");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot connect"),
        "{status:?}"
    );
    assert!(status.consecutive_failures >= 1);
    adapter.shutdown().await;
}

// ---- writes ---------------------------------------------------------------

#[tokio::test]
async fn writes_that_break_the_rules_never_reach_the_wire() {
    let server = TestServer::start(1).await;
    let toml = [
        device("plc", server.addr, 1, ""),
        tag("T/U/ReadOnly", "holding", 0, "u16", ""),
        tag(
            "T/U/Limited",
            "holding",
            1,
            "u16",
            "access = \"read_write\"\nscale = 0.1\nmin = 10\nmax = 20.5",
        ),
        tag("T/U/Raw", "holding", 2, "u16", "access = \"read_write\""),
        tag("T/U/Flag", "coil", 0, "bool", "access = \"read_write\""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/Raw", TagValue::Int(0)).await;

    let check = async |tag: &str, value: TagValue, expected: TagError| {
        assert_eq!(
            adapter.write(&name(tag), value).await,
            Err(expected),
            "{tag} <- {value}"
        );
    };
    check(
        "T/U/ReadOnly",
        TagValue::Int(1),
        TagError::ReadOnly(name("T/U/ReadOnly")),
    )
    .await;
    check(
        "T/U/Nowhere",
        TagValue::Int(1),
        TagError::UnknownTag(name("T/U/Nowhere")),
    )
    .await;
    let limited = |value| TagError::OutOfLimits {
        tag: name("T/U/Limited"),
        value,
        min: 10.0,
        max: 20.5,
    };
    check("T/U/Limited", TagValue::Float(20.6), limited(20.6)).await;
    check("T/U/Limited", TagValue::Int(9), limited(9.0)).await;
    let raw = |value| TagError::OutOfLimits {
        tag: name("T/U/Raw"),
        value,
        min: 0.0,
        max: 65535.0,
    };
    check("T/U/Raw", TagValue::Int(70_000), raw(70_000.0)).await;
    check("T/U/Raw", TagValue::Int(-1), raw(-1.0)).await;
    let nan = adapter
        .write(&name("T/U/Raw"), TagValue::Float(f64::NAN))
        .await;
    assert!(matches!(nan, Err(TagError::OutOfLimits { .. })), "{nan:?}");
    let mismatched = adapter.write(&name("T/U/Raw"), TagValue::Bool(true)).await;
    assert!(
        matches!(mismatched, Err(TagError::Failed { .. })),
        "{mismatched:?}"
    );
    let mismatched = adapter.write(&name("T/U/Flag"), TagValue::Float(0.5)).await;
    assert!(
        matches!(mismatched, Err(TagError::Failed { .. })),
        "{mismatched:?}"
    );

    assert_eq!(
        server.bank().writes,
        0,
        "a refused write reached the device"
    );
    adapter
        .write(&name("T/U/Limited"), TagValue::Float(20.5))
        .await
        .unwrap();
    assert_eq!(server.bank().holding[1], 205);
    assert_eq!(server.bank().writes, 1);
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_device_that_ignores_a_write_is_caught_by_the_read_back() {
    let server = TestServer::start(1).await;
    server.bank().ignore_writes = true;
    let toml = [
        device("plc", server.addr, 1, ""),
        tag(
            "T/U/Setpoint",
            "holding",
            4,
            "f32",
            "access = \"read_write\"",
        ),
        tag("T/U/Flag", "coil", 4, "bool", "access = \"read_write\""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_good(&adapter, "T/U/Setpoint", TagValue::Float(0.0)).await;
    assert_eq!(
        adapter
            .write(&name("T/U/Setpoint"), TagValue::Float(42.5))
            .await,
        Err(TagError::ReadBackMismatch {
            tag: name("T/U/Setpoint"),
            written: "42.5".into(),
            read: "0".into(),
        })
    );
    assert_eq!(
        adapter.write(&name("T/U/Flag"), TagValue::Bool(true)).await,
        Err(TagError::ReadBackMismatch {
            tag: name("T/U/Flag"),
            written: "true".into(),
            read: "false".into(),
        })
    );
    assert_eq!(server.bank().writes, 2);
    adapter.shutdown().await;
}

#[tokio::test]
async fn writing_to_a_disconnected_device_says_so() {
    let addr = closed_port().await;
    let adapter = start(
        &[
            device("plc", addr, 1, ""),
            tag("T/U/V", "holding", 0, "u16", "access = \"read_write\""),
        ]
        .concat(),
    );
    assert_eq!(
        adapter.write(&name("T/U/V"), TagValue::Int(1)).await,
        Err(TagError::NotConnected { tag: name("T/U/V") })
    );
    adapter.shutdown().await;
}

// ---- the port -------------------------------------------------------------

#[tokio::test]
async fn the_catalogue_and_reads_follow_the_tag_map() {
    let addr = closed_port().await;
    let toml = [
        device("plc", addr, 1, ""),
        tag(
            "T/U/Temp",
            "input",
            0,
            "i16",
            "scale = 0.1\nunit = \"degC\"",
        ),
        tag(
            "T/U/Speed",
            "holding",
            1,
            "u16",
            "unit = \"rpm\"\naccess = \"read_write\"\nmin = 0\nmax = 3000",
        ),
    ]
    .concat();
    let adapter = start(&toml);
    let catalogue = adapter.catalogue();
    assert_eq!(catalogue.len(), 2);
    assert_eq!(
        (
            catalogue[0].unit.as_str(),
            catalogue[0].access,
            catalogue[0].write_limits
        ),
        ("degC", Access::Read, None)
    );
    assert_eq!(
        (
            catalogue[1].unit.as_str(),
            catalogue[1].access,
            catalogue[1].write_limits
        ),
        ("rpm", Access::ReadWrite, Some((0.0, 3000.0)))
    );

    let readings = adapter
        .read(&[name("T/U/Speed"), name("T/U/Unknown"), name("T/U/Temp")])
        .await;
    let tags: Vec<&str> = readings.iter().map(|r| r.tag.as_str()).collect();
    assert_eq!(
        tags,
        ["T/U/Speed", "T/U/Unknown", "T/U/Temp"],
        "one reading per tag, in order"
    );
    assert!(matches!(
        readings[1].quality,
        Quality::Bad(BadReason::ConfigurationError(_))
    ));
    adapter.shutdown().await;
}
