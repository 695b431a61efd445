//! One module per subcommand.

mod audit;
mod demo;
mod passport;
mod recipe;
mod report;
mod serve;
mod sim;
mod synth;
mod trace;
mod user;

use crate::cli::{
    AuditCommand, Cli, Command, PassportCommand, RecipeCommand, SimCommand, UserCommand,
};
use std::process::ExitCode;

/// The database file `serve` and the admin commands use in --data.
pub const PLANT_DB_FILE: &str = "remine.db";
/// The historian's spool directory under the data directory: batches wait
/// here while the database is unavailable.
pub const HISTORIAN_SPOOL_DIR: &str = "historian-spool";

/// Writes `text` and a newline to standard output. A reader that went away
/// (`remine trace LOT | head`) ends the output quietly, not with a panic;
/// the command's work goes on and its exit code stands.
pub fn emit(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::User {
            command: UserCommand::Add { name, role },
            db,
        } => user::add(&db, &name, &role).await,
        Command::User {
            command: UserCommand::Token { name, valid_for },
            db,
        } => user::token(&db, &name, valid_for).await,
        Command::Check { config } => serve::check(&config),
        Command::Sim(args) => match args.command {
            None => sim::run(args.run).await,
            Some(SimCommand::Fault(fault)) => sim::fault(fault).await,
            Some(SimCommand::Faults { control }) => sim::faults(&control.url).await,
            Some(SimCommand::Clear { id, control }) => sim::clear(&control.url, id).await,
        },
        Command::Audit {
            command: AuditCommand::Verify,
            db,
        } => audit::verify(&db).await,
        Command::Passport {
            command: PassportCommand::Import { paths, country },
            db,
        } => passport::import(&db, &paths, country.as_deref()).await,
        Command::Recipe { command, db } => match command {
            RecipeCommand::Lint { dir } => recipe::lint(&dir),
            RecipeCommand::Diff { old, new } => recipe::diff(&old, &new),
            RecipeCommand::Import {
                file,
                author,
                reason,
            } => recipe::import(&db, &file, author.as_deref(), &reason).await,
        },
        Command::Synth(args) => synth::run(&args).await,
        Command::Trace(args) => trace::run(&args).await,
        Command::Report {
            command: crate::cli::ReportCommand::Recovery(args),
        } => report::recovery(&args).await,
    }
}
