"""The moto account the ops tests share: this stack (dev), another stack (prod), untagged resources.

`Account.calls` records every API call the ops clients make (botocore `before-call` events), so
tests can assert which calls mutated something without mocking any of our code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from ops.discovery import Clients, StackTags

REGION = "eu-west-1"
DEV = StackTags("streamr", "dev")
READ_PREFIXES = ("Describe", "List", "Get")


def tags(stage: str | None, name: str) -> list[dict[str, str]]:
    stack = (
        []
        if stage is None
        else [{"Key": "Project", "Value": "streamr"}, {"Key": "Stage", "Value": stage}]
    )
    return [*stack, {"Key": "Name", "Value": name}]


@dataclass
class Account:
    clients: Clients
    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    def mutating_calls(self) -> list[tuple[str, str, dict]]:
        return [call for call in self.calls if not call[1].startswith(READ_PREFIXES)]

    def asg_sizes(self, name: str) -> tuple[int, int, int]:
        group = self.clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]
        return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]

    def asg_tags(self, name: str) -> dict[str, str]:
        group = self.clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]
        return {tag["Key"]: tag["Value"] for tag in group["Tags"]}

    def instance_state(self, key: str) -> str:
        reservations = self.clients.ec2.describe_instances(InstanceIds=[self.ids[key]])
        return reservations["Reservations"][0]["Instances"][0]["State"]["Name"]

    def db_state(self, identifier: str) -> str:
        database = self.clients.rds.describe_db_instances(DBInstanceIdentifier=identifier)
        return database["DBInstances"][0]["DBInstanceStatus"]


def aws_error(code: str, status: int = 403, only_if: str | None = None):
    """A botocore `before-call` hook that answers like AWS with error `code`.

    With `only_if`, only calls whose request mentions that text fail (one resource of several).
    """

    def hook(params, **_kwargs):
        if only_if is not None and only_if not in str(params):
            return None
        error = {"Error": {"Code": code, "Message": f"{code} (injected)"}, "ResponseMetadata": {}}
        return SimpleNamespace(status_code=status, headers={}), error

    return hook
