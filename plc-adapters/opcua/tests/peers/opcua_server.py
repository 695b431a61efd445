"""An asyncua OPC UA server that the OPC UA adapter's interop tests control.

Started by tests/peers.rs from the venv (asyncua 2.1). It listens on
127.0.0.1, port 0, and prints `READY <port>` once it serves. It offers two
endpoints, NoSecurity and Basic256Sha256 SignAndEncrypt, with its own
self-signed certificate (generated here with the `cryptography` package into
--cert-dir). Anonymous sessions are let in; a user name must be `operator`
with the password currently accepted (--password, changed by `accept`).
asyncua accepts any client certificate, as no validator is set.

Its namespace `urn:remine:peer` is registered after two dummy namespaces, so
its index is 4, not the 2 a careless client would assume. The address space:

    Objects/Hydromet (folder)/Leach1 (object)
        Temperature  Double   s=Leach1.Temperature   70.0
        pH           Float    i=1001                 6.5
        Mode         Int32    s=Leach1.Mode          -1
        Pumps        UInt16   s=Leach1.Pumps         2
        BatchCount   UInt32   s=Leach1.BatchCount    4000000000
        Running      Boolean  s=Leach1.Running       true
        Setpoint     Double   s=Leach1.Setpoint      50.0
        Hold(minutes: Double) -> (holds: UInt32, resume_in_s: Double)

Every variable is writable. The test drives the server over stdin, one
command a line, one reply line each:

    set <Variable> <value>   -> OK             (in the variable's own type)
    get <Variable>           -> VALUE <VariantType> <value>
    accept <password>        -> OK             (the only password accepted from now)
    holds                    -> HOLDS <n>      (calls of Hold so far)
    ns                       -> NS <index>     (of urn:remine:peer)

Errors reply `ERR <why>`. The script exits when stdin closes, so a killed
test leaves no server behind.
"""

import argparse
import asyncio
import datetime
import ipaddress
import logging
import sys
from pathlib import Path

from asyncua import Server, ua, uamethod
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NS = "urn:remine:peer"
APP_URI = "urn:remine:peer:server"
USER = "operator"

VARIABLES = {
    "Temperature": ("Leach1.Temperature", ua.VariantType.Double, 70.0),
    "pH": (1001, ua.VariantType.Float, 6.5),
    "Mode": ("Leach1.Mode", ua.VariantType.Int32, -1),
    "Pumps": ("Leach1.Pumps", ua.VariantType.UInt16, 2),
    "BatchCount": ("Leach1.BatchCount", ua.VariantType.UInt32, 4_000_000_000),
    "Running": ("Leach1.Running", ua.VariantType.Boolean, True),
    "Setpoint": ("Leach1.Setpoint", ua.VariantType.Double, 50.0),
}


def parse(kind, text):
    if kind == ua.VariantType.Boolean:
        return text in ("1", "true", "True")
    if kind in (ua.VariantType.Double, ua.VariantType.Float):
        return float(text)
    return int(text)


def show(value):
    return str(value).lower() if isinstance(value, bool) else repr(value)


def make_certificate(directory):
    """A self-signed application certificate and key for this server, as
    OPC UA asks: the application URI and the host in the subject alt names."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "remine asyncua peer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "remine tests"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(APP_URI),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "server-cert.der"
    key_file = directory / "server-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Users:
    """Anonymous sessions, or `operator` with the accepted password. (asyncua
    passes the channel's client certificate even for anonymous tokens.)"""

    def __init__(self, password):
        self.password = password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is None:
            return User(role=UserRole.User)
        if username == USER and password == self.password:
            return User(role=UserRole.User, name=USER)
        logging.getLogger("peer").warning("rejected user %r", username)
        return None


class Peer:
    def __init__(self, password, cert_dir):
        self.users = Users(password)
        self.cert_dir = cert_dir
        self.server = Server(user_manager=self.users)
        self.nodes = {}
        self.holds = 0
        self.ns = None

    async def start(self):
        server = self.server
        await server.init()
        server.set_endpoint("opc.tcp://127.0.0.1:0/")
        server.set_server_name("remine asyncua peer")
        await server.set_application_uri(APP_URI)
        server.set_security_policy(
            [
                ua.SecurityPolicyType.NoSecurity,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
        )
        cert_file, key_file = make_certificate(self.cert_dir)
        await server.load_certificate(str(cert_file))
        await server.load_private_key(str(key_file))

        await server.register_namespace("urn:remine:dummy-a")
        await server.register_namespace("urn:remine:dummy-b")
        ns = await server.register_namespace(NS)
        self.ns = ns

        objects = server.nodes.objects
        folder = await objects.add_folder(
            ua.NodeId("Hydromet", ns), ua.QualifiedName("Hydromet", ns)
        )
        leach = await folder.add_object(
            ua.NodeId("Leach1", ns), ua.QualifiedName("Leach1", ns)
        )
        for browse_name, (ident, kind, value) in VARIABLES.items():
            node = await leach.add_variable(
                ua.NodeId(ident, ns),
                ua.QualifiedName(browse_name, ns),
                ua.Variant(value, kind),
            )
            await node.set_writable()
            self.nodes[browse_name] = (node, kind)

        @uamethod
        def hold(_parent, minutes):
            self.holds += 1
            # A tuple: asyncua makes one output argument per item (a list
            # would be a single array output).
            return (
                ua.Variant(self.holds, ua.VariantType.UInt32),
                ua.Variant(float(minutes) * 60.0, ua.VariantType.Double),
            )

        await leach.add_method(
            ua.NodeId("Leach1.Hold", ns),
            ua.QualifiedName("Hold", ns),
            hold,
            [ua.VariantType.Double],
            [ua.VariantType.UInt32, ua.VariantType.Double],
        )
        await server.start()
        return server.bserver.port

    async def handle(self, line):
        parts = line.split()
        if not parts:
            return None
        try:
            command, args = parts[0], parts[1:]
            if command == "set" and len(args) == 2:
                node, kind = self.nodes[args[0]]
                await node.write_value(ua.Variant(parse(kind, args[1]), kind))
                return "OK"
            if command == "get" and len(args) == 1:
                node, _ = self.nodes[args[0]]
                variant = (await node.read_data_value()).Value
                return f"VALUE {variant.VariantType.name} {show(variant.Value)}"
            if command == "accept" and len(args) == 1:
                self.users.password = args[0]
                return "OK"
            if command == "holds" and not args:
                return f"HOLDS {self.holds}"
            if command == "ns" and not args:
                return f"NS {self.ns}"
        except Exception as exc:  # reported to the test, which fails with it
            return f"ERR {parts[0]}: {exc!r}"
        return f"ERR unknown command: {line.strip()}"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--password", required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    peer = Peer(args.password, args.cert_dir)
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
    await peer.server.stop()


if __name__ == "__main__":
    asyncio.run(main())
