"""The hydromet line's OPC UA server, browsed, read, written, subscribed and
called by asyncua, per hydromet.toml and simulators/README.md.

Spec:
- connect with security None (anonymous), or Basic256Sha256 SignAndEncrypt
  with the demo user and a client certificate made here (a wrong password
  is refused); the namespace index is looked up by its URI;
- every unit of the node list is a folder under Objects, browse name (ns,
  Unit), with every variable and method as a component, browse name (ns,
  Name), node id ns=<ns>;s=<Unit>.<Name>; methods take no arguments; Double
  variables are AnalogItemType; each variable has its data type, access
  level, an EURange property (ns 0) matching the file and, where the file
  gives a UNECE code, EngineeringUnits (ns 0) with that unit id and display
  name;
- every variable reads within its EURange, RW ones with a default read it;
- every writable variable takes a valid value and reads it back; outside
  the EURange: BadOutOfRange, value unchanged; a read-only variable:
  BadUserAccessDenied; a command code outside 0..=6: BadOutOfRange;
- a subscription sees live values move (Leach Temperature and pH) and the
  state changes of a batch: Start needs a charge (mass above 0, fractions
  summing to at most 1) and is refused on units other than Leach
  (BadInvalidState, CommandRejected 1); the charge is refused while Leach is
  not Idle (BadInvalidState); Hold, Restart (Command 3) and Stop reach Held,
  Running and Stopped; Reset (Command 6) on Leach resets the train to Idle,
  clears the charge and keeps the setpoints; Reset on another unit is
  refused (Good, CommandRejected 6).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

UNITS_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
ANALOG_ITEM_TYPE = ua.NodeId(2368, 0)
DATA_TYPES = {"UInt16": ua.NodeId(5, 0), "Double": ua.NodeId(11, 0)}
VARIANT_TYPES = {"UInt16": ua.VariantType.UInt16, "Double": ua.VariantType.Double}
IDLE, RUNNING, HELD, STOPPED = 1, 2, 5, 8
START, HOLD, RESTART, RESET = 1, 2, 3, 6
CHARGE = {
    "ChargeMassKg": 1000.0,
    "ChargeNi": 0.20,
    "ChargeCo": 0.06,
    "ChargeLi": 0.035,
    "ChargeMn": 0.06,
    "ChargeCu": 0.02,
    "ChargeAl": 0.01,
}


class CheckFailed(Exception):
    """A check of the simulator against its documentation failed."""


def check(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


@dataclass(frozen=True)
class Var:
    unit: str
    name: str
    type: str
    access: str
    eu: str
    unece: str
    low: float
    high: float
    default: float | None

    @property
    def path(self) -> str:
        return f"{self.unit}.{self.name}"

    @property
    def writable(self) -> bool:
        return self.access == "RW"


def load_nodes(path: str) -> tuple[str, list[str], dict[str, list[Var]]]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    units: dict[str, list[Var]] = {}
    for unit in doc["unit"]:
        entries = doc.get("common", []) + unit.get("variable", [])
        units[unit["name"]] = [
            Var(
                unit=unit["name"],
                name=e["name"],
                type=e["type"],
                access=e["access"],
                eu=e["eu"],
                unece=e["unece"],
                low=float(e["low"]),
                high=float(e["high"]),
                default=float(e["default"]) if "default" in e else None,
            )
            for e in entries
        ]
    return doc["namespace_uri"], doc["methods"], units


def unece_unit_id(code: str) -> int:
    """The OPC UA UnitId of a UNECE common code: its characters' bytes, big-endian."""
    value = 0
    for c in code:
        value = (value << 8) | ord(c)
    return value


def status_name(code: int) -> str:
    return ua.StatusCode(code).name


