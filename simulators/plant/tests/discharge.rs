//! The discharge line over real Modbus TCP, addressed as simulators/README.md
//! documents it: station n at 100 n, input registers for readings, holding
//! registers for commands, the load block and setpoints.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::prelude::{ExceptionCode, Slave};

const LIMIT: Duration = Duration::from_secs(5);

/// A Modbus client of one discharge station.
struct Station {
    ctx: Context,
    base: u16,
}

const STATE: u16 = 0;
const REJECTED: u16 = 1;
const PACK_VOLTAGE: u16 = 4;
const CELL_VOLTAGE: u16 = 6;
const CURRENT: u16 = 8;
const SOC: u16 = 10;
const ENERGY: u16 = 12;
const MAX_CELL_TEMP: u16 = 14;
const COMMAND: u16 = 0;
const LOAD_BLOCK: u16 = 2;
const END_VOLTAGE: u16 = 8;
const MAX_CURRENT: u16 = 10;

fn words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, (b & 0xFFFF) as u16]
}

impl Station {
    async fn connect(addr: SocketAddr, unit: u8, station: u16) -> Station {
        let ctx = tcp::connect_slave(addr, Slave(unit))
            .await
            .expect("connect");
        Station {
            ctx,
            base: 100 * station,
        }
    }

    async fn input(&mut self, offset: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let call = self.ctx.read_input_registers(self.base + offset, count);
        tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport")
    }

    async fn holding(&mut self, offset: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let call = self.ctx.read_holding_registers(self.base + offset, count);
        tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport")
    }

    async fn write(&mut self, offset: u16, data: &[u16]) -> Result<(), ExceptionCode> {
        let call = self.ctx.write_multiple_registers(self.base + offset, data);
        tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport")
    }

    async fn u16_in(&mut self, offset: u16) -> u16 {
        self.input(offset, 1).await.expect("read")[0]
    }

    async fn f32_in(&mut self, offset: u16) -> f32 {
        let w = self.input(offset, 2).await.expect("read");
        f32::from_bits((u32::from(w[0]) << 16) | u32::from(w[1]))
    }

    async fn command(&mut self, code: u16) {
        let call = self.ctx.write_single_register(self.base + COMMAND, code);
        let r = tokio::time::timeout(LIMIT, call)
            .await
            .expect("in time")
            .expect("transport");
        assert_eq!(r, Ok(()), "command {code}");
    }

    /// Describe a 500 kg NMC811 pack: 96 cells in series, 282 Ah.
    async fn load_nmc_pack(&mut self) {
        let [c0, c1] = words(282.0);
        let [m0, m1] = words(500.0);
        assert_eq!(
            self.write(LOAD_BLOCK, &[4, 96, c0, c1, m0, m1]).await,
            Ok(())
        );
    }
}

#[tokio::test]
async fn an_nmc_pack_discharges_to_the_end_voltage_completes_and_rebounds() {
    let t = support::plant(600.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 1).await;
    s.load_nmc_pack().await;
    s.command(1).await;
    assert_eq!(s.u16_in(STATE).await, 2, "Running");
    support::wait_for("current to flow", LIMIT, || async {
        let mut s = Station::connect(t.plant.discharge_addr(), 1, 1).await;
        (s.f32_in(CURRENT).await > 250.0).then_some(())
    })
    .await;
    let soc_running = s.f32_in(SOC).await;
    support::wait_for("Complete", Duration::from_secs(20), || async {
        let mut s = Station::connect(t.plant.discharge_addr(), 1, 1).await;
        (s.u16_in(STATE).await == 3).then_some(())
    })
    .await;
    let cell = s.f32_in(CELL_VOLTAGE).await;
    let pack = s.f32_in(PACK_VOLTAGE).await;
    let energy = s.f32_in(ENERGY).await;
    assert!(cell <= 1.0 + 0.05, "{cell} V per cell at Complete");
    assert!(
        (pack / 96.0 - cell).abs() < 0.01,
        "pack {pack} V, cell {cell} V"
    );
    assert!(energy > 1.0, "{energy} kWh recovered");
    assert!(s.f32_in(SOC).await < soc_running);
    assert!(
        s.f32_in(CURRENT).await.abs() < 0.5,
        "no current after Complete"
    );
    // Thirty simulated minutes later the voltage has come back up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = s.f32_in(CELL_VOLTAGE).await;
    assert!(later > cell + 0.04, "rebound from {cell} to {later} V");
    assert_eq!(s.u16_in(STATE).await, 3, "still Complete");
    t.plant.shutdown().await;
}

#[tokio::test]
async fn a_start_when_not_idle_is_refused_and_the_status_names_it() {
    let t = support::plant(1.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 2).await;
    s.load_nmc_pack().await;
    s.command(1).await;
    assert_eq!((s.u16_in(STATE).await, s.u16_in(REJECTED).await), (2, 0));
    s.command(1).await;
    assert_eq!(s.u16_in(STATE).await, 2, "still Running");
    assert_eq!(s.u16_in(REJECTED).await, 1, "Start refused");
    assert_eq!(
        s.holding(COMMAND, 1).await,
        Ok(vec![1]),
        "reads back the written code"
    );
    s.command(2).await;
    assert_eq!(s.u16_in(REJECTED).await, 0, "Hold accepted");
    assert_eq!(s.holding(COMMAND, 1).await, Ok(vec![2]));
    t.plant.shutdown().await;
}

