"""A real ACME CA for the node kit's certificate tests: Pebble (Let's Encrypt's ACME test server)
validating DNS-01 against pebble-challtestsrv, its test DNS server, both from the Debian package
`pebble` (scripts/install-system-deps.sh), on loopback ports of their own."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devenv import services


def self_signed(directory: Path, name: str, addresses: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A throwaway certificate for `name` (and IP `addresses`): (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    alternatives: list[x509.GeneralName] = [x509.DNSName(name)]
    alternatives += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Pebble:
    directory_url: str  # the ACME directory lego is pointed at
    ca_file: Path  # what lego must trust to talk to Pebble (LEGO_CA_CERTIFICATES)
    dns_server: str  # challtestsrv's DNS, which Pebble validates against
    management_url: str  # challtestsrv's API: set-txt / clear-txt

    def set_txt(self, host: str, value: str) -> None:
        self._manage("set-txt", {"host": host, "value": value})

    def clear_txt(self, host: str) -> None:
        self._manage("clear-txt", {"host": host})

    def _manage(self, action: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the test's own challtestsrv
            f"{self.management_url}/{action}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            assert answer.status == 200


def _wait(probe, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            probe()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


@contextmanager
def pebble(directory: Path) -> Iterator[Pebble]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(directory, "localhost", ("127.0.0.1",))
    dns_port, management_port, acme_port, pebble_management = (services.free_port() for _ in "abcd")
    config = directory / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme_port}",
                    "managementListenAddress": f"127.0.0.1:{pebble_management}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": 5002,
                    "tlsPort": 5001,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    dns_log, pebble_log = directory / "challtestsrv.log", directory / "pebble.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with dns_log.open("wb") as log:
            challtestsrv = subprocess.Popen(
                [
                    *("pebble-challtestsrv", "-management", f"127.0.0.1:{management_port}"),
                    *("-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", ""),
                    *("-tlsalpn01", ""),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(challtestsrv)
        # No random sleep before validating, no randomly refused nonces, no reused authorizations
        # (every order is validated through DNS again): the test's pace and path, not luck.
        environment = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        with pebble_log.open("wb") as log:
            server = subprocess.Popen(
                ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns_port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        processes.append(server)
        management_url = f"http://127.0.0.1:{management_port}"
        _wait(
            lambda: socket.create_connection(("127.0.0.1", management_port), timeout=1).close(),
            "pebble-challtestsrv",
            challtestsrv,
            dns_log,
        )
        directory_url = f"https://127.0.0.1:{acme_port}/dir"
        trust = ssl.create_default_context(cafile=str(cert))
        _wait(
            lambda: urllib.request.urlopen(directory_url, timeout=1, context=trust),
            "pebble",
            server,
            pebble_log,
        )
        yield Pebble(directory_url, cert, f"127.0.0.1:{dns_port}", management_url)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
