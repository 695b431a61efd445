//! Users and their sessions: the [`UserStore`] port.
//!
//! Adding a user is an audited write. Sessions are not audited (a login is
//! not a change of the plant's records); they are stored under the hash of
//! their token, so a copy of the database does not hand out live sessions.

use crate::db::{Db, WriteTx, db_error, micros, time_from_micros};
use crate::rows::{corrupt, get};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{StoreError, UserRecord, UserStore};
use remine_domain::{AuditEvent, Role, Username};
use sqlx::any::AnyRow;

#[async_trait]
impl UserStore for Db {
    #[tracing::instrument(skip_all, fields(user = %user.name))]
    async fn add_user(&self, user: &UserRecord, audit: AuditEvent) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let outcome = add_user_in(&mut w, user).await;
        w.finish(outcome, audit).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(user = %name))]
    async fn user(&self, name: &Username) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query("SELECT name, role, password_hash, created_at_us FROM users WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error(format!("reading user {name}")))?
            .map(|row| user_from_row(&row))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(user = %user))]
    async fn create_session(
        &self,
        token_hash: &str,
        user: &Username,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.user(user).await?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, expires_at_us) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user.as_str())
        .bind(micros(expires_at))
        .execute(self.pool())
        .await
        .map_err(
            |e| match db_error(format!("creating a session for {user}"))(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "a session with this token hash already exists (user {user})"
                )),
                other => other,
            },
        )?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query(
            "SELECT u.name, u.role, u.password_hash, u.created_at_us \
             FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_hash = $1 AND s.expires_at_us > $2",
        )
        .bind(token_hash)
        .bind(micros(now))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error("looking up a session"))?
        .map(|row| user_from_row(&row))
        .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await
            .map_err(db_error("deleting a session"))?;
        Ok(())
    }
}

impl Db {
    /// Removes sessions that expired at or before `now`; returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at_us <= $1")
            .bind(micros(now))
            .execute(self.pool())
            .await
            .map_err(db_error("deleting expired sessions"))?;
        Ok(done.rows_affected())
    }
}

async fn add_user_in(w: &mut WriteTx, user: &UserRecord) -> Result<(), StoreError> {
    let conn = w.conn();
    let name = user.name.as_str();
    let existing = sqlx::query("SELECT 1 FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error(format!("looking up user {name}")))?;
    if existing.is_some() {
        return Err(StoreError::Conflict(format!("user {name} already exists")));
    }
    sqlx::query(
        "INSERT INTO users (name, role, password_hash, created_at_us) VALUES ($1, $2, $3, $4)",
    )
    .bind(name)
    .bind(user.role.name())
    .bind(user.password_hash.as_str())
    .bind(micros(user.created_at))
    .execute(&mut *conn)
    .await
    .map_err(db_error(format!("adding user {name}")))?;
    Ok(())
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let name: String = get(row, "name", &"users")?;
    let what = format!("users {name}");
    let what: &dyn std::fmt::Display = &what;
    let role: String = get(row, "role", what)?;
    Ok(UserRecord {
        name: Username::parse(&name).map_err(|e| corrupt(what, e))?,
        role: Role::parse(&role).map_err(|e| corrupt(what, e))?,
        password_hash: get(row, "password_hash", what)?,
        created_at: time_from_micros(
            get(row, "created_at_us", what)?,
            &format!("{what} created_at_us"),
        )?,
    })
}
