"""A Modbus line's answers to requests it must refuse, as pymodbus sees them.

Spec (simulators/README.md, "Modbus rules"):
- reads may span gaps (which read 0) but not run past the table's last
  mapped register: exception 2; 1..=125 registers per read, else exception 3;
- writes must cover whole RW signals without gaps: a read-only, unmapped,
  gap or partial (half of a 32-bit value) write is exception 2;
- a value outside the signal's range, NaN, or an unknown command code is
  exception 3, and the value is unchanged;
- several adjacent signals in one function-16 request apply all or none;
- functions other than 3, 4, 6 and 16 get exception 1;
- a unit id other than the line's gets exception 11.
"""

from __future__ import annotations

from modbus_common import Line, Signal, as_f32, check, encode, fail, run

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
GATEWAY_TARGET_FAILED = 11


def expect_exception(line: Line, what: str, got, code: int) -> None:
    check(
        got == code,
        f"{line.map.line}: {what} got {'a normal response ' + repr(got) if isinstance(got, list) or got is None else 'exception ' + str(got)}, expected exception {code}",
    )


async def check_reads_stop_at_the_extent_of_each_table(line: Line) -> None:
    for table in ("input", "holding"):
        end = line.map.extent(table)
        got = await line.read_raw(table, end, 1)
        expect_exception(line, f"reading {table} register {end} (one past the last mapped)", got, ILLEGAL_ADDRESS)
        got = await line.read_raw(table, end - 1, 2)
        expect_exception(line, f"reading {table} registers {end - 1}..={end}", got, ILLEGAL_ADDRESS)
        got = await line.read_raw(table, 60000, 10)
        expect_exception(line, f"reading {table} registers 60000..60009", got, ILLEGAL_ADDRESS)
        got = await line.read_raw(table, end - 1, 1)
        check(isinstance(got, list), f"{line.map.line}: reading the last mapped {table} register {end - 1} got exception {got}")
    print("reads past each table's extent: exception 2")


async def check_gaps_read_zero(line: Line) -> None:
    for table in ("input", "holding"):
        signals = line.map.table(table)
        used = {a for s in signals for a in range(s.address, s.last + 1)}
        gaps = [a for a in range(line.map.extent(table)) if a not in used]
        if not gaps:
            continue
        first = gaps[0]
        got = await line.read_raw(table, first, 1)
        check(got == [0], f"{line.map.line}: unmapped {table} register {first} (a gap) reads {got}, expected [0]")
    print("gaps between signals read 0")


async def check_read_counts(line: Line) -> None:
    for table in ("input", "holding"):
        got = await line.read_unchecked(table, 0, 126)
        expect_exception(line, f"reading 126 {table} registers from 0", got, ILLEGAL_VALUE)
        got = await line.read_unchecked(table, 0, 0)
        expect_exception(line, f"reading 0 {table} registers from 0", got, ILLEGAL_VALUE)
        if line.map.extent(table) >= 125:
            got = await line.read_raw(table, 0, 125)
            check(isinstance(got, list) and len(got) == 125, f"{line.map.line}: reading 125 {table} registers got {got}")
    print("read counts: 0 and 126 are exception 3")


def out_of_range_values(sig: Signal) -> list[float]:
    """Engineering values just outside the range that the type can carry."""
    lo, hi = {"u16": (0, 65535), "i16": (-32768, 32767), "u32": (0, 2**32 - 1), "i32": (-(2**31), 2**31 - 1)}.get(
        sig.type, (-3.0e38, 3.0e38)
    )
    values = []
    step = 1.0 if sig.type != "f32" else max(1.0, abs(sig.max) * 0.01)
    if sig.max + step <= hi * sig.scale:
        values.append(sig.max + step)
    step = 1.0 if sig.type != "f32" else max(1.0, abs(sig.min) * 0.01)
    if sig.min - step >= lo * sig.scale:
        values.append(sig.min - step)
    return values


async def check_out_of_range_writes_are_refused_and_change_nothing(line: Line) -> None:
    count = 0
    for sig in [s for s in line.map.signals if s.writable]:
        before = await line.read(sig)
        for bad in out_of_range_values(sig):
            got = await line.write(sig, bad)
            expect_exception(line, f"writing {bad} to {sig} (range {sig.min}..={sig.max})", got, ILLEGAL_VALUE)
            await line.expect_value(sig, before, f"unchanged after the refused write of {bad}")
            count += 1
        if sig.type == "f32":
            got = await line.write_raw(sig.address, [0x7FC0, 0x0000])
            expect_exception(line, f"writing NaN to {sig}", got, ILLEGAL_VALUE)
            await line.expect_value(sig, before, "unchanged after the refused NaN")
            count += 1
    print(f"{count} out-of-range or NaN writes: exception 3, values unchanged")


