"""Pause when idle: a pure decision over what the coordinator reports, with time as a parameter.

The coordinator's `GET /api/v1/ops/activity` (ops token) says whether a stream is live, how many
viewers are connected and when the platform was last active (never earlier than the coordinator's
start, so a platform just woken is not paused at once). The platform pauses when nothing is live,
nobody watches and the last activity is `idle_pause_minutes` old. No answer means no pause: the
platform never pauses blind.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Never pause faster than this: a streamer needs time to start OBS after a wake or between shows.
MINIMUM_IDLE_PAUSE_MINUTES = 15
MAXIMUM_IDLE_PAUSE_MINUTES = 24 * 60
# What the cost report assumes for "on demand" when a stack sets no idle pause.
DEFAULT_IDLE_PAUSE_MINUTES = 30
ACTIVITY_PATH = "/api/v1/ops/activity"


class ActivityError(ValueError):
    """The coordinator's answer is not an activity report; the message says what is wrong."""


@dataclass(frozen=True)
class Activity:
    live_streams: int
    viewers: int
    last_activity: datetime

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Activity:
        try:
            live, viewers = body["live_streams"], body["viewers"]
            last = datetime.fromisoformat(body["last_activity"])
        except (KeyError, TypeError, ValueError) as error:
            raise ActivityError(f"activity report {body!r} is malformed: {error}") from error
        if not (isinstance(live, int) and isinstance(viewers, int)) or last.tzinfo is None:
            raise ActivityError(
                f"activity report {body!r}: live_streams and viewers must be integers and "
                "last_activity a timezone-aware ISO time"
            )
        return cls(live, viewers, last)


@dataclass(frozen=True)
class IdleDecision:
    pause: bool
    reason: str


def validate_minutes(minutes: int) -> int:
    """The configured idle time, or a ValueError naming the allowed values."""
    if not MINIMUM_IDLE_PAUSE_MINUTES <= minutes <= MAXIMUM_IDLE_PAUSE_MINUTES:
        raise ValueError(
            f"idle pause minutes is {minutes}; allowed values: {MINIMUM_IDLE_PAUSE_MINUTES} "
            f"to {MAXIMUM_IDLE_PAUSE_MINUTES}"
        )
    return minutes


def decide_idle(activity: Activity | None, now: datetime, idle_pause_minutes: int) -> IdleDecision:
    """Pause only when nothing is live, nobody watches, and nothing happened for long enough."""
    threshold = timedelta(minutes=validate_minutes(idle_pause_minutes))
    if activity is None:
        return IdleDecision(False, "the coordinator did not report its activity; never pause blind")
    if activity.live_streams:
        return IdleDecision(False, f"{activity.live_streams} stream(s) live")
    if activity.viewers:
        return IdleDecision(False, f"{activity.viewers} viewer(s) connected")
    idle = now - activity.last_activity
    minutes = idle.total_seconds() / 60
    if idle < threshold:
        return IdleDecision(
            False, f"idle for {minutes:.0f} min; pauses after {idle_pause_minutes} min"
        )
    return IdleDecision(True, f"idle for {minutes:.0f} min (threshold {idle_pause_minutes} min)")


def fetch_activity(base_url: str, token: str, timeout: float = 10.0) -> Activity | None:
    """Ask the coordinator; any failure to get a well-formed answer is None (no pause)."""
    if not base_url.startswith(("https://", "http://")):
        raise ValueError(f"coordinator URL {base_url!r} must start with https:// or http://")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        base_url.rstrip("/") + ACTIVITY_PATH,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Activity.from_json(json.load(response))
    except (OSError, ValueError):
        return None
