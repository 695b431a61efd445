//! Interlocks and permissives: conditions on live tags that must hold
//! before a unit may take a command.
//!
//! A [`Permissive`] guards one command of one unit with a list of
//! [`Check`]s, all of which must hold. A check compares a tag with a
//! constant or with another tag, optionally for a time ("the pack voltage
//! stays below 60 V for the 30 min rebound rest"). A reading of bad or
//! uncertain quality fails its check: fail safe. [`PermissiveState`]
//! remembers since when each check has held, so time conditions need no
//! history; every evaluation says, check by check, what was read and why a
//! check is false, for the refusal message and the HMI.

use crate::{DomainError, TagName, TagReading, TagValue, UnitCommand};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::fmt;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Below,
    AtMost,
    Above,
    AtLeast,
    Equal,
    NotEqual,
}

impl Compare {
    pub fn symbol(self) -> &'static str {
        match self {
            Compare::Below => "<",
            Compare::AtMost => "<=",
            Compare::Above => ">",
            Compare::AtLeast => ">=",
            Compare::Equal => "==",
            Compare::NotEqual => "!=",
        }
    }

    pub fn parse(s: &str) -> Result<Compare, DomainError> {
        [
            Compare::Below,
            Compare::AtMost,
            Compare::Above,
            Compare::AtLeast,
            Compare::Equal,
            Compare::NotEqual,
        ]
        .into_iter()
        .find(|c| c.symbol() == s.trim())
        .ok_or_else(|| DomainError::Malformed {
            what: "comparison",
            value: s.to_string(),
            why: "expected <, <=, >, >=, == or !=".into(),
        })
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Compare::Below => a < b,
            Compare::AtMost => a <= b,
            Compare::Above => a > b,
            Compare::AtLeast => a >= b,
            Compare::Equal => (a - b).abs() < 1e-9,
            Compare::NotEqual => (a - b).abs() >= 1e-9,
        }
    }
}

/// What a tag is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(f64),
    /// Another tag's value (a setpoint, a limit held in the PLC).
    Tag(TagName),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(v) => write!(f, "{v}"),
            Operand::Tag(t) => write!(f, "{t}"),
        }
    }
}

/// One condition of a permissive.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What it means, for people ("chamber O2 below the permissive").
    pub description: String,
    pub tag: TagName,
    pub compare: Compare,
    pub operand: Operand,
    /// How long the comparison must have held without a break.
    pub held_for: Option<Duration>,
}

impl Check {
    /// The tags the check reads.
    pub fn tags(&self) -> Vec<&TagName> {
        match &self.operand {
            Operand::Tag(t) => vec![&self.tag, t],
            Operand::Value(_) => vec![&self.tag],
        }
    }
}

/// The conditions that must all hold before `unit` takes `command`.
#[derive(Debug, Clone, PartialEq)]
pub struct Permissive {
    pub id: String,
    /// The unit's path ("Mechanical/Shredder").
    pub unit: String,
    pub command: UnitCommand,
    pub checks: Vec<Check>,
}

impl Permissive {
    /// Refuses an empty id or unit, no checks, a non-finite constant and a
    /// negative hold time.
    pub fn check_definition(&self) -> Result<(), DomainError> {
        let bad = |why: String| {
            Err(DomainError::Inconsistent(format!(
                "permissive {}: {why}",
                self.id
            )))
        };
        if self.id.trim().is_empty() || self.unit.trim().is_empty() {
            return bad("needs an id and a unit".into());
        }
        if self.checks.is_empty() {
            return bad("has no checks".into());
        }
        for c in &self.checks {
            if let Operand::Value(v) = c.operand
                && !v.is_finite()
            {
                return bad(format!("check '{}' compares with {v}", c.description));
            }
            if c.held_for.is_some_and(|d| d < Duration::zero()) {
                return bad(format!(
                    "check '{}' has a negative hold time",
                    c.description
                ));
            }
        }
        Ok(())
    }
}

