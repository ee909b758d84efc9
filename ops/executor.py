"""Carry out pause/resume decisions with boto3: in dependency order, bounded, idempotent.

Resume starts the database, then stand-alone hosts, then the auto scaling groups; pause runs in
reverse. Each phase waits (with a deadline) for what it changed before the next phase starts. A
resource that fails is reported and the others still run. A dry run makes no mutating call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from ops.decision import PAUSE_ORDER, RESUME_ORDER, Action, Resource, decide, target_of
from ops.discovery import PAUSED_BY_OPS_TAG, SAVED_SIZES_TAG, Clients, StackTags, discover
from ops.schedule import Schedule, Target

Outcome = Literal["done", "planned", "unchanged", "skipped", "failed"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Waits:
    """How long each phase may wait for its resources, and how often it looks (seconds)."""

    rds: float = 600.0
    ec2: float = 300.0
    interval: float = 10.0


@dataclass
class ItemResult:
    kind: str
    id: str
    name: str
    before: str
    action: str
    reason: str
    outcome: Outcome
    after: str | None = None
    error: str | None = None


@dataclass
class RunResult:
    operation: str
    project: str
    stage: str
    dry_run: bool
    at: str
    items: list[ItemResult] = field(default_factory=list)
    # Why the run did what it did when that is not one resource's business (e.g. the idle check).
    note: str | None = None

    @property
    def failed(self) -> list[ItemResult]:
        return [item for item in self.items if item.outcome == "failed"]

    @property
    def skipped(self) -> list[ItemResult]:
        return [item for item in self.items if item.outcome == "skipped"]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": not self.failed}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class WaitTimeout(Exception):
    """A resource did not reach its state before the phase's deadline."""


def plan(
    resources: list[Resource],
    schedule: Schedule | None,
    now: datetime,
    enforced: bool,
    requested: Target | None,
) -> list[tuple[Resource, Action]]:
    """Every resource with its action, in the order the actions must run."""
    target = target_of(schedule, now, requested)
    order = PAUSE_ORDER if target == "paused" else RESUME_ORDER
    decided = [
        (resource, decide(resource, schedule, now, enforced, requested)) for resource in resources
    ]
    return sorted(decided, key=lambda pair: order.index(pair[0].kind))


