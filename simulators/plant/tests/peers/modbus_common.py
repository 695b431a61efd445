"""What the Modbus peer scripts share: a register map file read as signals at
absolute addresses, values encoded and decoded per the documented types, and
a pymodbus client whose every call fails with a message naming the line,
signal, address and the expected and actual outcome.

The map format is the one simulators/README.md documents: `[[signal]]` at an
absolute `address`, and an optional `[block]` (the discharge stations)
repeated at `first_address + (n - 1) * stride` with `[[block.signal]]` at an
`offset`. 32-bit types take two registers, the high word at the lower
address; engineering value = raw value x scale.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import struct
import sys
import time
import tomllib
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
)

WIDE = {"u32", "i32", "f32"}
PACK = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f"}
MAX_READ = 125


class CheckFailed(Exception):
    """A check of the simulator against its documentation failed."""


def fail(message: str) -> None:
    raise CheckFailed(message)


def check(ok: bool, message: str) -> None:
    if not ok:
        fail(message)


@dataclass(frozen=True)
class Signal:
    """One signal of a map at its absolute address."""

    name: str
    block: int | None
    table: str
    address: int
    type: str
    scale: float
    access: str
    min: float
    max: float
    default: float | None

    @property
    def width(self) -> int:
        return 2 if self.type in WIDE else 1

    @property
    def last(self) -> int:
        return self.address + self.width - 1

    @property
    def writable(self) -> bool:
        return self.access == "RW"

    def __str__(self) -> str:
        where = f" (station {self.block})" if self.block is not None else ""
        span = f"{self.address}" if self.width == 1 else f"{self.address}..={self.last}"
        return f"'{self.name}'{where} at {self.table} register {span}"


@dataclass(frozen=True)
class LineMap:
    line: str
    unit_id: int
    signals: list[Signal]

    def find(self, name: str, block: int | None = None) -> Signal:
        for s in self.signals:
            if s.name == name and s.block == block:
                return s
        fail(f"{self.line}: the map has no signal '{name}' (block {block})")
        raise AssertionError("unreachable")

    def table(self, table: str) -> list[Signal]:
        return sorted((s for s in self.signals if s.table == table), key=lambda s: s.address)

    def extent(self, table: str) -> int:
        """One past the last mapped register of `table`."""
        return max((s.last + 1 for s in self.signals if s.table == table), default=0)


def _signal(entry: dict, address: int, block: int | None) -> Signal:
    return Signal(
        name=entry["name"],
        block=block,
        table=entry["table"],
        address=address,
        type=entry["type"],
        scale=float(entry["scale"]),
        access=entry["access"],
        min=float(entry["min"]),
        max=float(entry["max"]),
        default=float(entry["default"]) if "default" in entry else None,
    )


def load_map(path: str, blocks: int) -> LineMap:
    """The map file's signals, its block repeated `blocks` times."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    signals = [_signal(e, e["address"], None) for e in doc.get("signal", [])]
    block = doc.get("block")
    if block is not None:
        for n in range(1, blocks + 1):
            base = block["first_address"] + (n - 1) * block["stride"]
            signals += [_signal(e, base + e["offset"], n) for e in block.get("signal", [])]
    return LineMap(line=doc["line"], unit_id=doc["unit_id"], signals=signals)


def encode(sig: Signal, value: float) -> list[int]:
    """The registers holding engineering `value` of `sig`, high word first."""
    raw = value / sig.scale
    if sig.type != "f32":
        raw = int(round(raw))
    data = struct.pack(PACK[sig.type], raw)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode(sig: Signal, words: list[int]) -> float:
    data = b"".join(w.to_bytes(2, "big") for w in words)
    return struct.unpack(PACK[sig.type], data)[0] * sig.scale


def resolution(sig: Signal, value: float) -> float:
    """How far a read-back may be from a written value."""
    if sig.type == "f32":
        return max(abs(value) * 2.0**-23, 1e-30) * sig.scale
    return 0.0


def as_f32(value: float) -> float:
    return struct.unpack(">f", struct.pack(">f", value))[0]


class NoCountCheck:
    """Leaves out pymodbus's own check of a request's count, so that the
    server's answer to a bad count can be seen."""

    def verifyCount(self, max_count: int, count: int = -1) -> None:
        pass


class UncheckedReadInput(NoCountCheck, ReadInputRegistersRequest):
    """Function 4, any count."""


class UncheckedReadHolding(NoCountCheck, ReadHoldingRegistersRequest):
    """Function 3, any count."""


