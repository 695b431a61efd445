"""The mechanical line driven through purge, feeding, states and a trip by
pymodbus.

Spec (simulators/README.md, "Mechanical line" and "Conventions"):
- Idle, the chamber is open to air (O2 near 20.9 %), nothing is fed;
- Start is refused (command_rejected 1) without a charge; the charge block
  (chemistry, charge mass) is written while Idle and refused while not
  (exception 6);
- on Start the N2 purge brings O2 down; nothing is fed (feeding 0,
  processed 0) until O2 is below o2_alarm_limit, then feeding 1 and
  processed grows; the six outputs sum to processed;
- Hold, Restart and Stop reach Held, Running and Stopped and stop the feed;
  at Complete processed is the charge mass and the outputs sum to it (within
  the weigher's and scales' errors); Reset
  clears the charge block, the outputs and the trip;
- the O2 alarm limit must stay below the trip limit (exception 3); O2 above
  o2_trip_limit after the purge trips the line to Aborted with trip_cause 1
  and alarm bit 3 (8).
"""

from __future__ import annotations

import asyncio
import time

from modbus_common import Line, check, encode, run

IDLE, RUNNING, COMPLETE, HELD, STOPPED, ABORTED = 1, 2, 3, 5, 8, 10
START, HOLD, RESTART, STOP, RESET = 1, 2, 3, 4, 6
ILLEGAL_VALUE, SERVER_BUSY = 3, 6
NMC111 = 1
TRIPPED = 8
TRIP_O2 = 1
# How far measured masses may stray: the belt weigher's 0.4 % noise and 0.4 %
# drift, the output scales' 0.1 % drift and 0.1 % ticket error.
MEASURED = 0.015
OUTPUTS = ["black_mass", "cu_foil", "al_foil", "steel", "plastics", "losses"]


class Mechanical:
    def __init__(self, line: Line):
        self.line = line
        self.sig = {s.name: s for s in line.map.signals}

    async def read(self, name: str) -> float:
        return await self.line.read(self.sig[name])

    async def expect(self, name: str, value: float, why: str) -> None:
        await self.line.expect_value(self.sig[name], value, why)

    async def command(self, code: int) -> None:
        await self.line.expect_write(self.sig["command"], code)
        await self.expect("command", code, "the command register reads back the code written")

    async def wait(self, name: str, wanted, what: str, limit_s: float = 15.0) -> float:
        return await self.line.wait_for(self.sig[name], wanted, what, limit_s)

    async def write_pair(self, first: str, second: str, a: float, b: float):
        """Two adjacent signals in one function-16 request; None or the exception code."""
        s1, s2 = self.sig[first], self.sig[second]
        check(s1.last + 1 == s2.address, f"{s1} and {s2} are not adjacent in the map")
        return await self.line.write_raw(s1.address, encode(s1, a) + encode(s2, b), 16)

    async def write_charge(self, chemistry: int, mass: float):
        return await self.write_pair("chemistry", "charge_mass", chemistry, mass)

    async def outputs_and_processed(self) -> tuple[float, float]:
        """The six outputs' sum and processed, from one read (one instant)."""
        values = await self.line.read_all([self.sig[n] for n in OUTPUTS + ["processed"]])
        return sum(values[self.sig[n]] for n in OUTPUTS), values[self.sig["processed"]]


async def check_idle_chamber_is_open_to_air(m: Mechanical) -> None:
    o2 = await m.read("chamber_o2")
    check(19.5 <= o2 <= 22.0, f"{m.sig['chamber_o2']} reads {o2} vol% Idle, expected near 20.9")
    await m.expect("feeding", 0, "nothing is fed while Idle")
    await m.expect("processed", 0, "nothing processed before a batch")
    print(f"Idle: chamber O2 {o2:.2f} vol%")


async def check_start_needs_a_charge(m: Mechanical) -> None:
    await m.command(START)
    await m.expect("command_rejected", START, "Start without a charge is refused")
    await m.expect("state", IDLE, "a refused Start leaves the line Idle")
    print("Start refused without a charge")


async def load(m: Mechanical, mass: float) -> None:
    code = await m.write_charge(NMC111, mass)
    check(code is None, f"writing the charge block (chemistry, charge_mass) while Idle got exception {code}")
    await m.expect("chemistry", NMC111, "the charge block reads back")
    await m.expect("charge_mass", mass, "the charge block reads back")


