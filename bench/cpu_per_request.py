"""CPU per request on the hot paths, as a multiple of hello-world's, in one run.

What is measured is CPU time (the scheduler's count, from /proc) charged to the server's
processes while `bench.open_loop` sends a fixed RATE of requests, less what they spend idle over
the same time (measured first, with no requests), not wall time or requests/s: other work
on a shared machine delays a request but charges none of its CPU here, so these ratios survive a
loaded machine better than throughput does (caches and clock speed still vary: the load average
is printed before and after). Below saturation on purpose (`BENCH_RATE`, 50 requests/s): under
overload, queueing (waits for a pooled connection, requests read together) changes what a
request costs.

Paths: hello-world GET (its own uvicorn, the baseline), node heartbeats in production's steady
state (RATE x 30 s nodes, each beating every 30 s: each node's measured beat comes one beat
interval after its first), report batches of 6 and 60 (all distinct, all verified; from nodes
that beat, so their tokens are remembered), `on_publish`
and `on_play` as the hook relay sends them. Beside the coordinator's own CPU per request: what
PostgreSQL and Redis spent per request in the same window (their whole process trees).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from streamr_coordinator.migrate import upgrade_to_head
from streamr_coordinator.security import NODE_TOKEN_PREFIX, keyed_hash, new_secret

from bench import open_loop
from bench.coordinator_hooks import SECRET, seed_accounts, serving
from bench.machine import describe_machine
from bench.payouts import RELAYING, report_batches
from devenv import services

# Well below saturation even on a busy machine (at saturation, queueing and batching would change
# what a request costs); long enough for a steady figure.
RATE = int(os.environ.get("BENCH_RATE", "50"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
HEARTBEAT_SECONDS = 30  # the coordinator's default: STREAMR_NODE_ONLINE_SECONDS (90) / 3
BEATING_NODES = RATE * HEARTBEAT_SECONDS
IDLE_SECONDS = 10
_TICKS = os.sysconf("SC_CLK_TCK")
PEPPER = "bench-pepper-0123456789abcdef0123456789abcdef"


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root`, its descendants and all their threads (the scheduler's nanosecond
    count), plus what their exited children used (a PostgreSQL backend that ended during the
    run, e.g. a connection recycled; the kernel counts those in clock ticks)."""
    parents: dict[int, int] = {}
    reaped: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry.name)] = int(fields[1])
            reaped[int(entry.name)] = int(fields[13]) + int(fields[14])  # cutime, cstime
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += reaped.get(pid, 0) / _TICKS
        for thread in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError):
                total += int(thread.read_text().split()[0]) / 1e9
        pending += [child for child, parent in parents.items() if parent == pid]
    return total


def _cpu(pids: list[int]) -> float:
    return sum(tree_cpu_seconds(pid) for pid in pids)


def idle_rates(server: int, backends: list[int]) -> tuple[float, float]:
    """CPU seconds per second that the server and the backends spend with no requests at all
    (timers, the coordinator's once-a-second revocation read): not any request's cost."""
    began, server_before, backends_before = time.monotonic(), _cpu([server]), _cpu(backends)
    time.sleep(IDLE_SECONDS)
    elapsed = time.monotonic() - began
    return (_cpu([server]) - server_before) / elapsed, (_cpu(backends) - backends_before) / elapsed


def measure(
    base: str,
    requests: list[open_loop.Request],
    server: int,
    backends: list[int],
    idle: tuple[float, float],
) -> dict[str, float]:
    """RATE requests a second for SECONDS; CPU per request of the server and of the backends,
    beyond what they spend idle over the same time."""
    began, server_before, backends_before = time.monotonic(), _cpu([server]), _cpu(backends)
    figures = open_loop.run(base, requests, RATE, SECONDS)
    elapsed = time.monotonic() - began
    sent = RATE * SECONDS
    server_spent = _cpu([server]) - server_before - idle[0] * elapsed
    backends_spent = _cpu(backends) - backends_before - idle[1] * elapsed
    return {
        "server_us": server_spent / sent * 1e6,
        "backends_us": backends_spent / sent * 1e6,
        "p50_ms": figures.p50_ms,
        "p99_ms": figures.p99_ms,
        "errors": figures.errors,
        "late": figures.late_starts,
    }


def seed_beating_nodes(pg: services.Postgres) -> list[str]:
    """BEATING_NODES nodes of the bench friend with node tokens, written straight to the tables
    (registering them through the API would take minutes); returns the tokens."""
    tokens = [new_secret(NODE_TOKEN_PREFIX) for _ in range(BEATING_NODES)]
    with psycopg.connect(pg.url(services.DATABASE, driver="postgresql")) as connection:
        rows = connection.execute(
            "INSERT INTO nodes (owner_id, name, capacity_viewers) "
            "SELECT id, 'beat-' || g, 10 FROM users, generate_series(1, %s) g "
            "WHERE username = 'bench-friend' ORDER BY g RETURNING id, owner_id",
            (BEATING_NODES,),
        ).fetchall()
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO api_tokens (token_hash, user_id, node_id, expires_at) "
                "VALUES (%s, %s, %s, now() + interval '30 days')",
                [
                    (keyed_hash(PEPPER, token), owner, node)
                    for token, (node, owner) in zip(tokens, rows, strict=True)
                ],
            )
    return tokens