#[tokio::test]
async fn start_without_a_described_unit_is_refused() {
    let t = support::plant(1.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 3).await;
    s.command(1).await;
    assert_eq!((s.u16_in(STATE).await, s.u16_in(REJECTED).await), (1, 1));
    t.plant.shutdown().await;
}

#[tokio::test]
async fn the_load_block_and_setpoints_read_back_and_setpoints_default_as_documented() {
    let t = support::plant(1.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 4).await;
    let defaults = s.holding(END_VOLTAGE, 8).await.expect("read");
    let f = |i: usize| f32::from_bits((u32::from(defaults[i]) << 16) | u32::from(defaults[i + 1]));
    assert_eq!((f(0), f(2), f(4), f(6)), (1.0, 300.0, 55.0, 5.0));
    s.load_nmc_pack().await;
    let [c0, c1] = words(282.0);
    let [m0, m1] = words(500.0);
    assert_eq!(
        s.holding(LOAD_BLOCK, 6).await,
        Ok(vec![4, 96, c0, c1, m0, m1])
    );
    assert_eq!(s.write(MAX_CURRENT, &words(250.0)).await, Ok(()));
    assert_eq!(s.holding(MAX_CURRENT, 2).await, Ok(words(250.0).to_vec()));
    t.plant.shutdown().await;
}

async fn check_refused(s: &mut Station, offset: u16, data: &[u16], expected: ExceptionCode) {
    assert_eq!(
        s.write(offset, data).await,
        Err(expected),
        "write {data:?} at offset {offset}"
    );
}

#[tokio::test]
async fn bad_writes_are_answered_with_the_documented_exceptions() {
    let t = support::plant(1.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 1).await;
    check_refused(
        &mut s,
        END_VOLTAGE,
        &words(9.0),
        ExceptionCode::IllegalDataValue,
    )
    .await;
    check_refused(
        &mut s,
        END_VOLTAGE,
        &words(f32::NAN),
        ExceptionCode::IllegalDataValue,
    )
    .await;
    check_refused(&mut s, COMMAND, &[7], ExceptionCode::IllegalDataValue).await;
    check_refused(
        &mut s,
        END_VOLTAGE,
        &[0x3F80],
        ExceptionCode::IllegalDataAddress,
    )
    .await;
    check_refused(&mut s, 1, &[0], ExceptionCode::IllegalDataAddress).await;
    check_refused(&mut s, 0, &[0, 0, 4], ExceptionCode::IllegalDataAddress).await;
    check_refused(&mut s, 99, &[0], ExceptionCode::IllegalDataAddress).await;
    s.load_nmc_pack().await;
    s.command(1).await;
    check_refused(&mut s, LOAD_BLOCK, &[4], ExceptionCode::ServerDeviceBusy).await;
    let beyond = s
        .ctx
        .read_input_registers(100 * 5, 1)
        .await
        .expect("transport");
    assert_eq!(
        beyond,
        Err(ExceptionCode::IllegalDataAddress),
        "no station 5"
    );
    let too_many = s
        .ctx
        .read_input_registers(100, 126)
        .await
        .expect("transport");
    assert_eq!(too_many, Err(ExceptionCode::IllegalDataValue));
    t.plant.shutdown().await;
}

#[tokio::test]
async fn other_unit_ids_get_a_gateway_exception() {
    let t = support::plant(1.0).await;
    let mut other = Station::connect(t.plant.discharge_addr(), 2, 1).await;
    assert_eq!(
        other.input(STATE, 1).await,
        Err(ExceptionCode::GatewayTargetDevice)
    );
    let mut right = Station::connect(t.plant.discharge_addr(), 1, 1).await;
    assert_eq!(right.input(STATE, 1).await, Ok(vec![1]));
    t.plant.shutdown().await;
}

#[tokio::test]
async fn idle_readings_keep_moving_and_the_clock_ticks() {
    let t = support::plant(60.0).await;
    let mut s = Station::connect(t.plant.discharge_addr(), 1, 1).await;
    let mut line = Station::connect(t.plant.discharge_addr(), 1, 0).await;
    let clock0 = line.input(0, 3).await.expect("read");
    assert_eq!(clock0[2], 4, "station count");
    let temp0 = s.f32_in(MAX_CELL_TEMP).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let clock1 = line.input(0, 2).await.expect("read");
    let secs = |w: &[u16]| (u32::from(w[0]) << 16) | u32::from(w[1]);
    assert!(secs(&clock1) > secs(&clock0), "sim time advances");
    assert_ne!(s.f32_in(MAX_CELL_TEMP).await, temp0, "temperature noise");
    t.plant.shutdown().await;
}
