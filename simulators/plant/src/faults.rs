//! The faults a running plant can be given, as a client of a real plant
//! would meet them: links that drop, hang or slow down, Modbus exceptions,
//! frozen or spiking sensors, a thermal event on a discharge station, an
//! air leak into the shredder, a blocking filter, and a line's power cycle.
//!
//! A [`FaultRequest`] is the loose form a person or a tool sends (the
//! control endpoint's JSON body, the CLI's options); [`FaultRequest::parse`]
//! turns it into a [`Fault`], whose parameters are all within range, or says
//! which field is wrong and why. Signal names are checked against the lines'
//! maps by the plant when the fault is injected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A line of the plant, as faults name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineId {
    Discharge,
    Mechanical,
    Hydromet,
}

impl LineId {
    pub const ALL: [LineId; 3] = [LineId::Discharge, LineId::Mechanical, LineId::Hydromet];

    pub fn name(self) -> &'static str {
        match self {
            LineId::Discharge => "discharge",
            LineId::Mechanical => "mechanical",
            LineId::Hydromet => "hydromet",
        }
    }

    fn parse(s: &str) -> Option<LineId> {
        LineId::ALL.into_iter().find(|l| l.name() == s)
    }

    /// Whether the line speaks Modbus (and so can answer with exceptions).
    pub fn is_modbus(self) -> bool {
        self != LineId::Hydromet
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The Modbus exception codes a line can be made to answer with.
pub const MODBUS_EXCEPTION_CODES: [u8; 9] = [1, 2, 3, 4, 5, 6, 8, 10, 11];
/// The longest a response may be delayed (a slow peer).
pub const MAX_DELAY_MS: u64 = 60_000;
/// The longest a line may stay dark in a power cycle.
pub const MAX_OFF_S: f64 = 600.0;
/// The longest a fault may last before it clears itself (a day).
pub const MAX_DURATION_S: f64 = 86_400.0;

/// One fault and what it does; every parameter is within its range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Close every open connection of the line now; with a duration, the
    /// line also refuses connections until it ends.
    Drop { line: LineId },
    /// Stop answering: connections stay open and requests are swallowed;
    /// when the fault clears, hung connections are closed.
    Hang { line: LineId },
    /// Delay every response by `delay_ms`.
    Slow { line: LineId, delay_ms: u64 },
    /// Answer requests that touch `signal` (every request, if none) with
    /// Modbus exception `code`.
    Exception {
        line: LineId,
        code: u8,
        signal: Option<String>,
    },
    /// The line goes dark for `off_s` wall seconds and comes back as after
    /// a reboot: every value reset to its default, every unit Idle.
    PowerCycle { line: LineId, off_s: f64 },
    /// A measured signal keeps the value it had when the fault began.
    Freeze { line: LineId, signal: String },
    /// A measured signal reads `value`.
    Spike {
        line: LineId,
        signal: String,
        value: f64,
    },
    /// A heat source inside the pack on discharge station `station`.
    ThermalEvent { station: u16, heat_kw: f64 },
    /// Extra air leaking into the shredder chamber.
    O2Leak { leak_nm3h: f64 },
    /// The shredder's off-gas filter fouls at a rate.
    BlockedFilter { rate_mbar_per_min: f64 },
}

impl FaultKind {
    /// The line the fault acts on.
    pub fn line(&self) -> LineId {
        match self {
            FaultKind::Drop { line }
            | FaultKind::Hang { line }
            | FaultKind::Slow { line, .. }
            | FaultKind::Exception { line, .. }
            | FaultKind::PowerCycle { line, .. }
            | FaultKind::Freeze { line, .. }
            | FaultKind::Spike { line, .. } => *line,
            FaultKind::ThermalEvent { .. } => LineId::Discharge,
            FaultKind::O2Leak { .. } | FaultKind::BlockedFilter { .. } => LineId::Mechanical,
        }
    }

    /// The kind's name, as requests spell it.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Drop { .. } => "drop",
            FaultKind::Hang { .. } => "hang",
            FaultKind::Slow { .. } => "slow",
            FaultKind::Exception { .. } => "exception",
            FaultKind::PowerCycle { .. } => "power_cycle",
            FaultKind::Freeze { .. } => "freeze",
            FaultKind::Spike { .. } => "spike",
            FaultKind::ThermalEvent { .. } => "thermal_event",
            FaultKind::O2Leak { .. } => "o2_leak",
            FaultKind::BlockedFilter { .. } => "blocked_filter",
        }
    }
}

