"""Go live on demand: what a wake request does and what the status says, as pure functions of time.

The wake endpoint (ops/wake_handler.py) observes this stack's resources, remembers the last wake in
a small record (when it was asked for, when RTMP ingest first answered an RTMP `connect` after it,
ops/rtmp_probe.py) and decides here. A stop-paused platform is resumed by the pause function; a
deep-paused one has no load balancer or origin to start, so the wake asks the GitHub pause
workflow to un-pause it. A wake while a pause is in progress is refused (409) rather than fighting
it; a wake of a running or already waking platform changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ops.decision import Resource
from ops.rtmp_probe import Readiness

Observed = Literal["running", "stopped", "stopping", "starting", "mixed"]
State = Literal["paused", "pausing", "waking", "running"]
WakeAction = Literal["resume", "dispatch", "none"]

# A deep un-pause is a `pulumi up` in GitHub Actions (the workflow's timeout is 60 min); a wake
# that has not made ingest ready by then is given up, so a new one may start.
WAKE_GIVE_UP = timedelta(minutes=75)
# The same for a deep pause the idle check dispatched (ops/idle_deep.py): until the workflow has
# redeployed the endpoint deep-paused, the platform is "pausing" and a wake is refused.
DEEP_PAUSE_GIVE_UP = timedelta(minutes=75)

_EC2_STOPPING = {"stopping", "shutting-down"}


def observe(resources: Iterable[Resource]) -> Observed:
    """One word for the stack's compute: every resource up, down, on its way, or some of each."""
    stopping = starting = down = up = False
    for resource in resources:
        state = resource.state
        if resource.kind == "asg":
            down, up = down or state == "zero", up or state == "running"
        elif resource.kind == "ec2":
            stopping = stopping or state in _EC2_STOPPING
            starting = starting or state == "pending"
            down, up = down or state == "stopped", up or state == "running"
        else:
            stopping = stopping or state == "stopping"
            starting = starting or state == "starting"
            down, up = down or state == "stopped", up or state == "available"
    if stopping:
        return "stopping"
    if starting:
        return "starting"
    if down and up:
        return "mixed"
    return "stopped" if down else "running"


@dataclass(frozen=True)
class WakeRecord:
    """What the endpoint remembers between requests (kept as JSON in an SSM parameter)."""

    state: State | None = None
    since: datetime | None = None
    requested_at: datetime | None = None
    ready_at: datetime | None = None
    # The pause function was asked to resume for this wake (a deep wake asks once un-paused).
    resume_sent: bool = False
    # When the idle check dispatched the pause workflow's deep pause (a wake starts a new record).
    deep_pause_requested_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.requested_at is not None and self.ready_at is None

    def deep_pausing(self, now: datetime) -> bool:
        """A dispatched deep pause has not been given up on (the caller knows it is not done)."""
        requested = self.deep_pause_requested_at
        return requested is not None and now - requested <= DEEP_PAUSE_GIVE_UP

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": _iso(self.since),
            "requested_at": _iso(self.requested_at),
            "ready_at": _iso(self.ready_at),
            "resume_sent": self.resume_sent,
            "deep_pause_requested_at": _iso(self.deep_pause_requested_at),
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> WakeRecord:
        """A record from its JSON; anything unreadable is an empty record (nothing remembered)."""
        try:
            state = body.get("state")
            if state not in (None, "paused", "pausing", "waking", "running"):
                return cls()
            return cls(
                state,
                _time(body.get("since")),
                _time(body.get("requested_at")),
                _time(body.get("ready_at")),
                body.get("resume_sent") is True,
                _time(body.get("deep_pause_requested_at")),
            )
        except (AttributeError, TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Status:
    state: State
    since: datetime
    deep_paused: bool
    ingest_ready: bool | None
    wake_seconds: float | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": _iso(self.since),
            "deep_paused": self.deep_paused,
            "ingest_ready": self.ingest_ready,
            "wake_seconds": self.wake_seconds,
            "note": self.note,
        }