/// How one check fared.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub description: String,
    pub holds: bool,
    /// What was read, when it was good.
    pub value: Option<f64>,
    /// Why it does not hold (empty when it does).
    pub why: String,
}

/// How a permissive fared: permitted when every check holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub permissive: String,
    pub permitted: bool,
    pub checks: Vec<CheckResult>,
}

impl Evaluation {
    /// The refusal: every false check with why, or `None` when permitted.
    pub fn refusal(&self) -> Option<String> {
        (!self.permitted).then(|| {
            let why: Vec<String> = self
                .checks
                .iter()
                .filter(|c| !c.holds)
                .map(|c| format!("{}: {}", c.description, c.why))
                .collect();
            format!(
                "permissive {} is false: {}",
                self.permissive,
                why.join("; ")
            )
        })
    }
}

/// Since when each timed check of a permissive has held.
#[derive(Debug, Clone, Default)]
pub struct PermissiveState {
    since: HashMap<usize, DateTime<Utc>>,
}

fn good(readings: &HashMap<TagName, TagReading>, tag: &TagName) -> Result<f64, String> {
    match readings.get(tag) {
        None => Err(format!("{tag} is not read")),
        Some(r) => match r.good_value() {
            Some(v) => Ok(TagValue::as_f64(v)),
            None => Err(format!("{tag} has {} quality (fail safe)", r.quality)),
        },
    }
}

impl PermissiveState {
    /// Evaluates `p` on `readings` at `now`, updating the hold timers.
    pub fn evaluate(
        &mut self,
        p: &Permissive,
        readings: &HashMap<TagName, TagReading>,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let mut checks = Vec::with_capacity(p.checks.len());
        for (i, c) in p.checks.iter().enumerate() {
            let value = good(readings, &c.tag);
            let other = match &c.operand {
                Operand::Value(v) => Ok(*v),
                Operand::Tag(t) => good(readings, t),
            };
            let (holds_now, why) = match (&value, &other) {
                (Err(e), _) | (_, Err(e)) => (false, e.clone()),
                (Ok(a), Ok(b)) if c.compare.holds(*a, *b) => (true, String::new()),
                (Ok(a), Ok(b)) => (
                    false,
                    format!("{} is {a}, needs {} {b}", c.tag, c.compare.symbol()),
                ),
            };
            let (holds, why) = match (holds_now, c.held_for) {
                (false, _) => {
                    self.since.remove(&i);
                    (false, why)
                }
                (true, None) => (true, why),
                (true, Some(d)) => {
                    let since = *self.since.entry(i).or_insert(now);
                    let held = now - since;
                    if held >= d {
                        (true, String::new())
                    } else {
                        (
                            false,
                            format!(
                                "has held {} of the {} min it must",
                                format_minutes(held),
                                format_minutes(d)
                            ),
                        )
                    }
                }
            };
            checks.push(CheckResult {
                description: c.description.clone(),
                holds,
                value: value.ok(),
                why,
            });
        }
        Evaluation {
            permissive: p.id.clone(),
            permitted: checks.iter().all(|c| c.holds),
            checks,
        }
    }
}

