//! How much CPU the whole plant takes at --speed 100 while all three lines
//! work and clients poll them: the target is under half of one core.
//!
//! Figure: process CPU time (user + system, all threads, from
//! /proc/self/stat) over a wall-clock window, as a fraction of one core,
//! with four stations discharging, the shredder running a charge, the leach
//! train running a batch, two Modbus clients reading every input register
//! of their line every 100 ms and an OPC UA client reading every hydromet
//! variable every 100 ms (the clients run in this process: the figure is
//! an upper bound for the plant).
//! Anchor, same run: the three bare models stepped through the same
//! simulated time in a tight loop (no servers, no clock, no clients).
//!
//! Run: `cargo bench -p remine-sim --bench plant_cpu` (optional arguments:
//! window seconds, repeats).

use opcua::client::{ClientBuilder, IdentityToken};
use opcua::crypto::SecurityPolicy;
use opcua::types::{MessageSecurityMode, NodeId, ReadValueId, TimestampsToReturn};
use remine_sim::lines::RegisterModel;
use remine_sim::lines::discharge::DischargeLine;
use remine_sim::lines::hydromet::{HydrometLine, unit_vars};
use remine_sim::lines::mechanical::MechanicalLine;
use remine_sim::model::hydromet::HydroUnit;
use remine_sim::{HYDROMET_NAMESPACE_URI, RunningPlant, SimConfig, start};
use remine_testkit::bench::{cpu_seconds, median};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_modbus::client::{Reader, Writer, tcp};
use tokio_modbus::prelude::Slave;

const SPEED: f64 = 100.0;

fn words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, (b & 0xFFFF) as u16]
}

