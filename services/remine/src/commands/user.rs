//! `remine user add NAME --role R`: the password comes from stdin or a prompt.

use super::PLANT_DB_FILE;
use crate::cli::DbArgs;
use crate::storage;
use anyhow::{Context, bail};
use remine_domain::{Role, Username};
use remine_mes::{Actor, Users};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn add(db: &DbArgs, name: &str, role: &str) -> anyhow::Result<ExitCode> {
    let name = Username::parse(name)?;
    let role = Role::parse(role)?;
    let password = read_password(&name)?;
    let store = storage::open(db, PLANT_DB_FILE).await?;
    let users = Users::new(Arc::new(store), chrono::Duration::hours(8));
    users.add(&Actor::system(), &name, role, &password).await?;
    println!("added user {name} with role {role}");
    Ok(ExitCode::SUCCESS)
}

pub async fn token(
    db: &DbArgs,
    name: &str,
    valid_for: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let name = Username::parse(name)?;
    let ttl = chrono::Duration::from_std(valid_for)
        .map_err(|_| anyhow::anyhow!("--valid-for {valid_for:?} is too long"))?;
    let store = storage::open(db, PLANT_DB_FILE).await?;
    let users = Users::new(Arc::new(store), chrono::Duration::hours(8));
    let session = users.issue_token(&Actor::system(), &name, ttl).await?;
    println!("{}", session.token);
    eprintln!(
        "token for {name} ({}) valid until {}; send it as 'Authorization: Bearer <token>'",
        session.actor.role,
        session.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(ExitCode::SUCCESS)
}

fn read_password(name: &Username) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("again: ")
            .context("cannot read the password from the terminal")?;
        if first != again {
            bail!("the passwords do not match");
        }
        return Ok(first);
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    let password = text.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        bail!("no password on stdin (give it as the first line)");
    }
    Ok(password)
}
