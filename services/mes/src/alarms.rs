//! Alarms by the ISA-18.2 life cycle, on live values: conditions with
//! deadband and delays, acknowledgement, shelving, suppression by design,
//! out of service, flood detection per area, and the alarm history.
//!
//! [`Alarms::start`] follows the [`LiveValues`] snapshots: each snapshot
//! updates every alarm's condition from its tag (derived tags computed
//! first) and its unit's state, ends timed shelves that are due, and checks
//! each area for a flood (more than 10 activations in 10 minutes). Every
//! transition and every flood start or end is appended to the
//! [`AlarmLog`] and broadcast to subscribers (the HMI's stream).
//!
//! Decisions:
//! - A process alarm with a `unit` is suppressed by design while the unit
//!   is Idle, Stopping, Stopped or Resetting (nothing is processed, so a
//!   chamber open to air is no alarm). Aborting and Aborted do not suppress:
//!   the alarm that tripped the unit must stay in view; neither do Complete,
//!   Held or Holding, where material is still in the unit. An unreadable
//!   unit state leaves the suppression as it was.
//! - A reading still waiting for its first value (the adapter is
//!   connecting) feeds no condition, so start-up raises no comms loss.
//! - Operator actions need a reason and a role: acknowledge, shelve and
//!   unshelve need the operator role (Operate); out of service needs a
//!   supervisor (Approve). Each is appended to the history with its audit
//!   event in one transaction; every refusal is audited too.
//! - States live in memory and in the history: [`Alarms::resume`] starts
//!   each alarm in its last recorded status (acknowledgement, shelve, out
//!   of service carry over), and the first snapshots clear or raise what
//!   changed while remine was down.

use crate::control_config::ControlConfig;
use crate::{Actor, LiveValues, MesError, Snapshot};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use remine_domain::ports::{AlarmHappening, AlarmLog, AlarmQuery, AlarmRecord, Store};
use remine_domain::{
    Action, AlarmDef, AlarmState, AlarmStatus, AlarmTransition, AuditEvent, BadReason, Condition,
    DomainError, FloodDetector, Priority, Quality, TagValue, UnitState,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{Mutex, broadcast};

/// How many history entries the stream keeps for a slow subscriber.
const STREAM_BUFFER: usize = 1024;

/// An alarm as the HMI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmView {
    pub id: String,
    pub description: String,
    pub tag: String,
    pub kind: &'static str,
    pub priority: Priority,
    pub area: String,
    pub unit: Option<String>,
    pub status: AlarmStatus,
    /// The condition beneath any suppression.
    pub condition_active: bool,
    /// The tag's last good value.
    pub value: Option<f64>,
    /// When the status last changed.
    pub since: Option<DateTime<Utc>>,
}

/// How long a shelve lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shelve {
    /// Until the alarm returns to normal.
    OneShot,
    /// For this long (at most the alarm's maximum).
    For(Duration),
}

/// What acknowledging a page of alarms did.
#[derive(Debug, Clone, PartialEq)]
pub struct AckOutcome {
    pub acknowledged: Vec<AlarmTransition>,
    /// Alarms that were not acknowledgeable, with why.
    pub skipped: Vec<(String, String)>,
}

/// An entry of the history as stored, with its sequence number.
pub type HistoryEntry = (i64, AlarmRecord);

/// The alarm system. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Alarms {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<ControlConfig>,
    log: Arc<dyn AlarmLog>,
    audit: Arc<dyn Store>,
    board: Mutex<Board>,
    events: broadcast::Sender<HistoryEntry>,
}

#[derive(Debug)]
struct Entry {
    def: AlarmDef,
    condition: Condition,
    state: AlarmState,
    value: Option<f64>,
    since: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Board {
    entries: Vec<Entry>,
    floods: FloodDetector,
    areas: BTreeSet<String>,
}

/// Now, to the microsecond the store keeps.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn suppressing(s: UnitState) -> bool {
    matches!(
        s,
        UnitState::Idle | UnitState::Stopping | UnitState::Stopped | UnitState::Resetting
    )
}

