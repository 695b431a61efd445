"""A pymodbus TCP server that the Modbus adapter's interop tests control.

Started by tests/peers.rs from the venv (pymodbus 3.16). It serves one device
with the given unit id on 127.0.0.1, port 0, and prints `READY <port>` once
it listens. Each block (coils, discrete inputs, holding and input registers)
covers addresses 0..SIZE-1; anything above is outside the device's map and
answered with an exception by pymodbus, as a real device would.

The test drives it over stdin, one command a line, one reply line each:

    put <table> <address> <type> <order> <value>   -> OK
    get <table> <address> <type> <order>           -> VALUE <value>
    words <table> <address> <count>                -> WORDS <w> <w> ...

table is holding, input, coil or discrete; type is u16, i16, u32, i32, f32
or bool; order is big or little (32-bit types; `-` otherwise). Values are
encoded and decoded here with Python's struct module, independently of the
adapter's codec. A bool on a register table is `bool:<bit>`. Errors reply
`ERR <why>`. The script exits when stdin closes, so a killed test leaves no
server behind.
"""

import argparse
import asyncio
import struct
import sys

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SIZE = 200

# Function codes that select a table in the server's datastore (reads; the
# same codes with values write, bypassing the protocol's own restrictions).
FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}

FORMAT = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f"}


def encode(kind, order, text):
    """The register words of a value, high word first unless `little`."""
    value = float(text) if kind == "f32" else int(text)
    raw = struct.pack(FORMAT[kind], value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(reversed(words)) if order == "little" else words


def decode(kind, order, words):
    """The value of register words, high word first unless `little`."""
    if order == "little":
        words = list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    return struct.unpack(FORMAT[kind], raw)[0]


def width(kind):
    return 2 if kind in ("u32", "i32", "f32") else 1


class Peer:
    """The server and the commands that change or report its values."""

    def __init__(self, unit):
        self.unit = unit
        bits = SimData(address=0, count=SIZE, values=False, datatype=DataType.BITS)
        regs = SimData(address=0, count=SIZE, values=0, datatype=DataType.REGISTERS)
        # One list per table: (coils, discrete inputs, holding, input).
        device = SimDevice(id=unit, simdata=([bits], [bits], [regs], [regs]))
        self.server = ModbusTcpServer(device, address=("127.0.0.1", 0))

    async def start(self):
        await self.server.serve_forever(background=True)
        return self.server.transport.sockets[0].getsockname()[1]

    async def read(self, table, address, count):
        return await self.server.async_getValues(
            self.unit, FUNCTION[table], address, count
        )

    async def write(self, table, address, values):
        await self.server.async_setValues(self.unit, FUNCTION[table], address, values)

    async def put(self, table, address, kind, order, value):
        if kind.startswith("bool"):
            on = value in ("1", "true", "True")
            if table in ("coil", "discrete"):
                await self.write(table, address, [on])
                return "OK"
            bit = int(kind.split(":")[1])
            (word,) = await self.read(table, address, 1)
            word = (word | (1 << bit)) if on else (word & ~(1 << bit))
            await self.write(table, address, [word])
            return "OK"
        await self.write(table, address, encode(kind, order, value))
        return "OK"

    async def get(self, table, address, kind, order):
        if kind.startswith("bool"):
            if table in ("coil", "discrete"):
                (bit,) = await self.read(table, address, 1)
                return f"VALUE {str(bool(bit)).lower()}"
            bit = int(kind.split(":")[1])
            (word,) = await self.read(table, address, 1)
            return f"VALUE {str(bool(word >> bit & 1)).lower()}"
        words = await self.read(table, address, width(kind))
        return f"VALUE {decode(kind, order, list(words))!r}"

    async def words(self, table, address, count):
        values = await self.read(table, address, count)
        return "WORDS " + " ".join(str(int(v)) for v in values)

    async def handle(self, line):
        parts = line.split()
        if not parts:
            return None
        try:
            if parts[0] == "put" and len(parts) == 6:
                _, table, address, kind, order, value = parts
                return await self.put(table, int(address), kind, order, value)
            if parts[0] == "get" and len(parts) == 5:
                _, table, address, kind, order = parts
                return await self.get(table, int(address), kind, order)
            if parts[0] == "words" and len(parts) == 4:
                _, table, address, count = parts
                return await self.words(table, int(address), int(count))
        except Exception as exc:  # reported to the test, which fails with it
            return f"ERR {parts[0]}: {exc!r}"
        return f"ERR unknown command: {line.strip()}"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=int, required=True)
    args = parser.parse_args()
    peer = Peer(args.unit)
    port = await peer.start()
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        reply = await peer.handle(line)
        if reply is not None:
            print(reply, flush=True)
    await peer.server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
