//! `GET /metrics` from outside: a real Modbus adapter polling a real Modbus
//! TCP server on 127.0.0.1, scraped twice through the router and parsed as
//! the Prometheus text format.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use remine_api::{AppState, app};
use remine_domain::ports::DeviceStatsSource;
use remine_modbus::{ModbusAdapter, ModbusConfig};
use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_modbus::prelude::{ExceptionCode, Request as MbRequest, Response as MbResponse};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::Server;
use tower::ServiceExt;

/// A Modbus device whose holding registers all read 7.
mod common;

#[derive(Clone)]
struct Sevens;

impl Service for Sevens {
    type Request = MbRequest<'static>;
    type Response = MbResponse;
    type Exception = ExceptionCode;
    type Future = Ready<Result<MbResponse, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        ready(match req {
            MbRequest::ReadHoldingRegisters(_, n) => {
                Ok(MbResponse::ReadHoldingRegisters(vec![7; usize::from(n)]))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

async fn modbus_device() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let on_connected = |stream, _peer| ready(Ok(Some((Sevens, stream))));
        let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
    });
    addr
}

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the exposition text, asserting that every line is a well-formed
/// comment (`# HELP name text`, `# TYPE name kind`) or sample
/// (`name{label="value",...} number`).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            assert!(
                matches!(kind, Some("HELP" | "TYPE")) && name.is_some() && rest.is_some(),
                "bad comment line: {line}"
            );
            if kind == Some("TYPE") {
                assert!(
                    matches!(rest, Some("gauge" | "counter" | "histogram")),
                    "bad type: {line}"
                );
            }
            continue;
        }
        let (head, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}")),
            ),
            None => (head, ""),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name: {line}"
        );
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad label: {line}"));
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or_else(|| panic!("unquoted label: {line}"));
            map.insert(k.to_string(), v.to_string());
        }
        samples.push((name.to_string(), map, value));
    }
    samples
}

fn value(samples: &[Sample], name: &str, extra: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.get("device").map(String::as_str) == Some("plc")
                && l.get("kind").map(String::as_str) == Some("modbus")
                && extra.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v))
        })
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name} {extra:?}"))
}

async fn scrape(state: &AppState) -> (String, Vec<Sample>) {
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let res = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "no session needed");
    let content_type = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (content_type, parse(&text))
}

#[tokio::test]
async fn metrics_of_a_polling_modbus_adapter_parse_and_grow() {
    let addr = modbus_device().await;
    let config = ModbusConfig::from_toml_str(
        &format!(
            "[[device]]\nname = \"plc\"\naddress = \"{addr}\"\nunit_id = 1\npoll_interval_ms = 20\n\
             [[tag]]\nname = \"L/U/Level\"\ndevice = \"plc\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n"
        ),
        "metrics.toml",
    )
    .unwrap();
    let adapter = Arc::new(ModbusAdapter::start(config).unwrap());
    let f = common::Fixture::new().await;
    let mut state = f.state.clone();
    state.stats = vec![adapter.clone() as Arc<dyn DeviceStatsSource>];
    for _ in 0..200 {
        if adapter.status()[0].connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (content_type, first) = scrape(&state).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(value(&first, "remine_plc_connected", None), 1.0);
    assert_eq!(value(&first, "remine_plc_comms_alarm", None), 0.0);
    assert_eq!(
        value(
            &first,
            "remine_plc_errors_total",
            Some(("error", "timeout"))
        ),
        0.0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, second) = scrape(&state).await;
    for counter in ["remine_plc_requests_total", "remine_plc_rtt_seconds_count"] {
        assert!(
            value(&second, counter, None) > value(&first, counter, None),
            "{counter} grows between scrapes"
        );
    }

    let buckets: Vec<(f64, f64)> = second
        .iter()
        .filter(|(n, l, _)| n == "remine_plc_rtt_seconds_bucket" && l["device"] == "plc")
        .map(|(_, l, v)| {
            let le = match l["le"].as_str() {
                "+Inf" => f64::INFINITY,
                b => b.parse().unwrap(),
            };
            (le, *v)
        })
        .collect();
    assert!(buckets.len() > 2);
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    let (last_le, last) = buckets[buckets.len() - 1];
    assert_eq!(last_le, f64::INFINITY, "the last bucket is +Inf");
    assert_eq!(last, value(&second, "remine_plc_rtt_seconds_count", None));
    assert!(value(&second, "remine_plc_rtt_seconds_sum", None) > 0.0);
}

#[tokio::test]
async fn without_a_plant_the_metrics_are_only_help_and_type() {
    let f = common::Fixture::new().await;
    let (_, samples) = scrape(&f.state).await;
    assert!(samples.is_empty(), "{samples:?}");
}