impl Alarms {
    /// The alarm system of `config`, every alarm Normal, fed by nothing yet.
    pub fn new(
        config: Arc<ControlConfig>,
        log: Arc<dyn AlarmLog>,
        audit: Arc<dyn Store>,
    ) -> Alarms {
        let entries = config
            .alarms
            .iter()
            .map(|def| Entry {
                def: def.clone(),
                condition: Condition::default(),
                state: AlarmState::default(),
                value: None,
                since: None,
            })
            .collect();
        let areas = config.alarms.iter().map(|a| a.area.clone()).collect();
        let (events, _) = broadcast::channel(STREAM_BUFFER);
        Alarms {
            inner: Arc::new(Inner {
                config,
                log,
                audit,
                board: Mutex::new(Board {
                    entries,
                    floods: FloodDetector::default(),
                    areas,
                }),
                events,
            }),
        }
    }

    /// [`Alarms::new`], fed by every snapshot of `live` until every handle
    /// of the returned `Alarms` is dropped.
    pub fn start(
        config: Arc<ControlConfig>,
        log: Arc<dyn AlarmLog>,
        audit: Arc<dyn Store>,
        live: &LiveValues,
    ) -> Alarms {
        let alarms = Alarms::new(config, log, audit);
        alarms.follow(live);
        alarms
    }

    /// [`Alarms::start`] after a restart: each alarm resumes the state its
    /// last history entry records ([`Alarms::restore`]), so an acknowledged
    /// alarm is not annunciated again and shelves and out of service hold.
    pub async fn resume(
        config: Arc<ControlConfig>,
        log: Arc<dyn AlarmLog>,
        audit: Arc<dyn Store>,
        live: &LiveValues,
    ) -> Result<Alarms, MesError> {
        let alarms = Alarms::new(config, log, audit);
        alarms.restore().await?;
        alarms.follow(live);
        Ok(alarms)
    }

    /// Sets each alarm to the status of its last recorded transition (see
    /// [`AlarmState::restored`]); returns how many were not Normal.
    #[tracing::instrument(skip_all)]
    pub async fn restore(&self) -> Result<usize, MesError> {
        let ids: Vec<String> = self
            .inner
            .config
            .alarms
            .iter()
            .map(|a| a.id.clone())
            .collect();
        let mut last = HashMap::new();
        for id in ids {
            let query = AlarmQuery {
                alarm: Some(id.clone()),
                limit: 1,
                ..AlarmQuery::default()
            };
            let newest = self.inner.log.alarm_history(&query).await?.pop();
            if let Some((
                _,
                AlarmRecord {
                    at,
                    happening: AlarmHappening::Transition { to, .. },
                    ..
                },
            )) = newest
            {
                last.insert(id, (to, at));
            }
        }
        let mut board = self.inner.board.lock().await;
        let mut restored = 0;
        for e in board.entries.iter_mut() {
            let Some((status, at)) = last.remove(&e.def.id) else {
                continue;
            };
            let (state, active) = AlarmState::restored(&status);
            if *state.status() != AlarmStatus::Normal {
                restored += 1;
            }
            e.state = state;
            e.condition = Condition::restored(active);
            e.since = Some(at);
        }
        Ok(restored)
    }

