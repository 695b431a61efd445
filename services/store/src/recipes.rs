//! Master recipe versions, their life cycle, and the control recipes of
//! batches: the [`RecipeStore`] port.
//!
//! A version is a row of `recipe_versions` keyed by line, chemistry and
//! version number; its parameters (`recipe_parameters`) and signatures
//! (`recipe_signatures`) are child rows kept in order by an ordinal. A
//! phase is not a row of its own: it is the run of consecutive parameters
//! that share a phase path, so a phase without parameters is not kept. A
//! control recipe (`control_recipes`) keeps its own copy of the adjusted
//! parameters (`control_recipe_parameters`) and the operator's adjustments
//! (`control_recipe_adjustments`).
//!
//! Every write checks the stored state inside its audited write
//! transaction, which holds the audit lock, so writers are serialised: of
//! two people moving one version from the same status, exactly one
//! succeeds and the other gets a [`StoreError::Conflict`] naming the status
//! the version has by then. Releasing a version supersedes the key's
//! previously released one in the same transaction, and a partial unique
//! index keeps at most one released version per key whatever the code does.
//!
//! Reads run in one read-only transaction (repeatable read on PostgreSQL),
//! so a version and its child rows come from one moment. Rows are rebuilt
//! through the domain's constructors; one that no longer satisfies them is
//! [`StoreError::Corrupt`] naming the table and key.

use crate::db::{Backend, Db, WriteTx, db_error, micros, time_from_micros};
use crate::rows::{corrupt, get};
use async_trait::async_trait;
use remine_domain::ports::{RecipeStore, StoreError};
use remine_domain::recipe::lifecycle::{RecipeStatus, SignatureMeaning};
use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{
    Adjustment, ControlRecipe, Line, ParamName, Parameter, Phase, PhasePath, Recipe, RecipeKey,
    RecipeRecord, RecipeVersion, Signature,
};
use remine_domain::{AuditEvent, Chemistry, LotId, Username};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::HashMap;
use std::fmt;

/// The stored key of a version: line name, chemistry name, version number.
type RowKey = (String, String, i64);

#[async_trait]
impl RecipeStore for Db {
    #[tracing::instrument(skip_all, fields(recipe = %record.key(), version = %record.version))]
    async fn create_recipe_version(
        &self,
        record: &RecipeRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = create_in(&mut w, record).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(recipe = %key, version = %version))]
    async fn update_recipe_draft(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
        recipe: &Recipe,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = update_draft_in(&mut w, key, version, recipe).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(recipe = %key, version = %version, from = %from, to = %to))]
    async fn transition_recipe(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
        from: RecipeStatus,
        to: RecipeStatus,
        signature: &Signature,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = transition_in(&mut w, key, version, from, to, signature).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(recipe = %key, version = %version))]
    async fn recipe_version(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
    ) -> Result<Option<RecipeRecord>, StoreError> {
        let found = self.read_versions(Filter::Version(key, version)).await?;
        Ok(found.into_iter().next())
    }

    #[tracing::instrument(skip_all, fields(recipe = ?key.map(|k| k.to_string())))]
    async fn recipe_versions(
        &self,
        key: Option<RecipeKey>,
    ) -> Result<Vec<RecipeRecord>, StoreError> {
        let filter = key.map_or(Filter::All, Filter::Key);
        self.read_versions(filter).await
    }

    #[tracing::instrument(skip_all, fields(recipe = %key))]
    async fn released_recipe(&self, key: RecipeKey) -> Result<Option<RecipeRecord>, StoreError> {
        let found = self.read_versions(Filter::Released(key)).await?;
        Ok(found.into_iter().next())
    }

    #[tracing::instrument(skip_all, fields(batch = %control.batch, recipe = %control.recipe.key(), version = %control.version))]
    async fn record_control_recipe(
        &self,
        control: &ControlRecipe,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = record_control_in(&mut w, control).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(batch = %batch))]
    async fn control_recipe(&self, batch: &LotId) -> Result<Option<ControlRecipe>, StoreError> {
        let mut tx = self.begin_read().await?;
        let found = read_control(&mut tx, batch).await;
        end_read(tx).await;
        found
    }
}

/// Which versions a read selects.
#[derive(Debug, Clone, Copy)]
enum Filter {
    All,
    Key(RecipeKey),
    Version(RecipeKey, RecipeVersion),
    Released(RecipeKey),
}

