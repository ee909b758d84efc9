"""What to do with one resource: a pure function of its state, the schedule, the time and the mode.

After AWS Instance Scheduler: a scheduled run acts on the transition that just happened; an
*enforced* run re-applies the schedule's state whatever happened since (someone started an
instance by hand, AWS started a stopped database after 7 days). An explicit pause or resume
(operator or scheduled event) overrides the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ops.schedule import Schedule, Target

Kind = Literal["rds", "ec2", "asg"]
Verb = Literal["start", "stop", "scale_to_zero", "restore_sizes", "none", "skip"]

# Resume brings the database up first, then the hosts that use it, then the ASG; pause reverses.
RESUME_ORDER: tuple[Kind, ...] = ("rds", "ec2", "asg")
PAUSE_ORDER: tuple[Kind, ...] = tuple(reversed(RESUME_ORDER))

# A non-enforced scheduled run acts only this soon after a transition (EventBridge may be late).
TRANSITION_WINDOW = timedelta(minutes=30)

_EC2_TRANSITIONAL = {"pending", "stopping", "shutting-down"}
_RDS_STOPPABLE = {"available"}
_RDS_STARTABLE = {"stopped"}


@dataclass(frozen=True)
class Sizes:
    """An auto scaling group's min/desired/max."""

    min: int
    desired: int
    max: int

    @property
    def zero(self) -> bool:
        return self.min == self.desired == self.max == 0

    def to_tag(self) -> str:
        return f"min={self.min} desired={self.desired} max={self.max}"

    @classmethod
    def from_tag(cls, value: str) -> Sizes:
        """Inverse of `to_tag`; a malformed tag raises ValueError naming the value."""
        try:
            fields = dict(part.split("=", 1) for part in value.split())
            return cls(int(fields["min"]), int(fields["desired"]), int(fields["max"]))
        except (KeyError, ValueError) as error:
            raise ValueError(f"saved sizes tag {value!r} is not 'min=N desired=N max=N'") from error


@dataclass(frozen=True)
class Resource:
    """One resource of this stack as discovery saw it.

    `state` is the EC2 instance state name, the RDS status, or for an ASG `zero` / `running`.
    `saved_sizes` (ASG) are the sizes remembered at pause; `paused_by_ops` says a pause run
    stopped this resource (so a running RDS during a pause was started by someone else).
    """

    kind: Kind
    id: str
    name: str
    state: str
    sizes: Sizes | None = None
    saved_sizes: Sizes | None = None
    paused_by_ops: bool = False
    arn: str | None = None


@dataclass(frozen=True)
class Action:
    verb: Verb
    target: Target
    reason: str

    @property
    def mutates(self) -> bool:
        return self.verb not in ("none", "skip")


def decide(
    resource: Resource,
    schedule: Schedule | None,
    now: datetime,
    enforced: bool,
    requested: Target | None = None,
) -> Action:
    """The action that moves `resource` toward the requested or scheduled state at `now`."""
    target = target_of(schedule, now, requested)
    if requested is None and schedule is not None and not enforced:
        last = schedule.last_event(now)
        if now - last.at > TRANSITION_WINDOW:
            return Action(
                "none",
                target,
                f"last transition was at {last.at:%Y-%m-%d %H:%M} UTC; only an enforced run "
                "re-applies the schedule between transitions",
            )
    if resource.kind == "asg":
        return _decide_asg(resource, target)
    if resource.kind == "ec2":
        return _decide_ec2(resource, target)
    return _decide_rds(resource, target)


def _decide_asg(resource: Resource, target: Target) -> Action:
    sizes = resource.sizes
    if sizes is None:
        raise ValueError(f"auto scaling group {resource.id} has no sizes")
    if target == "paused":
        if sizes.zero:
            return Action("none", target, "already scaled to zero")
        return Action("scale_to_zero", target, f"remember {sizes.to_tag()} and scale to zero")
    if resource.saved_sizes is not None:
        return Action("restore_sizes", target, f"restore {resource.saved_sizes.to_tag()}")
    if sizes.zero:
        return Action("skip", target, "at zero with no remembered sizes; set them with pulumi up")
    return Action("none", target, f"already running at {sizes.to_tag()}")


def _decide_ec2(resource: Resource, target: Target) -> Action:
    state = resource.state
    if state in _EC2_TRANSITIONAL:
        return Action("skip", target, f"instance is {state}; the next run picks it up")
    if target == "paused":
        if state == "stopped":
            return Action("none", target, "already stopped")
        return Action("stop", target, "stop instance")
    if state == "running":
        return Action("none", target, "already running")
    return Action("start", target, "start instance")


def _decide_rds(resource: Resource, target: Target) -> Action:
    state = resource.state
    if target == "paused":
        if state in ("stopped", "stopping"):
            return Action("none", target, f"already {state}")
        if state in _RDS_STOPPABLE:
            if resource.paused_by_ops:
                return Action(
                    "stop",
                    target,
                    "started while paused (AWS starts a stopped database after 7 days); stop again",
                )
            return Action("stop", target, "stop database")
        return Action("skip", target, f"database is {state}; the next run picks it up")
    if state in ("available", "starting"):
        return Action("none", target, f"already {state}")
    if state in _RDS_STARTABLE:
        return Action("start", target, "start database")
    return Action("skip", target, f"database is {state}; the next run picks it up")


def target_of(schedule: Schedule | None, now: datetime, requested: Target | None) -> Target:
    """The requested state, else the one the schedule wants at `now`."""
    if requested is not None:
        return requested
    if schedule is None:
        raise ValueError("without a requested pause or resume, a schedule is required")
    return schedule.target_at(now)
