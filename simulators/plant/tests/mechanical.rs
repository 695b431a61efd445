//! The mechanical line over real Modbus TCP (unit id 2), addressed as
//! simulators/README.md documents it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::prelude::{ExceptionCode, Slave};

const LIMIT: Duration = Duration::from_secs(5);

/// Input registers 0..52 decoded.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    state: u16,
    rejected: u16,
    alarms: u16,
    trip_cause: u16,
    feeding: u16,
    o2: f32,
    processed: f32,
    remaining: f32,
    outputs: [f32; 6],
}

impl Snapshot {
    fn outputs_total(&self) -> f64 {
        self.outputs.iter().map(|v| f64::from(*v)).sum()
    }
}

fn words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, (b & 0xFFFF) as u16]
}

struct Line {
    ctx: Context,
}

impl Line {
    async fn connect(addr: SocketAddr) -> Line {
        Line {
            ctx: tcp::connect_slave(addr, Slave(2)).await.expect("connect"),
        }
    }

    async fn snapshot(&mut self) -> Snapshot {
        let call = self.ctx.read_input_registers(0, 52);
        let w = tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport")
            .expect("read");
        let f = |i: usize| f32::from_bits((u32::from(w[i]) << 16) | u32::from(w[i + 1]));
        Snapshot {
            state: w[2],
            rejected: w[3],
            alarms: w[4],
            trip_cause: w[5],
            feeding: w[6],
            o2: f(10),
            processed: f(26),
            remaining: f(28),
            outputs: [f(40), f(42), f(44), f(46), f(48), f(50)],
        }
    }

    async fn write(&mut self, addr: u16, data: &[u16]) -> Result<(), ExceptionCode> {
        let call = self.ctx.write_multiple_registers(addr, data);
        tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport")
    }

    async fn command(&mut self, code: u16) {
        assert_eq!(self.write(0, &[code]).await, Ok(()), "command {code}");
    }

    /// Charge block: chemistry code at 1, charge mass (f32) at 2..=3.
    async fn load(&mut self, chemistry: u16, kg: f32) {
        let [m0, m1] = words(kg);
        assert_eq!(self.write(1, &[chemistry, m0, m1]).await, Ok(()));
    }

    async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Snapshot) -> bool,
    ) -> Snapshot {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.snapshot().await;
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn nothing_is_shredded_until_the_purge_brings_o2_below_the_alarm_limit() {
    let t = support::plant(600.0).await;
    let mut line = Line::connect(t.plant.mechanical_addr()).await;
    let idle = line.snapshot().await;
    assert!(
        (20.5..21.3).contains(&idle.o2),
        "idle chamber in air: {}",
        idle.o2
    );
    line.load(3, 2000.0).await;
    line.command(1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        let s = line.snapshot().await;
        if s.processed > 0.0 {
            break s;
        }
        assert_eq!(s.feeding, 0, "no feeding before the purge: {s:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purge never ended: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        first.o2 < 2.5 + 0.05,
        "shredding began at {} % O2",
        first.o2
    );
    assert_eq!(first.state, 2, "Running");
    t.plant.shutdown().await;
}

#[tokio::test]
async fn the_scales_of_a_completed_charge_show_its_mass_within_their_accuracy() {
    let t = support::plant(600.0).await;
    let mut line = Line::connect(t.plant.mechanical_addr()).await;
    line.load(4, 2000.0).await;
    line.command(1).await;
    let done = line
        .until("Complete", Duration::from_secs(15), |s| s.state == 3)
        .await;
    // The belt weigher integrates with 0.4 % noise and a drift; the output
    // scales are good to about 0.1 %. The truth is exactly 2000 kg.
    assert!(
        (f64::from(done.processed) - 2000.0).abs() < 2000.0 * 0.02,
        "belt weigher {}",
        done.processed
    );
    assert_eq!(done.remaining, 0.0);
    assert!(
        (done.outputs_total() - 2000.0).abs() < 2000.0 * 0.005,
        "{:?}",
        done.outputs
    );
    assert!(
        (done.outputs_total() - 2000.0).abs() > 1e-6,
        "measured outputs carry measurement error: {:?}",
        done.outputs
    );
    let black_mass = done.outputs[0];
    assert!(
        (700.0..=900.0).contains(&black_mass),
        "black mass {black_mass} kg of 2 t"
    );
    line.command(6).await;
    let idle = line.until("Idle", LIMIT, |s| s.state == 1).await;
    assert_eq!(idle.outputs, [0.0; 6], "Reset clears the outputs");
    t.plant.shutdown().await;
}

#[tokio::test]
async fn losing_nitrogen_while_shredding_trips_the_line_on_oxygen() {
    let t = support::plant(600.0).await;
    let mut line = Line::connect(t.plant.mechanical_addr()).await;
    line.load(1, 2000.0).await;
    line.command(1).await;
    line.until("feeding", Duration::from_secs(10), |s| s.feeding == 1)
        .await;
    assert_eq!(line.write(16, &words(0.0)).await, Ok(()), "N2 flow to 0");
    let tripped = line
        .until("Aborted", Duration::from_secs(20), |s| s.state == 10)
        .await;
    assert_eq!(tripped.trip_cause, 1, "O2 trip");
    assert_eq!(tripped.alarms & 8, 8, "tripped bit");
    assert!(tripped.processed < 2000.0);
    assert!(tripped.o2 > 2.9, "{} % O2", tripped.o2);
    t.plant.shutdown().await;
}

#[tokio::test]
async fn the_charge_block_is_busy_while_running_and_limits_must_stay_ordered() {
    let t = support::plant(1.0).await;
    let mut line = Line::connect(t.plant.mechanical_addr()).await;
    let [a0, a1] = words(3.5);
    assert_eq!(
        line.write(12, &[a0, a1]).await,
        Err(ExceptionCode::IllegalDataValue),
        "alarm above trip"
    );
    let [f0, f1] = words(5.0);
    assert_eq!(
        line.write(10, &[f0, f1]).await,
        Err(ExceptionCode::IllegalDataValue),
        "feed above 4 t/h"
    );
    line.command(1).await;
    let s = line.snapshot().await;
    assert_eq!(
        (s.state, s.rejected),
        (1, 1),
        "Start without a charge is refused"
    );
    line.load(2, 1000.0).await;
    line.command(1).await;
    assert_eq!(
        line.write(1, &[3]).await,
        Err(ExceptionCode::ServerDeviceBusy)
    );
    t.plant.shutdown().await;
}