fn format_minutes(d: Duration) -> String {
    format!("{:.1}", d.num_milliseconds() as f64 / 60_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BadReason, Quality};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn name(s: &str) -> TagName {
        TagName::parse(s).unwrap()
    }

    fn reading(tag: &str, v: f64, q: Quality) -> (TagName, TagReading) {
        (
            name(tag),
            TagReading {
                tag: name(tag),
                value: Some(TagValue::Float(v)),
                quality: q,
                source_time: None,
                server_time: t(0),
            },
        )
    }

    fn shredder_start() -> Permissive {
        Permissive {
            id: "shredder-start".into(),
            unit: "Mechanical/Shredder".into(),
            command: UnitCommand::Start,
            checks: vec![
                Check {
                    description: "chamber O2 below the permissive".into(),
                    tag: name("Mechanical/Shredder/O2"),
                    compare: Compare::Below,
                    operand: Operand::Tag(name("Mechanical/Shredder/O2AlarmLimit")),
                    held_for: None,
                },
                Check {
                    description: "N2 supply pressure healthy".into(),
                    tag: name("Mechanical/N2/Pressure"),
                    compare: Compare::AtLeast,
                    operand: Operand::Value(4.0),
                    held_for: None,
                },
            ],
        }
    }

    #[test]
    fn every_check_holding_permits_and_one_false_names_itself() {
        let p = shredder_start();
        let mut s = PermissiveState::default();
        let mut r: HashMap<_, _> = [
            reading("Mechanical/Shredder/O2", 1.2, Quality::Good),
            reading("Mechanical/Shredder/O2AlarmLimit", 2.5, Quality::Good),
            reading("Mechanical/N2/Pressure", 5.0, Quality::Good),
        ]
        .into_iter()
        .collect();
        assert!(s.evaluate(&p, &r, t(0)).permitted);
        r.extend([reading("Mechanical/Shredder/O2", 3.1, Quality::Good)]);
        let e = s.evaluate(&p, &r, t(1));
        let why = e.refusal().unwrap();
        assert!(
            why.contains(
                "chamber O2 below the permissive: Mechanical/Shredder/O2 is 3.1, needs < 2.5"
            ),
            "{why}"
        );
        assert!(!why.contains("N2"), "{why}");
    }

    #[test]
    fn a_bad_quality_reading_fails_its_check() {
        let p = shredder_start();
        let r: HashMap<_, _> = [
            reading(
                "Mechanical/Shredder/O2",
                1.2,
                Quality::Bad(BadReason::NotConnected),
            ),
            reading("Mechanical/Shredder/O2AlarmLimit", 2.5, Quality::Good),
            reading("Mechanical/N2/Pressure", 5.0, Quality::Good),
        ]
        .into_iter()
        .collect();
        let e = PermissiveState::default().evaluate(&p, &r, t(0));
        assert!(!e.permitted);
        assert!(e.refusal().unwrap().contains("fail safe"));
    }

    #[test]
    fn a_timed_check_must_hold_without_a_break() {
        let p = Permissive {
            id: "release".into(),
            unit: "Discharge/Station1".into(),
            command: UnitCommand::Reset,
            checks: vec![Check {
                description: "pack voltage stays below 60 V through the rebound rest".into(),
                tag: name("Discharge/Station1/PackVoltage"),
                compare: Compare::Below,
                operand: Operand::Value(60.0),
                held_for: Some(Duration::minutes(30)),
            }],
        };
        let mut s = PermissiveState::default();
        let at = |v: f64| -> HashMap<_, _> {
            [reading("Discharge/Station1/PackVoltage", v, Quality::Good)]
                .into_iter()
                .collect()
        };
        assert!(!s.evaluate(&p, &at(40.0), t(0)).permitted);
        let e = s.evaluate(&p, &at(45.0), t(600));
        assert!(
            e.refusal()
                .unwrap()
                .contains("has held 10.0 of the 30.0 min"),
            "{:?}",
            e.refusal()
        );
        assert!(
            !s.evaluate(&p, &at(61.0), t(1200)).permitted,
            "a rebound resets the rest"
        );
        assert!(!s.evaluate(&p, &at(50.0), t(1300)).permitted);
        assert!(s.evaluate(&p, &at(50.0), t(1300 + 1800)).permitted);
    }

    #[test]
    fn a_permissive_without_checks_or_with_nan_is_refused() {
        let mut p = shredder_start();
        p.checks[1].operand = Operand::Value(f64::NAN);
        assert!(p.check_definition().unwrap_err().to_string().contains("N2"));
        p.checks.clear();
        assert!(p.check_definition().is_err());
        assert!(shredder_start().check_definition().is_ok());
    }
}
