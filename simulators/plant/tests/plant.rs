//! Starting and stopping the plant: free ports, named errors for ports in
//! use and for unusable configuration.

mod support;

use remine_sim::{SimConfig, SimError, start};
use std::net::{SocketAddr, TcpListener};

fn free_config(pki: &std::path::Path) -> SimConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    SimConfig {
        discharge: any,
        mechanical: any,
        hydromet: any,
        pki_dir: pki.join("pki"),
        ..SimConfig::default()
    }
}

/// Occupy a port, start the plant with `line` configured on it, and check
/// the error names the line and the address.
async fn check_port_in_use(line: &str, place: fn(&mut SimConfig, SocketAddr)) {
    let pki = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut config = free_config(pki.path());
    place(&mut config, addr);
    let err = start(config).await.expect_err("the port is taken");
    assert!(matches!(err, SimError::Listen { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{line}: cannot listen on {addr}: address in use")
    );
}

#[tokio::test]
async fn a_port_in_use_gives_an_error_naming_the_line_and_the_address() {
    check_port_in_use("discharge line", |c, a| c.discharge = a).await;
    check_port_in_use("mechanical line", |c, a| c.mechanical = a).await;
    check_port_in_use("hydromet line", |c, a| c.hydromet = a).await;
}

async fn check_config(change: fn(&mut SimConfig), message: &str) {
    let pki = tempfile::tempdir().expect("temp dir");
    let mut config = free_config(pki.path());
    change(&mut config);
    let err = start(config)
        .await
        .expect_err("the configuration is refused");
    assert_eq!(err.to_string(), message);
}

#[tokio::test]
async fn unusable_speeds_and_station_counts_are_refused_by_name() {
    check_config(
        |c| c.speed = 0.0,
        "sim config: speed = 0: must be above 0 and at most 100000",
    )
    .await;
    check_config(
        |c| c.speed = f64::NAN,
        "sim config: speed = NaN: must be above 0 and at most 100000",
    )
    .await;
    check_config(
        |c| c.stations = 0,
        "sim config: stations = 0: must be between 1 and 64",
    )
    .await;
    check_config(
        |c| c.stations = 65,
        "sim config: stations = 65: must be between 1 and 64",
    )
    .await;
}

#[tokio::test]
async fn a_plant_on_port_zero_reports_the_ports_it_bound() {
    let t = support::plant(1.0).await;
    let p = &t.plant;
    assert_ne!(p.discharge_addr().port(), 0);
    assert_ne!(p.mechanical_addr().port(), 0);
    let endpoint = p.hydromet_endpoint();
    assert!(endpoint.starts_with("opc.tcp://127.0.0.1:"), "{endpoint}");
    assert!(endpoint.ends_with('/'), "{endpoint}");
    assert!(!endpoint.ends_with(":0/"), "{endpoint}");
    t.plant.shutdown().await;
}

#[tokio::test]
async fn after_shutdown_the_ports_are_free_again() {
    let t = support::plant(1.0).await;
    let addr = t.plant.discharge_addr();
    t.plant.shutdown().await;
    assert!(TcpListener::bind(addr).is_ok(), "{addr} is still held");
}

#[test]
fn the_defaults_are_the_documented_ports_speed_seed_and_stations() {
    let c = SimConfig::default();
    assert_eq!(c.discharge.to_string(), "127.0.0.1:5020");
    assert_eq!(c.mechanical.to_string(), "127.0.0.1:5021");
    assert_eq!(c.hydromet.to_string(), "127.0.0.1:4855");
    assert_eq!((c.speed, c.seed, c.stations), (1.0, 1, 4));
    assert_eq!(c.pki_dir, std::path::PathBuf::from("./remine-data/sim-pki"));
}
