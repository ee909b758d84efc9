"""An https front for a test server, as the load balancer is in production: TLS with a
certificate for 127.0.0.1 made here by openssl, the bytes passed on to the plain-HTTP server
behind it. A browser trusts it only when told to (`browser_over_https`)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


def _certificate(directory: Path) -> ssl.SSLContext:
    key, certificate = directory / "key.pem", directory / "certificate.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        source.close()
        target.close()


@contextlib.contextmanager
def https_front(backend_port: int, directory: Path) -> Iterator[str]:
    """https://127.0.0.1:<port> in front of http://127.0.0.1:<backend_port>; yields its URL."""
    context = _certificate(directory)
    listener = socket.create_server(("127.0.0.1", 0))

    def connect(raw: socket.socket) -> None:
        try:
            client = context.wrap_socket(raw, server_side=True)
        except OSError:  # a failed handshake (ssl.SSLError is one)
            raw.close()
            return
        backend = socket.create_connection(("127.0.0.1", backend_port))
        threading.Thread(target=_pump, args=(backend, client), daemon=True).start()
        _pump(client, backend)

    def accept() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:  # closed: the front is done
                return
            threading.Thread(target=connect, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, name="https-front", daemon=True).start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