    fn follow(&self, live: &LiveValues) {
        let weak = Arc::downgrade(&self.inner);
        let mut rx = live.subscribe();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let snap = rx.borrow_and_update().clone();
                let Some(inner) = weak.upgrade() else { break };
                let alarms = Alarms { inner };
                if let Err(e) = alarms.process(&snap).await {
                    tracing::warn!(error = %e, "alarm history not written");
                }
            }
        });
    }

    /// The history entries as they are appended.
    pub fn subscribe(&self) -> broadcast::Receiver<HistoryEntry> {
        self.inner.events.subscribe()
    }

    pub fn config(&self) -> &ControlConfig {
        &self.inner.config
    }

    /// Runs one snapshot through every alarm: suppression by design from
    /// the units' states, conditions, shelves that are due, floods.
    #[tracing::instrument(skip_all, fields(seq = snapshot.seq))]
    pub async fn process(&self, snapshot: &Snapshot) -> Result<(), MesError> {
        let at = snapshot.at.unwrap_or_else(Utc::now).trunc_subsecs(6);
        let readings = self.inner.config.with_derived(&snapshot.readings);
        let unit_states: HashMap<&str, UnitState> = self
            .inner
            .config
            .units
            .iter()
            .filter_map(|u| {
                let code = readings.get(&u.state)?.good_value()?.as_f64();
                let state = UnitState::from_code(u16::try_from(code as i64).ok()?)?;
                Some((u.path.as_str(), state))
            })
            .collect();
        let mut records = Vec::new();
        let mut board = self.inner.board.lock().await;
        let Board {
            entries, floods, ..
        } = &mut *board;
        for e in entries.iter_mut() {
            let mut moved = Vec::new();
            if let Some(state) = e.def.unit.as_deref().and_then(|u| unit_states.get(u)) {
                moved.extend(
                    e.state
                        .set_suppressed_by_design(&e.def, suppressing(*state), at),
                );
            }
            if let Some(r) = readings.get(&e.def.tag)
                && r.quality != Quality::Bad(BadReason::WaitingForInitialData)
            {
                let value = r.value.map(TagValue::as_f64);
                if r.quality.is_good() {
                    e.value = value;
                }
                if let Some(active) = e.condition.update(&e.def, value, &r.quality, at) {
                    moved.extend(e.state.on_condition(&e.def, active, at));
                    if active && let Some(started) = floods.activation(&e.def.area, at) {
                        records.push(flood_record(&e.def.area, started, floods, at));
                    }
                }
            }
            moved.extend(e.state.tick(&e.def, at));
            for t in moved {
                e.since = Some(t.at);
                records.push(transition_record(&e.def, e.value, t));
            }
        }
        for area in board.areas.clone() {
            if let Some(started) = board.floods.check(&area, at) {
                records.push(flood_record(&area, started, &board.floods, at));
            }
        }
        drop(board);
        for r in records {
            self.record(r, None).await?;
        }
        Ok(())
    }

    async fn record(
        &self,
        record: AlarmRecord,
        audit: Option<AuditEvent>,
    ) -> Result<i64, MesError> {
        let seq = self.inner.log.append_alarm(&record, audit).await?;
        // No subscriber is fine: nobody is watching the stream.
        let _ = self.inner.events.send((seq, record));
        Ok(seq)
    }

    /// Acknowledges one alarm or a page of them (operator role, a reason).
    /// Alarms that are not unacknowledged are skipped with why; when none
    /// could be acknowledged the request is refused.
    #[tracing::instrument(skip(self, actor, reason), fields(user = %actor.user, alarms = ids.len()))]
    pub async fn acknowledge(
        &self,
        actor: &Actor,
        ids: &[String],
        reason: &str,
    ) -> Result<AckOutcome, MesError> {
        let target = ids.join(",");
        let mut board = self.inner.board.lock().await;
        let checked = self.precheck(actor, Action::Operate, ids, reason, "acknowledge");
        if let Err(e) = checked {
            drop(board);
            return Err(self
                .refused(actor, "alarm.acknowledge.refused", &target, e)
                .await);
        }
        let at = now();
        let mut outcome = AckOutcome {
            acknowledged: Vec::new(),
            skipped: Vec::new(),
        };
        for id in ids {
            let Some(e) = board.entries.iter_mut().find(|e| &e.def.id == id) else {
                continue;
            };
            let mut state = e.state.clone();
            match state.acknowledge(&e.def, &actor.user, reason.trim(), at) {
                Err(why) => outcome.skipped.push((id.clone(), why.to_string())),
                Ok(t) => {
                    let audit = audit_of(actor, "alarm.acknowledge", &t, reason);
                    self.record(transition_record(&e.def, e.value, t.clone()), Some(audit))
                        .await?;
                    e.state = state;
                    e.since = Some(at);
                    outcome.acknowledged.push(t);
                }
            }
        }
        drop(board);
        if outcome.acknowledged.is_empty() {
            let why = outcome
                .skipped
                .iter()
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(self
                .refused(
                    actor,
                    "alarm.acknowledge.refused",
                    &target,
                    MesError::NotAllowed(why),
                )
                .await);
        }
        Ok(outcome)
    }

    /// Shelves an alarm, one-shot or for a time up to its maximum (operator
    /// role, a reason).
    #[tracing::instrument(skip(self, actor, reason), fields(user = %actor.user, alarm = %id))]
    pub async fn shelve(
        &self,
        actor: &Actor,
        id: &str,
        how: Shelve,
        reason: &str,
    ) -> Result<AlarmTransition, MesError> {
        let at = now();
        let until = match how {
            Shelve::OneShot => None,
            Shelve::For(d) => Some(at + d),
        };
        self.operate(
            actor,
            Action::Operate,
            id,
            reason,
            "alarm.shelve",
            |s, def| s.shelve(def, until, &actor.user, reason.trim(), at),
        )
        .await
    }

    /// Ends a shelve before its time (operator role, a reason).
    #[tracing::instrument(skip(self, actor, reason), fields(user = %actor.user, alarm = %id))]
    pub async fn unshelve(
        &self,
        actor: &Actor,
        id: &str,
        reason: &str,
    ) -> Result<AlarmTransition, MesError> {
        let at = now();
        self.operate(
            actor,
            Action::Operate,
            id,
            reason,
            "alarm.unshelve",
            |s, def| s.unshelve(def, Some((&actor.user, reason.trim())), at),
        )
        .await
    }

    /// Takes an alarm out of service or returns it (supervisor, a reason).
    #[tracing::instrument(skip(self, actor, reason), fields(user = %actor.user, alarm = %id))]
    pub async fn set_out_of_service(
        &self,
        actor: &Actor,
        id: &str,
        out: bool,
        reason: &str,
    ) -> Result<AlarmTransition, MesError> {
        let at = now();
        let action = if out {
            "alarm.out_of_service"
        } else {
            "alarm.in_service"
        };
        self.operate(actor, Action::Approve, id, reason, action, |s, def| {
            s.set_out_of_service(def, out, &actor.user, reason.trim(), at)
        })
        .await
    }

    /// One operator action on one alarm: checks, the domain's transition on
    /// a copy of the state, the history row with its audit entry, then the
    /// new state. Refusals are audited.
    async fn operate(
        &self,
        actor: &Actor,
        needs: Action,
        id: &str,
        reason: &str,
        action: &str,
        act: impl FnOnce(&mut AlarmState, &AlarmDef) -> Result<AlarmTransition, DomainError>,
    ) -> Result<AlarmTransition, MesError> {
        let refused = format!("{action}.refused");
        let mut board = self.inner.board.lock().await;
        let ids = [id.to_string()];
        if let Err(e) = self.precheck(actor, needs, &ids, reason, action) {
            drop(board);
            return Err(self.refused(actor, &refused, id, e).await);
        }
        let Some(e) = board.entries.iter_mut().find(|e| e.def.id == id) else {
            drop(board);
            let e = MesError::Internal(format!("alarm {id} vanished"));
            return Err(self.refused(actor, &refused, id, e).await);
        };
        let mut state = e.state.clone();
        match act(&mut state, &e.def) {
            Err(why) => {
                drop(board);
                let e = MesError::NotAllowed(why.to_string());
                Err(self.refused(actor, &refused, id, e).await)
            }
            Ok(t) => {
                let audit = audit_of(actor, action, &t, reason);
                self.record(transition_record(&e.def, e.value, t.clone()), Some(audit))
                    .await?;
                e.state = state;
                e.since = Some(t.at);
                Ok(t)
            }
        }
    }

    /// Role, known ids and a reason, before anything changes.
    fn precheck(
        &self,
        actor: &Actor,
        needs: Action,
        ids: &[String],
        reason: &str,
        what: &str,
    ) -> Result<(), MesError> {
        actor
            .role
            .authorise(needs)
            .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        if ids.is_empty() {
            return Err(MesError::NotAllowed(format!("{what}: no alarm named")));
        }
        let unknown: Vec<&str> = ids
            .iter()
            .filter(|id| !self.inner.config.alarms.iter().any(|a| &&a.id == id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(MesError::Store(remine_domain::ports::StoreError::NotFound(
                format!("alarm {}", unknown.join(", ")),
            )));
        }
        if reason.trim().is_empty() {
            return Err(MesError::NotAllowed(format!(
                "{what} {}: needs a reason",
                ids.join(", ")
            )));
        }
        Ok(())
    }

    /// Audits a refusal and hands the error back.
    async fn refused(&self, actor: &Actor, action: &str, target: &str, e: MesError) -> MesError {
        let appended = self
            .inner
            .audit
            .append(AuditEvent {
                actor: actor.user.clone(),
                action: action.into(),
                target: target.into(),
                old: None,
                new: None,
                reason: e.to_string(),
            })
            .await;
        match appended {
            Ok(_) => e,
            Err(store) => store.into(),
        }
    }

    /// Every alarm with its status.
    pub async fn list(&self) -> Vec<AlarmView> {
        let board = self.inner.board.lock().await;
        board
            .entries
            .iter()
            .map(|e| AlarmView {
                id: e.def.id.clone(),
                description: self
                    .inner
                    .config
                    .alarm_descriptions
                    .get(&e.def.id)
                    .cloned()
                    .unwrap_or_default(),
                tag: e.def.tag.to_string(),
                kind: e.def.kind.name(),
                priority: e.def.priority,
                area: e.def.area.clone(),
                unit: e.def.unit.clone(),
                status: e.state.status().clone(),
                condition_active: e.state.condition_active(),
                value: e.value,
                since: e.since,
            })
            .collect()
    }

    /// The alarms an operator must see (active or unacknowledged), most
    /// urgent first, then oldest first.
    pub async fn active(&self) -> Vec<AlarmView> {
        let mut v: Vec<AlarmView> = self
            .list()
            .await
            .into_iter()
            .filter(|a| a.status.is_annunciated())
            .collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.since.cmp(&b.since)));
        v
    }

    /// The areas flooding now.
    pub async fn flooding(&self) -> Vec<(String, usize)> {
        let board = self.inner.board.lock().await;
        let at = Utc::now();
        let mut probe = board.floods.clone();
        board
            .areas
            .iter()
            .filter_map(|a| {
                probe.check(a, at);
                let n = probe.count(a);
                (n > 10).then(|| (a.clone(), n))
            })
            .collect()
    }

    /// The history `query` selects, oldest first.
    pub async fn history(&self, query: &AlarmQuery) -> Result<Vec<HistoryEntry>, MesError> {
        Ok(self.inner.log.alarm_history(query).await?)
    }
}

