//! Alarms by the ISA-18.2 / IEC 62682 life cycle: definitions, the
//! condition with deadband and on/off delays, the state of each alarm, and
//! flood detection per area.
//!
//! A [`Condition`] turns readings into "abnormal or not" with hysteresis
//! (the deadband) and delays (a condition must hold for its on-delay before
//! the alarm activates, and clear for its off-delay before it returns). An
//! [`AlarmState`] then moves by the life cycle: Normal, active
//! unacknowledged, active acknowledged, returned unacknowledged, and the
//! three suppressions (shelved, suppressed by design, out of service), each
//! remembered beside the process state so nothing is lost while suppressed.
//! Everything here is pure: the caller passes the time.

use crate::{DomainError, Quality, Username};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// How urgent an alarm is (ISA-18.2 priorities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Result<Priority, DomainError> {
        [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Critical,
        ]
        .into_iter()
        .find(|p| p.name() == s)
        .ok_or_else(|| DomainError::Malformed {
            what: "alarm priority",
            value: s.to_string(),
            why: "expected low, medium, high or critical".into(),
        })
    }
}

/// What makes an alarm's condition abnormal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlarmKind {
    /// Value above the limit.
    High { limit: f64 },
    /// Value below the limit.
    Low { limit: f64 },
    /// Value further than `band` from the setpoint.
    Deviation { setpoint: f64, band: f64 },
    /// Value changing faster than `per_minute` (either way).
    RateOfChange { per_minute: f64 },
    /// Value equal to `value` (a discrete state or a bit).
    Discrete { value: f64 },
    /// The reading has bad quality (the link to the device is lost).
    CommsLoss,
}

impl AlarmKind {
    pub fn name(&self) -> &'static str {
        match self {
            AlarmKind::High { .. } => "high",
            AlarmKind::Low { .. } => "low",
            AlarmKind::Deviation { .. } => "deviation",
            AlarmKind::RateOfChange { .. } => "rate_of_change",
            AlarmKind::Discrete { .. } => "discrete",
            AlarmKind::CommsLoss => "comms_loss",
        }
    }

    /// Whether a process alarm (not comms loss) is suppressed by design
    /// when its unit is stopped.
    pub fn is_process(&self) -> bool {
        !matches!(self, AlarmKind::CommsLoss)
    }
}

/// An alarm definition: what, how urgent, hysteresis and delays, where.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDef {
    pub id: String,
    pub tag: crate::TagName,
    pub kind: AlarmKind,
    pub priority: Priority,
    /// Hysteresis in the tag's unit: a high alarm clears below limit - deadband.
    pub deadband: f64,
    pub on_delay: Duration,
    pub off_delay: Duration,
    /// The plant area, for flood detection ("Mechanical").
    pub area: String,
    /// The unit whose stopped state suppresses this alarm by design.
    pub unit: Option<String>,
    /// The longest a timed shelve may last.
    pub max_shelve: Duration,
}

impl AlarmDef {
    /// Refuses an empty id, a negative or non-finite deadband or band, a
    /// negative delay, a non-positive rate, and a maximum shelve of zero.
    pub fn check(&self) -> Result<(), DomainError> {
        let bad = |why: String| {
            Err(DomainError::Inconsistent(format!(
                "alarm {}: {why}",
                self.id
            )))
        };
        if self.id.trim().is_empty() || self.id.len() > 100 {
            return Err(DomainError::Malformed {
                what: "alarm id",
                value: self.id.clone(),
                why: "1 to 100 characters".into(),
            });
        }
        if !(self.deadband.is_finite() && self.deadband >= 0.0) {
            return bad(format!("deadband {} must be >= 0", self.deadband));
        }
        if self.on_delay < Duration::zero() || self.off_delay < Duration::zero() {
            return bad("delays must not be negative".into());
        }
        if self.max_shelve <= Duration::zero() {
            return bad("the maximum shelve time must be positive".into());
        }
        match self.kind {
            AlarmKind::High { limit } | AlarmKind::Low { limit } if !limit.is_finite() => {
                bad(format!("limit {limit} is not a number"))
            }
            AlarmKind::Deviation { setpoint, band }
                if !(setpoint.is_finite() && band.is_finite() && band > 0.0) =>
            {
                bad(format!(
                    "deviation band {band} around {setpoint} must be positive"
                ))
            }
            AlarmKind::RateOfChange { per_minute }
                if !(per_minute.is_finite() && per_minute > 0.0) =>
            {
                bad(format!("rate {per_minute} per minute must be positive"))
            }
            _ => Ok(()),
        }
    }
}

