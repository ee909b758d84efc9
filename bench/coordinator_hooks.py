"""Heartbeat, `on_publish` and `on_play` against a hello-world FastAPI app, same machine, same run.

Both apps run as one uvicorn worker (`streamr-coordinator serve` for the coordinator, with its JSON
access log on, as in production) on real PostgreSQL and Redis; the load comes from elsewhere: wrk
(closed loop, 32 connections) for throughput, and open-loop clients at a fixed 200 requests/s for
latency: h2load (compiled, a connection per request as SRS makes them; the targets use its
figures) and `bench.open_loop` (Python, latency from each request's scheduled start) beside it, so
that a client that is itself the bottleneck shows as a gap between the two on hello-world.
Targets: heartbeats >= 50 % of hello-world requests/s; on_publish and on_play p99 at 200 requests/s
<= 2x hello-world's p99 at the same rate. The floors beside them, at the same rate (`bench.hello`,
one PostgreSQL connection of its own): hello-world with one `SELECT 1`, and a bare on_publish (the
coordinator's statement, nothing around it), which no hook that asks PostgreSQL can beat: on this
machine a round trip to an idle backend costs about what a whole hello-world request does (both
processes wake from idle), so the floors sit near the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from streamr_coordinator.migrate import upgrade_to_head

from bench import h2load, open_loop
from bench.machine import describe_machine
from devenv import services

DURATION_SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 32
RATE = 200
STREAMS = 200
NODES = 500
SECRET = "bench-hook-secret-0123456789abcdef0123456789"
# The floors (`bench.hello`): hello-world plus one PostgreSQL round trip, and a bare on_publish.
FLOOR = "hello + SELECT 1 @200/s"
BARE_PUBLISH = "bare on_publish @200/s"


@contextmanager
def serving(command: list[str], port: int, environment: dict[str, str]):
    """Run a server until the block ends; yields its base URL and process id. Its output (logs,
    errors, stack traces) goes to a file whose path is printed at the end, with how many lines
    are warnings or errors: a failed request in the figures can be looked up there."""
    log = Path(tempfile.mkstemp(prefix=f"bench-server-{port}-", suffix=".log")[1])
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        problems = sum(1 for line in log.read_text(errors="replace").splitlines() if _problem(line))
        print(f"server log: {log} ({problems} warning or error lines)", file=sys.stderr)


def _problem(line: str) -> bool:
    """A log line that is a warning, an error or a stack trace, in our JSON logs or uvicorn's."""
    markers = ('"level": "warning"', '"level": "error"', "WARNING:", "ERROR:", "Traceback")
    return any(marker in line for marker in markers)


def _lua_table(variants: list[dict]) -> str:
    """Requests as a Lua table literal (JSON string escapes are valid Lua for ASCII)."""
    rows = []
    for variant in variants:
        headers = ", ".join(
            f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in variant["headers"].items()
        )
        body = json.dumps(variant["body"]) if variant.get("body") else "nil"
        path = json.dumps(variant["path"]) if variant.get("path") else "nil"
        rows.append(f"{{path = {path}, headers = {{{headers}}}, body = {body}}}")
    return "{" + ",\n".join(rows) + "}"


