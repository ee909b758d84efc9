"""Deep-pause when idle: a pure decision, with time as a parameter.

The idle pause (ops/idle.py) stops a platform nobody uses; stopped, it still pays for what bills by
the hour (load balancer, cache, NAT, the database's storage...). With `streamr:idleDeepPauseHours`
the wake endpoint's periodic check dispatches the pause workflow's deep pause once the platform has
stayed idle-paused that long. The pause function keeps when it idle-paused (an `IdlePauseRecord`,
cleared by any resume); the endpoint keeps, in its wake record, when it dispatched. The wake
endpoint's deep wake brings the platform back.

Only a platform the idle pause stopped is deep-paused: the idle pause happened only when the
coordinator answered that nothing was live and nobody watched, so a platform that is live, or
whose coordinator could not be asked, or that a schedule stopped, never gets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ops.wake import Observed, WakeRecord

MINIMUM_IDLE_DEEP_PAUSE_HOURS = 1
MAXIMUM_IDLE_DEEP_PAUSE_HOURS = 7 * 24
# The event the wake endpoint's schedule sends it (not a function URL request).
CHECK_EVENT = {"check": "idle-deep-pause"}


def validate_hours(hours: int) -> int:
    """The configured hours, or a ValueError naming the allowed values."""
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int)
        or not MINIMUM_IDLE_DEEP_PAUSE_HOURS <= hours <= MAXIMUM_IDLE_DEEP_PAUSE_HOURS
    ):
        raise ValueError(
            f"idle deep pause hours is {hours!r}; allowed values: whole hours from "
            f"{MINIMUM_IDLE_DEEP_PAUSE_HOURS} to {MAXIMUM_IDLE_DEEP_PAUSE_HOURS}"
        )
    return hours


@dataclass(frozen=True)
class IdlePauseRecord:
    """When the pause function last idle-paused the platform (None: not idle-paused since the
    last resume). Kept as JSON in an SSM parameter the pause function writes."""

    paused_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"paused_at": None if self.paused_at is None else self.paused_at.isoformat()}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> IdlePauseRecord:
        """Anything unreadable is no record: never deep-pause on a guess."""
        try:
            raw = body.get("paused_at")
            moment = None if raw is None else datetime.fromisoformat(raw)
        except (AttributeError, TypeError, ValueError):
            return cls()
        if moment is not None and moment.tzinfo is None:
            return cls()
        return cls(moment)


@dataclass(frozen=True)
class DeepPauseDecision:
    dispatch: bool
    reason: str


def decide_deep_pause(
    idle: IdlePauseRecord,
    wake: WakeRecord,
    observed: Observed,
    deep_paused: bool,
    now: datetime,
    hours: int,
) -> DeepPauseDecision:
    """Dispatch the deep pause only for a platform idle-paused `hours` ago and left alone since."""
    threshold = timedelta(hours=validate_hours(hours))
    if deep_paused:
        return DeepPauseDecision(False, "already deep-paused")
    if wake.deep_pausing(now):
        requested = wake.deep_pause_requested_at
        assert requested is not None
        return DeepPauseDecision(
            False, f"a deep pause was dispatched at {requested.isoformat()}; it is in progress"
        )
    if wake.pending:
        return DeepPauseDecision(False, "a wake is in progress")
    if idle.paused_at is None:
        return DeepPauseDecision(False, "not idle-paused (only an idle pause leads to a deep one)")
    if wake.requested_at is not None and wake.requested_at >= idle.paused_at:
        return DeepPauseDecision(False, "woken since the idle pause")
    if observed != "stopped":
        return DeepPauseDecision(False, f"the platform is {observed}, not stop-paused")
    stopped = now - idle.paused_at
    hours_stopped = stopped.total_seconds() / 3600
    if stopped < threshold:
        return DeepPauseDecision(
            False, f"idle-paused for {hours_stopped:.1f} h; deep-pauses after {hours} h"
        )
    return DeepPauseDecision(
        True, f"idle-paused for {hours_stopped:.1f} h (threshold {hours} h): deep-pausing"
    )