/// A fault and how long it lasts (`None`: until cleared).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub duration: Option<Duration>,
}

impl Fault {
    /// A fault that lasts until cleared.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            duration: None,
        }
    }

    /// The same fault, clearing itself after `duration`.
    pub fn lasting(mut self, duration: Duration) -> Fault {
        self.duration = Some(duration);
        self
    }
}

/// The kinds of fault, as requests name them.
pub const FAULT_KINDS: [&str; 10] = [
    "drop",
    "hang",
    "slow",
    "exception",
    "power_cycle",
    "freeze",
    "spike",
    "thermal_event",
    "o2_leak",
    "blocked_filter",
];

/// A fault as a person or a tool asks for it; every field but `kind` is
/// optional here and checked by [`FaultRequest::parse`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heat_kw: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_nm3h: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_mbar_per_min: Option<f64>,
}

/// Why a fault request or injection was refused: the field, its value and
/// the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {reason}")]
pub struct FaultError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl FaultError {
    pub fn new(field: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        FaultError {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

fn in_range(
    field: &'static str,
    v: f64,
    low: f64,
    high: f64,
    unit: &str,
) -> Result<f64, FaultError> {
    if v.is_finite() && v >= low && v <= high {
        Ok(v)
    } else {
        Err(FaultError::new(
            field,
            v,
            format!("must be between {low} and {high} {unit}"),
        ))
    }
}

impl FaultRequest {
    /// Check every field the kind needs (and refuse those it does not
    /// take), giving the fault with its parameters in range.
    pub fn parse(&self) -> Result<Fault, FaultError> {
        let line = || -> Result<LineId, FaultError> {
            let s = self.line.as_deref().ok_or_else(|| {
                FaultError::new(
                    "line",
                    "(missing)",
                    "name the line: discharge, mechanical or hydromet",
                )
            })?;
            LineId::parse(s).ok_or_else(|| {
                FaultError::new("line", s, "is not a line (discharge, mechanical, hydromet)")
            })
        };
        let signal = || -> Result<String, FaultError> {
            match self.signal.as_deref() {
                Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
                _ => Err(FaultError::new(
                    "signal",
                    "(missing)",
                    "name the signal as in the line's map (e.g. chamber_o2, station1.max_cell_temperature, Leach.Temperature)",
                )),
            }
        };
        let allowed: &[&str] = match self.kind.as_str() {
            "drop" | "hang" => &["line"],
            "slow" => &["line", "delay_ms"],
            "exception" => &["line", "code", "signal"],
            "power_cycle" => &["line", "off_s"],
            "freeze" => &["line", "signal"],
            "spike" => &["line", "signal", "value"],
            "thermal_event" => &["station", "heat_kw"],
            "o2_leak" => &["leak_nm3h"],
            "blocked_filter" => &["rate_mbar_per_min"],
            other => {
                return Err(FaultError::new(
                    "kind",
                    other,
                    format!("is not a fault kind ({})", FAULT_KINDS.join(", ")),
                ));
            }
        };
        for (field, given) in self.present() {
            if given && !allowed.contains(&field) {
                return Err(FaultError::new(
                    field,
                    "(given)",
                    format!("a {} fault does not take it", self.kind),
                ));
            }
        }
        let kind = match self.kind.as_str() {
            "drop" => FaultKind::Drop { line: line()? },
            "hang" => FaultKind::Hang { line: line()? },
            "slow" => {
                let delay_ms = self.delay_ms.unwrap_or(1000);
                if !(1..=MAX_DELAY_MS).contains(&delay_ms) {
                    return Err(FaultError::new(
                        "delay_ms",
                        delay_ms,
                        format!("must be between 1 and {MAX_DELAY_MS} ms"),
                    ));
                }
                FaultKind::Slow {
                    line: line()?,
                    delay_ms,
                }
            }
            "exception" => {
                let line = line()?;
                if !line.is_modbus() {
                    return Err(FaultError::new(
                        "line",
                        line,
                        "exceptions are Modbus answers: only the discharge and mechanical lines",
                    ));
                }
                let code = self.code.unwrap_or(4);
                if !MODBUS_EXCEPTION_CODES.contains(&code) {
                    return Err(FaultError::new(
                        "code",
                        code,
                        "is not a Modbus exception code (1, 2, 3, 4, 5, 6, 8, 10, 11)",
                    ));
                }
                FaultKind::Exception {
                    line,
                    code,
                    signal: self.signal.clone(),
                }
            }
            "power_cycle" => FaultKind::PowerCycle {
                line: line()?,
                off_s: in_range("off_s", self.off_s.unwrap_or(5.0), 0.0, MAX_OFF_S, "s")?,
            },
            "freeze" => FaultKind::Freeze {
                line: line()?,
                signal: signal()?,
            },
            "spike" => FaultKind::Spike {
                line: line()?,
                signal: signal()?,
                value: match self.value {
                    Some(v) if v.is_finite() => v,
                    Some(v) => return Err(FaultError::new("value", v, "must be a finite number")),
                    None => {
                        return Err(FaultError::new(
                            "value",
                            "(missing)",
                            "give the value the signal reads during the spike",
                        ));
                    }
                },
            },
            "thermal_event" => FaultKind::ThermalEvent {
                station: self.station.ok_or_else(|| {
                    FaultError::new(
                        "station",
                        "(missing)",
                        "name the discharge station (1-based)",
                    )
                })?,
                heat_kw: in_range("heat_kw", self.heat_kw.unwrap_or(20.0), 0.1, 500.0, "kW")?,
            },
            "o2_leak" => FaultKind::O2Leak {
                leak_nm3h: in_range(
                    "leak_nm3h",
                    self.leak_nm3h.unwrap_or(30.0),
                    0.1,
                    1000.0,
                    "Nm3/h",
                )?,
            },
            _ => FaultKind::BlockedFilter {
                rate_mbar_per_min: in_range(
                    "rate_mbar_per_min",
                    self.rate_mbar_per_min.unwrap_or(2.0),
                    0.01,
                    100.0,
                    "mbar/min",
                )?,
            },
        };
        let duration = match self.duration_s {
            None => None,
            Some(s) => Some(Duration::from_secs_f64(in_range(
                "duration_s",
                s,
                0.001,
                MAX_DURATION_S,
                "s",
            )?)),
        };
        Ok(Fault { kind, duration })
    }

    fn present(&self) -> [(&'static str, bool); 11] {
        [
            ("line", self.line.is_some()),
            ("delay_ms", self.delay_ms.is_some()),
            ("code", self.code.is_some()),
            ("signal", self.signal.is_some()),
            ("off_s", self.off_s.is_some()),
            ("value", self.value.is_some()),
            ("station", self.station.is_some()),
            ("heat_kw", self.heat_kw.is_some()),
            ("leak_nm3h", self.leak_nm3h.is_some()),
            ("rate_mbar_per_min", self.rate_mbar_per_min.is_some()),
            ("duration_s", false),
        ]
    }
}

/// An injected fault as the plant lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveFault {
    pub id: u64,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Seconds until it clears itself; `None`: until cleared.
    pub remaining_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<Fault, FaultError> {
        let r: FaultRequest =
            serde_json::from_str(json).map_err(|e| FaultError::new("body", json, e.to_string()))?;
        r.parse()
    }

    #[test]
    fn a_hang_names_its_line_and_may_last() {
        let f = req(r#"{"kind":"hang","line":"mechanical","duration_s":2.5}"#);
        assert_eq!(
            f,
            Ok(Fault::new(FaultKind::Hang {
                line: LineId::Mechanical
            })
            .lasting(Duration::from_millis(2500)))
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let field = |json: &str| req(json).map_err(|e| e.field);
        assert_eq!(field(r#"{"kind":"melt","line":"discharge"}"#), Err("kind"));
        assert_eq!(field(r#"{"kind":"drop","line":"kitchen"}"#), Err("line"));
        assert_eq!(field(r#"{"kind":"drop"}"#), Err("line"));
        assert_eq!(
            field(r#"{"kind":"exception","line":"hydromet"}"#),
            Err("line")
        );
        assert_eq!(
            field(r#"{"kind":"exception","line":"discharge","code":7}"#),
            Err("code")
        );
        assert_eq!(
            field(r#"{"kind":"slow","line":"discharge","delay_ms":0}"#),
            Err("delay_ms")
        );
        assert_eq!(
            field(r#"{"kind":"spike","line":"mechanical","signal":"chamber_o2"}"#),
            Err("value")
        );
        assert_eq!(
            field(r#"{"kind":"thermal_event","heat_kw":5}"#),
            Err("station")
        );
        assert_eq!(
            field(r#"{"kind":"o2_leak","leak_nm3h":-3}"#),
            Err("leak_nm3h")
        );
        assert_eq!(
            field(r#"{"kind":"o2_leak","line":"mechanical"}"#),
            Err("line")
        );
        assert_eq!(
            field(r#"{"kind":"drop","line":"discharge","duration_s":0}"#),
            Err("duration_s")
        );
    }
}