class Plant:
    """The session, the namespace index and the nodes of the file."""

    def __init__(self, client: Client, ns: int, methods: list[str], units: dict[str, list[Var]]):
        self.client, self.ns, self.methods, self.units = client, ns, methods, units

    def node(self, unit: str, name: str):
        return self.client.get_node(ua.NodeId(f"{unit}.{name}", self.ns))

    def var(self, unit: str, name: str) -> Var:
        for v in self.units[unit]:
            if v.name == name:
                return v
        raise CheckFailed(f"hydromet.toml has no variable {unit}.{name}")

    async def read(self, unit: str, name: str):
        return await self.node(unit, name).read_value()

    async def write(self, v: Var, value) -> int:
        """Write `value` as the variable's type; the status code (0 = Good)."""
        if v.type == "UInt16":
            value = int(value)
        dv = ua.DataValue(ua.Variant(value, VARIANT_TYPES[v.type]))
        try:
            await self.node(v.unit, v.name).write_value(dv)
        except ua.UaStatusCodeError as e:
            return e.code
        return 0

    async def expect_write(self, v: Var, value) -> None:
        code = await self.write(v, value)
        check(code == 0, f"writing {value} to {v.path} got {status_name(code)}, expected Good")

    async def expect_value(self, v: Var, expected, why: str) -> None:
        actual = await self.read(v.unit, v.name)
        check(actual == expected, f"{v.path} reads {actual}, expected {expected} ({why})")

    async def call(self, unit: str, method: str) -> int:
        folder = self.client.get_node(ua.NodeId(unit, self.ns))
        try:
            await folder.call_method(ua.NodeId(f"{unit}.{method}", self.ns))
        except ua.UaStatusCodeError as e:
            return e.code
        return 0

    async def command(self, unit: str, code: int) -> None:
        await self.expect_write(self.var(unit, "Command"), code)

    async def wait_value(self, unit: str, name: str, wanted, what: str, limit_s: float = 15.0):
        deadline = time.monotonic() + limit_s
        value = await self.read(unit, name)
        while not wanted(value):
            check(time.monotonic() < deadline, f"{unit}.{name} reads {value} after {limit_s} s, expected {what}")
            await asyncio.sleep(0.02)
            value = await self.read(unit, name)
        return value


# Browse.


async def check_the_address_space(p: Plant) -> None:
    objects = p.client.nodes.objects
    count = 0
    for unit, variables in p.units.items():
        try:
            folder = await objects.get_child(ua.QualifiedName(unit, p.ns))
        except ua.UaStatusCodeError as e:
            raise CheckFailed(f"no folder ({p.ns}, {unit}) under Objects: {e}") from e
        check(
            folder.nodeid == ua.NodeId(unit, p.ns),
            f"folder {unit}: node id {folder.nodeid.to_string()}, expected ns={p.ns};s={unit}",
        )
        for v in variables:
            await check_variable(p, folder, v)
            count += 1
        for method in p.methods:
            try:
                node = await folder.get_child(ua.QualifiedName(method, p.ns))
            except ua.UaStatusCodeError as e:
                raise CheckFailed(f"no method ({p.ns}, {method}) under {unit}: {e}") from e
            check(
                await node.read_node_class() == ua.NodeClass.Method,
                f"{unit}/{method} is not a method",
            )
            names = [(await prop.read_browse_name()).Name for prop in await node.get_properties()]
            check(
                not {"InputArguments", "OutputArguments"} & set(names),
                f"{unit}/{method} has arguments {names}, expected none",
            )
    print(f"browsed {len(p.units)} unit folders, {count} variables and their methods by browse name")