/// Put every line to work: four packs discharging, a 2 t charge shredding.
async fn load_the_plant(p: &RunningPlant) -> Result<(), String> {
    let mut d = tcp::connect_slave(p.discharge_addr(), Slave(1))
        .await
        .map_err(|e| e.to_string())?;
    for n in 1..=4u16 {
        let [c0, c1] = words(282.0);
        let [m0, m1] = words(520.0);
        d.write_multiple_registers(100 * n + 2, &[4, 96, c0, c1, m0, m1])
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        d.write_single_register(100 * n, 1)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let mut m = tcp::connect_slave(p.mechanical_addr(), Slave(2))
        .await
        .map_err(|e| e.to_string())?;
    let [m0, m1] = words(2000.0);
    m.write_multiple_registers(1, &[4, m0, m1])
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    m.write_single_register(0, 1)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Read `count` input registers from `addr` every 100 ms until `until`.
async fn poll_modbus(addr: SocketAddr, unit: u8, ranges: Vec<(u16, u16)>, until: Instant) {
    let Ok(mut ctx) = tcp::connect_slave(addr, Slave(unit)).await else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        tick.tick().await;
        for (start, count) in &ranges {
            let _ = ctx.read_input_registers(*start, *count).await;
        }
    }
}

/// Read every hydromet variable every 100 ms until `until`; also writes a
/// leach charge and starts it.
async fn poll_opcua(
    endpoint: String,
    pki: std::path::PathBuf,
    until: Instant,
) -> Result<(), String> {
    let mut client = ClientBuilder::new()
        .application_name("remine-sim bench")
        .application_uri("urn:remine:sim:bench")
        .pki_dir(pki)
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_limit(3)
        .client()
        .map_err(|e| format!("{e:?}"))?;
    let (session, event_loop) = client
        .connect_to_matching_endpoint(
            (
                endpoint.as_str(),
                SecurityPolicy::None.to_str(),
                MessageSecurityMode::None,
            ),
            IdentityToken::Anonymous,
        )
        .await
        .map_err(|e| e.to_string())?;
    event_loop.spawn();
    session.wait_for_connection().await;
    let ns = session
        .get_namespace_index(HYDROMET_NAMESPACE_URI)
        .await
        .map_err(|e| e.to_string())?;
    for (name, v) in [
        ("Leach.ChargeMassKg", 800.0),
        ("Leach.ChargeNi", 0.27),
        ("Leach.ChargeCo", 0.034),
        ("Leach.ChargeLi", 0.04),
    ] {
        let _ = session
            .write(&[opcua::types::WriteValue {
                node_id: NodeId::new(ns, name),
                attribute_id: opcua::types::AttributeId::Value as u32,
                index_range: Default::default(),
                value: opcua::types::DataValue::value_only(v),
            }])
            .await;
    }
    let _ = session
        .call_one((
            NodeId::new(ns, "Leach"),
            NodeId::new(ns, "Leach.Start"),
            None::<Vec<opcua::types::Variant>>,
        ))
        .await;
    let reads: Vec<ReadValueId> = HydroUnit::ALL
        .iter()
        .flat_map(|u| {
            unit_vars(*u).iter().map(move |v| {
                ReadValueId::new_value(NodeId::new(ns, format!("{}.{}", u.name(), v.name())))
            })
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        tick.tick().await;
        let _ = session.read(&reads, TimestampsToReturn::Both, 0.0).await;
    }
    let _ = session.disconnect().await;
    Ok(())
}

/// CPU fraction of one core used by the running plant and its clients over
/// `window`.
async fn plant_share(window: Duration) -> Result<(f64, usize), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p = start(SimConfig {
        discharge: "127.0.0.1:0".parse().map_err(|_| "addr")?,
        mechanical: "127.0.0.1:0".parse().map_err(|_| "addr")?,
        hydromet: "127.0.0.1:0".parse().map_err(|_| "addr")?,
        speed: SPEED,
        seed: 3,
        pki_dir: dir.path().join("pki"),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    load_the_plant(&p).await?;
    // Let the clients connect and settle before measuring.
    let settle = Duration::from_secs(3);
    let until = Instant::now() + settle + window;
    let discharge_ranges = (0..=4u16)
        .map(|n| if n == 0 { (0, 3) } else { (100 * n, 18) })
        .collect();
    let pollers = vec![
        tokio::spawn(poll_modbus(p.discharge_addr(), 1, discharge_ranges, until)),
        tokio::spawn(poll_modbus(p.mechanical_addr(), 2, vec![(0, 52)], until)),
    ];
    let ua = tokio::spawn(poll_opcua(
        p.hydromet_endpoint(),
        dir.path().join("client-pki"),
        until,
    ));
    tokio::time::sleep(settle).await;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let share = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64();
    for task in pollers {
        let _ = task.await;
    }
    let ua_result = ua.await.map_err(|e| e.to_string())?;
    ua_result?;
    let batches = p
        .truth_jsonl()
        .lines()
        .filter(|l| l.contains("_started"))
        .count();
    p.shutdown().await;
    Ok((share, batches))
}

/// CPU seconds the bare models take to step `sim_s` simulated seconds in
/// steps of 1 s, as the clock sub-steps them.
fn anchor_cpu_seconds(sim_s: f64) -> f64 {
    let mut discharge = DischargeLine::new(4, 3);
    let mut mechanical = MechanicalLine::new(3);
    let mut hydromet = HydrometLine::new(3);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut t = 0.0;
    while t < sim_s {
        discharge.step(1.0);
        mechanical.step(1.0);
        hydromet.step(1.0);
        t += 1.0;
    }
    // Short loops are below the CPU clock's resolution: use wall time then.
    let cpu = cpu_seconds() - cpu0;
    if cpu > 0.05 {
        cpu
    } else {
        t0.elapsed().as_secs_f64()
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let window_s: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let window = Duration::from_secs(window_s);
    let mut shares = Vec::new();
    let mut anchors = Vec::new();
    for run in 1..=repeats {
        match runtime.block_on(plant_share(window)) {
            Ok((share, batches)) => {
                println!(
                    "run {run}: plant {:.1} % of one core ({batches} batches started)",
                    share * 100.0
                );
                shares.push(share);
            }
            Err(e) => {
                eprintln!("run {run} failed: {e}");
                std::process::exit(1);
            }
        }
        // The same simulated time, bare: window x speed simulated seconds.
        let anchor = anchor_cpu_seconds(window_s as f64 * SPEED) / window_s as f64;
        println!("run {run}: bare models {:.3} % of one core", anchor * 100.0);
        anchors.push(anchor);
    }
    let (share, anchor) = (median(shares), median(anchors));
    println!(
        "plant at --speed {SPEED}: median {:.1} % of one core (target < 50 %); bare models, same simulated time: {:.3} %; ratio {:.0}x",
        share * 100.0,
        anchor * 100.0,
        share / anchor.max(1e-9)
    );
}