/// The condition of one alarm over time: hysteresis and delays.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// Whether the raw (undelayed) condition is abnormal, with hysteresis.
    raw: bool,
    /// Since when the raw condition differs from the delayed one.
    pending_since: Option<DateTime<Utc>>,
    /// The delayed condition the alarm acts on.
    active: bool,
    last: Option<(DateTime<Utc>, f64)>,
}

impl Condition {
    /// A condition known to be `active` (from the alarm history after a
    /// restart): the next reading that disagrees starts its delay.
    pub fn restored(active: bool) -> Condition {
        Condition {
            raw: active,
            pending_since: None,
            active,
            last: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Feeds a reading; returns the delayed condition's change, if any
    /// (`Some(true)`: became active; `Some(false)`: cleared).
    pub fn update(
        &mut self,
        def: &AlarmDef,
        value: Option<f64>,
        quality: &Quality,
        at: DateTime<Utc>,
    ) -> Option<bool> {
        let raw = match (def.kind, value.filter(|_| quality.is_good())) {
            (AlarmKind::CommsLoss, _) => !quality.is_good(),
            // A bad value neither raises nor clears a process alarm: its
            // own comms-loss alarm tells of the link.
            (_, None) => self.raw,
            (AlarmKind::High { limit }, Some(v)) => {
                if self.raw {
                    v > limit - def.deadband
                } else {
                    v > limit
                }
            }
            (AlarmKind::Low { limit }, Some(v)) => {
                if self.raw {
                    v < limit + def.deadband
                } else {
                    v < limit
                }
            }
            (AlarmKind::Deviation { setpoint, band }, Some(v)) => {
                let d = (v - setpoint).abs();
                if self.raw {
                    d > band - def.deadband
                } else {
                    d > band
                }
            }
            (AlarmKind::Discrete { value: want }, Some(v)) => (v - want).abs() < 1e-9,
            (AlarmKind::RateOfChange { per_minute }, Some(v)) => {
                let rate = self.last.and_then(|(t, prev)| {
                    let minutes = (at - t).num_milliseconds() as f64 / 60_000.0;
                    (minutes > 0.0).then(|| (v - prev).abs() / minutes)
                });
                match rate {
                    Some(r) if self.raw => r > per_minute - def.deadband,
                    Some(r) => r > per_minute,
                    None => self.raw,
                }
            }
        };
        if let (Some(v), true) = (value, quality.is_good()) {
            self.last = Some((at, v));
        }
        self.raw = raw;
        if raw == self.active {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(at);
        let delay = if raw { def.on_delay } else { def.off_delay };
        if at - since >= delay {
            self.active = raw;
            self.pending_since = None;
            Some(raw)
        } else {
            None
        }
    }
}

/// Where an alarm is in its life cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmStatus {
    Normal,
    /// Active, not yet acknowledged.
    Unacknowledged,
    /// Active and acknowledged.
    Acknowledged,
    /// Returned to normal before it was acknowledged.
    ReturnedUnacknowledged,
    /// Shelved by an operator: one-shot (until it returns to normal) or
    /// until a time.
    Shelved {
        until: Option<DateTime<Utc>>,
    },
    /// Suppressed by design (its unit is stopped).
    SuppressedByDesign,
    OutOfService,
}

impl AlarmStatus {
    pub fn name(&self) -> &'static str {
        match self {
            AlarmStatus::Normal => "normal",
            AlarmStatus::Unacknowledged => "unacknowledged",
            AlarmStatus::Acknowledged => "acknowledged",
            AlarmStatus::ReturnedUnacknowledged => "returned_unacknowledged",
            AlarmStatus::Shelved { .. } => "shelved",
            AlarmStatus::SuppressedByDesign => "suppressed_by_design",
            AlarmStatus::OutOfService => "out_of_service",
        }
    }

    /// Whether an operator is shown the alarm as needing attention.
    pub fn is_annunciated(&self) -> bool {
        matches!(
            self,
            AlarmStatus::Unacknowledged
                | AlarmStatus::Acknowledged
                | AlarmStatus::ReturnedUnacknowledged
        )
    }
}

impl fmt::Display for AlarmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to an alarm, for its history (and the HMI's stream).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmTransition {
    pub alarm: String,
    pub at: DateTime<Utc>,
    pub from: AlarmStatus,
    pub to: AlarmStatus,
    /// Who acted and why, for operator actions.
    pub by: Option<(Username, String)>,
}

/// One alarm's state: its life-cycle status and, beneath any suppression,
/// whether the condition is active and unacknowledged, so unsuppressing
/// shows the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmState {
    status: AlarmStatus,
    condition_active: bool,
    unacknowledged: bool,
}

