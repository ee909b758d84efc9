"""A local stand-in for the coordinator's ALB HTTPS listener: TLS on loopback, listener rules
that forward requests by path pattern to their own targets, everything else to the default one.

What it copies from the ALB is what the origin's HLS and HTTP-FLV depend on behind it
(components/srs_origin.py's listener rule): the client's Host header is kept, X-Forwarded-For,
-Proto and -Port are added, path patterns match the path without its query, case-sensitively,
with `*` and `?` as the only wildcards, and a response is passed on as it arrives (an HTTP-FLV
response never ends). A target that refuses the connection gives 502, as on the ALB.

The certificate is self-signed for 127.0.0.1; `spki_sha256` is what Chromium's
`--ignore-certificate-errors-spki-list` takes to trust it and nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.client
import ipaddress
import re
import ssl
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Headers for one connection only (RFC 9110 7.6.1): never passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
TARGET_TIMEOUT_SECONDS = 30
CHUNK = 64 * 1024


def path_pattern(pattern: str) -> re.Pattern[str]:
    """An ALB path-pattern value as a regular expression: `*` any characters (`/` included),
    `?` exactly one, everything else literal and case-sensitive."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Rule:
    """Requests whose path matches one of `patterns` go to `target` (`http://host:port`)."""

    patterns: Sequence[str]
    target: str

    def matches(self, path: str) -> bool:
        return any(path_pattern(p).fullmatch(path) for p in self.patterns)


@dataclass
class LoadBalancer:
    url: str  # https://127.0.0.1:<port>
    spki_sha256: str  # base64 SHA-256 of the certificate's public key (Chromium's SPKI list)
    rules: Sequence[Rule]
    default_target: str
    # (path, target) of every request, in order: where each one went.
    forwarded: list[tuple[str, str]] = field(default_factory=list)

    def target_for(self, path: str) -> str:
        """The first rule that matches wins, as listener rules go by priority."""
        for rule in self.rules:
            if rule.matches(path):
                return rule.target
        return self.default_target


def _self_signed(directory: Path) -> tuple[Path, Path, str]:
    """A certificate and key for 127.0.0.1, valid for a day, and its SPKI fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "balancer.crt", directory / "balancer.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return certificate_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, balancer: LoadBalancer, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Forwarder)
        self.balancer = balancer
        self.context = context

    def finish_request(self, request, client_address) -> None:
        # The handshake runs in the request's own thread: a slow client holds up no other.
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


class _Forwarder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsServer

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _forward(self) -> None:
        balancer = self.server.balancer
        path = urlsplit(self.path).path
        target = urlsplit(balancer.target_for(path))
        balancer.forwarded.append((path, target.geturl()))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        client = self.client_address[0]
        earlier = self.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else client
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-Port"] = str(self.server.server_address[1])
        connection = http.client.HTTPConnection(
            target.hostname, target.port, timeout=TARGET_TIMEOUT_SECONDS
        )
        try:
            # The client's Host goes on as it is (http.client adds none when one is given).
            connection.request(self.command, self.path, body=body, headers=headers)
            upstream = connection.getresponse()
        except OSError:
            connection.close()
            self._bad_gateway()
            return
        with contextlib.closing(connection):
            self._relay(upstream)

    def _relay(self, upstream: http.client.HTTPResponse) -> None:
        self.send_response_only(upstream.status, upstream.reason)
        for name, value in upstream.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if upstream.length is None and self.command != "HEAD":
            # No length known (HTTP-FLV, chunked): the end of the connection ends the body.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        # Either side may go mid-body (a viewer leaves, SRS stops): that ends this one.
        with contextlib.suppress(OSError, http.client.HTTPException):
            while chunk := upstream.read1(CHUNK):
                self.wfile.write(chunk)
                self.wfile.flush()

    def _bad_gateway(self) -> None:
        body = b"502 Bad Gateway\n"
        self.send_response_only(502)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def running(rules: Sequence[Rule], default_target: str) -> Iterator[LoadBalancer]:
    """An HTTPS listener on a free loopback port for as long as the context lasts."""
    with tempfile.TemporaryDirectory(prefix="load-balancer-") as directory:
        certificate, key, spki = _self_signed(Path(directory))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certificate, key)
    balancer = LoadBalancer("", spki, rules, default_target)
    server = _TlsServer(balancer, context)
    balancer.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield balancer
    finally:
        server.shutdown()
        server.server_close()
