//! Recipe management: drafts, the signed life cycle, diffs, and the
//! download of a released recipe to a unit as a batch's control recipe.
//!
//! Every change is validated against the line's equipment catalogue before
//! it is stored; every life-cycle step is an electronic signature (the
//! signer re-enters their password; the meaning is recorded) and the two
//! persons rule holds: who submitted a version may not approve it. Refused
//! signatures are audited too. A download writes each tagged parameter
//! through the [`GuardedWriter`] (role, limits, audit, write, read-back),
//! then reads every setpoint back once more and stores the control recipe
//! only when the PLC holds all of them.

use crate::{Actor, GuardedWriter, MesError, Users};
use chrono::{DateTime, SubsecRound, Utc};
use remine_domain::ports::{Store, StoreError, TagIo};
use remine_domain::recipe::lifecycle::{RecipeStatus, Transition, authorise_transition};
use remine_domain::recipe::rules::{EquipmentCatalogue, Finding, validate};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{
    Adjustment, ControlRecipe, Line, ParamChange, ParamName, Recipe, RecipeKey, RecipeRecord,
    RecipeVersion, Signature, diff,
};
use remine_domain::{Action, AuditEvent, Chemistry, LotId, TagName, TagValue, UnitState};
use std::sync::Arc;

/// Relative tolerance of the final read-back (PLC registers hold f32).
const READBACK_REL_TOL: f64 = 1e-5;

/// What a download is asked to do.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    /// The unit's path, "Discharge/Station1", "Mechanical/Shredder", "Hydromet/Leach".
    pub unit: String,
    pub chemistry: Chemistry,
    /// The lot the batch will make.
    pub batch: LotId,
    /// Operator adjustments: parameter, value (inside its limits), reason.
    pub adjustments: Vec<(String, Measure, String)>,
}

/// The recipe use cases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recipes {
    store: Arc<dyn Store>,
    users: Users,
    catalogues: Arc<Vec<EquipmentCatalogue>>,
}

impl Recipes {
    pub fn new(store: Arc<dyn Store>, users: Users, catalogues: Vec<EquipmentCatalogue>) -> Self {
        Recipes {
            store,
            users,
            catalogues: Arc::new(catalogues),
        }
    }

    pub fn catalogue(&self, line: Line) -> Option<&EquipmentCatalogue> {
        self.catalogues.iter().find(|c| c.line() == line)
    }

    pub fn catalogues(&self) -> &[EquipmentCatalogue] {
        &self.catalogues
    }

    /// Everything wrong with `recipe` against its line's equipment.
    pub fn validate(&self, recipe: &Recipe) -> Vec<Finding> {
        match self.catalogue(recipe.key().line) {
            Some(c) => validate(recipe, c),
            None => vec![Finding {
                parameter: None,
                message: format!("no equipment catalogue for the {} line", recipe.key().line),
            }],
        }
    }

    fn ensure_valid(&self, recipe: &Recipe) -> Result<(), MesError> {
        let findings = self.validate(recipe);
        if findings.is_empty() {
            Ok(())
        } else {
            Err(MesError::InvalidRecipe {
                recipe: recipe.key().to_string(),
                findings: findings.iter().map(ToString::to_string).collect(),
            })
        }
    }

    /// Every version (of one key, or of all), by key then version.
    pub async fn list(&self, key: Option<RecipeKey>) -> Result<Vec<RecipeRecord>, MesError> {
        Ok(self.store.recipe_versions(key).await?)
    }

