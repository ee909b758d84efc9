"""Open-loop latency with h2load (Debian's nghttp2-client), a compiled client, so that the client
is not what the tail measures.

Every request is its own HTTP/1.1 connection (`--h1`, `-c` = `-n`), and h2load starts those
connections on a fixed schedule (`--rate` connections every `--rate-period`) whatever the server
does: a slow answer never delays the next request, so queueing shows in the tail. As SRS does
for its hooks, each request connects anew; the connect time is reported on its own line.
Latencies come from h2load's per-request log (`--log-file`: start, status, microseconds to the
end of the response); errors and connect times from its summary.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figures:
    rate: float  # requests/s h2load achieved
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers and failed or timed-out requests
    connect_mean_ms: float
    connect_max_ms: float
    # h2load's own account when a request failed: its `requests:` and `status codes:` lines
    # (a status, or "errored"/"timeout" for a connection that broke or never answered).
    failures: str = ""


def schedule(rate: int) -> tuple[int, int]:
    """`rate` requests/s as (connections, every milliseconds), as evenly spread as h2load's
    whole-millisecond period allows: 200/s is one every 5 ms, 300/s three every 10 ms."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate}")
    common = math.gcd(rate, 1000)
    return rate // common, 1000 // common


def command(
    url: str,
    rate: int,
    seconds: int,
    log_file: Path,
    headers: dict[str, str] | None = None,
    body_file: Path | None = None,
) -> list[str]:
    """The h2load invocation: `rate * seconds` requests, one per connection, on a schedule."""
    connections, period_ms = schedule(rate)
    total = rate * seconds
    arguments = ["h2load", "--h1", "-t1", f"-c{total}", f"-n{total}"]
    arguments += [f"--rate={connections}", f"--rate-period={period_ms}ms"]
    arguments += [f"--log-file={log_file}"]
    for name, value in (headers or {}).items():
        arguments += ["-H", f"{name}: {value}"]
    if body_file is not None:
        arguments += [f"--data={body_file}"]
    return [*arguments, url]


def parse_log(text: str) -> list[tuple[int, int]]:
    """(status, microseconds to the end of the response) per request; status -1 when failed."""
    rows = []
    for line in text.splitlines():
        if line.strip():
            _start, status, microseconds, *_later_columns = line.split("\t")
            rows.append((int(status), int(microseconds)))
    return rows


_DURATION = re.compile(r"([\d.]+)(us|ms|s)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"not an h2load duration: {value!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse_summary(text: str) -> dict[str, float]:
    """The figures of h2load's summary that the log does not carry."""
    finished = re.search(r"^finished in \S+, ([\d.]+) req/s", text, re.M)
    requests = re.search(r"^requests: .* (\d+) failed, ", text, re.M)
    connect = re.search(r"^time for connect:\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if finished is None or requests is None or connect is None:
        raise ValueError(f"not h2load's summary:\n{text}")
    return {
        "rate": float(finished[1]),
        "failed": int(requests[1]),
        "connect_max_ms": _ms(connect[2]),
        "connect_mean_ms": _ms(connect[3]),
    }


def failure_lines(summary: str) -> str:
    """h2load's summary lines that say how requests failed."""
    return "; ".join(
        line.strip()
        for line in summary.splitlines()
        if line.startswith(("requests:", "status codes:"))
    )


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ascending values."""
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


def figures(log: str, summary: str) -> Figures:
    rows = parse_log(log)
    totals = parse_summary(summary)
    latencies = sorted(microseconds / 1000 for status, microseconds in rows if status != -1)
    if not latencies:
        raise ValueError(f"h2load answered no request:\n{summary}")
    # h2load's "failed" counts 4xx/5xx answers and broken requests, which the log has as -1
    # unless they never started: the larger of the two counts each once.
    errors = max(int(totals["failed"]), sum(1 for status, _ in rows if status // 100 != 2))
    return Figures(
        rate=totals["rate"],
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1],
        errors=errors,
        connect_mean_ms=totals["connect_mean_ms"],
        connect_max_ms=totals["connect_max_ms"],
        failures=failure_lines(summary) if errors else "",
    )


def run(
    url: str,
    rate: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Figures:
    """`rate` requests/s to `url` for `seconds`: GET, or POST of `body`."""
    with tempfile.TemporaryDirectory(prefix="h2load-") as directory:
        log_file, body_file = Path(directory, "log.tsv"), None
        if body is not None:
            body_file = Path(directory, "body")
            body_file.write_bytes(body)
        summary = subprocess.run(
            command(url, rate, seconds, log_file, headers, body_file),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return figures(log_file.read_text(), summary)