async def check_purge_then_feed(m: Mechanical) -> None:
    alarm = await m.read("o2_alarm_limit")
    await m.command(START)
    await m.wait("state", lambda s: s == RUNNING, "Running after Start")
    await m.expect("command_rejected", 0, "an accepted command clears the rejection")
    code = await m.write_charge(NMC111, 100.0)
    check(code == SERVER_BUSY, f"writing the charge block while Running got {code}, expected exception 6")
    # Until the purge first gets below the alarm limit nothing is fed; after
    # that the feed may pause (the airlock lets air in), so only the first
    # sign of feeding is held against the O2 reading.
    purging_seen = 0
    deadline = time.monotonic() + 30.0
    while True:
        values = await m.line.read_all([m.sig[n] for n in ("chamber_o2", "feeding", "processed")])
        o2, feeding, processed = (values[m.sig[n]] for n in ("chamber_o2", "feeding", "processed"))
        if feeding == 1 or processed > 0:
            break
        purging_seen += o2 > alarm
        check(time.monotonic() < deadline, f"no feeding 30 s (30 simulated minutes) after Start, O2 {o2} vol%")
        await asyncio.sleep(0.05)
    check(purging_seen > 0, f"fed (feeding {feeding}, processed {processed} kg) before any O2 reading above the alarm limit {alarm}")
    check(o2 < alarm + 0.2, f"fed (feeding {feeding}, processed {processed} kg) with chamber O2 {o2} vol%, alarm limit {alarm}")
    await m.wait("processed", lambda p: p > 0, "processed growing while feeding")
    total, processed = await m.outputs_and_processed()
    check(
        abs(total - processed) <= MEASURED * processed + 0.01,
        f"the six outputs sum to {total} kg, processed reads {processed} kg",
    )
    print(f"purged ({purging_seen} reads above the O2 alarm limit, unfed), fed from O2 {o2:.2f} vol%; outputs {total:.2f} = processed {processed:.2f} kg")


async def check_hold_restart_and_complete(m: Mechanical, mass: float) -> None:
    await m.command(HOLD)
    await m.wait("state", lambda s: s == HELD, "Held after Hold")
    await m.wait("feeding", lambda f: f == 0, "no feeding while Held")
    held = await m.read("processed")
    await m.command(RESTART)
    await m.wait("state", lambda s: s == RUNNING, "Running after Restart")
    await m.wait("processed", lambda p: p > held, "processed growing again after Restart")
    await check_completes_without_feeding(m, mass)
    await m.expect("remaining", 0, "nothing remaining once Complete")
    total, processed = await m.outputs_and_processed()
    print(f"Complete: processed {processed:.3f} kg of a {mass} kg charge; the six outputs sum to {total:.3f} kg")
    shares = {n: await m.read(n) / processed for n in OUTPUTS}
    print("yields: " + ", ".join(f"{n} {100 * v:.1f} %" for n, v in shares.items()))
    # processed is a belt weigher's integral and the outputs are weighed on
    # scales (README, "What the interface shows"): they agree with the charge
    # and with each other within the instruments' errors, not to the gram.
    check(
        abs(processed - mass) <= MEASURED * mass,
        f"Complete: processed reads {processed} kg, expected the charge mass {mass} kg within {MEASURED:.1%}",
    )
    check(
        abs(total - processed) <= MEASURED * processed,
        f"Complete: the six outputs sum to {total} kg, processed reads {processed} kg (beyond {MEASURED:.1%})",
    )
    await reset(m, "Complete")
    print("Hold, Restart, Complete and Reset as documented")


async def check_completes_without_feeding(m: Mechanical, mass: float) -> None:
    """Every snapshot (state and feeding in one read) from Complete on shows
    feeding 0: feeding is 1 only while Running."""
    pair = [m.sig["state"], m.sig["feeding"]]
    deadline = time.monotonic() + 30.0
    complete_reads = 0
    while complete_reads < 10:
        values = await m.line.read_all(pair)
        state, feeding = values[pair[0]], values[pair[1]]
        if state == COMPLETE:
            complete_reads += 1
            check(feeding == 0, f"{pair[1]} reads {feeding} in the same read as {pair[0]} = 3 (Complete), expected 0")
        check(time.monotonic() < deadline, f"not Complete 30 s after Start with a {mass} kg charge (state {state})")
        await asyncio.sleep(0.02)


