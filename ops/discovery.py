"""Find this stack's resources by their `Project` and `Stage` tags, and nothing else.

A resource without both tags, or with another stack's values, is never returned, so it is never
touched. EC2 instances launched by an auto scaling group are the group's business and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.decision import Resource, Sizes

SAVED_SIZES_TAG = "streamr:paused-sizes"
PAUSED_BY_OPS_TAG = "streamr:paused-by-ops"
ASG_MEMBER_TAG = "aws:autoscaling:groupName"


@dataclass(frozen=True)
class StackTags:
    project: str
    stage: str

    def matches(self, tags: dict[str, str]) -> bool:
        return tags.get("Project") == self.project and tags.get("Stage") == self.stage


@dataclass(frozen=True)
class Clients:
    """The boto3 clients ops uses (one region)."""

    autoscaling: Any
    ec2: Any
    rds: Any

    @classmethod
    def from_session(cls, session: Any) -> Clients:
        return cls(session.client("autoscaling"), session.client("ec2"), session.client("rds"))


def discover(clients: Clients, stack: StackTags) -> list[Resource]:
    """This stack's ASGs, stand-alone EC2 instances and RDS instances, in a stable order."""
    return [
        *_auto_scaling_groups(clients.autoscaling, stack),
        *_instances(clients.ec2, stack),
        *_databases(clients.rds, stack),
    ]


def _tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def _auto_scaling_groups(client: Any, stack: StackTags) -> list[Resource]:
    found = []
    for page in client.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            tags = _tag_dict(group.get("Tags"))
            if not stack.matches(tags):
                continue
            sizes = Sizes(group["MinSize"], group["DesiredCapacity"], group["MaxSize"])
            saved = tags.get(SAVED_SIZES_TAG)
            found.append(
                Resource(
                    kind="asg",
                    id=group["AutoScalingGroupName"],
                    name=tags.get("Name") or group["AutoScalingGroupName"],
                    state="zero" if sizes.zero else "running",
                    sizes=sizes,
                    saved_sizes=Sizes.from_tag(saved) if saved else None,
                )
            )
    return sorted(found, key=lambda resource: resource.id)


def _instances(client: Any, stack: StackTags) -> list[Resource]:
    filters = [
        {"Name": "tag:Project", "Values": [stack.project]},
        {"Name": "tag:Stage", "Values": [stack.stage]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ]
    found = []
    for page in client.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = _tag_dict(instance.get("Tags"))
                # Filters are the server's promise; the check here is ours.
                if not stack.matches(tags) or ASG_MEMBER_TAG in tags:
                    continue
                found.append(
                    Resource(
                        kind="ec2",
                        id=instance["InstanceId"],
                        name=tags.get("Name") or instance["InstanceId"],
                        state=instance["State"]["Name"],
                        paused_by_ops=PAUSED_BY_OPS_TAG in tags,
                    )
                )
    return sorted(found, key=lambda resource: resource.id)


def _databases(client: Any, stack: StackTags) -> list[Resource]:
    found = []
    for page in client.get_paginator("describe_db_instances").paginate():
        for database in page["DBInstances"]:
            tags = _tag_dict(database.get("TagList"))
            # Cluster members (Aurora) stop with their cluster, not one by one.
            if not stack.matches(tags) or database.get("DBClusterIdentifier"):
                continue
            identifier = database["DBInstanceIdentifier"]
            found.append(
                Resource(
                    kind="rds",
                    id=identifier,
                    name=tags.get("Name") or identifier,
                    state=database["DBInstanceStatus"],
                    paused_by_ops=PAUSED_BY_OPS_TAG in tags,
                    arn=database["DBInstanceArn"],
                )
            )
    return sorted(found, key=lambda resource: resource.id)