def wrk(url: str, method: str = "GET", variants: list[dict] | None = None) -> dict[str, float]:
    """Closed-loop throughput and latency with wrk; the request variants (headers, body and
    optionally a path) go round-robin."""
    script = f"""
local variants = {_lua_table(variants or [{"headers": {}}])}
local i = 0
request = function()
  i = i + 1
  local v = variants[(i % #variants) + 1]
  return wrk.format("{method}", v.path, v.headers, v.body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_SECONDS}s", "-s", file.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(file.name).unlink()
    line = next(row for row in output.splitlines() if row.startswith("RESULT"))
    requests, duration_us, p50_us, p99_us, errors = (int(x) for x in line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "errors": errors,
    }


def seed_accounts(base: str) -> tuple[list[dict], list[str]]:
    """A streamer with STREAMS streams (publish bodies with their keys) and NODES node tokens."""
    client = httpx.Client(base_url=base, timeout=10)
    password = "bench-password-123"
    tokens = {}
    for role in ("streamer", "friend"):
        client.post(
            "/api/v1/auth/register",
            json={"username": f"bench-{role}", "password": password, "role": role},
        )
        login = client.post(
            "/api/v1/auth/login", json={"username": f"bench-{role}", "password": password}
        )
        tokens[role] = {"Authorization": f"Bearer {login.json()['token']}"}
    publishes = []
    for index in range(STREAMS):
        stream = client.post(
            "/api/v1/streams", json={"name": f"bench-{index}"}, headers=tokens["streamer"]
        ).json()
        publishes.append(
            {
                "action": "on_publish",
                "client_id": f"c{index}",
                "ip": "203.0.113.9",
                "vhost": "__defaultVhost__",
                "app": "live",
                "stream": stream["name"],
                "param": f"?key={stream['stream_key']}",
                "server_id": "bench",
            }
        )
    node_tokens = []
    for index in range(NODES):
        node = client.post(
            "/api/v1/nodes",
            json={"name": f"bench-node-{index}", "capacity_viewers": 50},
            headers=tokens["friend"],
        ).json()
        node_tokens.append(node["node_token"])
    return publishes, node_tokens


def main() -> None:
    python = sys.executable
    with services.postgres() as pg, services.redis() as cache:
        upgrade_to_head(pg.url())
        environment = {
            **os.environ,
            "STREAMR_DATABASE_URL": pg.url(),
            "STREAMR_REDIS_URL": cache.url,
            "STREAMR_TOKEN_PEPPER": "bench-pepper-0123456789abcdef0123456789abcdef",
            "STREAMR_HOOK_SECRET": SECRET,
            "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "10000",
        }
        hello_port, coordinator_port = services.free_port(), services.free_port()
        hello_cmd = [
            python,
            "-m",
            "uvicorn",
            "bench.hello:app",
            "--port",
            str(hello_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        coordinator_cmd = [
            python,
            "-m",
            "streamr_coordinator",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(coordinator_port),
            "--workers",
            "1",
        ]
        results: dict[str, dict] = {}
        hello_environment = environment | {"BENCH_DATABASE_URL": pg.url(driver="postgresql")}
        with serving(hello_cmd, hello_port, hello_environment) as (hello, _):
            results["hello-world GET (wrk)"] = wrk(f"{hello}/hello")
            results["hello-world GET @200/s"] = h2load_at_rate(f"{hello}/hello")
            results[FLOOR] = h2load_at_rate(f"{hello}/hello/database")
            hello_get = [open_loop.Request("GET", "/hello", {})]
            results["hello-world GET (python)"] = at_rate(hello, hello_get)
        with serving(coordinator_cmd, coordinator_port, environment) as (coordinator, _):
            publishes, node_tokens = seed_accounts(coordinator)
            beats = [{"headers": {"Authorization": f"Bearer {token}"}} for token in node_tokens]
            warm_up(f"{coordinator}/api/v1/node/heartbeat", beats)
            results["heartbeat (wrk)"] = wrk(f"{coordinator}/api/v1/node/heartbeat", "POST", beats)
            hook = "/hooks/srs/on_publish"
            # What the SRS host's hook relay sends: the secret in a header, never in the URL.
            relayed = {"Authorization": f"Bearer {SECRET}"}
            json_body = {"Content-Type": "application/json", **relayed}
            calls = [{"headers": json_body, "body": json.dumps(body)} for body in publishes]
            results["on_publish (wrk)"] = wrk(f"{coordinator}{hook}", "POST", calls)
            results["on_publish @200/s"] = h2load_at_rate(
                f"{coordinator}{hook}", json_body, json.dumps(publishes[0]).encode()
            )
            published = [open_loop.post_json(hook, body, relayed) for body in publishes]
            results["on_publish (python)"] = at_rate(coordinator, published)
            # Viewers of the origin: every play is a new connection, so a new viewer session.
            play = "/hooks/srs/on_play"
            # h2load sends one body: an HLS viewer's play, which upserts its session every time
            # (a new RTMP client_id per request would need a body per request).
            hls_play = publishes[0] | {
                "action": "on_play",
                "stream": f"{publishes[0]['stream']}.m3u8",
            }
            results["on_play @200/s"] = h2load_at_rate(
                f"{coordinator}{play}", json_body, json.dumps(hls_play).encode()
            )
            plays = [
                open_loop.post_json(
                    play, body | {"action": "on_play", "client_id": f"v{i}"}, relayed
                )
                for i, body in enumerate(publishes * (RATE * DURATION_SECONDS // STREAMS + 1))
            ]
            results["on_play (python)"] = at_rate(coordinator, plays)
        # After the coordinator, on the streams it made: the same body as on_publish @200/s.
        with serving(hello_cmd, hello_port, hello_environment) as (hello, _):
            results[BARE_PUBLISH] = h2load_at_rate(
                f"{hello}/hello/publish", json_body, json.dumps(publishes[0]).encode()
            )
    report(results)


def warm_up(url: str, beats: list[dict]) -> None:
    """One heartbeat per node before measuring: steady state, where a node beats more often than
    its token's cache entry lives, and its first beat (a PostgreSQL lookup and write) is past."""
    with httpx.Client(timeout=10) as client:
        for beat in beats:
            client.post(url, headers=beat["headers"]).raise_for_status()


