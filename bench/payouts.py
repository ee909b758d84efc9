"""The payout cycle and report ingest, against baselines measured in the same run.

Cycle: 1,000 streams, 10,000 nodes, one hour of 10-second reports (3.6 million rows) generated in
PostgreSQL. Measured, each in a transaction that is rolled back so every repetition pays the same
period: the cycle (`domain.payouts.pay_period`, one statement); the earlier design's per-node loop
(a query per node, shares in Python, an INSERT per entry); and a bare `GROUP BY node, stream` scan
of the period. Targets: cycle < 1 s, >= 20x faster than the loop, within 2x of the bare scan.

Ingest: report batches through the HTTP API (`streamr-coordinator serve`, one worker, durable
commits) with wrk, reports/s against hello-world requests/s in the same run. Target >= 50 %.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from streamr_coordinator.domain.payouts import pay_period
from streamr_coordinator.migrate import upgrade_to_head

from bench.coordinator_hooks import DURATION_SECONDS, SECRET, seed_accounts, serving, wrk
from devenv import services

REPEATS = 3
PERIOD = datetime(2026, 11, 25, 10, tzinfo=UTC)
BATCH_SIZES = (6, 60)  # a one-minute flush; ten minutes of reports after an outage

# STREAMS streams, NODES nodes (each relaying one stream), 360 ten-second reports per node, all
# received inside the hour that starts at PERIOD.
GENERATE = """
INSERT INTO users (id, username, password_hash, role)
SELECT g, 'user' || g, 'x', CASE WHEN g <= 100 THEN 'streamer' ELSE 'friend' END
FROM generate_series(1, 1100) g;
INSERT INTO streams (id, owner_id, name, key_hash, payout_pool_minor)
SELECT g, 1 + g % 100, 'stream-' || g, sha256(g::text::bytea), 1000 + g
FROM generate_series(1, 1000) g;
INSERT INTO nodes (id, owner_id, name, capacity_viewers, trust_bp)
SELECT g, 101 + g % 1000, 'node-' || g, 50, 5000 + g % 5001
FROM generate_series(1, 10000) g;
INSERT INTO contribution_reports (node_id, stream_id, interval_start, interval_end,
    bytes_served, verified_bytes, viewers, received_at)
SELECT n, 1 + n % 1000, t, t + interval '10 s', b, b - (b % 7) * (n % 3), 2, t + interval '10 s'
FROM generate_series(1, 10000) n,
    generate_series(timestamptz '2026-11-25 09:59:50+00', timestamptz '2026-11-25 10:59:40+00',
                    interval '10 s') t,
    LATERAL (SELECT 1000000 + (n * 7919 + extract(epoch FROM t)::bigint) % 9000000 AS b) bytes;
