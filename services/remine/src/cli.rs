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
    /// Run the plant simulator alone (Modbus TCP and OPC UA servers, a
    /// control endpoint for faults), or inject, list and clear its faults.
    Sim(Box<SimArgs>),
    /// Master recipes kept in files: lint a folder, diff two files, import
    /// one as a draft.
    Recipe {
        #[command(subcommand)]
        command: RecipeCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Battery passports.
    Passport {
        #[command(subcommand)]
        command: PassportCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Generate a synthetic plant year (input units with passports, every
    /// lot, edge, weighing and assay, and the ground truth) into files or
    /// the database.
    Synth(SynthArgs),
    /// Trace a lot's genealogy: back to the input units with their passports
    /// and countries (the default), or forward to every lot made from it,
    /// with the kg of Ni, Co and Li allocated to each.
    Trace(TraceArgs),
    /// Reports: the yearly recovery report by Reg. 2023/1542 and Del. Reg.
    /// 2025/606 (JSON, CSV or a self-contained HTML page).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The recovery report of a calendar year: rRM of Co, Cu, Li and Ni and
    /// rRE per input stream and Member State of collection, against the
    /// 2027 and 2031 targets, with the uncertainty of each rate from the
    /// reconciled balance.
    Recovery(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The calendar year reported.
    #[arg(long)]
    pub year: i32,
    /// json (validates against schemas/recycling-report.schema.json), csv
    /// or html (one self-contained page that prints).
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write here instead of standard output (nothing is written when the
    /// report fails).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The facility configuration (steps, efficiencies, product names);
    /// default: facility.toml in the data directory.
    #[arg(long)]
    pub facility: Option<PathBuf>,
    /// A provisional report (during the year) rather than the final one.
    #[arg(long)]
    pub provisional: bool,
    /// Data a downstream facility sent (JSON, schemas/downstream-facility-data.schema.json);
    /// may be given several times.
    #[arg(long)]
    pub downstream: Vec<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
    Html,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of input units (packs, modules and cells); 200000 is the
    /// issue's plant year (5,000 black-mass lots, 20,000 leach batches).
    #[arg(long)]
    pub packs: usize,
    /// Seed of every draw: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write files into this new (or empty) folder instead of the database.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A deliberately biased instrument, e.g. WB-1=+8% (repeatable).
    #[arg(long)]
    pub bias: Vec<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The lot to trace.
    pub lot: String,
    /// Trace forward: the black-mass lots, leach batches and products made
    /// from LOT, with the part of each attributed to it.
    #[arg(long)]
    pub forward: bool,
    /// Print JSON (the API's shape, without its `basis`: the basis is
    /// said on stderr) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Allocate the element masses as the balance of calendar year YEAR
    /// (UTC) reconciled them, instead of as recorded: the lots made that
    /// year are reconciled first (seconds for a plant year).
    #[arg(long, value_name = "YEAR")]
    pub reconciled: Option<i32>,
    #[command(flatten)]
    pub db: DbArgs,
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
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: Option<SimCommand>,
    #[command(flatten)]
    pub run: SimRunArgs,
}

/// Where the simulator listens and how it runs (`remine sim` alone).
#[derive(Debug, Args)]
pub struct SimRunArgs {
    /// Address of the discharge line (Modbus TCP, unit 1).
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub discharge: SocketAddr,
    /// Address of the mechanical line (Modbus TCP, unit 2).
    #[arg(long, default_value = "127.0.0.1:5021")]
    pub mechanical: SocketAddr,
    /// Address of the hydrometallurgy line (OPC UA).
    #[arg(long, default_value = "127.0.0.1:4855")]
    pub hydromet: SocketAddr,
    /// Address of the HTTP control endpoint (faults, ground truth); loopback only.
    #[arg(long, default_value = "127.0.0.1:5099")]
    pub control: SocketAddr,
    /// Seed of every random draw: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time runs this many times faster than wall time (1 to 1000).
    #[arg(long, default_value_t = 1.0, value_parser = parse_sim_speed)]
    pub speed: f64,
    /// Number of discharge stations.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub stations: u16,
    /// Where the OPC UA server keeps its certificates.
    #[arg(long, default_value = "remine-data/sim-pki")]
    pub pki: PathBuf,
    /// Append the ground truth (true element masses of every movement) to
    /// this JSON-lines file.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Stop after this long (e.g. 30s, 5m); without it, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Inject a fault into a running simulator.
    Fault(SimFaultArgs),
    /// List the active faults.
    Faults {
        #[command(flatten)]
        control: ControlUrl,
    },
    /// Clear one fault by id, or every fault.
    Clear {
        /// The fault's id (as `fault` printed it); without it, all faults.
        id: Option<u64>,
        #[command(flatten)]
        control: ControlUrl,
    },
}

#[derive(Debug, Args)]
pub struct ControlUrl {
    /// The simulator's control endpoint.
    #[arg(long = "control", default_value = "http://127.0.0.1:5099")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct SimFaultArgs {
    /// drop, hang, slow, exception, power_cycle, freeze, spike,
    /// thermal_event, o2_leak or blocked_filter.
    pub kind: String,
    /// The line: discharge, mechanical or hydromet.
    #[arg(long)]
    pub line: Option<String>,
    /// The signal (freeze, spike, exception), as the line's map names it.
    #[arg(long)]
    pub signal: Option<String>,
    /// The value a spiking signal reads.
    #[arg(long, allow_negative_numbers = true)]
    pub value: Option<f64>,
    /// The Modbus exception code.
    #[arg(long)]
    pub code: Option<u8>,
    /// How much slower each answer comes (slow), e.g. 500ms.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub delay: Option<Duration>,
    /// How long the line stays dark (power_cycle), e.g. 5s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub off: Option<Duration>,
    /// The discharge station (thermal_event).
    #[arg(long)]
    pub station: Option<u16>,
    /// Heat inside the pack (thermal_event), kW.
    #[arg(long)]
    pub heat_kw: Option<f64>,
    /// Air leaking into the shredder (o2_leak), Nm3/h.
    #[arg(long)]
    pub leak_nm3h: Option<f64>,
    /// How fast the filter fouls (blocked_filter), mbar per minute.
    #[arg(long)]
    pub rate_mbar_per_min: Option<f64>,
    /// Clear the fault by itself after this long, e.g. 30s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub control: ControlUrl,
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

#[derive(Debug, Subcommand)]
pub enum RecipeCommand {
    /// Check every recipe file in DIR against the equipment catalogues
    /// (DIR/equipment/ if present, else the shipped ones): syntax, units,
    /// limits, process rules, and coverage of every line and chemistry.
    Lint { dir: PathBuf },
    /// Parameter-by-parameter differences between two recipe files, with units.
    Diff { old: PathBuf, new: PathBuf },
    /// Store a recipe file as a new draft version, to be submitted, approved
    /// and released in the HMI or through the API.
    Import {
        file: PathBuf,
        /// The engineer the draft is recorded as written by (an existing
        /// user with the engineer role or above); default: the system.
        #[arg(long)]
        author: Option<String>,
        /// Why the draft was made, for the audit trail.
        #[arg(long, default_value = "imported from a recipe file")]
        reason: String,
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

fn parse_sim_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && (1.0..=1000.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("speed {v} is outside 1..=1000"))
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