def main() -> None:
    python = sys.executable
    with services.postgres() as pg, services.redis() as cache:
        upgrade_to_head(pg.url())
        environment = {
            **os.environ,
            "STREAMR_DATABASE_URL": pg.url(),
            "STREAMR_REDIS_URL": cache.url,
            "STREAMR_TOKEN_PEPPER": PEPPER,
            "STREAMR_HOOK_SECRET": SECRET,
            "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "10000",
            "STREAMR_PAYOUT_CHECK_SECONDS": "0",
            # The viewers below are written straight into the tables and never heartbeat: the
            # sweeper would close their sessions, and reports would no longer verify.
            "STREAMR_SWEEP_SECONDS": "0",
        }
        assert pg.process is not None
        backends = [pg.process.pid, cache.process.pid]
        hello_port, port = services.free_port(), services.free_port()
        hello_cmd = [python, "-m", "uvicorn", "bench.hello:app", "--port", str(hello_port)]
        hello_cmd += ["--no-access-log", "--log-level", "warning"]
        serve = [python, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
        serve += ["--port", str(port), "--workers", "1"]
        print(describe_machine())
        results: dict[str, dict[str, float]] = {}
        with serving(hello_cmd, hello_port, environment) as (hello, server):
            idle = idle_rates(server, backends)
            results["hello-world GET"] = measure(
                hello, [open_loop.Request("GET", "/hello", {})], server, backends, idle
            )
        with serving(serve, port, environment) as (coordinator, server):
            publishes, node_tokens = seed_accounts(coordinator)
            idle = idle_rates(server, backends)
            beats = [
                open_loop.Request("POST", "/api/v1/node/heartbeat", bearer(token))
                for token in seed_beating_nodes(pg)
            ]
            # Every node beats once (its first beat: a token lookup, coming online), and a beat
            # interval later the measured beats begin, in the same order.
            open_loop.run(coordinator, beats, RATE, HEARTBEAT_SECONDS)
            results["node heartbeat"] = measure(coordinator, beats, server, backends, idle)
            node_ids = [
                int(row)
                for row in pg.psql("SELECT id FROM nodes ORDER BY id", services.DATABASE).split()
            ]
            node_ids = node_ids[: len(node_tokens)]
            streams = [publishes[i % len(publishes)]["stream"] for i in range(len(node_ids))]
            pg.psql(RELAYING, services.DATABASE)
            # Production's steady state for reports too: a reporting node beats every 30 s with
            # the same token, so the coordinator remembers it when a batch arrives.
            open_loop.run(
                coordinator,
                [
                    open_loop.Request("POST", "/api/v1/node/heartbeat", bearer(token))
                    for token in node_tokens
                ],
                RATE,
                max(1, len(node_tokens) // RATE),
            )
            for size in (6, 60):
                batches = report_batches(
                    node_tokens, node_ids, streams, size, at_least=RATE * SECONDS
                )
                requests = [
                    open_loop.Request(
                        "POST", batch["path"], batch["headers"], batch["body"].encode()
                    )
                    for batch in batches
                ]
                results[f"reports, batch of {size}"] = measure(
                    coordinator, requests, server, backends, idle
                )
            relayed = bearer(SECRET)
            hook = "/hooks/srs/on_publish"
            published = [open_loop.post_json(hook, body, relayed) for body in publishes]
            results["on_publish"] = measure(coordinator, published, server, backends, idle)
            plays = [
                open_loop.post_json(
                    "/hooks/srs/on_play",
                    body | {"action": "on_play", "client_id": f"v{i}"},
                    relayed,
                )
                for i, body in enumerate(publishes * (RATE * SECONDS // len(publishes) + 1))
            ]
            results["on_play"] = measure(coordinator, plays, server, backends, idle)
        print(describe_machine())
        report(results, lambda name: name == "hello-world GET")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def report(results: dict[str, dict[str, float]], is_baseline: Callable[[str], bool]) -> None:
    baseline = next(figures for name, figures in results.items() if is_baseline(name))
    print(
        f"{RATE} requests/s for {SECONDS} s each; CPU per request (server, and PostgreSQL + Redis);"
        " latency from each request's scheduled start; late: requests the client started > 1 ms"
        " after their schedule"
    )
    print(
        f"{'path':<22}{'server µs':>10}{'vs hello':>9}{'db µs':>8}"
        f"{'p50 ms':>10}{'p99 ms':>10}{'errors':>7}{'late':>6}"
    )
    for name, figures in results.items():
        print(
            f"{name:<22}{figures['server_us']:>10.0f}"
            f"{figures['server_us'] / baseline['server_us']:>8.1f}x{figures['backends_us']:>8.0f}"
            f"{figures['p50_ms']:>10.1f}{figures['p99_ms']:>10.1f}"
            f"{figures['errors']:>7.0f}{figures['late']:>6.0f}"
        )


if __name__ == "__main__":
    main()