    pub async fn get(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
    ) -> Result<RecipeRecord, MesError> {
        self.store
            .recipe_version(key, version)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("recipe {key} {version}")).into())
    }

    /// The key's released version.
    pub async fn released(&self, key: RecipeKey) -> Result<RecipeRecord, MesError> {
        self.store.released_recipe(key).await?.ok_or_else(|| {
            StoreError::NotFound(format!("a released version of recipe {key}")).into()
        })
    }

    /// Stores `recipe` as a new Draft version of its key. Needs the
    /// engineer role and a valid recipe; refused while another version of
    /// the key is still a draft, in review or approved (finish or reject it
    /// first), so changes are reviewed one at a time.
    #[tracing::instrument(skip(self, actor, recipe), fields(user = %actor.user, recipe = %recipe.key()))]
    pub async fn create_draft(
        &self,
        actor: &Actor,
        recipe: Recipe,
        reason: &str,
    ) -> Result<RecipeRecord, MesError> {
        let key = recipe.key();
        self.authorise(actor, Action::Engineer, "recipe.create", &key.to_string())
            .await?;
        self.ensure_valid(&recipe)?;
        let versions = self.store.recipe_versions(Some(key)).await?;
        if let Some(open) = versions.iter().find(|r| {
            matches!(
                r.status,
                RecipeStatus::Draft | RecipeStatus::InReview | RecipeStatus::Approved
            )
        }) {
            return Err(MesError::NotAllowed(format!(
                "recipe {key} {} is still {}: finish or reject it before starting another version",
                open.version, open.status
            )));
        }
        let version = versions
            .iter()
            .map(|r| r.version)
            .max()
            .map_or(RecipeVersion::FIRST, RecipeVersion::next);
        let record = RecipeRecord {
            version,
            status: RecipeStatus::Draft,
            recipe,
            created_by: actor.user.clone(),
            created_at: now(),
            signatures: Vec::new(),
        };
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "recipe.create".into(),
            target: format!("{key} {version}"),
            old: None,
            new: Some(RecipeStatus::Draft.to_string()),
            reason: reason_or(reason, "new draft"),
        };
        self.store.create_recipe_version(&record, audit).await?;
        Ok(record)
    }

    /// Replaces a Draft's content (engineer role; the recipe must be valid
    /// and of the same key).
    #[tracing::instrument(skip(self, actor, recipe), fields(user = %actor.user, recipe = %key))]
    pub async fn edit_draft(
        &self,
        actor: &Actor,
        key: RecipeKey,
        version: RecipeVersion,
        recipe: Recipe,
        reason: &str,
    ) -> Result<RecipeRecord, MesError> {
        let target = format!("{key} {version}");
        self.authorise(actor, Action::Engineer, "recipe.edit", &target)
            .await?;
        if recipe.key() != key {
            return Err(MesError::NotAllowed(format!(
                "the edited recipe is for {}, not {key}",
                recipe.key()
            )));
        }
        self.ensure_valid(&recipe)?;
        let current = self.get(key, version).await?;
        if !current.status.is_editable() {
            return Err(MesError::NotAllowed(format!(
                "recipe {target} is {}; only a draft may be edited (a change makes a new version)",
                current.status
            )));
        }
        let changes = diff(&current.recipe, &recipe);
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "recipe.edit".into(),
            target: target.clone(),
            old: None,
            new: Some(summarise(&changes)),
            reason: reason_or(reason, "draft edited"),
        };
        self.store
            .update_recipe_draft(key, version, &recipe, audit)
            .await?;
        self.get(key, version).await
    }

    /// Takes a life-cycle step as an electronic signature: the signer
    /// re-enters their password; the state model, the role and the two
    /// persons rule are checked; the signature and its meaning are stored
    /// with the new status and audited. A refusal is audited too.
    #[tracing::instrument(skip(self, actor, password), fields(user = %actor.user, recipe = %key))]
    pub async fn sign(
        &self,
        actor: &Actor,
        key: RecipeKey,
        version: RecipeVersion,
        transition: Transition,
        password: &str,
        reason: &str,
    ) -> Result<RecipeRecord, MesError> {
        let target = format!("{key} {version}");
        let action = format!("recipe.{}", transition.name().replace(' ', "_"));
        let outcome = self
            .try_sign(actor, key, version, transition, password, reason)
            .await;
        if let Err(e @ (MesError::NotAllowed(_) | MesError::InvalidRecipe { .. })) = &outcome {
            self.refused(actor, &format!("{action}.refused"), &target, &e.to_string())
                .await?;
        }
        outcome?;
        self.get(key, version).await
    }

    async fn try_sign(
        &self,
        actor: &Actor,
        key: RecipeKey,
        version: RecipeVersion,
        transition: Transition,
        password: &str,
        reason: &str,
    ) -> Result<(), MesError> {
        let signer = self.users.reauthenticate(actor, password).await?;
        let current = self.get(key, version).await?;
        let to = authorise_transition(
            current.status,
            transition,
            &signer.user,
            signer.role,
            current.submitted_by(),
        )
        .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        if transition == Transition::Reject && reason.trim().is_empty() {
            return Err(MesError::NotAllowed(
                "a rejection needs a reason the author can act on".into(),
            ));
        }
        if matches!(transition, Transition::Submit | Transition::Release) {
            // The equipment catalogue may have changed since the draft.
            self.ensure_valid(&current.recipe)?;
        }
        let meaning = transition.meaning();
        let signature = Signature {
            user: signer.user.clone(),
            meaning,
            at: now(),
            reason: reason.trim().to_string(),
        };
        let audit = AuditEvent {
            actor: signer.user.clone(),
            action: format!("recipe.{}", transition.name().replace(' ', "_")),
            target: format!("{key} {version}"),
            old: Some(current.status.to_string()),
            new: Some(to.to_string()),
            reason: format!(
                "signed '{}' (password re-entered){}",
                meaning.name(),
                if reason.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", reason.trim())
                }
            ),
        };
        self.store
            .transition_recipe(key, version, current.status, to, &signature, audit)
            .await?;
        Ok(())
    }

    /// Parameter-by-parameter differences from version `a` to version `b`.
    pub async fn diff(
        &self,
        key: RecipeKey,
        a: RecipeVersion,
        b: RecipeVersion,
    ) -> Result<Vec<ParamChange>, MesError> {
        let old = self.get(key, a).await?;
        let new = self.get(key, b).await?;
        Ok(diff(&old.recipe, &new.recipe))
    }

    /// The control recipe a batch ran with.
    pub async fn control_recipe(&self, batch: &LotId) -> Result<ControlRecipe, MesError> {
        self.store.control_recipe(batch).await?.ok_or_else(|| {
            StoreError::NotFound(format!("a control recipe for batch {batch}")).into()
        })
    }

    /// Makes the released recipe for the unit's line and the batch's
    /// chemistry the batch's control recipe: applies the operator's
    /// adjustments (inside the parameters' limits), refuses unless the unit
    /// is Idle, writes every tagged parameter through `writer` (converted to
    /// the tag's engineering unit), reads them all back, and stores the
    /// control recipe. Every check runs before the first write.
    #[tracing::instrument(skip(self, writer, io, actor, request), fields(user = %actor.user, unit = %request.unit, lot = %request.batch))]
    pub async fn download(
        &self,
        writer: &GuardedWriter,
        io: &dyn TagIo,
        actor: &Actor,
        request: DownloadRequest,
    ) -> Result<ControlRecipe, MesError> {
        let target = format!("{} batch {}", request.unit, request.batch);
        match self.try_download(writer, io, actor, &request).await {
            Ok(c) => Ok(c),
            Err(e) => {
                if !matches!(e, MesError::Store(StoreError::Unavailable(_))) {
                    self.refused(actor, "recipe.download.refused", &target, &e.to_string())
                        .await?;
                }
                Err(e)
            }
        }
    }

    async fn try_download(
        &self,
        writer: &GuardedWriter,
        io: &dyn TagIo,
        actor: &Actor,
        request: &DownloadRequest,
    ) -> Result<ControlRecipe, MesError> {
        actor
            .role
            .authorise(Action::Operate)
            .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        let unit = request.unit.trim_end_matches('/');
        let line = unit
            .split('/')
            .next()
            .and_then(|l| Line::parse(l).ok())
            .ok_or_else(|| {
                MesError::NotAllowed(format!(
                    "unit {unit}: its path must start with the line (Discharge, Mechanical or Hydromet)"
                ))
            })?;
        let key = RecipeKey {
            line,
            chemistry: request.chemistry,
        };
        let catalogue = self
            .catalogue(line)
            .ok_or_else(|| MesError::NotAllowed(format!("no equipment catalogue for {line}")))?;
        let master = self.released(key).await.map_err(|e| match e {
            MesError::Store(StoreError::NotFound(_)) => MesError::NotAllowed(format!(
                "no released recipe for {key}: a batch runs only on a released recipe"
            )),
            other => other,
        })?;

        let mut recipe = master.recipe.clone();
        let mut adjustments = Vec::new();
        for (name, value, reason) in &request.adjustments {
            if reason.trim().is_empty() {
                return Err(MesError::NotAllowed(format!(
                    "the adjustment of {name} needs a reason"
                )));
            }
            let from = recipe.parameter(name).map(|p| p.value()).ok_or_else(|| {
                MesError::NotAllowed(format!("recipe {key} has no parameter {name}"))
            })?;
            recipe = recipe.adjusted(name, *value)?;
            adjustments.push(Adjustment {
                parameter: ParamName::parse(name)?,
                from,
                to: *value,
                reason: reason.trim().to_string(),
            });
        }

        // The plan: every tagged parameter, converted to its tag's unit.
        let infos = io.catalogue();
        let mut plan: Vec<(TagName, f64, String)> = Vec::new();
        for (_, p) in recipe.parameters() {
            let Some(cap) = catalogue.capability(p.name().as_str()) else {
                continue;
            };
            let Some(tag) = cap.tag_for(unit) else {
                continue;
            };
            let tag = tag?;
            let info = infos.iter().find(|i| i.name == tag).ok_or_else(|| {
                MesError::NotAllowed(format!(
                    "parameter {} is written to {tag}, which the plant does not have",
                    p.name()
                ))
            })?;
            let tag_unit = Unit::parse(&info.unit)
                .map_err(|e| MesError::NotAllowed(format!("tag {tag}: engineering unit: {e}")))?;
            let v = p.value().to(tag_unit).map_err(|e| {
                MesError::NotAllowed(format!("parameter {} to tag {tag}: {e}", p.name()))
            })?;
            plan.push((tag, v.value(), p.name().to_string()));
        }

        let state_tag = TagName::parse(&format!("{unit}/State"))?;
        let state = io
            .read(std::slice::from_ref(&state_tag))
            .await
            .pop()
            .and_then(|r| r.good_value())
            .and_then(|v| UnitState::from_code(v.as_f64() as u16));
        match state {
            Some(UnitState::Idle) => {}
            Some(s) => {
                return Err(MesError::NotAllowed(format!(
                    "download refused: {unit} is {s}; a recipe is downloaded only to an Idle unit"
                )));
            }
            None => {
                return Err(MesError::NotAllowed(format!(
                    "download refused: the state of {unit} is unknown (no good value of {state_tag})"
                )));
            }
        }

        for (tag, value, param) in &plan {
            let reason = format!(
                "recipe {key} {} for batch {}: {param}",
                master.version, request.batch
            );
            writer
                .write(actor, tag, TagValue::Float(*value), &reason)
                .await?;
        }
        let tags: Vec<TagName> = plan.iter().map(|(t, _, _)| t.clone()).collect();
        let readings = io.read(&tags).await;
        for ((tag, want, param), r) in plan.iter().zip(&readings) {
            let got = r.good_value().map(TagValue::as_f64);
            let ok =
                got.is_some_and(|g| (g - want).abs() <= READBACK_REL_TOL * want.abs().max(1.0));
            if !ok {
                return Err(MesError::Plant(format!(
                    "verification failed: {tag} ({param}) holds {} after writing {want}",
                    got.map_or_else(|| r.quality.to_string(), |g| g.to_string())
                )));
            }
        }

        let control = ControlRecipe {
            batch: request.batch.clone(),
            unit: unit.to_string(),
            version: master.version,
            recipe,
            adjustments,
            downloaded_by: actor.user.clone(),
            downloaded_at: now(),
        };
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "recipe.download".into(),
            target: format!("{unit} batch {}", request.batch),
            old: None,
            new: Some(format!(
                "{key} {}: {} setpoints written and verified{}",
                master.version,
                plan.len(),
                control
                    .adjustments
                    .iter()
                    .map(|a| format!(
                        "; {} adjusted {} -> {} ({})",
                        a.parameter, a.from, a.to, a.reason
                    ))
                    .collect::<String>()
            )),
            reason: "control recipe of the batch".into(),
        };
        self.store.record_control_recipe(&control, audit).await?;
        Ok(control)
    }

    async fn authorise(
        &self,
        actor: &Actor,
        action: Action,
        audit_action: &str,
        target: &str,
    ) -> Result<(), MesError> {
        if let Err(e) = actor.role.authorise(action) {
            self.refused(
                actor,
                &format!("{audit_action}.refused"),
                target,
                &e.to_string(),
            )
            .await?;
            return Err(MesError::NotAllowed(e.to_string()));
        }
        Ok(())
    }

    async fn refused(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        why: &str,
    ) -> Result<(), MesError> {
        self.store
            .append(AuditEvent {
                actor: actor.user.clone(),
                action: action.into(),
                target: target.into(),
                old: None,
                new: None,
                reason: why.into(),
            })
            .await?;
        Ok(())
    }
}

/// Now, to the microsecond the store keeps, so a record reads back equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn reason_or(reason: &str, default: &str) -> String {
    if reason.trim().is_empty() {
        default.to_string()
    } else {
        reason.trim().to_string()
    }
}

/// A one-line account of changes for the audit trail.
fn summarise(changes: &[ParamChange]) -> String {
    if changes.is_empty() {
        return "no parameter changed".into();
    }
    let shown: Vec<String> = changes.iter().take(10).map(ToString::to_string).collect();
    let more = changes.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}