async def check_variable(p: Plant, folder, v: Var) -> None:
    try:
        node = await folder.get_child(ua.QualifiedName(v.name, p.ns))
    except ua.UaStatusCodeError as e:
        raise CheckFailed(f"no variable ({p.ns}, {v.name}) under {v.unit}: {e}") from e
    want_id = ua.NodeId(v.path, p.ns)
    check(node.nodeid == want_id, f"{v.unit}/{v.name}: node id {node.nodeid.to_string()}, expected {want_id.to_string()}")
    check(await node.read_node_class() == ua.NodeClass.Variable, f"{v.path} is not a variable")
    data_type = await node.read_data_type()
    check(data_type == DATA_TYPES[v.type], f"{v.path}: data type {data_type.to_string()}, expected {v.type}")
    access = (await node.read_attribute(ua.AttributeIds.AccessLevel)).Value.Value
    user_access = (await node.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value
    for what, level in (("AccessLevel", access), ("UserAccessLevel", user_access)):
        check(level & ua.AccessLevel.CurrentRead.mask, f"{v.path}: {what} {level} is not readable")
        writable = bool(level & ua.AccessLevel.CurrentWrite.mask)
        check(writable == v.writable, f"{v.path}: {what} {level} says writable={writable}, the file says {v.access}")
    if v.type == "Double":
        type_def = await node.read_type_definition()
        check(type_def == ANALOG_ITEM_TYPE, f"{v.path}: type definition {type_def}, expected AnalogItemType (i=2368)")
    try:
        eu_range = await (await node.get_child(ua.QualifiedName("EURange", 0))).read_value()
    except ua.UaStatusCodeError as e:
        raise CheckFailed(f"{v.path}: no EURange property (0, EURange): {e}") from e
    check(
        (eu_range.Low, eu_range.High) == (v.low, v.high),
        f"{v.path}: EURange {eu_range.Low}..{eu_range.High}, expected {v.low}..{v.high}",
    )
    if v.unece:
        try:
            eu = await (await node.get_child(ua.QualifiedName("EngineeringUnits", 0))).read_value()
        except ua.UaStatusCodeError as e:
            raise CheckFailed(f"{v.path}: no EngineeringUnits property (0, EngineeringUnits): {e}") from e
        check(eu.NamespaceUri == UNITS_NAMESPACE, f"{v.path}: EngineeringUnits namespace {eu.NamespaceUri!r}")
        check(
            eu.UnitId == unece_unit_id(v.unece),
            f"{v.path}: EngineeringUnits UnitId {eu.UnitId}, expected {unece_unit_id(v.unece)} ({v.unece})",
        )
        check(eu.DisplayName.Text == v.eu, f"{v.path}: EngineeringUnits display name {eu.DisplayName.Text!r}, expected {v.eu!r}")


# Read and write.


async def check_every_variable_reads_in_range(p: Plant) -> None:
    count = 0
    for variables in p.units.values():
        for v in variables:
            value = await p.read(v.unit, v.name)
            check(v.low <= value <= v.high, f"{v.path} reads {value}, outside its EURange {v.low}..{v.high}")
            if v.writable and v.default is not None:
                check(value == v.default, f"{v.path} reads {value} after start, expected its default {v.default}")
            count += 1
    print(f"read {count} variables within their EURange, defaults as documented")


def out_of_range(v: Var) -> list[float]:
    """Values just outside the EURange that the data type can carry."""
    values = [v.high + 1.0, v.low - 1.0]
    if v.type == "UInt16":
        values = [x for x in values if 0 <= x <= 65535]
    return values


def new_value(v: Var, present: float) -> float:
    target = v.high if v.high - present >= present - v.low else v.low
    return (present + target) / 2.0


async def check_every_setpoint_writes_and_reads_back(p: Plant) -> None:
    count = 0
    for variables in p.units.values():
        for v in variables:
            if not v.writable or v.name == "Command":
                continue
            before = await p.read(v.unit, v.name)
            value = new_value(v, before)
            await p.expect_write(v, value)
            await p.expect_value(v, value, "read back after the write")
            for bad in out_of_range(v):
                code = await p.write(v, bad)
                check(
                    code == ua.StatusCodes.BadOutOfRange,
                    f"writing {bad} to {v.path} (EURange {v.low}..{v.high}) got {status_name(code)}, expected BadOutOfRange",
                )
                await p.expect_value(v, value, f"unchanged after the refused {bad}")
            restore = v.default if v.default is not None else before
            await p.expect_write(v, restore)
            await p.expect_value(v, restore, "restored")
            count += 1
    print(f"wrote, read back and restored {count} writable variables; out of range: BadOutOfRange")


async def check_read_only_variables_refuse_writes(p: Plant) -> None:
    count = 0
    for variables in p.units.values():
        for v in variables:
            if v.writable:
                continue
            before = await p.read(v.unit, v.name)
            value = v.low if v.type == "UInt16" else (v.low + v.high) / 2.0
            code = await p.write(v, value)
            check(
                code == ua.StatusCodes.BadUserAccessDenied,
                f"writing {value} to read-only {v.path} got {status_name(code)}, expected BadUserAccessDenied",
            )
            if v.type == "UInt16":
                after = await p.read(v.unit, v.name)
                check(after == before, f"read-only {v.path} changed from {before} to {after} after a refused write")
            count += 1
    print(f"{count} read-only variables: BadUserAccessDenied")


async def check_command_codes(p: Plant) -> None:
    for unit in p.units:
        cmd = p.var(unit, "Command")
        code = await p.write(cmd, 7)
        check(code == ua.StatusCodes.BadOutOfRange, f"writing 7 to {cmd.path} got {status_name(code)}, expected BadOutOfRange")
    other = next(u for u in p.units if u != "Leach")
    await p.command(other, RESET)
    await p.expect_value(p.var(other, "Command"), RESET, "Command reads back the code written")
    await p.expect_value(p.var(other, "CommandRejected"), RESET, "Reset on a unit other than Leach is refused")
    await p.expect_value(p.var(other, "State"), IDLE, "a refused command leaves the state")
    code = await p.call(other, "Start")
    check(code == ua.StatusCodes.BadInvalidState, f"calling {other}.Start got {status_name(code)}, expected BadInvalidState")
    await p.expect_value(p.var(other, "CommandRejected"), START, "Start on a unit other than Leach is refused")
    await p.expect_value(p.var(other, "State"), IDLE, "a refused Start leaves the state")
    print(f"command code 7: BadOutOfRange; {other}: Reset refused (Good, CommandRejected 6), Start BadInvalidState")


# Subscribe and call.


class Changes:
    """Data changes by node id string, in arrival order."""

    def __init__(self) -> None:
        self.values: dict[str, list] = {}

    def datachange_notification(self, node, val, data) -> None:
        self.values.setdefault(node.nodeid.Identifier, []).append(val)

    def of(self, path: str) -> list:
        return self.values.get(path, [])

    async def wait(self, path: str, wanted, what: str, limit_s: float = 15.0) -> None:
        deadline = time.monotonic() + limit_s
        while not wanted(self.of(path)):
            check(time.monotonic() < deadline, f"subscription: {path} notified {self.of(path)[-20:]} in {limit_s} s, expected {what}")
            await asyncio.sleep(0.02)


async def check_live_values_change(p: Plant, changes: Changes) -> None:
    for path in ("Leach.Temperature", "Leach.pH"):
        await changes.wait(path, lambda vs: len(set(vs)) >= 2, "at least 2 distinct values (live noise)", 5.0)
    await changes.wait("Leach.Level", lambda vs: len(vs) >= 1, "an initial value", 5.0)
    for unit in p.units:
        await changes.wait(f"{unit}.State", lambda vs: vs[-1:] == [IDLE], "Idle", 5.0)
    t, ph = changes.of("Leach.Temperature"), changes.of("Leach.pH")
    print(f"subscription: {len(t)} Leach.Temperature and {len(ph)} Leach.pH changes, every unit's State Idle")


async def write_charge(p: Plant, charge: dict[str, float]) -> None:
    for name, value in charge.items():
        await p.expect_write(p.var("Leach", name), value)


async def check_start_needs_a_valid_charge(p: Plant) -> None:
    code = await p.call("Leach", "Start")
    check(code == ua.StatusCodes.BadInvalidState, f"Leach.Start without a charge got {status_name(code)}, expected BadInvalidState")
    await p.expect_value(p.var("Leach", "CommandRejected"), START, "Start without a charge is refused")
    await write_charge(p, {**CHARGE, "ChargeNi": 0.6, "ChargeCo": 0.5})
    code = await p.call("Leach", "Start")
    check(
        code == ua.StatusCodes.BadInvalidState,
        f"Leach.Start with fractions summing to more than 1 got {status_name(code)}, expected BadInvalidState",
    )
    await p.expect_value(p.var("Leach", "State"), IDLE, "a refused Start leaves Leach Idle")
    print("Leach.Start refused without a charge and with fractions summing above 1: BadInvalidState")


async def check_a_batch_through_hold_restart_stop_and_reset(p: Plant, changes: Changes) -> None:
    setpoint = p.var("Leach", "TemperatureSetpoint")
    start_temperature = await p.read("Leach", "Temperature")
    check(start_temperature < 79.0, f"Leach.Temperature reads {start_temperature} before the setpoint is raised to 80")
    await p.expect_write(setpoint, 80.0)
    await write_charge(p, CHARGE)
    code = await p.call("Leach", "Start")
    check(code == 0, f"Leach.Start with a valid charge got {status_name(code)}, expected Good")
    await changes.wait("Leach.State", lambda vs: RUNNING in vs, "Running (2) after Start")
    await p.expect_value(p.var("Leach", "CommandRejected"), 0, "an accepted Start clears the rejection")
    await p.expect_value(p.var("Leach", "Command"), START, "the Start method is the same as writing Command = 1")
    await p.wait_value(
        "Leach",
        "Temperature",
        lambda t: t > start_temperature + 0.3,
        f"the tank heating from {start_temperature:.2f} towards the new setpoint 80 (20 min time constant)",
    )
    mass = p.var("Leach", "ChargeMassKg")
    code = await p.write(mass, 500.0)
    check(code == ua.StatusCodes.BadInvalidState, f"writing {mass.path} while Running got {status_name(code)}, expected BadInvalidState")
    await p.expect_value(mass, CHARGE["ChargeMassKg"], "unchanged after the refused write")
    await p.wait_value("Leach", "Extraction", lambda x: x > 0.0, "leach progress while Running")

    code = await p.call("Leach", "Hold")
    check(code == 0, f"Leach.Hold while Running got {status_name(code)}, expected Good")
    await changes.wait("Leach.State", lambda vs: vs[-1:] == [HELD], "Held (5) after Hold")
    await p.expect_value(p.var("Leach", "Command"), HOLD, "the Hold method is the same as writing Command = 2")
    await p.command("Leach", RESTART)
    await p.expect_value(p.var("Leach", "CommandRejected"), 0, "Restart from Held accepted")
    await changes.wait("Leach.State", lambda vs: vs[-1:] == [RUNNING], "Running (2) after Restart")
    code = await p.call("Leach", "Stop")
    check(code == 0, f"Leach.Stop while Running got {status_name(code)}, expected Good")
    await changes.wait("Leach.State", lambda vs: vs[-1:] == [STOPPED], "Stopped (8) after Stop")
    code = await p.call("Leach", "Hold")
    check(code == ua.StatusCodes.BadInvalidState, f"Leach.Hold while Stopped got {status_name(code)}, expected BadInvalidState")
    await p.expect_value(p.var("Leach", "CommandRejected"), HOLD, "Hold refused in Stopped")

    await p.command("Leach", RESET)
    await p.expect_value(p.var("Leach", "CommandRejected"), 0, "Reset on Leach from Stopped accepted")
    await changes.wait("Leach.State", lambda vs: vs[-1:] == [IDLE], "Idle (1) after Reset")
    for name in CHARGE:
        await p.expect_value(p.var("Leach", name), 0.0, "Reset clears the charge")
    await p.expect_value(setpoint, 80.0, "Reset keeps the setpoints")
    await p.expect_write(setpoint, setpoint.default)
    seen = changes.of("Leach.State")
    print(f"batch: Leach.State notified {seen}; Hold, Restart, Stop, Reset as documented")


async def check_a_wrong_password_is_refused(url: str, user: str, password: str, security) -> None:
    client = Client(url, timeout=10)
    await security(client)
    client.set_user(user)
    client.set_password(password + "-wrong")
    try:
        await asyncio.wait_for(client.connect(), 15)
    except (ua.UaStatusCodeError, ua.UaError) as e:
        print(f"a wrong password is refused: {type(e).__name__}")
        return
    except asyncio.TimeoutError:
        raise CheckFailed("connecting with a wrong password neither succeeded nor failed within 15 s") from None
    await client.disconnect()
    raise CheckFailed(f"connecting as {user} with a wrong password succeeded")


async def main(args: argparse.Namespace) -> None:
    uri, methods, units = load_nodes(args.nodes)
    client = Client(args.endpoint, timeout=10)
    client.application_uri = "urn:remine:peers:asyncua"

    async def security(c: Client) -> None:
        if args.security == "none":
            return
        c.application_uri = "urn:remine:peers:asyncua"
        cert, key = await c.setup_self_signed_certificate(
            Path(args.cert_dir) / "client-key.pem", Path(args.cert_dir) / "client-cert.der"
        )
        await c.set_security(
            SecurityPolicyBasic256Sha256, cert, key, mode=ua.MessageSecurityMode.SignAndEncrypt
        )

    await security(client)
    if args.security != "none":
        client.set_user(args.user)
        client.set_password(args.password)
    await asyncio.wait_for(client.connect(), 20)
    try:
        policy = client.security_policy.URI
        mode = client.security_policy.Mode
        if args.security != "none":
            check(
                policy == SecurityPolicyBasic256Sha256.URI and mode == ua.MessageSecurityMode.SignAndEncrypt,
                f"the session runs {policy} in mode {mode}, expected Basic256Sha256 SignAndEncrypt",
            )
        who = f"user {args.user}" if args.security != "none" else "anonymous"
        print(f"connected to {args.endpoint} with {policy.rsplit('#', 1)[-1]} {mode.name.rstrip('_')}, {who}")
        ns = await client.get_namespace_index(uri)
        print(f"namespace {uri} has index {ns}")
        p = Plant(client, ns, methods, units)
        await check_the_address_space(p)
        await check_every_variable_reads_in_range(p)
        changes = Changes()
        sub = await client.create_subscription(100, changes)
        nodes = [p.node("Leach", n) for n in ("Temperature", "pH", "Level")] + [p.node(u, "State") for u in units]
        await sub.subscribe_data_change(nodes, sampling_interval=50)
        await check_live_values_change(p, changes)
        await check_every_setpoint_writes_and_reads_back(p)
        await check_read_only_variables_refuse_writes(p)
        await check_command_codes(p)
        await check_start_needs_a_valid_charge(p)
        await check_a_batch_through_hold_restart_stop_and_reset(p, changes)
        await sub.delete()
    finally:
        await client.disconnect()
    if args.security != "none":
        await check_a_wrong_password_is_refused(args.endpoint, args.user, args.password, security)


def arguments() -> argparse.Namespace:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--endpoint", required=True)
    a.add_argument("--nodes", required=True, help="hydromet.toml")
    a.add_argument("--security", choices=["none", "basic256sha256"], required=True)
    a.add_argument("--user", required=True)
    a.add_argument("--password", required=True)
    a.add_argument("--cert-dir", required=True, help="where the client certificate is made")
    return a.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(arguments()))
    except CheckFailed as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
    print("OK: hydromet line", flush=True)
