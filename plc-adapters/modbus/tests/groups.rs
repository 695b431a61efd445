//! Poll groups and pipelining against a real Modbus TCP server on 127.0.0.1
//! that counts requests per address, connections, and requests in flight,
//! and can take its time to answer.

mod support;

use remine_domain::ports::TagIo;
use remine_domain::{Quality, TagName, TagValue};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_plc_common::test_support::wait_for;
use std::time::{Duration, Instant};
use support::TestServer;

fn start(toml: &str) -> ModbusAdapter {
    let config = ModbusConfig::from_toml_str(toml, "groups.toml").expect("test tag map");
    ModbusAdapter::start(config).expect("adapter starts")
}

fn device(server: &TestServer, extra: &str) -> String {
    format!(
        "[[device]]\nname = \"plc\"\naddress = \"{}\"\nunit_id = 1\nrequest_timeout_ms = 2000\n\
         reconnect_min_ms = 20\nreconnect_max_ms = 100\n{extra}\n",
        server.addr
    )
}

/// A u16 holding register at `address`, each in its own request.
fn tag(n: usize, address: u16, extra: &str) -> String {
    format!(
        "[[tag]]\nname = \"T/U/R{n}\"\ndevice = \"plc\"\ntable = \"holding\"\naddress = {address}\ntype = \"u16\"\n{extra}\n"
    )
}

/// Holding-register reads the server answered at `address`.
fn reads_at(server: &TestServer, address: u16) -> usize {
    server
        .bank()
        .reads
        .iter()
        .filter(|&&(f, a, _)| f == 3 && a == address)
        .count()
}

