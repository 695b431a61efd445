"""Discharge stations driven through their ISA-88 states by pymodbus.

Spec (simulators/README.md, "Discharge line" and "Conventions"):
- with no unit loaded a station reads insulation 2000 MOhm; Start is refused
  (command_rejected 1) until the load block is complete;
- the load block (chemistry, cells in series, capacity, unit mass) is written
  in one function-16 request while Idle; then the pack arrives at 10-40 %
  SOC and 200-800 MOhm, and pack voltage = cells x cell voltage;
- Start runs the station at max_current; the load block is refused while
  not Idle (exception 6); Hold, Restart, Stop and Abort reach Held, Running,
  Stopped and Aborted (transients settle in 2 simulated seconds) and stop
  the current; Reset from Stopped, Aborted or Complete unloads the station;
- with hold_time 0 a run ends Complete with the current at 0, and the cell
  voltage then rebounds above the end voltage;
- a hottest cell above max_cell_temperature_setpoint while Running holds the
  station by itself (Held, no current); Restart resumes.
"""

from __future__ import annotations

from modbus_common import Line, check, encode, run

IDLE, RUNNING, COMPLETE, HELD, STOPPED, ABORTED = 1, 2, 3, 5, 8, 10
START, HOLD, RESTART, STOP, ABORT, RESET = 1, 2, 3, 4, 5, 6
SERVER_BUSY = 6
NO_UNIT_MOHM = 2000.0
NMC111 = 1


class Station:
    """One station's signals by name."""

    def __init__(self, line: Line, n: int):
        self.line, self.n = line, n
        self.sig = {s.name: s for s in line.map.signals if s.block == n}

    async def read(self, name: str) -> float:
        return await self.line.read(self.sig[name])

    async def expect(self, name: str, value: float, why: str) -> None:
        await self.line.expect_value(self.sig[name], value, f"station {self.n}: {why}")

    async def command(self, code: int) -> None:
        await self.line.expect_write(self.sig["command"], code)
        await self.expect("command", code, "the command register reads back the code written")

    async def wait_state(self, state: int, why: str, limit_s: float = 15.0) -> None:
        await self.line.wait_for(self.sig["state"], lambda v: v == state, f"state {state} ({why})", limit_s)

    async def wait_current(self, wanted, what: str) -> float:
        return await self.line.wait_for(self.sig["current"], wanted, what)

    async def write_load_block(self, chemistry: int, cells: int, capacity: float, mass: float):
        """One function-16 request over chemistry .. unit_mass; None or the exception code."""
        s = self.sig
        words = (
            encode(s["chemistry"], chemistry)
            + encode(s["cells_in_series"], cells)
            + encode(s["capacity"], capacity)
            + encode(s["unit_mass"], mass)
        )
        check(
            s["unit_mass"].last - s["chemistry"].address + 1 == len(words),
            f"station {self.n}: the load block is not contiguous in the map",
        )
        return await self.line.write_raw(s["chemistry"].address, words, 16)

    async def expect_load_block(self, chemistry: int, cells: int, capacity: float, mass: float, why: str):
        for name, value in [("chemistry", chemistry), ("cells_in_series", cells), ("capacity", capacity), ("unit_mass", mass)]:
            await self.expect(name, value, why)


async def check_start_needs_a_complete_load_block(st: Station) -> None:
    await st.expect("insulation_resistance", NO_UNIT_MOHM, "no unit loaded")
    await st.command(START)
    await st.expect("command_rejected", START, "Start without a load block is refused")
    await st.expect("state", IDLE, "a refused Start leaves the station Idle")
    await st.line.expect_write(st.sig["chemistry"], NMC111)
    await st.command(START)
    await st.expect("command_rejected", START, "Start with only the chemistry written is refused")
    await st.expect("state", IDLE, "still Idle")
    print(f"station {st.n}: Start refused without a complete load block")


async def load(st: Station, cells: int, capacity: float, mass: float) -> None:
    code = await st.write_load_block(NMC111, cells, capacity, mass)
    check(code is None, f"station {st.n}: writing the load block while Idle got exception {code}")
    await st.expect_load_block(NMC111, cells, capacity, mass, "the load block reads back")


async def check_a_loaded_pack_arrives_as_documented(st: Station, cells: int) -> None:
    soc = await st.read("state_of_charge")
    check(10.0 <= soc <= 40.0, f"station {st.n}: state_of_charge {soc} %, expected an arrival at 10-40 %")
    iso = await st.read("insulation_resistance")
    # 200-800 MOhm at arrival, with the documented temperature factor and drift.
    check(150.0 <= iso <= 1000.0, f"station {st.n}: insulation_resistance {iso} MOhm, expected about 200-800")
    pack, cell = await st.read("pack_voltage"), await st.read("cell_voltage")
    check(
        abs(pack - cells * cell) <= 0.01 * pack + 0.1,
        f"station {st.n}: pack_voltage {pack} V is not cells_in_series {cells} x cell_voltage {cell} V",
    )
    check(3.0 <= cell <= 4.2, f"station {st.n}: an NMC cell at rest reads {cell} V, expected 3.0-4.2")
    print(f"station {st.n}: pack arrived at {soc:.1f} % SOC, {iso:.0f} MOhm, {pack:.1f} V")


