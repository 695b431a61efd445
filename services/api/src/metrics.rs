//! `GET /metrics`: the PLC links' figures in the Prometheus text exposition
//! format, version 0.0.4.
//!
//! One family per figure, each with `# HELP` and `# TYPE`, one sample per
//! link labelled `kind` (`modbus`, `opcua`) and `device`. Errors carry an
//! `error` label (`timeout`, `exception`, `transport`, `protocol`). The
//! round-trip time is a histogram with cumulative `_bucket{le=..}` samples
//! ending in `le="+Inf"`, then `_sum` and `_count`. The route needs no
//! session: it is read-only and shows no secrets, only link names and counts.

use remine_domain::ports::DeviceStats;
use std::fmt::Write;

/// The content type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `stats` as the text exposition format.
pub(crate) fn render(stats: &[DeviceStats]) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: &dyn Fn(&DeviceStats) -> u64| {
        family(out, name, "gauge", help);
        for s in stats {
            sample(out, name, s, &[], value(s));
        }
    };
    gauge(
        &mut out,
        "remine_plc_connected",
        "Whether the link answers (1) or not (0).",
        &|s| u64::from(s.connected),
    );
    gauge(
        &mut out,
        "remine_plc_comms_alarm",
        "Whether the comms-loss alarm is raised (1) or not (0).",
        &|s| u64::from(s.comms_alarm),
    );
    family(
        &mut out,
        "remine_plc_reconnects_total",
        "counter",
        "Times the link came back after being lost.",
    );
    for s in stats {
        sample(
            &mut out,
            "remine_plc_reconnects_total",
            s,
            &[],
            s.reconnects,
        );
    }
    family(
        &mut out,
        "remine_plc_requests_total",
        "counter",
        "Requests sent to the device or server (reads, writes, connects, service calls).",
    );
    for s in stats {
        sample(&mut out, "remine_plc_requests_total", s, &[], s.requests);
    }
    family(
        &mut out,
        "remine_plc_errors_total",
        "counter",
        "Failed requests, by kind of error.",
    );
    for s in stats {
        for &(kind, n) in &s.errors {
            sample(
                &mut out,
                "remine_plc_errors_total",
                s,
                &[("error", kind)],
                n,
            );
        }
    }
    family(
        &mut out,
        "remine_plc_rtt_seconds",
        "histogram",
        "Round-trip time of answered requests.",
    );
    for s in stats {
        for (bound, &n) in s.rtt_bucket_bounds_s.iter().zip(&s.rtt_bucket_counts) {
            let le = bound.to_string();
            sample(
                &mut out,
                "remine_plc_rtt_seconds_bucket",
                s,
                &[("le", &le)],
                n,
            );
        }
        let n = s.rtt_count;
        sample(
            &mut out,
            "remine_plc_rtt_seconds_bucket",
            s,
            &[("le", "+Inf")],
            n,
        );
        line(
            &mut out,
            "remine_plc_rtt_seconds_sum",
            s,
            &[],
            &s.rtt_sum_s.to_string(),
        );
        sample(&mut out, "remine_plc_rtt_seconds_count", s, &[], n);
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, s: &DeviceStats, extra: &[(&str, &str)], value: u64) {
    line(out, name, s, extra, &value.to_string());
}

fn line(out: &mut String, name: &str, s: &DeviceStats, extra: &[(&str, &str)], value: &str) {
    let _ = write!(
        out,
        "{name}{{kind=\"{}\",device=\"{}\"",
        escape(s.kind),
        escape(&s.device)
    );
    for (label, v) in extra {
        let _ = write!(out, ",{label}=\"{}\"", escape(v));
    }
    let _ = writeln!(out, "}} {value}");
}

/// A label value as the format wants it: backslash, double quote and line
/// feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(device: &str) -> DeviceStats {
        DeviceStats {
            kind: "modbus",
            device: device.to_string(),
            connected: true,
            comms_alarm: false,
            reconnects: 2,
            requests: 10,
            errors: vec![("timeout", 1), ("exception", 0)],
            rtt_bucket_bounds_s: vec![0.001, 0.5, 10.0],
            rtt_bucket_counts: vec![3, 8, 9],
            rtt_sum_s: 0.25,
            rtt_count: 9,
        }
    }

    /// Renders `stats` and checks that every line of `expected` is in it.
    fn check(stats: &[DeviceStats], expected: &[&str]) {
        let text = render(stats);
        for want in expected {
            assert!(
                text.lines().any(|l| l == *want),
                "missing line {want:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn every_family_has_help_and_type() {
        check(
            &[],
            &[
                "# TYPE remine_plc_connected gauge",
                "# TYPE remine_plc_comms_alarm gauge",
                "# TYPE remine_plc_reconnects_total counter",
                "# TYPE remine_plc_requests_total counter",
                "# TYPE remine_plc_errors_total counter",
                "# TYPE remine_plc_rtt_seconds histogram",
                "# HELP remine_plc_connected Whether the link answers (1) or not (0).",
            ],
        );
    }

    #[test]
    fn samples_are_labelled_by_kind_and_device() {
        check(
            &[stats("discharge")],
            &[
                "remine_plc_connected{kind=\"modbus\",device=\"discharge\"} 1",
                "remine_plc_comms_alarm{kind=\"modbus\",device=\"discharge\"} 0",
                "remine_plc_reconnects_total{kind=\"modbus\",device=\"discharge\"} 2",
                "remine_plc_requests_total{kind=\"modbus\",device=\"discharge\"} 10",
                "remine_plc_errors_total{kind=\"modbus\",device=\"discharge\",error=\"timeout\"} 1",
                "remine_plc_errors_total{kind=\"modbus\",device=\"discharge\",error=\"exception\"} 0",
            ],
        );
    }

    #[test]
    fn the_histogram_is_cumulative_and_ends_with_inf_equal_to_count() {
        check(
            &[stats("d")],
            &[
                "remine_plc_rtt_seconds_bucket{kind=\"modbus\",device=\"d\",le=\"0.001\"} 3",
                "remine_plc_rtt_seconds_bucket{kind=\"modbus\",device=\"d\",le=\"0.5\"} 8",
                "remine_plc_rtt_seconds_bucket{kind=\"modbus\",device=\"d\",le=\"10\"} 9",
                "remine_plc_rtt_seconds_bucket{kind=\"modbus\",device=\"d\",le=\"+Inf\"} 9",
                "remine_plc_rtt_seconds_sum{kind=\"modbus\",device=\"d\"} 0.25",
                "remine_plc_rtt_seconds_count{kind=\"modbus\",device=\"d\"} 9",
            ],
        );
    }

    #[test]
    fn label_values_are_escaped() {
        check(
            &[stats("a\"b\\c\nd")],
            &["remine_plc_connected{kind=\"modbus\",device=\"a\\\"b\\\\c\\nd\"} 1"],
        );
    }
}
