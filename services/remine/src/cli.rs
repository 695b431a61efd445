//! The command line: subcommands and their options.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "remine",
    version,
    about = "Process control and MES for lithium-ion battery recycling plants"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Data directory; the SQLite database lives here unless --db is given.
    #[arg(long, default_value = "remine-data", global = true)]
    pub data: PathBuf,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "REMINE_DB", global = true)]
    pub db: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the plant simulator, connect to it, run packs through every line
    /// to product lots, print recovery rates, and serve the HMI.
    Demo(DemoArgs),
    /// Serve the API and the HMI for a real plant, from a configuration file.
    Serve(ServeArgs),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check a plant configuration file and the tag maps it names, without
    /// connecting to anything.
    Check {
        /// The configuration file `serve` would use.
        config: PathBuf,
    },
    /// Battery passports.
    Passport {
        #[command(subcommand)]
        command: PassportCommand,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address of the HTTP server (API and HMI).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Simulated time runs this many times faster than wall time.
    #[arg(long, default_value_t = 60.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Stop after this long (e.g. 30s, 5m); without it, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Port of the simulated discharge line (Modbus TCP).
    #[arg(long, default_value_t = 5020)]
    pub discharge_port: u16,
    /// Port of the simulated mechanical line (Modbus TCP).
    #[arg(long, default_value_t = 5021)]
    pub mechanical_port: u16,
    /// Port of the simulated hydrometallurgy line (OPC UA).
    #[arg(long, default_value_t = 4855)]
    pub hydromet_port: u16,
    /// Seed of the simulator's noise and yields.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The plant configuration file (TOML); see docs in README.md.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Overrides the configuration's listen address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from stdin (or prompted on a terminal).
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Issue a bearer token for a machine acting as this user (shown once).
    Token {
        name: String,
        /// How long the token is valid, e.g. 30d, 365d.
        #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
        valid_for: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain; names the first broken entry.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum PassportCommand {
    /// Receive units from passport files or folders, with a summary of what
    /// was accepted and what was refused and why.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Country of collection (ISO 3166-1 alpha-2) from the delivery note,
        /// for passports that do not state it.
        #[arg(long)]
        country: Option<String>,
    },
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && (0.1..=10_000.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("speed {v} is outside 0.1..10000"))
    }
}

pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // async-opcua logs connection failures as errors of its own; the
        // adapters report them, with the reason, once per attempt.
        0 => "warn,opcua_client=off,opcua_core=off,opcua_server=off,opcua_crypto=error",
        1 => "info,opcua_client=warn,opcua_core=warn,opcua_server=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