"""

BARE_SCAN = text(
    "SELECT node_id, stream_id, sum(verified_bytes) FROM contribution_reports "
    "WHERE received_at >= :start AND received_at < :end GROUP BY node_id, stream_id"
)


async def _naive_loop(connection, start: datetime, end: datetime) -> int:
    """The earlier design: per node, its contributions and trust; shares in Python; an INSERT
    per entry."""
    await connection.execute(
        text("INSERT INTO payout_periods (period_start, period_end) VALUES (:s, :e)"),
        {"s": start, "e": end},
    )
    node_ids = (await connection.execute(text("SELECT id, owner_id FROM nodes"))).all()
    pools = dict(
        (await connection.execute(text("SELECT id, payout_pool_minor FROM streams"))).all()
    )
    weights: dict[int, list[tuple[int, int, int, int, int]]] = {}
    for node_id, owner_id in node_ids:
        trust = await connection.scalar(
            text("SELECT trust_bp FROM nodes WHERE id = :id"), {"id": node_id}
        )
        rows = await connection.execute(
            text(
                "SELECT stream_id, sum(verified_bytes) FROM contribution_reports "
                "WHERE node_id = :id AND received_at >= :s AND received_at < :e GROUP BY stream_id"
            ),
            {"id": node_id, "s": start, "e": end},
        )
        for stream_id, verified in rows:
            if verified and trust:
                entry = (node_id, owner_id, int(verified), trust, int(verified) * trust)
                weights.setdefault(stream_id, []).append(entry)
    entries = 0
    for stream_id, nodes in weights.items():
        pool, total = pools[stream_id], sum(node[4] for node in nodes)
        quotas = [Fraction(pool * node[4], total) for node in nodes]
        shares = [int(quota) for quota in quotas]
        order = sorted(range(len(nodes)), key=lambda i: (-(quotas[i] - shares[i]), nodes[i][0]))
        for index in order[: pool - sum(shares)]:
            shares[index] += 1
        for node, share in zip(nodes, shares, strict=True):
            await connection.execute(
                text(
                    "INSERT INTO ledger_entries (period_start, stream_id, node_id, user_id, "
                    "verified_bytes, trust_bp, amount_minor) VALUES (:p, :s, :n, :u, :v, :t, :a)"
                ),
                {"p": start, "s": stream_id, "n": node[0], "u": node[1], "v": node[2]}
                | {"t": node[3], "a": share},
            )
            entries += 1
    return entries


async def _timed(engine, work, repeats: int = REPEATS) -> tuple[float, object]:
    """Median seconds of `work(connection)` in a transaction that is always rolled back."""
    timings, result = [], None
    for _ in range(repeats):
        async with engine.connect() as connection:
            transaction = await connection.begin()
            began = time.perf_counter()
            result = await work(connection)
            timings.append(time.perf_counter() - began)
            await transaction.rollback()
    return statistics.median(timings), result


async def _cycle_figures(url: str) -> dict[str, tuple[float, object]]:
    engine = create_async_engine(url)
    end = PERIOD + timedelta(hours=1)
    try:

        async def cycle(connection):
            return await pay_period(connection, PERIOD, end)

        async def bare(connection):
            return len((await connection.execute(BARE_SCAN, {"start": PERIOD, "end": end})).all())

        async def loop(connection):
            return await _naive_loop(connection, PERIOD, end)

        figures = {
            "bare GROUP BY scan": await _timed(engine, bare),
            "payout cycle (one statement)": await _timed(engine, cycle),
        }
        # The loop's best case: an index for its per-node query (without it, each query scans
        # the period and the loop takes minutes).
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE INDEX loop_node_received ON contribution_reports (node_id, received_at)"
                )
            )
            await connection.execute(text("ANALYZE contribution_reports"))
        figures["per-node loop (earlier design)"] = await _timed(engine, loop, repeats=1)
        return figures
    finally:
        await engine.dispose()


RELAYING = """
INSERT INTO viewer_sessions (stream_id, node_id, server_id, client_id, client_ip, started_at)
SELECT s.id, n.id, 'edge', 'v' || n.id, '198.51.100.1', now() - interval '2 hours'
FROM nodes n JOIN streams s ON s.name = 'bench-' || ((n.id - 1) % 200);
INSERT INTO edge_pulls (stream_id, node_id, server_id, service_id, client_id, started_at)
SELECT s.id, n.id, 'origin', 'bench', 'p' || n.id, now() - interval '2 hours'
FROM nodes n JOIN streams s ON s.name = 'bench-' || ((n.id - 1) % 200);
INSERT INTO broadcasts (stream_id, server_id, service_id, client_id, started_at)
SELECT id, 'origin', 'bench', 'obs', now() - interval '2 hours' FROM streams
WHERE name LIKE 'bench-%';
"""


def _report_batches(node_tokens: list[str], node_ids: list[int], streams: list[str], size: int):
    """Distinct batches (so nothing is a duplicate) of `size` 10-second reports per node."""
    variants = []
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=50)
    rounds = max(2, 48 // size)  # more distinct batches than a run sends
    for round_number in range(rounds):
        for token, node_id, stream in zip(node_tokens, node_ids, streams, strict=True):
            first = start + timedelta(seconds=10 * size * round_number)
            items = [
                {
                    "stream": stream,
                    "interval_start": (first + timedelta(seconds=10 * i)).isoformat(),
                    "interval_end": (first + timedelta(seconds=10 * i + 10)).isoformat(),
                    "bytes_served": 4_000_000,
                    "viewers": 1,
                }
                for i in range(size)
            ]
            variants.append(
                {
                    "path": f"/api/v1/nodes/{node_id}/reports",
                    "headers": {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                    "body": json.dumps({"reports": items}),
                }
            )
    return variants


def _ingest_figures(pg: services.Postgres, cache_url: str) -> dict[str, dict]:
    python = sys.executable
    environment = {
        **os.environ,
        "STREAMR_DATABASE_URL": pg.url("ingest"),
        "STREAMR_REDIS_URL": cache_url,
        "STREAMR_TOKEN_PEPPER": "bench-pepper-0123456789abcdef0123456789abcdef",
        "STREAMR_HOOK_SECRET": SECRET,
        "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "10000",
        "STREAMR_PAYOUT_CHECK_SECONDS": "0",
    }
    hello_port, port = services.free_port(), services.free_port()
    hello_cmd = [python, "-m", "uvicorn", "bench.hello:app", "--port", str(hello_port)]
    hello_cmd += ["--no-access-log", "--log-level", "warning"]
    serve = [python, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(port), "--workers", "1"]
    results: dict[str, dict] = {}
    with serving(hello_cmd, hello_port, environment) as hello:
        results["hello-world GET"] = wrk(f"{hello}/hello")
    with serving(serve, port, environment) as coordinator:
        publishes, node_tokens = seed_accounts(coordinator)
        rows = pg.psql("SELECT id FROM nodes ORDER BY id", "ingest").split()
        node_ids = [int(row) for row in rows]
        streams = [publishes[i % len(publishes)]["stream"] for i in range(len(node_ids))]
        # Every node has a viewer on its stream since two hours ago, its edge pulls the stream
        # from the origin, and the origin broadcasts it, so its reports verify.
        pg.psql(RELAYING, "ingest")
        for size in BATCH_SIZES:
            pg.psql("TRUNCATE contribution_reports", "ingest")
            variants = _report_batches(node_tokens, node_ids, streams, size)
            figures = wrk(f"{coordinator}/", "POST", variants)
            stored = int(pg.psql("SELECT count(*) FROM contribution_reports", "ingest"))
            figures["reports_per_s"] = stored / DURATION_SECONDS
            figures["duplicates"] = figures["rps"] * DURATION_SECONDS * size - stored
            results[f"reports, batches of {size}"] = figures
    return results


def main() -> None:
    with services.postgres() as pg, services.redis() as cache:
        url = pg.create_database("cycle")
        upgrade_to_head(url)
        began = time.perf_counter()
        pg.psql(GENERATE, "cycle")
        pg.psql("VACUUM ANALYZE", "cycle")
        rows = int(pg.psql("SELECT count(*) FROM contribution_reports", "cycle"))
        print(f"generated {rows:,} reports in {time.perf_counter() - began:.1f} s")
        cycle = asyncio.run(_cycle_figures(url))
        upgrade_to_head(pg.create_database("ingest"))
        ingest = _ingest_figures(pg, cache.url)

    bare = cycle["bare GROUP BY scan"][0]
    print(f"{'payout, 1 period':<34}{'seconds':>9}{'vs cycle':>10}{'rows':>9}")
    for name, (seconds, result) in cycle.items():
        ratio = seconds / cycle["payout cycle (one statement)"][0]
        rows = result.entries if hasattr(result, "entries") else result
        print(f"{name:<34}{seconds:>9.3f}{ratio:>9.1f}x{rows:>9}")
    cycle_s = cycle["payout cycle (one statement)"][0]
    loop_s = cycle["per-node loop (earlier design)"][0]
    print(f"target cycle < 1 s: {cycle_s:.3f} s ({'met' if cycle_s < 1 else 'NOT met'})")
    print(
        f"target >= 20x faster than the loop: {loop_s / cycle_s:.1f}x "
        f"({'met' if loop_s / cycle_s >= 20 else 'NOT met'})"
    )
    print(
        f"target within 2x of the bare scan: {cycle_s / bare:.2f}x "
        f"({'met' if cycle_s / bare <= 2 else 'NOT met'})"
    )

    hello = ingest.pop("hello-world GET")["rps"]
    print(
        f"{'ingest (wrk, durable commits)':<34}{'req/s':>9}{'reports/s':>11}{'p99 ms':>9}"
        f"{'vs hello':>10}"
    )
    print(f"{'hello-world GET':<34}{hello:>9.0f}{'':>11}{'':>9}{'':>10}")
    for name, figures in ingest.items():
        print(
            f"{name:<34}{figures['rps']:>9.0f}{figures['reports_per_s']:>11.0f}"
            f"{figures['p99_ms']:>9.2f}{figures['reports_per_s'] / hello:>10.0%}"
        )
    best = max(figures["reports_per_s"] for figures in ingest.values()) / hello
    print(
        f"target ingest >= 50% of hello-world: {best:.0%} ({'met' if best >= 0.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