async def check_writes_must_cover_whole_rw_signals(line: Line) -> None:
    holding = line.map.table("holding")
    for sig in [s for s in holding if s.width == 2 and s.writable][:1]:
        before = await line.read(sig)
        words = encode(sig, before)
        got = await line.write_raw(sig.address, words[:1], 6)
        expect_exception(line, f"writing the high word of {sig} alone (function 6)", got, ILLEGAL_ADDRESS)
        got = await line.write_raw(sig.address + 1, words[1:], 16)
        expect_exception(line, f"writing the low word of {sig} alone (function 16)", got, ILLEGAL_ADDRESS)
        got = await line.write_raw(sig.address + 1, words, 16)
        expect_exception(line, f"writing 2 registers from the middle of {sig}", got, ILLEGAL_ADDRESS)
        await line.expect_value(sig, before, "unchanged after partial writes")
    used = {a for s in holding for a in range(s.address, s.last + 1)}
    gaps = [a for a in range(line.map.extent("holding")) if a not in used]
    if gaps:
        got = await line.write_raw(gaps[0], [0], 6)
        expect_exception(line, f"writing unmapped holding register {gaps[0]} (a gap)", got, ILLEGAL_ADDRESS)
        before_gap = [s for s in holding if s.last + 1 == gaps[0] and s.writable]
        if before_gap:
            sig = before_gap[0]
            value = await line.read(sig)
            got = await line.write_raw(sig.address, encode(sig, value) + [0], 16)
            expect_exception(line, f"writing {sig} and the gap after it", got, ILLEGAL_ADDRESS)
    end = line.map.extent("holding")
    got = await line.write_raw(end, [0], 6)
    expect_exception(line, f"writing holding register {end} past the map", got, ILLEGAL_ADDRESS)
    # A holding register at an input signal's address that is not itself
    # holding-mapped is unmapped: the input table cannot be written.
    print("partial, gap and unmapped writes: exception 2")


async def check_adjacent_signals_write_all_or_none(line: Line) -> None:
    holding = [s for s in line.map.table("holding") if s.writable and s.name != "command" and s.default is not None]
    for a, b in zip(holding, holding[1:]):
        if a.last + 1 != b.address or a.block != b.block:
            continue
        va, vb = await line.read(a), await line.read(b)
        bad_b = b.max + max(1.0, abs(b.max)) if b.type == "f32" else None
        if bad_b is None:
            continue
        new_a = as_f32((va + a.min) / 2.0) if a.type == "f32" else va
        got = await line.write_raw(a.address, encode(a, new_a) + encode(b, bad_b), 16)
        expect_exception(line, f"writing {a} = {new_a} with {b} = {bad_b} (out of range) in one request", got, ILLEGAL_VALUE)
        await line.expect_value(a, va, f"unchanged: the request with a bad {b.name} applies none of it")
        await line.expect_value(b, vb, "unchanged")
        print(f"one request over {a.name} and {b.name} with a bad value: exception 3, neither written")
        return
    fail(f"{line.map.line}: no two adjacent RW setpoints to write together")


async def check_unknown_command_codes_are_refused(line: Line) -> None:
    for cmd in [s for s in line.map.signals if s.name == "command"][:1]:
        before = await line.read(cmd)
        got = await line.write_raw(cmd.address, [7], 6)
        expect_exception(line, f"writing command code 7 to {cmd}", got, ILLEGAL_VALUE)
        await line.expect_value(cmd, before, "unchanged after an unknown code")
    print("command code 7: exception 3")


async def check_unsupported_functions(line: Line) -> None:
    client, unit = line.client, line.unit
    for what, call in [
        ("read coils (function 1)", client.read_coils(0, count=1, device_id=unit)),
        ("read discrete inputs (function 2)", client.read_discrete_inputs(0, count=1, device_id=unit)),
        ("write single coil (function 5)", client.write_coil(0, True, device_id=unit)),
        ("write multiple coils (function 15)", client.write_coils(0, [True], device_id=unit)),
        ("read/write multiple registers (function 23)", client.readwrite_registers(read_address=0, read_count=1, write_address=0, values=[0], device_id=unit)),
        ("mask write register (function 22)", client.mask_write_register(address=0, and_mask=0xFFFF, or_mask=0, device_id=unit)),
    ]:
        rr = await call
        got = rr.exception_code if rr.isError() else list(getattr(rr, "registers", []) or getattr(rr, "bits", []))
        expect_exception(line, what, got, ILLEGAL_FUNCTION)
    print("functions 1, 2, 5, 15, 22, 23: exception 1")


async def check_other_unit_ids_get_exception_11(line: Line) -> None:
    for unit in sorted({0, 255, line.unit % 247 + 1}):
        got = await line.read_raw("input", 0, 1, unit=unit)
        expect_exception(line, f"reading input register 0 as unit id {unit} (the line is {line.unit})", got, GATEWAY_TARGET_FAILED)
        rr = await line.client.write_register(0, 0, device_id=unit)
        got = rr.exception_code if rr.isError() else None
        expect_exception(line, f"writing holding register 0 as unit id {unit}", got, GATEWAY_TARGET_FAILED)
    print("other unit ids: exception 11")


async def main(line: Line) -> None:
    """Check a Modbus line's exceptions per the README."""
    await check_reads_stop_at_the_extent_of_each_table(line)
    await check_gaps_read_zero(line)
    await check_read_counts(line)
    await check_out_of_range_writes_are_refused_and_change_nothing(line)
    await check_writes_must_cover_whole_rw_signals(line)
    await check_adjacent_signals_write_all_or_none(line)
    await check_unknown_command_codes_are_refused(line)
    await check_unsupported_functions(line)
    await check_other_unit_ids_get_exception_11(line)


if __name__ == "__main__":
    run(main)
