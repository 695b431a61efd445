//! `remine sim`: the plant simulator alone, for other tools to talk to, and
//! a thin client of its control endpoint (`fault`, `faults`, `clear`).

use crate::cli::{SimFaultArgs, SimRunArgs};
use anyhow::{Context, bail};
use remine_sim::{FaultRequest, SimConfig};
use serde_json::Value;
use std::process::ExitCode;

pub async fn run(args: SimRunArgs) -> anyhow::Result<ExitCode> {
    let sim = remine_sim::start(SimConfig {
        discharge: args.discharge,
        mechanical: args.mechanical,
        hydromet: args.hydromet,
        speed: args.speed,
        seed: args.seed,
        pki_dir: args.pki.clone(),
        stations: usize::from(args.stations),
        control: Some(args.control),
        truth: args.truth.clone(),
    })
    .await
    .context("plant simulator")?;
    println!(
        "remine sim: plant at speed x{}, seed {}",
        args.speed, args.seed
    );
    println!(
        "  discharge line  modbus://{} (unit 1, {} stations)",
        sim.discharge_addr(),
        args.stations
    );
    println!(
        "  mechanical line modbus://{} (unit 2)",
        sim.mechanical_addr()
    );
    println!(
        "  hydromet line   {} (user {}, password {})",
        sim.hydromet_endpoint(),
        remine_sim::DEMO_USER,
        remine_sim::DEMO_PASSWORD
    );
    if let Some(control) = sim.control_addr() {
        println!("  control         http://{control}/faults");
    }
    if let Some(truth) = &args.truth {
        println!("  ground truth    {}", truth.display());
    }
    match args.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?,
    }
    sim.shutdown().await;
    println!("remine sim: stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn fault(args: SimFaultArgs) -> anyhow::Result<ExitCode> {
    let request = FaultRequest {
        kind: args.kind,
        line: args.line,
        duration_s: args.duration.map(|d| d.as_secs_f64()),
        delay_ms: args
            .delay
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        code: args.code,
        signal: args.signal,
        off_s: args.off.map(|d| d.as_secs_f64()),
        value: args.value,
        station: args.station,
        heat_kw: args.heat_kw,
        leak_nm3h: args.leak_nm3h,
        rate_mbar_per_min: args.rate_mbar_per_min,
    };
    // Checked here first, so a mistake is named without a round trip.
    if let Err(e) = request.parse() {
        bail!("fault: {e}");
    }
    let url = format!("{}/faults", base(&args.control.url));
    let res = reqwest::Client::new()
        .post(&url)
        .json(&request)
        .send()
        .await
        .with_context(|| unreachable(&url))?;
    let status = res.status();
    let body: Value = res.json().await.with_context(|| answer(&url))?;
    if !status.is_success() {
        bail!("{url} refused the fault ({status}): {}", error_of(&body));
    }
    println!(
        "fault {} injected: {}",
        body["id"],
        serde_json::to_string(&request)?
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn faults(control: &str) -> anyhow::Result<ExitCode> {
    let url = format!("{}/faults", base(control));
    let res = reqwest::get(&url)
        .await
        .with_context(|| unreachable(&url))?;
    let body: Value = res.json().await.with_context(|| answer(&url))?;
    let list = body.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no active faults");
    }
    for f in list {
        let mut fields = f.as_object().cloned().unwrap_or_default();
        let id = fields.remove("id").unwrap_or_default();
        let kind = fields.remove("kind").unwrap_or_default();
        let remaining = match fields.remove("remaining_s").and_then(|v| v.as_f64()) {
            Some(s) => format!("{s:.1} s left"),
            None => "until cleared".to_string(),
        };
        let params: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{id:>4}  {:<15} {:<40} {remaining}",
            kind.as_str().unwrap_or("?"),
            params.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn clear(control: &str, id: Option<u64>) -> anyhow::Result<ExitCode> {
    let url = match id {
        Some(id) => format!("{}/faults/{id}", base(control)),
        None => format!("{}/faults", base(control)),
    };
    let res = reqwest::Client::new()
        .delete(&url)
        .send()
        .await
        .with_context(|| unreachable(&url))?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        bail!("no active fault {} at {url}", id.unwrap_or_default());
    }
    if !status.is_success() {
        let body: Value = res.json().await.unwrap_or_default();
        bail!("{url} refused ({status}): {}", error_of(&body));
    }
    match id {
        Some(id) => println!("fault {id} cleared"),
        None => {
            let body: Value = res.json().await.with_context(|| answer(&url))?;
            println!("{} faults cleared", body["cleared"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn base(control: &str) -> &str {
    control.trim_end_matches('/')
}

fn unreachable(url: &str) -> String {
    format!("cannot reach the simulator's control endpoint at {url} (is `remine sim` running?)")
}

fn answer(url: &str) -> String {
    format!("{url} did not answer with JSON")
}

fn error_of(body: &Value) -> String {
    body["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}
