//! The recipe routes: list, get, validate, create draft, edit, sign
//! (submit, approve, reject, release, obsolete), diff, the equipment
//! catalogue for the HMI editor, and the control recipe of a batch.
//!
//! A recipe travels as JSON with its phases and parameters, each parameter
//! with value, unit, min and max; the editor can ask `POST
//! /recipes/validate` for the findings of a recipe before saving it.

use crate::routes::{ApiJson, ApiQuery, AppState};
use crate::{ApiError, Authenticated};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use remine_domain::recipe::lifecycle::Transition;
use remine_domain::recipe::rules::{Capability, Finding};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{
    ControlRecipe, Line, ParamChange, ParamName, Parameter, Phase, PhasePath, Recipe, RecipeKey,
    RecipeRecord, RecipeVersion,
};
use remine_domain::{Action, Chemistry, LotId};
use remine_mes::DownloadRequest;
use serde::{Deserialize, Serialize};

/// The recipe routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/recipes", get(list).post(create))
        .route("/recipes/validate", post(validate))
        .route("/recipes/catalogue/{line}", get(catalogue))
        .route("/recipes/{line}/{chemistry}/diff", get(diff))
        .route("/recipes/{line}/{chemistry}/{version}", get(one).put(edit))
        .route(
            "/recipes/{line}/{chemistry}/{version}/{transition}",
            post(sign),
        )
        .route("/batches/{lot}/recipe", get(control).post(download))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterDto {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseDto {
    pub unit_procedure: String,
    pub operation: String,
    pub phase: String,
    pub parameters: Vec<ParameterDto>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipeDto {
    pub line: String,
    pub chemistry: String,
    #[serde(default)]
    pub description: String,
    pub phases: Vec<PhaseDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipeWrite {
    pub recipe: RecipeDto,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub password: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureDto {
    pub user: String,
    pub meaning: &'static str,
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDto {
    pub key: String,
    pub version: u32,
    pub status: &'static str,
    pub created_by: String,
    pub created_at: String,
    pub signatures: Vec<SignatureDto>,
    /// Present on single-version answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe: Option<RecipeDto>,
    /// The version's findings against today's equipment catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<FindingDto>>,
}

#[derive(Debug, Serialize)]
pub struct FindingDto {
    pub parameter: Option<String>,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeDto {
    pub parameter: String,
    /// "added", "removed" or "changed".
    pub change: &'static str,
    pub old: Option<ParameterDto>,
    pub new: Option<ParameterDto>,
    pub old_phase: Option<String>,
    pub new_phase: Option<String>,
    /// The line a person reads: "~ leach.dissolve.leach.leach_temperature: ...".
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityDto {
    pub name: String,
    pub unit: String,
    pub dimension: &'static str,
    pub min: f64,
    pub max: f64,
    pub requirement: &'static str,
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustmentDto {
    pub parameter: String,
    pub value: f64,
    pub unit: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownloadDto {
    pub unit: String,
    pub chemistry: String,
    #[serde(default)]
    pub adjustments: Vec<AdjustmentDto>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlRecipeDto {
    pub batch: String,
    pub unit: String,
    pub key: String,
    pub version: u32,
    pub recipe: RecipeDto,
    pub adjustments: Vec<AdjustedDto>,
    pub downloaded_by: String,
    pub downloaded_at: String,
}

#[derive(Debug, Serialize)]
pub struct AdjustedDto {
    pub parameter: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub line: Option<String>,
    pub chemistry: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

fn bad(e: impl ToString) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn measure(value: f64, unit: &str, what: &str) -> Result<Measure, ApiError> {
    let u = Unit::parse(unit).map_err(|e| bad(format!("{what}: {e}")))?;
    Measure::new(value, u).map_err(|e| bad(format!("{what}: {e}")))
}

fn key_of(line: &str, chemistry: &str) -> Result<RecipeKey, ApiError> {
    Ok(RecipeKey {
        line: Line::parse(line).map_err(bad)?,
        chemistry: chemistry.parse::<Chemistry>().map_err(bad)?,
    })
}

fn version_of(v: u32) -> Result<RecipeVersion, ApiError> {
    RecipeVersion::new(v).map_err(bad)
}

impl RecipeDto {
    /// Parses at the edge into a domain recipe; errors name the phase and parameter.
    fn to_domain(&self) -> Result<Recipe, ApiError> {
        let key = key_of(&self.line, &self.chemistry)?;
        let name =
            |s: &str, what: &str| ParamName::parse(s).map_err(|e| bad(format!("{what}: {e}")));
        let mut phases = Vec::new();
        for ph in &self.phases {
            let path = PhasePath {
                unit_procedure: name(&ph.unit_procedure, "unitProcedure")?,
                operation: name(&ph.operation, "operation")?,
                phase: name(&ph.phase, "phase")?,
            };
            let mut parameters = Vec::new();
            for p in &ph.parameters {
                let at = format!("phase {path}, parameter {}", p.name);
                parameters.push(
                    Parameter::new(
                        name(&p.name, &at)?,
                        measure(p.value, &p.unit, &at)?,
                        measure(p.min, &p.unit, &at)?,
                        measure(p.max, &p.unit, &at)?,
                    )
                    .map_err(|e| bad(format!("{at}: {e}")))?,
                );
            }
            phases.push(Phase { path, parameters });
        }
        Recipe::new(key, &self.description, phases).map_err(bad)
    }

    fn from_domain(r: &Recipe) -> RecipeDto {
        RecipeDto {
            line: r.key().line.name().into(),
            chemistry: r.key().chemistry.name().into(),
            description: r.description().into(),
            phases: r
                .phases()
                .iter()
                .map(|ph| PhaseDto {
                    unit_procedure: ph.path.unit_procedure.to_string(),
                    operation: ph.path.operation.to_string(),
                    phase: ph.path.phase.to_string(),
                    parameters: ph.parameters.iter().map(param_dto).collect(),
                })
                .collect(),
        }
    }
}

fn param_dto(p: &Parameter) -> ParameterDto {
    ParameterDto {
        name: p.name().to_string(),
        value: p.value().value(),
        unit: p.value().unit().symbol().into(),
        min: p.min().value(),
        max: p.max().value(),
    }
}

fn findings_dto(f: &[Finding]) -> Vec<FindingDto> {
    f.iter()
        .map(|f| FindingDto {
            parameter: f.parameter.as_ref().map(ToString::to_string),
            message: f.message.clone(),
        })
        .collect()
}

fn record_dto(r: &RecipeRecord, full: Option<Vec<Finding>>) -> RecordDto {
    RecordDto {
        key: r.key().to_string(),
        version: r.version.get(),
        status: r.status.name(),
        created_by: r.created_by.to_string(),
        created_at: crate::dto::time(r.created_at),
        signatures: r
            .signatures
            .iter()
            .map(|s| SignatureDto {
                user: s.user.to_string(),
                meaning: s.meaning.name(),
                at: crate::dto::time(s.at),
                reason: s.reason.clone(),
            })
            .collect(),
        recipe: full.as_ref().map(|_| RecipeDto::from_domain(&r.recipe)),
        findings: full.as_deref().map(findings_dto),
    }
}

fn change_dto(c: &ParamChange) -> ChangeDto {
    let (change, old, new, old_phase, new_phase) = match c {
        ParamChange::Added(path, p) => ("added", None, Some(param_dto(p)), None, Some(path)),
        ParamChange::Removed(path, p) => ("removed", Some(param_dto(p)), None, Some(path), None),
        ParamChange::Changed {
            old_path,
            old,
            new_path,
            new,
        } => (
            "changed",
            Some(param_dto(old)),
            Some(param_dto(new)),
            Some(old_path),
            Some(new_path),
        ),
    };
    ChangeDto {
        parameter: c.name().to_string(),
        change,
        old,
        new,
        old_phase: old_phase.map(ToString::to_string),
        new_phase: new_phase.map(ToString::to_string),
        text: c.to_string(),
    }
}

fn capability_dto(c: &Capability) -> CapabilityDto {
    CapabilityDto {
        name: c.name().to_string(),
        unit: c.min().unit().symbol().into(),
        dimension: c.dimension().name(),
        min: c.min().value(),
        max: c.max().value(),
        requirement: c.requirement().name(),
        tag: c.tag_template().map(str::to_string),
    }
}

fn control_dto(c: &ControlRecipe) -> ControlRecipeDto {
    ControlRecipeDto {
        batch: c.batch.to_string(),
        unit: c.unit.clone(),
        key: c.recipe.key().to_string(),
        version: c.version.get(),
        recipe: RecipeDto::from_domain(&c.recipe),
        adjustments: c
            .adjustments
            .iter()
            .map(|a| AdjustedDto {
                parameter: a.parameter.to_string(),
                from: a.from.to_string(),
                to: a.to.to_string(),
                reason: a.reason.clone(),
            })
            .collect(),
        downloaded_by: c.downloaded_by.to_string(),
        downloaded_at: crate::dto::time(c.downloaded_at),
    }
}

/// `GET /recipes[?line=&chemistry=]` (viewer): every version, newest
/// last per key, without content.
async fn list(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<RecordDto>>, ApiError> {
    auth.require(Action::View)?;
    let key = match (&q.line, &q.chemistry) {
        (Some(l), Some(c)) => Some(key_of(l, c)?),
        (None, Some(_)) => return Err(bad("a chemistry filter needs a line too")),
        _ => None,
    };
    let line = q
        .line
        .as_deref()
        .map(Line::parse)
        .transpose()
        .map_err(bad)?;
    let records = s.recipes.list(key).await?;
    Ok(Json(
        records
            .iter()
            .filter(|r| line.is_none_or(|l| r.key().line == l))
            .map(|r| record_dto(r, None))
            .collect(),
    ))
}

/// `GET /recipes/{line}/{chemistry}/{version}` (viewer): one version with
/// its content and findings.
async fn one(
    State(s): State<AppState>,
    auth: Authenticated,
    Path((line, chemistry, version)): Path<(String, String, u32)>,
) -> Result<Json<RecordDto>, ApiError> {
    auth.require(Action::View)?;
    let r = s
        .recipes
        .get(key_of(&line, &chemistry)?, version_of(version)?)
        .await?;
    let findings = s.recipes.validate(&r.recipe);
    Ok(Json(record_dto(&r, Some(findings))))
}

/// `POST /recipes/validate` (viewer): the findings of a recipe, not stored.
async fn validate(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiJson(dto): ApiJson<RecipeDto>,
) -> Result<Json<Vec<FindingDto>>, ApiError> {
    auth.require(Action::View)?;
    let recipe = dto.to_domain()?;
    Ok(Json(findings_dto(&s.recipes.validate(&recipe))))
}

/// `POST /recipes` (engineer): a new draft version.
async fn create(
    State(s): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<RecipeWrite>,
) -> Result<(StatusCode, Json<RecordDto>), ApiError> {
    let recipe = req.recipe.to_domain()?;
    let r = s
        .recipes
        .create_draft(&auth.actor, recipe, &req.reason)
        .await?;
    let findings = s.recipes.validate(&r.recipe);
    Ok((StatusCode::CREATED, Json(record_dto(&r, Some(findings)))))
}

/// `PUT /recipes/{line}/{chemistry}/{version}` (engineer): edits a draft.
async fn edit(
    State(s): State<AppState>,
    auth: Authenticated,
    Path((line, chemistry, version)): Path<(String, String, u32)>,
    ApiJson(req): ApiJson<RecipeWrite>,
) -> Result<Json<RecordDto>, ApiError> {
    let recipe = req.recipe.to_domain()?;
    let r = s
        .recipes
        .edit_draft(
            &auth.actor,
            key_of(&line, &chemistry)?,
            version_of(version)?,
            recipe,
            &req.reason,
        )
        .await?;
    let findings = s.recipes.validate(&r.recipe);
    Ok(Json(record_dto(&r, Some(findings))))
}

/// `POST /recipes/{line}/{chemistry}/{version}/{submit|approve|reject|release|obsolete}`:
/// an electronic signature (the body re-enters the password).
async fn sign(
    State(s): State<AppState>,
    auth: Authenticated,
    Path((line, chemistry, version, transition)): Path<(String, String, u32, String)>,
    ApiJson(req): ApiJson<SignRequest>,
) -> Result<Json<RecordDto>, ApiError> {
    let transition = match transition.as_str() {
        "submit" => Transition::Submit,
        "approve" => Transition::Approve,
        "reject" => Transition::Reject,
        "release" => Transition::Release,
        "obsolete" => Transition::MakeObsolete,
        other => {
            return Err(ApiError::NotFound(format!(
                "no recipe step '{other}': use submit, approve, reject, release or obsolete"
            )));
        }
    };
    let r = s
        .recipes
        .sign(
            &auth.actor,
            key_of(&line, &chemistry)?,
            version_of(version)?,
            transition,
            &req.password,
            &req.reason,
        )
        .await?;
    let findings = s.recipes.validate(&r.recipe);
    Ok(Json(record_dto(&r, Some(findings))))
}

/// `GET /recipes/{line}/{chemistry}/diff?from=A&to=B` (viewer).
async fn diff(
    State(s): State<AppState>,
    auth: Authenticated,
    Path((line, chemistry)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<Vec<ChangeDto>>, ApiError> {
    auth.require(Action::View)?;
    let changes = s
        .recipes
        .diff(
            key_of(&line, &chemistry)?,
            version_of(q.from)?,
            version_of(q.to)?,
        )
        .await?;
    Ok(Json(changes.iter().map(change_dto).collect()))
}

/// `GET /recipes/catalogue/{line}` (viewer): what the line's equipment
/// allows, for unit-aware inputs in the editor.
async fn catalogue(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(line): Path<String>,
) -> Result<Json<Vec<CapabilityDto>>, ApiError> {
    auth.require(Action::View)?;
    let line = Line::parse(&line).map_err(bad)?;
    let cat = s
        .recipes
        .catalogue(line)
        .ok_or_else(|| ApiError::NotFound(format!("no equipment catalogue for {line}")))?;
    Ok(Json(
        cat.capabilities().iter().map(capability_dto).collect(),
    ))
}

/// `POST /batches/{lot}/recipe` (operator): downloads the released recipe
/// to an Idle unit as the batch's control recipe.
async fn download(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(lot): Path<String>,
    ApiJson(req): ApiJson<DownloadDto>,
) -> Result<(StatusCode, Json<ControlRecipeDto>), ApiError> {
    let batch = LotId::parse(&lot).map_err(bad)?;
    let (Some(io), Some(writer)) = (s.plant.as_ref(), s.writer.as_ref()) else {
        return Err(ApiError::Unavailable("no plant is connected".into()));
    };
    let mut adjustments = Vec::new();
    for a in &req.adjustments {
        let what = format!("adjustment of {}", a.parameter);
        adjustments.push((
            a.parameter.clone(),
            measure(a.value, &a.unit, &what)?,
            a.reason.clone(),
        ));
    }
    let request = DownloadRequest {
        unit: req.unit.clone(),
        chemistry: req.chemistry.parse::<Chemistry>().map_err(bad)?,
        batch,
        adjustments,
    };
    let c = s
        .recipes
        .download(writer, io.as_ref(), &auth.actor, request)
        .await?;
    Ok((StatusCode::CREATED, Json(control_dto(&c))))
}

/// `GET /batches/{lot}/recipe` (viewer): the control recipe a batch ran with.
async fn control(
    State(s): State<AppState>,
    auth: Authenticated,
    Path(lot): Path<String>,
) -> Result<Json<ControlRecipeDto>, ApiError> {
    auth.require(Action::View)?;
    let batch = LotId::parse(&lot).map_err(bad)?;
    Ok(Json(control_dto(&s.recipes.control_recipe(&batch).await?)))
}