impl Filter {
    /// The WHERE clause on `recipe_versions v`, with `$1`.. placeholders.
    fn clause(self) -> &'static str {
        match self {
            Filter::All => "",
            Filter::Key(_) => "WHERE v.line = $1 AND v.chemistry = $2",
            Filter::Version(..) => "WHERE v.line = $1 AND v.chemistry = $2 AND v.version = $3",
            Filter::Released(_) => {
                "WHERE v.line = $1 AND v.chemistry = $2 AND v.status = 'released'"
            }
        }
    }

    fn bind(self, q: Query<'_, Any, AnyArguments>) -> Query<'_, Any, AnyArguments> {
        match self {
            Filter::All => q,
            Filter::Key(k) | Filter::Released(k) => q.bind(k.line.name()).bind(k.chemistry.name()),
            Filter::Version(k, v) => q
                .bind(k.line.name())
                .bind(k.chemistry.name())
                .bind(number(v)),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => f.write_str("every recipe version"),
            Filter::Key(k) => write!(f, "the versions of recipe {k}"),
            Filter::Version(k, v) => write!(f, "recipe {k} {v}"),
            Filter::Released(k) => write!(f, "the released version of recipe {k}"),
        }
    }
}

impl Db {
    /// A transaction that sees one moment of the database: repeatable read
    /// on PostgreSQL; on SQLite (write-ahead log) every transaction does.
    async fn begin_read(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let begin = match self.backend() {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        self.pool()
            .begin_with(begin)
            .await
            .map_err(db_error("beginning a read transaction"))
    }

    /// The versions `filter` selects, by key then version.
    async fn read_versions(&self, filter: Filter) -> Result<Vec<RecipeRecord>, StoreError> {
        let mut tx = self.begin_read().await?;
        let found = read_versions_in(&mut tx, filter).await;
        end_read(tx).await;
        found
    }
}

/// Ends a read transaction; a failure only means the connection drops it.
async fn end_read(tx: Transaction<'static, Any>) {
    if let Err(e) = tx.commit().await {
        tracing::warn!(error = %e, "ending a read transaction failed");
    }
}

async fn read_versions_in(
    conn: &mut AnyConnection,
    filter: Filter,
) -> Result<Vec<RecipeRecord>, StoreError> {
    let clause = filter.clause();
    let versions = filter
        .bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT v.line, v.chemistry, v.version, v.status, v.description, v.created_by, \
             v.created_at_us FROM recipe_versions v {clause}"
        ))))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(format!("reading {filter}")))?;
    if versions.is_empty() {
        return Ok(vec![]);
    }
    let join = "JOIN recipe_versions v \
                ON v.line = c.line AND v.chemistry = c.chemistry AND v.version = c.version";
    let parameters = filter
        .bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.line, c.chemistry, c.version, c.ordinal, c.unit_procedure, c.operation, \
             c.phase, c.name, c.value, c.unit, c.min_value, c.max_value \
             FROM recipe_parameters c {join} {clause} ORDER BY c.ordinal"
        ))))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(format!("reading the parameters of {filter}")))?;
    let signatures = filter
        .bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.line, c.chemistry, c.version, c.ordinal, c.user_name, c.meaning, c.at_us, \
             c.reason FROM recipe_signatures c {join} {clause} ORDER BY c.ordinal"
        ))))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(format!("reading the signatures of {filter}")))?;
    let parameters = by_version(parameters, "recipe_parameters")?;
    let signatures = by_version(signatures, "recipe_signatures")?;
    let mut records = versions
        .iter()
        .map(|row| {
            let key = row_key(row, &"recipe_versions")?;
            let none = [];
            let params = parameters.get(&key).map_or(&none[..], Vec::as_slice);
            let sigs = signatures.get(&key).map_or(&none[..], Vec::as_slice);
            record_from_rows(row, &key, params, sigs)
        })
        .collect::<Result<Vec<_>, _>>()?;
    records.sort_by_key(|r| (r.key(), r.version));
    Ok(records)
}

/// Child rows grouped by the version they belong to, in query order.
fn by_version(rows: Vec<AnyRow>, table: &str) -> Result<HashMap<RowKey, Vec<AnyRow>>, StoreError> {
    let mut out: HashMap<RowKey, Vec<AnyRow>> = HashMap::new();
    for row in rows {
        let key = row_key(&row, &table)?;
        out.entry(key).or_default().push(row);
    }
    Ok(out)
}