impl Default for AlarmState {
    fn default() -> Self {
        AlarmState {
            status: AlarmStatus::Normal,
            condition_active: false,
            unacknowledged: false,
        }
    }
}

impl AlarmState {
    /// The state an alarm was last recorded in, for a restart: returns it
    /// with whether its condition was active. Acknowledgement, shelves and
    /// out of service carry over; the condition beneath a shelve or out of
    /// service is taken as normal and re-raised by the next readings (and
    /// remembered while suppressed). Suppression by design is not restored:
    /// the units' states decide it again at the first snapshot.
    pub fn restored(status: &AlarmStatus) -> (AlarmState, bool) {
        let (condition_active, unacknowledged) = match status {
            AlarmStatus::Unacknowledged => (true, true),
            AlarmStatus::Acknowledged => (true, false),
            AlarmStatus::ReturnedUnacknowledged => (false, true),
            _ => (false, false),
        };
        let status = match status {
            AlarmStatus::Shelved { .. } | AlarmStatus::OutOfService => status.clone(),
            AlarmStatus::SuppressedByDesign | AlarmStatus::Normal => AlarmStatus::Normal,
            _ => status.clone(),
        };
        let state = AlarmState {
            status,
            condition_active,
            unacknowledged,
        };
        (state, condition_active)
    }

    pub fn status(&self) -> &AlarmStatus {
        &self.status
    }

    pub fn condition_active(&self) -> bool {
        self.condition_active
    }

    fn suppressed(&self) -> bool {
        matches!(
            self.status,
            AlarmStatus::Shelved { .. }
                | AlarmStatus::SuppressedByDesign
                | AlarmStatus::OutOfService
        )
    }

    /// The process status from the condition and acknowledgement.
    fn process_status(&self) -> AlarmStatus {
        match (self.condition_active, self.unacknowledged) {
            (true, true) => AlarmStatus::Unacknowledged,
            (true, false) => AlarmStatus::Acknowledged,
            (false, true) => AlarmStatus::ReturnedUnacknowledged,
            (false, false) => AlarmStatus::Normal,
        }
    }

    fn move_to(
        &mut self,
        id: &str,
        to: AlarmStatus,
        at: DateTime<Utc>,
        by: Option<(Username, String)>,
    ) -> Option<AlarmTransition> {
        if self.status == to {
            return None;
        }
        let from = std::mem::replace(&mut self.status, to.clone());
        Some(AlarmTransition {
            alarm: id.to_string(),
            at,
            from,
            to,
            by,
        })
    }

    /// The delayed condition changed. While suppressed, the change is
    /// remembered but not annunciated (a one-shot shelve ends when the
    /// condition returns to normal).
    pub fn on_condition(
        &mut self,
        def: &AlarmDef,
        active: bool,
        at: DateTime<Utc>,
    ) -> Option<AlarmTransition> {
        self.condition_active = active;
        if active {
            self.unacknowledged = true;
        }
        match self.status {
            AlarmStatus::Shelved { until: None } if !active => {
                self.unacknowledged = false;
                self.move_to(&def.id, AlarmStatus::Normal, at, None)
            }
            _ if self.suppressed() => {
                if !active {
                    // A return while suppressed needs no acknowledgement.
                    self.unacknowledged = false;
                }
                None
            }
            _ => {
                let to = self.process_status();
                self.move_to(&def.id, to, at, None)
            }
        }
    }

