"""An open-loop HTTP/1.1 load generator: requests start on a fixed schedule whatever the server
does, and each latency is measured from the request's *scheduled* start, so queueing anywhere
(server or client) shows in the tail instead of being hidden by a slower send rate.

Requests are encoded before the run, responses are read with a minimal parser (status line,
Content-Length), connections are kept alive and reused, the loop is uvloop's and the garbage
collector is off during the run. Still, it shares the interpreter's overheads: the benchmark's
targets use `bench.h2load` (compiled) and print this client's figures beside them. A request
that finds no idle connection opens a new one, as an open-loop client must, rather than waiting.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from dataclasses import dataclass

import uvloop


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method != "GET":
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def post_json(path: str, body: dict, headers: dict[str, str] | None = None) -> Request:
    return Request(
        "POST",
        path,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


@dataclass(frozen=True)
class Figures:
    rate: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers and failed connections
    late_starts: int  # requests the client itself sent more than 1 ms after their schedule


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, payloads: list[bytes], rate: int, seconds: int) -> Figures:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    errors = late = 0

    async def one(payload: bytes, scheduled: float) -> None:
        nonlocal errors
        # A kept-alive connection the server closed while it sat idle (uvicorn's keep-alive
        # timeout is 5 s) fails at once: the request is sent again on a new connection, as any
        # HTTP client does, and its latency still counts from the schedule.
        reusing = bool(idle)
        while True:
            writer = None
            try:
                connection = idle.pop() if reusing else await asyncio.open_connection(host, port)
                reader, writer = connection
                writer.write(payload)
                status = await _read_response(reader)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                if writer is not None:  # broken: never reused
                    writer.close()
                closed_while_idle = reusing and isinstance(
                    error, ConnectionResetError | asyncio.IncompleteReadError
                )
                if not closed_while_idle or (
                    isinstance(error, asyncio.IncompleteReadError) and error.partial
                ):
                    errors += 1
                    return
                reusing = False
        latencies.append(time.perf_counter() - scheduled)
        if not 200 <= status < 300:
            errors += 1
        idle.append(connection)

    # Warm up: a few connections open before the clock starts, as a long-running client has.
    for _ in range(8):
        idle.append(await asyncio.open_connection(host, port))
    tasks = []
    # No collection pauses in the client during the run: they would show as the server's tail.
    gc.collect()
    gc.disable()
    start = time.perf_counter() + 0.05
    for index in range(rate * seconds):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.001:
            late += 1
        tasks.append(asyncio.create_task(one(payloads[index % len(payloads)], scheduled)))
    await asyncio.gather(*tasks)
    gc.enable()
    for _, writer in idle:
        writer.close()
    ordered = sorted(latencies) or [float("nan")]
    return Figures(
        rate=rate,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        max_ms=ordered[-1] * 1000,
        errors=errors,
        late_starts=late,
    )


def run(base_url: str, requests: list[Request], rate: int, seconds: int) -> Figures:
    """`rate` requests a second for `seconds` to `base_url` (http://host:port), cycling through
    `requests`."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    payloads = [request.encode(f"{host}:{port}") for request in requests]
    return uvloop.run(_run(host, int(port), payloads, rate, seconds))