class Line:
    """A pymodbus client of one line, with reads and writes by signal."""

    def __init__(self, client: AsyncModbusTcpClient, lmap: LineMap):
        self.client = client
        self.map = lmap
        self.unit = lmap.unit_id

    # Raw requests: the response, or the exception code (an int).

    async def read_raw(self, table: str, address: int, count: int, unit: int | None = None):
        unit = self.unit if unit is None else unit
        if table == "input":
            rr = await self.client.read_input_registers(address, count=count, device_id=unit)
        else:
            rr = await self.client.read_holding_registers(address, count=count, device_id=unit)
        return rr.exception_code if rr.isError() else list(rr.registers)

    async def read_unchecked(self, table: str, address: int, count: int):
        cls = UncheckedReadInput if table == "input" else UncheckedReadHolding
        rr = await self.client.execute(False, cls(address=address, count=count, dev_id=self.unit))
        return rr.exception_code if rr.isError() else list(rr.registers)

    async def write_raw(self, address: int, words: list[int], function: int | None = None):
        """Function 6 for one register unless told, else 16; None or the exception code."""
        if function is None:
            function = 6 if len(words) == 1 else 16
        if function == 6:
            rr = await self.client.write_register(address, words[0], device_id=self.unit)
        else:
            rr = await self.client.write_registers(address, words, device_id=self.unit)
        return rr.exception_code if rr.isError() else None

    # By signal.

    async def read(self, sig: Signal) -> float:
        words = await self.read_raw(sig.table, sig.address, sig.width)
        check(isinstance(words, list), f"{self.map.line}: reading {sig} got exception {words}")
        return decode(sig, words)

    async def read_all(self, signals: list[Signal]) -> dict[Signal, float]:
        """Every signal, in reads of at most 125 registers per table."""
        values: dict[Signal, float] = {}
        for table in ("input", "holding"):
            chunk: list[Signal] = []
            for sig in sorted((s for s in signals if s.table == table), key=lambda s: s.address):
                if chunk and sig.last - chunk[0].address + 1 > MAX_READ:
                    values.update(await self._read_chunk(table, chunk))
                    chunk = []
                chunk.append(sig)
            if chunk:
                values.update(await self._read_chunk(table, chunk))
        return values

    async def _read_chunk(self, table: str, chunk: list[Signal]) -> dict[Signal, float]:
        start = chunk[0].address
        count = max(s.last for s in chunk) - start + 1
        words = await self.read_raw(table, start, count)
        check(
            isinstance(words, list) and len(words) == count,
            f"{self.map.line}: reading {count} {table} registers from {start} "
            f"({chunk[0].name} .. {chunk[-1].name}) got {words!r}",
        )
        return {s: decode(s, words[s.address - start : s.last + 1 - start]) for s in chunk}

    async def write(self, sig: Signal, value: float):
        """Write `value` whole (function 6 or 16 by width); None or the exception code."""
        return await self.write_raw(sig.address, encode(sig, value), 6 if sig.width == 1 else 16)

    async def expect_write(self, sig: Signal, value: float) -> None:
        code = await self.write(sig, value)
        check(code is None, f"{self.map.line}: writing {value} to {sig} got exception {code}, expected success")

    async def expect_value(self, sig: Signal, expected: float, why: str) -> None:
        actual = await self.read(sig)
        check(
            abs(actual - expected) <= resolution(sig, expected),
            f"{self.map.line}: {sig} reads {actual}, expected {expected} ({why})",
        )

    async def wait_for(self, sig: Signal, wanted, what: str, limit_s: float = 15.0) -> float:
        """Poll `sig` until `wanted(value)`; fails after `limit_s` wall seconds."""
        deadline = time.monotonic() + limit_s
        value = await self.read(sig)
        while not wanted(value):
            if time.monotonic() > deadline:
                fail(f"{self.map.line}: {sig} reads {value} after {limit_s} s, expected {what}")
            await asyncio.sleep(0.02)
            value = await self.read(sig)
        return value


def arguments(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--map", required=True, help="the line's register map file")
    p.add_argument("--blocks", type=int, required=True, help="how many times the block repeats")
    return p.parse_args()


def run(main) -> None:
    """Run `main(line)` on a connected client; exit 1 naming the failed check."""
    args = arguments(main.__doc__ or "")
    lmap = load_map(args.map, args.blocks)

    async def connected() -> None:
        client = AsyncModbusTcpClient(args.host, port=args.port, timeout=5, retries=0)
        check(await client.connect(), f"{lmap.line}: cannot connect to {args.host}:{args.port}")
        try:
            await main(Line(client, lmap))
        finally:
            client.close()

    try:
        asyncio.run(connected())
    except CheckFailed as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
    print(f"OK: {lmap.line}", flush=True)


def is_nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)