async def reset(m: Mechanical, since: str) -> None:
    await m.command(RESET)
    await m.wait("state", lambda s: s == IDLE, f"Idle after Reset from {since}")
    await m.expect("command_rejected", 0, "Reset accepted")
    await m.expect("chemistry", 0, "Reset clears the charge block")
    await m.expect("charge_mass", 0, "Reset clears the charge block")
    for name in OUTPUTS + ["processed"]:
        await m.expect(name, 0, "Reset clears the outputs")


async def check_stop_and_reset(m: Mechanical) -> None:
    await load(m, 500.0)
    await m.command(START)
    await m.wait("state", lambda s: s == RUNNING, "Running after Start")
    await m.command(STOP)
    await m.wait("state", lambda s: s == STOPPED, "Stopped after Stop")
    await m.expect("feeding", 0, "no feeding once Stopped")
    await m.command(HOLD)
    await m.expect("command_rejected", HOLD, "Hold is refused in Stopped")
    await m.expect("state", STOPPED, "a refused Hold leaves the state")
    await reset(m, "Stopped")
    print("Stop during the purge, Hold refused in Stopped, Reset as documented")


async def check_limits_must_stay_ordered(m: Mechanical) -> None:
    alarm, trip = await m.read("o2_alarm_limit"), await m.read("o2_trip_limit")
    code = await m.line.write(m.sig["o2_alarm_limit"], trip)
    check(code == ILLEGAL_VALUE, f"writing o2_alarm_limit = o2_trip_limit ({trip}) got {code}, expected exception 3")
    code = await m.line.write(m.sig["o2_trip_limit"], alarm)
    check(code == ILLEGAL_VALUE, f"writing o2_trip_limit = o2_alarm_limit ({alarm}) got {code}, expected exception 3")
    code = await m.write_pair("o2_alarm_limit", "o2_trip_limit", trip + 1.0, trip + 0.5)
    check(code == ILLEGAL_VALUE, f"writing alarm {trip + 1.0} above trip {trip + 0.5} in one request got {code}, expected 3")
    await m.expect("o2_alarm_limit", alarm, "unchanged after refused limits")
    await m.expect("o2_trip_limit", trip, "unchanged after refused limits")
    print("O2 alarm limit not below the trip limit: exception 3")


async def check_o2_above_the_trip_limit_trips(m: Mechanical) -> None:
    alarm, trip = await m.read("o2_alarm_limit"), await m.read("o2_trip_limit")
    await load(m, 2000.0)
    await m.command(START)
    await m.wait("feeding", lambda f: f == 1, "feeding after the purge", 30.0)
    o2 = await m.read("chamber_o2")
    low_alarm, low_trip = 0.5, max(0.6, min(o2 / 4.0, 1.0))
    code = await m.write_pair("o2_alarm_limit", "o2_trip_limit", low_alarm, low_trip)
    check(code is None, f"writing O2 limits {low_alarm} / {low_trip} in one request got exception {code}")
    await m.wait("state", lambda s: s == ABORTED, f"Aborted: O2 {o2} vol% is above the trip limit {low_trip}")
    await m.expect("trip_cause", TRIP_O2, "tripped on O2")
    alarms = await m.read("alarms")
    check(int(alarms) & TRIPPED, f"alarms reads {alarms} after the trip, expected bit 3 (8) set")
    await m.expect("feeding", 0, "no feeding once tripped")
    await m.command(RESET)
    await m.wait("state", lambda s: s == IDLE, "Idle after Reset from Aborted")
    await m.expect("trip_cause", 0, "Reset clears the trip")
    code = await m.write_pair("o2_alarm_limit", "o2_trip_limit", alarm, trip)
    check(code is None, f"restoring O2 limits {alarm} / {trip} got exception {code}")
    print(f"O2 {o2:.2f} vol% above a trip limit of {low_trip:.2f}: Aborted, trip_cause 1, alarm bit 3; Reset clears it")


async def main(line: Line) -> None:
    """Drive the mechanical line through the documented sequence."""
    m = Mechanical(line)
    await check_idle_chamber_is_open_to_air(m)
    await check_start_needs_a_charge(m)
    await load(m, 500.0)
    await check_purge_then_feed(m)
    await check_hold_restart_and_complete(m, 500.0)
    await check_stop_and_reset(m)
    await check_limits_must_stay_ordered(m)
    await check_o2_above_the_trip_limit_trips(m)


if __name__ == "__main__":
    run(main)