fn row_key(row: &AnyRow, table: &dyn fmt::Display) -> Result<RowKey, StoreError> {
    Ok((
        get(row, "line", table)?,
        get(row, "chemistry", table)?,
        get(row, "version", table)?,
    ))
}

/// How a stored key reads in messages: `hydromet/NMC811 v2`.
fn show(key: &RowKey) -> String {
    format!("{}/{} v{}", key.0, key.1, key.2)
}

fn record_from_rows(
    row: &AnyRow,
    key: &RowKey,
    parameters: &[AnyRow],
    signatures: &[AnyRow],
) -> Result<RecipeRecord, StoreError> {
    let what = format!("recipe_versions {}", show(key));
    let what: &dyn fmt::Display = &what;
    // The version row's own columns first, so its faults are named as its.
    let recipe_key = recipe_key(&key.0, &key.1, what)?;
    let version = version_of(key.2, what)?;
    let status: String = get(row, "status", what)?;
    let status = RecipeStatus::parse(&status).map_err(|e| corrupt(what, e))?;
    let description: String = get(row, "description", what)?;
    let created_by: String = get(row, "created_by", what)?;
    let created_by = Username::parse(&created_by).map_err(|e| corrupt(what, e))?;
    let created_at = time_from_micros(
        get(row, "created_at_us", what)?,
        &format!("{what} created_at_us"),
    )?;
    let phases = phases_from_rows(parameters, &format!("recipe_parameters {}", show(key)))?;
    let signatures = signatures
        .iter()
        .map(|s| signature_from_row(s, key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecipeRecord {
        version,
        status,
        recipe: Recipe::new(recipe_key, &description, phases).map_err(|e| corrupt(what, e))?,
        created_by,
        created_at,
        signatures,
    })
}

fn signature_from_row(row: &AnyRow, key: &RowKey) -> Result<Signature, StoreError> {
    let ordinal: i64 = get(row, "ordinal", &format!("recipe_signatures {}", show(key)))?;
    let what = format!("recipe_signatures {} #{ordinal}", show(key));
    let what: &dyn fmt::Display = &what;
    let user: String = get(row, "user_name", what)?;
    let meaning: String = get(row, "meaning", what)?;
    Ok(Signature {
        user: Username::parse(&user).map_err(|e| corrupt(what, e))?,
        meaning: SignatureMeaning::parse(&meaning).map_err(|e| corrupt(what, e))?,
        at: time_from_micros(get(row, "at_us", what)?, &format!("{what} at_us"))?,
        reason: get(row, "reason", what)?,
    })
}

/// Phases from parameter rows in ordinal order: consecutive rows with one
/// phase path make one phase. `what` names the table and owner.
fn phases_from_rows(rows: &[AnyRow], what: &str) -> Result<Vec<Phase>, StoreError> {
    let mut phases: Vec<Phase> = vec![];
    for row in rows {
        let ordinal: i64 = get(row, "ordinal", &what)?;
        let at = format!("{what} #{ordinal}");
        let at: &dyn fmt::Display = &at;
        let name = |column: &str| -> Result<ParamName, StoreError> {
            let text: String = get(row, column, at)?;
            ParamName::parse(&text).map_err(|e| corrupt(at, e))
        };
        let path = PhasePath {
            unit_procedure: name("unit_procedure")?,
            operation: name("operation")?,
            phase: name("phase")?,
        };
        let symbol: String = get(row, "unit", at)?;
        let unit = Unit::parse(&symbol).map_err(|e| corrupt(at, e))?;
        let measure = |column: &str| -> Result<Measure, StoreError> {
            Measure::new(get(row, column, at)?, unit).map_err(|e| corrupt(at, e))
        };
        let parameter = Parameter::new(
            name("name")?,
            measure("value")?,
            measure("min_value")?,
            measure("max_value")?,
        )
        .map_err(|e| corrupt(at, e))?;
        match phases.last_mut() {
            Some(last) if last.path == path => last.parameters.push(parameter),
            _ => phases.push(Phase {
                path,
                parameters: vec![parameter],
            }),
        }
    }
    Ok(phases)
}

fn recipe_key(
    line: &str,
    chemistry: &str,
    what: &dyn fmt::Display,
) -> Result<RecipeKey, StoreError> {
    Ok(RecipeKey {
        line: Line::parse(line).map_err(|e| corrupt(what, e))?,
        chemistry: chemistry
            .parse::<Chemistry>()
            .map_err(|e| corrupt(what, e))?,
    })
}

fn version_of(n: i64, what: &dyn fmt::Display) -> Result<RecipeVersion, StoreError> {
    let n = u32::try_from(n)
        .map_err(|_| StoreError::Corrupt(format!("{what}: version {n} is out of range")))?;
    RecipeVersion::new(n).map_err(|e| corrupt(what, e))
}

/// The stored form of a version number.
fn number(v: RecipeVersion) -> i64 {
    i64::from(v.get())
}

/// The stored status of a version, or `None` when it does not exist.
async fn stored_status(
    conn: &mut AnyConnection,
    key: RecipeKey,
    version: RecipeVersion,
) -> Result<Option<RecipeStatus>, StoreError> {
    let row = sqlx::query(
        "SELECT status FROM recipe_versions WHERE line = $1 AND chemistry = $2 AND version = $3",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error(format!(
        "reading the status of recipe {key} {version}"
    )))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let what = format!("recipe_versions {key} {version}");
    let status: String = get(&row, "status", &what)?;
    RecipeStatus::parse(&status)
        .map(Some)
        .map_err(|e| corrupt(&what, e))
}

async fn create_in(w: &mut WriteTx, record: &RecipeRecord) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    let key = record.key();
    let version = record.version;
    if record.status != RecipeStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "recipe {key} {version} is given as {}; a new version is stored as a draft",
            record.status
        )));
    }
    let highest = sqlx::query(
        "SELECT MAX(version) AS highest FROM recipe_versions WHERE line = $1 AND chemistry = $2",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error(format!("reading the versions of recipe {key}")))?;
    let highest: Option<i64> = get(&highest, "highest", &format!("recipe_versions {key}"))?;
    let next = highest.unwrap_or(0) + 1;
    if number(version) != next {
        let stored = highest.map_or("none is stored".to_string(), |h| {
            format!("the highest stored is v{h}")
        });
        return Err(StoreError::Conflict(format!(
            "recipe {key}: cannot create {version}, the next version is v{next} ({stored})"
        )));
    }
    let context = || format!("recording recipe {key} {version}");
    sqlx::query(
        "INSERT INTO recipe_versions (line, chemistry, version, status, description, created_by, \
         created_at_us, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .bind(record.status.name())
    .bind(record.recipe.description())
    .bind(record.created_by.as_str())
    .bind(micros(record.created_at))
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    insert_recipe_parameters(conn, key, version, &record.recipe).await?;
    for (ordinal, signature) in (0_i64..).zip(&record.signatures) {
        insert_signature(conn, key, version, ordinal, signature, seq).await?;
    }
    Ok(())
}

