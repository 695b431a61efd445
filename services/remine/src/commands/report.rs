//! `remine report recovery --year Y [--format json|csv|html] [--out F]`:
//! the yearly recovery report from the database, with the facility
//! configuration (`--facility`, else facility.toml in the data directory)
//! and any downstream facilities' data (`--downstream FILE`, repeatable).
//!
//! The stages (reconciling the year, reading the lots, writing) show as a
//! progress bar on a terminal and as plain lines on stderr otherwise. With
//! `--out` the file is written whole or not at all (a temporary file
//! renamed into place).

use super::PLANT_DB_FILE;
use crate::cli::{ReportArgs, ReportFormat};
use crate::storage;
use anyhow::Context;
use remine_mes::{RecoveryRequest, Reports};
use remine_reporting::{
    FacilityConfig, RecoveryReport, ReportStatus, import_downstream, to_csv, to_html,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The facility configuration's file name in the data directory.
pub const FACILITY_FILE: &str = "facility.toml";

/// Stages as a bar on a terminal, as lines elsewhere (logs, CI).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(stages: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(stages);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    fn stage(&self, what: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_string());
                bar.inc(1);
            }
            None => eprintln!("report: {what}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The report rendered in `format`.
pub fn render(report: &RecoveryReport, format: ReportFormat) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Json => report.to_json()?,
        ReportFormat::Csv => to_csv(report)?,
        ReportFormat::Html => to_html(report),
    })
}

/// Writes `text` to `path` through a temporary file beside it.
fn write_whole(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("--out {} names no file", path.display()))?;
    let tmp: PathBuf = dir.join(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub async fn recovery(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(4);
    let facility_path = args
        .facility
        .clone()
        .unwrap_or_else(|| args.db.data.join(FACILITY_FILE));
    if !facility_path.exists() {
        anyhow::bail!(
            "no facility configuration: {} does not exist (give --facility FILE; \
             services/reporting/facility.example.toml documents the format)",
            facility_path.display()
        );
    }
    let facility = FacilityConfig::from_toml(
        &read(&facility_path, "facility configuration")?,
        &facility_path.display().to_string(),
    )?;
    let mut downstream = Vec::new();
    for path in &args.downstream {
        let text = read(path, "downstream facility data")?;
        downstream.push(import_downstream(&text, &path.display().to_string())?);
    }
    progress.stage("opening the database");
    let store = Arc::new(storage::open(&args.db, PLANT_DB_FILE).await?);
    let outcome = Reports::new(store.clone())
        .recovery(
            RecoveryRequest {
                year: args.year,
                status: if args.provisional {
                    ReportStatus::Provisional
                } else {
                    ReportStatus::Final
                },
                facility,
                downstream,
                generated_at: chrono::Utc::now(),
            },
            &|stage| progress.stage(stage),
        )
        .await;
    store.close().await;
    progress.done();
    let outcome = outcome?;
    for w in &outcome.report.warnings {
        eprintln!("warning: {}: {}", w.code, w.message);
    }
    let text = render(&outcome.report, args.format)?;
    match &args.out {
        Some(path) => {
            write_whole(path, &text)?;
            eprintln!("report: wrote {}", path.display());
        }
        None => super::emit(text.trim_end())?,
    }
    Ok(ExitCode::SUCCESS)
}