def at_rate(base: str, requests: list[open_loop.Request]) -> dict[str, float]:
    figures = open_loop.run(base, requests, RATE, DURATION_SECONDS)
    return {
        "rps": figures.rate,
        "p50_ms": figures.p50_ms,
        "p99_ms": figures.p99_ms,
        "errors": figures.errors,
        "late": figures.late_starts,
    }


def h2load_at_rate(
    url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> dict[str, float]:
    figures = h2load.run(url, RATE, DURATION_SECONDS, headers, body)
    if figures.failures:
        print(f"h2load {url}: {figures.failures}", file=sys.stderr)
    return {
        "rps": figures.rate,
        "p50_ms": figures.p50_ms,
        "p99_ms": figures.p99_ms,
        "errors": figures.errors,
    }


def report(results: dict[str, dict]) -> None:
    baseline = results["hello-world GET (wrk)"]["rps"]
    hello_p99 = results["hello-world GET @200/s"]["p99_ms"]
    print(describe_machine())
    print(f"@{RATE}/s: h2load, a connection per request; (python): bench.open_loop at {RATE}/s")
    print("late: requests the Python client itself started > 1 ms after their schedule")
    print(
        f"{'endpoint':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs hello':>12}"
        f"{'late':>6}"
    )
    for name, figures in results.items():
        if "(wrk)" in name:
            ratio = f"{figures['rps'] / baseline:.0%}"
        elif "(python)" in name:
            python_p99 = results["hello-world GET (python)"]["p99_ms"]
            ratio = f"{figures['p99_ms'] / python_p99:.1f}x p99"
        else:
            ratio = f"{figures['p99_ms'] / hello_p99:.1f}x p99"
        print(
            f"{name:<26}{figures['rps']:>10.0f}{figures['p50_ms']:>9.2f}"
            f"{figures['p99_ms']:>9.2f}{figures['errors']:>8}{ratio:>12}"
            f"{figures.get('late', ''):>6}"
        )
    heartbeat_ratio = results["heartbeat (wrk)"]["rps"] / baseline
    print(
        f"target heartbeat >= 50% of hello-world: {heartbeat_ratio:.0%} "
        f"({'met' if heartbeat_ratio >= 0.5 else 'NOT met'})"
    )
    floor_p99 = results[FLOOR]["p99_ms"]
    print(
        f"floor: one PostgreSQL round trip on hello-world, p99 at {RATE}/s: "
        f"{floor_p99 / hello_p99:.2f}x hello-world's"
    )
    print(
        f"floor: a bare on_publish (its statement, no middleware, pool, validation or log), "
        f"p99 at {RATE}/s: {results[BARE_PUBLISH]['p99_ms'] / hello_p99:.2f}x hello-world's"
    )
    for hook in ("on_publish", "on_play"):
        hook_p99 = results[f"{hook} @200/s"]["p99_ms"]
        ratio = hook_p99 / hello_p99
        print(
            f"target {hook} p99 at {RATE}/s <= 2x hello-world's: {ratio:.2f}x "
            f"({'met' if ratio <= 2 else 'NOT met'}; {hook_p99 / floor_p99:.2f}x the floor)"
        )


if __name__ == "__main__":
    main()
