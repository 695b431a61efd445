//! Line control: commands to ISA-88 units, checked against the state
//! model, the user's role and the unit's permissives, then written to the
//! PLC through the [`GuardedWriter`].
//!
//! A command is refused, with the reason, and the refusal audited
//! (`unit.command.refused`), when the role may not operate, the unit is not
//! declared, no reason is given, the unit's state cannot be read with good
//! quality (fail safe), the state model does not allow it, a permissive for
//! that command is false (every false check is named), or, for a Start, the
//! released recipe cannot be downloaded for the batch. Permissives are
//! evaluated on readings taken for the command, not on the last snapshot;
//! their hold timers also run on every live snapshot ([`LineControl::watch`]),
//! so "stays below 60 V for the rest" counts from when it first held.
//!
//! A Start first checks the permissives against the PLC as it is, then
//! downloads the released recipe (which may change a setpoint a permissive
//! compares with, like the leach temperature's), checks them again, and only
//! then writes the command. When that second check refuses, the batch keeps
//! its control recipe and a later start of the same batch on the same unit
//! reuses it instead of downloading again.

use crate::control_config::{ControlConfig, UnitDef};
use crate::{Actor, DownloadRequest, GuardedWriter, LiveValues, MesError, Recipes};
use chrono::Utc;
use remine_domain::ports::{Store, StoreError, TagIo};
use remine_domain::{
    Action, AuditEvent, Chemistry, Evaluation, LotId, PermissiveState, Quality, TagReading,
    TagValue, UnitCommand, UnitState,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The batch a Start runs: the chemistry picks the released recipe of the
/// unit's line, the lot is the batch it makes.
#[derive(Debug, Clone, PartialEq)]
pub struct StartBatch {
    pub chemistry: Chemistry,
    pub lot: LotId,
}

/// A command to a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRequest {
    /// The unit's path (`Discharge/Station1`).
    pub unit: String,
    pub command: UnitCommand,
    pub reason: String,
    /// Required for Start, refused with any other command.
    pub batch: Option<StartBatch>,
}

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    pub unit: String,
    pub command: UnitCommand,
    /// The state the unit was in.
    pub from: UnitState,
    /// The state the state model leads to (the PLC moves it there).
    pub to: UnitState,
    /// The audit entry of the command.
    pub audit_seq: i64,
}

/// A unit as the HMI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitView {
    pub path: String,
    pub area: String,
    /// `None` when the state tag has no good value.
    pub state: Option<UnitState>,
    pub quality: Quality,
    /// The commands the state model allows now.
    pub allowed: Vec<UnitCommand>,
    /// Every permissive of the unit, evaluated now.
    pub permissives: Vec<(UnitCommand, Evaluation)>,
}

/// Commands units. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LineControl {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<ControlConfig>,
    io: Arc<dyn TagIo>,
    writer: GuardedWriter,
    store: Arc<dyn Store>,
    recipes: Recipes,
    /// Hold timers per permissive id, shared by commands and the watcher.
    timers: Mutex<HashMap<String, PermissiveState>>,
}