def run(
    clients: Clients,
    stack: StackTags,
    schedule: Schedule | None,
    now: datetime,
    *,
    operation: str,
    requested: Target | None = None,
    enforced: bool = False,
    dry_run: bool = False,
    waits: Waits = Waits(),
    progress: Progress = lambda _message: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Discover this stack's resources, decide, act phase by phase, and report every resource."""
    result = RunResult(operation, stack.project, stack.stage, dry_run, now.isoformat())
    steps = plan(discover(clients, stack), schedule, now, enforced, requested)
    kinds = list(dict.fromkeys(resource.kind for resource, _ in steps))
    for kind in kinds:
        phase = [(resource, action) for resource, action in steps if resource.kind == kind]
        changed = []
        for resource, action in phase:
            item = ItemResult(
                resource.kind,
                resource.id,
                resource.name,
                resource.state,
                action.verb,
                action.reason,
                _outcome_without_acting(action, dry_run),
            )
            result.items.append(item)
            if item.outcome != "done":
                continue
            progress(f"{action.verb} {resource.kind} {resource.name} ({resource.id})")
            try:
                item.after = _apply(clients, resource, action)
                changed.append((resource, action, item))
            except Exception as error:  # one resource failing must not stop the others
                item.outcome, item.error = "failed", _describe(error)
        _wait_for(clients, changed, waits, progress, sleep, clock)
    return result


def _outcome_without_acting(action: Action, dry_run: bool) -> Outcome:
    if action.verb == "none":
        return "unchanged"
    if action.verb == "skip":
        return "skipped"
    return "planned" if dry_run else "done"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _apply(clients: Clients, resource: Resource, action: Action) -> str:
    """Make the change; return the state right after the call."""
    verb = action.verb
    if resource.kind == "asg":
        if verb == "scale_to_zero":
            assert resource.sizes is not None
            # Remember first: a crash between the calls must not lose the sizes.
            clients.autoscaling.create_or_update_tags(
                Tags=[_asg_tag(resource, resource.sizes.to_tag())]
            )
            clients.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=resource.id, MinSize=0, DesiredCapacity=0, MaxSize=0
            )
            return "zero"
        assert verb == "restore_sizes" and resource.saved_sizes is not None
        saved = resource.saved_sizes
        clients.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=resource.id,
            MinSize=saved.min,
            DesiredCapacity=saved.desired,
            MaxSize=saved.max,
        )
        clients.autoscaling.delete_tags(Tags=[_asg_tag(resource, saved.to_tag())])
        return "running"
    if resource.kind == "ec2":
        if verb == "stop":
            clients.ec2.create_tags(
                Resources=[resource.id], Tags=[{"Key": PAUSED_BY_OPS_TAG, "Value": "true"}]
            )
            response = clients.ec2.stop_instances(InstanceIds=[resource.id])
            return response["StoppingInstances"][0]["CurrentState"]["Name"]
        response = clients.ec2.start_instances(InstanceIds=[resource.id])
        clients.ec2.delete_tags(Resources=[resource.id], Tags=[{"Key": PAUSED_BY_OPS_TAG}])
        return response["StartingInstances"][0]["CurrentState"]["Name"]
    if verb == "stop":
        clients.rds.add_tags_to_resource(
            ResourceName=resource.arn, Tags=[{"Key": PAUSED_BY_OPS_TAG, "Value": "true"}]
        )
        response = clients.rds.stop_db_instance(DBInstanceIdentifier=resource.id)
        return response["DBInstance"]["DBInstanceStatus"]
    response = clients.rds.start_db_instance(DBInstanceIdentifier=resource.id)
    clients.rds.remove_tags_from_resource(ResourceName=resource.arn, TagKeys=[PAUSED_BY_OPS_TAG])
    return response["DBInstance"]["DBInstanceStatus"]


def _asg_tag(resource: Resource, value: str) -> dict[str, Any]:
    return {
        "ResourceId": resource.id,
        "ResourceType": "auto-scaling-group",
        "Key": SAVED_SIZES_TAG,
        "Value": value,
        "PropagateAtLaunch": False,
    }


def _expected_state(resource: Resource, action: Action) -> str | None:
    """The state a changed resource must reach before the next phase; None: nothing to wait for."""
    if resource.kind == "ec2":
        return "stopped" if action.verb == "stop" else "running"
    if resource.kind == "rds":
        return "stopped" if action.verb == "stop" else "available"
    return None


def _current_state(clients: Clients, resource: Resource) -> str:
    if resource.kind == "ec2":
        reservations = clients.ec2.describe_instances(InstanceIds=[resource.id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]
    databases = clients.rds.describe_db_instances(DBInstanceIdentifier=resource.id)["DBInstances"]
    return databases[0]["DBInstanceStatus"]


def _wait_for(
    clients: Clients,
    changed: list[tuple[Resource, Action, ItemResult]],
    waits: Waits,
    progress: Progress,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Poll until every changed resource is in its expected state or the deadline passes."""
    pending = [
        (resource, expected, item)
        for resource, action, item in changed
        if (expected := _expected_state(resource, action)) is not None
    ]
    if not pending:
        return
    limit = waits.rds if pending[0][0].kind == "rds" else waits.ec2
    deadline = clock() + limit
    while pending:
        still = []
        for resource, expected, item in pending:
            try:
                item.after = _current_state(clients, resource)
            except Exception as error:  # a failed look is this resource's failure only
                item.outcome, item.error = "failed", _describe(error)
                continue
            if item.after != expected:
                still.append((resource, expected, item))
        pending = still
        if not pending:
            return
        if clock() >= deadline:
            for _resource, expected, item in pending:
                item.outcome = "failed"
                item.error = f"still {item.after} after {limit:.0f}s (waiting for {expected})"
            return
        names = ", ".join(
            f"{resource.name} {item.after}->{expected}" for resource, expected, item in pending
        )
        progress(f"waiting: {names}")
        sleep(waits.interval)