async fn wait_connections(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.bank().connections < n {
        assert!(
            Instant::now() < deadline,
            "{} connections, expected {n}",
            server.bank().connections
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn each_poll_group_is_read_at_its_own_rate() {
    let server = TestServer::start(1).await;
    let toml = [
        device(
            &server,
            "poll_interval_ms = 400\n\
             [[device.poll_group]]\nname = \"fast\"\ninterval_ms = 40\n\
             [[device.poll_group]]\nname = \"slow\"\ninterval_ms = 5000",
        ),
        tag(1, 0, "poll_group = \"fast\""),
        tag(2, 100, ""),
        tag(3, 200, "poll_group = \"slow\""),
    ]
    .concat();
    let adapter = start(&toml);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (fast, default, slow) = (
        reads_at(&server, 0),
        reads_at(&server, 100),
        reads_at(&server, 200),
    );
    // 1.3 s: about 33 reads every 40 ms, 4 every 400 ms, 1 every 5 s.
    assert!((20..=40).contains(&fast), "fast group read {fast} times");
    assert!(
        (3..=5).contains(&default),
        "default group read {default} times"
    );
    assert_eq!(
        slow, 1,
        "the slow group is read once at start, then every 5 s"
    );
    for n in 1..=3 {
        let r = adapter
            .read(&[TagName::parse(&format!("T/U/R{n}")).unwrap()])
            .await;
        assert_eq!(r[0].quality, Quality::Good, "{r:?}");
    }
    adapter.shutdown().await;
}

#[tokio::test]
async fn contiguous_tags_of_one_group_share_a_request_but_groups_never_do() {
    let server = TestServer::start(1).await;
    let toml = [
        device(
            &server,
            "poll_interval_ms = 50\n[[device.poll_group]]\nname = \"fast\"\ninterval_ms = 50",
        ),
        tag(1, 0, ""),
        tag(2, 1, ""),
        tag(3, 2, "poll_group = \"fast\""),
        tag(4, 3, "poll_group = \"fast\""),
    ]
    .concat();
    let adapter = start(&toml);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spans: std::collections::BTreeSet<(u16, u16)> = server
        .bank()
        .reads
        .iter()
        .map(|&(_, a, n)| (a, n))
        .collect();
    assert_eq!(spans.into_iter().collect::<Vec<_>>(), [(0, 2), (2, 2)]);
    adapter.shutdown().await;
}

/// Reads `count` separate requests from a server that takes 100 ms per
/// answer over `connections`, and returns (connections the server saw, most
/// requests in flight at once, duration of one whole cycle).
async fn pipelined_cycle(connections: u8, count: usize) -> (usize, usize, Duration) {
    let server = TestServer::start(1).await;
    server.bank().delay = Duration::from_millis(100);
    let mut toml = device(
        &server,
        &format!("connections = {connections}\npoll_interval_ms = 3000"),
    );
    for n in 0..count {
        toml += &tag(n, n as u16 * 10, "");
    }
    let adapter = start(&toml);
    wait_connections(&server, usize::from(connections)).await;
    // The first cycle may have started before every connection was open:
    // measure the second, which starts 3 s after the first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first_cycle = server.bank().read_times.len();
    server.bank().max_in_flight = 0;
    let deadline = Instant::now() + Duration::from_secs(6);
    while server.bank().read_times.len() < first_cycle + count {
        assert!(
            Instant::now() < deadline,
            "the second cycle did not complete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (answered, connections, in_flight) = {
        let bank = server.bank();
        let answered: Vec<Instant> = bank.read_times[first_cycle..]
            .iter()
            .map(|&(_, _, t)| t)
            .collect();
        (answered, bank.connections, bank.max_in_flight)
    };
    let (Some(first), Some(last)) = (answered.iter().min(), answered.iter().max()) else {
        panic!("no reads");
    };
    // The first answers arrive one delay after the cycle starts.
    let cycle = *last - *first + Duration::from_millis(100);
    let seen = (connections, in_flight, cycle);
    adapter.shutdown().await;
    seen
}

#[tokio::test]
async fn one_connection_sends_a_cycle_one_request_at_a_time() {
    let (connections, in_flight, cycle) = pipelined_cycle(1, 6).await;
    assert_eq!((connections, in_flight), (1, 1));
    assert!(
        cycle >= Duration::from_millis(580) && cycle < Duration::from_millis(1200),
        "6 requests x 100 ms took {cycle:?}"
    );
}

#[tokio::test]
async fn three_connections_run_a_cycle_three_requests_at_a_time() {
    let (connections, in_flight, cycle) = pipelined_cycle(3, 6).await;
    assert_eq!((connections, in_flight), (3, 3));
    assert!(
        cycle >= Duration::from_millis(180) && cycle < Duration::from_millis(500),
        "6 requests / 3 connections x 100 ms took {cycle:?}"
    );
}

#[tokio::test]
async fn with_several_connections_writes_work_and_a_lost_device_comes_back_on_all() {
    let mut server = TestServer::start(1).await;
    let toml = [
        device(&server, "connections = 2\npoll_interval_ms = 20"),
        tag(1, 0, "access = \"read_write\""),
        tag(2, 100, ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_connections(&server, 2).await;
    let r1 = TagName::parse("T/U/R1").unwrap();
    let good = |v: i64| {
        move |r: &remine_domain::TagReading| {
            r.quality == Quality::Good && r.value == Some(TagValue::Int(v))
        }
    };
    wait_for(&adapter, &r1, Duration::from_secs(3), good(0))
        .await
        .expect("first value");
    adapter
        .write(&r1, TagValue::Int(42))
        .await
        .expect("write over one of the connections");
    assert_eq!(server.bank().holding[0], 42);

    server.kill().await;
    let lost = wait_for(&adapter, &r1, Duration::from_secs(3), |r| {
        r.quality != Quality::Good
    })
    .await;
    assert!(lost.is_ok(), "tags turn bad when no connection is left");
    assert!(!adapter.status()[0].connected);
    server.restart().await;
    wait_connections(&server, 4).await;
    server.bank().holding[0] = 7;
    wait_for(&adapter, &r1, Duration::from_secs(3), good(7))
        .await
        .expect("good again");
    let status = &adapter.status()[0];
    assert!(
        status.connected && status.comms_alarm.is_none(),
        "{status:?}"
    );
    adapter.shutdown().await;
}

#[tokio::test]
async fn a_hung_connection_turns_only_its_requests_tags_bad_while_the_other_carries_on() {
    let server = TestServer::start(1).await;
    let toml = [
        device(&server, "connections = 2\npoll_interval_ms = 500")
            .replace("request_timeout_ms = 2000", "request_timeout_ms = 100"),
        tag(1, 0, ""),
        tag(2, 100, ""),
    ]
    .concat();
    let adapter = start(&toml);
    wait_connections(&server, 2).await;
    let tags = [
        TagName::parse("T/U/R1").unwrap(),
        TagName::parse("T/U/R2").unwrap(),
    ];
    for tag in &tags {
        wait_for(&adapter, tag, Duration::from_secs(3), |r| {
            r.quality == Quality::Good
        })
        .await
        .expect("good at first");
    }

    // The next cycle's first request hangs: after 100 ms its tags read
    // Timeout until the cycle 500 ms later reads them over the other
    // connection; the other request's tags stay good all along.
    server.bank().stall_next = 1;
    let mut timed_out = [false, false];
    let mut both_bad = false;
    let deadline = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < deadline {
        let readings = adapter.read(&tags).await;
        let bad: Vec<bool> = readings
            .iter()
            .map(|r| r.quality != Quality::Good)
            .collect();
        for (k, r) in readings.iter().enumerate() {
            timed_out[k] |= r.quality == Quality::Bad(remine_domain::BadReason::Timeout);
        }
        both_bad |= bad.iter().all(|b| *b);
        let status = &adapter.status()[0];
        assert!(status.connected, "one connection still works: {status:?}");
        assert!(status.comms_alarm.is_none(), "{status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        timed_out.iter().filter(|t| **t).count(),
        1,
        "exactly the tags of the hung request read Timeout: {timed_out:?}"
    );
    assert!(!both_bad, "the other tags stayed good throughout");
    for tag in &tags {
        wait_for(&adapter, tag, Duration::from_secs(3), |r| {
            r.quality == Quality::Good
        })
        .await
        .expect("good again at the next cycle");
    }
    assert_eq!(
        server.bank().connections,
        3,
        "the hung connection was reopened"
    );
    adapter.shutdown().await;
}
