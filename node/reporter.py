#!/usr/bin/env python3
"""The friend node's contribution reporter: reads what the local SRS edge served, per stream, and
reports it to the coordinator without losing or repeating anything.

Standard library only (a Raspberry Pi with plain python3 runs it). Everything it must not forget
lives in its state directory, written by `setup.sh`:

- `node.json` (0600): `id`, `node_token`, `token_expires_at`. Replaced atomically when the token is
  renewed, *before* the new token is used, so a crash never leaves the node without a token.
- `spool.jsonl`: one JSON line per report, `{"sample": ..., "items": [...]}` (the SRS reading the
  report ends at, and its items), written in one fsync'd append. The unsent report items are all
  items of all lines; the last sample is the last line's. One line per report makes its items and
  its sample land together or not at all (a torn last line is ignored), so a restart measures on
  from the last sample without a gap or an overlap. Readings between reports are kept in memory
  only: what they measured is still in SRS's counters after a restart.
  Sending rewrites the file (atomically) without the items the coordinator has answered for.

Report items are idempotent on (node, stream, interval_start) at the coordinator, so resending an
item whose answer was lost is harmless: it comes back `duplicate`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger("streamr-reporter")

MAX_INTERVAL_SECONDS = 300  # the coordinator rejects longer intervals: start a new series instead
MIN_INTERVAL_SECONDS = 1  # ...and shorter ones
DEFAULT_INTERVAL_SECONDS = 10  # a report per stream this often
DEFAULT_SAMPLE_SECONDS = 1.0  # SRS is read this often, so a viewer of a few seconds is seen
BATCH_SIZE = 500
COMPACT_AFTER_LINES = 1000  # an idle node appends a sample a poll: fold them up now and then
RENEW_BEFORE = timedelta(days=7)
DEFAULT_HEARTBEAT_SECONDS = 30
BACKOFF_CAP_SECONDS = 300.0
EXIT_TOKEN_GONE = 3  # the unit file does not restart on this status


class TokenGone(Exception):
    """The coordinator answered 401: the node was removed or its token revoked."""


class Unavailable(Exception):
    """The coordinator could not be reached or answered 5xx: try again later."""


# --------------------------------------------------------------------------- files


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `path` so a reader (or a restart) sees the old content or the new, never a mix."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Client:
    """One connection SRS counts: the stream it plays (or publishes), its bytes sent so far and its
    send rate over the last 30 s."""

    stream: str
    sent: int
    kbps: int = 0
    publish: bool = False


@dataclass
class Sample:
    """One reading of the edge's SRS: when; `sent`, every byte it has counted as sent since it
    started (its vhosts' counters, which keep the bytes of connections that are gone); and each
    connection it has now, by SRS's client id."""

    time: datetime
    sent: int
    clients: dict[str, Client]

    def to_json(self) -> dict:
        return {
            "time": self.time.isoformat(),
            "sent": self.sent,
            "clients": {
                key: [c.stream, c.sent, c.kbps, c.publish] for key, c in self.clients.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> Sample | None:
        """None for a sample in the per-stream format of earlier versions: no baseline then."""
        if "sent" not in data:
            return None
        clients = {key: Client(*fields) for key, fields in data["clients"].items()}
        return cls(datetime.fromisoformat(data["time"]), int(data["sent"]), clients)


@dataclass
class Spool:
    """The bounded on-disk queue of unsent report items, plus the last sample (see module doc)."""

    path: Path
    limit: int
    items: list[dict] = field(default_factory=list)
    sample: Sample | None = None
    dropped: int = 0
    lines: int = 0

    @classmethod
    def open(cls, path: Path, limit: int) -> Spool:
        if limit < 1:
            raise ValueError(f"queue limit is {limit}; it must be at least 1")
        spool = cls(path, limit)
        torn = False
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                spool.lines = number
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("ignoring torn line %d of %s (a crash mid-write)", number, path)
                    torn = True
                    continue
                spool.items.extend(record.get("items", []))
                if record.get("sample"):
                    spool.sample = Sample.from_json(record["sample"])
                spool.dropped = max(spool.dropped, record.get("dropped", 0))
        trimmed = len(spool.items) > limit  # the limit may have been lowered
        if trimmed:
            spool._drop_oldest()
        if torn or trimmed:
            spool._rewrite()  # a torn line has no newline: the next append would join it
        return spool

    def record(self, sample: Sample, items: list[dict]) -> None:
        """Queue one poll's items and remember its sample, in one fsync'd append."""
        self.items.extend(items)
        self.sample = sample
        if len(self.items) > self.limit:
            self._drop_oldest()
            self._rewrite()
            return
        if self.lines >= COMPACT_AFTER_LINES:
            self._rewrite()
            return
        line = json.dumps({"sample": sample.to_json(), "items": items}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.lines += 1

    def settle(self, answered: set[tuple[str, str]]) -> None:
        """Forget the items the coordinator has answered for (accepted, duplicate or rejected)."""
        self.items = [i for i in self.items if (i["stream"], i["interval_start"]) not in answered]
        self._rewrite()

    def _drop_oldest(self) -> None:
        excess = len(self.items) - self.limit
        self.dropped += excess
        self.items = self.items[excess:]
        log.error(
            "queue full (%d items): dropped the %d oldest, %d dropped so far",
            self.limit,
            excess,
            self.dropped,
        )

    def _rewrite(self) -> None:
        record = {"items": self.items, "dropped": self.dropped}
        if self.sample is not None:
            record["sample"] = self.sample.to_json()
        write_atomically(self.path, json.dumps(record) + "\n")
        self.lines = 1


# --------------------------------------------------------------------------- measuring
#
# Which SRS counter is right, measured on a real SRS 6 edge (tests/fixtures/srs): a stream's and a
# client's counters vanish with them (the stream when its last viewer leaves), and they move only
# every 3 s, so deltas of the stream counter lose the bytes sent before the first poll and after
# the last one (-19 % to -89 % at a 10 s interval; a 5 s session is never seen). The vhost counter
# (`/api/v1/vhosts/`) is what SRS itself counts as sent: every connection's bytes, kept after it
# leaves. So the reporter reads the vhost counter and the clients every second and gives each
# stream its clients' deltas; what the vhost counted beyond them was sent by connections that left
# since the last sample (their last bytes), and goes to those connections' streams.

SUFFIXES = (".flv", ".m3u8")  # SRS 6.0.155-157 name an HTTP-FLV viewer's stream `name.flv` (#4215)
CONSISTENT_READ_ATTEMPTS = 3


def stream_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _get(srs_api: str, endpoint: str, timeout: float) -> dict:
    url = f"{srs_api.rstrip('/')}/api/v1/{endpoint}/?start=0&count=10000"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own SRS
        body = json.load(response)
    if body.get("code") != 0:
        raise ValueError(f"SRS API {url} answered code {body.get('code')!r}")
    return body


def read_srs(srs_api: str, now: datetime, timeout: float = 5) -> Sample:
    """The vhost counter and the clients, read so that they agree: SRS moves its counters between
    two requests now and then (every 3 s, and when a connection closes), so the vhost counter is
    read before and after the clients and the reading repeated until it did not move."""
    for _ in range(CONSISTENT_READ_ATTEMPTS):
        before = _get(srs_api, "vhosts", timeout)
        clients = _get(srs_api, "clients", timeout)
        after = _get(srs_api, "vhosts", timeout)
        if before["vhosts"] == after["vhosts"]:
            break
    return sample_of(now, after, clients)


def sample_of(now: datetime, vhosts: dict, clients: dict) -> Sample:
    """A sample from SRS's `/api/v1/vhosts/` and `/api/v1/clients/` answers."""
    return Sample(
        now,
        sum(int(vhost["send_bytes"]) for vhost in vhosts["vhosts"]),
        {
            c["id"]: Client(
                stream_name(c["name"]),
                int(c["send_bytes"]),
                int(c.get("kbps", {}).get("send_30s", 0)),
                bool(c.get("publish")),
            )
            for c in clients["clients"]
        },
    )


def _share(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """`amount` split by `weights` in whole bytes that add up to it exactly."""
    total = sum(weights.values())
    shares, given = {}, 0
    names = sorted(weights)
    for name in names[:-1]:
        shares[name] = amount * weights[name] // total
        given += shares[name]
    shares[names[-1]] = amount - given
    return shares


def served_between(previous: Sample, current: Sample) -> tuple[dict[str, int], int]:
    """What each stream served from `previous` to `current`, and the bytes SRS counted that no
    stream can be named for (a connection that came and went between the two samples).

    A counter that went down means SRS restarted: everything it counts since is new."""
    restarted = current.sent < previous.sent
    total = current.sent if restarted else current.sent - previous.sent
    before = {} if restarted else previous.clients
    served: dict[str, int] = {}
    for key, client in current.clients.items():
        known = before.get(key)
        delta = client.sent - known.sent if known and known.sent <= client.sent else client.sent
        served[client.stream] = served.get(client.stream, 0) + delta
    leftover = total - sum(served.values())
    if leftover < 0:
        log.warning("SRS counted %d bytes fewer than its clients did; ignoring that", -leftover)
        leftover = 0
    # Connections gone since `previous` sent their last bytes after it: weigh by their rate.
    gone: dict[str, int] = {}
    for key, client in before.items():
        if key not in current.clients:
            gone[client.stream] = gone.get(client.stream, 0) + client.kbps + 1
    if leftover and gone:
        for name, share in _share(leftover, gone).items():
            served[name] = served.get(name, 0) + share
        leftover = 0
    return {name: sent for name, sent in served.items() if sent > 0}, leftover


def viewers_of(sample: Sample) -> dict[str, int]:
    counts: dict[str, int] = {}
    for client in sample.clients.values():
        if not client.publish:
            counts[client.stream] = counts.get(client.stream, 0) + 1
    return counts


@dataclass
class Window:
    """What was served since the last report (`start`), sample by sample. Kept in memory: after a
    restart the next sample is measured against the last reported one, so nothing is lost."""

    start: Sample
    last: Sample
    served: dict[str, int] = field(default_factory=dict)
    viewers: dict[str, int] = field(default_factory=dict)  # the most seen at once
    unnamed: int = 0  # bytes no stream could be named for yet

    def add(self, sample: Sample) -> None:
        served, unnamed = served_between(self.last, sample)
        for name, sent in served.items():
            self.served[name] = self.served.get(name, 0) + sent
        for name, count in viewers_of(sample).items():
            self.viewers[name] = max(self.viewers.get(name, 0), count)
        self.unnamed += unnamed
        self.last = sample

    def due(self, interval: float) -> bool:
        return (self.last.time - self.start.time).total_seconds() >= interval

    def items(self) -> list[dict]:
        """One report item per stream that served something; bytes no stream could be named for
        go to the streams served in the window, by what they served."""
        served = dict(self.served)
        if self.unnamed and served:
            for name, share in _share(self.unnamed, served).items():
                served[name] += share
        elif self.unnamed:
            log.warning("%d bytes sent to viewers of no stream seen: not reported", self.unnamed)
        return [
            {
                "stream": name,
                "interval_start": self.start.time.isoformat(),
                "interval_end": self.last.time.isoformat(),
                "bytes_served": sent,
                "viewers": max(self.viewers.get(name, 0), 1),
            }
            for name, sent in sorted(served.items())
        ]


# --------------------------------------------------------------------------- the coordinator


class Coordinator:
    def __init__(self, base_url: str, state_dir: Path, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_file = state_dir / "node.json"
        self.timeout = timeout
        self.node = self._load()

    def _load(self) -> dict:
        try:
            node = json.loads(self.node_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(f"{self.node_file} is missing: run setup.sh first") from None
        for key in ("id", "node_token", "token_expires_at"):
            if key not in node:
                raise SystemExit(f"{self.node_file} has no {key!r}: run setup.sh again")
        return node

    def call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the configured coordinator URL
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.node['node_token']}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 401:
                raise TokenGone(f"{method} {path}: 401 {error.read()[:200]!r}") from None
            # Anything else keeps the queue and is retried with backoff: 5xx and 429 pass, and
            # a 4xx needs a human (it is logged with the coordinator's reason).
            reason = error.read()[:300]
            raise Unavailable(f"{method} {path}: HTTP {error.code} {reason!r}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise Unavailable(f"{method} {path}: {error}") from None
        return json.loads(raw) if raw else None

    def heartbeat(self) -> int:
        answer = self.call("POST", "/api/v1/node/heartbeat", {})
        return int(answer.get("next_heartbeat_seconds", DEFAULT_HEARTBEAT_SECONDS))

    def renew_token_if_due(self, now: datetime) -> bool:
        expires_at = datetime.fromisoformat(self.node["token_expires_at"])
        if expires_at - now > RENEW_BEFORE:
            return False
        answer = self.call("POST", "/api/v1/node/token", {})
        renewed = {**self.node, **answer}
        # Stored before it is used: the old token keeps working an hour, the new one for months.
        write_atomically(self.node_file, json.dumps(renewed, indent=2) + "\n")
        self.node = renewed
        log.info("renewed the node token; it expires at %s", answer["token_expires_at"])
        return True

    def send(self, spool: Spool) -> int:
        """Send the queue in batches; returns how many items were answered for. Every answer
        (accepted, duplicate, rejected) settles its item; a failed call leaves the queue as is."""
        answered = 0
        while spool.items:
            batch = spool.items[:BATCH_SIZE]
            answer = self.call(
                "POST", f"/api/v1/nodes/{self.node['id']}/reports", {"reports": batch}
            )
            # The coordinator answers one result per item, in order.
            for item, result in zip(batch, answer["results"], strict=True):
                if result["status"] == "rejected":
                    log.warning(
                        "report for %s at %s rejected: %s",
                        item["stream"],
                        item["interval_start"],
                        result["reason"],
                    )
            spool.settle({(item["stream"], item["interval_start"]) for item in batch})
            answered += len(batch)
        return answered


# --------------------------------------------------------------------------- the loop


class Backoff:
    """Exponential backoff with full jitter, capped; reset after a success."""

    def __init__(self, cap: float = BACKOFF_CAP_SECONDS) -> None:
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap, 2.0**self.failures))  # noqa: S311 - jitter

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Reporter:
    coordinator: Coordinator
    spool: Spool
    srs_api: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    interval: float = DEFAULT_INTERVAL_SECONDS
    window: Window | None = None

    def poll(self) -> None:
        """Read SRS; once a report interval has passed since the last report, queue what each
        stream served since then. The first reading (or one after a gap the coordinator would not
        accept as one interval) is the baseline of a new series."""
        now = self.clock().replace(microsecond=0)
        sample = read_srs(self.srs_api, now)
        baseline = self.spool.sample
        if baseline is None or (now - baseline.time).total_seconds() > MAX_INTERVAL_SECONDS:
            if baseline is not None:
                gap = (now - baseline.time).total_seconds()
                log.warning("%.0f s since the last report: starting a new series", gap)
            self.spool.record(sample, [])
            self.window = Window(sample, sample)
            return
        if self.window is None:
            self.window = Window(baseline, baseline)
        self.window.add(sample)
        if self.window.due(self.interval):
            self.spool.record(sample, self.window.items())
            self.window = Window(sample, sample)

    def deliver(self) -> None:
        """Renew the token when due, then send the queue (raises Unavailable/TokenGone)."""
        self.coordinator.renew_token_if_due(self.clock())
        self.coordinator.send(self.spool)


def run_once(reporter: Reporter) -> int:
    """One poll, one heartbeat, one attempt to drain the queue; unsent items stay queued."""
    try:
        reporter.poll()
    except (OSError, ValueError) as error:
        log.warning("could not read SRS: %s", error)
    try:
        reporter.coordinator.heartbeat()
        reporter.deliver()
    except Unavailable as error:
        queued = len(reporter.spool.items)
        log.warning("coordinator unavailable, %d items stay queued: %s", queued, error)
    except TokenGone as error:
        log.error("the node token is no longer valid (node removed?): %s", error)
        return EXIT_TOKEN_GONE
    return 0


def run_forever(reporter: Reporter, sample_seconds: float) -> int:
    """Read SRS every `sample_seconds` (queueing a report every interval); heartbeat as the
    coordinator asks; send whenever items are queued, backing off while it is unavailable."""
    backoff = Backoff()
    next_poll = next_heartbeat = retry_at = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_poll:
            next_poll = max(next_poll + sample_seconds, now)
            try:
                reporter.poll()
            except (OSError, ValueError) as error:
                log.warning("could not read SRS: %s", error)
        if now >= retry_at:
            try:
                if now >= next_heartbeat:
                    next_heartbeat = now + reporter.coordinator.heartbeat()
                reporter.deliver()
                backoff.reset()
            except Unavailable as error:
                retry_at = now + backoff.next_delay()
                log.warning(
                    "coordinator unavailable (%s); %d items queued; retrying in %.1f s",
                    error,
                    len(reporter.spool.items),
                    retry_at - now,
                )
            except TokenGone as error:
                log.error("the node token is no longer valid (node removed?): %s", error)
                return EXIT_TOKEN_GONE
        wake = min(next_poll, next_heartbeat if retry_at <= now else retry_at)
        time.sleep(max(0.0, wake - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", required=True, help="e.g. https://api.example.com")
    parser.add_argument("--state-dir", required=True, type=Path, help="written by setup.sh")
    parser.add_argument("--srs-api", default="http://127.0.0.1:1985", help="the edge's HTTP API")
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        help="seconds between reports",
    )
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=DEFAULT_SAMPLE_SECONDS,
        help="seconds between readings of SRS (at most the interval)",
    )
    parser.add_argument("--queue-limit", type=int, default=10_000, help="unsent items kept")
    parser.add_argument("--once", action="store_true", help="poll and send once, then exit")
    parser.add_argument(
        "--now", type=datetime.fromisoformat, help="the time of this poll (tests, with --once)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not MIN_INTERVAL_SECONDS <= args.interval <= MAX_INTERVAL_SECONDS:
        parser.error(f"--interval must be {MIN_INTERVAL_SECONDS}..{MAX_INTERVAL_SECONDS} seconds")
    if not 0.1 <= args.sample_seconds <= args.interval:
        parser.error(f"--sample-seconds must be 0.1..{args.interval:g} (the --interval) seconds")
    if args.now is not None and (not args.once or args.now.tzinfo is None):
        parser.error("--now needs --once and a UTC offset, e.g. 2026-01-01T12:00:00+00:00")
    try:
        spool = Spool.open(args.state_dir / "spool.jsonl", args.queue_limit)
    except ValueError as error:
        parser.error(f"--queue-limit: {error}")
    reporter = Reporter(Coordinator(args.coordinator, args.state_dir), spool, args.srs_api)
    reporter.interval = args.interval
    if args.now is not None:
        fixed = args.now
        reporter.clock = lambda: fixed
    if args.once:
        return run_once(reporter)
    return run_forever(reporter, args.sample_seconds)


if __name__ == "__main__":
    sys.exit(main())
