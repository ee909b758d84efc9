"""The platform's last activity, for the idle pause: live streams, connected viewers, and when the
last broadcast or viewer session started or ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ACTIVITY = text("""
SELECT
    (SELECT count(*) FROM streams WHERE is_live AND deleted_at IS NULL) AS live_streams,
    (SELECT count(*) FROM viewer_sessions WHERE ended_at IS NULL) AS viewers,
    GREATEST(
        (SELECT max(GREATEST(started_at, ended_at)) FROM broadcasts),
        (SELECT max(GREATEST(started_at, ended_at)) FROM viewer_sessions)
    ) AS last_seen
""")


async def activity(
    session: AsyncSession, now: datetime, started_at: datetime
) -> tuple[int, int, datetime]:
    """(live streams, connected viewers, last activity): `now` while anything is live or watched,
    else the latest start or end, but never before `started_at` (a woken platform is active)."""
    row = (await session.execute(_ACTIVITY)).one()
    live, viewers = int(row.live_streams), int(row.viewers)
    if live or viewers:
        return live, viewers, now
    last = row.last_seen
    return live, viewers, max(last, started_at) if last is not None else started_at