async def check_hold_restart_stop_and_reset(st: Station) -> None:
    max_current = await st.read("max_current")
    await st.command(START)
    await st.wait_state(RUNNING, "Start on a loaded Idle station")
    await st.expect("command_rejected", 0, "an accepted command clears the rejection")
    i = await st.wait_current(lambda a: abs(a - max_current) <= 0.02 * max_current, f"about max_current {max_current} A")
    print(f"station {st.n}: Running at {i:.1f} A")

    code = await st.write_load_block(NMC111, 10, 10.0, 10.0)
    check(code == SERVER_BUSY, f"station {st.n}: writing the load block while Running got {code}, expected exception 6")
    await st.expect("cells_in_series", 96, "unchanged after the refused load block")

    energy = await st.line.wait_for(st.sig["energy_recovered"], lambda e: e > 0.0, "energy recovered while Running")
    await st.command(HOLD)
    await st.wait_state(HELD, "Hold: Holding, then Held after 2 simulated seconds")
    await st.wait_current(lambda a: abs(a) < 1.0, "no current while Held")
    await st.command(RESTART)
    await st.wait_state(RUNNING, "Restart from Held")
    await st.wait_current(lambda a: a > 0.5 * max_current, "current again after Restart")
    await st.command(STOP)
    await st.wait_state(STOPPED, "Stop from Running")
    await st.wait_current(lambda a: abs(a) < 1.0, "no current once Stopped")
    await st.command(HOLD)
    await st.expect("command_rejected", HOLD, "Hold is refused in Stopped")
    await st.expect("state", STOPPED, "a refused Hold leaves the state")
    await st.command(RESET)
    await st.wait_state(IDLE, "Reset from Stopped: Resetting, then Idle")
    await st.expect("command_rejected", 0, "Reset accepted")
    await st.expect_load_block(0, 0, 0.0, 0.0, "Reset unloads the station")
    await st.expect("insulation_resistance", NO_UNIT_MOHM, "no unit loaded after Reset")
    await st.expect("energy_recovered", 0.0, "Reset clears the batch results")
    print(f"station {st.n}: Hold, Restart, Stop and Reset as documented ({energy:.3f} kWh before Hold)")


async def check_abort_and_reset(st: Station) -> None:
    await st.command(START)
    await st.wait_state(RUNNING, "Start")
    await st.command(ABORT)
    await st.wait_state(ABORTED, "Abort: Aborting, then Aborted")
    await st.wait_current(lambda a: abs(a) < 1.0, "no current once Aborted")
    await st.command(RESET)
    await st.wait_state(IDLE, "Reset from Aborted")
    await st.expect_load_block(0, 0, 0.0, 0.0, "Reset unloads the station")
    print(f"station {st.n}: Abort and Reset as documented")


async def check_a_short_run_completes_and_rebounds(st: Station) -> None:
    end_v = 3.0
    await st.line.expect_write(st.sig["end_voltage_per_cell"], end_v)
    await st.line.expect_write(st.sig["hold_time"], 0.0)
    await st.line.expect_write(st.sig["max_current"], 10.0)
    await load(st, 4, 1.0, 5.0)
    await st.command(START)
    await st.wait_state(COMPLETE, "a 1 Ah pack at 10 A to 3.0 V/cell with no hold completes", limit_s=40.0)
    await st.wait_current(lambda a: abs(a) < 1.0, "the current at 0 at Complete")
    await st.line.wait_for(
        st.sig["cell_voltage"], lambda v: v > end_v + 0.01, f"a rebound above the end voltage {end_v} V", 10.0
    )
    await st.command(RESET)
    await st.wait_state(IDLE, "Reset from Complete")
    for name in ("end_voltage_per_cell", "hold_time", "max_current"):
        await st.line.expect_write(st.sig[name], st.sig[name].default)
    print(f"station {st.n}: Complete, rebound above {end_v} V/cell, Reset")


async def check_over_temperature_holds_by_itself(st: Station) -> None:
    # A light unit heats fast: 96 cells at 300 A make about 3 kW in 50 kg.
    limit = st.sig["max_cell_temperature_setpoint"]
    await st.line.expect_write(limit, limit.min)
    await load(st, 96, 280.0, 50.0)
    await st.command(START)
    await st.wait_state(RUNNING, "Start")
    await st.line.wait_for(
        st.sig["state"], lambda s: s == HELD, f"Held by itself once the hottest cell exceeds {limit.min} degC", 30.0
    )
    hottest = await st.read("max_cell_temperature")
    alarms = int(await st.read("alarms"))
    check(hottest > limit.min - 1.0, f"station {st.n}: Held with the hottest cell at {hottest} degC, limit {limit.min}")
    await st.wait_current(lambda a: abs(a) < 1.0, "no current once Held")
    await st.line.expect_write(limit, limit.default)
    await st.command(RESTART)
    await st.wait_state(RUNNING, "Restart resumes after an over-temperature hold")
    await st.command(ABORT)
    await st.wait_state(ABORTED, "Abort")
    await st.command(RESET)
    await st.wait_state(IDLE, "Reset from Aborted")
    print(f"station {st.n}: held by itself at {hottest:.1f} degC (limit {limit.min}, alarms {alarms}); Restart resumed")


async def main(line: Line) -> None:
    """Drive discharge stations through the documented sequence."""
    first, second, third, fourth = (Station(line, n) for n in range(1, 5))
    await check_start_needs_a_complete_load_block(first)
    await load(first, 96, 280.0, 500.0)
    await check_a_loaded_pack_arrives_as_documented(first, 96)
    await check_hold_restart_stop_and_reset(first)
    await load(second, 96, 280.0, 500.0)
    await check_abort_and_reset(second)
    await check_a_short_run_completes_and_rebounds(third)
    await check_over_temperature_holds_by_itself(fourth)


if __name__ == "__main__":
    run(main)
