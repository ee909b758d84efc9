"""The real SRS recordings in tests/fixtures/srs (made by scripts/record_srs.py): each poll of a
server's HTTP API in time order, its hook calls, and an HTTP server that answers as that SRS did,
one recorded poll at a time."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "srs"
SCENARIOS = sorted(
    path.parent.relative_to(FIXTURES).as_posix() for path in FIXTURES.rglob("api.jsonl.gz")
)


@dataclass(frozen=True)
class Frame:
    """One poll of one server: when (seconds since the recording started) and what each endpoint
    (`streams`, `clients`, `vhosts`) answered."""

    t: float
    answers: dict[str, dict]

    def at(self, start: datetime) -> datetime:
        return start + timedelta(seconds=self.t)

    @property
    def sent(self) -> int:
        """SRS's own count of every byte it has sent (its vhost counters)."""
        return sum(vhost["send_bytes"] for vhost in self.answers["vhosts"]["vhosts"])


def frames(scenario: str, server: str = "edge") -> list[Frame]:
    """The server's polls, a frame per round of the three endpoints."""
    result: list[Frame] = []
    answers: dict[str, dict] = {}
    first = 0.0
    with gzip.open(FIXTURES / scenario / "api.jsonl.gz", "rt") as file:
        for line in file:
            poll = json.loads(line)
            if poll["server"] != server:
                continue
            if not answers:
                first = poll["t"]
            answers[poll["endpoint"]] = poll["body"]
            if len(answers) == 3:
                result.append(Frame(first, answers))
                answers = {}
    return result


def hooks(scenario: str) -> list[dict]:
    lines = (FIXTURES / scenario / "hooks.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def viewers(scenario: str) -> list[dict]:
    return json.loads((FIXTURES / scenario / "viewers.json").read_text())


class SrsApi:
    """An HTTP server answering `GET /api/v1/<endpoint>/...` with `answer(endpoint)` as JSON (404
    for None), counting the requests it answered."""

    def __init__(self, answer: Callable[[str], dict | None]) -> None:
        self.requests = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = answer(self.path.split("?")[0].removeprefix("/api/v1/").strip("/"))
                if body is None:
                    self.send_error(404)
                    return
                api.requests += 1
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordedSrs(SrsApi):
    """SRS's HTTP API as recorded: answers from the frame `index` points at."""

    def __init__(self, recorded: list[Frame]) -> None:
        self.frames = recorded
        self.index = 0
        super().__init__(lambda endpoint: self.frames[self.index].answers.get(endpoint))
