//! What the integration tests share: a plant on free loopback ports with its
//! own certificate directory, and a deadline-bound poll.
//!
//! Each test binary uses part of this module.
#![allow(dead_code)]

pub mod ua;

use remine_sim::{RunningPlant, SimConfig, start};
use std::future::Future;
use std::time::{Duration, Instant};

/// A running plant and the temporary directory holding its certificates.
pub struct TestPlant {
    pub plant: RunningPlant,
    _pki: tempfile::TempDir,
}

/// A plant on 127.0.0.1 port 0 for every line, at `speed`.
pub async fn plant(speed: f64) -> TestPlant {
    let pki = tempfile::tempdir().expect("temp dir");
    let config = SimConfig {
        discharge: "127.0.0.1:0".parse().expect("addr"),
        mechanical: "127.0.0.1:0".parse().expect("addr"),
        hydromet: "127.0.0.1:0".parse().expect("addr"),
        speed,
        seed: 1,
        pki_dir: pki.path().join("pki"),
        stations: 4,
        ..SimConfig::default()
    };
    let plant = start(config).await.expect("the plant starts");
    TestPlant { plant, _pki: pki }
}

/// Poll `probe` every 20 ms until it yields `Some`, or fail after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
