#!/usr/bin/env python3
"""SRS's hooks, relayed to the coordinator with the credential in a header.

SRS writes every hook's full URL to its log (at INFO when allowed, at ERROR when denied), so the
hook secret or node token cannot live in that URL. SRS calls this relay on loopback with bare URLs
(`http://127.0.0.1:<port>/hooks/srs/on_play`); the relay forwards each call to the coordinator
with `Authorization: Bearer <credential>`, the credential read at each call from a root-only file
(so a rotated node token needs no restart): the file's one line (the origin's hook secret), or
with `--credential-key` that key of a JSON file (a friend node's `node.json`, which its reporter
replaces when it renews the token). It forwards only `POST /hooks/srs/<action>` without a
query, answers 502 when the coordinator cannot be reached (SRS then denies: fail closed), and logs
one line per call: the action, the answer's status and the time taken, never a body or header.

    hook_relay.py --listen 127.0.0.1:1990 --coordinator https://api.example.com \\
        --credential-file /etc/streamr/hook-credential

Standard library only, Python 3.9+ (Amazon Linux 2023's python3, a Raspberry Pi's).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HOOK_PATH = re.compile(r"^/hooks/srs/([a-z_]{1,32})$")
BODY_LIMIT = 64 * 1024  # SRS's hook bodies are a few hundred bytes
UPSTREAM_SECONDS = 10.0  # below SRS's own 30 s hook timeout, so SRS hears our answer


class RelayError(ValueError):
    """A setting the relay cannot start with; the message names it."""


def loopback_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        if not ipaddress.IPv4Address(host).is_loopback or not 0 < int(port) < 65536:
            raise ValueError
    except ValueError:
        raise RelayError(
            f"--listen {text!r} must be an IPv4 loopback address and port, e.g. 127.0.0.1:1990 "
            "(the relay adds a credential to whatever reaches it)"
        ) from None
    return host, int(port)


def coordinator_base(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RelayError(f"--coordinator {text!r} must be an http(s) URL without a query")
    return text.rstrip("/")


def read_credential(path: Path, key: str | None) -> str:
    text = path.read_text()
    try:
        credential = (json.loads(text).get(key) or "") if key else text.strip()
    except (ValueError, AttributeError):
        credential = ""
    if not isinstance(credential, str) or not credential or any(c.isspace() for c in credential):
        wanted = f"a JSON object with a {key!r} string" if key else "one credential on one line"
        raise RelayError(f"--credential-file {path} must hold {wanted}")
    return credential


def answer(status: int, detail: str) -> bytes:
    return json.dumps({"code": status, "detail": detail}).encode()


class Relay(BaseHTTPRequestHandler):
    coordinator = ""
    credential_file = Path()
    credential_key: str | None = None
    server_version = "streamr-hook-relay"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        started = time.monotonic()
        match = HOOK_PATH.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if match is None:
            self.finish_call("-", 404, answer(404, "only POST /hooks/srs/<action>, no query"))
            return
        if not 0 < length <= BODY_LIMIT:
            self.finish_call(match[1], 413, answer(413, f"body must be 1..{BODY_LIMIT} bytes"))
            return
        body = self.rfile.read(length)
        status, reply = self.forward(self.path, body)
        self.finish_call(match[1], status, reply, time.monotonic() - started)

    def do_GET(self) -> None:
        self.finish_call("-", 405, answer(405, "hooks are POSTed"))

    def forward(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            credential = read_credential(self.credential_file, self.credential_key)
        except (OSError, RelayError) as error:
            self.log_message("cannot read the credential: %s", type(error).__name__)
            return 502, answer(502, "the relay has no credential")
        request = urllib.request.Request(  # noqa: S310 - the configured coordinator
            self.coordinator + path,
            data=body,
            method="POST",
            headers={
                "Content-Type": self.headers.get("Content-Type") or "application/json",
                "User-Agent": self.headers.get("User-Agent") or self.server_version,
                "Authorization": f"Bearer {credential}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_SECONDS) as response:  # noqa: S310
                return response.status, response.read(BODY_LIMIT)
        except urllib.error.HTTPError as error:
            return error.code, error.read(BODY_LIMIT)
        except (OSError, ValueError) as error:
            self.log_message("coordinator unreachable: %s", type(error).__name__)
            return 502, answer(502, "coordinator unreachable")

    def finish_call(self, action: str, status: int, reply: bytes, seconds: float = 0.0) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.log_message("%s -> %d in %.0f ms", action, status, seconds * 1000)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("hook-relay: " + format % args + "\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="loopback address:port SRS calls")
    parser.add_argument("--coordinator", required=True, help="the coordinator's base URL")
    parser.add_argument("--credential-file", required=True, type=Path)
    parser.add_argument("--credential-key", help="the credential's key in a JSON credential file")
    args = parser.parse_args(argv)
    try:
        address = loopback_address(args.listen)
        Relay.coordinator = coordinator_base(args.coordinator)
        read_credential(args.credential_file, args.credential_key)
    except (RelayError, OSError) as error:
        print(f"hook-relay: {error}", file=sys.stderr)
        return 2
    Relay.credential_file = args.credential_file
    Relay.credential_key = args.credential_key
    server = ThreadingHTTPServer(address, Relay)
    server.daemon_threads = True
    print(f"hook-relay: {args.listen} -> {Relay.coordinator}/hooks/srs/", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
