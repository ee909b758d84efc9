"""A test-only adapter: the coordinator's Route 53 DNS writer, pointed (AWS_ENDPOINT_URL_ROUTE_53)
at this loopback server, changes pebble-challtestsrv's records instead of a hosted zone's, so
Pebble validates the node's DNS-01 challenge against what the coordinator wrote.

It speaks the two Route 53 calls a record writer makes, in the 2013-04-01 REST/XML shape botocore
sends and parses: ChangeResourceRecordSets (CREATE/UPSERT/DELETE; DELETE must match the record as
it is and CREATE must not find one, as Route 53 requires, else 400 InvalidChangeBatch) and
GetChange (always INSYNC). TXT records go to challtestsrv (`set-txt`/`clear-txt`); every record
set is kept in `records` for the test to read (A records included)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from threading import Thread

from .acme import Pebble

NAMESPACE = "https://route53.amazonaws.com/doc/2013-04-01/"
_CHANGE = re.compile(r"^/2013-04-01/hostedzone/([A-Za-z0-9]+)/rrset/?$")
_GET_CHANGE = re.compile(r"^/2013-04-01/change/([A-Za-z0-9]+)$")


def _change_info(change_id: str) -> str:
    return (
        f"<ChangeInfo><Id>/change/{change_id}</Id><Status>INSYNC</Status>"
        "<SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo>"
    )


class Route53ToChalltestsrv:
    def __init__(self, pebble: Pebble) -> None:
        self.pebble = pebble
        # (zone id, name with its final dot, type) -> (ttl, values as Route 53 holds them)
        self.records: dict[tuple[str, str, str], tuple[int, list[str]]] = {}
        self.changes: list[tuple[str, str, str, list[str]]] = []  # action, name, type, values
        self._ids = count(1)
        self.url = ""

    def apply(self, zone: str, body: bytes) -> tuple[int, str]:
        root = ElementTree.fromstring(body)  # noqa: S314 - botocore's request, on loopback
        batch = []
        for change in root.iter(f"{{{NAMESPACE}}}Change"):
            action = change.findtext(f"{{{NAMESPACE}}}Action", "")
            record = change.find(f"{{{NAMESPACE}}}ResourceRecordSet")
            assert record is not None
            name = record.findtext(f"{{{NAMESPACE}}}Name", "").lower()
            name = name if name.endswith(".") else name + "."
            kind = record.findtext(f"{{{NAMESPACE}}}Type", "")
            ttl = int(record.findtext(f"{{{NAMESPACE}}}TTL", "300"))
            values = [v.text or "" for v in record.iter(f"{{{NAMESPACE}}}Value")]
            key = (zone, name, kind)
            # Route 53's own words for a deletion that does not match.
            described = f"Tried to delete resource record set [name='{name}', type='{kind}']"
            if action == "DELETE" and key not in self.records:
                return 400, self._error("InvalidChangeBatch", f"{described} but it was not found")
            if action == "DELETE" and self.records[key] != (ttl, values):
                return 400, self._error(
                    "InvalidChangeBatch",
                    f"{described} but the values provided do not match the current values",
                )
            if action == "CREATE" and key in self.records:
                return 400, self._error("InvalidChangeBatch", f"{name} {kind} already exists")
            if action not in ("CREATE", "UPSERT", "DELETE"):
                return 400, self._error("InvalidInput", f"unknown action {action!r}")
            batch.append((action, key, ttl, values))
        for action, key, ttl, values in batch:
            self.changes.append((action, key[1], key[2], values))
            if action == "DELETE":
                del self.records[key]
            else:
                self.records[key] = (ttl, values)
            if key[2] == "TXT":
                self.pebble.clear_txt(key[1])
                for value in values if action != "DELETE" else []:
                    self.pebble.set_txt(key[1], value.strip('"'))
        change_id = f"C{next(self._ids)}"
        return 200, (
            f'<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsResponse '
            f'xmlns="{NAMESPACE}">{_change_info(change_id)}</ChangeResourceRecordSetsResponse>'
        )

    @staticmethod
    def _error(code: str, message: str) -> str:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns="{NAMESPACE}"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>test</RequestId></ErrorResponse>"
        )

    def handler(self) -> type[BaseHTTPRequestHandler]:
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                match = _CHANGE.match(self.path)
                if match is None:
                    self._send(400, adapter._error("InvalidInput", f"not served: {self.path}"))
                    return
                length = int(self.headers.get("Content-Length", "0"))
                self._send(*adapter.apply(match.group(1), self.rfile.read(length)))

            def do_GET(self) -> None:
                match = _GET_CHANGE.match(self.path)
                if match is None:
                    self._send(400, adapter._error("InvalidInput", f"not served: {self.path}"))
                    return
                self._send(
                    200,
                    f'<?xml version="1.0" encoding="UTF-8"?><GetChangeResponse xmlns="{NAMESPACE}">'
                    f"{_change_info(match.group(1))}</GetChangeResponse>",
                )

            def log_message(self, *_: object) -> None:
                pass

        return Handler


@contextmanager
def route53_to_challtestsrv(pebble: Pebble) -> Iterator[Route53ToChalltestsrv]:
    adapter = Route53ToChalltestsrv(pebble)
    server = ThreadingHTTPServer(("127.0.0.1", 0), adapter.handler())
    server.daemon_threads = True
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    adapter.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield adapter
    finally:
        server.shutdown()
        server.server_close()
