"""The payout cycle and report ingest, against baselines measured in the same run.

Cycle: 1,000 streams, 10,000 nodes, one hour of reports generated in PostgreSQL (through the
triggers that keep the running totals), at two volumes: a report every 100 s per node (0.36 million
rows) and every 10 s (3.6 million). Measured, each in a transaction that is rolled back so every
repetition pays the same period: the cycle (`domain.payouts.pay_period`, one statement over the
totals); a bare `GROUP BY node, stream` scan of the period's reports (what any cycle that reads
the reports pays at least); and, at 3.6 M, the earlier design's per-node loop (a query per node,
shares in Python, an INSERT per entry). Floors show what any cycle that writes one ledger row per
(stream, node) pays on this machine: the cycle's computation of the shares alone (nothing
written), and the period's entries copied (nothing computed) into a table with only the ledger's
primary key, and into one with all the ledger's indexes. Each also prints the CPU time of its
PostgreSQL backend, and the cycle's CPU time against the scan's run in one process: on a shared
machine that ratio holds where wall times do not. Targets: at 3.6 M the cycle <= 0.1x the bare
scan and >= 100x faster than the loop; the cycle at 0.36 M and 3.6 M within 2x of each other.

Ingest: report batches through the HTTP API (`streamr-coordinator serve`, one worker, durable
commits) with wrk, reports/s against hello-world requests/s in the same run. Targets: batches of 60
>= 50 %, batches of 6 >= 25 %.
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
from streamr_coordinator.domain.payouts import SHARES, pay_period
from streamr_coordinator.migrate import upgrade_to_head

from bench.coordinator_hooks import DURATION_SECONDS, SECRET, seed_accounts, serving, wrk
from bench.machine import describe_machine
from devenv import services

REPEATS = 3
PERIOD = datetime(2026, 11, 25, 10, tzinfo=UTC)
BATCH_SIZES = (6, 60)  # a one-minute flush; ten minutes of reports after an outage
INGEST_TARGETS = {60: 0.5, 6: 0.25}  # reports/s as a share of hello-world requests/s
CYCLE = "payout cycle (one statement)"
LOOP = "per-node loop (earlier design)"
BARE = "bare GROUP BY scan"
BARE_SERIAL = "bare scan, one process"
FLOOR_COMPUTE = "floor: shares, nothing written"
FLOOR_WRITE = "floor: entries copied, only a PK"
FLOOR_INDEXED = "floor: entries copied, the ledger's indexes"

# Volumes: seconds between a node's reports -> reports in the hour.
SPACINGS = {100: "0.36 M reports", 10: "3.6 M reports"}

# 1,000 streams, 10,000 nodes (each relaying one stream), a ten-second report per node every
# :spacing seconds, all received inside the hour that starts at PERIOD.
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
                    interval '{spacing} s') t,
    LATERAL (SELECT 1000000 + (n * 7919 + extract(epoch FROM t)::bigint) % 9000000 AS b) bytes;
"""

SHARES_ONLY = text(f"WITH {SHARES} SELECT count(*) FROM shares")  # noqa: S608 - constant text
# The write floors' tables: the ledger's columns with only its primary key, and with all its
# indexes (those its readers need: by user, by stream); neither has its trigger or constraints.
FLOOR_TABLES = """
CREATE TABLE ledger_floor (LIKE ledger_entries INCLUDING DEFAULTS);
ALTER TABLE ledger_floor ADD PRIMARY KEY (period_start, stream_id, node_id);
CREATE TABLE ledger_floor_indexed (LIKE ledger_entries INCLUDING DEFAULTS INCLUDING INDEXES);
"""
COPY_ENTRIES = (
    "INSERT INTO {table} (period_start, stream_id, node_id, user_id, verified_bytes, "
    "trust_bp, amount_minor) SELECT period_start, stream_id, node_id, node_id, verified_bytes, "
    "0, 0 FROM payout_totals WHERE period_start >= :start AND period_start < :end "
    "ORDER BY stream_id, node_id"
)

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
    # Each paid user once (what holds them for the ledger), as the cycle does.
    for owner_id in sorted({node[1] for nodes in weights.values() for node in nodes}):
        await connection.execute(
            text("INSERT INTO payout_recipients (period_start, user_id) VALUES (:p, :u)"),
            {"p": start, "u": owner_id},
        )
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


