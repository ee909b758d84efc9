"""The demo that `make run` seeds: enough of a day on the platform that each role's first sign-in
shows what the product does. A live stream watched on the origin and on a friend's edge, a quieter
stream earlier in the day, a friend with two relay nodes (one online), the contribution reports
those edges sent, and hours of history for the charts. Reports are received in past periods, so
the coordinator's payout scheduler pays them as soon as it starts: the first page already shows
paid periods.

Written with the ORM because the history lies in the past, which no API can create.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from streamr_coordinator.models import (
    FULL_TRUST,
    ContributionReport,
    Node,
    Role,
    Stream,
    User,
    ViewerSession,
)
from streamr_coordinator.security import STREAM_KEY_PREFIX, hash_password, keyed_hash, new_secret

PASSWORD = "demo-password-123"  # noqa: S105 - local demo accounts only
REPORT_SECONDS = 300  # what a node reports at most per interval


@dataclass(frozen=True)
class Show:
    """When a stream was on air (hours ago, newest first) and how many watched each hour."""

    name: str
    title: str
    bitrate_kbps: int
    pool_minor: int
    hours_ago: tuple[int, ...]
    viewers: tuple[int, int]  # (origin, per online edge), roughly


SHOWS = (
    Show("demo-show", "Friday speedrun night", 3000, 1000, (0, 1, 2, 5, 6, 7), (3, 5)),
    Show("late-jam", "Late-night jam session", 2500, 600, (15, 16, 17), (2, 3)),
)


async def seed(session: AsyncSession, pepper: str, now: datetime | None = None) -> str:
    """Seed everything; returns the live stream's key (stored hashed, so shown once)."""
    now = now or datetime.now(UTC)
    rng = random.Random(7)  # noqa: S311 - the same demo every time, nothing secret
    users = {
        role: User(username=f"demo-{role}", password_hash=hash_password(PASSWORD), role=role.value)
        for role in Role
    }
    session.add_all(users.values())
    await session.flush()
    attic = Node(
        owner_id=users[Role.FRIEND].id,
        name="attic-pi",
        capacity_viewers=20,
        trust_bp=FULL_TRUST,
        last_seen=now,
        play_base_url="http://100.64.0.7:8080",
    )
    office = Node(
        owner_id=users[Role.FRIEND].id,
        name="office-box",
        capacity_viewers=50,
        trust_bp=FULL_TRUST * 92 // 100,  # it once over-claimed a little
        last_seen=now - timedelta(hours=3),
        play_base_url="http://100.64.0.9:8080",
    )
    session.add_all([attic, office])
    await session.flush()
    live_key = ""
    for show in SHOWS:
        key = new_secret(STREAM_KEY_PREFIX)
        live = 0 in show.hours_ago
        live_key = key if live else live_key
        stream = Stream(
            owner_id=users[Role.STREAMER].id,
            name=show.name,
            title=show.title,
            key_hash=keyed_hash(pepper, key),
            bitrate_kbps=show.bitrate_kbps,
            payout_pool_minor=show.pool_minor,
            is_live=live,
            live_since=now - timedelta(minutes=35) if live else None,
        )
        session.add(stream)
        await session.flush()
        for hours_ago in show.hours_ago:
            # Office-box went offline three hours ago; before that both edges relayed.
            edges = [attic] if hours_ago < 3 else [attic, office]
            _watch_hour(session, rng, stream, show, edges, now, hours_ago)
    await session.commit()
    return live_key


def _watch_hour(
    session: AsyncSession,
    rng: random.Random,
    stream: Stream,
    show: Show,
    edges: list[Node],
    now: datetime,
    hours_ago: int,
) -> None:
    """One hour of viewers on the origin and each edge, and the edges' reports for it."""
    hour_end = now - timedelta(hours=hours_ago)
    hour_start = hour_end - timedelta(hours=1)
    origin_viewers, edge_viewers = show.viewers
    servers: list[Node | None] = [None] * max(1, origin_viewers + rng.randint(-1, 1))
    for edge in edges:
        servers += [edge] * max(1, edge_viewers + rng.randint(-2, 2))
    watched: dict[int, list[tuple[datetime, datetime]]] = {edge.id: [] for edge in edges}
    for index, server in enumerate(servers):
        started = hour_start + timedelta(minutes=rng.randint(0, 30))
        # The current hour's viewers are still watching.
        ended = None if hours_ago == 0 else started + timedelta(minutes=rng.randint(10, 29))
        session.add(
            ViewerSession(
                stream_id=stream.id,
                node_id=server.id if server else None,
                server_id=f"node-{server.id}" if server else "origin",
                client_id=f"demo-{hours_ago}-{index}",
                client_ip=f"100.64.1.{index + 10}" if server else f"198.51.100.{index + 10}",
                started_at=started,
                ended_at=ended,
            )
        )
        if server and ended:
            watched[server.id].append((started, ended))
    bytes_per_second = show.bitrate_kbps * 1000 // 8
    for edge in edges:
        start = hour_start
        while watched[edge.id] and start < hour_end:
            end = start + timedelta(seconds=REPORT_SECONDS)
            overlaps = [
                (min(end, until) - max(start, since)).total_seconds()
                for since, until in watched[edge.id]
                if since < end and until > start
            ]
            if overlaps:
                verified = int(sum(overlaps)) * bytes_per_second
                session.add(
                    ContributionReport(
                        node_id=edge.id,
                        stream_id=stream.id,
                        interval_start=start,
                        interval_end=end,
                        # An edge that once over-claimed still does, a little: trust shows it.
                        bytes_served=verified
                        * (100 if edge.trust_bp == FULL_TRUST else 108)
                        // 100,
                        verified_bytes=verified,
                        viewers=len(overlaps),
                        received_at=end + timedelta(seconds=rng.randint(2, 20)),
                    )
                )
            start = end