def advance(
    record: WakeRecord, observed: Observed, ingest: Readiness | None, deep: bool, now: datetime
) -> tuple[WakeRecord, Status]:
    """The state now and the record to keep. `ingest` is None when no origin is known (or the
    compute is not up, so it was not asked).

    Running means the compute is up and ingest is ready: the origin answered the RTMP handshake
    and a `connect` to the live app with success, and the coordinator its on_publish hook asks is
    ready when the endpoint knows it (ops/wake_handler.py). The first look that sees it ends a
    pending wake and fixes how long the wake took.
    """
    if record.pending and record.requested_at and now - record.requested_at > WAKE_GIVE_UP:
        record = replace(record, requested_at=None)
    ready = observed == "running" and (ingest is None or ingest.ready)
    if observed == "stopping":
        state: State = "pausing"
        record = replace(record, requested_at=None) if record.pending else record
        note = "a pause is in progress"
    elif not deep and record.deep_pausing(now):
        state, note = "pausing", "a deep pause is in progress (the pause workflow runs pulumi up)"
    elif record.pending:
        state = "running" if ready and not deep else "waking"
        note = "woken" if state == "running" else "waking: resources are starting"
        if deep and state == "waking":
            note = "waking: the deep un-pause runs in GitHub Actions (pulumi up)"
        if state == "running":
            record = replace(record, ready_at=now)
    elif observed == "starting" or (observed == "running" and not ready):
        state, note = "waking", "resources are starting"
    elif observed in ("stopped", "mixed") or deep:
        state = "paused"
        note = "deep-paused" if deep else "stop-paused"
        if observed == "mixed" and not deep:
            note = "partly paused (a wake starts what is stopped)"
    else:
        state, note = "running", "running"
    if state == "waking" and record.pending and record.requested_at is not None:
        since = record.requested_at
    elif state == record.state and record.since is not None:
        since = record.since
    else:
        since = now
    record = replace(record, state=state, since=since)
    wake_seconds = None
    if state == "running" and record.requested_at is not None and record.ready_at is not None:
        wake_seconds = round((record.ready_at - record.requested_at).total_seconds(), 1)
        note = f"running; the last wake took {wake_seconds:.0f} s until ingest was ready"
    if state == "waking" and observed == "running" and ingest is not None and not ingest.ready:
        note = f"waking: resources run, ingest not ready ({ingest.reason})"
    ready_now = None if ingest is None else ingest.ready
    return record, Status(state, since, deep, ready_now, wake_seconds, note)


@dataclass(frozen=True)
class WakeDecision:
    action: WakeAction
    http_status: int
    reason: str


def decide_wake(status: Status) -> WakeDecision:
    """What a wake request does in this state: start, un-pause, nothing, or refuse."""
    if status.state == "running":
        return WakeDecision("none", 200, "already running; nothing to do")
    if status.state == "waking":
        return WakeDecision("none", 202, f"already waking since {_iso(status.since)}")
    if status.state == "pausing":
        return WakeDecision(
            "none", 409, "a pause is in progress; wake again once the status says paused"
        )
    if status.deep_paused:
        return WakeDecision("dispatch", 202, "deep-paused: un-pausing through the deploy workflow")
    return WakeDecision("resume", 202, "stop-paused: starting the stopped resources")


def woken(now: datetime, resume_sent: bool) -> WakeRecord:
    """The record right after a wake started something."""
    return WakeRecord("waking", now, now, None, resume_sent)


def resume_still_needed(record: WakeRecord, observed: Observed, deep: bool) -> bool:
    """A deep wake's `pulumi up` brings back what it deleted but leaves the database and hosts
    stopped: once the stack is no longer deep-paused, the pending wake asks for the resume."""
    return (
        record.pending
        and not record.resume_sent
        and not deep
        and observed
        in (
            "stopped",
            "mixed",
        )
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise ValueError(f"time {raw!r} has no timezone")
    return moment