def _cpu_seconds(pid: int) -> float:
    """CPU time a local PostgreSQL backend has used, in ns resolution (/proc/<pid>/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e9


async def _timed(engine, work, repeats: int = REPEATS) -> tuple[float, object, float]:
    """Median seconds of `work(connection)` in a transaction that is always rolled back, its
    result, and the median CPU seconds its PostgreSQL backend used meanwhile.

    The ledger tables are vacuumed after each repetition: a rolled-back cycle leaves dead index
    entries for the same keys, which the next repetition's uniqueness checks would step over (a
    real cycle pays each period once)."""
    timings, cpu, result = [], [], None
    for _ in range(repeats):
        async with engine.connect() as connection:
            transaction = await connection.begin()
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            began, began_cpu = time.perf_counter(), _cpu_seconds(pid)
            result = await work(connection)
            timings.append(time.perf_counter() - began)
            cpu.append(_cpu_seconds(pid) - began_cpu)
            await transaction.rollback()
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(
                text(
                    "VACUUM ledger_entries, payout_recipients, payout_periods, ledger_floor, "
                    "ledger_floor_indexed"
                )
            )
    return statistics.median(timings), result, statistics.median(cpu)


async def _cycle_figures(url: str, with_loop: bool) -> dict[str, tuple[float, object, float]]:
    engine = create_async_engine(url)
    end = PERIOD + timedelta(hours=1)
    try:

        async def cycle(connection):
            return await pay_period(connection, PERIOD, end)

        async def bare(connection):
            return len((await connection.execute(BARE_SCAN, {"start": PERIOD, "end": end})).all())

        async def bare_serial(connection):
            # All of the scan's work in one backend, so its CPU time can be read there (a
            # parallel scan's workers are other processes); the scan's own CPU, not a slower one.
            # The same plan as the parallel scan (a sequential scan into a hash aggregate):
            # without workers the planner, expecting ~360,000 groups for the real 10,000,
            # otherwise walks the whole unique index in (node, stream) order into a GroupAggregate
            # (3.6 M heap visits, about twice the CPU), which made the cycle look twice as cheap.
            await connection.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            await connection.execute(text("SET LOCAL enable_indexscan = off"))
            return await bare(connection)

        async def loop(connection):
            return await _naive_loop(connection, PERIOD, end)

        async def shares_only(connection):
            return await connection.scalar(SHARES_ONLY, {"period_start": PERIOD, "period_end": end})

        def copy_entries(table: str):
            async def copy(connection):
                statement = text(COPY_ENTRIES.format(table=table))
                return (await connection.execute(statement, {"start": PERIOD, "end": end})).rowcount

            return copy

        figures = {
            BARE: await _timed(engine, bare),
            BARE_SERIAL: await _timed(engine, bare_serial),
            CYCLE: await _timed(engine, cycle),
            FLOOR_COMPUTE: await _timed(engine, shares_only),
            FLOOR_WRITE: await _timed(engine, copy_entries("ledger_floor")),
            FLOOR_INDEXED: await _timed(engine, copy_entries("ledger_floor_indexed")),
        }
        if with_loop:
            # The loop's best case: an index for its per-node query (without it, each query
            # scans the period and the loop takes minutes).
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "CREATE INDEX loop_node_received "
                        "ON contribution_reports (node_id, received_at)"
                    )
                )
                await connection.execute(text("ANALYZE contribution_reports"))
            figures[LOOP] = await _timed(engine, loop, repeats=1)
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


def report_batches(
    node_tokens: list[str], node_ids: list[int], streams: list[str], size: int, at_least: int = 0
):
    """Distinct batches (so nothing is a duplicate) of `size` 10-second reports per node, inside
    the last 50 minutes: as many as fit in 45 of them (a wrk run that sends more resends some,
    and the stored reports/s is then capped: `_ingest_figures` says so), at least `at_least`."""
    variants = []
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=50)
    rounds = max(45 * 60 // (10 * size), -(-at_least // len(node_ids)))
    if rounds * size * 10 > 45 * 60:
        raise ValueError(f"{at_least} distinct batches of {size} do not fit in the last 50 min")
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
        # The relaying below is written straight into the tables and no node heartbeats: the
        # sweeper would close every node's sessions within 10 s, and every report would then be
        # rejected (no viewer served), so batches measured late stored nothing.
        "STREAMR_SWEEP_SECONDS": "0",
    }
    hello_port, port = services.free_port(), services.free_port()
    hello_cmd = [python, "-m", "uvicorn", "bench.hello:app", "--port", str(hello_port)]
    hello_cmd += ["--no-access-log", "--log-level", "warning"]
    serve = [python, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(port), "--workers", "1"]
    results: dict[str, dict] = {}
    with serving(hello_cmd, hello_port, environment) as (hello, _):
        results["hello-world GET"] = wrk(f"{hello}/hello")
    with serving(serve, port, environment) as (coordinator, _):
        publishes, node_tokens = seed_accounts(coordinator)
        rows = pg.psql("SELECT id FROM nodes ORDER BY id", "ingest").split()
        node_ids = [int(row) for row in rows]
        streams = [publishes[i % len(publishes)]["stream"] for i in range(len(node_ids))]
        # Every node has a viewer on its stream since two hours ago, its edge pulls the stream
        # from the origin, and the origin broadcasts it, so its reports verify.
        pg.psql(RELAYING, "ingest")
        for size in BATCH_SIZES:
            pg.psql("TRUNCATE contribution_reports", "ingest")
            variants = report_batches(node_tokens, node_ids, streams, size)
            figures = wrk(f"{coordinator}/", "POST", variants)
            stored = int(pg.psql("SELECT count(*) FROM contribution_reports", "ingest"))
            figures["reports_per_s"] = stored / DURATION_SECONDS
            figures["resent"] = max(0, round(figures["rps"] * DURATION_SECONDS) - len(variants))
            results[f"reports, batches of {size}"] = figures
    return results


def _generated(pg: services.Postgres, spacing: int) -> str:
    name = f"cycle_{spacing}"
    url = pg.create_database(name)
    upgrade_to_head(url)
    began = time.perf_counter()
    pg.psql(GENERATE.replace("{spacing}", str(spacing)), name)
    pg.psql(FLOOR_TABLES, name)
    pg.psql("VACUUM ANALYZE", name)
    rows = int(pg.psql("SELECT count(*) FROM contribution_reports", name))
    print(f"generated {rows:,} reports in {time.perf_counter() - began:.1f} s")
    return url


def main() -> None:
    with services.postgres() as pg, services.redis() as cache:
        volumes = {}
        for spacing, volume in SPACINGS.items():
            url = _generated(pg, spacing)
            volumes[volume] = asyncio.run(_cycle_figures(url, with_loop=spacing == min(SPACINGS)))
            pg.drop_database(f"cycle_{spacing}")
        upgrade_to_head(pg.create_database("ingest"))
        ingest = _ingest_figures(pg, cache.url)

    print(describe_machine())
    print(
        f"{'payout, 1 period':<50}{'seconds':>9}{'vs cycle':>10}{'entries/rows':>14}"
        f"{'PG CPU s':>10}"
    )
    for volume, cycle in volumes.items():
        for name, (seconds, result, cpu) in cycle.items():
            ratio = seconds / cycle[CYCLE][0]
            rows = result.entries if hasattr(result, "entries") else result
            print(f"{f'{volume}: {name}':<50}{seconds:>9.3f}{ratio:>9.1f}x{rows:>14}{cpu:>10.3f}")
    small, large = (volumes[volume] for volume in SPACINGS.values())
    cycle_s, bare_s, loop_s = large[CYCLE][0], large[BARE][0], large[LOOP][0]
    growth = cycle_s / small[CYCLE][0]
    for volume, cycle in volumes.items():
        # CPU time is not taken away by other work on a shared machine, unlike wall time.
        print(
            f"{volume}: PostgreSQL CPU, cycle / bare scan in one process: "
            f"{cycle[CYCLE][2] / cycle[BARE_SERIAL][2]:.3f}x"
        )
    print(f"PostgreSQL CPU, cycle at 3.6 M / at 0.36 M: {large[CYCLE][2] / small[CYCLE][2]:.2f}x")
    _target(
        "3.6 M: cycle <= 0.1x the bare scan", f"{cycle_s / bare_s:.3f}x", cycle_s <= 0.1 * bare_s
    )
    shares_s = large[FLOOR_COMPUTE][0]
    for floor in (FLOOR_WRITE, FLOOR_INDEXED):
        floor_s = shares_s + large[floor][0]
        print(
            f"3.6 M: shares computed + {floor.removeprefix('floor: ')} / bare scan: "
            f"{floor_s / bare_s:.3f}x ({shares_s / bare_s:.3f}x + {large[floor][0] / bare_s:.3f}x)"
        )
    _target(
        "3.6 M: cycle >= 100x faster than the loop",
        f"{loop_s / cycle_s:.0f}x",
        loop_s >= 100 * cycle_s,
    )
    _target("cycle at 3.6 M within 2x of 0.36 M", f"{growth:.2f}x", 0.5 <= growth <= 2)

    hello = ingest.pop("hello-world GET")["rps"]
    print(
        f"{'ingest (wrk, durable commits)':<34}{'req/s':>9}{'reports/s':>11}{'p99 ms':>9}"
        f"{'vs hello':>10}{'resent':>8}"
    )
    print(f"{'hello-world GET':<34}{hello:>9.0f}")
    for name, figures in ingest.items():
        print(
            f"{name:<34}{figures['rps']:>9.0f}{figures['reports_per_s']:>11.0f}"
            f"{figures['p99_ms']:>9.2f}{figures['reports_per_s'] / hello:>10.0%}"
            f"{figures['resent']:>8}"
        )
        if figures["resent"]:
            print(f"  {name}: wrk ran out of distinct batches; reports/s is a lower bound")
    for size, share in INGEST_TARGETS.items():
        ratio = ingest[f"reports, batches of {size}"]["reports_per_s"] / hello
        _target(
            f"ingest, batches of {size}, >= {share:.0%} of hello-world",
            f"{ratio:.0%}",
            ratio >= share,
        )


def _target(what: str, figure: str, met: bool) -> None:
    print(f"target {what}: {figure} ({'met' if met else 'NOT met'})")


if __name__ == "__main__":
    main()
