"""No secret in any log, over real output: a real SRS 6 origin and edge with their hook relays in
front of the real coordinator (`scripts/real_edge_run.py --record`, tests/fixtures/srs/
logs-real-edge-run: refused and accepted publishers, viewers with and without a ticket).

- SRS's own console holds neither the hook secret nor the node token (the relay keeps them out of
  every hook URL); it does hold what clients sent (stream keys, tickets), as SRS logs it.
- What the origin ships off the host (SRS's console through `srs/log_scrub.py`, run here as the
  host runs it) holds no secret at all; neither do the older recordings once scrubbed.
- The coordinator's log and both relays' logs hold no secret.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from scripts.record_srs import PLAIN_PYTHON
from srs.log_scrub import scrub

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "srs"
RECORDING = FIXTURES / "logs-real-edge-run"
SCRUB = Path(__file__).resolve().parents[2] / "srs" / "log_scrub.py"
# The older recordings (a hook recorder behind the URLs, the credentials in them): their
# stand-in credentials, the publisher's key and the viewers' tickets (tests/fixtures/srs/README.md).
OLDER = ("edge-viewers", "edge-short-sessions", "edge-rtmp-first", "stock-6.0.157/edge-viewers")
OLDER_SECRETS = ("recorded-hook-secret", "recorded-node-token", "recorded-stream-key")
OLDER_TICKETS = ("abc", "def", "ghi", "one", "two", "three", "r1", "f2")


def read(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as file:
            return file.read()
    return path.read_text()


def secrets() -> dict[str, list[str]]:
    return json.loads((RECORDING / "secrets.json").read_text())


def found(text: str, kinds: dict[str, list[str]]) -> list[tuple[str, int]]:
    """(kind of secret, line number) of every secret value in `text`."""
    return [
        (kind, number)
        for number, line in enumerate(text.splitlines(), 1)
        for kind, values in kinds.items()
        for value in values
        if value in line
    ]


def shipped(text: str) -> str:
    """`text` through the scrubber as the origin's SRS unit runs it (a plain python3 pipe)."""
    result = subprocess.run(
        [PLAIN_PYTHON, str(SCRUB)], input=text, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_the_recording_holds_every_kind_of_secret_and_both_paths() -> None:
    """The search below means something only if the run used each kind of secret and SRS
    logged hooks that were allowed and hooks that were denied."""
    kinds = secrets()
    assert set(kinds) == {
        "hook_secret",
        "node_token",
        "stream_key",
        "password",
        "bearer_token",
        "ticket",
    }
    assert all(values and all(len(v) >= 8 for v in values) for values in kinds.values())
    origin, edge = read(RECORDING / "origin.log.gz"), read(RECORDING / "edge.log.gz")
    assert "http: on_publish ok" in origin and "on_play ok" in origin
    assert "http: on_publish failed" in origin  # the wrong key and the missing key
    assert "http: on_play ok" in edge
    assert "http: on_play failed" in edge  # the viewer without a ticket
    assert "6.0.157" in json.loads((RECORDING / "meta.json").read_text())["srs_version"]


@pytest.mark.parametrize("log", ["origin.log.gz", "edge.log.gz"])
def test_srs_console_holds_no_hook_secret_or_node_token(log: str) -> None:
    text = read(RECORDING / log)
    kinds = secrets()
    credentials = {kind: kinds[kind] for kind in ("hook_secret", "node_token")}
    assert found(text, credentials) == []
    assert found(text, {k: kinds[k] for k in ("password", "bearer_token")}) == []


@pytest.mark.parametrize("log", ["origin.log.gz", "edge.log.gz"])
def test_what_the_host_ships_of_srs_holds_no_secret(log: str) -> None:
    raw = read(RECORDING / log)
    out = shipped(raw)
    assert len(out.splitlines()) == len(raw.splitlines())  # every line still there
    assert found(out, secrets()) == []


def test_without_the_scrubber_srs_would_ship_stream_keys_and_tickets() -> None:
    """Why the scrubber is there: SRS logs the publisher's key (refused ones too) and tickets."""
    raw = read(RECORDING / "origin.log.gz") + read(RECORDING / "edge.log.gz")
    kinds = {kind for kind, _ in found(raw, secrets())}
    assert kinds == {"stream_key", "ticket"}


@pytest.mark.parametrize("scenario", OLDER)
def test_older_recordings_once_scrubbed_hold_no_secret(scenario: str) -> None:
    """Recorded when the credentials rode in hook URLs: the scrubber takes those out too."""
    for log in ("origin.log.gz", "edge.log.gz"):
        raw = read(FIXTURES / scenario / log)
        out = shipped(raw)
        values = {"credential": list(OLDER_SECRETS), "ticket": [f"={t}" for t in OLDER_TICKETS]}
        assert found(raw, values), f"{scenario}/{log} should show what SRS logs"
        assert found(out, values) == []


@pytest.mark.parametrize("log", ["coordinator.log.gz", "origin-relay.log", "edge-relay.log"])
def test_the_coordinators_and_relays_logs_hold_no_secret(log: str) -> None:
    text = read(RECORDING / log)
    assert text.strip()
    assert found(text, secrets()) == []


def test_the_coordinator_logged_the_relayed_hooks() -> None:
    lines = [json.loads(line) for line in read(RECORDING / "coordinator.log.gz").splitlines()]
    hooks = {(line.get("path"), line.get("status")) for line in lines if "path" in line}
    assert ("/hooks/srs/on_publish", 200) in hooks
    assert ("/hooks/srs/on_publish", 403) in hooks
    assert ("/hooks/srs/on_play", 403) in hooks  # the edge's viewer without a ticket


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "client identified, type=fmle-publish, stream=show, param=?key=s3cr3t, d=0",
            "client identified, type=fmle-publish, stream=show, param=?key=[redacted], d=0",
        ),
        (
            'request={"param":"?key=k1&ticket=t.2-x","stream":"show"}',
            'request={"param":"?key=[redacted]&ticket=[redacted]","stream":"show"}',
        ),
        (
            "GET http://h:8080/live/show.flv?ticket=abc HTTP/1.1",
            "GET http://h:8080/live/show.flv?ticket=[redacted] HTTP/1.1",
        ),
        (
            "tcUrl=rtmp://h/live?secret=x&a=, port=1",
            "tcUrl=rtmp://h/live?secret=[redacted]&a=, port=1",
        ),
        ("Authorization: Bearer stu_abc.def", "Authorization: Bearer [redacted]"),
        ("nothing to hide, vhost=__defaultVhost__", "nothing to hide, vhost=__defaultVhost__"),
    ],
)
def test_the_scrubber_blanks_query_values_and_bearer_tokens(line: str, expected: str) -> None:
    assert scrub(line) == expected