fn audit_of(actor: &Actor, action: &str, t: &AlarmTransition, reason: &str) -> AuditEvent {
    AuditEvent {
        actor: actor.user.clone(),
        action: action.into(),
        target: t.alarm.clone(),
        old: Some(status_text(&t.from)),
        new: Some(status_text(&t.to)),
        reason: reason.trim().into(),
    }
}

/// A status with a timed shelve's end.
pub fn status_text(s: &AlarmStatus) -> String {
    match s {
        AlarmStatus::Shelved { until: Some(u) } => format!("shelved until {}", u.to_rfc3339()),
        AlarmStatus::Shelved { until: None } => "shelved (one-shot)".into(),
        other => other.name().into(),
    }
}

fn transition_record(def: &AlarmDef, value: Option<f64>, t: AlarmTransition) -> AlarmRecord {
    AlarmRecord {
        at: t.at,
        alarm: t.alarm,
        area: def.area.clone(),
        priority: Some(def.priority),
        happening: AlarmHappening::Transition {
            from: t.from,
            to: t.to,
        },
        value,
        by: t.by,
    }
}

fn flood_record(
    area: &str,
    started: bool,
    floods: &FloodDetector,
    at: DateTime<Utc>,
) -> AlarmRecord {
    let count = u32::try_from(floods.count(area)).unwrap_or(u32::MAX);
    AlarmRecord {
        at,
        alarm: String::new(),
        area: area.to_string(),
        priority: None,
        happening: if started {
            AlarmHappening::FloodStarted { count }
        } else {
            AlarmHappening::FloodEnded { count }
        },
        value: None,
        by: None,
    }
}

