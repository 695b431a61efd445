"""Every signal of a Modbus line's map, read and written by pymodbus.

Spec (simulators/README.md, "Modbus rules" and the line's map):
- every signal reads, decoded per its type and scale, within min..=max, and
  a RW signal with a default reads that default right after start;
- the sim_time_s heartbeat advances between two reads;
- every RW signal (but the command register) takes a valid value different
  from its present one, reads it back within the type's resolution, touches
  no other signal, and is restored;
- a command register reads back the code written; a command the state model
  refuses (Reset on an Idle unit) leaves the state and names itself in
  command_rejected.
"""

from __future__ import annotations

import asyncio

from modbus_common import Line, Signal, as_f32, check, is_nan, resolution, run

# Pairs of setpoints where the first must stay below the second (the README:
# "O2 alarm limit not below the trip limit" is refused with exception 3).
BELOW = [("o2_alarm_limit", "o2_trip_limit")]
IDLE = 1
RESET = 6


def in_range(sig: Signal, value: float) -> bool:
    return not is_nan(value) and sig.min <= value <= sig.max


async def check_every_signal_reads_in_range_with_its_default(line: Line) -> None:
    values = await line.read_all(line.map.signals)
    for sig in line.map.signals:
        value = values[sig]
        check(
            in_range(sig, value),
            f"{line.map.line}: {sig} reads {value}, outside its range {sig.min}..={sig.max}",
        )
        if sig.writable and sig.default is not None:
            check(
                abs(value - sig.default) <= resolution(sig, sig.default),
                f"{line.map.line}: {sig} reads {value} after start, expected its default {sig.default}",
            )
    print(f"read {len(values)} signals in range, defaults as documented")


async def check_the_heartbeat_advances(line: Line) -> None:
    sig = line.map.find("sim_time_s")
    first = await line.read(sig)
    await asyncio.sleep(0.5)
    second = await line.read(sig)
    check(second > first, f"{line.map.line}: {sig} read {first} then {second} 0.5 s later, expected it to advance")
    print(f"sim_time_s advanced {first} -> {second}")


async def check_the_station_count(line: Line, blocks: int) -> None:
    if not any(s.name == "station_count" for s in line.map.signals):
        return
    sig = line.map.find("station_count")
    await line.expect_value(sig, blocks, "SimConfig::stations")


def bounds(line: Line, sig: Signal, present: dict[Signal, float]) -> tuple[float, float]:
    """The range a new value of `sig` may take, narrowed by related setpoints."""
    low, high = sig.min, sig.max
    for below, above in BELOW:
        if sig.name == below:
            high = min(high, present[line.map.find(above, sig.block)])
        if sig.name == above:
            low = max(low, present[line.map.find(below, sig.block)])
    return low, high


def new_value(sig: Signal, present: float, low: float, high: float) -> float:
    """A value in low..high (strictly inside where the bounds are related
    setpoints) that differs from `present`: halfway to the farther end."""
    target = high if high - present >= present - low else low
    if sig.type == "f32":
        return as_f32((present + target) / 2.0)
    step = (target - present) / 2.0
    value = present + (int(step) if abs(step) >= 1 else (1 if target > present else -1))
    return float(value)


async def check_every_rw_signal_writes_and_reads_back(line: Line) -> None:
    writable = [s for s in line.map.signals if s.writable and s.name != "command"]
    holding = line.map.table("holding")
    count = 0
    for sig in writable:
        before = await line.read_all(holding)
        low, high = bounds(line, sig, before)
        value = new_value(sig, before[sig], low, high)
        check(
            low <= value <= high and value != before[sig],
            f"{line.map.line}: no valid value for {sig} other than {before[sig]} in {low}..={high}",
        )
        await line.expect_write(sig, value)
        after = await line.read_all(holding)
        check(
            abs(after[sig] - value) <= resolution(sig, value),
            f"{line.map.line}: {sig} reads {after[sig]} after writing {value}",
        )
        for other in holding:
            if other != sig:
                check(
                    after[other] == before[other],
                    f"{line.map.line}: writing {sig} changed {other} from {before[other]} to {after[other]}",
                )
        restore = sig.default if sig.default is not None else before[sig]
        await line.expect_write(sig, restore)
        await line.expect_value(sig, restore, "restored")
        count += 1
    print(f"wrote, read back and restored {count} RW signals")


async def check_command_registers_read_back_and_report_refusals(line: Line) -> None:
    commands = [s for s in line.map.signals if s.name == "command"]
    for cmd in commands:
        state = line.map.find("state", cmd.block)
        rejected = line.map.find("command_rejected", cmd.block)
        await line.expect_value(state, IDLE, "Idle after start")
        await line.expect_write(cmd, RESET)
        await line.expect_value(cmd, RESET, "a command register reads back the code written")
        await line.expect_value(rejected, RESET, "Reset on an Idle unit is refused by the state model")
        await line.expect_value(state, IDLE, "a refused command leaves the state")
        await line.expect_write(cmd, 0)
        await line.expect_value(cmd, 0, "0 (no command) reads back")
        await line.expect_value(state, IDLE, "0 is no command")
    print(f"{len(commands)} command registers read back; Reset on Idle refused with command_rejected 6")


async def main(line: Line) -> None:
    """Read and write every signal of a Modbus line per its map."""
    await check_every_signal_reads_in_range_with_its_default(line)
    await check_the_heartbeat_advances(line)
    await check_the_station_count(line, len({s.block for s in line.map.signals} - {None}))
    await check_every_rw_signal_writes_and_reads_back(line)
    await check_command_registers_read_back_and_report_refusals(line)


if __name__ == "__main__":
    run(main)