impl LineControl {
    pub fn new(
        config: Arc<ControlConfig>,
        io: Arc<dyn TagIo>,
        writer: GuardedWriter,
        store: Arc<dyn Store>,
        recipes: Recipes,
    ) -> LineControl {
        LineControl {
            inner: Arc::new(Inner {
                config,
                io,
                writer,
                store,
                recipes,
                timers: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ControlConfig {
        &self.inner.config
    }

    /// Evaluates every permissive on each live snapshot, so timed checks
    /// count from when they first held. Stops when every handle of this
    /// `LineControl` is dropped.
    pub fn watch(&self, live: &LiveValues) {
        let weak = Arc::downgrade(&self.inner);
        let mut rx = live.subscribe();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let snap = rx.borrow_and_update().clone();
                let Some(inner) = weak.upgrade() else { break };
                let readings = inner.config.with_derived(&snap.readings);
                let now = snap.at.unwrap_or_else(Utc::now);
                inner.evaluate(inner.config.permissives.iter(), &readings, now);
            }
        });
    }

    /// Gives `request.command` to the unit, or says why not (audited).
    #[tracing::instrument(skip(self, actor, request), fields(user = %actor.user, unit = %request.unit, command = %request.command))]
    pub async fn command(
        &self,
        actor: &Actor,
        request: UnitRequest,
    ) -> Result<CommandOutcome, MesError> {
        let target = request.unit.trim().trim_end_matches('/').to_string();
        match self.try_command(actor, &request).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let refusal = matches!(
                    e,
                    MesError::NotAllowed(_)
                        | MesError::Invalid(_)
                        | MesError::InvalidRecipe { .. }
                        | MesError::Store(StoreError::NotFound(_))
                );
                if refusal {
                    self.inner
                        .store
                        .append(AuditEvent {
                            actor: actor.user.clone(),
                            action: "unit.command.refused".into(),
                            target,
                            old: None,
                            new: Some(request.command.name().into()),
                            reason: e.to_string(),
                        })
                        .await?;
                }
                Err(e)
            }
        }
    }

    async fn try_command(
        &self,
        actor: &Actor,
        request: &UnitRequest,
    ) -> Result<CommandOutcome, MesError> {
        let cmd = request.command;
        actor
            .role
            .authorise(Action::Operate)
            .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        let unit = self.unit(&request.unit)?;
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(MesError::NotAllowed(format!(
                "{cmd} {}: a command needs a reason",
                unit.path
            )));
        }
        match (cmd, &request.batch) {
            (UnitCommand::Start, None) => {
                return Err(MesError::NotAllowed(format!(
                    "start {}: a start needs the batch's chemistry (its released recipe) and lot",
                    unit.path
                )));
            }
            (c, Some(_)) if c != UnitCommand::Start => {
                return Err(MesError::NotAllowed(format!(
                    "{c} {}: only a start takes a recipe and a lot",
                    unit.path
                )));
            }
            _ => {}
        }
        let permissives: Vec<_> = self
            .inner
            .config
            .permissives
            .iter()
            .filter(|p| p.unit == unit.path && p.command == cmd)
            .collect();
        let mut wanted = vec![unit.state.clone()];
        wanted.extend(
            self.inner.config.plant_tags(
                permissives
                    .iter()
                    .flat_map(|p| p.checks.iter().flat_map(|c| c.tags())),
            ),
        );
        let read = self.inner.io.read(&wanted).await;
        let from = state_of(&unit, read.first())?;
        let to = from
            .apply(cmd)
            .map_err(|e| MesError::NotAllowed(format!("{}: {e}", unit.path)))?;
        let readings = self.inner.config.with_derived(&read);
        let evaluations = self
            .inner
            .evaluate(permissives.into_iter(), &readings, Utc::now());
        let refusals: Vec<String> = evaluations.iter().filter_map(Evaluation::refusal).collect();
        if !refusals.is_empty() {
            return Err(MesError::NotAllowed(format!(
                "{cmd} {} refused: {}",
                unit.path,
                refusals.join("; ")
            )));
        }
        if let Some(batch) = &request.batch {
            self.download(actor, &unit, batch).await?;
            // The recipe's setpoints may change what the permissives compare
            // with (the leach temperature's setpoint): check them again.
            let read = self.inner.io.read(&wanted).await;
            let readings = self.inner.config.with_derived(&read);
            let again = self.inner.evaluate(
                self.inner
                    .config
                    .permissives
                    .iter()
                    .filter(|p| p.unit == unit.path && p.command == cmd),
                &readings,
                Utc::now(),
            );
            let refusals: Vec<String> = again.iter().filter_map(Evaluation::refusal).collect();
            if !refusals.is_empty() {
                return Err(MesError::NotAllowed(format!(
                    "{cmd} {} refused after downloading the recipe of batch {} (it stays the batch's control recipe; start again when the permissive holds): {}",
                    unit.path,
                    batch.lot,
                    refusals.join("; ")
                )));
            }
        }
        self.inner
            .writer
            .write(
                actor,
                &unit.command,
                TagValue::Int(i64::from(cmd.code())),
                reason,
            )
            .await?;
        let entry = self
            .inner
            .store
            .append(AuditEvent {
                actor: actor.user.clone(),
                action: "unit.command".into(),
                target: unit.path.clone(),
                old: Some(from.name().into()),
                new: Some(match &request.batch {
                    Some(b) => format!("{cmd} batch {} ({})", b.lot, b.chemistry),
                    None => cmd.name().into(),
                }),
                reason: reason.into(),
            })
            .await?;
        Ok(CommandOutcome {
            unit: unit.path.clone(),
            command: cmd,
            from,
            to,
            audit_seq: entry.seq,
        })
    }

    /// Downloads the batch's released recipe to the unit, unless an earlier
    /// start of the same batch on the same unit did and was then refused.
    async fn download(
        &self,
        actor: &Actor,
        unit: &UnitDef,
        batch: &StartBatch,
    ) -> Result<(), MesError> {
        if let Some(c) = self.inner.store.control_recipe(&batch.lot).await? {
            if c.unit == unit.path && c.recipe.key().chemistry == batch.chemistry {
                return Ok(());
            }
            return Err(MesError::NotAllowed(format!(
                "batch {} already ran on {} with recipe {}: a batch runs once",
                batch.lot,
                c.unit,
                c.recipe.key()
            )));
        }
        self.inner
            .recipes
            .download(
                &self.inner.writer,
                self.inner.io.as_ref(),
                actor,
                DownloadRequest {
                    unit: unit.path.clone(),
                    chemistry: batch.chemistry,
                    batch: batch.lot.clone(),
                    adjustments: Vec::new(),
                },
            )
            .await?;
        Ok(())
    }

    fn unit(&self, path: &str) -> Result<UnitDef, MesError> {
        let wanted = path.trim().trim_end_matches('/');
        self.inner.config.unit(wanted).cloned().ok_or_else(|| {
            MesError::Store(StoreError::NotFound(format!(
                "unit '{wanted}' (declared units: {})",
                self.inner
                    .config
                    .units
                    .iter()
                    .map(|u| u.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        })
    }

    /// Every unit with its state and permissives, read now.
    #[tracing::instrument(skip(self))]
    pub async fn units(&self) -> Vec<UnitView> {
        let config = &self.inner.config;
        let mut wanted: Vec<_> = config.units.iter().map(|u| u.state.clone()).collect();
        wanted.extend(
            config.plant_tags(
                config
                    .permissives
                    .iter()
                    .flat_map(|p| p.checks.iter().flat_map(|c| c.tags())),
            ),
        );
        let read = self.inner.io.read(&wanted).await;
        let readings = config.with_derived(&read);
        let now = Utc::now();
        config
            .units
            .iter()
            .zip(&read)
            .map(|(u, r)| {
                let state = state_of(u, Some(r)).ok();
                let permissives = self.inner.evaluate(
                    config.permissives.iter().filter(|p| p.unit == u.path),
                    &readings,
                    now,
                );
                let commands = config
                    .permissives
                    .iter()
                    .filter(|p| p.unit == u.path)
                    .map(|p| p.command);
                UnitView {
                    path: u.path.clone(),
                    area: u.area.clone(),
                    state,
                    quality: r.quality.clone(),
                    allowed: state.map_or_else(Vec::new, |s| {
                        UnitCommand::ALL
                            .into_iter()
                            .filter(|c| s.apply(*c).is_ok())
                            .collect()
                    }),
                    permissives: commands.zip(permissives).collect(),
                }
            })
            .collect()
    }

    /// The permissives of one unit, evaluated now, for the HMI: each check
    /// with what was read and why it is false.
    pub async fn permissives(
        &self,
        unit: &str,
    ) -> Result<Vec<(UnitCommand, Evaluation)>, MesError> {
        let unit = self.unit(unit)?;
        Ok(self
            .units()
            .await
            .into_iter()
            .find(|u| u.path == unit.path)
            .map(|u| u.permissives)
            .unwrap_or_default())
    }
}

impl Inner {
    fn evaluate<'a>(
        &self,
        permissives: impl Iterator<Item = &'a remine_domain::Permissive>,
        readings: &HashMap<remine_domain::TagName, TagReading>,
        now: chrono::DateTime<Utc>,
    ) -> Vec<Evaluation> {
        // A poisoned lock only means another evaluation panicked; the
        // timers are still usable.
        let mut timers = self
            .timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        permissives
            .map(|p| {
                timers
                    .entry(p.id.clone())
                    .or_default()
                    .evaluate(p, readings, now)
            })
            .collect()
    }
}

/// The unit's state from its state tag's reading; refused (fail safe) when
/// the reading is not good or not a state code.
fn state_of(unit: &UnitDef, reading: Option<&TagReading>) -> Result<UnitState, MesError> {
    let Some(r) = reading else {
        return Err(MesError::NotAllowed(format!(
            "the state of {} is unknown ({} was not read): commands are refused (fail safe)",
            unit.path, unit.state
        )));
    };
    let Some(v) = r.good_value() else {
        return Err(MesError::NotAllowed(format!(
            "the state of {} is unknown ({} has {} quality): commands are refused (fail safe)",
            unit.path, unit.state, r.quality
        )));
    };
    let code = v.as_f64();
    u16::try_from(code as i64)
        .ok()
        .and_then(UnitState::from_code)
        .ok_or_else(|| {
            MesError::NotAllowed(format!(
                "the state of {}: {} holds {code}, which is not an ISA-88 state code",
                unit.path, unit.state
            ))
        })
}