/// The history as CSV (RFC 4180): a header line, then one line per entry.
pub fn history_csv(entries: &[HistoryEntry]) -> String {
    let mut out = String::from("seq,time,alarm,area,priority,event,from,to,value,user,reason\r\n");
    for (seq, r) in entries {
        let (event, from, to) = match &r.happening {
            AlarmHappening::Transition { from, to } => {
                ("transition", status_text(from), status_text(to))
            }
            AlarmHappening::FloodStarted { count } => (
                "flood_started",
                String::new(),
                format!("{count} activations"),
            ),
            AlarmHappening::FloodEnded { count } => {
                ("flood_ended", String::new(), format!("{count} activations"))
            }
        };
        let fields = [
            seq.to_string(),
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            r.alarm.clone(),
            r.area.clone(),
            r.priority.map(|p| p.name().to_string()).unwrap_or_default(),
            event.to_string(),
            from,
            to,
            r.value.map(|v| v.to_string()).unwrap_or_default(),
            r.by.as_ref()
                .map(|(u, _)| u.to_string())
                .unwrap_or_default(),
            r.by.as_ref().map(|(_, w)| w.clone()).unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be read as a formula by spreadsheets.
    let s = if s.starts_with(['=', '+', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_quotes_or_formulas_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("-3.5"), "-3.5", "negative numbers stay numbers");
    }

    #[test]
    fn a_stopped_or_idle_unit_suppresses_and_a_tripped_one_does_not() {
        for s in UnitState::ALL {
            let expected = matches!(
                s,
                UnitState::Idle | UnitState::Stopping | UnitState::Stopped | UnitState::Resetting
            );
            assert_eq!(suppressing(s), expected, "{s}");
        }
    }
}