async fn update_draft_in(
    w: &mut WriteTx,
    key: RecipeKey,
    version: RecipeVersion,
    recipe: &Recipe,
) -> Result<(), StoreError> {
    let conn = w.conn();
    if recipe.key() != key {
        return Err(StoreError::Conflict(format!(
            "the recipe given for {key} {version} is a recipe for {}",
            recipe.key()
        )));
    }
    match stored_status(conn, key, version).await? {
        None => return Err(StoreError::NotFound(format!("recipe {key} {version}"))),
        Some(status) if !status.is_editable() => {
            return Err(StoreError::Conflict(format!(
                "recipe {key} {version} is {status}; only a draft may be edited"
            )));
        }
        Some(_) => {}
    }
    let context = || format!("replacing the draft recipe {key} {version}");
    sqlx::query(
        "UPDATE recipe_versions SET description = $4 \
         WHERE line = $1 AND chemistry = $2 AND version = $3",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .bind(recipe.description())
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    sqlx::query(
        "DELETE FROM recipe_parameters WHERE line = $1 AND chemistry = $2 AND version = $3",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    insert_recipe_parameters(conn, key, version, recipe).await
}

async fn transition_in(
    w: &mut WriteTx,
    key: RecipeKey,
    version: RecipeVersion,
    from: RecipeStatus,
    to: RecipeStatus,
    signature: &Signature,
) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    match stored_status(conn, key, version).await? {
        None => return Err(StoreError::NotFound(format!("recipe {key} {version}"))),
        Some(actual) if actual != from => {
            return Err(StoreError::Conflict(format!(
                "recipe {key} {version} is {actual}, not {from}; it cannot move to {to}"
            )));
        }
        Some(_) => {}
    }
    let context = || format!("moving recipe {key} {version} from {from} to {to}");
    if to == RecipeStatus::Released {
        sqlx::query(
            "UPDATE recipe_versions SET status = $4 \
             WHERE line = $1 AND chemistry = $2 AND version <> $3 AND status = $5",
        )
        .bind(key.line.name())
        .bind(key.chemistry.name())
        .bind(number(version))
        .bind(RecipeStatus::Superseded.name())
        .bind(RecipeStatus::Released.name())
        .execute(&mut *conn)
        .await
        .map_err(db_error(format!(
            "superseding the released version of recipe {key}"
        )))?;
    }
    sqlx::query(
        "UPDATE recipe_versions SET status = $4 \
         WHERE line = $1 AND chemistry = $2 AND version = $3",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .bind(to.name())
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    let last = sqlx::query(
        "SELECT MAX(ordinal) AS last FROM recipe_signatures \
         WHERE line = $1 AND chemistry = $2 AND version = $3",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    let last: Option<i64> = get(&last, "last", &format!("recipe_signatures {key} {version}"))?;
    let ordinal = last.map_or(0, |n| n + 1);
    insert_signature(conn, key, version, ordinal, signature, seq).await
}

async fn record_control_in(w: &mut WriteTx, control: &ControlRecipe) -> Result<(), StoreError> {
    let seq = w.seq();
    let conn = w.conn();
    let batch = control.batch.as_str();
    let key = control.recipe.key();
    let version = control.version;
    let existing =
        sqlx::query("SELECT line, chemistry, version FROM control_recipes WHERE batch = $1")
            .bind(batch)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error(format!(
                "looking up the control recipe of batch {batch}"
            )))?;
    if let Some(row) = existing {
        let stored = row_key(&row, &format!("control_recipes {batch}"))?;
        return Err(StoreError::Conflict(format!(
            "batch {batch} already has a control recipe (from recipe {})",
            show(&stored)
        )));
    }
    if stored_status(conn, key, version).await?.is_none() {
        return Err(StoreError::NotFound(format!(
            "recipe {key} {version} (the master of batch {batch}'s control recipe)"
        )));
    }
    let context = || format!("recording the control recipe of batch {batch}");
    sqlx::query(
        "INSERT INTO control_recipes (batch, unit, line, chemistry, version, description, \
         downloaded_by, downloaded_at_us, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(batch)
    .bind(control.unit.as_str())
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .bind(control.recipe.description())
    .bind(control.downloaded_by.as_str())
    .bind(micros(control.downloaded_at))
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(context()))?;
    for (ordinal, (path, p)) in (0_i64..).zip(control.recipe.parameters()) {
        let q = sqlx::query(
            "INSERT INTO control_recipe_parameters (batch, ordinal, unit_procedure, operation, \
             phase, name, value, unit, min_value, max_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(batch)
        .bind(ordinal);
        bind_parameter(q, path, p)
            .execute(&mut *conn)
            .await
            .map_err(db_error(format!("{} (parameter {})", context(), p.name())))?;
    }
    for (ordinal, a) in (0_i64..).zip(&control.adjustments) {
        sqlx::query(
            "INSERT INTO control_recipe_adjustments (batch, ordinal, parameter, from_value, \
             from_unit, to_value, to_unit, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(batch)
        .bind(ordinal)
        .bind(a.parameter.as_str())
        .bind(a.from.value())
        .bind(a.from.unit().symbol())
        .bind(a.to.value())
        .bind(a.to.unit().symbol())
        .bind(a.reason.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_error(format!(
            "{} (adjustment of {})",
            context(),
            a.parameter
        )))?;
    }
    Ok(())
}

async fn read_control(
    conn: &mut AnyConnection,
    batch: &LotId,
) -> Result<Option<ControlRecipe>, StoreError> {
    let id = batch.as_str();
    let Some(row) = sqlx::query(
        "SELECT batch, unit, line, chemistry, version, description, downloaded_by, \
         downloaded_at_us FROM control_recipes WHERE batch = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error(format!(
        "reading the control recipe of batch {id}"
    )))?
    else {
        return Ok(None);
    };
    let parameters = sqlx::query(
        "SELECT ordinal, unit_procedure, operation, phase, name, value, unit, min_value, max_value \
         FROM control_recipe_parameters WHERE batch = $1 ORDER BY ordinal",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error(format!(
        "reading the control recipe parameters of batch {id}"
    )))?;
    let adjustments = sqlx::query(
        "SELECT ordinal, parameter, from_value, from_unit, to_value, to_unit, reason \
         FROM control_recipe_adjustments WHERE batch = $1 ORDER BY ordinal",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error(format!("reading the adjustments of batch {id}")))?;
    let what = format!("control_recipes {id}");
    let what: &dyn fmt::Display = &what;
    let line: String = get(&row, "line", what)?;
    let chemistry: String = get(&row, "chemistry", what)?;
    let description: String = get(&row, "description", what)?;
    let downloaded_by: String = get(&row, "downloaded_by", what)?;
    let phases = phases_from_rows(&parameters, &format!("control_recipe_parameters {id}"))?;
    let recipe = Recipe::new(recipe_key(&line, &chemistry, what)?, &description, phases)
        .map_err(|e| corrupt(what, e))?;
    Ok(Some(ControlRecipe {
        batch: batch.clone(),
        unit: get(&row, "unit", what)?,
        version: version_of(get(&row, "version", what)?, what)?,
        recipe,
        adjustments: adjustments
            .iter()
            .map(|a| adjustment_from_row(a, id))
            .collect::<Result<Vec<_>, _>>()?,
        downloaded_by: Username::parse(&downloaded_by).map_err(|e| corrupt(what, e))?,
        downloaded_at: time_from_micros(
            get(&row, "downloaded_at_us", what)?,
            &format!("{what} downloaded_at_us"),
        )?,
    }))
}

fn adjustment_from_row(row: &AnyRow, batch: &str) -> Result<Adjustment, StoreError> {
    let ordinal: i64 = get(
        row,
        "ordinal",
        &format!("control_recipe_adjustments {batch}"),
    )?;
    let what = format!("control_recipe_adjustments {batch} #{ordinal}");
    let what: &dyn fmt::Display = &what;
    let measure = |value: &str, unit: &str| -> Result<Measure, StoreError> {
        let symbol: String = get(row, unit, what)?;
        let unit = Unit::parse(&symbol).map_err(|e| corrupt(what, e))?;
        Measure::new(get(row, value, what)?, unit).map_err(|e| corrupt(what, e))
    };
    let parameter: String = get(row, "parameter", what)?;
    Ok(Adjustment {
        parameter: ParamName::parse(&parameter).map_err(|e| corrupt(what, e))?,
        from: measure("from_value", "from_unit")?,
        to: measure("to_value", "to_unit")?,
        reason: get(row, "reason", what)?,
    })
}

async fn insert_recipe_parameters(
    conn: &mut AnyConnection,
    key: RecipeKey,
    version: RecipeVersion,
    recipe: &Recipe,
) -> Result<(), StoreError> {
    for (ordinal, (path, p)) in (0_i64..).zip(recipe.parameters()) {
        let q = sqlx::query(
            "INSERT INTO recipe_parameters (line, chemistry, version, ordinal, unit_procedure, \
             operation, phase, name, value, unit, min_value, max_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(key.line.name())
        .bind(key.chemistry.name())
        .bind(number(version))
        .bind(ordinal);
        bind_parameter(q, path, p)
            .execute(&mut *conn)
            .await
            .map_err(db_error(format!(
                "recording parameter {} of recipe {key} {version}",
                p.name()
            )))?;
    }
    Ok(())
}

/// Binds the phase path and parameter columns, in the order
/// unit_procedure, operation, phase, name, value, unit, min, max.
fn bind_parameter<'q>(
    q: Query<'q, Any, AnyArguments>,
    path: &'q PhasePath,
    p: &'q Parameter,
) -> Query<'q, Any, AnyArguments> {
    q.bind(path.unit_procedure.as_str())
        .bind(path.operation.as_str())
        .bind(path.phase.as_str())
        .bind(p.name().as_str())
        .bind(p.value().value())
        .bind(p.value().unit().symbol())
        .bind(p.min().value())
        .bind(p.max().value())
}

async fn insert_signature(
    conn: &mut AnyConnection,
    key: RecipeKey,
    version: RecipeVersion,
    ordinal: i64,
    s: &Signature,
    seq: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO recipe_signatures (line, chemistry, version, ordinal, user_name, meaning, \
         at_us, reason, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(key.line.name())
    .bind(key.chemistry.name())
    .bind(number(version))
    .bind(ordinal)
    .bind(s.user.as_str())
    .bind(s.meaning.name())
    .bind(micros(s.at))
    .bind(s.reason.as_str())
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!(
        "recording the {} signature of {} on recipe {key} {version}",
        s.meaning.name(),
        s.user
    )))?;
    Ok(())
}