    /// An operator acknowledges: active unacknowledged becomes
    /// acknowledged, returned unacknowledged becomes normal.
    pub fn acknowledge(
        &mut self,
        def: &AlarmDef,
        by: &Username,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<AlarmTransition, DomainError> {
        if !matches!(
            self.status,
            AlarmStatus::Unacknowledged | AlarmStatus::ReturnedUnacknowledged
        ) {
            return Err(DomainError::NotAllowed(format!(
                "alarm {} is {}; only an unacknowledged alarm can be acknowledged",
                def.id, self.status
            )));
        }
        self.unacknowledged = false;
        let to = self.process_status();
        self.move_to(&def.id, to, at, Some((by.clone(), reason.to_string())))
            .ok_or_else(|| DomainError::NotAllowed(format!("alarm {} did not change", def.id)))
    }

    /// Shelves the alarm: `until` None is one-shot (until the condition
    /// returns to normal), else until that time, at most `max_shelve` from
    /// now. A reason is required.
    pub fn shelve(
        &mut self,
        def: &AlarmDef,
        until: Option<DateTime<Utc>>,
        by: &Username,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<AlarmTransition, DomainError> {
        if reason.trim().is_empty() {
            return Err(DomainError::NotAllowed(format!(
                "shelving alarm {} needs a reason",
                def.id
            )));
        }
        if let Some(u) = until {
            if u <= at {
                return Err(DomainError::NotAllowed(format!(
                    "alarm {}: a shelve must end in the future",
                    def.id
                )));
            }
            if u - at > def.max_shelve {
                return Err(DomainError::NotAllowed(format!(
                    "alarm {} may be shelved for at most {} min; asked {} min",
                    def.id,
                    def.max_shelve.num_minutes(),
                    (u - at).num_minutes()
                )));
            }
        }
        if matches!(
            self.status,
            AlarmStatus::OutOfService | AlarmStatus::SuppressedByDesign
        ) {
            return Err(DomainError::NotAllowed(format!(
                "alarm {} is {}; it cannot be shelved",
                def.id, self.status
            )));
        }
        if until.is_none() && !self.condition_active {
            return Err(DomainError::NotAllowed(format!(
                "alarm {} is not active: a one-shot shelve needs an active alarm",
                def.id
            )));
        }
        self.move_to(
            &def.id,
            AlarmStatus::Shelved { until },
            at,
            Some((by.clone(), reason.to_string())),
        )
        .ok_or_else(|| DomainError::NotAllowed(format!("alarm {} is shelved already", def.id)))
    }

    /// Ends a shelve (by a person, or because its time is up: `by` None).
    pub fn unshelve(
        &mut self,
        def: &AlarmDef,
        by: Option<(&Username, &str)>,
        at: DateTime<Utc>,
    ) -> Result<AlarmTransition, DomainError> {
        if !matches!(self.status, AlarmStatus::Shelved { .. }) {
            return Err(DomainError::NotAllowed(format!(
                "alarm {} is not shelved",
                def.id
            )));
        }
        let to = self.process_status();
        self.move_to(&def.id, to, at, by.map(|(u, r)| (u.clone(), r.to_string())))
            .ok_or_else(|| DomainError::NotAllowed(format!("alarm {} did not change", def.id)))
    }

    /// Ends timed shelves whose time is up.
    pub fn tick(&mut self, def: &AlarmDef, now: DateTime<Utc>) -> Option<AlarmTransition> {
        match self.status {
            AlarmStatus::Shelved { until: Some(u) } if now >= u => {
                self.unshelve(def, None, now).ok()
            }
            _ => None,
        }
    }

    /// Suppression by design follows the unit: stopped (or not running)
    /// suppresses a process alarm; running again shows its true state.
    pub fn set_suppressed_by_design(
        &mut self,
        def: &AlarmDef,
        suppressed: bool,
        at: DateTime<Utc>,
    ) -> Option<AlarmTransition> {
        if !def.kind.is_process() {
            return None;
        }
        match (&self.status, suppressed) {
            (AlarmStatus::OutOfService, _) => None,
            (AlarmStatus::SuppressedByDesign, false) => {
                let to = self.process_status();
                self.move_to(&def.id, to, at, None)
            }
            (AlarmStatus::SuppressedByDesign, true) | (_, false) => None,
            (_, true) => self.move_to(&def.id, AlarmStatus::SuppressedByDesign, at, None),
        }
    }

    /// Takes the alarm out of service (maintenance) or returns it.
    pub fn set_out_of_service(
        &mut self,
        def: &AlarmDef,
        out: bool,
        by: &Username,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<AlarmTransition, DomainError> {
        if reason.trim().is_empty() {
            return Err(DomainError::NotAllowed(format!(
                "taking alarm {} out of or back into service needs a reason",
                def.id
            )));
        }
        let to = if out {
            AlarmStatus::OutOfService
        } else if self.status == AlarmStatus::OutOfService {
            self.process_status()
        } else {
            return Err(DomainError::NotAllowed(format!(
                "alarm {} is in service",
                def.id
            )));
        };
        self.move_to(&def.id, to, at, Some((by.clone(), reason.to_string())))
            .ok_or_else(|| {
                DomainError::NotAllowed(format!("alarm {} is out of service already", def.id))
            })
    }
}

/// Reports an alarm flood: more than `limit` alarm activations within
/// `window` in one area (ISA-18.2: 10 in 10 minutes).
#[derive(Debug, Clone)]
pub struct FloodDetector {
    limit: usize,
    window: Duration,
    recent: HashMap<String, VecDeque<DateTime<Utc>>>,
    flooding: HashMap<String, bool>,
}

impl Default for FloodDetector {
    fn default() -> Self {
        FloodDetector::new(10, Duration::minutes(10))
    }
}

impl FloodDetector {
    pub fn new(limit: usize, window: Duration) -> FloodDetector {
        FloodDetector {
            limit,
            window,
            recent: HashMap::new(),
            flooding: HashMap::new(),
        }
    }

    /// Counts an activation in `area`; returns `Some(true)` when the area
    /// starts flooding and `Some(false)` when a flood ends.
    pub fn activation(&mut self, area: &str, at: DateTime<Utc>) -> Option<bool> {
        self.recent
            .entry(area.to_string())
            .or_default()
            .push_back(at);
        self.check(area, at)
    }

    /// Re-checks an area as time passes (a flood ends when the window
    /// holds `limit` or fewer activations).
    pub fn check(&mut self, area: &str, now: DateTime<Utc>) -> Option<bool> {
        let q = self.recent.entry(area.to_string()).or_default();
        while q.front().is_some_and(|t| now - *t > self.window) {
            q.pop_front();
        }
        let flooding = q.len() > self.limit;
        let was = self
            .flooding
            .insert(area.to_string(), flooding)
            .unwrap_or(false);
        (flooding != was).then_some(flooding)
    }

    /// Activations in the window for `area`.
    pub fn count(&self, area: &str) -> usize {
        self.recent.get(area).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BadReason, TagName};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn o2_high() -> AlarmDef {
        AlarmDef {
            id: "O2-HI".into(),
            tag: TagName::parse("Mechanical/Shredder/O2").unwrap(),
            kind: AlarmKind::High { limit: 2.5 },
            priority: Priority::High,
            deadband: 0.2,
            on_delay: Duration::seconds(2),
            off_delay: Duration::seconds(5),
            area: "Mechanical".into(),
            unit: Some("Mechanical/Shredder".into()),
            max_shelve: Duration::hours(8),
        }
    }

    fn good() -> Quality {
        Quality::Good
    }

    #[test]
    fn a_high_alarm_waits_for_its_on_delay_and_clears_below_the_deadband_after_its_off_delay() {
        let d = o2_high();
        let mut c = Condition::default();
        assert_eq!(
            c.update(&d, Some(2.6), &good(), t(0)),
            None,
            "on-delay running"
        );
        assert_eq!(c.update(&d, Some(2.7), &good(), t(2)), Some(true));
        assert_eq!(
            c.update(&d, Some(2.4), &good(), t(3)),
            None,
            "inside the deadband"
        );
        assert_eq!(
            c.update(&d, Some(2.2), &good(), t(4)),
            None,
            "off-delay running"
        );
        assert_eq!(c.update(&d, Some(2.2), &good(), t(9)), Some(false));
    }

    #[test]
    fn a_blip_shorter_than_the_on_delay_raises_nothing() {
        let d = o2_high();
        let mut c = Condition::default();
        c.update(&d, Some(3.0), &good(), t(0));
        assert_eq!(c.update(&d, Some(1.0), &good(), t(1)), None);
        assert_eq!(c.update(&d, Some(1.0), &good(), t(10)), None);
        assert!(!c.is_active());
    }

    #[test]
    fn bad_quality_raises_comms_loss_and_leaves_process_alarms_as_they_were() {
        let mut comms = o2_high();
        comms.kind = AlarmKind::CommsLoss;
        comms.on_delay = Duration::zero();
        let bad = Quality::Bad(BadReason::NotConnected);
        let mut c = Condition::default();
        assert_eq!(c.update(&comms, None, &bad, t(0)), Some(true));
        let mut p = Condition::default();
        assert_eq!(p.update(&o2_high(), None, &bad, t(0)), None);
    }

    #[test]
    fn the_life_cycle_goes_unacknowledged_acknowledged_normal() {
        let d = o2_high();
        let op = Username::parse("olga").unwrap();
        let mut s = AlarmState::default();
        s.on_condition(&d, true, t(0));
        assert_eq!(s.status(), &AlarmStatus::Unacknowledged);
        s.acknowledge(&d, &op, "seen, purging", t(1)).unwrap();
        assert_eq!(s.status(), &AlarmStatus::Acknowledged);
        s.on_condition(&d, false, t(2));
        assert_eq!(s.status(), &AlarmStatus::Normal);
        assert!(s.acknowledge(&d, &op, "again", t(3)).is_err());
    }

    #[test]
    fn a_return_before_acknowledgement_waits_for_it() {
        let d = o2_high();
        let mut s = AlarmState::default();
        s.on_condition(&d, true, t(0));
        s.on_condition(&d, false, t(1));
        assert_eq!(s.status(), &AlarmStatus::ReturnedUnacknowledged);
        s.acknowledge(&d, &Username::parse("olga").unwrap(), "ok", t(2))
            .unwrap();
        assert_eq!(s.status(), &AlarmStatus::Normal);
    }

    #[test]
    fn a_timed_shelve_is_limited_and_ends_by_itself_showing_the_true_state() {
        let d = o2_high();
        let op = Username::parse("olga").unwrap();
        let mut s = AlarmState::default();
        s.on_condition(&d, true, t(0));
        let e = s
            .shelve(&d, Some(t(9 * 3600)), &op, "sensor drifting", t(0))
            .unwrap_err();
        assert!(e.to_string().contains("at most 480 min"), "{e}");
        assert!(
            s.shelve(&d, Some(t(600)), &op, "", t(0)).is_err(),
            "needs a reason"
        );
        s.shelve(&d, Some(t(600)), &op, "sensor drifting", t(0))
            .unwrap();
        assert!(!s.status().is_annunciated());
        assert_eq!(s.tick(&d, t(599)), None);
        assert!(s.tick(&d, t(600)).is_some());
        assert_eq!(s.status(), &AlarmStatus::Unacknowledged);
    }

    #[test]
    fn a_one_shot_shelve_ends_when_the_alarm_returns_to_normal() {
        let d = o2_high();
        let op = Username::parse("olga").unwrap();
        let mut s = AlarmState::default();
        s.on_condition(&d, true, t(0));
        s.shelve(&d, None, &op, "known, airlock open", t(1))
            .unwrap();
        s.on_condition(&d, false, t(5));
        assert_eq!(s.status(), &AlarmStatus::Normal);
    }

    #[test]
    fn a_stopped_unit_suppresses_its_process_alarms_and_running_again_shows_them() {
        let d = o2_high();
        let mut s = AlarmState::default();
        s.set_suppressed_by_design(&d, true, t(0));
        s.on_condition(&d, true, t(1));
        assert_eq!(s.status(), &AlarmStatus::SuppressedByDesign);
        s.set_suppressed_by_design(&d, false, t(2));
        assert_eq!(s.status(), &AlarmStatus::Unacknowledged);
    }

    #[test]
    fn out_of_service_needs_a_reason_and_returns_to_the_process_state() {
        let d = o2_high();
        let tech = Username::parse("tom").unwrap();
        let mut s = AlarmState::default();
        assert!(s.set_out_of_service(&d, true, &tech, " ", t(0)).is_err());
        s.set_out_of_service(&d, true, &tech, "analyser calibration", t(0))
            .unwrap();
        s.on_condition(&d, true, t(1));
        assert_eq!(s.status(), &AlarmStatus::OutOfService);
        s.set_out_of_service(&d, false, &tech, "calibrated", t(2))
            .unwrap();
        assert_eq!(s.status(), &AlarmStatus::Unacknowledged);
    }

    #[test]
    fn eleven_activations_in_ten_minutes_flood_an_area_and_the_flood_ends() {
        let mut f = FloodDetector::default();
        for i in 0..10 {
            assert_eq!(f.activation("Mechanical", t(i * 30)), None);
        }
        assert_eq!(f.activation("Mechanical", t(300)), Some(true));
        assert_eq!(
            f.activation("Hydromet", t(300)),
            None,
            "areas are counted apart"
        );
        assert_eq!(f.check("Mechanical", t(1000)), Some(false));
    }

    #[test]
    fn a_definition_with_a_negative_deadband_or_zero_band_is_refused() {
        let mut d = o2_high();
        d.deadband = -1.0;
        assert!(d.check().is_err());
        let mut d = o2_high();
        d.kind = AlarmKind::Deviation {
            setpoint: 75.0,
            band: 0.0,
        };
        assert!(d.check().unwrap_err().to_string().contains("O2-HI"));
        assert!(o2_high().check().is_ok());
    }
}
