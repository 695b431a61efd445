//! The simulator checked by clients no one here wrote: pymodbus and asyncua,
//! from a Python venv, drive every line per the documented maps.
//!
//! Each test starts a plant in-process on free loopback ports and runs one
//! or more Python scripts from `tests/peers/` against it, passing the
//! addresses and the map files (`maps/*.toml`, which the scripts parse, so a
//! signal added to a map is checked without touching them). A script prints
//! what it checked and exits non-zero on the first failed check, naming the
//! signal or node, its address and the expected and actual values.
//!
//! Python is `$REMINE_VENV/bin/python`, else `<workspace>/target/venv/bin/python`
//! (scripts/test builds it from tests/python-requirements.txt). Without one
//! the tests print a loud SKIP line and pass, unless REMINE_REQUIRE_PEERS=1.

use remine_sim::{DEMO_PASSWORD, DEMO_USER, RunningPlant, SimConfig, start};
use remine_testkit::python::python_or_skip;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// One simulated minute per wall second: batches move, waits stay short.
const SPEED: f64 = 60.0;
/// The longest a peer script may run before it is killed.
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);
const STATIONS: usize = 4;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A running plant and the temporary directory of its certificates.
struct Plant {
    plant: RunningPlant,
    dir: tempfile::TempDir,
}

async fn plant() -> Plant {
    let dir = tempfile::tempdir().expect("a temp dir");
    let plant = start(SimConfig {
        discharge: "127.0.0.1:0".parse().expect("an address"),
        mechanical: "127.0.0.1:0".parse().expect("an address"),
        hydromet: "127.0.0.1:0".parse().expect("an address"),
        speed: SPEED,
        seed: 7,
        pki_dir: dir.path().join("pki"),
        stations: STATIONS,
        ..SimConfig::default()
    })
    .await
    .expect("the plant starts");
    Plant { plant, dir }
}

fn map(name: &str) -> String {
    manifest_dir()
        .join("maps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// What a finished (or killed) script left behind.
struct Outcome {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Run `tests/peers/<script>` with `args`, killing it after [`SCRIPT_LIMIT`];
/// fails the test unless it exits 0, showing everything it printed.
async fn run_peer(python: &Path, script: &str, args: &[String]) {
    let path = manifest_dir().join("tests/peers").join(script);
    let mut child = Command::new(python)
        .arg("-u")
        .arg(&path)
        .args(args)
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), path.display()));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stdout = tokio::spawn(async move {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s).await;
        s
    });
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        s
    });
    let status = match tokio::time::timeout(SCRIPT_LIMIT, child.wait()).await {
        Ok(status) => Some(status.expect("the script's exit status")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let outcome = Outcome {
        status,
        stdout: stdout.await.unwrap_or_default(),
        stderr: stderr.await.unwrap_or_default(),
    };
    println!("--- {script} {}\n{}", args.join(" "), outcome.stdout);
    let verdict = match outcome.status {
        Some(s) if s.success() => return,
        Some(s) => format!("{script} failed ({s})"),
        None => format!("{script} killed after {SCRIPT_LIMIT:?}"),
    };
    panic!(
        "{verdict}\n--- stdout\n{}\n--- stderr\n{}",
        outcome.stdout, outcome.stderr
    );
}

fn modbus_args(addr: std::net::SocketAddr, map_file: &str) -> Vec<String> {
    vec![
        "--host".into(),
        addr.ip().to_string(),
        "--port".into(),
        addr.port().to_string(),
        "--map".into(),
        map(map_file),
        "--blocks".into(),
        STATIONS.to_string(),
    ]
}

fn opcua_args(p: &Plant, security: &str) -> Vec<String> {
    vec![
        "--endpoint".into(),
        p.plant.hydromet_endpoint(),
        "--nodes".into(),
        map("hydromet.toml"),
        "--security".into(),
        security.into(),
        "--user".into(),
        DEMO_USER.into(),
        "--password".into(),
        DEMO_PASSWORD.into(),
        "--cert-dir".into(),
        p.dir
            .path()
            .join("client-pki")
            .to_string_lossy()
            .into_owned(),
    ]
}

#[tokio::test]
async fn pymodbus_reads_and_writes_every_discharge_signal_per_the_map() {
    let Some(python) =
        python_or_skip("pymodbus_reads_and_writes_every_discharge_signal_per_the_map")
    else {
        return;
    };
    let p = plant().await;
    let args = modbus_args(p.plant.discharge_addr(), "discharge.toml");
    run_peer(&python, "modbus_map.py", &args).await;
    p.plant.shutdown().await;
}

#[tokio::test]
async fn pymodbus_reads_and_writes_every_mechanical_signal_per_the_map() {
    let Some(python) =
        python_or_skip("pymodbus_reads_and_writes_every_mechanical_signal_per_the_map")
    else {
        return;
    };
    let p = plant().await;
    let args = modbus_args(p.plant.mechanical_addr(), "mechanical.toml");
    run_peer(&python, "modbus_map.py", &args).await;
    p.plant.shutdown().await;
}

#[tokio::test]
async fn pymodbus_gets_the_documented_exceptions_from_both_lines() {
    let Some(python) = python_or_skip("pymodbus_gets_the_documented_exceptions_from_both_lines")
    else {
        return;
    };
    let p = plant().await;
    for (addr, file) in [
        (p.plant.discharge_addr(), "discharge.toml"),
        (p.plant.mechanical_addr(), "mechanical.toml"),
    ] {
        run_peer(&python, "modbus_protocol.py", &modbus_args(addr, file)).await;
    }
    p.plant.shutdown().await;
}

#[tokio::test]
async fn pymodbus_runs_discharge_stations_through_start_hold_restart_stop_abort_and_reset() {
    let Some(python) = python_or_skip(
        "pymodbus_runs_discharge_stations_through_start_hold_restart_stop_abort_and_reset",
    ) else {
        return;
    };
    let p = plant().await;
    let args = modbus_args(p.plant.discharge_addr(), "discharge.toml");
    run_peer(&python, "discharge_sequence.py", &args).await;
    p.plant.shutdown().await;
}

#[tokio::test]
async fn pymodbus_purges_and_feeds_the_shredder_then_holds_stops_and_resets_it() {
    let Some(python) =
        python_or_skip("pymodbus_purges_and_feeds_the_shredder_then_holds_stops_and_resets_it")
    else {
        return;
    };
    let p = plant().await;
    let args = modbus_args(p.plant.mechanical_addr(), "mechanical.toml");
    run_peer(&python, "mechanical_sequence.py", &args).await;
    p.plant.shutdown().await;
}

#[tokio::test]
async fn asyncua_browses_reads_writes_subscribes_and_calls_on_hydromet_without_security() {
    let Some(python) = python_or_skip(
        "asyncua_browses_reads_writes_subscribes_and_calls_on_hydromet_without_security",
    ) else {
        return;
    };
    let p = plant().await;
    run_peer(&python, "hydromet.py", &opcua_args(&p, "none")).await;
    p.plant.shutdown().await;
}

#[tokio::test]
async fn asyncua_browses_reads_writes_subscribes_and_calls_on_hydromet_with_basic256sha256() {
    let Some(python) = python_or_skip(
        "asyncua_browses_reads_writes_subscribes_and_calls_on_hydromet_with_basic256sha256",
    ) else {
        return;
    };
    let p = plant().await;
    run_peer(&python, "hydromet.py", &opcua_args(&p, "basic256sha256")).await;
    p.plant.shutdown().await;
}
